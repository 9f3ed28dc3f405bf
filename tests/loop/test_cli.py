"""`tailored loop` (the command function in cli/loop.py, mounted as the lead mounts it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tailored.cli.loop import loop
from tailored.errors import ConfigError
from tailored.loop.cycle import every_seconds, run_every
from tailored.loop.config import load_loop_config
from tailored.store.database import EventStore
from tests.loop.conftest import clicks, store_clicks

app = typer.Typer()
app.command("loop")(loop)
app.command("other")(lambda: None)  # two commands: typer keeps the name `loop`
TOML = """
[data]
db = "sqlite:///loop.db"
event_types = ["click"]
window_days = 7
[model]
params = { factors = 8 }
[registry]
name = "shop"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "loop.toml").write_text(TOML)
    store_clicks(EventStore(f"sqlite:///{tmp_path / 'loop.db'}"), clicks(), "a")
    return tmp_path


def test_one_cycle_promotes_the_first_model_and_writes_its_report(folder: Path) -> None:
    result = CliRunner().invoke(app, ["loop", "--config", str(folder / "loop.toml"), "--once",
                                      "--output", str(folder / "cycle.json")])
    assert result.exit_code == 0, result.output
    assert "promote" in result.output and "phase: idle" in result.output
    report = json.loads((folder / "cycle.json").read_text())
    assert [step["step"] for step in report["steps"]][-2:] == ["register", "promote"]
    assert (folder / "registry" / "shop" / "v0001").is_dir()


def test_a_quality_failure_exits_1_with_the_alert(folder: Path) -> None:
    store_clicks(EventStore(f"sqlite:///{folder / 'loop.db'}"), clicks().tail(500), "again")  # repeated rows
    result = CliRunner().invoke(app, ["loop", "--config", str(folder / "loop.toml")])
    assert result.exit_code == 1 and "alert:" in result.output and "max_rejected_share" in result.output


@pytest.mark.parametrize(("arguments", "message"), [
    (["--once", "--every", "1d"], "--once and --every exclude each other"),
    (["--every", "daily"], "--every 'daily'"),
])
def test_bad_options_exit_2(folder: Path, arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["loop", "--config", str(folder / "loop.toml"), *arguments])
    assert result.exit_code == 2 and message in result.output


def test_a_bad_config_exits_2_naming_the_field(folder: Path) -> None:
    (folder / "bad.toml").write_text("[canary]\nshare = 90\n")
    result = CliRunner().invoke(app, ["loop", "--config", str(folder / "bad.toml")])
    assert result.exit_code == 2 and "[canary] share: 90" in result.output


def test_every_reads_durations_and_runs_a_cycle_per_period(folder: Path) -> None:
    assert every_seconds("1d") == 86_400 and every_seconds("6h") == 21_600 and every_seconds("30m") == 1_800
    with pytest.raises(ConfigError, match="positive"):
        every_seconds("0h")
    reports, sleeps = [], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_every(load_loop_config(folder / "loop.toml"), 3600, reports.append, sleep)
    assert len(reports) == 2 and all(3500 < seconds <= 3600 for seconds in sleeps)
    assert reports[1]["phase"] == "canary"  # the second cycle has a champion to canary against
