"""BPR: Bayesian Personalized Ranking from Implicit Feedback (Rendle et al., UAI 2009).

Matrix factorisation trained by stochastic gradient ascent on ``ln sigma(x_ui - x_uj)`` over sampled triples
(user, seen item i, unseen item j), with an item bias, via ``implicit``. Only the factor arrays are kept.
``num_threads`` above 1 trains Hogwild-style and gives up exact reproducibility, hence the default of 1.
The defaults were chosen on validation splits carved from MovieLens 100K training data (``tailored benchmark
movielens-100k --validation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, check_fitted, factor_scores, register


@register("bpr")
@dataclass(eq=False)
class BPRScorer:
    factors: int = 64
    learning_rate: float = 0.01
    reg: float = 0.01
    epochs: int = 100
    seed: int = 0
    num_threads: int = 1

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    inner_product: ClassVar[bool] = True  # scores are user_factors_ . item_factors_ (a vector index can serve them)
    search_space: ClassVar[dict[str, Float | Int]] = {
        "factors": Int(16, 256, log=True),
        "learning_rate": Float(0.001, 0.1, log=True),
        "reg": Float(0.0001, 0.1, log=True),
        "epochs": Int(20, 300, log=True),
    }

    def fit(self, dataset: Dataset) -> Self:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.reg,
            iterations=self.epochs,
            random_state=self.seed,
            num_threads=self.num_threads,
        )
        model.fit(dataset.matrix(binary=True), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, np.float32)
        self.item_factors_ = np.asarray(model.item_factors, np.float32)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "user_factors_")
        return factor_scores(self.user_factors_, self.item_factors_, users, items)
