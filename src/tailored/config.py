"""Settings shared by every room: parameter conversion, the thread bound and the catalogues of classes by name."""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tailored.errors import ConfigError

T = TypeVar("T", bound=type)


def num_threads() -> int:
    """Threads the engine may use (``TAILORED_NUM_THREADS``, default 2)."""
    raw = os.environ.get("TAILORED_NUM_THREADS", "2")
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"TAILORED_NUM_THREADS={raw!r} must be a positive integer.")
    return int(raw)


def available_memory() -> int:
    """Bytes of memory available to a new allocation: Linux's ``MemAvailable`` (free plus reclaimable caches), or
    less when a container's memory limit (cgroup v2 ``memory.max``) leaves less; elsewhere the physical memory."""
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/proc/meminfo") as meminfo:
            kilobytes = next((line.split()[1] for line in meminfo if line.startswith("MemAvailable:")), None)
        available = int(kilobytes) * 1024 if kilobytes else available
        limit, used = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit.isdigit():
            available = min(available, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return available


def require_dense_items(n_items: int, bytes_per_pair: float, algorithm: str) -> None:
    """Refuse, before allocating anything, a dense items x items fit that the available memory cannot hold."""
    needed, available = bytes_per_pair * n_items**2, available_memory()
    if needed > available:
        raise ConfigError(
            f"Algorithm {algorithm!r} holds dense items x items matrices: {n_items:,} items need about "
            f"{needed / 2**30:,.1f} GiB and {available / 2**30:,.1f} GiB is available. Keep the items with more "
            "interactions (`tailored check --rule min_item_interactions=N --output clean.csv`, or a job's "
            "[data] min_item_interactions), or use an algorithm whose memory grows with the interactions: "
            "item-knn, als, bpr, multvae, multdae, lightgcn."
        )


def read_toml(path: str | Path, what: str) -> tuple[dict[str, Any], str]:
    """A TOML file's document and its text; a ConfigError naming ``what`` (e.g. "Job spec") and the file when it
    does not exist, cannot be read or is not valid TOML (with the parser's line and column)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except FileNotFoundError as error:
        raise ConfigError(f"{what} {path} does not exist.") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read {what} {path}: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} {path} is not valid TOML: {error}") from error


def convert(value: Any, annotation: Any, where: str) -> Any:
    """Convert a parameter value (often a string from the command line or TOML) to its declared type.

    ``"none"`` means None where None is allowed; in a union the value is kept when it already has one of the
    member types, otherwise the members are tried in order.
    """
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"Parameter {where}={value!r} must be one of {list(choices)}.")
        return value
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [t for t in typing.get_args(annotation) if t is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if optional and (value is None or (isinstance(value, str) and value.lower() == "none" and str not in members)):
            return None
        if any(isinstance(member, type) and _is_instance(value, member) for member in members):
            return value
        for member in members:
            try:
                return convert(value, member, where)
            except ConfigError:
                continue
        names = " or ".join(getattr(m, "__name__", str(m)) for m in members)
        raise ConfigError(f"Parameter {where}={value!r} is not a valid {names}.")
    if annotation not in (int, float, str, bool):
        return value
    try:
        if annotation is bool and isinstance(value, str):
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return value.lower() in {"true", "1", "yes"}
        converted = annotation(value)
        if annotation is int and isinstance(value, float) and converted != value:
            raise ValueError(value)
        return converted
    except (TypeError, ValueError) as error:
        raise ConfigError(f"Parameter {where}={value!r} is not a valid {annotation.__name__}.") from error


def _is_instance(value: Any, member: type) -> bool:
    """``isinstance`` where a bool is not an int and an int is a float."""
    if isinstance(value, bool):
        return member is bool
    return isinstance(value, member) or (member is float and isinstance(value, int))


def build_dataclass(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Instantiate a config dataclass from (possibly string) values, naming unknown keys and the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    types = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown {where} setting(s) {unknown}; valid: {sorted(fields)}.")
    return cls(**{key: convert(value, types[key], f"{where}.{key}") for key, value in values.items()})


def json_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for strict JSON: non-finite numbers become strings ("inf") that `convert` reads back."""
    return {k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in params.items()}


class Registry:
    """Classes by name (the algorithms, the stages). ``@registry.register(name)`` adds a class and sets its attribute
    named after the ``kind`` (``cls.stage = name``); ``registry[name]`` finds one, or raises a ConfigError naming the
    valid ones. Importing ``package`` registers every entry, so lookups import it first."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(cls: T) -> T:
            self._classes[name] = cls
            setattr(cls, self.kind, name)
            return cls

        return add

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        importlib.import_module(self.package)
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __getitem__(self, name: str) -> type:
        if name not in self:
            plural = self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"
            raise ConfigError(f"Unknown {self.kind} '{name}'. Valid {plural}: {', '.join(self.names())}.")
        return self._classes[name]
