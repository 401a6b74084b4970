"""trust: target keys in privacy form, unrouted alerts (issue 10)

Revision ID: 0002
Revises: 0001

Earlier versions keyed a delivery by the target's raw apprise URL (tokens and passwords in
clear) and could copy it into `last_error`. Each such key becomes apprise's privacy form of the
URL without its query (what `Target.key` is now, so pending deliveries still find their
target), and every URL in `last_error` loses its password.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_USERINFO = re.compile(r"(\w[\w+.-]*://[^\s/:@]*):[^\s/@]*@")


def _private_key(url: str) -> str:
    """Target.key of a target without a name: apprise's privacy form, query dropped; when
    apprise does not know the URL (a plugin gone), scheme://host[:port] only."""
    try:
        from monitor.apprise_setup import privacy_url

        safe = privacy_url(url)
    except Exception:
        safe = None
    if safe:
        return safe
    m = re.match(r"^([\w+.-]+)://(?:[^@/]*@)?([^/?#]*)", url)
    return f"{m.group(1)}://{m.group(2)}" if m else "(target)"


def _scrub(text: str, raw: dict[str, str]) -> str:
    for url in sorted(raw, key=len, reverse=True):
        text = text.replace(url, raw[url])
    return _USERINFO.sub(r"\1:****@", text)


def upgrade() -> None:
    conn = op.get_bind()
    deliveries = sa.table(
        "deliveries",
        sa.column("id", sa.Integer),
        sa.column("alert_id", sa.Integer),
        sa.column("target", sa.String),
        sa.column("status", sa.String),
        sa.column("last_error", sa.Text),
    )
    rows = conn.execute(
        sa.select(
            deliveries.c.id,
            deliveries.c.alert_id,
            deliveries.c.target,
            deliveries.c.status,
            deliveries.c.last_error,
        )
    ).all()
    raw = {r.target: _private_key(r.target) for r in rows if "://" in r.target}
    raw = {url: key for url, key in raw.items() if key != url}
    taken = {(r.alert_id, r.target): (r.id, r.status) for r in rows}
    for r in rows:
        target = raw.get(r.target, r.target)
        error = _scrub(r.last_error, raw) if r.last_error else r.last_error
        if target != r.target:
            other = taken.get((r.alert_id, target))
            if other is not None and other[0] != r.id:
                # Two raw URLs of one alert with one privacy form: keep one row, the sent one.
                drop, keep_status = (r.id, other[1]) if other[1] == "sent" else (other[0], r.status)
                conn.execute(sa.delete(deliveries).where(deliveries.c.id == drop))
                if drop == r.id:
                    continue
                taken[(r.alert_id, target)] = (r.id, keep_status)
            else:
                taken[(r.alert_id, target)] = (r.id, r.status)
        if target != r.target or error != r.last_error:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == r.id)
                .values(target=target, last_error=error)
            )


def downgrade() -> None:
    pass  # the secrets are gone on purpose
