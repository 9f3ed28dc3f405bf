"""The command line checks what it is given before it works, and says what was wrong in the user's own words: outputs
that would destroy inputs, broken model folders, metric names, parameters, output extensions, column names.
Each case runs the installed `tailored` script in a subprocess and asserts the exit code and the message."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.helpers import cli, flat, ok
from tests.cli.test_cli import implicit_data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.csv / test.csv (test users have several rows each) and an ease model trained on them."""
    work = tmp_path_factory.mktemp("validation")
    train, test = implicit_data()
    train.to_csv(work / "train.csv", index=False)
    test.to_csv(work / "test.csv", index=False)
    pd.DataFrame({"user_id": ["u01", "u02"]}).to_csv(work / "users.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "ease", "--model-dir", "model", cwd=work))
    return work


def refused(result, *texts: str) -> str:  # type: ignore[no-untyped-def]
    """The one-line error of a command that exited 2 without a traceback; each of ``texts`` must be in it."""
    message = flat(result.stderr)
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr and message.startswith("error:"), message
    for text in texts:
        assert text in message, f"{text!r} not in {message!r}"
    return message


# ---- an output that is an input ------------------------------------------------------------------------------
def _victim(work: Path, name: str) -> bytes:
    shutil.copy(work / "train.csv", work / name)
    return (work / name).read_bytes()


OVERWRITES = {  # name -> (arguments, the input that must survive, message)
    "train_model_dir_is_the_data": (
        ["train", "--interactions", "victim.csv", "--algorithm", "ease", "--model-dir", "victim.csv"], "victim.csv",
        "--model-dir victim.csv is the input --interactions victim.csv: writing it would destroy the input."),
    "train_model_dir_holds_the_data": (
        ["train", "--interactions", "data/victim.csv", "--algorithm", "ease", "--model-dir", "data"], "data/victim.csv",
        "--model-dir data holds the input --interactions data/victim.csv"),
    "recommend_output_is_the_users_file": (
        ["recommend", "--model-dir", "model", "--users", "victim.csv", "--output", "victim.csv"], "victim.csv",
        "--output victim.csv is the input --users victim.csv"),
    "recommend_output_inside_the_model": (
        ["recommend", "--model-dir", "model", "--all-users", "--output", "model/manifest.csv"], "model/manifest.json",
        "--output model/manifest.csv is inside the input --model-dir model"),
    "recommend_output_is_a_link_to_the_users_file": (
        ["recommend", "--model-dir", "model", "--users", "victim.csv", "--output", "link.csv"], "victim.csv",
        "--output link.csv is the input --users victim.csv"),
    "check_output_is_the_data": (
        ["check", "--interactions", "victim.csv", "--output", "victim.csv"], "victim.csv",
        "--output victim.csv is the input --interactions victim.csv"),
    "check_rejected_rows_would_replace_the_data": (
        ["check", "--interactions", "victim.rejected.csv", "--output", "victim.csv"], "victim.rejected.csv",
        "--output (its rejected rows) victim.rejected.csv is the input --interactions victim.rejected.csv"),
    "events_export_output_is_the_catalogue": (
        ["events", "export", "--db", "sqlite:///events.db", "--items", "victim.csv", "--output", "victim.csv"],
        "victim.csv", "--output victim.csv is the input --items victim.csv"),
    "split_writes_over_its_input": (
        ["split", "--interactions", "data/train.csv", "--output-dir", "data"], "data/train.csv",
        "--output-dir data/train.csv is the input --interactions data/train.csv"),
    "run_output_holds_the_data": (["run", "data/job.toml"], "data/victim.csv",
                                  "[job] output data holds the input [data] interactions data/victim.csv"),
}


@pytest.mark.parametrize("name", list(OVERWRITES))
def test_an_output_that_would_destroy_an_input_is_refused_before_any_work(name: str, tmp_path: Path,
                                                                           folder: Path) -> None:
    args, survivor, text = OVERWRITES[name]
    shutil.copytree(folder / "model", tmp_path / "model")
    (tmp_path / "data").mkdir()
    shutil.copy(folder / "train.csv", tmp_path / "train.csv")
    for path in ("victim.csv", "victim.rejected.csv", "data/victim.csv", "data/train.csv"):
        _victim(tmp_path, path)
    os.symlink("victim.csv", tmp_path / "link.csv")
    (tmp_path / "data" / "job.toml").write_text('[job]\noutput = "."\n[data]\ninteractions = "victim.csv"\n')
    before = (tmp_path / survivor).read_bytes()
    refused(cli(*args, cwd=tmp_path), text, "Choose another output path.")
    assert (tmp_path / survivor).read_bytes() == before, "the input was changed"
    hidden = [p.name for p in tmp_path.rglob(".*")]
    assert not hidden, f"left {hidden}"


def test_outputs_beside_their_inputs_are_written(folder: Path) -> None:
    """Not every shared folder is an overlap: split's files next to the file it splits."""
    (folder / "beside").mkdir()
    shutil.copy(folder / "train.csv", folder / "beside" / "all.csv")
    ok(cli("split", "--interactions", "beside/all.csv", "--output-dir", "beside", cwd=folder))
    assert {"all.csv", "train.csv", "test.csv"} <= {p.name for p in (folder / "beside").iterdir()}


# ---- evaluate -------------------------------------------------------------------------------------------------
def test_evaluate_a_model_does_not_warn_about_test_users_on_several_rows(folder: Path) -> None:
    assert pd.read_csv(folder / "test.csv")["user_id"].duplicated().any()
    result = ok(cli("evaluate", "--test", "test.csv", "--model-dir", "model", "--metric", "ndcg@10", cwd=folder))
    assert "several rows" not in result.stderr and "warning" not in result.stderr.lower(), result.stderr
    assert "ndcg@10" in result.stdout


@pytest.mark.parametrize(("metric", "texts"), [
    ("ndcg10", ["Unknown metric 'ndcg10'", "Did you mean 'ndcg@10'?"]),
    ("recal@20", ["Unknown metric 'recal@20'", "Did you mean 'recall@20'"]),
    ("rmse", ["rmse measures predicted ratings, but algorithm 'ease' ranks items", "e.g. mf"]),
])
def test_evaluate_checks_metric_names_and_that_they_apply_before_any_work(metric: str, texts: list[str],
                                                                          folder: Path) -> None:
    refused(cli("evaluate", "--test", "test.csv", "--model-dir", "model", "--metric", metric, "--output", "e.json",
                cwd=folder), *texts)
    assert not (folder / "e.json").exists()


# ---- a damaged model folder --------------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[3000:3100] = bytes(255 - b for b in data[3000:3100])
    path.write_bytes(bytes(data))


DAMAGES = {  # name -> (damage done to the copied model folder, texts of the message)
    "arrays_truncated": (lambda m: _truncate(m / "arrays.npz"),
                         ["Model in broken is damaged: arrays.npz has", "bytes where",
                          "were written (a truncated copy?)"]),
    "arrays_missing": (lambda m: (m / "arrays.npz").unlink(), ["Model in broken is incomplete: arrays.npz is missing"]),
    "arrays_corrupt": (lambda m: _flip_bytes(m / "arrays.npz"),
                       ["Model in broken is damaged: arrays.npz cannot be read", "CRC"]),
    "attributes_missing": (lambda m: (m / "item_attributes.parquet").unlink(),
                           ["Model in broken is incomplete: item_attributes.parquet is missing"]),
    "manifest_truncated": (lambda m: _truncate(m / "manifest.json"),
                           ["Model in broken is damaged: manifest.json cannot be read"]),
}


@pytest.fixture(scope="module")
def model_with_items(folder: Path) -> Path:
    """A model saved with item attributes (a second data file beside arrays.npz)."""
    pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(30)], "category": ["a", "b", "c"] * 10}).to_csv(
        folder / "items.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--items", "items.csv", "--algorithm", "ease", "--model-dir",
           "model_items", cwd=folder))
    return folder / "model_items"


