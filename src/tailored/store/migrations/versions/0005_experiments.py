"""Experiments: their designs and status (at most one running per surface, by a unique column that is the surface
while running and NULL after), the users excluded from every experiment, and the experiment and arm of each
exposure (NULL for the exposures logged before, and for users in none); the serving latency of each exposure."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("surface", sa.String(100), nullable=False),
        sa.Column("running_on", sa.String(100), nullable=True, unique=True),
        sa.Column("design", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("stopped_at", sa.Float, nullable=True),
        sa.Column("stop_reason", sa.String(200), nullable=True),
    )
    op.create_table(
        "experiment_exclusions",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("excluded_at", sa.Float, nullable=False),
    )
    op.add_column("exposures", sa.Column("experiment", sa.String(100), nullable=True))
    op.add_column("exposures", sa.Column("arm", sa.String(100), nullable=True))
    op.add_column("exposures", sa.Column("latency_ms", sa.Float, nullable=True))
