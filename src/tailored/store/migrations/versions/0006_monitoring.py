"""Monitoring: the daily production figures (one row per day, metric and group; aggregates, no user ids), one record
per training (fingerprint, quality, bias, evaluation and the difference with the previous one) and the alerts raised
by the rules on the daily figures."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "daily_metrics",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("computed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
    )
    op.create_index("ix_trainings_at", "trainings", ["at"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
    )
    op.create_index("ix_alerts_day", "alerts", ["day"])
