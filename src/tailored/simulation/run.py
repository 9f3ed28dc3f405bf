"""Policies run in a `World`: the traffic (common random numbers), the in-process engine driver, the summary and the
report.

Every policy of one comparison faces the same `Traffic`: the same sequence of users and moments, the same uniform
draw per (list, position) deciding a click (``draw < theta_p * r(u, i)``) and the same draw deciding whether a
click converts, and the same exposure ids (so each request's random stream, `request_rng`, is the same too). Two
policies that show the same item at the same position of the same list thus get the same click; a policy run
twice gets the same clicks.

A run records per list the clicks, purchases and revenue it earned, its expected clicks (``sum_p theta_p r``, by
the hidden truth) and the oracle's (the ``k`` available items of highest attraction, best first): regret is the
difference, summed. `PolicyRun.summary` reads them over the whole run and its second half (after warm-up), and
`SimulationReport` sets each policy beside the first (the baseline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, USER_ID
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.pipeline.slates import candidate_lists, request_rng
from tailored.policies.base import Candidates, Feedback, Policy, parse_policy, spec_of
from tailored.simulation.world import World, WorldSpec

K = 10
IMPRESSIONS = 200_000
UPDATE_EVERY = 100
"""Lists shown between two online updates of the policy (a service folds feedback in within a second)."""
ALGORITHM = "als"
"""The model the engine driver trains on the world's history (it also gives contextual policies their vectors)."""
LOG_COLUMNS = ["exposure_id", USER_ID, "position", ITEM_ID, "propensity", "policy", "model_version", "created_at",
               "click", "purchase", "revenue"]
"""The feedback log's columns (the design note's format, as `tailored logs export` writes them)."""
Progress = Callable[[int], None]
"""Called with the number of lists just shown."""


@dataclass(frozen=True, eq=False)
class Traffic:
    """The common random numbers of a comparison: per list the user (world index), the run fraction, the
    exposure id (32 hex digits, unique), and per (list, position) the click draw and the purchase draw."""

    users: np.ndarray
    moments: np.ndarray
    exposure_ids: np.ndarray
    click_draws: np.ndarray
    purchase_draws: np.ndarray

    @classmethod
    def of(cls, world: World, impressions: int = IMPRESSIONS, k: int = K, seed: int = 0) -> Traffic:
        """``impressions`` lists of ``k`` positions in ``world``, drawn from ``seed`` (users by their activity)."""
        if impressions < 2:
            raise ConfigError(f"impressions={impressions} must be at least 2 (the second half is reported).")
        if k < 1:
            raise ConfigError(f"k={k} must be at least 1.")
        rng = np.random.default_rng([seed, world.spec.seed, 29])
        users = rng.choice(world.spec.users, impressions, p=world.activity)
        moments = np.arange(impressions) / impressions
        prefixes = rng.integers(0, 2**63, impressions, dtype=np.int64)
        exposure_ids = np.array([f"{prefix:016x}{index:016x}" for index, prefix in enumerate(prefixes)], dtype=object)
        return cls(users, moments, exposure_ids, rng.random((impressions, k)), rng.random((impressions, k)))

    def __len__(self) -> int:
        return len(self.users)

    @property
    def k(self) -> int:
        return self.click_draws.shape[1]


@dataclass(frozen=True, eq=False)
class Outcome:
    """What the world answers to lists (rows) of shown items (world indices, -1 = empty slot): clicks and
    purchases per position, revenue per position, and the expected clicks per list."""

    clicks: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    expected: np.ndarray


