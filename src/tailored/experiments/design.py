"""An experiment's design, as `tailored experiments create` takes it and the store keeps it: named arms, each
serving a registry model (``NAME@VERSION`` or ``NAME@STAGE``) or the non-personalised ``baseline``, with whole-percent
traffic shares summing to 100; a primary metric; guardrails (``metric<=bound`` or ``metric>=bound``, on the arms'
metrics or the serving latency ``p99_ms``); the minimum users per arm before any decision; the surface it runs on;
and a random salt, drawn once, that keys the assignment (`assignment.Assignment`). Every check runs before anything
is stored, and each error names the option at fault."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tailored.errors import ConfigError
from tailored.experiments.assignment import Assignment
from tailored.experiments.statistics import METRICS

BASELINE = "baseline"
"""An arm that serves non-personalised lists (the holdout that measures the engine's own value)."""
LATENCY = "p99_ms"
"""The guardrail on the 99th percentile of an arm's serving latency, in milliseconds."""
SURFACE = "recommendations"
_GUARDRAIL = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Arm:
    name: str
    ref: str
    """``NAME@VERSION`` / ``NAME@STAGE`` of the model registry, or `BASELINE`."""
    share: int


@dataclass(frozen=True)
class Guardrail:
    metric: str
    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


@dataclass(frozen=True)
class Design:
    name: str
    arms: tuple[Arm, ...]
    metric: str
    guardrails: tuple[Guardrail, ...] = ()
    min_users: int = 1000
    surface: str = SURFACE
    salt: str = ""

    def assignment(self, excluded: frozenset[str] = frozenset()) -> Assignment:
        return Assignment(self.salt, {arm.name: arm.share for arm in self.arms}, excluded=excluded)

    @property
    def control(self) -> Arm:
        """The arm the others are compared with: the first."""
        return self.arms[0]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Design:
        return cls(stored["name"], tuple(Arm(**arm) for arm in stored["arms"]), stored["metric"],
                   tuple(Guardrail(**rail) for rail in stored["guardrails"]), stored["min_users"], stored["surface"],
                   stored["salt"])


def design_of(name: str, arms: Sequence[str], traffic: str, metric: str, guardrails: Sequence[str] = (),
              min_users: int = 1000, surface: str = SURFACE,
              resolve: Callable[[str], Path] | None = None) -> Design:
    """The design of ``--arm NAME=REF`` (repeatable, the first is the control), ``--traffic 45,45,10`` (one whole
    percentage per arm, in the same order), ``--metric``, ``--guardrail metric<=bound`` and ``--min-users``, with a
    fresh salt. ``resolve`` (the registry's) checks each model reference exists; ConfigError names the option."""
    if not _NAME.match(name):
        raise ConfigError(f"--name {name!r}: use letters, digits, '_', '.', '-' (at most 100), e.g. new-ranker.")
    if not _NAME.match(surface):
        raise ConfigError(f"--surface {surface!r}: use letters, digits, '_', '.', '-', e.g. {SURFACE}.")
    if len(arms) < 2:
        raise ConfigError("--arm: give at least two arms, e.g. --arm control=shop@production --arm "
                          "treatment=shop@v0002.")
    parsed = [_arm(text, resolve) for text in arms]
    names = [arm_name for arm_name, _ in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"--arm: arm names must differ (got {', '.join(names)}).")
    shares = _shares(traffic, len(parsed))
    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}.")
    if isinstance(min_users, bool) or min_users < 1:
        raise ConfigError(f"--min-users {min_users!r} must be a whole number >= 1.")
    design = Design(name, tuple(Arm(arm_name, ref, share) for (arm_name, ref), share in zip(parsed, shares,
                                                                                           strict=True)),
                    metric, tuple(_guardrail(text) for text in guardrails), int(min_users), surface,
                    secrets.token_hex(16))
    design.assignment()  # the shares make a valid split
    return design


def _arm(text: str, resolve: Callable[[str], Path] | None) -> tuple[str, str]:
    arm_name, sep, ref = text.partition("=")
    arm_name, ref = arm_name.strip(), ref.strip()
    if not sep or not _NAME.match(arm_name) or not ref:
        raise ConfigError(f"--arm {text!r}: write NAME=MODEL_REF (MODEL_REF is NAME@VERSION or NAME@STAGE from the "
                          f"registry, or {BASELINE}), e.g. control=shop@production.")
    if ref != BASELINE:
        if "@" not in ref:
            raise ConfigError(f"--arm {text!r}: the model reference {ref!r} is not NAME@VERSION, NAME@STAGE or "
                              f"{BASELINE}.")
        if resolve is not None:
            try:
                resolve(ref)
            except ConfigError as error:
                raise ConfigError(f"--arm {text!r}: {error}") from error
    return arm_name, ref


def _shares(traffic: str, arms: int) -> list[int]:
    parts = [part.strip() for part in traffic.split(",")]
    if len(parts) != arms:
        raise ConfigError(f"--traffic {traffic!r}: give one share per --arm ({arms}), in the same order, e.g. "
                          f"{','.join(['50', '50'] if arms == 2 else [str(100 // arms)] * arms)}.")
    if not all(part.isdigit() for part in parts):
        raise ConfigError(f"--traffic {traffic!r}: each share is a whole percentage (0-100).")
    shares = [int(part) for part in parts]
    if sum(shares) != 100:
        raise ConfigError(f"--traffic {traffic!r}: the shares sum to {sum(shares)}, not 100.")
    return shares


def _guardrail(text: str) -> Guardrail:
    found = _GUARDRAIL.match(text)
    if found is None:
        raise ConfigError(f"--guardrail {text!r}: write METRIC<=BOUND or METRIC>=BOUND, e.g. {LATENCY}<=30.")
    metric, op, bound = found.group(1), found.group(2), found.group(3)
    if metric not in (*METRICS, LATENCY):
        raise ConfigError(f"--guardrail {text!r}: unknown metric {metric!r}; choose one of "
                          f"{', '.join((*METRICS, LATENCY))}.")
    try:
        value = float(bound)
    except ValueError:
        raise ConfigError(f"--guardrail {text!r}: the bound {bound!r} is not a number.") from None
    return Guardrail(metric, op, value)
