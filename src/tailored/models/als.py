"""Implicit-feedback ALS: Collaborative Filtering for Implicit Feedback Datasets (Hu, Koren & Volinsky, ICDM 2008).

Minimises ``sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (|x_u|^2 + |y_i|^2)`` with preference ``p_ui = [r_ui > 0]`` and
confidence ``c_ui = alpha r_ui`` for observed pairs and 1 elsewhere (``implicit``'s convention), alternating closed-form
(conjugate-gradient) solves for users and items (Takács et al., RecSys 2011), via ``implicit``. Only the factor arrays
are kept. The defaults were chosen on validation splits carved from MovieLens 100K training data (``tailored benchmark
movielens-100k --validation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tailored.config import num_threads
from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, check_fitted, factor_scores, register


@register("als")
@dataclass(eq=False)
class ALSScorer:
    factors: int = 128
    reg: float = 10.0
    alpha: float = 1.0
    epochs: int = 15
    seed: int = 0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    inner_product: ClassVar[bool] = True  # scores are user_factors_ . item_factors_ (a vector index can serve them)
    folds_in_history: ClassVar[bool] = True  # a trained user's scores follow from their history: later events fold in
    search_space: ClassVar[dict[str, Float | Int]] = {
        "factors": Int(16, 256, log=True),
        "reg": Float(0.01, 100.0, log=True),
        "alpha": Float(0.1, 50.0, log=True),
        "epochs": Int(5, 50),
    }

    def fit(self, dataset: Dataset) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit parallelises over users itself
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.reg,
                alpha=self.alpha,
                iterations=self.epochs,
                random_state=self.seed,
                num_threads=num_threads(),
            )
            model.fit(dataset.matrix().astype(np.float32), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, np.float32)
        self.item_factors_ = np.asarray(model.item_factors, np.float32)
        self._gram = None
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "user_factors_")
        return factor_scores(self.user_factors_, self.item_factors_, users, items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items), folded in by `fold_in`."""
        return self.fold_in(rows) @ (self.item_factors_ if items is None else self.item_factors_[items]).T

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors for history rows (users x items) by the exact user step of ALS on the trained item factors,
        ``x_u = (Y^T C_u Y + reg I)^-1 Y^T C_u p_u`` (a new user, a session, a user's events since training, without
        refitting): one small solve per row."""
        check_fitted(self, "item_factors_")
        gram = getattr(self, "_gram", None)
        if gram is None:  # ``Y^T Y + reg I`` once: every fold-in of a served model shares it
            factors = self.item_factors_.astype(np.float64)
            gram = self._gram = factors.T @ factors + self.reg * np.eye(factors.shape[1])
        rows = sp.csr_matrix(rows)
        users = np.zeros((rows.shape[0], gram.shape[0]), np.float32)
        for row in range(rows.shape[0]):
            span = slice(rows.indptr[row], rows.indptr[row + 1])
            history = self.item_factors_[rows.indices[span]].astype(np.float64)
            confidence = self.alpha * rows.data[span]
            system = gram + (history.T * (confidence - 1.0)) @ history
            users[row] = np.linalg.solve(system, history.T @ confidence)
        return users

