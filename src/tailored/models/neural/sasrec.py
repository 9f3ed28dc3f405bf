"""SASRec: Self-Attentive Sequential Recommendation (Kang & McAuley, ICDM 2018).

Each user is the sequence of their latest ``max_length`` items in time order (ties broken by item id). An item
embedding (scaled by ``sqrt(factors)``) plus a learned positional embedding passes through ``blocks`` causal
self-attention blocks (pre-LayerNorm, as in the paper: ``x + Dropout(g(LayerNorm(x)))``), so the output at position
``t`` sees items ``1..t`` only. The score of item ``i`` after position ``t`` is that output dotted with the same item
embeddings used at the input. Training predicts the next item at every position of each user's history, cut into
windows of ``max_length + 1`` items, with a full softmax cross-entropy over the catalogue (cheap at this scale; the
paper uses a one-negative binary cross-entropy; a 256-negative sampled softmax learned far more slowly per epoch
here). It runs a fixed number of epochs over all rows; with ``patience > 0`` it instead holds out each user's last
item and stops early on its HR@10.

Defaults (one block of width 64, one head, windows of 50, dropout 0.3, 10 epochs of Adam at 0.005 over batches of
64 windows, no holdout) were chosen on the P2 validation split carved from MovieLens 100K training data
(``tailored benchmark movielens-100k --algorithm sasrec --validation``): a second block, two heads, width 128,
windows of 200, dropout 0.5 or more epochs gained nothing there, and one epoch takes a few seconds on one core.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.ordering import time_ordered
from tailored.models.base import Choice, Float, Int, check_fitted, register
from tailored.models.neural.training import from_arrays, recall_at, require_torch, to_arrays, train

logger = logging.getLogger(__name__)


@register("sasrec")
@dataclass(eq=False)
class SASRecScorer:
    factors: int = 64
    blocks: int = 1
    heads: int = 1
    max_length: int = 50
    dropout: float = 0.3
    epochs: int = 10
    learning_rate: float = 5e-3
    batch_size: int = 64
    reg: float = 0.0
    patience: int = 0
    seed: int = 0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    folds_in_history: ClassVar[bool] = True  # a trained user's scores follow from their history: later events fold in
    search_space: ClassVar[dict[str, Float | Int | Choice]] = {
        "factors": Choice((32, 64, 128)),
        "blocks": Int(1, 3),
        "max_length": Choice((25, 50, 100, 200)),
        "dropout": Float(0.0, 0.5),
        "learning_rate": Float(1e-4, 1e-2, log=True),
        "reg": Float(1e-7, 1e-3, log=True),
    }

    def fit(self, dataset: Dataset) -> Self:
        torch = require_torch()
        users, items = time_ordered(dataset)
        n_users, n_items = dataset.n_users, dataset.n_items
        last = _is_last(users, n_users) & (np.bincount(users, minlength=n_users)[users] >= 2) & (self.patience > 0)
        inputs, targets = (torch.from_numpy(a) for a in _windows(users[~last], items[~last], n_users, self.max_length))
        held_out = sp.csr_matrix((np.ones(last.sum()), (users[last], items[last])), shape=(n_users, n_items))
        seen = sp.csr_matrix((np.ones((~last).sum()), (users[~last], items[~last])), shape=(n_users, n_items))
        validation_histories = _latest(users[~last], items[~last], n_users, self.max_length)

        torch.manual_seed(self.seed)
        network = self._network(n_items)
        self._module = network

        def batches(rng: np.random.Generator) -> Iterator[Any]:
            order = torch.from_numpy(rng.permutation(len(inputs)))
            return (order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size))

        def loss(model: Any, batch: Any) -> Any:
            hidden, target = model(inputs[batch]), targets[batch]
            known = target >= 0
            return torch.nn.functional.cross_entropy(hidden[known] @ model.items.weight[:n_items].T, target[known])

        def validate() -> float:
            return recall_at(lambda rows: self._scores(validation_histories[rows]), seen, held_out, k=10)

        log = train(network, batches, loss, validate if self.patience > 0 else None, self.epochs, self.learning_rate,
                    self.seed, self.patience, self.reg)
        self.epochs_ = log.best_epoch if self.patience > 0 else log.epochs  # the epochs behind the kept weights
        logger.info("sasrec epochs=%d kept=%d seconds=%.1f", log.epochs, self.epochs_, log.seconds)
        self.weights_ = to_arrays(network)
        self.sequences_ = _latest(users, items, n_users, self.max_length)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "sequences_")
        users = np.asarray(users, np.int64)
        inside = (users >= 0) & (users < len(self.sequences_))
        histories = np.where(inside[:, None], self.sequences_[np.where(inside, users, 0)], -1)
        scores = self._scores(histories)
        return scores if items is None else scores[:, items]

    def score_sessions(self, histories: Sequence[Sequence[int]], items: np.ndarray | None = None) -> np.ndarray:
        """Scores for anonymous sessions, each a list of item indices in time order (-1, an unknown item, is
        skipped)."""
        check_fitted(self, "sequences_")
        padded = np.full((len(histories), self.max_length), -1, np.int64)
        for row, history in enumerate(histories):
            known = np.asarray(history, np.int64)
            known = known[known >= 0][-self.max_length :]
            padded[row, self.max_length - len(known) :] = known
        scores = self._scores(padded)
        return scores if items is None else scores[:, items]

    # -- the network ----------------------------------------------------------------------------------------
    def _scores(self, histories: np.ndarray) -> np.ndarray:
        """Next-item scores after each left-padded history (-1 = padding); empty histories score zero."""
        torch = require_torch()
        network = getattr(self, "_module", None)
        if network is None:
            n_items = self.weights_["items.weight"].shape[0] - 1
            network = self._module = from_arrays(self._network(n_items), self.weights_)
        n_items = network.items.num_embeddings - 1
        scores = np.zeros((len(histories), n_items), np.float32)
        filled = np.flatnonzero(histories[:, -1] >= 0)
        network.eval()
        with torch.no_grad():
            for start in range(0, len(filled), 1024):
                rows = filled[start : start + 1024]
                hidden = network(torch.from_numpy(np.ascontiguousarray(histories[rows])))[:, -1]
                scores[rows] = (hidden @ network.items.weight[:n_items].T).numpy()
        return scores

    def _network(self, n_items: int) -> Any:
        torch = require_torch()
        nn = torch.nn
        factors, blocks, heads, length, dropout = self.factors, self.blocks, self.heads, self.max_length, self.dropout

        class SelfAttentiveNetwork(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.items = nn.Embedding(n_items + 1, factors, padding_idx=n_items)
                self.positions = nn.Embedding(length, factors)
                self.dropout = nn.Dropout(dropout)
                layer = nn.TransformerEncoderLayer(factors, heads, factors, dropout, batch_first=True, norm_first=True)
                self.encoder = nn.TransformerEncoder(layer, blocks, norm=nn.LayerNorm(factors),
                                                     enable_nested_tensor=False)
                for embedding in (self.items, self.positions):  # unit-variance inputs after the sqrt(factors) scale
                    nn.init.normal_(embedding.weight, std=factors**-0.5)

            def forward(self, histories: Any) -> Any:
                """Outputs (batch, max_length, factors) for left-padded item histories (-1 = padding)."""
                padding = histories < 0
                tokens = torch.where(padding, n_items, histories)
                x = self.items(tokens) * math.sqrt(factors) + self.positions.weight
                x = self.dropout(x) * ~padding[..., None]
                # causal, and real positions never attend to padding (padding attends to itself, avoiding NaN)
                later = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).triu(1)
                blocked = later | (padding[:, :, None] != padding[:, None, :])
                return self.encoder(x, mask=blocked.repeat_interleave(heads, dim=0))

        return SelfAttentiveNetwork()


def _from_end(users: np.ndarray, n_users: int) -> np.ndarray:
    """For rows ordered by user: how many of the user's rows come after each row."""
    ends = np.cumsum(np.bincount(users, minlength=n_users))
    return ends[users] - 1 - np.arange(len(users))


