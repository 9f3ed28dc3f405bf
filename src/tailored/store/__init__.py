"""The durable side of a running engine: events, users, items, exposures, API keys and the audit log in one SQL
database chosen by URL (SQLite file by default, PostgreSQL in production)."""

from tailored.store.database import DEFAULT_URL, EventStore

__all__ = ["DEFAULT_URL", "EventStore"]
