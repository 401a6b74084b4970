"""docker-compose.yml uses only commands the CLI has and variables the settings read.
(No Docker engine here: the same commands run natively in tests/integration/test_celery.py.)"""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from monitor.settings import ENV_VARS
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_has_a_healthcheck_or_is_one_shot() -> None:
    for name in ("redis", "postgres", "worker"):
        assert "healthcheck" in COMPOSE["services"][name]
    assert COMPOSE["services"]["migrate"]["restart"] == "no"
    assert "pgdata" in COMPOSE["volumes"]


def test_web_service_serves_the_window_and_is_probed_on_healthz() -> None:
    web = COMPOSE["services"]["web"]
    assert web["command"][:2] == ["monitor", "serve"]
    assert web["restart"] == "unless-stopped"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    port = web["command"][web["command"].index("--port") + 1]
    # Published on the host's loopback only: beyond it, set MONITOR_WEB_TOKEN first.
    assert web["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_long_running_services_are_restarted() -> None:
    """A worker can exit on a broker outage (kombu's 'Unrecoverable error' while restoring
    unacknowledged messages): the restart policy is part of the design, so it is checked."""
    for name in ("worker", "beat", "web"):
        assert COMPOSE["services"][name]["restart"] == "unless-stopped", name


def test_commands_exist() -> None:
    for name, svc in COMPOSE["services"].items():
        cmd = svc.get("command")
        if not cmd or name in ("redis", "postgres", "flower"):
            continue
        if cmd[0] == "monitor":
            r = subprocess.run(
                [sys.executable, "-m", "monitor", *cmd[1:-1], cmd[-1], "--help"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 0, (name, r.stderr)
        else:
            assert cmd[:3] == ["celery", "-A", "monitor.worker"]
            r = subprocess.run(
                [sys.executable, "-m", *cmd, "--help"], capture_output=True, text=True, timeout=60
            )
            assert r.returncode == 0, (name, r.stderr)
            if "-Q" in cmd:
                from monitor.worker import app

                declared = {q.name for q in app.conf.task_queues}
                assert set(cmd[cmd.index("-Q") + 1].split(",")) == declared


def test_variables_are_read_by_settings() -> None:
    env_example = (ROOT / ".env.example").read_text()
    used = set(re.findall(r"^#?\s*(MONITOR_[A-Z_]+)=", env_example, re.M))
    assert used and used <= set(ENV_VARS)
    for svc in COMPOSE["services"].values():
        for var in svc.get("environment", {}) or {}:
            if var.startswith("MONITOR_"):
                assert var in ENV_VARS
    # Each documented variable is really read (outside the table that documents it).
    readers = (ROOT / "monitor" / "settings.py").read_text().split("def _env_number")[1]
    readers += (ROOT / "monitor" / "worker.py").read_text()
    for var in ENV_VARS:
        assert f'"{var}"' in readers, var
