"""The slate policy a service serves (``--policy``): it decides every list from the model's candidates, with the
request's random stream drawn from the exposure id (`request_rng`: a logged list can be drawn again), and learns
online -- the impressions as each list is served, the attributed clicks as each POST of events is committed. Its
state is a function of the store alone (impressions and attributed rewards, replayed in any order: the policies'
learning is made of order-independent sums), so a restart, or an erasure, rebuilds it from the store.

The `Tally` is an order-independent fingerprint of what was learned (counts and a sum of row hashes): two states
built from the same feedback rows, in whatever order, have the same tally."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from tailored.errors import ConfigError
from tailored.pipeline.slates import ShownList, request_rng, shown
from tailored.policies import Candidates, Feedback, Policy, parse_policy
from tailored.policies.base import spec_of
from tailored.policies.state import item_keys

GREEDY = "greedy"
CONTEXTUAL = frozenset({"linucb"})
"""The policies that learn from ``Feedback.features`` (the user's vector per row: `ServedPolicy.contextual`)."""
CHEAP_SECONDS = 0.0003
"""A choice under this (a moving average) is made on the event loop by the fast lane; a dearer one in the thread
pool, so the loop's other requests do not wait for it."""
POSITION_MIX, REWARD_MIX = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
FOLD_LISTS, FOLD_SECONDS = 64, 0.05
"""The impressions of lists served wait until this many lists or this many seconds to be learnt together (one update
of the state for many lists; the state is sums, so together or one by one gives the same state); rewards are learnt
at once."""
REWARD_SCALE = 1_000_000
"""Rewards enter the tally as integers in millionths (sums of floats would depend on the order)."""


def configured(spec: str, new_item_slots: int | None = None) -> Policy:
    """The policy of ``spec``, with ``new_item_slots`` overriding its own when given (`--new-item-slots`): a
    ConfigError names the field when the spec is bad or the policy has no new-item slots."""
    policy = parse_policy(spec)
    if new_item_slots is None:
        return policy
    if "new_item_slots" not in {each.name for each in dataclasses.fields(policy)}:  # type: ignore[arg-type]
        raise ConfigError(f"--new-item-slots={new_item_slots}: the policy {policy.policy!r} has no new-item slots "
                          "(thompson has): leave the option out or serve --policy thompson.")
    return dataclasses.replace(policy, new_item_slots=new_item_slots)  # type: ignore[type-var]


def window_seconds(hours: float) -> float:
    """The attribution window in seconds; a ConfigError naming the setting unless ``hours`` is positive and finite."""
    if not 0 < hours < float("inf"):
        raise ConfigError(f"--attribution-window-hours={hours} (TAILORED_ATTRIBUTION_WINDOW_HOURS) must be a positive "
                          "number of hours, e.g. 24.")
    return hours * 3600.0


class Tally:
    """What a policy learned, as order-independent sums: impression rows, reward rows, the sum of the rewards (in
    millionths) and a wrapping sum of a hash per row, ``hash(item) * (position * P + reward * R + 1)`` modulo
    2**64 (items' hashes are kept: a dict bounded by the catalogue, as the policy's own state is)."""

    def __init__(self) -> None:
        self.impressions = self.rewards = self.reward_sum = 0
        self.fingerprint = np.uint64(0)
        self.hashes: dict[str, np.uint64] = {}

    def add(self, item_ids: np.ndarray, positions: np.ndarray, rewards: np.ndarray | None) -> None:
        keys = item_keys(item_ids).tolist()
        unknown = sorted(set(keys).difference(self.hashes))  # per distinct new item, not per row
        if unknown:
            self.hashes.update(zip(unknown, pd.util.hash_array(np.array(unknown, dtype=object))))
        hashes = np.fromiter(map(self.hashes.__getitem__, keys), np.uint64, len(keys))
        scaled = (np.zeros(len(keys), np.int64) if rewards is None
                  else np.rint(np.asarray(rewards, np.float64) * REWARD_SCALE).astype(np.int64))
        mixed = (np.asarray(positions, np.uint64) * POSITION_MIX + scaled.astype(np.uint64) * REWARD_MIX
                 + np.uint64(1 if rewards is None else 2))
        with np.errstate(over="ignore"):
            self.fingerprint += (hashes * mixed).sum(dtype=np.uint64)
        if rewards is None:
            self.impressions += len(keys)
        else:
            self.rewards += len(keys)
            self.reward_sum += int(scaled.sum())

    def as_dict(self) -> dict[str, Any]:
        return {"impressions": self.impressions, "rewards": self.rewards,
                "reward_sum": self.reward_sum / REWARD_SCALE, "fingerprint": f"{int(self.fingerprint):016x}"}


class ServedPolicy:
    """The served policy and its online state. ``greedy`` is the model's own list (propensity 1, learns nothing);
    any other policy is stochastic: it chooses per request and learns. Choosing and learning hold one lock; feedback
    waits in ``waiting``: rewards are learnt at once (the POST waits for the lock, so the next list sees them), the
    impressions of served lists in groups (`FOLD_LISTS`, `FOLD_SECONDS`) by the next choice, so that a request pays
    for one update of the state per group of lists, not per list; logging a list on the event loop never updates
    the state (choices, and so updates, are made in the thread pool unless the policy is `cheap`), and the event loop
    never waits for a choice made in the thread pool."""

    def __init__(self, spec: str, new_item_slots: int | None = None, seed: int = 0) -> None:
        policy = configured(spec, new_item_slots)
        self.spec = spec.strip() if new_item_slots is None else spec_of(policy)  # as given: "thompson"
        self.seed = seed
        self.greedy = policy.policy == GREEDY
        self.contextual = policy.policy in CONTEXTUAL
        self.lock = threading.Lock()
        self.waiting: deque[Feedback] = deque()
        self.waiting_since = 0.0  # when the oldest waiting feedback arrived (time.monotonic)
        self.policy, self.tally = policy, Tally()
        self.cost = 0.0  # seconds per choice, a moving average

    @property
    def cheap(self) -> bool:
        """Whether a choice costs less than `CHEAP_SECONDS` (the event loop may then make it)."""
        return self.cost < CHEAP_SECONDS

    @property
    def due(self) -> bool:
        """Whether the waiting impressions are to be learnt now (`FOLD_LISTS` lists, or `FOLD_SECONDS` old)."""
        return bool(self.waiting) and (len(self.waiting) >= FOLD_LISTS
                                       or time.monotonic() - self.waiting_since >= FOLD_SECONDS)

    def choose(self, candidates: Candidates, k: int, exposure_id: str, wait: bool = True) -> ShownList | None:
        """The slate of the request ``exposure_id`` (its random stream: `request_rng`); None when ``wait`` is False
        and the state is being learned or rebuilt (the event loop does not wait: the thread pool answers)."""
        if not self.lock.acquire(blocking=wait):
            return None
        try:
            if self.due:
                self._fold()
            began = time.perf_counter()
            slate = shown(candidates, self.policy, k, request_rng(self.seed, exposure_id))
            self.cost += 0.05 * (time.perf_counter() - began - self.cost)
            return slate
        finally:
            self.lock.release()

    def learn(self, item_ids: np.ndarray, positions: np.ndarray, rewards: np.ndarray | None = None,
              features: np.ndarray | None = None, wait: bool = False) -> None:
        """Fold feedback rows in: impressions (``rewards`` None: these items were shown at these positions, 1 = top)
        or attributed rewards, with the rows' ``features`` for a contextual policy. With ``wait`` (rewards: the
        POST's answer waits) everything waiting is learnt now; otherwise (the impressions of a list, logged on the
        event loop) the rows wait for the next choice that finds them due (`due`), made where choices are made:
        logging a list on the event loop never runs an update of the state (nor a position-bias refit)."""
        if self.greedy or not len(item_ids):
            return
        if not self.waiting:
            self.waiting_since = time.monotonic()
        self.waiting.append(Feedback(np.asarray(item_ids), np.asarray(positions, np.int64),
                                     None if rewards is None else np.asarray(rewards, np.float64), features))
        if wait:
            with self.lock:
                self._fold()

    def _fold(self) -> None:
        """Learn everything waiting (the lock held): the feedback of one kind (impressions or rewards, with or
        without features) in one update, in whatever order it came (the state is sums)."""
        kinds: dict[tuple[bool, bool], list[Feedback]] = {}
        while self.waiting:
            feedback = self.waiting.popleft()
            kinds.setdefault((feedback.rewards is None, feedback.features is None), []).append(feedback)
        for (shown_only, plain), parts in kinds.items():
            feedback = parts[0] if len(parts) == 1 else Feedback(
                np.concatenate([part.item_ids for part in parts]), np.concatenate([part.positions for part in parts]),
                None if shown_only else np.concatenate([part.rewards for part in parts]),  # type: ignore[misc]
                None if plain else np.concatenate([part.features for part in parts]))  # type: ignore[misc]
            self.policy.learn(feedback)
            self.tally.add(feedback.item_ids, feedback.positions, feedback.rewards)

    def rebuild(self, log: Iterable[pd.DataFrame],
                features: Callable[[np.ndarray], np.ndarray | None] = lambda users: None) -> None:
        """A new state from the store's feedback log (chunks of rows ``user_id, item_id, position, click``: each row
        an impression, its click a reward; ``features`` of the rows' users for a contextual policy), swapped in
        whole."""
        policy, tally = parse_policy(self.spec), Tally()
        for chunk in log if not self.greedy else ():
            clicked = chunk["click"].to_numpy() > 0
            vectors = features(chunk["user_id"].to_numpy(object)) if self.contextual else None
            shown = Feedback(chunk["item_id"].to_numpy(object), chunk["position"].to_numpy(np.int64), None, vectors)
            rewarded = Feedback(shown.item_ids[clicked], shown.positions[clicked], chunk["click"].to_numpy(np.float64)[
                clicked], None if vectors is None else vectors[clicked])
            for feedback in (shown, rewarded):
                if len(feedback.item_ids):
                    policy.learn(feedback)
                    tally.add(feedback.item_ids, feedback.positions, feedback.rewards)
        with self.lock:
            self.policy, self.tally = policy, tally
            self.waiting.clear()  # learnt before the rows were read: in the store, so in the new state

    def state(self) -> dict[str, Any]:
        """The spec and the tally of what was learned (`Tally`)."""
        with self.lock:
            self._fold()
            return {"policy": self.spec, **self.tally.as_dict()}
