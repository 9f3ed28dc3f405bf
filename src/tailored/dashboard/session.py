"""The dashboard's session cookie: ``KEY_ID.EXPIRY.SIGNATURE``, an HMAC-SHA256 of the key id and expiry under a key
derived from the installation's secret (`store_settings`), so it cannot be forged or extended. It names the API key
that signed in, never the key itself: every request checks that this key still exists, unrevoked, with the admin
scope, so revoking the key ends its sessions at once."""

from __future__ import annotations

import hashlib
import hmac
import time

import sqlalchemy as sa

from tailored.store import schema
from tailored.store.database import EventStore

COOKIE = "tailored_session"
SESSION_SECONDS = 8 * 3600
ADMIN = "admin"


def session_key(store: EventStore) -> bytes:
    """The signing key of sessions: derived from the installation's secret, so it differs from the erasure key."""
    with store.engine.connect() as connection:
        secret = connection.execute(sa.select(schema.store_settings.c.value).where(
            schema.store_settings.c.name == schema.AUDIT_SECRET)).scalar_one()
    return hmac.new(secret.encode(), b"tailored dashboard session", hashlib.sha256).digest()


def _signature(key: bytes, key_id: str, expiry: int) -> str:
    return hmac.new(key, f"{key_id}.{expiry}".encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, key_id: str, now: float | None = None, seconds: int = SESSION_SECONDS) -> str:
    """The cookie value of a session of ``key_id`` that ends ``seconds`` from ``now``."""
    expiry = int(time.time() if now is None else now) + seconds
    return f"{key_id}.{expiry}.{_signature(key, key_id, expiry)}"


def signed_key_id(key: bytes, cookie: str | None, now: float | None = None) -> str | None:
    """The key id of a well-signed, unexpired cookie; None for anything else (malformed, forged, expired)."""
    parts = (cookie or "").split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    key_id, expiry, signature = parts[0], int(parts[1]), parts[2]
    if not hmac.compare_digest(signature, _signature(key, key_id, expiry)):
        return None
    return key_id if expiry > (time.time() if now is None else now) else None


def key_id_scopes(store: EventStore, key_id: str) -> frozenset[str] | None:
    """The scopes of the unrevoked key ``key_id``; None when it is unknown or revoked."""
    with store.engine.connect() as connection:
        scopes = connection.execute(sa.select(schema.api_keys.c.scopes).where(
            (schema.api_keys.c.key_id == key_id) & ~schema.api_keys.c.revoked)).scalar()
    return None if scopes is None else frozenset(scopes.split(","))
