"""What every policy shares: the candidates it chooses from, the slate it returns, the feedback it learns from, the
`Policy` protocol and the spec parser (``softmax:temperature=0.5``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from tailored.config import Registry, build_dataclass
from tailored.errors import ConfigError

POLICIES = Registry("policy", "tailored.policies.catalogue")
"""Policies by name (``greedy``, ``epsilon-greedy``, ``softmax``, ``thompson``, ``linucb``, ``uniform``)."""


@dataclass(frozen=True, eq=False)
class Candidates:
    """What the scorer proposes for one request, best first: external item ids, finite scores, which items were added
    after training (known by their attributes only), and, when the model has them, the user's vector, the items'
    vectors and the request's context features (contextual policies)."""

    item_ids: np.ndarray
    scores: np.ndarray
    new: np.ndarray
    user_vector: np.ndarray | None = None
    item_vectors: np.ndarray | None = None
    context: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True, eq=False)
class Slate:
    """A policy's choice, in display order: ``chosen[p]`` is the candidate (an index into `Candidates`) shown at
    position ``p + 1`` and ``propensities[p]`` the exact probability that the policy puts that candidate there given
    the candidates and its state (1 for a deterministic policy)."""

    chosen: np.ndarray
    propensities: np.ndarray

    def __len__(self) -> int:
        return len(self.chosen)


@dataclass(frozen=True, eq=False)
class Feedback:
    """What was shown or earned, one row per (list, position): item ids, positions (1 = top) and rewards -- None for
    impressions (the items were shown: an exploring policy counts the examination), else the attributed reward of
    each row (click 0/1, or a purchase's value). ``features`` are the rows' contextual features when a contextual
    policy learns from them (the same construction as at choice time)."""

    item_ids: np.ndarray
    positions: np.ndarray
    rewards: np.ndarray | None = None
    features: np.ndarray | None = None


@runtime_checkable
class Policy(Protocol):
    """Decides a slate over candidates. Seeded per request by the caller's ``rng`` (same rng state, same slate);
    `marginals` are the exact probabilities the same call of `choose` would give (its propensities are read from
    them, and off-policy evaluation reads a target policy's from them); `learn` folds feedback into the online state
    (a stateless policy ignores it); `params` round-trips through `parse_policy`."""

    policy: ClassVar[str]

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate: ...

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        """(len(candidates), k): the probability that candidate c is shown at position p + 1."""
        ...

    def learn(self, feedback: Feedback) -> None: ...

    def params(self) -> dict[str, Any]: ...


def parse_policy(spec: str) -> Policy:
    """A policy from its spec: ``NAME`` or ``NAME:key=value,key=value`` (``epsilon-greedy:epsilon=0.1``). An unknown
    name or parameter, or a value out of range, is a ConfigError naming it."""
    name, _, arguments = spec.strip().partition(":")
    values: dict[str, str] = {}
    for argument in filter(None, (part.strip() for part in arguments.split(","))):
        key, equals, value = argument.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"Policy spec {spec!r}: {argument!r} is not key=value (e.g. softmax:temperature=0.5).")
        values[key.strip()] = value.strip()
    return build_dataclass(POLICIES[name.strip()], values, f"policy {name.strip()!r}")


def spec_of(policy: Policy) -> str:
    """The spec that `parse_policy` reads back into ``policy``."""
    params = policy.params()
    return policy.policy + (":" + ",".join(f"{key}={value}" for key, value in params.items()) if params else "")
