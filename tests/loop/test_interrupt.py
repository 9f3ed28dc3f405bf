"""Safe to interrupt: a cycle killed (``os._exit``, no clean-up) just before it saves the state after any of its
steps -- the step done and audited, the state not yet moved on -- ends, once rerun, in the state an uninterrupted
cycle reaches; and until a promotion the champion serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tailored.loop.config import load_loop_config
from tailored.loop.cycle import Loop
from tailored.store.experiments import experiments
from tests.loop.conftest import store_clicks
from tests.loop.test_cycle import serve

pytestmark = pytest.mark.slow
TOML = """
[data]
db = "sqlite:///loop.db"
event_types = ["click"]
window_days = 7
[model]
algorithm = "als"
params = { factors = 8, exclude_seen = false }
[registry]
folder = "registry"
name = "shop"
[test]
users = 200
[gate]
min_gain = -1.0
guardrails = []
[canary]
share = 50
min_users = 50
max_cycles = 1
"""
KILLER = textwrap.dedent("""
    import os, sys
    from tailored.loop.config import load_loop_config
    from tailored.loop.cycle import Loop
    saves, original = [0], Loop._save
    def dying(self, state):
        saves[0] += 1
        if saves[0] == int(sys.argv[2]):
            os._exit(17)
        original(self, state)
    Loop._save = dying
    Loop(load_loop_config(sys.argv[1])).run_cycle()
""")
SAVES = 7
"""State saves of the cycle under test: decide, promote, quality and drift, train, evaluate, register, canary."""


def end_state(folder: Path) -> dict[str, Any]:
    loop = Loop(load_loop_config(folder / "loop.toml"))
    state = loop.state()
    return {"phase": state["phase"], "cycle": state["cycle"], "versions": loop.registry.versions("shop"),
            "production": loop.registry.current("shop", "production"),
            "experiments": [(row["name"], row["status"]) for row in experiments(loop.store)]}


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A loop with a running canary that its treatment wins: the next cycle decides, promotes and starts again."""
    from tests.loop.conftest import START, clicks

    folder = tmp_path_factory.mktemp("ready")
    (folder / "loop.toml").write_text(TOML)
    config = load_loop_config(folder / "loop.toml")
    from tailored.store.database import EventStore

    store = EventStore(config.data.db)
    frame = clicks()
    cut = START - 3 * 86_400
    store_clicks(store, frame[frame["timestamp"] <= cut], "a")
    Loop(config).run_cycle()
    store_clicks(store, frame[frame["timestamp"] > cut], "b")
    loop = Loop(config)
    assert loop.run_cycle()["phase"] == "canary"
    serve(loop, winner="treatment")
    return folder


@pytest.fixture(scope="module")
def uninterrupted(ready: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("whole") / "loop"
    shutil.copytree(ready, folder)
    report = Loop(load_loop_config(folder / "loop.toml")).run_cycle()
    assert [step["step"] for step in report["steps"]][:2] == ["decide", "promote"]
    return end_state(folder)


@pytest.mark.parametrize("kill_at", range(1, SAVES + 1))
def test_a_cycle_killed_after_any_step_resumes_to_the_same_end(ready: Path, uninterrupted: dict[str, Any],
                                                              tmp_path: Path, kill_at: int) -> None:
    folder = tmp_path / "loop"
    shutil.copytree(ready, folder)
    before = json.loads((folder / "registry" / "shop" / "loop-state.json").read_text())
    killed = subprocess.run([sys.executable, "-c", KILLER, str(folder / "loop.toml"), str(kill_at)],
                            env=os.environ | {"TAILORED_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert killed.returncode == 17, killed.stderr
    state = json.loads((folder / "registry" / "shop" / "loop-state.json").read_text())
    if kill_at == 1:  # killed before anything was saved: the state is untouched
        assert state == before
    if kill_at <= 2:  # the decision is written down, the promotion not yet recorded: the champion may still serve
        assert end_state(folder)["production"] in ("v0001", "v0002")
    Loop(load_loop_config(folder / "loop.toml")).run_cycle()
    assert end_state(folder) == uninterrupted
