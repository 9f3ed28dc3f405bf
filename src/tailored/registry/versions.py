"""The model registry: numbered versions of named models, each a model directory with its manifest (algorithm,
parameters, data fingerprint, metrics, created time), and stage pointers (``production``, ``staging``) with their
history and the audit trail of their changes (when, which, from what, by whom, why), so that ``promote`` and
``rollback`` are each one atomic write of ``registry.json``: a change is never made without its record.

```
REGISTRY/NAME/v0001/            a model directory (tailored train's output, copied)
REGISTRY/NAME/registry.json     {"stages": {"production": ["v0001", "v0002"]},     (last = current)
                                 "changes": [{"at", "action", "stage", "version", "previous", "by", "reason"}, ...]}
```
"""

from __future__ import annotations

import getpass
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from tailored.data.io import staged_directory, write_text
from tailored.errors import ConfigError
from tailored.registry.model_dir import read_manifest

POINTERS = "registry.json"
LOCK = ".registry.lock"


@dataclass(frozen=True)
class ModelRegistry:
    root: Path

    def register(self, name: str, model_dir: str | Path) -> str:
        """Copy a trained model directory in as the next version of ``name``; returns the version."""
        read_manifest(model_dir)  # a model directory of this format, or a clear error
        _check_name(name)
        versions = self.versions(name)
        version = f"v{len(versions) + 1:04d}"
        with staged_directory(self.root / name / version) as staging:
            shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        return version

    def versions(self, name: str) -> list[str]:
        folder = self.root / name
        return sorted(p.name for p in folder.glob("v[0-9][0-9][0-9][0-9]") if p.is_dir()) if folder.exists() else []

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def promote(self, name: str, version: str, stage: str = "production", by: str | None = None,
                reason: str = "") -> None:
        """Point ``stage`` at ``version``, recorded with ``by`` (default: the operating-system user) and ``reason``."""
        if version not in self.versions(name):
            known = ", ".join(self.versions(name)) or "none"
            raise ConfigError(f"Model {name!r} has no version {version!r}; versions: {known}.")
        with self._lock(name):
            pointers, changes = self._read(name)
            history = pointers.setdefault(stage, [])
            changes.append(_change("promote", stage, version, history[-1] if history else None, by, reason))
            history.append(version)
            self._write(name, pointers, changes)

    def rollback(self, name: str, stage: str = "production", by: str | None = None, reason: str = "") -> str:
        """Point ``stage`` back at the version it had before the last promotion; returns it (recorded as
        `promote` records)."""
        with self._lock(name):
            pointers, changes = self._read(name)
            history = pointers.get(stage, [])
            if len(history) < 2:
                raise ConfigError(f"{name}@{stage} has no earlier version to roll back to (history: "
                                  f"{history or 'empty'}).")
            previous = history.pop()
            changes.append(_change("rollback", stage, history[-1], previous, by, reason))
            self._write(name, pointers, changes)
        return history[-1]

    def changes(self, name: str) -> list[dict[str, Any]]:
        """Every promotion and rollback of ``name``'s stages, oldest first: at (epoch seconds), action, stage, version
        (pointed at after), previous, by, reason. Stages changed before the trail existed have none."""
        return self._read(name)[1]

    def current(self, name: str, stage: str) -> str | None:
        history = self._pointers(name).get(stage, [])
        return history[-1] if history else None

    def resolve(self, reference: str) -> Path:
        """``NAME@STAGE`` (or ``NAME@v0003``) to the model directory it points at now."""
        name, sep, stage = reference.partition("@")
        if not sep:
            raise ConfigError("A registry model is NAME@STAGE or NAME@VERSION, e.g. shop@production; "
                              f"got {reference!r}.")
        version = stage if stage in self.versions(name) else self.current(name, stage)
        if version is None:
            raise ConfigError(f"No version of {name!r} is at {stage!r}; promote one with `tailored models promote`.")
        return self.root / name / version

    def describe(self) -> list[dict[str, Any]]:
        """One row per version: name, version, algorithm, created, data fingerprint, metrics (and the one the model
        was selected by, when a job chose it), stages pointing at it."""
        rows = []
        for name in self.names():
            current = {stage: history[-1] for stage, history in self._pointers(name).items() if history}
            for version in self.versions(name):
                manifest = read_manifest(self.root / name / version)
                rows.append({"name": name, "version": version, "algorithm": manifest["algorithm"],
                             "created": manifest["created"], "data": manifest.get("data_fingerprint"),
                             "metrics": manifest.get("metrics"), "selected_by": manifest.get("selected_by"),
                             "stages": ",".join(stage for stage, at in current.items() if at == version)})
        return rows

    def pointer_file(self, name: str) -> Path:
        return self.root / name / POINTERS

    def _pointers(self, name: str) -> dict[str, list[str]]:
        return self._read(name)[0]

    def _lock(self, name: str) -> FileLock:
        """Serialises the read-modify-write of ``name``'s pointers across processes (a loop and a person at once)."""
        (self.root / name).mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / name / LOCK)

    def _read(self, name: str) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
        path = self.pointer_file(name)
        stored = json.loads(path.read_text()) if path.exists() else {}
        return stored.get("stages", {}), stored.get("changes", [])

    def _write(self, name: str, pointers: dict[str, list[str]], changes: list[dict[str, Any]]) -> None:
        write_text(json.dumps({"stages": pointers, "changes": changes}, indent=2), self.pointer_file(name))


def _change(action: str, stage: str, version: str, previous: str | None, by: str | None,
            reason: str) -> dict[str, Any]:
    return {"at": time.time(), "action": action, "stage": stage, "version": version, "previous": previous,
            "by": by or getpass.getuser(), "reason": reason}


def _check_name(name: str) -> None:
    if not name or "@" in name or "/" in name or name.startswith("."):
        raise ConfigError(f"Model name {name!r} must be a plain name (no '@', '/', leading dot).")
