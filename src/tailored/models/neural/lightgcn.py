"""LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation (He et al., SIGIR 2020).

Layer-0 embeddings ``E^(0)`` of users and items are propagated ``K = layers`` times over the symmetrically
normalised user-item graph, ``E^(k+1) = D^-1/2 A D^-1/2 E^(k)`` with ``A = [[0, R], [R^T, 0]]``, and combined with
weights ``1 / (K + 1)``: ``E = sum_k E^(k) / (K + 1)``; a score is ``x_ui = e_u . e_i``. Training minimises the BPR
loss ``-ln sigma(x_ui - x_uj)`` over (user, seen item i, sampled unseen item j) plus
``reg / 2 (|e_u^(0)|^2 + |e_i^(0)|^2 + |e_j^(0)|^2)`` per triple, with Adam. Training stops early on Recall@20 of a
holdout carved from the training interactions (whose edges are left out of the graph meanwhile); the embeddings are
then trained again from scratch on all training interactions for the best number of epochs, propagated over the whole
training graph and kept as ``user_factors_`` / ``item_factors_``. A user outside the graph (a new user, a session) is
folded in by the same propagation rule (``score_rows``): with items ``h``, its layers are
``e_u^(k+1) = sum_{i in h} e_i^(k) / sqrt(|h| d_i)`` and it has no layer 0 of its own, so
``e_u = sum_{i in h} f_i / sqrt(|h|)`` with ``f_i = sum_{k<K} e_i^(k) / ((K + 1) sqrt(d_i))`` (``item_fold_``).

Defaults: ``factors=64``, ``layers=4``, Adam at 0.02 on batches of 4096 triples, ``reg=1e-3``, ``patience=20``,
chosen on validation splits carved from MovieLens 100K training data (``tailored benchmark movielens-100k
--validation``), never on test data.
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, check_fitted, factor_scores, register
from tailored.models.neural.training import (
    REFIT, TrainingLog, holdout_split, recall_at, require_torch, sample_negatives, train, training_stage,
)

logger = logging.getLogger(__name__)


def normalized_adjacency(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``A = [[0, R], [R^T, 0]]`` (users first; isolated nodes stay 0)."""
    binary = (matrix != 0).astype(np.float32)
    adjacency = sp.bmat([[None, binary], [binary.T, None]], format="csr")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_root = np.zeros_like(degree)
    np.power(degree, -0.5, out=inverse_root, where=degree > 0)
    scale = sp.diags(inverse_root)
    return (scale @ adjacency @ scale).tocsr().astype(np.float32)


