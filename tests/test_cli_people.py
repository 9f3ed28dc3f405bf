"""What a new user meets in the first hour, through the installed `tailored` console script: install hints that work
from a checkout, the licence and `--version`, progress and tables in logs, and outputs written for people."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
from pathlib import Path

import pytest

import tailored
from tests.test_cli import ENV, TAILORED, ok

ROOT = Path(__file__).resolve().parents[1]


def run(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tailored ARGS...` with stdout and stderr captured through pipes (not terminals), as in a log or a CI job."""
    return subprocess.run([TAILORED, *map(str, args)], cwd=cwd, env={**ENV, **(env or {})}, capture_output=True,
                          text=True, timeout=300)


def tiny_interactions(path: Path) -> Path:
    rows = [f"u{u},i{(u + j) % 7},1,{1_700_000_000 + 3600 * (u * 4 + j)}" for u in range(6) for j in range(4)]
    path.write_text("user_id,item_id,value,timestamp\n" + "\n".join(rows) + "\n")
    return path


# ---- 1. install hints, licence, version --------------------------------------------------------------------------
def test_version_prints_the_package_version() -> None:
    result = ok(run("--version", cwd=ROOT))
    assert result.stdout == f"tailored {tailored.__version__}\n"
    assert importlib.metadata.version("tailored") == tailored.__version__  # one version, declared once


def test_missing_torch_says_how_to_install_the_extra_from_a_checkout(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "torch.py").write_text("raise ImportError('No module named torch (test shim)')\n")
    data = tiny_interactions(tmp_path / "interactions.csv")
    result = run("train", "--interactions", data, "--algorithm", "multvae", "--model-dir", tmp_path / "model",
                 cwd=tmp_path, env={"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 2, result.stderr
    assert 'This algorithm needs PyTorch: install the extra with `pip install ".[torch]"` in the tailored checkout' in (
        " ".join(result.stderr.split()))
    assert "tailored[" not in result.stderr


def test_no_install_hint_names_a_package_index_release() -> None:
    hints = [(path, line) for folder in ("src", "docs") for path in (ROOT / folder).rglob("*.*")
             if path.suffix in (".py", ".md") for line in path.read_text().splitlines() if "pip install" in line]
    assert hints, "the hints moved: update this test"
    assert [hint for hint in hints if re.search(r"pip install ['\"]?tailored", hint[1])] == []


def test_the_licence_is_the_complete_apache_2_text_and_the_metadata_points_at_it() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    sections = re.findall(r"^\s+(\d)\. (\w[\w ]+)\.", text, flags=re.MULTILINE)
    assert [name for _, name in sections] == [
        "Definitions", "Grant of Copyright License", "Grant of Patent License", "Redistribution",
        "Submission of Contributions", "Trademarks", "Disclaimer of Warranty", "Limitation of Liability",
        "Accepting Warranty or Additional Liability"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License to your work." in text
    metadata = importlib.metadata.metadata("tailored")
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
