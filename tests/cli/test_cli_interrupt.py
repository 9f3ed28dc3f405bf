"""Stopping a long `tailored train` as a user or a scheduler does: Ctrl-C (SIGINT) or SIGTERM (`kill`, `docker stop`)
on a real process. Nothing partial is written, the exit code says which signal, and the checkpoints resume."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from tests.cli.helpers import ENV, TAILORED

EPOCH = re.compile(r"epoch (\d+)/")


def train_until_first_epoch_then(stop: signal.Signals, folder: Path) -> tuple[int, int, str]:
    """Start a training that would run for hours, send ``stop`` once it reports an epoch.

    Returns the first epoch it reported, its exit code and everything it wrote on stderr."""
    command = [TAILORED, "train", "--interactions", "train.csv", "--algorithm", "multdae", "--param", "epochs=100000",
               "--param", "patience=100000", "--model-dir", "model", "--checkpoint-dir", "checkpoints"]
    process = subprocess.Popen(command, cwd=folder, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    lines = []
    try:
        for line in process.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if match := EPOCH.search(line):
                process.send_signal(stop)
                break
        remaining = process.communicate(timeout=60)[1]
    finally:
        process.kill()
    assert match, "".join(lines)
    return int(match.group(1)), process.returncode, " ".join("".join(lines + [remaining]).split())


def test_sigterm_and_ctrl_c_stop_training_cleanly_and_the_rerun_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    users, items = np.repeat(np.arange(300), 20), rng.integers(0, 200, 300 * 20)
    pd.DataFrame({"user_id": users, "item_id": items}).drop_duplicates().to_csv(tmp_path / "train.csv", index=False)

    first_epoch, code, stderr = train_until_first_epoch_then(signal.SIGTERM, tmp_path)
    assert code == 143, stderr
    assert "terminated: no partial output was written." in stderr
    assert "checkpoints kept in checkpoints: the same command resumes after the last finished epoch." in stderr
    assert not (tmp_path / "model").exists() and any((tmp_path / "checkpoints").iterdir())

    resumed_epoch, code, stderr = train_until_first_epoch_then(signal.SIGINT, tmp_path)
    assert code == 130, stderr
    assert "interrupted: no partial output was written." in stderr
    assert resumed_epoch > first_epoch, stderr
    assert not (tmp_path / "model").exists()
