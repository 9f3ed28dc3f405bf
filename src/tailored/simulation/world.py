"""A simulated shop with hidden ground truth, following the position-based click model of PROTOCOLS.md.

Each user ``u`` has a latent taste ``x_u`` and each item ``i`` a latent vector ``v_i`` and an appeal ``a_i``; the
user's attraction to the item is ``r(u, i) = sigmoid(bias + x_u . v_i + a_i)``. A list of ``k`` items is examined
position by position with decreasing probabilities ``theta_p = p ** -position_decay`` (1 = top) and the item at
position ``p`` is clicked with probability ``theta_p * r(u, i)``, independently across positions. A click converts
into a purchase with a probability that falls with the item's price (more steeply for price-sensitive users); the
revenue of a purchase is the price.

Items carry observable attributes correlated with their latent factors, so a model of attributes predicts part of
a new item's attraction: ``category`` (the item's vector is its category's centre plus noise, and its appeal leans
on its category's) and ``price`` (its logarithm follows the category's price level and the item's first latent
factor). Time runs over the simulated run as a fraction ``0..1``; the history the model is trained on comes before
it (negative times).

Scenarios (`WorldSpec.scenario`):

- ``static``: every item is in the catalogue from the start, tastes are stable.
- ``new-items``: a fifth of the catalogue (``new_share``) arrives after training, in waves over the first quarter of
  the run, known to the engine only by its attributes; new items are on average more appealing (``new_appeal``, on
  the logit scale) than the old ones -- a fresh collection that exploration should find.
- ``drift``: tastes, stable over the history, rotate slowly once the run starts: ``x_u(t) = x_u cos(drift t) +
  y_u sin(drift t)`` with ``y_u`` a second taste drawn like the first, so the history grows stale as the run goes
  on (by its end, with the default quarter turn, tastes are ``y_u``: unrelated to the history).

The ground truth lives in the `World`'s private arrays: drivers read attractions through `World.attraction` to
draw clicks and compute regret, and never hand anything but the engine's own candidates to a policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.errors import ConfigError

SCENARIOS = ("static", "new-items", "drift")
CATEGORY = "category"
PRICE = "price"
START = 1_767_225_600.0
"""Unix time of the run's start (2026-01-01 00:00 UTC); the history lies before it."""
RUN_SECONDS = 86_400.0
"""The run's duration in simulated seconds (time fraction 1)."""
ARRIVAL_WAVES = 4
"""New items arrive in this many waves, evenly spread over the first ``ARRIVAL_SPAN`` of the run."""
ARRIVAL_SPAN = 0.25
HISTORY_SOURCES = (0.4, 0.3, 0.3)
"""Shares of the history's lists shown among popular items, at random, and by a previous recommender."""
HISTORY_POOL = 40
HISTORY_NOISE = 1.5
"""The previous recommender's error: the standard deviation of the noise on the logits it ranks by."""


