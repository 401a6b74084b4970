"""No target secret in anything printed, logged (DEBUG included) or stored: a real loopback
webhook with a password in its URL (refusing posts, so that an error is stored) and a real SMTP
server with AUTH, `monitor run --once` and `monitor notify test` at MONITOR_LOG_LEVEL=DEBUG,
then stdout, stderr and the database files are searched for the secrets."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config

pytestmark = pytest.mark.slow
WEBHOOK_SECRET = "Wh00kS3cretPass"
SMTP_SECRET = "Smtp5ecretPass"
PATH_SECRET = "Mm0stT0kenSecret"  # in the request path: apprise and urllib3 log it at DEBUG


class AuthSink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_with_auth() -> Iterator[tuple[AuthSink, int]]:
    """aiosmtpd offering AUTH without TLS (loopback only), accepting our user and password."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    sink = AuthSink()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_SECRET.encode()
        if ok:
            sink.logins.append((data.login, data.password))
        return AuthResult(success=ok)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield sink, port
    controller.stop()


def secret_forms() -> list[bytes]:
    out = []
    for secret in (WEBHOOK_SECRET, SMTP_SECRET, PATH_SECRET):
        out += [secret.encode(), base64.b64encode(secret.encode())]
    return out


def test_no_secret_in_output_logs_or_database(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook: Webhook,
    smtp_with_auth: tuple[AuthSink, int],
) -> None:
    sink, smtp_port = smtp_with_auth
    webhook.down = True  # every post refused: the delivery fails and its error is stored
    hook_url = f"json://desk:{WEBHOOK_SECRET}@127.0.0.1:{webhook.port}/hook"
    mail_url = (
        f"mailto://desk:{SMTP_SECRET}@127.0.0.1:{smtp_port}"
        "?from=monitor@example.org&to=desk@example.org"
    )
    path_url = f"mmost://127.0.0.1:{webhook.port}/{PATH_SECRET}"
    feed = feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes())
    config = write_config(tmp_path / "config", [feed], [hook_url, mail_url, path_url])
    db = tmp_path / "m.db"
    env = monitor_env(config, f"sqlite:///{db}", MONITOR_LOG_LEVEL="DEBUG")

    def monitor(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "monitor", *args], env=env, capture_output=True, timeout=180
        )

    run = monitor("run", "--once")
    test = monitor("notify", "test")
    outputs = {
        "run stdout": run.stdout,
        "run stderr": run.stderr,
        "notify test stdout": test.stdout,
        "notify test stderr": test.stderr,
    }
    # What happened is what this test means to look at.
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert sink.logins and sink.messages, "the mail target (with its password) was used"
    assert webhook.refused >= 4, "the webhook targets (with their secrets) were used and failed"
    # apprise's own DEBUG records are logged: these lines print the URL posted to.
    assert b"JSON POST URL" in run.stderr and b"Mattermost webhook POST URL" in run.stderr
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        rows = c.execute(text("SELECT target, status, last_error FROM deliveries")).all()
    engine.dispose()
    failed = [r for r in rows if r.last_error]
    assert {r.target.split(":")[0] for r in failed} == {"json", "mmost"}, rows
    # notify test names the failing target and says apprise's reason (item 15).
    assert test.returncode == 1
    lines = test.stdout.decode().splitlines()
    assert any(
        line.startswith("FAILED  json://desk:****@") and "(apprise: " in line for line in lines
    ), lines
    assert any(line.startswith("ok      mailto://desk:****@") for line in lines), lines
    # And the secrets appear nowhere.
    files = {p.name: p.read_bytes() for p in tmp_path.glob("m.db*")}
    for where, data in {**outputs, **files}.items():
        for secret in secret_forms():
            assert secret not in data, f"{secret!r} in {where}"


