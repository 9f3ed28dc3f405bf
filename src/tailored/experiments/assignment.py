"""Sticky, deterministic assignment of users to an experiment's arms, with no per-user storage.

A user's arm is a function of (experiment salt, user id) only: a keyed 64-bit hash of the id's characters, mapped to a
uniform number ``u`` in [0, 1) and cut at the arms' cumulative traffic shares. The hash is ours (below), written with
numpy's wrapping ``uint64`` arithmetic over the ids' Unicode code points, so it is the same in every process, on every
platform and under every numpy/Python version (``PYTHONHASHSEED`` plays no part); `tests/experiments` pins golden
values. The key is the first 8 bytes of BLAKE2b of the salt: another salt gives an independent split.

Each step mixes the next two code points into the state with MurmurHash3's 64-bit finaliser (``fmix64``, a bijection
with full avalanche), only for ids that still have characters, so an id hashes the same whatever the width of the
batch it comes in; the id's length is mixed in last. A long-running holdout (non-personalised lists, measuring the
engine's own value) is drawn with its own salt, before the arms, so it is the same users across experiments.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tailored.errors import ConfigError

HOLDOUT = "holdout"
EXCLUDED = "excluded"
HOLDOUT_SALT = "tailored-holdout"
"""The holdout's own salt: the same users are held out of every experiment."""

_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SHIFT_33 = np.uint64(33)
_SHIFT_32 = np.uint64(32)
_SHIFT_11 = np.uint64(11)
_MASK, _GOLDEN_INT = (1 << 64) - 1, 0x9E3779B97F4A7C15


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser: a bijection of uint64 whose every output bit depends on every input bit."""
    x = x ^ (x >> _SHIFT_33)
    x = x * _FMIX_1
    x = x ^ (x >> _SHIFT_33)
    x = x * _FMIX_2
    return x ^ (x >> _SHIFT_33)


@functools.lru_cache(maxsize=64)
def salt_key(salt: str) -> int:
    """The 64-bit key of a salt: the first 8 bytes (little-endian) of its UTF-8 BLAKE2b digest."""
    return int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), "little")


def hash_ids(user_ids: Iterable[object] | np.ndarray, salt: str) -> np.ndarray:
    """The keyed 64-bit hash (uint64) of each id's text (``str(id)``: 42 and "42" hash alike), vectorised."""
    text = np.asarray(user_ids)
    if text.dtype.kind != "U":
        text = text.astype(str)
    text = np.ascontiguousarray(text.reshape(-1), dtype=text.dtype.newbyteorder("="))
    width = text.dtype.itemsize // 4
    lengths = np.char.str_len(text).astype(np.uint64)
    points = text.view(np.uint32).reshape(len(text), width).astype(np.uint64)
    if width % 2:
        points = np.pad(points, ((0, 0), (0, 1)))
    state = np.full(len(text), np.uint64(salt_key(salt)), np.uint64)
    with np.errstate(over="ignore"):
        for step in range(points.shape[1] // 2):
            word = points[:, 2 * step] | (points[:, 2 * step + 1] << _SHIFT_32)
            mixed = _fmix64((state ^ word) * _GOLDEN)
            active = lengths > np.uint64(2 * step)
            state = mixed if active.all() else np.where(active, mixed, state)
        return _fmix64(state ^ (lengths * _GOLDEN))


def _fmix64_one(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK
    return x ^ (x >> 33)


def hash_id(user_id: object, salt: str) -> int:
    """`hash_ids` of one id in plain integers (the request path: a fraction of the arrays' fixed cost)."""
    text = str(user_id)
    points = [ord(character) for character in text] + [0] * (len(text) % 2)
    state = salt_key(salt)
    for step in range(0, len(points), 2):
        state = _fmix64_one(((state ^ (points[step] | (points[step + 1] << 32))) * _GOLDEN_INT) & _MASK)
    return _fmix64_one(state ^ ((len(text) * _GOLDEN_INT) & _MASK))


def uniform(user_ids: Iterable[object] | np.ndarray, salt: str) -> np.ndarray:
    """A number in [0, 1) per id from its keyed hash (the top 53 bits: exact in float64)."""
    return (hash_ids(user_ids, salt) >> _SHIFT_11).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class Assignment:
    """An experiment's split: ``arms`` maps each arm's name to its traffic share, whole percentages summing to 100.

    ``holdout`` (a fraction in [0, 1)) of all users, drawn with `HOLDOUT_SALT`, see non-personalised lists and are in
    no arm; ``excluded`` ids (users who opted out) are in no arm and not held out.
    """

    salt: str
    arms: Mapping[str, int]
    holdout: float = 0.0
    excluded: frozenset[str] = field(default_factory=frozenset)
    _cuts: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.salt:
            raise ConfigError("Experiment salt is empty: give each experiment its own salt (e.g. its name).")
        if len(self.arms) < 1:
            raise ConfigError("Experiment 'arms' is empty: give at least one arm, e.g. {'control': 50, 'treatment': "
                              "50}.")
        for name, share in self.arms.items():
            if isinstance(share, bool) or not isinstance(share, int | np.integer) or share < 0:
                raise ConfigError(f"Traffic share of arm {name!r} is {share!r}: give a whole percentage >= 0.")
            if name in (HOLDOUT, EXCLUDED) and self.holdout:
                raise ConfigError(f"Arm name {name!r} is reserved while a holdout fraction is set: rename the arm.")
        total = sum(int(share) for share in self.arms.values())
        if total != 100:
            shares = ",".join(str(share) for share in self.arms.values())
            raise ConfigError(f"Traffic shares {shares} sum to {total}, not 100: fix the 'traffic' field so the arms' "
                              "percentages sum to 100.")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"Holdout fraction is {self.holdout}: give a fraction in [0, 1), e.g. 0.02.")
        object.__setattr__(self, "excluded", frozenset(str(user) for user in self.excluded))
        object.__setattr__(self, "_cuts", (np.cumsum([int(share) for share in self.arms.values()]) / 100.0).tolist())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.arms)

    def codes(self, user_ids: Iterable[object] | np.ndarray) -> np.ndarray:
        """Each id's arm as an index into `names`; -1 for excluded ids, -2 for the holdout."""
        ids = np.asarray(user_ids)
        ids = ids.astype(str) if ids.dtype.kind != "U" else ids
        codes = np.searchsorted(self._cuts, uniform(ids, self.salt), side="right").astype(np.int64)
        if self.holdout:
            codes[uniform(ids, HOLDOUT_SALT) < self.holdout] = -2
        if self.excluded:
            codes[np.isin(ids, np.array(sorted(self.excluded)))] = -1
        return codes

    def assign(self, user_ids: Iterable[object] | np.ndarray) -> np.ndarray:
        """Each id's arm name (object array), `HOLDOUT` or `EXCLUDED`."""
        labels = np.array([*self.names, HOLDOUT, EXCLUDED], dtype=object)
        return labels[self.codes(user_ids)]

    def arm_of(self, user_id: object) -> str:
        """One user's arm, as `assign` gives it, in plain integers (the service's path, per request)."""
        text = str(user_id)
        if text in self.excluded:
            return EXCLUDED
        if self.holdout and (hash_id(text, HOLDOUT_SALT) >> 11) * 2.0**-53 < self.holdout:
            return HOLDOUT
        return self.names[bisect.bisect_right(self._cuts, (hash_id(text, self.salt) >> 11) * 2.0**-53)]