@register("lightgcn")
@dataclass(eq=False)
class LightGCNScorer:
    factors: int = 64
    layers: int = 4
    epochs: int = 200
    learning_rate: float = 0.02
    batch_size: int = 4096
    reg: float = 1e-3
    patience: int = 20
    validation_fraction: float = 0.1
    seed: int = 0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Int]] = {
        "factors": Int(16, 256, log=True),
        "layers": Int(1, 6),
        "learning_rate": Float(0.0005, 0.05, log=True),
        "reg": Float(1e-6, 1e-2, log=True),
        "batch_size": Int(256, 8192, log=True),
    }

    def fit(self, dataset: Dataset) -> Self:
        """Early stopping on a holdout picks the epoch count; the kept embeddings are trained on everything."""
        torch = require_torch()
        matrix = dataset.matrix(binary=True)
        epochs = self.epochs
        if self.validation_fraction > 0:
            fitting, held_out = holdout_split(matrix, self.validation_fraction, self.seed)
            if held_out.nnz:
                log = self._train(torch, fitting, held_out, self.epochs)[1]
                logger.info("lightgcn epochs=%d best_epoch=%d recall@20=%.4f seconds=%.1f",
                            log.epochs, log.best_epoch, log.best_score, log.seconds)
                epochs = max(log.best_epoch, 1)
        with training_stage(REFIT):
            module, log = self._train(torch, matrix, None, epochs)
        with torch.no_grad():
            layers = self._layers(torch, _graph_tensor(torch, normalized_adjacency(matrix)), module)
        final = (sum(layers) / (self.layers + 1)).numpy()
        n_users = matrix.shape[0]
        self.user_factors_ = np.ascontiguousarray(final[:n_users], np.float32)
        self.item_factors_ = np.ascontiguousarray(final[n_users:], np.float32)
        inverse_root = 1.0 / np.sqrt(np.maximum(matrix.getnnz(axis=0), 1))
        below_top = sum(layers[:-1]).numpy()[n_users:]
        self.item_fold_ = np.ascontiguousarray(below_top * (inverse_root / (self.layers + 1))[:, None], np.float32)
        self.epochs_ = log.epochs
        return self

    def _train(
        self, torch: Any, fitting: sp.csr_matrix, held_out: sp.csr_matrix | None, epochs: int
    ) -> tuple[Any, TrainingLog]:
        """Fresh layer-0 embeddings trained by BPR on the graph of ``fitting``, stopping early on Recall@20 of
        ``held_out`` when given."""
        n_users, n_items = fitting.shape
        graph = _graph_tensor(torch, normalized_adjacency(fitting))
        generator = torch.Generator().manual_seed(self.seed)
        module = torch.nn.ParameterDict({
            "user_embedding": torch.nn.Parameter(0.1 * torch.randn(n_users, self.factors, generator=generator)),
            "item_embedding": torch.nn.Parameter(0.1 * torch.randn(n_items, self.factors, generator=generator)),
        })
        pairs = fitting.tocoo()
        users, items = pairs.row.astype(np.int64), pairs.col.astype(np.int64)

        def batches(rng: np.random.Generator) -> Any:
            order = rng.permutation(len(users))
            negatives = sample_negatives(rng, users[order], fitting)
            for start in range(0, len(order), self.batch_size):
                block = order[start:start + self.batch_size]
                yield (torch.from_numpy(users[block]), torch.from_numpy(items[block]),
                       torch.from_numpy(negatives[start:start + self.batch_size]))

        def loss(module: Any, batch: Any) -> Any:
            user, item, negative = batch
            final = self._propagate(torch, graph, module)
            items = torch.cat([item, negative])  # few, index_select gathers: their backward is the costly part
            rows = final.index_select(0, torch.cat([user, n_users + items]))
            user_rows, item_rows, negative_rows = rows.split(len(user))
            difference = (user_rows * (item_rows - negative_rows)).sum(dim=1)
            penalty = (module["user_embedding"].index_select(0, user).square().sum()
                       + module["item_embedding"].index_select(0, items).square().sum()) / (2 * len(user))
            return -torch.nn.functional.logsigmoid(difference).mean() + self.reg * penalty

        def validate() -> float:
            final = self._propagate(torch, graph, module)
            users, items = final[:n_users], final[n_users:].T
            return recall_at(lambda rows: (users[rows] @ items).numpy(), fitting, held_out)

        log = train(module, batches, loss, None if held_out is None else validate, epochs, self.learning_rate,
                    self.seed, self.patience)
        return module, log

    def _propagate(self, torch: Any, graph: Any, module: Any) -> Any:
        """Mean of the layer-0 embeddings and their ``layers`` propagations over ``graph``."""
        return sum(self._layers(torch, graph, module)) / (self.layers + 1)

    def _layers(self, torch: Any, graph: Any, module: Any) -> list[Any]:
        """The layer-0 embeddings (users first) and their ``layers`` successive propagations over ``graph``."""
        matmul = _symmetric_matmul(torch)
        layers = [torch.cat([module["user_embedding"], module["item_embedding"]])]
        for _ in range(self.layers):
            layers.append(matmul(graph, layers[-1]))
        return layers

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "user_factors_")
        return factor_scores(self.user_factors_, self.item_factors_, users, items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items), folded into the trained graph without retraining:
        ``e_u = sum_{i in h} f_i / sqrt(|h|)`` (the propagation of a node without a layer 0 of its own)."""
        check_fitted(self, "item_fold_")
        binary = sp.csr_matrix(rows, dtype=np.float32)
        binary.data = (binary.data != 0).astype(np.float32)
        binary.eliminate_zeros()
        users = sp.diags(1.0 / np.sqrt(np.maximum(binary.getnnz(axis=1), 1))) @ (binary @ self.item_fold_)
        return np.asarray(users, np.float32) @ (self.item_factors_ if items is None else self.item_factors_[items]).T


def _graph_tensor(torch: Any, matrix: sp.csr_matrix) -> Any:
    """A symmetric scipy CSR matrix as a torch CSR tensor, with 32-bit indices while they fit (its products with
    dense matrices run about 1.4 times faster than with 64-bit ones)."""
    index = np.int32 if matrix.nnz <= np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(index)),
                                       torch.from_numpy(matrix.indices.astype(index)),
                                       torch.from_numpy(matrix.data), matrix.shape, check_invariants=True)


@functools.cache
def _symmetric_matmul(torch: Any) -> Any:
    """``graph @ dense`` for a symmetric sparse ``graph``, whose gradient is ``graph @ grad``: torch's own backward
    transposes the sparse matrix at every call, which makes training about five times slower."""

    class SymmetricMatmul(torch.autograd.Function):
        @staticmethod
        def forward(context: Any, graph: Any, dense: Any) -> Any:
            context.graph = graph
            return graph @ dense

        @staticmethod
        def backward(context: Any, gradient: Any) -> Any:
            return None, context.graph @ gradient

    return SymmetricMatmul.apply
