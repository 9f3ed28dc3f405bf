"""The house's layering (docs/architecture.md, "Who may import whom"): every import of a tailored module points down.

Read from the source with `ast` (imports inside functions count too), so a lazy import cannot climb unseen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "tailored"
PACKAGE = "__version__"
"""The package's own attributes (``from tailored import __version__``), open to every room."""

BELOW: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "data": {"errors", "config"},
    "query": {"errors", "config"},
    "split": {"data", "errors", "config"},
    "models": {"data", "errors", "config"},
    "rank": {"models.base", "data", "query", "errors", "config"},
    "policies": {"rank", "models.base", "data", "query", "errors", "config"},
    "pipeline": {"policies", "rank", "models.base", "data", "query", "errors", "config"},
    "eval": {"pipeline", "policies", "rank", "models.base", "split", "data", "query", "errors", "config"},
    "registry": {"pipeline", "policies", "rank", "models", "eval", "data", "query", "errors", "config"},
    "store": {"data", "errors", "config"},
}
BELOW["monitoring"] = {"registry", "store"} | BELOW["registry"] | {"split"}
BELOW["experiments"] = {"registry", "store"} | BELOW["registry"] | {"split"}  # beside monitoring
BELOW["simulation"] = {"monitoring", "experiments"} | BELOW["monitoring"]
BELOW["jobs"] = {"simulation"} | BELOW["simulation"]
BELOW["ope"] = {"jobs"} | BELOW["jobs"]  # the off-policy evaluation API: a facade over eval/ and jobs/
BELOW["dashboard"] = {"jobs"} | BELOW["jobs"]  # the dashboard's pages: served by serve/, written by cli/
BELOW["serve"] = {"dashboard"} | BELOW["dashboard"]
BELOW["benchmarks"] = {"serve"} | BELOW["serve"]
BELOW["benchmarks"] |= {"loop"} | BELOW.setdefault("loop", {"jobs"} | BELOW["jobs"])  # the loop (28): above jobs
BELOW["spark"] = {"jobs"} | BELOW["jobs"]  # the same jobs on Spark DataFrames (30): beside the loop, above jobs
BELOW["benchmarks"] |= {"spark"}
BELOW["cli"] = {"benchmarks"} | BELOW["benchmarks"]
"""Room -> the rooms it may import (besides itself). ``models.base`` is the Scorer protocol and the catalogue: rank/
and pipeline/ pick models by name through it, never by importing one."""


def room(module: str) -> str:
    """The room of ``tailored.a.b`` (``a``; ``models.base`` is a room of its own for the rooms above models/)."""
    parts = module.split(".")[1:]
    return ".".join(parts[:2]) if parts[:2] == ["models", "base"] else (parts[0] if parts else "")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``tailored.*`` import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "tailored" else [f"tailored.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names if name.startswith("tailored")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tailored")]
    return found


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        module = "tailored." + ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        own = room(module).split(".")[0]
        if own in {"__init__", "__main__"}:
            continue
        assert own in BELOW, f"{path}: room {own!r} is not in the layering; add it to BELOW and the docs"
        for line, target in imports(path):
            other = room(target)
            allowed = BELOW[own] | {own, PACKAGE}
            if other not in allowed and other.split(".")[0] not in allowed:
                problems.append(f"{path.relative_to(SOURCE.parent)}:{line} ({own}) imports {target}")
    return problems


def test_no_import_runs_up_the_layering() -> None:
    assert upward_imports() == []


@pytest.mark.parametrize(("module", "expected"), [
    ("tailored.models.base", "models.base"), ("tailored.models.ease", "models"), ("tailored.query", "query"),
    ("tailored.pipeline.recommender", "pipeline"),
])
def test_rooms_are_read_from_module_names(module: str, expected: str) -> None:
    assert room(module) == expected


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """A model importing the pipeline, even lazily inside a function, is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tailored.pipeline.recommender import Recommender\n")
    (line, target), = imports(module)
    assert (line, room(target)) == (2, "pipeline") and room(target) not in BELOW["models"]
