"""The Recommender's settings, declared once: each field's default, help text and tuning range live here, and the
manifest (`tailored.registry.model_dir`), the tuning space and the command line read them from these fields."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from tailored.data.transforms import DEFAULT_WEIGHTING, WEIGHTINGS, Weighting
from tailored.models.base import Choice, Float, Int

AUTO_FALLBACK = "auto"
"""The ``fallback`` that picks the demographic model when users carry usable attributes, popularity otherwise."""


def setting(default: Any, help: str, tune: Float | Int | Choice | None = None) -> Any:
    """A settings field: its default, what it does (``help``: the command line's and the docs' text) and, when tuning
    may search it, its range (``tune``)."""
    return dataclasses.field(default=default, metadata={"help": help, "tune": tune})


@dataclass(kw_only=True)
class RecommenderSettings:
    """How a Recommender turns interactions into lists, besides its scorer and stages (keyword-only)."""

    weighting: Weighting = setting(
        DEFAULT_WEIGHTING, "How interaction values weigh in training: raw, log1p, binary, confidence, or auto (chosen "
        "from the data at fit: `resolve_weighting`; the choice is saved).", tune=Choice(WEIGHTINGS))
    confidence_alpha: float = setting(1.0, "The alpha of the confidence weighting, 1 + alpha * value.")
    decay_half_life_days: float | None = setting(
        None, "Interactions count 0.5 ** (age / half-life) from the latest one: recent behaviour counts more (none: "
        "no decay).")
    session_prior: float = setting(
        2.0, "The weight of the new-user prior in a session's scores (sessions of up to 5 items; less for longer "
        "ones); 0: the session alone.")
    exclude_seen: bool = setting(True, "Leave each user's training (and session) items out of their list.")
    fallback: str = setting(
        AUTO_FALLBACK, "The catalogue algorithm that ranks users without training interactions: auto (demographic when "
        "users carry usable attributes, popularity otherwise) or a name such as popularity.")
    batch_size: int = setting(1024, "Users scored per block (memory: batch_size x items scores).")
    candidate_pool: int = setting(1000, "Items a vector index retrieves per user before ranking (with an index).")


def settings_help() -> dict[str, str]:
    """Each setting's help text, by name."""
    return {field.name: field.metadata["help"] for field in dataclasses.fields(RecommenderSettings)}


def settings_space() -> dict[str, Float | Int | Choice]:
    """The settings that tuning may search, with their ranges."""
    return {field.name: field.metadata["tune"] for field in dataclasses.fields(RecommenderSettings)
            if field.metadata["tune"] is not None}


def settings_of(config: RecommenderSettings) -> dict[str, Any]:
    """The values of ``config``'s settings (a Recommender's), by name: what a manifest records."""
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(RecommenderSettings)}


RECOMMENDER_PARAMS: dict[str, Any] = typing.get_type_hints(RecommenderSettings)
"""Each setting's declared type, by name: the Recommender's parameters (not the scorer's); values from the command
line are converted to these types (`build_recommender`)."""