def outcome(world: World, traffic: Traffic, rows: slice, shown: np.ndarray) -> Outcome:
    """The world's answer to ``shown`` (lists x k world item indices) for the lists ``rows`` of ``traffic``."""
    users, moments = traffic.users[rows][:, None], traffic.moments[rows][:, None]
    valid = shown >= 0
    items = np.where(valid, shown, 0)
    attraction = np.where(valid, world.attraction(users, items, moments), 0.0)
    chance = world.theta(shown.shape[1]) * attraction
    clicks = traffic.click_draws[rows, : shown.shape[1]] < chance
    purchases = clicks & (traffic.purchase_draws[rows, : shown.shape[1]] < world.conversion(users, items))
    return Outcome(clicks, purchases, np.where(purchases, world.prices[items], 0.0), chance.sum(axis=1))


def oracle_clicks(world: World, traffic: Traffic, block: int = 2_000) -> np.ndarray:
    """The expected clicks of the oracle's list (best available items, best first) for every list of ``traffic``."""
    theta, values = world.theta(traffic.k), np.empty(len(traffic))
    for start in range(0, len(traffic), block):
        rows = slice(start, start + block)
        values[rows] = world.best(traffic.users[rows], traffic.moments[rows], traffic.k)[1] @ theta
    return values


@dataclass(eq=False)
class PolicyRun:
    """One policy's run: per list its clicks, purchases, revenue, expected clicks, the oracle's expected clicks and
    how many new items it showed; with ``keep_log``, the feedback ``log`` (`LOG_COLUMNS`) and each list's
    `Candidates` in order (``candidates``)."""

    policy: str
    clicks: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    expected: np.ndarray
    oracle: np.ndarray
    new_shown: np.ndarray
    k: int
    seconds: float
    log: pd.DataFrame | None = None
    candidates: list[Candidates] | None = None

    def summary(self, second_half: bool = False) -> dict[str, float]:
        """Totals and rates over the run (or its second half)."""
        rows = slice(len(self.clicks) // 2 if second_half else 0, None)
        lists = len(self.clicks[rows])
        regret = float((self.oracle[rows] - self.expected[rows]).sum())
        return {"lists": lists, "clicks": int(self.clicks[rows].sum()), "purchases": int(self.purchases[rows].sum()),
                "revenue": round(float(self.revenue[rows].sum()), 2),
                "click_rate": float(self.clicks[rows].mean()), "expected_click_rate": float(self.expected[rows].mean()),
                "oracle_click_rate": float(self.oracle[rows].mean()), "regret": regret,
                "regret_per_list": regret / lists,
                "new_item_share": float(self.new_shown[rows].sum()) / (lists * self.k)}


class Driver(Protocol):
    """Runs one policy through a world's traffic: in process (`EngineDriver`) or against a service."""

    name: str

    def run(self, world: World, traffic: Traffic, spec: str | Policy, oracle: np.ndarray, keep_log: bool = False,
            progress: Progress | None = None) -> PolicyRun: ...


_MODELS: dict[tuple[WorldSpec, str, tuple[tuple[str, Any], ...]], Recommender] = {}
"""Models trained on a world's history, by (world spec, algorithm, params): trained once per process."""


def trained_model(world: World, algorithm: str = ALGORITHM, params: dict[str, Any] | None = None) -> Recommender:
    """The ``algorithm`` fitted on the world's history clicks with the trained items' attributes (cached)."""
    key = (world.spec, algorithm, tuple(sorted((params or {}).items())))
    if key not in _MODELS:
        dataset = Dataset.from_frame(world.training_clicks(), items=world.item_table(world.trained_items()))
        _MODELS[key] = build_recommender(algorithm, params).fit(dataset)
    return _MODELS[key]


def user_lists(world: World, model: Recommender, users: np.ndarray, k: int
               ) -> dict[int, tuple[Candidates, np.ndarray]]:
    """Each user's (world index) candidates and their items' world indices."""
    found = candidate_lists(model, world.user_ids[users], k)
    indices = np.split(world.item_index(np.concatenate([c.item_ids for c in found])),
                       np.cumsum([len(c) for c in found])[:-1])
    return dict(zip(users.tolist(), zip(found, indices, strict=True), strict=True))


@dataclass
class EngineDriver:
    """The engine in process: the model trained once per world (`trained_model`), new items joined with
    `Recommender.with_items` when they arrive, candidates by `candidate_lists` (`candidates_of` for every user of a
    stretch of traffic at once, while the model and catalogue stay the same), the policy parsed from its spec,
    seeded per request with `request_rng` (``policy_seed``, the exposure id) and fed its impressions and clicks
    every ``update_every`` lists."""

    algorithm: str = ALGORITHM
    params: dict[str, Any] = field(default_factory=dict)
    policy_seed: int = 0
    update_every: int = UPDATE_EVERY
    name: str = "engine"

    def __post_init__(self) -> None:
        if self.update_every < 1:
            raise ConfigError(f"update_every={self.update_every} must be at least 1.")

    def run(self, world: World, traffic: Traffic, spec: str | Policy, oracle: np.ndarray, keep_log: bool = False,
            progress: Progress | None = None) -> PolicyRun:
        """Runs ``spec`` (a spec string, or a policy, which learns in place) through ``traffic``."""
        policy, k, n = parse_policy(spec) if isinstance(spec, str) else spec, traffic.k, len(traffic)
        started = time.perf_counter()
        model = trained_model(world, self.algorithm, self.params)
        version = f"{self.algorithm}@{world.spec.scenario}-{world.spec.seed}"
        shown, propensities = np.full((n, k), -1, np.int64), np.zeros((n, k))
        clicks, purchases, revenue = np.zeros((n, k), bool), np.zeros((n, k), bool), np.zeros((n, k))
        expected, new_shown = np.zeros(n), np.zeros(n, np.int64)
        kept: list[Candidates] | None = [] if keep_log else None
        waves = world.arrivals()
        edges = sorted({0, n, *range(0, n, self.update_every),
                        *np.searchsorted(traffic.moments, [moment for moment, _ in waves])})
        lists: dict[int, tuple[Candidates, np.ndarray]] = {}
        arrived = 0
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            if start == 0 or (arrived < len(waves) and waves[arrived][0] <= traffic.moments[start]):
                while arrived < len(waves) and waves[arrived][0] <= traffic.moments[start]:
                    arrived += 1
                if arrived:
                    model = trained_model(world, self.algorithm, self.params).with_items(
                        world.item_table(np.concatenate([items for _, items in waves[:arrived]])))
                until = np.searchsorted(traffic.moments, waves[arrived][0]) if arrived < len(waves) else n
                lists = user_lists(world, model, np.unique(traffic.users[start:until]), k)
            user_vectors: list[np.ndarray | None] = [None] * (stop - start)
            for row in range(start, stop):
                candidates, indices = lists[int(traffic.users[row])]
                user_vectors[row - start] = candidates.user_vector
                if not len(candidates):
                    continue
                slate = policy.choose(candidates, min(k, len(candidates)), request_rng(self.policy_seed,
                                                                                         traffic.exposure_ids[row]))
                shown[row, : len(slate)] = indices[slate.chosen]
                propensities[row, : len(slate)] = slate.propensities
                new_shown[row] = candidates.new[slate.chosen].sum()
                if kept is not None:
                    kept.append(candidates)
            rows = slice(start, stop)
            answer = outcome(world, traffic, rows, shown[rows])
            clicks[rows], purchases[rows], revenue[rows], expected[rows] = (answer.clicks, answer.purchases,
                                                                            answer.revenue, answer.expected)
            _learn(policy, world, shown[rows], answer.clicks, user_vectors)
            if progress is not None:
                progress(stop - start)
        run = PolicyRun(spec_of(policy), clicks.sum(axis=1), purchases.sum(axis=1), revenue.sum(axis=1), expected,
                        oracle, new_shown, k, time.perf_counter() - started)
        if keep_log:
            run.log = feedback_log(world, traffic, shown, propensities, clicks, purchases, revenue, run.policy, version)
            run.candidates = kept
        return run


def _learn(policy: Policy, world: World, shown: np.ndarray, clicks: np.ndarray,
           user_vectors: list[np.ndarray | None]) -> None:
    """Feeds the policy what a block of lists showed (impressions) and what was clicked (rewards 1), with each
    row's features -- its list's user vector, as the service passes them -- when every list of the block has one."""
    rows, positions = np.nonzero(shown >= 0)
    items = world.item_ids[shown[rows, positions]]
    known = [vector for vector in user_vectors if vector is not None]
    features = np.stack(known)[rows] if known and len(known) == len(user_vectors) else None
    policy.learn(Feedback(items, positions + 1, features=features))
    clicked = clicks[rows, positions]
    if clicked.any():
        policy.learn(Feedback(items[clicked], positions[clicked] + 1, np.ones(int(clicked.sum())),
                              None if features is None else features[clicked]))


def feedback_log(world: World, traffic: Traffic, shown: np.ndarray, propensities: np.ndarray, clicks: np.ndarray,
                 purchases: np.ndarray, revenue: np.ndarray, policy: str, version: str) -> pd.DataFrame:
    """One row per shown position, in the design note's format (`LOG_COLUMNS`)."""
    rows, positions = np.nonzero(shown >= 0)
    return pd.DataFrame({
        "exposure_id": traffic.exposure_ids[rows], USER_ID: world.user_ids[traffic.users[rows]],
        "position": positions + 1, ITEM_ID: world.item_ids[shown[rows, positions]],
        "propensity": propensities[rows, positions], "policy": policy, "model_version": version,
        "created_at": world.timestamp(traffic.moments[rows]), "click": clicks[rows, positions].astype(np.int64),
        "purchase": purchases[rows, positions].astype(np.int64), "revenue": revenue[rows, positions]})[LOG_COLUMNS]


@dataclass(eq=False)
class SimulationReport:
    """Policies run on the same world and traffic; the first is the baseline."""

    world: WorldSpec
    impressions: int
    k: int
    seed: int
    driver: str
    runs: list[PolicyRun]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data: the world, then per policy the whole run and its second half, with each
        figure's ratio to the baseline's (clicks, purchases, revenue, click rate) over the second half."""
        base = self.runs[0].summary(second_half=True)
        policies = []
        for run in self.runs:
            half = run.summary(second_half=True)
            ratios = {name: (half[name] / base[name] if base[name] else None)
                      for name in ("clicks", "purchases", "revenue", "click_rate")}
            policies.append({"policy": run.policy, "seconds": round(run.seconds, 2), "whole": run.summary(),
                             "second_half": half, "vs_baseline": ratios})
        return {"scenario": self.world.scenario, "world": self.world.to_dict(), "impressions": self.impressions,
                "k": self.k, "seed": self.seed, "driver": self.driver, "baseline": self.runs[0].policy,
                "policies": policies}


def simulate(world: World, specs: Sequence[str | Policy], driver: Driver | None = None, impressions: int = IMPRESSIONS,
             k: int = K, seed: int = 0, keep_log: bool = False, progress: Progress | None = None
             ) -> SimulationReport:
    """Runs each policy (a spec, or a fresh policy object) through the same traffic of ``world`` with ``driver``
    (default: `EngineDriver`)."""
    if not specs:
        raise ConfigError("No policy to simulate: give at least one --policy (e.g. greedy).")
    for spec in specs:
        if isinstance(spec, str) and spec:
            parse_policy(spec)  # every spec checked before the first run ('': a service's own, unnamed)
    driver = EngineDriver() if driver is None else driver
    traffic = Traffic.of(world, impressions, k, seed)
    oracle = oracle_clicks(world, traffic)
    runs = [driver.run(world, traffic, spec, oracle, keep_log, progress) for spec in specs]
    return SimulationReport(world.spec, impressions, k, seed, driver.name, runs)
