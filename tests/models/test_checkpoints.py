"""Checkpoints of the shared training loop: an interrupted training resumes where it stopped, a finished one is not
run again, another training's checkpoint is refused, and the command line cleans up after saving the model. In a
log (stderr not a terminal) the command line reports the epochs as plain lines; every report names its stage."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import require_extra

require_extra("torch", "torch")

from tailored.data.dataset import Dataset  # noqa: E402
from tailored.errors import ConfigError  # noqa: E402
from tailored.models import create_scorer  # noqa: E402
from tailored.models.neural.training import checkpointing, reporting_epochs  # noqa: E402
from tailored.registry.checkpoints import DirectoryCheckpoints  # noqa: E402


def small() -> Dataset:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": rng.integers(0, 60, 900).astype(str),
                          "item_id": rng.integers(0, 40, 900).astype(str)})
    return Dataset.from_frame(frame.drop_duplicates())


class Interrupt(Exception):
    pass


def test_an_interrupted_training_resumes_after_its_last_epoch(tmp_path) -> None:
    data, seen = small(), []
    checkpoints = DirectoryCheckpoints(tmp_path / "ckpt", "multdae on small")

    def stop_after_two(epoch: int, epochs: int, score: float | None, stage: str) -> None:
        seen.append(epoch)
        if epoch == 2:
            raise Interrupt  # as a Ctrl-C would, after the epoch's checkpoint

    with pytest.raises(Interrupt), checkpointing(checkpoints), reporting_epochs(stop_after_two):
        create_scorer("multdae", {"epochs": 5, "patience": 10}).fit(data)
    weights, log, finished = checkpoints.load(0)
    assert (log.epochs, finished) == (2, False) and set(weights) == {"current", "best"}

    seen.clear()
    with checkpointing(checkpoints), reporting_epochs(lambda epoch, epochs, score, stage: seen.append(epoch)):
        resumed = create_scorer("multdae", {"epochs": 5, "patience": 10}).fit(data)
    # run 0 (early stopping on a holdout) goes on from epoch 3; run 1 (the refit on all data) starts afresh
    assert seen[:4] == [3, 4, 5, 1]
    assert checkpoints.load(0)[2] is True and checkpoints.load(1)[2] is True
    assert resumed.score(np.arange(3)).shape == (3, data.n_items)

    seen.clear()
    with checkpointing(checkpoints), reporting_epochs(lambda epoch, epochs, score, stage: seen.append(epoch)):
        again = create_scorer("multdae", {"epochs": 5, "patience": 10}).fit(data)
    assert seen == []  # finished: the saved weights are taken as they are
    np.testing.assert_allclose(again.score(np.arange(3)), resumed.score(np.arange(3)), rtol=1e-6)


def test_another_trainings_checkpoint_is_refused(tmp_path) -> None:
    data = small()
    with checkpointing(DirectoryCheckpoints(tmp_path / "ckpt", "multdae, first data")):
        create_scorer("multdae", {"epochs": 2}).fit(data)
    with pytest.raises(ConfigError, match="belongs to another training"), \
            checkpointing(DirectoryCheckpoints(tmp_path / "ckpt", "multdae, other data")):
        create_scorer("multdae", {"epochs": 2}).fit(data)


def test_command_line_checkpoints_are_removed_once_the_model_is_saved(tmp_path) -> None:
    from tests.cli.helpers import cli, ok

    small().to_frame()[["user_id", "item_id"]].to_csv(tmp_path / "train.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "multdae", "--param", "epochs=2",
           "--checkpoint-dir", "ckpt", "--model-dir", "model", cwd=tmp_path))
    assert (tmp_path / "model" / "manifest.json").exists() and not (tmp_path / "ckpt").exists()


def test_command_line_training_in_a_log_prints_its_epochs(tmp_path) -> None:
    from tests.cli.helpers import cli, ok

    small().to_frame()[["user_id", "item_id"]].to_csv(tmp_path / "train.csv", index=False)
    log = ok(cli("train", "--interactions", "train.csv", "--algorithm", "multdae", "--param", "epochs=3", "--param",
                 "patience=10", "--model-dir", "model", cwd=tmp_path)).stderr
    lines = [line for line in log.splitlines() if line.startswith("training multdae on ")]
    # the early-stopping run: its first and last epochs with their held-out score; then the refit on all the data
    # for the best run's number of epochs, named as such, its last epoch without a score
    assert re.fullmatch(r"training multdae on [\d,]+ interactions: epoch 1/3 \(held-out recall 0\.\d{4}\), \d+ s",
                        lines[0])
    assert re.search(r"epoch 3/3 \(held-out recall 0\.\d{4}\)", log)
    assert re.search(r"epoch (\d+)/\1 \(refit on all rows\), \d+ s$", lines[-1])
    assert "saved multdae model" in log


@pytest.mark.parametrize(("algorithm", "params", "stages"), [
    ("ncf", {"pretrain": True}, ["GMF", "MLP", "NeuMF", "refit on all rows, GMF", "refit on all rows, MLP",
                                 "refit on all rows, NeuMF"]),
    ("ncf", {"pretrain": False}, ["NeuMF", "refit on all rows, NeuMF"]),
    ("ensemble", {"members": "item-knn,multvae"}, ["member 2/2 multvae", "member 2/2 multvae, refit on all rows"]),
])
def test_epoch_reports_name_each_training_stage(algorithm, params, stages) -> None:
    reports = []
    with reporting_epochs(lambda epoch, epochs, score, stage: reports.append((stage, score))):
        create_scorer(algorithm, {**params, "epochs": 2} if algorithm == "ncf" else params).fit(small())
    assert list(dict.fromkeys(stage for stage, _ in reports)) == stages
    # held-out runs report their score, refits have none to report
    assert all((score is None) == ("refit" in stage) for stage, score in reports)
