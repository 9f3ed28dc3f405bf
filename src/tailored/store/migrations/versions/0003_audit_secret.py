"""A random secret per installation keys the erasure fingerprints (they were keyed by a built-in constant without a
pseudonym key: anyone could re-identify erased users by enumerating ids). The fingerprints already stored are keyed
again with it (`EventStore.subject` chains both keys), so earlier erasures keep holding."""

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    settings = op.create_table("store_settings", sa.Column("name", sa.String(64), primary_key=True),
                               sa.Column("value", sa.String(200), nullable=False))
    secret = secrets.token_hex(32)
    op.bulk_insert(settings, [{"name": "audit_secret", "value": secret}])
    erasures = sa.table("erasures", sa.column("subject"))
    audit_log = sa.table("audit_log", sa.column("id"), sa.column("action"), sa.column("subject"))
    connection = op.get_bind()
    for table, key, where in ((erasures, erasures.c.subject, sa.true()),
                              (audit_log, audit_log.c.id, audit_log.c.action == "erase_user")):
        rows = connection.execute(sa.select(key, table.c.subject).where(where)).all()
        if rows:
            rekeyed = [{"row": row, "rekeyed": hmac.new(secret.encode(), subject.encode(), hashlib.sha256).hexdigest()}
                       for row, subject in rows]
            connection.execute(table.update().where(key == sa.bindparam("row")).values(subject=sa.bindparam("rekeyed")),
                               rekeyed)
    op.create_index("ix_erasures_erased_at", "erasures", ["erased_at"])  # the services' polls
