"""`tailored benchmark ranker-feedback`: does a ranker trained on the engine's own feedback log rank better, by the
simulator's hidden truth, than its retriever and than the ranker trained on a carve of the interactions?

Per seed, a static `World` (`tailored.simulation`): the engine (``als`` on the history) serves ``impressions`` lists
under an exploring logging policy, and the feedback log of what it showed and what was clicked is kept. Every model
then learns from the history's clicks plus the run's, and the ranker also from the log (``feedback=FILE``), with
each click weighted by the inverse examination probability of its position (``position``) or not (``none``). Each
model's top 10 for every user is judged by the hidden click model: the expected clicks of the list,
``sum_p theta_p r(u, i_p)``, against the oracle's (the user's 10 most attractive items)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.simulation.run import simulate
from tailored.simulation.world import World, world_of

K = 10
RETRIEVERS = "als,item-knn,popularity"
LOGGING_POLICY = "softmax:temperature=0.5"


def models(log_path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """The models compared: the logging model's algorithm alone, the ranker from the log (two weightings) and the
    ranker from its default carve, all with the same retrievers."""
    ranker = {"retrievers": RETRIEVERS, "candidates": 30}
    return {
        "als": ("als", {}),
        "ranker, feedback log, position weights": ("ranker", ranker | {"feedback": str(log_path)}),
        "ranker, feedback log, no weights": ("ranker", ranker | {"feedback": str(log_path),
                                                                 "feedback_weighting": "none"}),
        "ranker, user carve (no log)": ("ranker", ranker),
    }


def expected_clicks(world: World, model: Recommender, users: np.ndarray) -> float:
    """The mean over ``users`` of the hidden truth's expected clicks on the model's top `K` at the run's end."""
    frame = model.recommend(world.user_ids[users], K, warn=False)
    per_user = frame.groupby(USER_ID, sort=False).cumcount().to_numpy()
    rows = pd.Index(world.user_ids[users]).get_indexer(frame[USER_ID])
    items = world.item_index(frame[ITEM_ID].to_numpy())
    gained = np.zeros(len(users))
    np.add.at(gained, rows, world.theta(K)[per_user] * world.attraction(users[rows], items, 1.0))
    return float(gained.mean())


def ranker_feedback_benchmark(seeds: Sequence[int] = (0, 1, 2), impressions: int = 40_000,
                              logging_policy: str = LOGGING_POLICY, users: int = 2_000, items: int = 1_000,
                              say: Callable[[str], None] = print) -> pd.DataFrame:
    """One row per (seed, model): expected clicks per list by the hidden truth, its ratio to ``als``'s and to the
    oracle's, and the fit's seconds."""
    rows = []
    for seed in seeds:
        world = world_of("static", seed=seed, users=users, items=items)
        say(f"seed {seed}: {impressions:,} lists under {logging_policy}")
        log = simulate(world, [logging_policy], impressions=impressions, keep_log=True).runs[0].log
        clicked = log[log["click"] > 0]
        interactions = pd.concat([world.training_clicks(), pd.DataFrame(
            {USER_ID: clicked[USER_ID], ITEM_ID: clicked[ITEM_ID], TIMESTAMP: clicked["created_at"]})],
            ignore_index=True)
        dataset = Dataset.from_frame(interactions, items=world.item_table(world.trained_items()))
        judged = np.flatnonzero(np.isin(world.user_ids, dataset.users.external_ids))
        _, attractions = world.best(judged, np.ones(len(judged)), K)
        oracle = float((attractions * world.theta(K)).sum(axis=1).mean())
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "feedback.csv"
            log.to_csv(path, index=False)
            figures = {}
            for name, (algorithm, params) in models(path).items():
                say(f"seed {seed}: {name}")
                start = time.perf_counter()
                model = build_recommender(algorithm, params).fit(dataset)
                seconds = time.perf_counter() - start
                figures[name] = (expected_clicks(world, model, judged), seconds)
        for name, (value, seconds) in figures.items():
            rows.append({"seed": seed, "model": name, "expected_clicks": value,
                         "x_als": value / figures["als"][0], "x_oracle": value / oracle, "fit_s": seconds})
    return pd.DataFrame(rows)
