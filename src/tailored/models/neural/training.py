"""The one training loop shared by the neural scorers: seeded, bounded threads, early stopping on a validation
holdout carved from the training interactions only, best weights restored, checkpoints after every epoch when the
caller asks (`checkpointing`). Not a base class: a function."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from tailored.config import num_threads
from tailored.errors import ConfigError

logger = logging.getLogger(__name__)


def require_torch() -> ModuleType:
    """``torch``, seeded thread pool bounded by TAILORED_NUM_THREADS, or a clear install hint."""
    try:
        import torch
    except ImportError as error:
        raise ConfigError(
            'This algorithm needs PyTorch: install the extra with `pip install ".[torch]"` in the tailored checkout '
            "(torch==2.13.0, CPU)."
        ) from error
    torch.set_num_threads(num_threads())
    return torch


@dataclass
class TrainingLog:
    """What training did: epochs run, the best validation score and its epoch, wall time."""

    epochs: int = 0
    best_epoch: int = -1
    best_score: float = -math.inf
    seconds: float = 0.0
    scores: list[float] = field(default_factory=list)


def holdout_split(matrix: sp.csr_matrix, fraction: float, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out a random ``fraction`` of each user's interactions (users with >= 2 keep at least one): the
    validation data for early stopping, carved from training only."""
    coo = matrix.tocoo()
    rng = np.random.default_rng(seed)
    held = rng.random(coo.nnz) < fraction
    counts = np.bincount(coo.row, minlength=matrix.shape[0])
    kept = np.bincount(coo.row, weights=~held, minlength=matrix.shape[0])
    held &= ~((kept == 0) & (counts >= 1))[coo.row]  # never empty a user's training row
    shape = matrix.shape
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=shape)
    valid = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=shape)
    return train, valid


