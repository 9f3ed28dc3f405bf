"""The feedback log: an exposure records the policy that chose it, each position's propensity and the request's
context; an event may name the exposure it answers. The exposures logged before were greedy lists: policy "greedy",
propensity 1 at every position, no context."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
CHUNK = 5_000


def upgrade() -> None:
    op.add_column("events", sa.Column("exposure_id", sa.String(64), nullable=True))
    for name, kind in (("policy", sa.String(200)), ("propensities", sa.JSON), ("context", sa.JSON)):
        op.add_column("exposures", sa.Column(name, kind, nullable=True))
    exposures = sa.table("exposures", sa.column("exposure_id", sa.String), sa.column("items", sa.JSON),
                         sa.column("policy", sa.String), sa.column("propensities", sa.JSON),
                         sa.column("context", sa.JSON))
    connection = op.get_bind()
    rows = connection.execute(sa.select(exposures.c.exposure_id, exposures.c["items"])).all()
    fill = exposures.update().where(exposures.c.exposure_id == sa.bindparam("row")).values(
        policy="greedy", propensities=sa.bindparam("ones"), context=sa.bindparam("none"))
    for start in range(0, len(rows), CHUNK):
        connection.execute(fill, [{"row": exposure_id, "ones": [1.0] * len(items), "none": {}}
                                  for exposure_id, items in rows[start:start + CHUNK]])
    with op.batch_alter_table("exposures") as batch:  # SQLite rebuilds the table; PostgreSQL alters it
        for name, kind in (("policy", sa.String(200)), ("propensities", sa.JSON), ("context", sa.JSON)):
            batch.alter_column(name, existing_type=kind, nullable=False)
