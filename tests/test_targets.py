"""notify.yaml: tags must name topics, policy keys are checked, secrets never become keys."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.targets import check_tags, load_targets, targets_from_env
from tests.conftest import write_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notify.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_tag_is_a_config_error_naming_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "targets:\n  - url: json://127.0.0.1:9/a\n    tags: [otsc]\n"
        "  - url: json://127.0.0.1:9/b\n    tags: [otsx]\n",
    )
    targets = load_targets(path)
    with pytest.raises(ConfigError, match=r"notify\.yaml:5: tag 'otsx' names no topic"):
        check_tags(targets, ["otsc", "karabakh_ceasefire"])
    check_tags(targets[:1], ["otsc"])  # a known tag is fine


def test_run_with_an_unknown_tag_exits_2_before_any_database_exists(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [])
    (config / "notify.yaml").write_text(
        "targets:\n  - url: json://127.0.0.1:9/a\n    tags: [otsx]\n", encoding="utf-8"
    )
    db = tmp_path / "m.db"
    env = {"MONITOR_CONFIG_DIR": str(config), "MONITOR_DATABASE_URL": f"sqlite:///{db}"}
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "notify.yaml:3: tag 'otsx' names no topic" in r.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("entry", "line", "fragment"),
    [
        ("    max_per_hour: 0\n", 3, "max_per_hour"),
        ("    quiet_hours: 22h-7h\n", 3, "quiet_hours"),
        ("    timezone: Europe/Parsi\n", 3, "timezone"),
        ("    digest_at: '25:00'\n", 3, "digest_at"),
        ("    updates: sometimes\n", 3, "updates"),
        ("    min_score: high\n", 3, "min_score"),
        ("    min_confidence: 80\n", 3, "min_confidence"),
        ("    name: desk\n    min_confidence: -0.1\n", 4, "min_confidence"),
        ("    min_confidence: sure\n", 3, "min_confidence"),
    ],
)
def test_policy_keys_are_checked_with_their_line(
    tmp_path: Path, entry: str, line: int, fragment: str
) -> None:
    path = _write(tmp_path, "targets:\n  - url: json://127.0.0.1:9/a\n" + entry)
    with pytest.raises(ConfigError, match=rf"notify\.yaml:{line}: '{fragment}'"):
        load_targets(path)


def test_policy_keys_are_parsed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "targets:\n  - url: json://127.0.0.1:9/a\n    min_score: 8\n    max_per_hour: 5\n"
        "    min_confidence: 0.8\n    quiet_hours: '22:00-07:00'\n    timezone: Europe/Paris\n    digest_at: '08:00'\n"
        "    updates: message\n",
    )
    (t,) = load_targets(path)
    p = t.policy
    assert (p.min_score, p.max_per_hour, p.timezone, p.updates) == (
        8.0,
        5,
        "Europe/Paris",
        "message",
    )
    assert p.quiet_hours == (time(22), time(7)) and p.digest_at == time(8)
    assert p.min_confidence == 0.8


def test_keys_never_hold_the_secret(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "targets:\n"
        "  - url: tgram://123456789:AAbbSECRETccdd/1234\n"
        "  - url: mailtos://desk:SECRETpw@smtp.example.org?to=d@example.org\n"
        "  - url: json://u:SECRETpw@127.0.0.1:9/hook?+X-Token=SECRETtok\n"
        "  - url: json://127.0.0.1:9/named\n    name: desk\n",
    )
    targets = load_targets(path) + targets_from_env("json://u:SECRETenv@127.0.0.1:9/e")
    assert [t.key for t in targets][-2] == "desk"
    for t in targets:
        assert "SECRET" not in t.key and "SECRET" not in t.safe_url
        assert "SECRET" not in repr(t.key)


def test_two_targets_that_look_alike_need_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "targets:\n  - url: json://u:one@127.0.0.1:9/hook\n  - url: json://u:two@127.0.0.1:9/hook\n",
    )
    with pytest.raises(ConfigError, match="distinct 'name'"):
        load_targets(path)
