"""Settings shared by every room: parameter conversion and the thread bound."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

from tailored.errors import ConfigError


def num_threads() -> int:
    """Threads the engine may use (``TAILORED_NUM_THREADS``, default 2)."""
    raw = os.environ.get("TAILORED_NUM_THREADS", "2")
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"TAILORED_NUM_THREADS={raw!r} must be a positive integer.")
    return int(raw)


def convert(value: Any, annotation: Any, where: str) -> Any:
    """Convert a parameter value (often a string) to its declared type, with a clear error."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    target = next((t for t in typing.get_args(annotation) if t is not type(None)), annotation) if is_union else annotation
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"Parameter {where}={value!r} must be one of {list(choices)}.")
        return value
    if value is None or (isinstance(value, str) and value.lower() == "none" and target is not str):
        return None
    try:
        if target is bool and isinstance(value, str):
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return value.lower() in {"true", "1", "yes"}
        if target in (int, float, str, bool):
            converted = target(value)
            if target is int and isinstance(value, float) and converted != value:
                raise ValueError(value)
            return converted
    except (TypeError, ValueError) as error:
        raise ConfigError(f"Parameter {where}={value!r} is not a valid {target.__name__}.") from error
    return value


def build_dataclass(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Instantiate a config dataclass from (possibly string) values, naming unknown keys and the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    types = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown {where} setting(s) {unknown}; valid: {sorted(fields)}.")
    return cls(**{key: convert(value, types[key], f"{where}.{key}") for key, value in values.items()})
