"""Rating benchmark on MovieLens 100K (P3): RMSE and MAE on the canonical u1..u5 folds, with fit time.

Usage: ``python benchmarks/rating.py [--validation] [--algorithm mf] [--param factors=20 ...]``.
Each fold trains on ``uN.base`` and predicts every ``uN.test`` pair through ``Recommender.predict``.
``--validation`` instead holds out a random 20% of ``uN.base`` (seed N) and trains on the rest: the data on which
defaults are chosen; without it the test files are used, for reporting only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.movielens import load_movielens_fold
from tailored.eval.metrics import mae, rmse
from tailored.models.base import create_scorer
from tailored.pipeline import Recommender

DATA = Path(os.environ.get("TAILORED_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
FOLDS = (1, 2, 3, 4, 5)
VALIDATION_FRACTION = 0.2


def fold_data(fold: int, validation: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = load_movielens_fold(DATA / "ml-100k", fold)
    if validation:
        held_out = np.random.default_rng(fold).random(len(train)) < VALIDATION_FRACTION
        train, test = train[~held_out], train[held_out]
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="mf")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="hyperparameter override")
    parser.add_argument("--validation", action="store_true", help="score on 20%% carved from each base file")
    arguments = parser.parse_args()
    params = dict(item.split("=", 1) for item in arguments.param)

    data = "validation (20% of uN.base)" if arguments.validation else "uN.test"
    print(f"P3 rating prediction, MovieLens 100K, {arguments.algorithm} {params or '(defaults)'}, scored on {data}")
    print(f"{'fold':<6}{'RMSE':>8}{'MAE':>8}{'fit s':>8}")
    results = []
    for fold in FOLDS:
        train, test = fold_data(fold, arguments.validation)
        recommender = Recommender(create_scorer(arguments.algorithm, params))
        start = time.perf_counter()
        recommender.fit(Dataset.from_frame(train))
        seconds = time.perf_counter() - start
        predictions = recommender.predict(test.user_id.to_numpy(), test.item_id.to_numpy())
        truth = test.value.to_numpy(np.float64)
        results.append((rmse(predictions, truth), mae(predictions, truth), seconds))
        print(f"u{fold:<5}{results[-1][0]:>8.4f}{results[-1][1]:>8.4f}{seconds:>8.2f}", flush=True)
    means = np.mean(results, axis=0)
    print(f"{'mean':<6}{means[0]:>8.4f}{means[1]:>8.4f}{means[2]:>8.2f}")


if __name__ == "__main__":
    main()