def _is_last(users: np.ndarray, n_users: int) -> np.ndarray:
    return _from_end(users, n_users) == 0


def _latest(users: np.ndarray, items: np.ndarray, n_users: int, length: int) -> np.ndarray:
    """Each user's latest ``length`` items, oldest first, left-padded with -1: (n_users, length)."""
    from_end = _from_end(users, n_users)
    keep = from_end < length
    histories = np.full((n_users, length), -1, np.int64)
    histories[users[keep], length - 1 - from_end[keep]] = items[keep]
    return histories


def _windows(users: np.ndarray, items: np.ndarray, n_users: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Every user's history cut, from its end, into windows of ``length + 1`` items that overlap by one; returns
    inputs and next-item targets, both (windows, length) and left-padded with -1, so each item is a target once."""
    from_end = _from_end(users, n_users)
    counts = np.bincount(users, minlength=n_users)
    per_user = np.where(counts >= 2, (counts - 2) // length + 1, 0)
    first = np.concatenate([[0], np.cumsum(per_user)[:-1]])
    sequences = np.full((per_user.sum(), length + 1), -1, np.int64)
    window, column = from_end // length, length - from_end % length
    again = (from_end % length == 0) & (from_end > 0)  # a window's oldest item also ends the window before it
    for rows, window_of, column_of in ((slice(None), window, column), (again, window - 1, np.zeros_like(column))):
        inside = window_of[rows] < per_user[users[rows]]
        sequences[first[users[rows]][inside] + window_of[rows][inside], column_of[rows][inside]] = items[rows][inside]
    return sequences[:, :-1], sequences[:, 1:]
