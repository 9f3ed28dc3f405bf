"""`tailored benchmark latency`: the time of one recommendation in process, model directory by model directory.

Each model answers the same seeded random known users one request at a time (``recommend_one``, top ``k``), on one
thread (the engine's threads and BLAS both limited to one), after a few warm-up requests; the figures are the
request's wall-clock percentiles. What the service adds (HTTP, the store, the policy) is `tailored benchmark
service`'s to measure: this isolates what a model costs per request, for instance what a learned second stage adds
to its first retriever (docs/algorithms/ranker.md)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
from threadpoolctl import threadpool_limits

from tailored.query import Query
from tailored.registry.model_dir import load_model

WARM_UP = 30


def latency_benchmark(model_dirs: Sequence[Path], requests: int = 2_000, k: int = 10, seed: int = 0
                      ) -> list[dict[str, Any]]:
    """One row per model directory: its algorithm and the p50, p99 and mean milliseconds of ``requests`` requests."""
    rows = []
    with patch.dict(os.environ, {"TAILORED_NUM_THREADS": "1"}), threadpool_limits(1):
        for directory in model_dirs:
            recommender = load_model(directory)
            users = recommender.users_.external_ids.astype(str)
            chosen = np.random.default_rng(seed).choice(users, WARM_UP + requests)
            for user in chosen[:WARM_UP]:
                recommender.recommend_one(Query(user_id=user), k)
            seconds = np.empty(requests)
            for position, user in enumerate(chosen[WARM_UP:]):
                start = time.perf_counter()
                recommender.recommend_one(Query(user_id=user), k)
                seconds[position] = time.perf_counter() - start
            milliseconds = seconds * 1000
            rows.append({"model_dir": str(directory), "algorithm": type(recommender.scorer).__name__,
                         "requests": requests, "p50_ms": float(np.percentile(milliseconds, 50)),
                         "p99_ms": float(np.percentile(milliseconds, 99)), "mean_ms": float(milliseconds.mean())})
    return rows
