"""The Stage contract and the catalogue of stages by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.rank.context import Context


@runtime_checkable
class Stage(Protocol):
    """Adjusts a block of candidate scores (users x items, -inf = excluded) for a request context.

    Hyperparameters are dataclass fields and learned state lives in ``name_`` attributes (arrays or scalars), as for
    scorers, so a model directory saves stages too. ``fit`` learns from the training interactions.
    """

    def fit(self, dataset: Dataset) -> Self: ...

    def adjust(self, scores: np.ndarray, users: np.ndarray, context: Context) -> np.ndarray: ...


STAGES: dict[str, type] = {}


def register_stage(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        STAGES[name] = cls
        cls.stage = name
        return cls

    return add


def stage_names() -> list[str]:
    import tailored.rank  # noqa: F401  (registers every stage)

    return sorted(STAGES)


def create_stage(name: str, params: Mapping[str, Any] | None = None) -> Stage:
    if name not in stage_names():
        raise ConfigError(f"Unknown stage '{name}'. Valid stages: {', '.join(stage_names())}.")
    return STAGES[name](**dict(params or {}))