def sample_negatives(rng: np.random.Generator, users: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """One item per user drawn uniformly from those it has not seen, without rejection: the r-th unseen item of a user
    whose sorted seen items are ``i_0 < i_1 < ...`` is ``r + #{k : i_k - k <= r}``."""
    seen = seen.sorted_indices()
    n_users, n_items = seen.shape
    counts = np.diff(seen.indptr)
    rank = rng.integers(np.maximum(n_items - counts[users], 1))
    shifted = seen.indices - (np.arange(seen.nnz) - np.repeat(seen.indptr[:-1], counts))  # i_k - k
    keys = np.repeat(np.arange(n_users, dtype=np.int64), counts) * n_items + shifted  # sorted
    negatives = rank + np.searchsorted(keys, users * n_items + rank, side="right") - seen.indptr[users]
    return np.minimum(negatives, n_items - 1)  # a user who has seen every item gets one of them


VALIDATION_USERS = 10_000
"""Early stopping ranks at most this many users: a fixed random sample of those holding items out, the same at every
epoch (epochs are compared on the same users, so sampling adds little noise to their differences)."""
RANKED_SCORES = 1 << 24
"""Scores ranked at once by early stopping (a block of users x the catalogue; with their copy, argpartition's indices
and the held-out rows, up to 24 bytes each: about 400 MB). Only catalogues of more than 16,384 items take fewer than
`recall_at`'s 1,024 users at a time."""


def recall_at(score_users: Callable[[np.ndarray], np.ndarray], seen: sp.csr_matrix, relevant: sp.csr_matrix,
              k: int = 20, chunk: int = 1024, max_users: int = VALIDATION_USERS) -> float:
    """Mean Recall@k over users with a held-out item (seen items excluded; at most ``max_users`` of them, a sample
    drawn with a fixed seed): the early-stopping signal. ``score_users(users)`` gives the scores of a block of users
    (users x items); ``chunk`` users are scored and ranked at a time, fewer on a catalogue so wide that their scores
    would pass RANKED_SCORES, so that no users x catalogue matrix is ever held (on many users it would not fit in
    memory). A catalogue of k items or fewer is ranked whole."""
    k = min(k, seen.shape[1])
    chunk = max(1, min(chunk, RANKED_SCORES // seen.shape[1]))
    users = np.flatnonzero(np.diff(relevant.indptr))
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(0).choice(users, max_users, replace=False))
    hits = np.empty(len(users))
    for start in range(0, len(users), chunk):
        rows = users[start : start + chunk]
        block = np.array(score_users(rows), dtype=np.float32, copy=True)
        seen_rows = seen[rows].tocoo()
        block[seen_rows.row, seen_rows.col] = -np.inf
        top = np.argpartition(np.negative(block, out=block), k - 1, axis=1)[:, :k]
        hits[start : start + chunk] = np.take_along_axis(relevant[rows].toarray() > 0, top, axis=1).sum(axis=1)
    return float(np.mean(hits / np.minimum(np.diff(relevant.indptr)[users], k)))


EpochReport = Callable[[int, int, float | None, str], None]
"""Called after each epoch with (epoch, epoch cap, validation score or None, stage: see `training_stage`)."""
_epoch_report: ContextVar[EpochReport | None] = ContextVar("epoch_report", default=None)
_stages: ContextVar[tuple[str, ...]] = ContextVar("training_stages", default=())
REFIT = "refit on all rows"
"""The stage of a model trained again on every row for the epoch count that its held-out run chose."""


@contextlib.contextmanager
def reporting_epochs(report: EpochReport) -> Iterator[None]:
    """Within the block, every training loop calls ``report`` after each epoch (the CLI's progress bar)."""
    token = _epoch_report.set(report)
    try:
        yield
    finally:
        _epoch_report.reset(token)


@contextlib.contextmanager
def training_stage(label: str) -> Iterator[None]:
    """Names what the training loops within the block do (an ensemble member, a pretraining branch, the refit on all
    rows) in their epoch reports; nested stages are joined with ", "."""
    token = _stages.set(_stages.get() + (label,))
    try:
        yield
    finally:
        _stages.reset(token)


class Checkpoints(Protocol):
    """Where the loop keeps its state between epochs (`tailored.registry.checkpoints` writes it to a folder).
    ``run`` numbers the loops of one fit (LightGCN trains twice)."""

    def save(self, run: int, weights: dict[str, dict[str, np.ndarray]], log: TrainingLog, finished: bool) -> None: ...

    def load(self, run: int) -> tuple[dict[str, dict[str, np.ndarray]], TrainingLog, bool] | None: ...


_checkpoints: ContextVar[Checkpoints | None] = ContextVar("checkpoints", default=None)


@contextlib.contextmanager
def checkpointing(checkpoints: Checkpoints) -> Iterator[None]:
    """Within the block, every training loop saves its current and best weights after each epoch and starts from
    what ``checkpoints`` holds for it (a finished loop is not run again; an interrupted one goes on from its last
    epoch, with a fresh optimiser)."""
    token, count = _checkpoints.set(checkpoints), runs.set(0)
    try:
        yield
    finally:
        _checkpoints.reset(token)
        runs.reset(count)


runs: ContextVar[int] = ContextVar("runs", default=0)
"""Training loops started so far within `checkpointing`."""


MIN_STEPS_PER_EPOCH = 50
MIN_BATCH = 32


def minibatches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order``; on small data the batches shrink (not below MIN_BATCH) so that an epoch
    still makes MIN_STEPS_PER_EPOCH updates."""
    size = max(MIN_BATCH, min(batch_size, math.ceil(len(order) / MIN_STEPS_PER_EPOCH)))
    for start in range(0, len(order), size):
        yield order[start : start + size]


@contextlib.contextmanager
def deterministic(torch: ModuleType) -> Iterator[None]:
    """Torch's deterministic kernels for the duration: on several threads some CPU backward passes (EmbeddingBag's)
    otherwise add up in a varying order, and two fits of `two-tower` with the same seed on 2 threads differed (up to
    0.08 in an item vector after 2 epochs on MovieLens 100K; 0 with these kernels, at the same speed)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def check_fold_in(algorithm: str, steps: int, rate: float) -> None:
    """The fold-in parameters, refused at fit time rather than at the first new user's request."""
    if steps < 0:
        raise ConfigError(f"{algorithm}.fold_in_steps must be 0 or more, not {steps}.")
    if rate <= 0:
        raise ConfigError(f"{algorithm}.fold_in_rate must be positive, not {rate}.")


def fold_in(start: Sequence[Any], logits: Callable[[Sequence[Any]], Any], rows: sp.csr_matrix, steps: int,
            rate: float) -> list[Any]:
    """Representations of new users fitted to their history rows without retraining: from ``start`` (tensors, one
    row per user), ``steps`` Adam steps at ``rate`` on the multinomial log-likelihood of each row's items under
    ``logits(user)`` (users x catalogue), every trained weight frozen. An empty row keeps its start (rows that are
    all empty, as the average taste a session is blended with, skip the steps)."""
    torch = require_torch()
    rows = sp.csr_matrix(rows, dtype=np.float32)
    if rows.nnz == 0:
        return [part.detach() for part in start]
    user = [part.detach().clone().requires_grad_(True) for part in start]
    positives = torch.from_numpy(rows.toarray())
    counts = positives.sum(dim=1).clamp(min=1.0)
    optimizer = torch.optim.Adam(user, lr=rate)
    with deterministic(torch):
        for _ in range(steps):
            optimizer.zero_grad()
            likelihood = torch.log_softmax(logits(user), dim=1)
            (-((positives * likelihood).sum(dim=1) / counts).sum()).backward(inputs=user)
            optimizer.step()
    return [part.detach() for part in user]


def train(
    model: Any,
    batches: Callable[[np.random.Generator], Iterable[Any]],
    loss: Callable[[Any, Any], Any],
    validate: Callable[[], float] | None,
    epochs: int,
    learning_rate: float,
    seed: int,
    patience: int = 5,
    weight_decay: float = 0.0,
) -> TrainingLog:
    """Adam over ``batches(rng)`` each epoch; after each epoch ``validate()`` (higher is better) under no_grad;
    stops after ``patience`` epochs without improvement and restores the best weights. Within `checkpointing`,
    resumes from and saves to the checkpoints."""
    torch = require_torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    log, best_state, start = TrainingLog(), None, time.perf_counter()
    checkpoints, run = _checkpoints.get(), runs.get()
    runs.set(run + 1)
    saved = checkpoints.load(run) if checkpoints is not None else None
    if saved is not None:
        weights, log, finished = saved
        from_arrays(model, weights["best" if finished else "current"])
        best_state = _tensors(torch, weights["best"])
        if finished:
            return log
        logger.info("resuming run=%d after epoch=%d", run, log.epochs)
    with deterministic(torch):
        for epoch in range(log.epochs, epochs):
            model.train()
            for batch in batches(rng):
                optimizer.zero_grad()
                loss(model, batch).backward()
                optimizer.step()
            log.epochs = epoch + 1
            report = _epoch_report.get()
            score = None
            if validate is not None:
                model.eval()
                with torch.no_grad():
                    score = validate()
                log.scores.append(score)
                logger.info("epoch=%d validation=%.4f", epoch + 1, score)
                if score > log.best_score:
                    log.best_epoch, log.best_score = epoch + 1, score
                    best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            stop = validate is not None and epoch + 1 - log.best_epoch >= patience
            if checkpoints is not None and not stop and epoch + 1 < epochs:
                current = to_arrays(model)
                best = _numpy(best_state) if best_state else current
                checkpoints.save(run, {"current": current, "best": best}, log, False)
            if report is not None:
                report(epoch + 1, epochs, score, ", ".join(_stages.get()))
            if stop:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    log.seconds = time.perf_counter() - start
    if checkpoints is not None:
        final = to_arrays(model)
        checkpoints.save(run, {"current": final, "best": final}, log, True)
    return log


def _numpy(state: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in state.items()}


def _tensors(torch: ModuleType, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {name: torch.from_numpy(np.array(array)) for name, array in arrays.items()}


def to_arrays(model: Any) -> dict[str, np.ndarray]:
    """A module's weights as named numpy arrays (what the model directory stores)."""
    return _numpy(model.state_dict())


def from_arrays(model: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Load named arrays back into ``model``; a mismatch (weights of another algorithm) is a clear error."""
    torch = require_torch()
    expected = set(model.state_dict())
    if set(arrays) != expected:
        raise ConfigError(
            f"Saved weights {sorted(arrays)[:4]}... do not fit {type(model).__name__} (expects "
            f"{sorted(expected)[:4]}...): the model directory was written by another algorithm or version."
        )
    model.load_state_dict({name: torch.from_numpy(np.asarray(array)) for name, array in arrays.items()})
    model.eval()
    return model