@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_damaged_model_folder_is_a_clear_error_naming_the_file(name: str, tmp_path: Path,
                                                                 model_with_items: Path) -> None:
    shutil.copytree(model_with_items, tmp_path / "broken")
    damage, texts = DAMAGES[name]
    damage(tmp_path / "broken")
    refused(cli("recommend", "--model-dir", "broken", "--all-users", "--output", "r.csv", cwd=tmp_path), *texts,
            "copy the whole folder again, or retrain it with `tailored train`.")
    assert not (tmp_path / "r.csv").exists()


# ---- stages given at recommend time ------------------------------------------------------------------------------
def test_long_tail_given_to_recommend_ranks_as_when_given_to_train(folder: Path) -> None:
    """The stage learns the items' popularity from the training pairs the model keeps."""
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "ease", "--stage", "long-tail", "--model-dir",
           "model_long_tail", cwd=folder))
    ok(cli("recommend", "--model-dir", "model_long_tail", "--all-users", "--output", "trained.csv", cwd=folder))
    ok(cli("recommend", "--model-dir", "model", "--all-users", "--stage", "long-tail", "--output", "added.csv",
           cwd=folder))
    ok(cli("recommend", "--model-dir", "model", "--all-users", "--output", "plain.csv", cwd=folder))
    added = pd.read_csv(folder / "added.csv")
    pd.testing.assert_frame_equal(added, pd.read_csv(folder / "trained.csv"))
    assert not added.equals(pd.read_csv(folder / "plain.csv")), "the stage changed nothing"


def test_a_stage_that_learns_from_times_is_refused_at_recommend_time_naming_train(folder: Path) -> None:
    refused(cli("recommend", "--model-dir", "model", "--all-users", "--stage", "seasonal", "--output", "s.csv",
                cwd=folder),
            "Stage 'seasonal' learns from the training interactions", "tailored train --stage seasonal")


