"""Pseudonymised user ids: the id a store keeps for a user, the check value the database records of the key, the
fingerprints of erased users, and the refusal of a store or a model that does not match the database's key."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailored.errors import ConfigError

PSEUDONYM = re.compile(r"[0-9a-f]{32}")
"""The shape of a pseudonymised user id (`Pseudonyms.user_key`)."""


@dataclass(frozen=True)
class Pseudonyms:
    """User ids under ``key`` (HMAC-SHA256), or in clear without one."""

    key: str | None

    def user_key(self, user_id: str) -> str:
        """The id stored for a user: the id itself, or its keyed hash when pseudonymisation is on."""
        if self.key is None:
            return str(user_id)
        return hmac.new(self.key.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()[:32]

    def check_value(self) -> str:
        """What the database records of the key: "" without one, else its HMAC of a constant."""
        if self.key is None:
            return ""
        return hmac.new(self.key.encode(), b"tailored-pseudonym-check", hashlib.sha256).hexdigest()

    def fingerprint(self, audit_key: bytes, stored_id: str) -> str:
        """HMAC-SHA256 under the installation's random secret (`schema.AUDIT_SECRET`) of the fingerprint of revision
        0002 (keyed by the pseudonym key, else a constant), so that the erasures made before it still hold."""
        legacy = hmac.new((self.key or "tailored-audit").encode(), stored_id.encode(), hashlib.sha256).hexdigest()
        return hmac.new(audit_key, legacy.encode(), hashlib.sha256).hexdigest()

    def check(self, recorded: str, where: str) -> None:
        """Refuse a store whose key is not the one ``recorded`` in the database at ``where``."""
        if recorded == self.check_value():
            return
        if not recorded:
            raise ConfigError(f"The database {where} stores user ids in clear, but TAILORED_PSEUDONYM_KEY is set: "
                              "unset it (ids stored in clear cannot be pseudonymised in place; a new database can be).")
        if self.key is None:
            raise ConfigError(f"The database {where} stores pseudonymised user ids: set TAILORED_PSEUDONYM_KEY to "
                              "its key (without it no user can be found, served or erased by id).")
        raise ConfigError(f"TAILORED_PSEUDONYM_KEY is not the key the database {where} was pseudonymised with: set "
                          "the right one (with another key no user can be found, served or erased by id).")

    def check_held(self, held: Sequence[str], where: str) -> None:
        """Refuse a store whose key does not suit the user ids ``held`` by a database that records nothing yet."""
        pseudonymised = bool(held) and all(PSEUDONYM.fullmatch(user) for user in held)
        if held and pseudonymised != (self.key is not None):
            self.check("unknown key" if pseudonymised else "", where)

    def check_model_users(self, user_ids: np.ndarray, model: str) -> None:
        """Refuse a model whose users cannot be this store's: with a key, requests are mapped to pseudonyms, so a
        model trained on ids in clear would give every user the cold-start answer. Judged on the shape of (up to
        10,000 of) its user ids: most must look like pseudonyms."""
        sample = pd.Series(user_ids[:10_000], dtype=str)
        if self.key is None or sample.empty:
            return
        clear = 1.0 - sample.str.fullmatch(PSEUDONYM.pattern).mean()
        if clear > 0.5:
            raise ConfigError(f"The model {model} was trained on user ids in clear ({clear:.0%} of its users are not "
                              "pseudonyms), but TAILORED_PSEUDONYM_KEY is set: every user would get the cold-start "
                              "answer. Train it on `tailored events export` of this database, or serve without the "
                              "key.")
