"""A new user's mistakes end to end with `monitor run --once`: an alert no target takes is
visible, the targets are edited and it is delivered, once; `monitor deliveries` shows pending,
failed and dead rows and `retry` sends them again; no secret anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config
from tests.integration.test_run_once import run_monitor

SECRET = "s3cretpw"


def rows(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    out = run_monitor(env, "deliveries", *args, "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.slow
def test_unrouted_then_targets_edited_then_failed_dead_retried(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook
) -> None:
    a = feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes())
    b = feed_server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes())
    config = write_config(
        tmp_path / "config", [a, b], [{"url": webhook.url, "tags": ["otsc"], "name": "otsc"}]
    )
    db = tmp_path / "m.db"
    env = monitor_env(config, f"sqlite:///{db}", MONITOR_LOG_LEVEL="DEBUG",
                      MONITOR_RETRY_BASE_SECONDS="0.05")  # fmt: skip
    outputs: list[str] = []

    def run(*args: str, **extra: str) -> Any:
        result = run_monitor({**env, **extra}, *args)
        outputs.append(result.stdout + result.stderr)
        return result

    first = run("run", "--once")
    assert first.returncode == 0, first.stderr
    assert [t for t in webhook.titles() if "OTSC" in t] and len(webhook.titles()) == 1
    assert "no target takes the topics karabakh_ceasefire" in first.stderr
    (unrouted,) = rows(env, "--state", "unrouted")
    assert "Latchine" in unrouted["title"] and unrouted["target"] == "(none)"
    table = run("deliveries")
    assert "unrouted" in table.stdout and "Haut-Karabakh" in table.stdout

    # The user adds a karabakh target (a URL with a password), which is down at first.
    hook2 = webhook.url.replace("json://", f"json://desk:{SECRET}@") + "2"
    (config / "notify.yaml").write_text(
        f"targets:\n  - url: {webhook.url}\n    tags: [otsc]\n    name: otsc\n"
        f"  - url: {hook2}\n    tags: [karabakh_ceasefire]\n",
        encoding="utf-8",
    )
    webhook.down = True
    second = run("run", "--once")
    assert second.returncode == 0, second.stderr
    assert webhook.refused == 1 and len(webhook.titles()) == 1
    (failed,) = rows(env, "--state", "failed")
    assert "Latchine" in failed["title"] and failed["attempts"] == 1 and failed["last_error"]
    assert SECRET not in failed["target"] and "****" in failed["target"]
    assert {r["state"] for r in rows(env) if "Latchine" in r["title"]} == {"rerouted", "failed"}

    # Still down past the give-up time: dead. Then back, and retried by hand.
    dead_run = run("run", "--once", MONITOR_DELIVERY_GIVE_UP_HOURS="0.00001")
    assert dead_run.returncode == 0, dead_run.stderr
    (dead,) = rows(env, "--state", "dead")
    assert dead["id"] == failed["id"]
    bad = run("deliveries", "retry", "999999")
    assert bad.returncode == 2 and "no delivery 999999" in bad.stderr
    sent = next(r for r in rows(env) if r["state"] == "sent")
    not_dead = run("deliveries", "retry", str(sent["id"]))
    assert not_dead.returncode == 2 and "neither dead nor failed" in not_dead.stderr
    assert run("deliveries", "retry").returncode == 2  # an id or --dead
    retried = run("deliveries", "retry", "--dead")
    assert retried.returncode == 0 and "1 deliveries" in retried.stdout
    assert rows(env, "--state", "dead") == []
    webhook.down = False
    third = run("run", "--once")
    assert third.returncode == 0, third.stderr
    assert sum("Latchine" in t for t in webhook.titles()) == 1
    fourth = run("run", "--once")
    assert fourth.returncode == 0
    assert len(webhook.titles()) == 2  # each alert once, to its target

    assert all(SECRET not in out for out in outputs)
    for path in tmp_path.glob("m.db*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_state_choices_are_the_views_states() -> None:
    """`--state` lists its choices literally (no database import for `--help`): they must be
    the states `monitor deliveries` names, in the same order."""
    import click

    from monitor.cli import deliveries
    from monitor.views import DELIVERY_STATES

    option = next(p for p in deliveries.params if p.name == "state")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == DELIVERY_STATES
