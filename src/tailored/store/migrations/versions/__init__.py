"""The store's Alembic revisions, applied in order from ``0001``: append a new one, never edit one."""
