"""`tailored train` applies the quality rules by default, as `tailored run` does: rows a rule rejects are left out,
named on stderr and kept with their reasons in the model directory beside the report; `--no-check` trains on every
readable row; `--rule` sets the rules; rows that cannot be read still stop the command."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.helpers import cli, flat, ok

FUTURE = 4_000_000_000  # 2096: a timestamp in the future


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 users x 5 items, then a copy of line 2 (line 62), a future row of a user seen only there (line 63) and a
    row of a user absent from users.csv (line 64)."""
    folder = tmp_path_factory.mktemp("train_quality")
    rows = [(f"u{u:02d}", f"i{(u + j) % 8}", 1.0, 1_700_000_000 + 100 * u + j) for u in range(12) for j in range(5)]
    rows += [rows[0], ("late", "i1", 1.0, FUTURE), ("stranger", "i2", 1.0, 1_700_005_000)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]).to_csv(folder / "train.csv", index=False)
    users = pd.DataFrame({"user_id": [f"u{u:02d}" for u in range(12)] + ["late"], "segment": ["a", "b"] * 6 + ["a"]})
    users.to_csv(folder / "users.csv", index=False)
    return folder


def manifest(model_dir: Path) -> dict:
    return json.loads((model_dir / "manifest.json").read_text())


def test_rejected_rows_are_named_left_out_and_kept_beside_the_model(folder: Path) -> None:
    done = ok(cli("train", "--interactions", "train.csv", "--users", "users.csv", "--algorithm", "ease",
                  "--model-dir", "checked", cwd=folder))
    stderr = flat(done.stderr)
    for named in ("1 row(s) with exact copies of an earlier row in all columns (line 62",
                  "1 row(s) with timestamps in the future", "(line 63 ('4000000000'))",
                  "1 row(s) with ids absent from the user table in column 'user_id' (line 64 ('stranger'))"):
        assert f"warning: train.csv: {named}" in stderr or named.startswith("(line") and named in stderr, named
    assert ("quality: 60 rows accepted, 3 rejected (reasons in checked/rejected.csv; report in checked/quality.json)"
            in stderr)
    rejected = pd.read_csv(folder / "checked" / "rejected.csv")
    assert rejected[["line", "reason", "user_id"]].values.tolist() == [
        [62, "duplicate_row:all_columns", "u00"], [63, "future_timestamp:timestamp", "late"],
        [64, "unknown_id:user_id", "stranger"]]
    report = json.loads((folder / "checked" / "quality.json").read_text())
    assert (report["rows"], report["accepted"], report["rejected"]) == (63, 60, 3)
    assert manifest(folder / "checked")["n_interactions"] == 60
    ok(cli("recommend", "--model-dir", "checked", "--all-users", "--output", "lists.csv", cwd=folder))
    users = set(pd.read_csv(folder / "lists.csv")["user_id"])  # 'late' is known from users.csv alone
    assert users == {f"u{u:02d}" for u in range(12)} | {"late"}


def test_no_check_trains_on_every_readable_row(folder: Path) -> None:
    done = ok(cli("train", "--interactions", "train.csv", "--users", "users.csv", "--algorithm", "ease",
                  "--model-dir", "unchecked", "--no-check", cwd=folder))
    assert "quality:" not in done.stderr and "warning:" not in done.stderr
    assert manifest(folder / "unchecked")["n_interactions"] == 63
    assert not (folder / "unchecked" / "rejected.csv").exists() and not (folder / "unchecked" / "quality.json").exists()


def test_rules_are_set_with_rule(folder: Path) -> None:
    done = ok(cli("train", "--interactions", "train.csv", "--users", "users.csv", "--algorithm", "ease",
                  "--model-dir", "lenient", "--rule", "known_users=false", "--rule", "drop_duplicates=false",
                  cwd=folder))
    assert "quality: 62 rows accepted, 1 rejected" in flat(done.stderr)
    assert pd.read_csv(folder / "lenient" / "rejected.csv")["reason"].tolist() == ["future_timestamp:timestamp"]
    refused = cli("train", "--interactions", "train.csv", "--algorithm", "ease", "--model-dir", "never",
                  "--rule", "known_user=false", cwd=folder)
    assert refused.returncode == 2 and "known_user" in flat(refused.stderr) and not (folder / "never").exists()


def test_unreadable_rows_still_stop_the_command(folder: Path) -> None:
    frame = pd.read_csv(folder / "train.csv").astype({"value": object})
    frame.loc[3, "value"] = "two"
    frame.to_csv(folder / "broken.csv", index=False)
    for check in ("--check", "--no-check"):
        result = cli("train", "--interactions", "broken.csv", "--algorithm", "ease", "--model-dir", "broken", check,
                     cwd=folder)
        message = flat(result.stderr)
        assert result.returncode == 2 and message.startswith("error: broken.csv failed 1 data quality rule(s)"), message
        assert "values that are not finite numbers in column 'value' (line 5 ('two'))" in message
        assert not (folder / "broken").exists()


def test_retrain_applies_the_rules_too_and_its_window_ends_at_the_last_accepted_row(folder: Path) -> None:
    """The future row is rejected: the 30-day window ends at the last real interaction (with it, the window would
    hold the future row alone)."""
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "ease", "--model-dir", "again", "--no-check",
           cwd=folder))
    done = ok(cli("retrain", "--interactions", "train.csv", "--model-dir", "again", "--window-days", "30",
                  cwd=folder))
    stderr = flat(done.stderr)
    assert "warning: train.csv: 1 row(s) with timestamps in the future" in stderr
    assert "quality: 61 rows accepted, 2 rejected (reasons in again/rejected.csv" in stderr  # no --users: ids kept
    assert "retrained on 61 user-item pairs" in stderr and manifest(folder / "again")["n_interactions"] == 61
    assert pd.read_csv(folder / "again" / "rejected.csv")["reason"].tolist() == [
        "duplicate_row:all_columns", "future_timestamp:timestamp"]
    unchecked = ok(cli("retrain", "--interactions", "train.csv", "--model-dir", "again", "--window-days", "30",
                       "--no-check", cwd=folder))
    assert "retrained on 1 user-item pairs" in flat(unchecked.stderr)
    assert not (folder / "again" / "rejected.csv").exists()
