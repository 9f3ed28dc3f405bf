"""What the command line lists: `tailored algorithms` with each Recommender setting as `RecommenderSettings` declares
it (default, tuning range, help text), and the benchmarks as one group, `tailored benchmark ...`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tailored.jobs.tune import search_space
from tailored.pipeline.settings import RecommenderSettings
from tests.cli.helpers import cli, flat, ok


def test_algorithms_lists_every_recommender_setting_as_declared(tmp_path: Path) -> None:
    listed = flat(ok(cli("algorithms", cwd=tmp_path)).stdout)
    assert "recommender settings (every algorithm; --param NAME=VALUE)" in listed
    for field in dataclasses.fields(RecommenderSettings):
        row = f"{field.name} │ {field.default!r} │"
        assert row in listed and flat(field.metadata["help"]) in listed, field.name
    assert "weighting │ 'auto' │ raw, log1p, binary, confidence │" in listed


def test_the_tuning_space_takes_the_tunable_settings_from_their_declaration() -> None:
    tunable = {field.name: field.metadata["tune"] for field in dataclasses.fields(RecommenderSettings)
               if field.metadata["tune"] is not None}
    assert set(tunable) == {"weighting"}
    assert {name: search_space("ease")[name] for name in tunable} == tunable  # implicit scorers tune them
    assert not set(tunable) & set(search_space("mf"))  # a rating predictor learns the values as given


def test_the_benchmarks_are_one_group(tmp_path: Path) -> None:
    listed = ok(cli("benchmark", "--help", cwd=tmp_path)).stdout
    for name in ("movielens-100k", "movielens-100k-reranking", "complementary", "service", "durability", "ann"):
        assert re.search(rf"│ {name}\s+\S", listed), name
    assert "benchmark-" not in ok(cli("--help", cwd=tmp_path)).stdout


def test_benchmark_complementary_on_the_synthetic_shop(tmp_path: Path) -> None:
    """Complements planted in the synthetic shop are found; the table compares them with the most bought items."""
    ok(cli("datasets", "synthetic", "--customers", 200, "--products", 60, "--days", 120, "--output-dir", ".",
           cwd=tmp_path))
    ok(cli("check", "--interactions", "interactions.csv", "--output", "clean.csv", cwd=tmp_path))
    done = ok(cli("benchmark", "complementary", "--interactions", "clean.csv", "--event-type", "purchase", "--pairs",
                  "complements.csv", cwd=tmp_path))
    rows = {line.split("│")[1].strip(): [float(cell) for cell in line.split("│")[2:-1]]
            for line in done.stdout.splitlines() if line.startswith("│ ")}
    assert set(rows) == {"complementary", "complementary, no backfill", "most bought"}
    assert rows["most bought"][2:] == [1.0, 1.0]  # the reference row
    assert rows["complementary, no backfill"][1] > 1.5 > rows["most bought"][1]  # mean lift of the listed pairs
    planted = re.fullmatch(r"planted partner in the item's top-10: (\d\.\d{4})", done.stdout.splitlines()[-1])
    assert planted is not None and float(planted[1]) > 0.9