def test_migration_0002_hides_raw_target_urls_of_older_databases(db_url: str) -> None:
    """Databases written before keys were private hold raw URLs in deliveries; the migration
    turns them into Target.key (privacy form) and scrubs last_error."""
    from alembic import command

    from monitor.store import Database
    from monitor.store.db import alembic_config, upgrade
    from monitor.targets import make_target

    database = Database(db_url)
    raw = f"json://desk:{WEBHOOK_SECRET}@127.0.0.1:9/hook?+X-Token=abc"
    other = f"json://desk:{WEBHOOK_SECRET}@127.0.0.1:9/hook"  # same privacy form as `raw`
    now = datetime.now(UTC).replace(tzinfo=None)
    with database.engine.connect() as conn:
        cfg = alembic_config(database.engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
        conn.execute(
            text(
                "INSERT INTO stories (id, title, title_signature, body_signature, first_seen) "
                "VALUES (1, 't', '', '', :n), (2, 'u', '', '', :n)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO items (id, key, title, summary, content, first_seen, story_id) "
                "VALUES (1, 'k1', 't', '', '', :n, 1), (2, 'k2', 'u', '', '', :n, 2)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO matches (id, item_id, story_id, topics, scores, evidence, "
                "explanation, score, created_at) VALUES "
                "(1, 1, 1, '[]', '{}', '[]', '', 1, :n), (2, 2, 2, '[]', '{}', '[]', '', 1, :n)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO alerts (id, story_id, match_id, created_at) "
                "VALUES (1, 1, 1, :n), (2, 2, 2, :n)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (alert_id, target, status, attempts, next_attempt_at, "
                "last_error, created_at) VALUES "
                "(1, :raw, 'pending', 2, :n, :err, :n), "
                "(1, :other, 'sent', 1, :n, NULL, :n), "
                "(2, :raw, 'dead', 9, :n, :err, :n), "
                "(2, 'desk-mailbox', 'sent', 1, :n, NULL, :n)"
            ),
            {"raw": raw, "other": other, "n": now, "err": f"ConnectionError: {raw} refused"},
        )
        conn.commit()
    upgrade(database.engine)
    key = make_target(raw, "test").key
    assert WEBHOOK_SECRET not in key
    with database.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT alert_id, target, status, last_error FROM deliveries ORDER BY id")
        ).all()
    database.dispose()
    assert [(r.alert_id, r.target, r.status) for r in rows] == [
        (1, key, "sent"),  # two raw forms of one target for one alert: the sent row is kept
        (2, key, "dead"),
        (2, "desk-mailbox", "sent"),
    ]
    assert rows[1].last_error == f"ConnectionError: {key} refused"
    for r in rows:
        assert WEBHOOK_SECRET not in f"{r.target} {r.last_error}"


@pytest.mark.parametrize(
    ("url", "secrets", "kept"),
    [
        ("json://desk:Pa55word@127.0.0.1:9/hook?+X-Token=HeaderTok", ["Pa55word", "HeaderTok"], []),
        ("tgram://123456789:AAHbotT0ken/4242", ["123456789", "AAHbotT0ken"], ["4242"]),
        ("slack://TokA1/TokB2/TokC3/#general", ["TokA1", "TokB2", "TokC3"], ["general"]),
        (
            "mailto://desk:Sm7pPass@127.0.0.1:25?from=monitor@example.org&to=desk@example.org",
            ["Sm7pPass"],
            ["monitor", "example.org", "desk"],
        ),
    ],
)
def test_redactor_masks_what_the_privacy_form_hides(
    url: str, secrets: list[str], kept: list[str]
) -> None:
    from monitor.redact import Redactor
    from monitor.targets import make_target

    target = make_target(url, "test")
    r = Redactor([target])
    line = f"POST {url} then https://api.example.org/bot{'/'.join(secrets)}/send"
    shown = r.redact(line)
    assert target.key in shown and url not in shown, shown
    for secret in secrets:
        assert secret not in shown, shown
    for word in kept:  # ordinary words of the URL are not masked in every other log line
        assert r.redact(f"monitor.run: {word}") == f"monitor.run: {word}"
