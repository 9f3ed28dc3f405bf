"""The store's Alembic revisions, applied in order from ``0001``: append a new one, never edit one. A revision's file
is ``NNNN_what_it_does.py`` and its ``revision`` is ``"NNNN"`` (`tailored.store.migrations.head` reads the files)."""
