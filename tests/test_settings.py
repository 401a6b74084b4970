"""Configuration errors name file and line, exit 2, write nothing."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.events import features, profile_aliases
from monitor.pipeline import Runtime
from monitor.settings import load_settings
from tests.conftest import write_config


def _env(config: Path, tmp_path: Path) -> dict[str, str]:
    return {"MONITOR_CONFIG_DIR": str(config), "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}


@pytest.mark.parametrize(
    ("feeds_yaml", "line", "fragment"),
    [
        ("feeds:\n  - url: https://a.example.org/rss\n  - url: [oops\n", 3, "invalid YAML"),
        (
            "feeds:\n  - url: https://a.example.org/rss\n    colour: blue\n",
            3,
            "unknown key 'colour'",
        ),
        (
            "feeds:\n  - url: https://a.example.org/rss\n  - url: ftp://b.example.org/rss\n",
            3,
            "http or https",
        ),
        ("feeds:\n  - name: no url\n", 2, "needs a 'url'"),
        ("feeds:\n  - url: https://a.example.org/rss\n    interval: -5\n", 3, "got -5"),
        ("feeds:\n  - url: https://a.example.org/rss\n    interval: often\n", 3, "got 'often'"),
        # a line indented wrongly is named, not the line before it
        ("feeds:\n  - url: https://a.example.org/rss\n   name: [oops\n", 3, "invalid YAML"),
        ("feeds:\n  - url: https://a.example.org/rss\n     name: x\n", 3, "invalid YAML"),
        # a key without its colon is named, not the line after it
        ("feeds:\n  - url: https://a.example.org/rss\n    name Foo\n  - url: b\n", 3, "YAML"),
        # an unclosed quote is named where it opens, not at the end of the file
        ('feeds:\n  - url: https://a.example.org/rss\n    name: "oops\n  - url: b\n', 3, "YAML"),
        (
            "feeds:\n  - url: https://a.example.org/rss\n  - url: https://a.example.org/rss\n",
            3,
            "already listed",
        ),
        ("flux:\n  - url: https://a.example.org/rss\n", 1, "unknown key 'flux'"),
    ],
)
def test_feeds_yaml_errors_name_file_and_line(
    tmp_path: Path, feeds_yaml: str, line: int, fragment: str
) -> None:
    config = write_config(tmp_path / "config", [])
    (config / "feeds.yaml").write_text(feeds_yaml, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(_env(config, tmp_path))
    assert f"feeds.yaml:{line}:" in str(e.value)
    assert fragment in str(e.value)


def test_bad_apprise_url_is_named_with_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [])
    (config / "notify.yaml").write_text(
        "targets:\n  - url: json://127.0.0.1:9/x\n  - url: nosuchscheme://abc\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"notify\.yaml:3: apprise does not accept"):
        load_settings(_env(config, tmp_path))


def test_environment_overrides(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config", ["https://a.example.org/rss"], ["json://127.0.0.1:9/x"]
    )
    env = _env(config, tmp_path) | {
        "MONITOR_NOTIFY_URLS": "json://127.0.0.1:1/a  mailto://127.0.0.1:2?from=a@b.org&to=c@d.org",
        "MONITOR_POLL_INTERVAL": "60",
    }
    s = load_settings(env)
    assert [t.url for t in s.targets] == [
        "json://127.0.0.1:1/a",
        "mailto://127.0.0.1:2?from=a@b.org&to=c@d.org",
    ]
    assert s.feeds[0].interval == 60 and s.poll_interval == 60
    with pytest.raises(ConfigError, match="MONITOR_POLL_INTERVAL"):
        load_settings(env | {"MONITOR_POLL_INTERVAL": "soon"})


def test_grouping_is_wide_unless_the_desk_asks_for_strict(tmp_path: Path) -> None:
    """MONITOR_GROUPING=strict: a process's story index joins by words and copies only (no
    kind, name or figure join); anything but wide or strict is refused, naming the variable."""
    config = write_config(tmp_path / "config", [])
    env = _env(config, tmp_path)
    assert load_settings(env).grouping == "wide"
    with pytest.raises(ConfigError, match="MONITOR_GROUPING='loose'"):
        load_settings(env | {"MONITOR_GROUPING": "loose"})
    seen = []
    for grouping in ("wide", "learned", "strict"):
        settings = load_settings(env | {"MONITOR_GROUPING": grouping})
        rt = Runtime.build(settings, migrate=False)
        aliases = profile_aliases(rt.profile)
        t0 = datetime(2022, 9, 13, 2, tzinfo=UTC)
        index = rt.stories.index
        assert index.params.pair_join == (grouping == "learned")  # the learned join
        topics = ("karabakh_ceasefire",)
        first = "Karabakh : des tirs d'artillerie visent Gandja dans la nuit"
        index.add(1, features(first, "", t0, aliases, index.params, topics=topics))
        other = "Karabakh : des combats meurtriers font rage sur la ligne de front"
        d = index.decide(
            features(other, "", t0 + timedelta(hours=3), aliases, index.params, topics=topics)
        )
        seen.append((grouping, d.reason))
        rt.db.dispose()
    assert seen == [("wide", "kind"), ("learned", "kind"), ("strict", "new")]


def test_cli_config_error_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [])
    (config / "feeds.yaml").write_text("feeds:\n  - url: https://a.example.org/rss\n    every: 5\n")
    env = _env(config, tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{config / 'feeds.yaml'}:3: unknown key 'every'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.db").exists()


def test_profile_errors_name_file_and_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [])
    (config / "topics.yaml").write_text(
        "topics:\n  t:\n    threshold: 3\n    terms:\n      - {match: '@nogroup', weight: 2}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "classify", "--profile", str(config / "topics.yaml")],
        input='{"id":"1","title":"x"}\n',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "topics.yaml:5: unknown group '@nogroup'" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["matches", "--since", "hier"], "--since 'hier': not an ISO 8601 date or time"),
        (["matches", "--topic", "sport"], "--topic 'sport': not a topic of the profile"),
        (["matches", "--limit", "0"], "0 is not in the range"),
        (["feeds", "--format", "xml"], "'xml' is not one of"),
        (["replay", "--since", "2026-13-45"], "--since '2026-13-45': not an ISO 8601"),
        (["replay", "--profile", "/nonexistent/topics.yaml"], "file not found"),
        (["run", "--bogus"], "No such option"),
        (["classify", "/nonexistent/items.jsonl"], "No such file or directory"),
        (["feeds", "import-opml", "/nonexistent/list.opml"], "file not found"),
    ],
)
def test_bad_cli_input_exits_2_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = _env(write_config(tmp_path / "config", []), tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert not (tmp_path / "m.db").exists()


# --- where the config and the data live (issue 10 item 2) -----------------------------------


def test_database_lives_in_the_config_directory_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "site" / "config", [])
    monkeypatch.chdir(tmp_path / "site")
    here = load_settings({"MONITOR_CONFIG_DIR": "config"})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    there = load_settings({"MONITOR_CONFIG_DIR": str(config)})
    assert here.config_dir == there.config_dir == config.resolve()
    assert here.database_url == there.database_url == f"sqlite:///{config.resolve()}/monitor.db"
    named = load_settings({"MONITOR_CONFIG_DIR": str(config), "MONITOR_DATABASE_URL": "sqlite://"})
    assert named.database_url == "sqlite://"


def test_config_directory_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no config directory: create .*xdg/monitor or ./config"):
        load_settings({})
    repo = write_config(tmp_path / "config", [])  # the README's start from the repo root
    assert load_settings({}).config_dir == repo.resolve()
    user = write_config(tmp_path / "xdg" / "monitor", [])
    assert load_settings({}).config_dir == user.resolve()
    assert load_settings({}).database_url == f"sqlite:///{user.resolve()}/monitor.db"
    with pytest.raises(ConfigError, match="MONITOR_CONFIG_DIR"):
        load_settings({"MONITOR_CONFIG_DIR": str(tmp_path / "nope")})


def test_old_default_database_in_the_working_directory_is_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "config", [])
    monkeypatch.chdir(tmp_path)
    assert load_settings({"MONITOR_CONFIG_DIR": str(config)}).legacy_database is None
    (tmp_path / "monitor.db").write_bytes(b"")
    s = load_settings({"MONITOR_CONFIG_DIR": str(config)})
    assert s.legacy_database == (tmp_path / "monitor.db").resolve()
    named = {"MONITOR_CONFIG_DIR": str(config), "MONITOR_DATABASE_URL": "sqlite:///x.db"}
    assert load_settings(named).legacy_database is None


def test_profile_falls_back_to_the_packaged_one(tmp_path: Path) -> None:
    from monitor.classify import default_profile_path

    config = write_config(tmp_path / "config", [])
    (config / "topics.yaml").unlink()
    s = load_settings({"MONITOR_CONFIG_DIR": str(config)})
    assert s.profile_path == default_profile_path()
    assert s.profile_path.is_file()
    mine = load_settings({"MONITOR_CONFIG_DIR": str(config), "MONITOR_PROFILE": "/x/p.yaml"})
    assert mine.profile_path == Path("/x/p.yaml")


# --- environment values checked (issue 10 items 13, 15) -------------------------------------


def test_unknown_log_level_is_a_config_error(tmp_path: Path) -> None:
    env = _env(write_config(tmp_path / "config", []), tmp_path)
    assert load_settings(env | {"MONITOR_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(ConfigError, match=r"MONITOR_LOG_LEVEL='LOUD': not a logging level"):
        load_settings(env | {"MONITOR_LOG_LEVEL": "LOUD"})


@pytest.mark.parametrize(
    "url",
    ["mysql://desk:hunter2@db.example.org/monitor", "oracle://desk:hunter2@db/x", "not a url"],
)
def test_unsupported_database_url_names_the_supported_ones(tmp_path: Path, url: str) -> None:
    env = _env(write_config(tmp_path / "config", []), tmp_path)
    with pytest.raises(ConfigError) as e:
        load_settings(env | {"MONITOR_DATABASE_URL": url})
    assert "MONITOR_DATABASE_URL" in str(e.value)
    assert "supported: sqlite:///" in str(e.value) and "postgresql://" in str(e.value)
    assert "hunter2" not in str(e.value)
    for good in ("postgresql://u:p@127.0.0.1/x", "postgres://h/x", "sqlite:///" + str(tmp_path)):
        load_settings(env | {"MONITOR_DATABASE_URL": good})
