"""Mult-VAE and Mult-DAE: Variational Autoencoders for Collaborative Filtering (Liang, Krishnan, Hoffman & Jebara,
WWW 2018).

A user's history ``x_u`` (L2-normalised, with dropout on the input) is encoded by an MLP ``[items -> hidden ->
factors]`` (tanh) and decoded by ``[factors -> hidden -> items]`` into logits ``f(z_u)``, whose softmax ``pi(z_u)`` is
a multinomial over items; both models maximise the multinomial log-likelihood ``sum_i x_ui log pi_i(z_u)``. With
``hidden = 0`` both maps are linear: ``[items -> factors -> items]``.

- Mult-DAE (denoising): ``z_u`` is the encoder's output; ``reg`` is the weight decay.
- Mult-VAE (variational): the encoder gives the mean and log-variance of ``q(z_u | x_u)``, ``z_u`` is sampled with
  the reparameterisation trick and the loss adds ``beta * KL(q(z_u | x_u) || N(0, I))``, with ``beta`` annealed
  linearly from 0 over ``anneal_steps`` updates up to ``anneal_cap`` (the paper's partially regularised VAE).

Scoring folds a user in from its training history: the history goes through the encoder (the mean, no sampling,
no dropout) and the decoder, so any history row can be scored without retraining (``score_rows``). Training stops
early on Recall@20 of a holdout carved from the training interactions, then the network is trained again from scratch
on all of them for the best number of epochs. Defaults: no hidden layer (``hidden=0``, ``factors=200``: the shallow,
linear variant beat the paper's ``[items -> 600 -> 200 -> 600 -> items]`` and is faster), input dropout 0.5, Adam at
1e-3, batch 100, no weight decay, ``beta`` annealed over 2000 updates up to ``anneal_cap`` 0.5; all chosen on
validation splits carved from MovieLens 100K training data (``tailored benchmark movielens-100k --validation``),
never on test data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, check_fitted, register, user_rows
from tailored.models.neural.training import (
    REFIT, TrainingLog, from_arrays, holdout_split, recall_at, require_torch, to_arrays, train, training_stage,
)

logger = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.1
SCORING_BLOCK = 1024


def _network(n_items: int, hidden: int, factors: int, encoder_outputs: int) -> Any:
    """Encoder ``[items -> hidden -> encoder_outputs]`` and decoder ``[factors -> hidden -> items]`` with tanh,
    Xavier weights and small normal biases as in the paper (no hidden layer when ``hidden`` is 0)."""
    torch = require_torch()

    def mlp(sizes: list[int]) -> Any:
        layers: list[Any] = []
        for position, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
            linear = torch.nn.Linear(inputs, outputs)
            torch.nn.init.xavier_uniform_(linear.weight)
            torch.nn.init.normal_(linear.bias, std=0.001)
            layers += [linear] if position == len(sizes) - 2 else [linear, torch.nn.Tanh()]
        return torch.nn.Sequential(*layers)

    middle = [hidden] if hidden > 0 else []
    return torch.nn.ModuleDict(
        {"encoder": mlp([n_items, *middle, encoder_outputs]), "decoder": mlp([factors, *middle, n_items])}
    )


@dataclass(eq=False)
class AutoencoderScorer:
    """What Mult-DAE and Mult-VAE share: the network, the multinomial likelihood, training and fold-in scoring."""

    factors: int = 200
    hidden: int = 0
    dropout: float = 0.5
    epochs: int = 200
    learning_rate: float = 1e-3
    batch_size: int = 100
    reg: float = 0.0
    seed: int = 0
    patience: int = 20

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    variational: ClassVar[bool] = False
    folds_in_history: ClassVar[bool] = True  # a trained user's scores follow from their history: later events fold in
    search_space: ClassVar[dict[str, Float | Int]] = {
        "factors": Int(50, 400, log=True),
        "hidden": Int(0, 1000),
        "dropout": Float(0.0, 0.8),
        "learning_rate": Float(1e-4, 1e-2, log=True),
        "reg": Float(1e-6, 1e-1, log=True),
    }

    def fit(self, dataset: Dataset) -> Self:
        matrix = dataset.matrix()
        part, held = holdout_split(matrix, VALIDATION_FRACTION, self.seed)
        network, log = self._train(part, held, self.epochs)
        logger.info("algorithm=%s best_epoch=%d validation=%.4f", self.algorithm, log.best_epoch, log.best_score)  # type: ignore[attr-defined]
        self.epochs_ = max(log.best_epoch, 1)
        with training_stage(REFIT):
            network, _ = self._train(matrix, None, self.epochs_)
        self.weights_ = to_arrays(network)
        self.beta_ = self._beta(self._updates)
        self.user_items_ = matrix
        self._network = network
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores (decoder logits) for users given by their history rows (users x items), folded in without
        retraining."""
        check_fitted(self, "weights_")
        if getattr(self, "_network", None) is None:
            n_items = self.user_items_.shape[1]
            network = _network(n_items, self.hidden, self.factors, self._encoder_outputs)
            self._network = from_arrays(network, self.weights_)
        scores = self._forward(self._network, sp.csr_matrix(rows))
        return scores if items is None else scores[:, items]

    # -- the model ----------------------------------------------------------------------------------------------
    @property
    def _encoder_outputs(self) -> int:
        return 2 * self.factors if self.variational else self.factors

    def _train(self, matrix: sp.csr_matrix, held: sp.csr_matrix | None, epochs: int) -> tuple[Any, TrainingLog]:
        """A fresh network trained on ``matrix``, stopping early on Recall@20 of ``held`` when given."""
        torch = require_torch()
        torch.manual_seed(self.seed)
        network = _network(matrix.shape[1], self.hidden, self.factors, self._encoder_outputs)
        active = np.flatnonzero(np.diff(matrix.indptr))
        self._updates = 0

        def batches(rng: np.random.Generator) -> Any:
            order = rng.permutation(active)
            for start in range(0, len(order), self.batch_size):
                yield torch.from_numpy(matrix[order[start : start + self.batch_size]].toarray())

        def validate() -> float:
            return recall_at(lambda users: self._forward(network, matrix[users]), matrix, held, 20)

        log = train(network, batches, self._loss, None if held is None else validate, epochs,
                    self.learning_rate, self.seed, self.patience, self.reg)
        return network, log

    def _encode(self, network: Any, rows: Any) -> tuple[Any, Any]:
        """Mean and log-variance of ``q(z | x)`` (log-variance None for the DAE)."""
        torch = require_torch()
        inputs = torch.nn.functional.dropout(torch.nn.functional.normalize(rows, dim=1), self.dropout, network.training)
        encoded = network["encoder"](inputs)
        if not self.variational:
            return encoded, None
        return encoded[:, : self.factors], encoded[:, self.factors :]

    def _loss(self, network: Any, rows: Any) -> Any:
        torch = require_torch()
        mean, log_variance = self._encode(network, rows)
        latent = mean if log_variance is None else mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        log_likelihood = (torch.log_softmax(network["decoder"](latent), dim=1) * rows).sum(dim=1).mean()
        self._updates += 1
        if log_variance is None:
            return -log_likelihood
        kl = (-0.5 * (1 + log_variance - mean**2 - log_variance.exp()).sum(dim=1)).mean()
        return -log_likelihood + self._beta(self._updates) * kl

    def _beta(self, updates: int) -> float:
        return 0.0

    def _forward(self, network: Any, rows: sp.csr_matrix) -> np.ndarray:
        """Decoder logits of the encoder's mean for blocks of history rows."""
        torch = require_torch()
        network.eval()
        blocks = []
        with torch.no_grad():
            for start in range(0, rows.shape[0], SCORING_BLOCK):
                dense = torch.from_numpy(rows[start : start + SCORING_BLOCK].toarray().astype(np.float32))
                blocks.append(network["decoder"](self._encode(network, dense)[0]).numpy())
        return np.concatenate(blocks) if blocks else np.empty((0, rows.shape[1]), np.float32)


@register("multdae")
@dataclass(eq=False)
class MultDAEScorer(AutoencoderScorer):
    """Mult-DAE: denoising autoencoder with a multinomial likelihood."""


@register("multvae")
@dataclass(eq=False)
class MultVAEScorer(AutoencoderScorer):
    """Mult-VAE^PR: variational autoencoder with a multinomial likelihood and KL annealing up to ``anneal_cap``."""

    anneal_cap: float = 0.5
    anneal_steps: int = 2000

    variational: ClassVar[bool] = True
    search_space: ClassVar[dict[str, Float | Int]] = {
        **AutoencoderScorer.search_space,
        "anneal_cap": Float(0.05, 1.0),
        "anneal_steps": Int(100, 20000, log=True),
    }

    def _beta(self, updates: int) -> float:
        """KL weight after ``updates`` gradient steps: linear from 0, capped at ``anneal_cap``."""
        return min(self.anneal_cap, updates / self.anneal_steps)
