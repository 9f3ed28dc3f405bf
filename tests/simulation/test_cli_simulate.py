"""`tailored simulate` as a user runs it: the report, the world's files for a served model, bad input, Ctrl-C."""

from __future__ import annotations

import json
from contextlib import chdir

import pandas as pd
from click.testing import Result
from typer.testing import CliRunner

import tailored.jobs.simulate as jobs
from tailored.cli import app
SMALL = ["--users", "200", "--items", "120"]


def cli(*args: str, cwd) -> Result:
    """`tailored ARGS...` in process, in ``cwd`` (stdout and stderr together in ``output``)."""
    with chdir(cwd):
        return CliRunner().invoke(app, list(args))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def test_simulate_writes_the_report(tmp_path) -> None:
    result = ok(cli("simulate", "--scenario", "static", "--policy", "greedy", "--policy", "uniform",
                    "--impressions", "600", *SMALL, "--output", "report.json", cwd=tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scenario"] == "static" and report["baseline"] == "greedy" and report["impressions"] == 600
    assert [entry["policy"] for entry in report["policies"]] == ["greedy", "uniform"]
    uniform = report["policies"][1]
    assert uniform["second_half"]["lists"] == 300 and uniform["whole"]["lists"] == 600
    assert uniform["vs_baseline"]["clicks"] == uniform["second_half"]["clicks"] / report["policies"][0][
        "second_half"]["clicks"]
    assert "uniform" in result.output and "oracle" in result.output


def test_write_world_gives_the_files_a_served_model_is_trained_on(tmp_path) -> None:
    result = ok(cli("simulate", "--scenario", "new-items", *SMALL, "--write-world", "world", cwd=tmp_path))
    clicks, items = pd.read_csv(tmp_path / "world" / "interactions.csv"), pd.read_csv(tmp_path / "world" / "items.csv")
    assert list(clicks.columns) == ["user_id", "item_id", "timestamp"] and len(clicks) > 100
    assert list(items.columns) == ["item_id", "category", "price"] and set(clicks["item_id"]) <= set(items["item_id"])
    assert len(items) < 120  # the items that arrive later are not in the trained catalogue
    assert "tailored model train" in result.output and not (tmp_path / "report.json").exists()


def test_bad_input_exits_2_naming_it(tmp_path) -> None:
    wrong = cli("simulate", "--scenario", "seasonal", "--policy", "greedy", "--output", "r.json", cwd=tmp_path)
    assert wrong.exit_code == 2 and "seasonal" in wrong.output
    unknown = cli("simulate", "--policy", "greedy", "--policy", "bandit", *SMALL, "--output", "r.json", cwd=tmp_path)
    assert unknown.exit_code == 2 and "bandit" in unknown.output
    csv = cli("simulate", "--policy", "greedy", "--output", "r.csv", cwd=tmp_path)
    assert csv.exit_code == 2 and "json" in csv.output
    keyless = cli("simulate", "--serve", "http://127.0.0.1:9", *SMALL, "--output", "r.json", cwd=tmp_path)
    assert keyless.exit_code == 2 and "--key" in keyless.output
    unpaired = cli("simulate", "--serve", "http://127.0.0.1:9", "--serve", "http://127.0.0.1:10", "--key", "k",
                   "--policy", "greedy", *SMALL, "--output", "r.json", cwd=tmp_path)
    assert unpaired.exit_code == 2 and "one --policy per service" in unpaired.output
    unreachable = cli("simulate", "--serve", "http://127.0.0.1:9", "--key", "k", *SMALL, "--output", "r.json",
                      cwd=tmp_path)
    assert unreachable.exit_code == 2 and "Is `tailored serve` running there?" in unreachable.output
    assert not list(tmp_path.glob("r.*"))


def test_interrupted_run_leaves_no_report(tmp_path, monkeypatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        kwargs["progress"](100)  # type: ignore[operator]
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "simulate", interrupted)
    result = cli("simulate", "--policy", "greedy", *SMALL, "--output", "report.json", cwd=tmp_path)
    assert result.exit_code == 130 and not list(tmp_path.iterdir())