# ---- checks come before the work -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["recommend", "--model-dir", "model", "--all-users", "--output", "r.txt"],
    ["predict", "--model-dir", "model", "--pairs", "test.csv", "--output", "r.txt"],
    ["similar", "--model-dir", "model", "--items", "items.csv", "--output", "r.txt"],
    ["complementary", "--model-dir", "model", "--items", "items.csv", "--output", "r.txt"],
    ["trending", "--model-dir", "model", "--output", "r.txt"],
    ["check", "--interactions", "train.csv", "--output", "r.txt"],
    ["evaluate", "--test", "test.csv", "--model-dir", "model", "--output", "r.txt"],
    ["drift", "--interactions", "train.csv", "--model-dir", "model", "--output", "r.txt"],
    ["datasets", "scale", "--users", "10", "--items", "10", "--output", "r.txt"],
    ["benchmark", "movielens-100k", "--data-dir", "nowhere", "--output", "r.txt"],
], ids=lambda args: args[1] if args[0] == "datasets" else args[0])
def test_an_output_extension_is_refused_before_any_work(args: list[str], folder: Path) -> None:
    pd.DataFrame({"item_id": ["i01", "i02"]}).to_csv(folder / "items.csv", index=False)
    result = cli(*args, cwd=folder)
    refused(result, "Cannot write r.txt: unsupported extension '.txt'; use one of ['.csv', '.parquet', '.pq', '.tsv'].")
    assert "recommending" not in result.stderr and not result.stdout.strip(), "work was done before the check"


def test_run_refuses_a_misspelled_parameter_before_reading_the_data(folder: Path) -> None:
    (folder / "job.toml").write_text('[job]\noutput = "job_out"\n[data]\ninteractions = "train.csv"\n'
                                     '[[algorithms]]\nname = "ease"\nparams = { regg = 100.0 }\n')
    result = cli("run", "job.toml", cwd=folder)
    refused(result, "[[algorithms]] number 1 ('ease'): Unknown parameter(s) ['regg'] for algorithm 'ease'",
            "Valid parameters: ", "reg")
    assert "reading data" not in result.stderr and not (folder / "job_out").exists()


# ---- messages in the user's words ----------------------------------------------------------------------------------
def test_a_missing_column_is_named_with_the_option_that_gave_it_before_any_work(folder: Path) -> None:
    result = cli("train", "--interactions", "train.csv", "--user-col", "customer", "--time-col", "when", "--algorithm",
                 "ease", "--model-dir", "m_columns", cwd=folder)
    message = refused(result, "Column 'customer' (--user-col), 'when' (--time-col) not found in train.csv; available "
                              "columns: ['user_id', 'item_id', 'value', 'timestamp']. Pass the names your file uses.")
    assert "user=" not in message and not (folder / "m_columns").exists()


def test_check_speaks_of_the_users_columns_and_numbers_rows_by_file_line_everywhere(tmp_path: Path) -> None:
    train, _ = implicit_data()
    frame = train.astype(str).rename(columns={"item_id": "product", "timestamp": "when"})
    frame.loc[3, "product"] = ""  # file line 5
    frame.loc[5, "when"] = "2099-01-01"  # file line 7
    frame.to_csv(tmp_path / "orders.csv", index=False)
    report = flat(ok(cli("check", "--interactions", "orders.csv", "--item-col", "product", "--time-col", "when",
                         "--output", "clean.csv", cwd=tmp_path)).stdout)
    assert "Rows are named by their line in the file (the header is line 1)." in report
    assert "| rule | field | severity | action | rows | sample lines |" in report
    assert "| missing_value | product | error | rejected | 1 | 5 |" in report
    assert "| future_timestamp | when | error | rejected | 1 | 7 |" in report
    assert "empty cells in column 'product' (line 5 (" in report
    assert "in column 'when' (line 7 ('2099-01-01'))" in report
    for canonical in ("item_id", "timestamp"):
        assert f"'{canonical}'" not in report and f"| {canonical} |" not in report, canonical
    rejected = pd.read_csv(tmp_path / "clean.rejected.csv")
    assert rejected["line"].tolist() == [5, 7]


@pytest.mark.parametrize("command", ["similar", "complementary"])
def test_an_unknown_query_item_is_skipped_with_a_warning_naming_it(command: str, folder: Path, tmp_path: Path) -> None:
    pd.DataFrame({"item_id": ["i01", "nope", "i02"]}).to_csv(tmp_path / "query.csv", index=False)
    pd.DataFrame({"item_id": ["nope"]}).to_csv(tmp_path / "unknown.csv", index=False)
    model = folder / "model"
    result = ok(cli(command, "--model-dir", model, "--items", "query.csv", "--k", 3, "--output", "out.csv",
                    cwd=tmp_path))
    assert "warning: query.csv: 1 item id(s) unknown to the model skipped: 'nope'" in flat(result.stderr)
    assert set(pd.read_csv(tmp_path / "out.csv", dtype=str)["item_id"]) == {"i01", "i02"}
    refused(cli(command, "--model-dir", model, "--items", "unknown.csv", "--output", "none.csv", cwd=tmp_path),
            "None of the 1 item id(s) of unknown.csv is known to the model (e.g. 'nope')")
    assert not (tmp_path / "none.csv").exists()
