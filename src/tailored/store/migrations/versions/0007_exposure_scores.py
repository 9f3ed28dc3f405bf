"""The score each position of an exposure was served with (a JSON list as long as ``items``), which the daily
``psi_scores`` compares with the baseline's; NULL for the exposures logged before."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.add_column("exposures", sa.Column("scores", sa.JSON, nullable=True))
