"""The improvement loop's simulated month: does `tailored loop` keep up with a world whose tastes drift?

A `drift` world (`simulation.world`, tastes rotating a quarter turn over the month) is served for ``days`` days,
``lists_per_day`` top-``k`` lists a day (users drawn by activity, each list's clicks by the position-based click
model), three ways over the same users, moments and random draws (common random numbers):

- **never**: the model trained on the last ``window_days`` of the history serves the whole month;
- **daily**: the same recipe refitted by hand at the end of every day on the last ``window_days`` of its own clicks;
- **loop**: the engine in process with a store and a registry: each day's lists come from ``NAME@production``,
  except for the users that the running canary experiment assigns to its treatment (`Design.assignment`, as the
  service does), who get the candidate's; exposures (with experiment and arm) and clicks are stored, and one
  `Loop.run_cycle` runs at the end of every day. The first candidate trained from ``corrupt_day`` on is trained on a
  corrupted window (`_corrupted`: a stale item id mapping by default): it must be caught by the offline gate or
  stopped by the canary, and serve at most the canary's share of the lists.

The history before the run is spread over the ``days`` before it (as the run is). Figures: each arm's click rate
(clicks per list) over the month and its second half, the loop's and the never-retrained model's relative
difference with the daily one, the loop's steps and the share of lists each loop version served.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, SCORE, TIMESTAMP, USER_ID
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.experiments.design import Design
from tailored.loop.config import CanarySection, DataSection, GateSection, LoopConfig, ModelSection, RegistrySection
from tailored.loop.config import TestSection
from tailored.loop.cycle import Loop
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.registry.model_dir import load_model, save_model
from tailored.registry.versions import ModelRegistry
from tailored.simulation.world import START, World, WorldSpec
from tailored.store.database import Event, EventStore, exposure_row
from tailored.store.experiments import running_experiments

DAY = 86_400.0
NAME = "shop"
Say = Callable[[str], None]


@dataclass(frozen=True)
class MonthSpec:
    users: int = 2_000
    items: int = 1_000
    days: int = 30
    lists_per_day: int = 4_000
    k: int = 10
    window_days: float = 7.0
    algorithm: str = "als"
    params: dict[str, Any] = field(default_factory=lambda: {"factors": 16, "exclude_seen": False})
    """Repeat clicks are as likely as first ones in the world: lists keep the items a user took."""
    canary_share: int = 30
    """A day of 30 % of 2,000 users bounds a lift's interval to about +-10 %: smaller canaries decide on noise."""
    canary_min_users: int = 100
    canary_max_cycles: int = 1
    corrupt_day: int | None = 10
    """From this day (0-based), the first cycle that trains does so on a corrupted window (None: none)."""
    corruption: str = "remap"
    """``remap`` (a stale item id mapping) or ``shuffle`` (items swapped between clicks): `_corrupted`."""
    gate_min_gain: float = -0.3
    """The offline gate's tolerance: the frozen sample's clicks were logged on the champion's own lists, which favours
    it, so the gate only stops candidates clearly worse; -1 turns it off (a corrupted candidate then meets the
    canary)."""
    taste: float = 1.2
    """The spread of tastes (`WorldSpec.taste`): the larger, the more a stale model loses as tastes drift."""
    drift: float = float(np.pi)
    """The angle (radians) tastes rotate by over the month (`WorldSpec.drift`): a half turn, tastes end opposite."""
    seed: int = 0


def loop_month(spec: MonthSpec = MonthSpec(), folder: Path | None = None, say: Say = print) -> dict[str, Any]:
    """The three arms of one simulated month (module docstring); figures only, no assertion."""
    if spec.corruption not in ("remap", "shuffle"):
        raise ConfigError(f"corruption={spec.corruption!r}: choose remap or shuffle.")
    world = World(WorldSpec(scenario="drift", users=spec.users, items=spec.items, drift=spec.drift, taste=spec.taste,
                            seed=spec.seed))
    history = _history(world, spec)
    traffic = _traffic(world, spec)
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(folder or scratch)
        started = time.perf_counter()
        never = _serve_fixed(world, spec, traffic, history, retrain=False)
        say(f"never retrained: click rate {never['click_rate']:.4f}")
        daily = _serve_fixed(world, spec, traffic, history, retrain=True)
        say(f"retrained daily by hand: click rate {daily['click_rate']:.4f}")
        looped = _serve_loop(world, spec, traffic, history, base, say)
        say(f"loop: click rate {looped['click_rate']:.4f}")
        seconds = time.perf_counter() - started
    return {"spec": spec.__dict__ | {"params": dict(spec.params)}, "never": never, "daily": daily, "loop": looped,
            "loop_vs_daily": looped["click_rate"] / daily["click_rate"] - 1,
            "never_vs_daily": never["click_rate"] / daily["click_rate"] - 1,
            "loop_vs_daily_second_half": looped["second_half"] / daily["second_half"] - 1,
            "never_vs_daily_second_half": never["second_half"] / daily["second_half"] - 1, "seconds": seconds}


