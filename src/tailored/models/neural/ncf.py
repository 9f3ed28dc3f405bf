"""NeuMF: Neural Collaborative Filtering (He, Liao, Zhang, Nie, Hu & Chua, WWW 2017), with side features.

Two branches score a (user, item) pair: GMF, the element-wise product ``p_u * q_i`` weighted by a learned vector
(matrix factorisation generalised), and an MLP over the concatenation ``[p'_u, q'_i]`` (ReLU tower, ``layers``);
the last layers of both are concatenated into one logit. Training maximises the multinomial log-likelihood of each
user's items, a softmax over the catalogue (as in Mult-VAE, Liang et al. 2018, instead of the paper's pointwise log
loss with 4 sampled negatives; Rendle et al. 2020 find tuning matters more than the architecture); on
catalogues larger than ``negatives`` the softmax runs over the batch's items plus ``negatives`` uniformly sampled
ones. As in the paper (section 3.4.1), GMF and MLP are first trained alone and NeuMF is initialised from both, the
output weights concatenated as ``[alpha h_GMF, (1 - alpha) h_MLP]`` with alpha 0.5, then fine-tuned at a lower step
(``pretrain``, ``fine_tune_rate``); GMF alone trains at ``gmf_rate`` times the step, without which it could stall at
popularity's level until early stopping when no item attribute helps it start. Adam; each stage stops early on
Recall@20 of a holdout carved from the training interactions; the stages are then rerun on all of them for their best
numbers of epochs.

Side features make it a hybrid: every user (item) representation is its id embedding plus the sum of the embeddings
of its attribute tokens (`side_features`: demographics, segments; categories, ``|`` lists, TF-IDF text, price bins,
embedding columns). During training each id is replaced by the "unknown" id with probability ``id_dropout``
(DropoutNet, Volkovs et al. 2017), so users and items unseen in training are scored from their features alone:
new users from ``score_attributes``, new items from ``score_new_items``. The defaults were chosen on validation
splits carved from MovieLens 100K training data (``tailored benchmark movielens-100k --validation``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import Float, Int, check_fitted, register, user_rows
from tailored.models.neural.side_features import (
    feature_sums, item_features, side_features, user_features, with_unknown_id,
)
from tailored.models.neural.training import (
    MIN_BATCH, MIN_STEPS_PER_EPOCH, TrainingLog, check_fold_in, fold_in, from_arrays, holdout_split, minibatches,
    REFIT, recall_at, require_torch, to_arrays, train, training_stage,
)

logger = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.1
PAIR_BLOCK = 2_000_000  # user x item pairs folded in at once (with gradients)
SCORING_PAIRS = 65_536
"""User x item pairs through the MLP at once when scoring: small enough for the hidden layers to stay in the CPU's
caches (60,000 users x 10,000 items, 2 threads: 2,048 users in 5.0 s with blocks of 2 million pairs, 1.5 s with
these; the same scores)."""


@register("ncf")
@dataclass(eq=False)
class NCFScorer:
    """NeuMF (GMF + MLP) over id embeddings plus side-feature embeddings; cold users and items from features.
    ``batch_size`` counts users per step."""

    factors: int = 64
    layers: str = "32,16,8"
    negatives: int = 2000
    epochs: int = 50
    learning_rate: float = 2e-3
    batch_size: int = 256
    reg: float = 3e-5
    id_dropout: float = 0.1
    patience: int = 3
    max_text_features: int = 2000
    pretrain: bool = True
    fine_tune_rate: float = 0.2
    gmf_rate: float = 4.0
    fold_in_steps: int = 50
    fold_in_rate: float = 0.1
    seed: int = 0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = True
    handles_cold_items: ClassVar[bool] = True
    search_space: ClassVar[dict[str, Float | Int]] = {
        "factors": Int(8, 128, log=True),
        "negatives": Int(200, 5000, log=True),
        "learning_rate": Float(1e-4, 1e-2, log=True),
        "reg": Float(1e-7, 1e-3, log=True),
        "id_dropout": Float(0.0, 0.5),
    }

    def fit(self, dataset: Dataset) -> Self:
        check_fold_in("ncf", self.fold_in_steps, self.fold_in_rate)
        self.user_encoder_, self.item_encoder_, self.user_features_, self.item_features_ = side_features(
            dataset, self.max_text_features)
        matrix = dataset.matrix(binary=True)
        part, held = holdout_split(matrix, VALIDATION_FRACTION, self.seed)
        _, logs = self._fit_stages(part, held, None)
        self.epochs_ = max(logs[-1].best_epoch, 1)
        with training_stage(REFIT):
            network, _ = self._fit_stages(matrix, None, [max(log.best_epoch, 1) for log in logs])
        self.weights_ = to_arrays(network)
        self.user_items_ = matrix
        self._network = network
        return self

    def _fit_stages(self, matrix: sp.csr_matrix, held: sp.csr_matrix | None,
                    epochs: list[int] | None) -> tuple[Any, list[TrainingLog]]:
        """NeuMF trained from scratch, or (``pretrain``, section 3.4.1 of the paper) GMF and MLP trained alone, NeuMF
        initialised from both (`_fused`) and fine-tuned at ``fine_tune_rate`` times the learning rate. ``epochs``:
        one count per stage (None: each stops early on ``held``)."""
        stages = ([("GMF", ("gmf",), self.gmf_rate * self.learning_rate), ("MLP", ("mlp",), self.learning_rate),
                   ("NeuMF", ("gmf", "mlp"), self.fine_tune_rate * self.learning_rate)] if self.pretrain
                  else [("NeuMF", ("gmf", "mlp"), self.learning_rate)])
        networks, logs = [], []
        for stage, (name, branches, rate) in enumerate(stages):
            init = _fused(networks[0], networks[1], self.factors) if len(networks) == 2 else None
            cap = self.epochs if epochs is None else epochs[stage]
            with training_stage(name):
                network, log = self._train(matrix, held, cap, branches, rate, init)
            if held is not None:
                logger.info("algorithm=ncf branches=%s best_epoch=%d validation=%.4f", "+".join(branches),
                            log.best_epoch, log.best_score)
            networks.append(network)
            logs.append(log)
        return networks[-1], logs

    # -- scoring ----------------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        users = np.asarray(users, np.int64)
        return self._score_ids(self._trained_ids(users), user_rows(self.user_features_, users), items)

    def score_attributes(self, attributes: pd.DataFrame, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users known only by an attribute table (unknown id, features from their attributes)."""
        check_fitted(self, "weights_")
        features = user_features(self.user_encoder_, attributes, len(attributes))
        return self._score_ids(np.full(len(attributes), self.user_items_.shape[0]), features, items)

    def score_new_items(self, users: np.ndarray, attributes: pd.DataFrame,
                        user_attributes: pd.DataFrame | None = None) -> np.ndarray:
        """Scores of items known only by an attribute table (unknown id, features from their attributes); the users
        are new ones described by ``user_attributes`` when given."""
        check_fitted(self, "weights_")
        users = np.asarray(users, np.int64)
        items = item_features(self.item_encoder_, attributes, len(attributes))
        network = self._loaded()
        features = (user_rows(self.user_features_, users) if user_attributes is None
                    else user_features(self.user_encoder_, user_attributes, len(user_attributes)))
        user_parts = self._represent(network, "user", self._trained_ids(users), features)
        item_parts = self._represent(network, "item", np.full(len(attributes), self.user_items_.shape[1]), items)
        return self._pairwise(network, user_parts, item_parts)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by their history rows (users x items), folded in without retraining: from the
        unknown id's (GMF, MLP) vectors, ``fold_in_steps`` Adam steps on the training loss (the multinomial
        likelihood of the row's items over the catalogue), every trained weight frozen."""
        check_fitted(self, "weights_")
        torch = require_torch()
        network = self._loaded()
        rows = sp.csr_matrix(rows, dtype=np.float32)
        n_users, n_items = self.user_items_.shape
        no_features = sp.csr_matrix((rows.shape[0], self.user_features_.shape[1]), dtype=np.float32)
        with torch.no_grad():
            start = self._represent(network, "user", np.full(rows.shape[0], n_users), no_features)
            item = self._represent(network, "item", np.arange(n_items), self.item_features_)
        step = max(1, PAIR_BLOCK // max(n_items, 1))
        blocks = [fold_in((start[0][i : i + step], start[1][i : i + step]),
                          lambda user: self._grid(network, (user[0], user[1]), item), rows[i : i + step],
                          self.fold_in_steps, self.fold_in_rate)
                  for i in range(0, rows.shape[0], step)]
        user = (torch.cat([block[0] for block in blocks]), torch.cat([block[1] for block in blocks]))
        scores = self._pairwise(network, user, item)
        return scores if items is None else scores[:, items]

    def _trained_ids(self, users: np.ndarray) -> np.ndarray:
        """The users' ids, or the unknown id for users the network never trained: unknown to it, or without
        interactions (a users table's quiet users), who are scored from their features alone like new users."""
        n_users = self.user_items_.shape[0]
        trained = (users >= 0) & (users < n_users)
        trained[trained] = np.diff(self.user_items_.indptr)[users[trained]] > 0
        return np.where(trained, users, n_users)

    def _score_ids(self, user_ids: np.ndarray, features: sp.csr_matrix, items: np.ndarray | None) -> np.ndarray:
        network = self._loaded()
        item_ids = np.arange(self.user_items_.shape[1]) if items is None else np.asarray(items)
        user_parts = self._represent(network, "user", user_ids, features)
        item_parts = self._represent(network, "item", item_ids, self.item_features_[item_ids])
        return self._pairwise(network, user_parts, item_parts)

    def _loaded(self) -> Any:
        if getattr(self, "_network", None) is None:
            self._network = from_arrays(self._build(*self.user_items_.shape), self.weights_)
        return self._network

    # -- the network ----------------------------------------------------------------------------------------------
    def _build(self, n_users: int, n_items: int) -> Any:
        """Id embeddings (one extra row: the unknown id), feature bags, the MLP tower and the fusion layer."""
        torch = require_torch()
        torch.manual_seed(self.seed)
        sizes = [int(size) for size in self.layers.split(",") if size.strip()]
        if not sizes:
            raise ConfigError(f"ncf.layers must list at least one MLP layer size (e.g. '64,32,16'), got "
                              f"{self.layers!r}.")
        modules: dict[str, Any] = {}
        for branch in ("gmf", "mlp"):
            for side, n, width in (("user", n_users, self.user_features_.shape[1]),
                                   ("item", n_items, self.item_features_.shape[1])):
                modules[f"{side}_{branch}"] = torch.nn.Embedding(n + 1, self.factors)
                torch.nn.init.normal_(modules[f"{side}_{branch}"].weight, std=0.01)
                if width:
                    modules[f"{side}_{branch}_features"] = torch.nn.EmbeddingBag(width, self.factors, mode="sum")
                    torch.nn.init.normal_(modules[f"{side}_{branch}_features"].weight, std=0.01)
        tower: list[Any] = []
        for inputs, outputs in zip([2 * self.factors, *sizes], sizes):
            tower += [torch.nn.Linear(inputs, outputs), torch.nn.ReLU()]
        modules["tower"] = torch.nn.Sequential(*tower)
        modules["output"] = torch.nn.Linear(self.factors + sizes[-1], 1)
        return torch.nn.ModuleDict(modules)

    def _represent(self, network: Any, side: str, ids: np.ndarray, features: sp.csr_matrix) -> tuple[Any, Any]:
        """(GMF, MLP) vectors: id embedding plus the feature bag."""
        torch = require_torch()
        index = torch.from_numpy(np.asarray(ids, np.int64))
        parts = [network[f"{side}_{branch}"](index) for branch in ("gmf", "mlp")]
        names = [f"{side}_{branch}_features" for branch in ("gmf", "mlp")]
        bags = [network[name] for name in names if name in network]  # both branches have their feature bag, or neither
        if bags:
            parts = [part + summed for part, summed in zip(parts, feature_sums(bags, features))]
        return parts[0], parts[1]

    def _grid(self, network: Any, user: tuple[Any, Any], item: tuple[Any, Any],
              branches: tuple[str, ...] = ("gmf", "mlp")) -> Any:
        """Logits of every user row against every item row (of the given branches: one alone when pretraining). The
        tower's first layer is split into its user and item halves, applied once per user and per item, so only
        their sum and the deeper layers run per pair."""
        torch = require_torch()
        tower, output, first = network["tower"], network["output"], network["tower"][0]
        logits = output.bias
        if "gmf" in branches:
            logits = logits + (user[0] * output.weight[0, : self.factors]) @ item[0].T
        if "mlp" in branches:
            user_half = user[1] @ first.weight[:, : self.factors].T + first.bias
            item_half = item[1] @ first.weight[:, self.factors :].T
            hidden = tower[1:](torch.relu(user_half[:, None, :] + item_half[None, :, :]))
            logits = logits + hidden @ output.weight[0, self.factors :]
        return logits

    def _pairwise(self, network: Any, user: tuple[Any, Any], item: tuple[Any, Any],
                  branches: tuple[str, ...] = ("gmf", "mlp")) -> np.ndarray:
        """`_grid` in blocks of users (SCORING_PAIRS pairs at once), as numpy."""
        torch = require_torch()
        scores = np.empty((user[0].shape[0], item[0].shape[0]), np.float32)
        step = max(1, SCORING_PAIRS // max(item[0].shape[0], 1))
        with torch.no_grad():
            for start in range(0, len(scores), step):
                rows = slice(start, start + step)
                scores[rows] = self._grid(network, (user[0][rows], user[1][rows]), item, branches).numpy()
        return scores

    def _train(self, matrix: sp.csr_matrix, held: sp.csr_matrix | None, epochs: int, branches: tuple[str, ...],
               learning_rate: float, init: dict[str, np.ndarray] | None) -> tuple[Any, Any]:
        torch = require_torch()
        n_users, n_items = matrix.shape
        network = self._build(n_users, n_items)
        if init is not None:
            from_arrays(network, init)

        active = np.flatnonzero(np.diff(matrix.indptr))
        passes = max(1, MIN_STEPS_PER_EPOCH * MIN_BATCH // max(len(active), 1))  # small data: several per epoch

        def batches(rng: np.random.Generator) -> Any:
            order = np.concatenate([rng.permutation(active) for _ in range(passes)])
            for users in minibatches(order, self.batch_size):
                rows = matrix[users]
                items = (np.arange(n_items) if self.negatives >= n_items
                         else np.union1d(rows.indices, rng.integers(n_items, size=self.negatives)))
                yield users, items, torch.from_numpy(rows[:, items].toarray().astype(np.float32)), rng

        def loss(model: Any, batch: Any) -> Any:
            users, items, positives, rng = batch
            user = self._represent(model, "user", with_unknown_id(n_users, users, self.id_dropout, rng),
                                   self.user_features_[users])
            item = self._represent(model, "item", with_unknown_id(n_items, items, self.id_dropout, rng),
                                   self.item_features_[items])
            log_likelihood = torch.log_softmax(self._grid(model, user, item, branches), dim=1)
            return -(positives * log_likelihood).sum() / positives.sum()

        def validate() -> float:
            user = self._represent(network, "user", np.arange(n_users), self.user_features_)
            item = self._represent(network, "item", np.arange(n_items), self.item_features_)
            return recall_at(lambda rows: self._pairwise(network, (user[0][rows], user[1][rows]), item, branches),
                             matrix, held, 20)

        log = train(network, batches, loss, None if held is None else validate, epochs,
                    learning_rate, self.seed, self.patience, self.reg)
        return network, log


def _fused(gmf: Any, mlp: Any, factors: int, alpha: float = 0.5) -> dict[str, np.ndarray]:
    """NeuMF weights from a GMF and an MLP trained alone: each branch's embeddings and layers, the output weights
    concatenated as ``[alpha h_GMF, (1 - alpha) h_MLP]`` (He et al. 2017, eq. 13)."""
    gmf_weights, mlp_weights = to_arrays(gmf), to_arrays(mlp)
    weights = {name: (gmf_weights if "gmf" in name else mlp_weights)[name] for name in gmf_weights}
    weights["output.weight"] = np.concatenate([alpha * gmf_weights["output.weight"][:, :factors],
                                               (1 - alpha) * mlp_weights["output.weight"][:, factors:]], axis=1)
    weights["output.bias"] = alpha * gmf_weights["output.bias"] + (1 - alpha) * mlp_weights["output.bias"]
    return weights
