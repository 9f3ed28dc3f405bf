"""Splitters by name: the one table the CLI, job specs and validation carving share."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.split.base import Split
from tailored.split.cold_start import split_cold_items, split_cold_users
from tailored.split.leave_out import split_leave_last_out, split_leave_one_out_random
from tailored.split.per_user import split_per_user
from tailored.split.random import split_random
from tailored.split.temporal import split_temporal

SPLITTERS: dict[str, Callable[..., Split]] = {
    "per_user": split_per_user,
    "random": split_random,
    "leave_last_out": split_leave_last_out,
    "leave_one_out_random": split_leave_one_out_random,
    "temporal": split_temporal,
    "cold_users": split_cold_users,
    "cold_items": split_cold_items,
}


def split_by_name(dataset: Dataset, method: str, strict: bool = True, **params: Any) -> Split:
    """Split with the named splitter. ``None`` parameters are left at their defaults; with ``strict`` a parameter
    the splitter does not take is an error, otherwise it is ignored (a job spec's split section may hold the
    settings of several methods)."""
    splitter, kwargs = splitter_call(SPLITTERS, method, strict, params)
    return splitter(dataset, **kwargs)


def splitter_call(splitters: dict[str, Callable[..., Any]], method: str, strict: bool,
                  params: dict[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The splitter named ``method`` in ``splitters`` and the keywords of ``params`` it takes (its first parameter
    is the data): None values left at their defaults, the others an error with ``strict``, else ignored."""
    if method not in splitters:
        raise ConfigError(f"Unknown split method '{method}'. Valid methods: {', '.join(splitters)}.")
    splitter = splitters[method]
    accepted = set(list(inspect.signature(splitter).parameters)[1:])
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - accepted)
    if unknown and strict:
        raise ConfigError(f"Split method '{method}' takes {sorted(accepted)}; got unexpected {unknown}.")
    return splitter, {k: v for k, v in given.items() if k in accepted}