@dataclass(frozen=True, eq=False)
class _Traffic:
    users: np.ndarray
    days: np.ndarray
    moments: np.ndarray
    """Run fraction of each list (0..1 over the month)."""
    draws: np.ndarray


def _traffic(world: World, spec: MonthSpec) -> _Traffic:
    rng = np.random.default_rng([spec.seed, 28, 30])
    n = spec.days * spec.lists_per_day
    days = np.repeat(np.arange(spec.days), spec.lists_per_day)
    offsets = np.sort(rng.random((spec.days, spec.lists_per_day)), axis=1).ravel()
    return _Traffic(rng.choice(spec.users, n, p=world.activity), days, (days + offsets) / spec.days,
                    rng.random((n, spec.k)))


def _history(world: World, spec: MonthSpec) -> pd.DataFrame:
    """The world's history clicks, spread over the ``days`` before the run."""
    clicks = world.training_clicks()
    clicks[TIMESTAMP] = START + (clicks[TIMESTAMP] - START) * spec.days
    return clicks


def _timestamps(traffic: _Traffic, spec: MonthSpec, rows: np.ndarray) -> np.ndarray:
    return START + traffic.moments[rows] * spec.days * DAY


def _fit(spec: MonthSpec, frame: pd.DataFrame, end: float) -> Recommender:
    window = frame[(frame[TIMESTAMP] > end - spec.window_days * DAY) & (frame[TIMESTAMP] <= end)]
    return build_recommender(spec.algorithm, dict(spec.params)).fit(Dataset.from_frame(window))


