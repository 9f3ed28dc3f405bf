"""Alembic's environment: the revisions run on the connection `tailored.store.migrations.migrate` hands over, inside
its transaction (which holds the write lock), so nothing here opens a connection or commits."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