@dataclass(frozen=True)
class WorldSpec:
    """The world's size and shape; the same spec (and seed) builds the same world."""

    scenario: str = "new-items"
    users: int = 2_000
    items: int = 1_000
    categories: int = 20
    factors: int = 8
    seed: int = 0
    new_share: float = 0.2
    """new-items: the share of the catalogue that arrives after training."""
    new_appeal: float = 0.4
    """new-items: how much more appealing new items are on average (logit scale)."""
    drift: float = float(np.pi / 2)
    """drift: the angle (radians) tastes rotate by over the run."""
    position_decay: float = 0.8
    """theta_p = p ** -position_decay."""
    taste: float = 1.2
    """The spread of users' tastes (standard deviation of each factor): how much of a click's odds is the user's
    own taste rather than the item's appeal (and so how much drifting tastes cost a model that is not retrained)."""
    history_lists: int = 30
    """Lists shown per user (on average) in the history before training."""
    history_span: float = 1.0
    """How long the history lasts, in run lengths, before the run starts."""

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"Unknown scenario {self.scenario!r}: use one of {', '.join(SCENARIOS)}.")
        for name in ("users", "items", "categories", "factors", "history_lists"):
            if getattr(self, name) < 1:
                raise ConfigError(f"World {name}={getattr(self, name)} must be at least 1.")
        if not 0 < self.new_share < 1:
            raise ConfigError(f"World new_share={self.new_share} must be in (0, 1).")
        if self.scenario == "new-items" and round(self.items * self.new_share) < 1:
            raise ConfigError(f"World items={self.items} x new_share={self.new_share} leaves no new item: raise "
                              "either.")
        if self.items < 2 * self.categories:
            raise ConfigError(f"World items={self.items} must be at least twice categories={self.categories}.")
        if not self.position_decay >= 0 or not self.history_span > 0 or not self.taste >= 0:
            raise ConfigError("World position_decay and taste must be >= 0 and history_span > 0.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class World:
    """The hidden truth of one `WorldSpec` and what the engine may see of it: ids, attributes (`item_table`),
    arrival times and the history (`history`). Built once, vectorised, from ``spec.seed``."""

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng([spec.seed, 27])
        n_users, n_items, d = spec.users, spec.items, spec.factors
        self.user_ids = np.array([f"u{index:06d}" for index in range(n_users)], dtype=object)
        self.item_ids = np.array([f"i{index:06d}" for index in range(n_items)], dtype=object)
        self.categories = rng.integers(0, spec.categories, n_items)
        self.categories[: spec.categories] = np.arange(spec.categories)  # every category has an item
        centres = rng.normal(0.0, 1.0, (spec.categories, d))
        self._items = (0.75 * centres[self.categories] + 0.66 * rng.normal(0.0, 1.0, (n_items, d))) / np.sqrt(d)
        category_appeal = rng.normal(0.0, 0.5, spec.categories)
        self._appeal = category_appeal[self.categories] + rng.normal(0.0, 0.7, n_items)
        price_level = rng.normal(0.0, 0.6, spec.categories)
        log_price = 3.0 + price_level[self.categories] + 1.5 * self._items[:, 0] + rng.normal(0.0, 0.3, n_items)
        self.prices = np.round(np.exp(log_price), 2)
        self._users = rng.normal(0.0, 1.0, (n_users, d)) * spec.taste
        self._users_later = rng.normal(0.0, 1.0, (n_users, d)) * spec.taste
        self._bias = -4.0
        self._price_sensitivity = np.abs(rng.normal(0.8, 0.4, n_users))
        self._log_price_mean = float(np.log(self.prices).mean())
        self.activity = rng.lognormal(0.0, 1.0, n_users)
        self.activity /= self.activity.sum()
        self.arrival = np.zeros(n_items)
        """Run fraction at which each item enters the catalogue (0: known at training)."""
        if spec.scenario == "new-items":
            new = rng.permutation(n_items)[: round(n_items * spec.new_share)]
            new = new[~np.isin(new, np.arange(spec.categories))]  # every category keeps a trained item
            waves = rng.integers(0, ARRIVAL_WAVES, len(new))
            self.arrival[new] = (waves + 1e-9) * ARRIVAL_SPAN / ARRIVAL_WAVES
            self._appeal[new] += spec.new_appeal
        self.new = self.arrival > 0
        self._history_seed = [spec.seed, 28]

    # -- what the engine may see ---------------------------------------------------------------------------------

    def item_table(self, items: np.ndarray | None = None) -> pd.DataFrame:
        """``item_id, category, price`` of these items (world indices; default: all)."""
        items = np.arange(self.spec.items) if items is None else np.asarray(items)
        return pd.DataFrame({ITEM_ID: self.item_ids[items], CATEGORY: [f"c{c:02d}" for c in self.categories[items]],
                             PRICE: self.prices[items]})

    def trained_items(self) -> np.ndarray:
        """The items in the catalogue at training (world indices)."""
        return np.flatnonzero(~self.new)

    def arrivals(self) -> list[tuple[float, np.ndarray]]:
        """``(run fraction, items)`` of each wave of new items, in time order."""
        moments = np.unique(self.arrival[self.new])
        return [(float(moment), np.flatnonzero(self.arrival == moment)) for moment in moments]

    def available(self, moment: float) -> np.ndarray:
        """Which items are in the catalogue at this run fraction."""
        return self.arrival <= moment

    def item_index(self, item_ids: np.ndarray) -> np.ndarray:
        """World indices of external item ids (``i000123`` -> 123); -1 for ids the world does not hold."""
        ids = pd.Series(np.asarray(item_ids, dtype=object)).astype(str)
        numbers = pd.to_numeric(ids.str.slice(1), errors="coerce").to_numpy()
        valid = ids.str.startswith("i").to_numpy() & np.isfinite(numbers) & (numbers >= 0) & (numbers < self.spec.items)
        return np.where(valid, np.nan_to_num(numbers, nan=-1), -1).astype(np.int64)

    def history(self) -> pd.DataFrame:
        """The interactions before the run, for training: lists of ``k = 10`` trained items shown to users (by
        `HISTORY_SOURCES`: among the popular items, at random, or by a previous recommender -- a random draw from
        the user's ``HISTORY_POOL`` best items by noisy attraction), clicked by the click model. One row per click:
        ``user_id, item_id, timestamp, event_type="click", value=1``, then one per purchase (``event_type="purchase"``,
        ``value`` the price), in time order."""
        spec, k = self.spec, 10
        rng = np.random.default_rng(self._history_seed)
        n_lists = spec.history_lists * spec.users
        users = rng.choice(spec.users, n_lists, p=self.activity)
        users[: spec.users] = np.arange(spec.users)  # everyone has a history
        moments = -spec.history_span * rng.random(n_lists)
        trained = self.trained_items()
        popular = np.exp(self._appeal[trained] - self._appeal[trained].max())
        # the previous recommender's pool per user: the trained items it scored best, with errors (noisy logits)
        noisy = self._logits(np.arange(spec.users), 0.0, trained) + rng.normal(0.0, HISTORY_NOISE,
                                                                                (spec.users, len(trained)))
        pool_size = min(HISTORY_POOL, len(trained))
        pool = trained[np.argpartition(-noisy, pool_size - 1, axis=1)[:, :pool_size]]
        picks = np.argsort(rng.random((n_lists, pool_size)), axis=1)[:, : min(k, pool_size)]
        personal = pool[users[:, None], picks]
        if personal.shape[1] < k:
            personal = np.hstack([personal, rng.choice(trained, (n_lists, k - personal.shape[1]))])
        source = rng.choice(3, (n_lists, 1), p=HISTORY_SOURCES)
        items = np.where(source == 0, rng.choice(trained, (n_lists, k), p=popular / popular.sum()),
                         np.where(source == 1, rng.choice(trained, (n_lists, k)), personal))
        clicks = rng.random((n_lists, k)) < self.theta(k) * self.attraction(users[:, None], items, moments[:, None])
        bought = clicks & (rng.random((n_lists, k)) < self.conversion(users[:, None], items))
        rows, columns = np.nonzero(clicks)
        bought_rows, bought_columns = np.nonzero(bought)
        frame = pd.concat([
            self._events(users[rows], items[rows, columns], moments[rows], "click", np.ones(len(rows))),
            self._events(users[bought_rows], items[bought_rows, bought_columns], moments[bought_rows], "purchase",
                         self.prices[items[bought_rows, bought_columns]]),
        ], ignore_index=True)
        return frame.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)

    def training_clicks(self) -> pd.DataFrame:
        """The history's clicks as the interactions a model is trained on: ``user_id, item_id, timestamp``."""
        history = self.history()
        return history[history[EVENT_TYPE] == "click"][[USER_ID, ITEM_ID, TIMESTAMP]].reset_index(drop=True)

    def _events(self, users: np.ndarray, items: np.ndarray, moments: np.ndarray, kind: str, values: np.ndarray
                ) -> pd.DataFrame:
        return pd.DataFrame({USER_ID: self.user_ids[users], ITEM_ID: self.item_ids[items],
                             TIMESTAMP: self.timestamp(moments), EVENT_TYPE: kind, VALUE: values.astype(np.float64)})

    @staticmethod
    def timestamp(moments: np.ndarray) -> np.ndarray:
        """Unix seconds of run fractions."""
        return START + RUN_SECONDS * np.asarray(moments, np.float64)

    # -- the hidden truth (drivers only) ----------------------------------------------------------------------------

    def theta(self, k: int) -> np.ndarray:
        """The examination probability of positions 1..k."""
        return np.arange(1, k + 1, dtype=np.float64) ** -self.spec.position_decay

    def tastes(self, users: np.ndarray, moments: np.ndarray) -> np.ndarray:
        """Users' latent tastes at run fractions (broadcast together; drift rotates them from the run's start)."""
        users, moments = np.asarray(users), np.asarray(moments, np.float64)
        if self.spec.scenario != "drift":
            return self._users[users]
        angle = (self.spec.drift * np.maximum(moments, 0.0))[..., None]
        return self._users[users] * np.cos(angle) + self._users_later[users] * np.sin(angle)

    def _logits(self, users: np.ndarray, moment: float, items: np.ndarray) -> np.ndarray:
        """Users x items logits of the attraction at one run fraction."""
        taste = self.tastes(users, np.full(len(users), moment))
        return self._bias + taste @ self._items[items].T + self._appeal[items]

    def attraction(self, users: np.ndarray, items: np.ndarray, moments: np.ndarray | float = 0.0) -> np.ndarray:
        """r(u, i) of broadcast (users, items, moments) arrays."""
        users, items = np.asarray(users), np.asarray(items)
        moments = np.broadcast_to(np.asarray(moments, np.float64), np.broadcast_shapes(users.shape, np.shape(moments)))
        taste = self.tastes(users, moments)
        logits = self._bias + np.einsum("...d,...d->...", taste, self._items[items]) + self._appeal[items]
        return 1.0 / (1.0 + np.exp(-logits))

    def conversion(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(purchase | click) of broadcast (users, items) arrays: falls with the price, faster for price-sensitive
        users."""
        relative = np.log(self.prices[np.asarray(items)]) - self._log_price_mean
        return 1.0 / (1.0 + np.exp(2.0 + self._price_sensitivity[np.asarray(users)] * relative))

    def best(self, users: np.ndarray, moments: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The oracle: for each (user, moment), the ``k`` available items of highest attraction, best first, and
        their attractions (``-1`` / 0 past the catalogue's size)."""
        users, moments = np.asarray(users), np.asarray(moments, np.float64)
        k_found = min(k, self.spec.items)
        logits = (self._bias + self.tastes(users, moments) @ self._items.T + self._appeal).astype(np.float64)
        logits[self.arrival[None, :] > moments[:, None]] = -np.inf
        top = np.argpartition(-logits, k_found - 1, axis=1)[:, :k_found]
        order = np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        values = 1.0 / (1.0 + np.exp(-np.take_along_axis(logits, top, axis=1)))
        values[~np.isfinite(np.take_along_axis(logits, top, axis=1))] = 0.0
        items = np.full((len(users), k), -1, np.int64)
        attraction = np.zeros((len(users), k))
        items[:, :k_found], attraction[:, :k_found] = top, values
        return items, attraction


def world_of(scenario: str = "new-items", seed: int = 0, **sizes: Any) -> World:
    """A `World` of this scenario and seed (``users``, ``items``... as in `WorldSpec`)."""
    return World(WorldSpec(scenario=scenario, seed=seed, **sizes))
