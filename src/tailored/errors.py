"""The engine's exceptions: each says what was wrong, where, and how to fix it."""

from __future__ import annotations


class TailoredError(Exception):
    """Base of every error the engine raises on purpose (the CLI maps it to exit code 2)."""


class DataError(TailoredError, ValueError):
    """Input data is missing, malformed or empty."""


class ConfigError(TailoredError, ValueError):
    """A job spec, algorithm name or parameter is invalid."""


class NotFittedError(TailoredError, RuntimeError):
    """A model was used before `fit`."""

    def __init__(self, owner: object) -> None:
        super().__init__(f"{type(owner).__name__} is not fitted yet: call fit(dataset) first.")


class UnknownIdError(TailoredError, KeyError):
    """An external user or item id is not known to the model."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class IncompatibleModelError(TailoredError):
    """A saved model was written by an incompatible version or for another algorithm."""


class ConflictError(TailoredError):
    """A write contradicts what is stored (an event id sent again with a different payload)."""
