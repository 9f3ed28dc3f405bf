"""The feedback log: an exposure records the policy that chose it, each position's propensity and the request's
context; an event may name the exposure it answers. The exposures logged before were greedy lists: policy "greedy",
propensity 1 at every position, no context (filled in by one UPDATE, in the database's own JSON functions)."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
ONES = {  # a JSON list of 1.0, one per element of the row's `items`
    "sqlite": "(select json_group_array(1.0) from json_each(items))",
    "postgresql": "coalesce((select json_agg(1.0) from json_array_elements(items)), '[]'::json)",
}
COLUMNS = (("policy", sa.String(200)), ("propensities", sa.JSON), ("context", sa.JSON))


def upgrade() -> None:
    op.add_column("events", sa.Column("exposure_id", sa.String(64), nullable=True))
    for name, kind in COLUMNS:
        op.add_column("exposures", sa.Column(name, kind, nullable=True))
    op.execute(f"update exposures set policy = 'greedy', propensities = {ONES[op.get_bind().dialect.name]}, "
               "context = '{}'")
    with op.batch_alter_table("exposures") as batch:  # SQLite rebuilds the table; PostgreSQL alters it
        for name, kind in COLUMNS:
            batch.alter_column(name, existing_type=kind, nullable=False)