def _lists(world: World, model: Recommender, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's (world indices) top-k list as world item indices, -1 where short, and the scores they were
    served with (NaN where short)."""
    unique, inverse = np.unique(users, return_inverse=True)
    frame = model.recommend(world.user_ids[unique], k, warn=False)
    row = pd.Index(world.user_ids[unique]).get_indexer(frame[USER_ID])
    position = frame.groupby(USER_ID, sort=False).cumcount().to_numpy()
    shown = np.full((len(unique), k), -1, np.int64)
    scores = np.full((len(unique), k), np.nan)
    keep = position < k
    shown[row[keep], position[keep]] = world.item_index(frame[ITEM_ID].to_numpy()[keep])
    scores[row[keep], position[keep]] = frame[SCORE].to_numpy(np.float64)[keep]
    return shown[inverse], scores[inverse]


def _clicks(world: World, traffic: _Traffic, rows: np.ndarray, shown: np.ndarray) -> np.ndarray:
    items = np.maximum(shown, 0)
    chance = world.theta(shown.shape[1]) * world.attraction(traffic.users[rows][:, None], items,
                                                            traffic.moments[rows][:, None])
    return (traffic.draws[rows, : shown.shape[1]] < chance) & (shown >= 0)


def _click_frame(world: World, spec: MonthSpec, traffic: _Traffic, rows: np.ndarray, shown: np.ndarray,
                 clicks: np.ndarray) -> pd.DataFrame:
    list_rows, positions = np.nonzero(clicks)
    return pd.DataFrame({USER_ID: world.user_ids[traffic.users[rows][list_rows]],
                         ITEM_ID: world.item_ids[shown[list_rows, positions]],
                         TIMESTAMP: _timestamps(traffic, spec, rows)[list_rows]})


def _summary(clicks_per_list: np.ndarray, spec: MonthSpec, traffic: _Traffic) -> dict[str, Any]:
    second = traffic.days >= spec.days // 2
    daily = pd.Series(clicks_per_list).groupby(traffic.days).mean()
    return {"click_rate": float(clicks_per_list.mean()), "second_half": float(clicks_per_list[second].mean()),
            "daily_click_rate": [round(float(value), 4) for value in daily]}


def _serve_fixed(world: World, spec: MonthSpec, traffic: _Traffic, history: pd.DataFrame,
                 retrain: bool) -> dict[str, Any]:
    """The never-retrained model, or the one refitted by hand every day on its own clicks."""
    seen = history
    model = _fit(spec, seen, START)
    per_list = np.zeros(len(traffic.users))
    for day in range(spec.days):
        rows = np.flatnonzero(traffic.days == day)
        shown = _lists(world, model, traffic.users[rows], spec.k)[0]
        clicks = _clicks(world, traffic, rows, shown)
        per_list[rows] = clicks.sum(axis=1)
        if retrain:
            seen = pd.concat([seen, _click_frame(world, spec, traffic, rows, shown, clicks)], ignore_index=True)
            model = _fit(spec, seen, START + (day + 1) * spec.days * DAY / spec.days)
    return _summary(per_list, spec, traffic)


def _corrupted(kind: str, seed: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``remap``: a stale id mapping sends every item's clicks to another item (one permutation of the window's
    items); ``shuffle``: each click's item is swapped with another click's (popularity kept, taste lost)."""
    def corrupt(window: pd.DataFrame) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        items = window[ITEM_ID].to_numpy()
        if kind == "shuffle":
            return window.assign(**{ITEM_ID: rng.permutation(items)})
        distinct = pd.unique(items)
        mapping = pd.Series(rng.permutation(distinct), index=distinct)
        return window.assign(**{ITEM_ID: mapping.loc[items].to_numpy()})
    return corrupt


def _serve_loop(world: World, spec: MonthSpec, traffic: _Traffic, history: pd.DataFrame, base: Path,
                say: Say) -> dict[str, Any]:
    """The loop arm: serve from the registry (and the canary's treatment), store what happens, cycle daily."""
    url = f"sqlite:///{base / 'loop.db'}"
    store = EventStore(url)
    registry = ModelRegistry(base / "registry")
    config = LoopConfig(
        data=DataSection(db=url, event_types=["click"], window_days=spec.window_days),
        model=ModelSection(spec.algorithm, dict(spec.params)), registry=RegistrySection(str(base / "registry"), NAME),
        test=TestSection(days=1.0, users=spec.users), gate=GateSection(min_gain=spec.gate_min_gain),
        canary=CanarySection(share=spec.canary_share, min_users=spec.canary_min_users,
                             max_cycles=spec.canary_max_cycles), source="the simulated month")
    _store_clicks(store, history, None)
    first = base / "first"  # the champion the loop starts from: the never-retrained model, deployed by hand
    save_model(_fit(spec, history, START), first)
    registry.promote(NAME, registry.register(NAME, first))
    models: dict[str, Recommender] = {}

    def model_of(version: str) -> Recommender:
        if version not in models:
            models[version] = load_model(registry.root / NAME / version)
        return models[version]

    per_list = np.zeros(len(traffic.users))
    served = np.empty(len(traffic.users), dtype=object)
    cycles = []
    corrupt_day: int | None = None
    for day in range(spec.days):
        rows = np.flatnonzero(traffic.days == day)
        production = registry.current(NAME, "production")
        versions = np.full(len(rows), production, dtype=object)
        arms = np.full(len(rows), None, dtype=object)
        running = [row for row in running_experiments(store) if row["name"].startswith(f"{NAME}-")]
        experiment = running[0]["name"] if running else None
        if running:
            design = Design.from_json(running[0]["design"])
            arms = design.assignment().assign(world.user_ids[traffic.users[rows]])
            treatment = design.arms[1].ref.partition("@")[2]
            versions = np.where(arms == design.arms[1].name, treatment, versions)
        shown, scores = np.full((len(rows), spec.k), -1, np.int64), np.full((len(rows), spec.k), np.nan)
        for version in pd.unique(versions):
            mine = versions == version
            shown[mine], scores[mine] = _lists(world, model_of(version), traffic.users[rows][mine], spec.k)
        clicks = _clicks(world, traffic, rows, shown)
        per_list[rows], served[rows] = clicks.sum(axis=1), versions
        exposures = [exposure_row(world.user_ids[user], str(version), world.item_ids[items[items >= 0]].tolist(),
                                  experiment=experiment if arm is not None else None,
                                  arm=None if arm is None else str(arm), scores=served_scores[items >= 0].tolist())
                     for user, version, items, served_scores, arm
                     in zip(traffic.users[rows], versions, shown, scores, arms, strict=True)]
        stamps = _timestamps(traffic, spec, rows)
        for exposure, stamp in zip(exposures, stamps, strict=True):
            exposure["created_at"] = float(stamp)
        store.log_exposures(exposures)
        frame = _click_frame(world, spec, traffic, rows, shown, clicks)
        list_rows = np.nonzero(clicks)[0]
        _store_clicks(store, frame, np.array([exposures[row]["exposure_id"] for row in list_rows], dtype=object))
        corrupt = corrupt_day is None and spec.corrupt_day is not None and day >= spec.corrupt_day
        hook = _corrupted(spec.corruption, spec.seed) if corrupt else None
        report = Loop(config, window_hook=hook).run_cycle()
        if corrupt and any(step["step"] == "train" for step in report["steps"]):
            corrupt_day = day  # the first cycle from corrupt_day on that trains (not one waiting on a canary)
        cycles.append({"day": day, "production": production, "experiment": experiment,
                       "steps": report["steps"]})
        say(f"day {day}: production {production}{' canary ' + experiment if experiment else ''}; "
            f"cycle: {_steps(report)}")
    corrupt_version = next((step["version"] for cycle in cycles if cycle["day"] == corrupt_day
                            for step in cycle["steps"] if step["step"] == "register"), None)
    shares = pd.Series(served).value_counts(normalize=True).sort_index()
    daily_corrupt = (pd.Series(served == corrupt_version).groupby(traffic.days).mean()
                     if corrupt_version else pd.Series([0.0]))
    return _summary(per_list, spec, traffic) | {
        "cycles": cycles, "version_shares": {str(k): float(v) for k, v in shares.items()},
        "corrupted_candidate": {"day": corrupt_day, "version": corrupt_version,
                                "caught": _fate(cycles, corrupt_day),
                                "max_daily_share": float(daily_corrupt.max())},
        "promotions": registry.current(NAME, "production"), "audit_rows": len(Loop(config).audit_trail())}


def _store_clicks(store: EventStore, frame: pd.DataFrame, exposure_ids: np.ndarray | None) -> None:
    """Clicks as the service stores them (event ids unique per run), in batches."""
    ids = exposure_ids if exposure_ids is not None else np.full(len(frame), None, dtype=object)
    stamp = frame[TIMESTAMP].to_numpy(np.float64)
    events = [Event(f"c{stamp[n]:.3f}-{user}-{item}-{n}", user, item, "click", 1.0, float(stamp[n]), ids[n])
              for n, (user, item) in enumerate(zip(frame[USER_ID], frame[ITEM_ID], strict=True))]
    for start in range(0, len(events), 20_000):
        store.append_events(events[start : start + 20_000])


def _fate(cycles: list[dict[str, Any]], day: int | None) -> str | None:
    """How the corrupted candidate's story ended: caught offline, stopped by the canary (and why), promoted, or
    still open."""
    if day is None:
        return None
    steps = [step for cycle in cycles if cycle["day"] >= day for step in cycle["steps"]]
    for step in steps[next((n for n, s in enumerate(steps) if s["step"] == "train"), 0):]:
        if step["step"] == "evaluate" and not step.get("passed", True):
            return "caught offline: " + step["reason"]
        if step["step"] == "decide" and "action" in step:
            lift = "" if step["lift"] is None else f", observed lift {step['lift']:+.1%}"
            verdict = "promoted" if step["action"] == "promote" else "stopped by the canary"
            return f"{verdict} ({step['decision']}{lift})"
    return "open"


def _steps(report: dict[str, Any]) -> str:
    parts = []
    for step in report["steps"]:
        extra = step.get("reason") or step.get("decision") or step.get("version") or step.get("verdict") or ""
        parts.append(f"{step['step']}({extra})" if extra else step["step"])
    return ", ".join(parts) or "nothing"
