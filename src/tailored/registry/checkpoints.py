"""Training checkpoints in a folder: after each epoch of each training loop, its current and best weights and its
log, written atomically (a staged folder swapped in, as model directories are), so that an interrupted
``tailored train --checkpoint-dir DIR`` goes on where it stopped when run again. A checkpoint belongs to one
training (algorithm, parameters, data fingerprint); another training refuses it rather than mixing weights."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from tailored.data.io import staged_directory
from tailored.errors import ConfigError
from tailored.models.neural.training import TrainingLog

WEIGHTS, STATE = "weights.npz", "state.json"
Weights = dict[str, dict[str, np.ndarray]]


class DirectoryCheckpoints:
    """`tailored.models.neural.training.Checkpoints` kept in ``directory`` (one sub-folder per training loop)."""

    def __init__(self, directory: str | Path, training: str) -> None:
        self.directory = Path(directory)
        self.training = training

    def save(self, run: int, weights: Weights, log: TrainingLog, finished: bool) -> None:
        arrays = {f"{kind}.{name}": array for kind, named in weights.items() for name, array in named.items()}
        state = {"training": self.training, "finished": finished, "log": dataclasses.asdict(log)}
        with staged_directory(self.directory / f"run{run}") as staging:
            np.savez(staging / WEIGHTS, **arrays)
            (staging / STATE).write_text(json.dumps(state))

    def load(self, run: int) -> tuple[Weights, TrainingLog, bool] | None:
        folder = self.directory / f"run{run}"
        if not (folder / STATE).exists():
            return None
        state = json.loads((folder / STATE).read_text())
        if state["training"] != self.training:
            raise ConfigError(f"The checkpoint in {self.directory} belongs to another training ({state['training']}); "
                              "delete it or choose another --checkpoint-dir.")
        weights: Weights = {}
        with np.load(folder / WEIGHTS, allow_pickle=False) as stored:
            for key in stored.files:
                kind, name = key.split(".", 1)
                weights.setdefault(kind, {})[name] = stored[key]
        return weights, TrainingLog(**state["log"]), bool(state["finished"])

    def remove(self) -> None:
        """Drop the checkpoints once the trained model is safely saved."""
        shutil.rmtree(self.directory, ignore_errors=True)
