"""The CLI as a new user meets it (issue 10 items 2, 13, 15): one database per config whatever
the working directory, read-only commands that never create one, one line instead of a
traceback, and a reason whenever the exit status is not 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, FeedServer, Webhook, write_config

A = (DATA / "caucase_a.xml").read_bytes()


def monitor(
    args: list[str], cwd: Path, config: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m monitor` from `cwd`, with the config named and no MONITOR_DATABASE_URL: the
    default database is what is under test."""
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    full.update(MONITOR_CONFIG_DIR=str(config), PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_same_config_run_from_two_directories_has_one_database(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook
) -> None:
    config = write_config(tmp_path / "config", [feed_server.add("/a.xml", A)], [webhook.url])
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    r1 = monitor(["run", "--once"], first, config)
    assert r1.returncode == 0, r1.stderr[-3000:]
    alerts = len(webhook.received)
    assert alerts >= 1
    r2 = monitor(["run", "--once"], second, config)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert len(webhook.received) == alerts, "the second directory re-sent the alerts"
    database = config.resolve() / "monitor.db"
    assert f"database sqlite:///{database}" in r2.stderr
    assert database.is_file()
    assert not list(first.iterdir()) and not list(second.iterdir())
    # And read from a third place, the same matches.
    r3 = monitor(["matches", "--format", "jsonl"], tmp_path, config)
    assert r3.returncode == 0 and len(r3.stdout.splitlines()) >= 1, r3.stderr


@pytest.mark.parametrize(
    "args",
    [["matches"], ["feeds"], ["replay"], ["matches", "--format", "jsonl"]],
)
def test_read_only_commands_never_create_a_database(tmp_path: Path, args: list[str]) -> None:
    config = write_config(tmp_path / "config", ["https://a.example.org/rss"])
    r = monitor(args, tmp_path, config)
    database = config.resolve() / "monitor.db"
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [
        f"monitor: error: no database at {database}: run `monitor run` or "
        "`monitor db upgrade` first"
    ]
    assert r.stdout == ""
    assert not database.exists() and not (tmp_path / "monitor.db").exists()


def test_old_database_in_the_working_directory_is_not_doubled(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", ["https://a.example.org/rss"])
    (tmp_path / "monitor.db").write_bytes(b"")  # what `monitor run` wrote here before
    r = monitor(["run", "--once"], tmp_path, config)
    assert r.returncode == 2
    [line] = r.stderr.splitlines()
    assert f"mv {tmp_path / 'monitor.db'} {config.resolve() / 'monitor.db'}" in line, line
    assert not (config / "monitor.db").exists()
    r = monitor(["matches"], tmp_path, config)
    assert r.returncode == 1 and "earlier version" in r.stderr


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"MONITOR_DATABASE_URL": "mysql://desk:hunter2@127.0.0.1/monitor"},
            "mysql is not supported (supported: sqlite:///path/monitor.db, postgresql://",
        ),
        ({"MONITOR_LOG_LEVEL": "LOUD"}, "MONITOR_LOG_LEVEL='LOUD': not a logging level"),
    ],
)
def test_bad_environment_is_one_line_before_any_database(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    config = write_config(tmp_path / "config", ["https://a.example.org/rss"])
    for args in (["run", "--once"], ["matches"], ["db", "upgrade"]):
        r = monitor(args, tmp_path, config, **env)
        assert r.returncode == 2, (args, r.stderr)
        [line] = r.stderr.splitlines()
        assert fragment in line and "hunter2" not in line, line
    assert not (config / "monitor.db").exists()


def test_read_only_sqlite_is_one_line(tmp_path: Path, feed_server: FeedServer) -> None:
    config = write_config(tmp_path / "config", [feed_server.add("/a.xml", A)])
    assert monitor(["db", "upgrade"], tmp_path, config).returncode == 0
    read_only = f"sqlite:///file:{config.resolve()}/monitor.db?mode=ro&uri=true"
    r = monitor(["run", "--once"], tmp_path, config, MONITOR_DATABASE_URL=read_only)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot be written (" in errors[0] and "readonly database" in errors[0]
    assert feed_server.requests == []  # refused before any work
    r = monitor(["matches"], tmp_path, config, MONITOR_DATABASE_URL=read_only)
    assert r.returncode == 0 and "(none)" in r.stdout, r.stderr


def test_run_once_says_why_it_failed(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", ["http://127.0.0.1:9/down.xml"])
    r = monitor(["run", "--once"], tmp_path, config)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (
        "monitor: error: all 1 feeds failed (each one's error is logged above and shown by "
        "`monitor feeds`)"
    )


def test_start_is_quiet_and_names_the_database(tmp_path: Path, pg_url: str) -> None:
    config = write_config(tmp_path / "config", [])
    (config / "feeds.yaml").write_text("feeds: []\n")
    with_password = pg_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    r = monitor(["run", "--once"], tmp_path, config, MONITOR_DATABASE_URL=with_password)
    assert r.returncode == 0, r.stderr
    assert "alembic" not in r.stderr, r.stderr  # no migration chatter at INFO
    assert f"no feeds in {config.resolve() / 'feeds.yaml'}: nothing to poll" in r.stderr
    assert f"database {with_password.replace('hunter2', '***')}" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr


def test_a_reader_that_stops_early_is_no_error(tmp_path: Path) -> None:
    """`monitor classify big.jsonl | head -1` (or `monitor feeds --format jsonl | head`): the
    reader closing the pipe ends the command quietly, status 0, as a `set -o pipefail`
    script expects, instead of status 1 with nothing said."""
    import json
    import os

    lines = "".join(
        json.dumps({"id": str(n), "title": f"Cessez-le-feu au Haut-Karabakh, jour {n}"}) + "\n"
        for n in range(5000)
    )
    (tmp_path / "in.jsonl").write_text(lines, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "classify", str(tmp_path / "in.jsonl")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert json.loads(first)["id"] == "0" and err == ""


def test_the_readmes_offline_demo_alerts_once_per_story(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """config/demo, as the README runs it (its two feeds served from tests/data; here on the
    test server's port): the Latchine violation carried by both feeds is one alert listing
    both, the CSTO summit one alert, sport and Ukraine none; printed on the terminal."""
    import shutil

    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "config" / "demo", demo)
    feeds = (demo / "feeds.yaml").read_text(encoding="utf-8")
    assert "http://127.0.0.1:8765/caucase_a.xml" in feeds
    for name in ("caucase_a.xml", "caucase_b.xml"):
        feed_server.add("/" + name, (DATA / name).read_bytes())
    (demo / "feeds.yaml").write_text(
        feeds.replace("http://127.0.0.1:8765/", feed_server.url("/")), encoding="utf-8"
    )
    first = monitor(["run", "--once"], tmp_path, demo)
    assert first.returncode == 0, first.stderr
    alerts = [line for line in first.stdout.splitlines() if line.startswith("=== ALERT")]
    assert len(alerts) == 2, first.stdout
    assert any("Latchine" in a for a in alerts) and any("OTSC" in a for a in alerts)
    # the Latchine alert lists both feeds (in the order they answered: either)
    latchine = next(block for block in first.stdout.split("=== ALERT") if "Latchine" in block)
    (sources,) = [line for line in latchine.splitlines() if line.startswith("Sources : ")]
    assert sorted(sources.removeprefix("Sources : ").split(", ")) == ["Fil test A", "Fil test B"]
    assert "PSG" not in first.stdout and "Kiev" not in first.stdout
    again = monitor(["run", "--once"], tmp_path, demo)
    assert again.returncode == 0 and "=== ALERT" not in again.stdout
    assert (demo / "monitor.db").exists()
