"""Two-tower retrieval model (Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations", RecSys 2019; Covington et al., "Deep Neural Networks for YouTube Recommendations", 2016).

The user tower maps ``[id embedding, side-feature bag, mean embedding of the user's most recent items]`` and the item
tower ``[id embedding, side-feature bag]`` (categories, ``|`` lists, TF-IDF text, price bins, text or image embedding
columns; see `side_features`) through a ReLU layer to ``factors``-dimensional vectors; a score is their dot product.
Training maximises the softmax likelihood of each observed item against the catalogue (all of it when it has at
most ``negatives`` items, otherwise the batch's items plus ``negatives`` uniformly sampled ones), leaving the target
out of the user's history bag. Early stopping on Recall@20 of a holdout carved from training, then a refit on all
of it for the best number of epochs.

After training, ``item_vectors_`` and ``user_vectors_`` are precomputed: scoring is one matrix product and the item
vectors can be put in a nearest-neighbour index. Ids are dropped to an "unknown" id with probability
``id_dropout`` while training (DropoutNet), so new users (``score_attributes``) and new items
(``score_new_items``) get vectors from their features. The defaults were chosen on validation splits carved from
MovieLens 100K training data (``tailored benchmark movielens-100k --validation``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import TIMESTAMP, USER_INDEX
from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, check_fitted, factor_scores, register
from tailored.models.neural.side_features import (
    feature_sums, item_features, side_features, user_features, with_unknown_id,
)
from tailored.models.neural.training import (
    REFIT, check_fold_in, fold_in, from_arrays, holdout_split, minibatches, recall_at, require_torch, to_arrays, train,
    training_stage,
)

logger = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.1


def recent_history(dataset: Dataset, matrix: sp.csr_matrix, length: int) -> sp.csr_matrix:
    """Users x items, each row the mean (weights ``1/n``) of the user's latest ``length`` distinct items of
    ``matrix`` (by timestamp when there is one)."""
    frame = dataset.interactions
    if TIMESTAMP in frame:
        frame = frame.sort_values(TIMESTAMP, kind="stable")
    frame = frame.drop_duplicates([USER_INDEX, "item_index"], keep="last")
    frame = frame[np.asarray(matrix[frame[USER_INDEX].to_numpy(), frame["item_index"].to_numpy()]).ravel() != 0]
    recent = frame.groupby(USER_INDEX, sort=False).cumcount(ascending=False) < length
    frame = frame[recent.to_numpy()]
    history = sp.csr_matrix((np.ones(len(frame), np.float32), (frame[USER_INDEX], frame["item_index"])),
                            shape=matrix.shape)
    counts = np.maximum(history.getnnz(axis=1), 1)
    return sp.csr_matrix(sp.diags(1.0 / counts) @ history, dtype=np.float32)


@register("two-tower")
@dataclass(eq=False)
class TwoTowerScorer:
    """User and item towers over ids, side features and recent history; dot-product scores."""

    factors: int = 64
    hidden: int = 256
    max_history: int = 50
    negatives: int = 4096
    epochs: int = 60
    learning_rate: float = 3e-3
    batch_size: int = 1024
    reg: float = 0.0
    id_dropout: float = 0.1
    fold_in_steps: int = 20
    fold_in_rate: float = 0.05
    patience: int = 4
    max_text_features: int = 2000
    seed: int = 0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = True
    handles_cold_items: ClassVar[bool] = True
    search_space: ClassVar[dict[str, Float | Int]] = {
        "factors": Int(16, 256, log=True),
        "hidden": Int(64, 1024, log=True),
        "learning_rate": Float(1e-4, 1e-2, log=True),
        "reg": Float(1e-8, 1e-4, log=True),
        "id_dropout": Float(0.0, 0.5),
    }

    def fit(self, dataset: Dataset) -> Self:
        check_fold_in("two-tower", self.fold_in_steps, self.fold_in_rate)
        self.user_encoder_, self.item_encoder_, self.user_features_, self.item_features_ = side_features(
            dataset, self.max_text_features)
        matrix = dataset.matrix(binary=True)
        part, held = holdout_split(matrix, VALIDATION_FRACTION, self.seed)
        _, log = self._train(part, recent_history(dataset, part, self.max_history), held, self.epochs)
        logger.info("algorithm=two-tower best_epoch=%d validation=%.4f", log.best_epoch, log.best_score)
        self.epochs_ = max(log.best_epoch, 1)
        self.history_ = recent_history(dataset, matrix, self.max_history)
        with training_stage(REFIT):
            network, _ = self._train(matrix, self.history_, None, self.epochs_)
        self.weights_ = to_arrays(network)
        self._network = network
        self.user_vectors_, self.item_vectors_ = self._vectors(network, self.history_)
        return self

    # -- scoring ----------------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "item_vectors_")
        return factor_scores(self.user_vectors_, self.item_vectors_, users, items)

    def score_attributes(self, attributes: pd.DataFrame, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for new users known only by an attribute table (unknown id, no history)."""
        vectors = self._new_user_vectors(attributes)
        return vectors @ (self.item_vectors_ if items is None else self.item_vectors_[items]).T

    def score_new_items(self, users: np.ndarray, attributes: pd.DataFrame,
                        user_attributes: pd.DataFrame | None = None) -> np.ndarray:
        """Scores of new items known only by an attribute table; the users are new ones described by
        ``user_attributes`` when given; users the model does not know get the unknown-id tower (no history)."""
        vectors = self._new_item_vectors(attributes)
        if user_attributes is not None:
            return self._new_user_vectors(user_attributes) @ vectors.T
        users = np.asarray(users, np.int64)
        scores = factor_scores(self.user_vectors_, vectors, users, None)
        unknown = (users < 0) | (users >= len(self.user_vectors_))
        if unknown.any():
            nothing = sp.csr_matrix((int(unknown.sum()), self.history_.shape[1]), dtype=np.float32)
            scores[unknown] = self._new_user_vectors(None, nothing) @ vectors.T
        return scores

    def score_sessions(self, histories: Sequence[Sequence[int]], items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users known only by a session, each a list of item indices oldest first (-1 skipped): the
        user tower on the unknown id and the mean of the session's latest ``max_history`` distinct items."""
        n_items = self.history_.shape[1]
        rows, columns = [], []
        for row, history in enumerate(histories):
            latest = list(dict.fromkeys(item for item in reversed(history) if 0 <= item < n_items))[: self.max_history]
            rows += [row] * len(latest)
            columns += latest
        return self.score_rows(sp.csr_matrix((np.ones(len(columns), np.float32), (rows, columns)),
                                             shape=(len(histories), n_items)), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for new users known by history rows over the training items (`_folded_in` vectors)."""
        check_fitted(self, "item_vectors_")
        vectors = self.item_vectors_ if items is None else self.item_vectors_[items]
        return self._folded_in(rows) @ vectors.T

    def score_new_rows(self, rows: sp.csr_matrix, attributes: pd.DataFrame) -> np.ndarray:
        """`score_rows` over new items known only by an attribute table."""
        return self._folded_in(rows) @ self._new_item_vectors(attributes).T

    def _folded_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User vectors of new users known by history rows: the user tower on the unknown id and the mean embedding
        of the row's items, then ``fold_in_steps`` Adam steps towards the row's items (`fold_in`, the item vectors
        frozen); an empty row: the unknown id alone."""
        check_fitted(self, "item_vectors_")
        torch = require_torch()
        start = torch.from_numpy(self._new_user_vectors(None, mean_bag(rows)))
        items = torch.from_numpy(self.item_vectors_)
        return fold_in([start], lambda user: user[0] @ items.T, rows, self.fold_in_steps, self.fold_in_rate)[0].numpy()

    def _new_item_vectors(self, attributes: pd.DataFrame) -> np.ndarray:
        """Item vectors of new items (the unknown id) from their attributes."""
        check_fitted(self, "item_vectors_")
        torch = require_torch()
        network = self._loaded()
        with torch.no_grad():
            unknown = np.full(len(attributes), self.history_.shape[1])
            features = item_features(self.item_encoder_, attributes, len(attributes))
            return self._item_tower(network, unknown, features).numpy()

    def _new_user_vectors(self, attributes: pd.DataFrame | None, history: sp.csr_matrix | None = None) -> np.ndarray:
        """User vectors of new users (the unknown id) from their attributes and/or their history bag."""
        check_fitted(self, "item_vectors_")
        torch = require_torch()
        network = self._loaded()
        n = len(attributes) if attributes is not None else history.shape[0]  # type: ignore[union-attr]
        if history is None:
            history = sp.csr_matrix((n, self.history_.shape[1]), dtype=np.float32)
        with torch.no_grad():
            return self._user_tower(network, np.full(n, self.history_.shape[0]),
                                    user_features(self.user_encoder_, attributes, n), history).numpy()

    def _loaded(self) -> Any:
        if getattr(self, "_network", None) is None:
            self._network = from_arrays(self._build(*self.history_.shape), self.weights_)
        return self._network

    # -- the network ----------------------------------------------------------------------------------------------
    def _build(self, n_users: int, n_items: int) -> Any:
        torch = require_torch()
        torch.manual_seed(self.seed)

        def embedding(rows: int) -> Any:
            layer = torch.nn.Embedding(rows, self.factors)
            torch.nn.init.normal_(layer.weight, std=0.05)
            return layer

        def tower(inputs: int) -> Any:
            return torch.nn.Sequential(torch.nn.Linear(inputs * self.factors, self.hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(self.hidden, self.factors))

        modules = {"user_id": embedding(n_users + 1), "item_id": embedding(n_items + 1),
                   "history": torch.nn.EmbeddingBag(n_items, self.factors, mode="sum"),
                   "user_tower": tower(3), "item_tower": tower(2)}
        torch.nn.init.normal_(modules["history"].weight, std=0.05)
        for side, width in (("user", self.user_features_.shape[1]), ("item", self.item_features_.shape[1])):
            if width:
                modules[f"{side}_features"] = torch.nn.EmbeddingBag(width, self.factors, mode="sum")
                torch.nn.init.normal_(modules[f"{side}_features"].weight, std=0.05)
        return torch.nn.ModuleDict(modules)

    def _bag(self, network: Any, name: str, block: sp.csr_matrix) -> Any:
        torch = require_torch()
        if name not in network:
            return torch.zeros(block.shape[0], self.factors)
        return feature_sums([network[name]], block)[0]

    def _user_tower(self, network: Any, ids: np.ndarray, features: sp.csr_matrix, history: sp.csr_matrix,
                    left_out: Any = None) -> Any:
        """User vectors; ``left_out`` (the target items' weighted history embeddings) is subtracted while training."""
        torch = require_torch()
        recent = self._bag(network, "history", history)
        if left_out is not None:
            recent = recent - left_out
        inputs = torch.cat([network["user_id"](torch.from_numpy(ids.astype(np.int64))),
                            self._bag(network, "user_features", features), recent], dim=1)
        return network["user_tower"](inputs)

    def _item_tower(self, network: Any, ids: np.ndarray, features: sp.csr_matrix) -> Any:
        torch = require_torch()
        inputs = torch.cat([network["item_id"](torch.from_numpy(ids.astype(np.int64))),
                            self._bag(network, "item_features", features)], dim=1)
        return network["item_tower"](inputs)

    def _vectors(self, network: Any, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """User and item vectors; users without history (a users table's quiet users, whose ids were never trained)
        get the unknown id's, from their features alone like new users."""
        torch = require_torch()
        n_users, n_items = history.shape
        ids = np.where(history.getnnz(axis=1) > 0, np.arange(n_users), n_users)
        with torch.no_grad():
            users = self._user_tower(network, ids, self.user_features_, history).numpy()
            items = self._item_tower(network, np.arange(n_items), self.item_features_).numpy()
        return users, items

    def _train(self, matrix: sp.csr_matrix, history: sp.csr_matrix, held: sp.csr_matrix | None,
               epochs: int) -> tuple[Any, Any]:
        torch = require_torch()
        n_users, n_items = matrix.shape
        network = self._build(n_users, n_items)
        positives = matrix.tocoo()
        active_items = np.flatnonzero(matrix.getnnz(axis=0))

        def batches(rng: np.random.Generator) -> Any:
            order = rng.permutation(positives.nnz)
            for batch in minibatches(order, self.batch_size):
                yield positives.row[batch], positives.col[batch], rng

        def loss(model: Any, batch: Any) -> Any:
            users, items, rng = batch
            if len(active_items) <= self.negatives:
                candidates = active_items
            else:
                candidates = np.union1d(items, rng.choice(active_items, self.negatives, replace=False))
            weights = torch.from_numpy(np.asarray(history[users, items], np.float32).ravel())[:, None]
            left_out = weights * model["history"].weight[torch.from_numpy(items.astype(np.int64))]
            user = self._user_tower(model, with_unknown_id(n_users, users, self.id_dropout, rng),
                                    self.user_features_[users], history[users], left_out)
            item = self._item_tower(model, with_unknown_id(n_items, candidates, self.id_dropout, rng),
                                    self.item_features_[candidates])
            targets = torch.from_numpy(np.searchsorted(candidates, items).astype(np.int64))
            return torch.nn.functional.cross_entropy(user @ item.T, targets)

        def validate() -> float:
            users, items = self._vectors(network, history)
            return recall_at(lambda rows: users[rows] @ items.T, matrix, held, 20)

        log = train(network, batches, loss, None if held is None else validate, epochs,
                    self.learning_rate, self.seed, self.patience, self.reg)
        return network, log


def mean_bag(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's items with equal weights summing to one (what the user tower averages)."""
    present = sp.csr_matrix(rows, dtype=np.float32)
    present.data[:] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(present.getnnz(axis=1), 1)) @ present, dtype=np.float32)
