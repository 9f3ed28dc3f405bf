"""What a new user meets in the first hour, through the installed `tailored` console script: install hints that work
from a checkout, the licence and `--version`, progress and tables in logs, and outputs written for people."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

import tailored
from tests.cli.helpers import ENV, TAILORED, ok

Job = tuple[Path, subprocess.CompletedProcess[str]]
"""A job's folder and the finished `tailored run`."""

ROOT = Path(__file__).resolve().parents[2]


def run(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tailored ARGS...` with stdout and stderr redirected to files, as in a log or a CI job: no terminal, and no
    COLUMNS variable to say how wide the lines may be."""
    environment = {name: value for name, value in {**ENV, **(env or {})}.items() if name != "COLUMNS"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.run([TAILORED, *map(str, args)], cwd=cwd, env=environment, stdout=out, stderr=err,
                                 timeout=300)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())


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


# ---- 2. progress and tables in logs ------------------------------------------------------------------------------
SMALL_JOB = """
[job]
output = "out"
metrics = ["ndcg@10", "recall@10", "hr@10", "coverage@10", "novelty@10", "diversity@10"]
select_by = "ndcg@10"
k = 5
show_users = 2

[data.synthetic]
n_customers = 150
n_products = 60
days = 120
seed = 1

[data]
event_weights = { purchase = 1.0 }

[split]
method = "temporal"
test_fraction = 0.2

[[algorithms]]
name = "popularity"

[[algorithms]]
name = "ease"
"""


@pytest.fixture(scope="module")
def small_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`tailored run` of a small synthetic job, its output in a log file."""
    folder = tmp_path_factory.mktemp("job")
    (folder / "small.toml").write_text(SMALL_JOB)
    return folder, ok(run("run", "small.toml", cwd=folder))


def test_run_prints_one_progress_line_per_step_into_a_log(small_job: Job) -> None:
    steps = [line for line in small_job[1].stderr.splitlines() if line.startswith("run small.toml: ")]
    assert [re.sub(r", \d+ s$", ", N s", line) for line in steps] == [
        "run small.toml: reading data, N s",
        "run small.toml: checking quality of 7,397 rows, N s",
        "run small.toml: splitting 4,993 interactions (temporal), N s",
        "run small.toml: training and evaluating popularity (1 of 2) on 3,994 training interactions, N s",
        "run small.toml: training and evaluating ease (2 of 2) on 3,994 training interactions, N s",
        "run small.toml: refitting ease on all 4,993 interactions and saving it, N s",
        "run small.toml: writing sample recommendations for 2 users and the report, N s",
    ]


def test_tables_in_a_log_are_neither_wrapped_nor_cut_at_80_columns(small_job: Job) -> None:
    lines = small_job[1].stdout.splitlines()
    header = next(line for line in lines if "algorithm" in line and "ndcg@10" in line)
    assert re.findall(r"[\w@]+", header) == ["algorithm", "ndcg@10", "recall@10", "hr@10", "coverage@10", "novelty@10",
                                             "diversity@10", "fit_s"]
    assert len(header) > 80
    rows = {line.split()[1]: re.findall(r"\d+\.\d+", line)
            for line in lines if line.startswith(("│ popularity", "│ ease "))}
    assert {name: len(values) for name, values in rows.items()} == {"popularity": 7, "ease": 7}  # whole rows


# ---- 3. outputs for people -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def titles(small_job: Job) -> dict[str, str]:
    """item id -> title of the job's synthetic products (the model was trained with them)."""
    products = pd.read_csv(small_job[0] / "out" / "data" / "products.csv", dtype=str)
    return dict(zip(products["item_id"], products["title"]))


def test_explanations_name_the_history_item_by_its_title(small_job: Job,
                                                         titles: dict[str, str]) -> None:
    folder = small_job[0]
    ok(run("recommend", "--model-dir", "out/model", "--all-users", "--k", 3, "--explain", "--output", "r.csv",
           cwd=folder))
    reasons = pd.read_csv(folder / "r.csv", dtype=str)["reasons"].dropna()
    liked = reasons.str.extractall(r"(?:^|; )like ([^;]+)")[0]
    assert len(liked) > 50
    assert set(liked) <= set(titles.values())
    assert not liked.str.fullmatch(r"P\d{5}").any()


def test_similar_complementary_trending_and_batch_write_a_title_after_the_ids(
        small_job: Job, titles: dict[str, str]) -> None:
    folder = small_job[0]
    pd.DataFrame({"item_id": ["P00015", "P00022"]}).to_csv(folder / "query.csv", index=False)
    commands = {
        "similar.csv": ["similar", "--model-dir", "out/model", "--items", "query.csv", "--k", 3],
        "complementary.csv": ["complementary", "--model-dir", "out/model", "--items", "query.csv", "--k", 3],
        "trending.csv": ["trending", "--model-dir", "out/model", "--k", 3, "--min-count", 1],
        "batch.csv": ["batch", "--model-dir", "out/model", "--all-users", "--k", 2],
    }
    for output, args in commands.items():
        ok(run(*args, "--output", output, cwd=folder))
    expected = {"similar.csv": ["item_id", "similar_item_id", "title", "score", "rank"],
                "complementary.csv": ["item_id", "complementary_item_id", "title", "score", "lift", "confidence",
                                      "support", "rank", "source"],
                "trending.csv": ["item_id", "title", "score", "window_count", "expected_count", "rank"],
                "batch.csv": ["user_id", "item_id", "title", "score", "rank", "model"]}
    for output, columns in expected.items():
        frame = pd.read_csv(folder / output, dtype={"title": str})
        assert frame.columns.tolist() == columns, output
        listed = frame[columns[columns.index("title") - 1]]
        assert len(frame) and frame["title"].tolist() == listed.map(titles).tolist(), output


def test_models_list_prints_one_readable_row_per_version(small_job: Job) -> None:
    folder = small_job[0]
    for _ in range(2):
        ok(run("models", "register", "--registry", "registry", "--name", "shop", "--model-dir", "out/model",
               cwd=folder))
    ok(run("models", "promote", "--registry", "registry", "shop", "v0001", cwd=folder))
    listed = ok(run("models", "list", "--registry", "registry", cwd=folder)).stdout
    manifest = json.loads((folder / "out" / "model" / "manifest.json").read_text())
    ndcg = manifest["metrics"]["ndcg@10"]
    created = manifest["created"].replace("T", " ").replace("+00:00", " UTC")
    cells = [[cell.strip() for cell in line.strip("│┃ ").split("│" if "│" in line else "┃")]
             for line in listed.splitlines() if line.startswith(("│", "┃"))]
    key = f"ndcg@10 {ndcg['value']:.4f} [{ndcg['ci_low']:.4f}, {ndcg['ci_high']:.4f}]"
    assert cells == [["name", "version", "stage", "algorithm", "created", "key metric"],
                     ["shop", "v0001", "production", manifest["algorithm"], created, key],
                     ["shop", "v0002", "", manifest["algorithm"], created, key]]


# ---- 4. repurchases in the run report ------------------------------------------------------------------------------
def repurchase_rows(split: Path) -> tuple[int, int]:
    """(test rows whose user-item pair is in train.csv, test rows), counted with pandas from the frozen split."""
    train, test = (pd.read_csv(split / name, dtype={"user_id": str, "item_id": str})
                   for name in ("train.csv", "test.csv"))
    pairs = train[["user_id", "item_id"]].drop_duplicates()
    return len(test.merge(pairs, on=["user_id", "item_id"])), len(test)


def test_the_run_report_says_how_many_test_rows_are_repurchases_and_how_to_count_them(
        small_job: Job) -> None:
    folder, result = small_job
    repeated, rows = repurchase_rows(folder / "out" / "split")
    assert 0 < repeated < rows
    note = (f"{repeated / rows:.1%} of the test rows ({repeated:,} of {rows:,}) are repurchases (user-item pairs "
            "already in training): no model here may recommend them (seen items are excluded), so they cap every "
            "figure. For a repurchase-aware evaluation set `[evaluate] exclude_seen = false` in the job spec (or "
            "`--param exclude_seen=false` with `tailored train`).")
    assert note in (folder / "out" / "report.md").read_text().splitlines()
    assert note in result.stderr.splitlines()
    assert "seen items ranked too" not in result.stdout + (folder / "out" / "report.md").read_text()


def test_exclude_seen_false_ranks_repurchases_labels_the_figures_and_keeps_the_setting(tmp_path: Path) -> None:
    (tmp_path / "job.toml").write_text(SMALL_JOB + "\n[evaluate]\nexclude_seen = false\n")
    result = ok(run("run", "job.toml", cwd=tmp_path))
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    repeated, rows = repurchase_rows(out / "split")
    assert (f"{repeated / rows:.1%} of the test rows ({repeated:,} of {rows:,}) are repurchases (user-item pairs "
            "already in training); the models ranked seen items too, so these count as hits ([evaluate] "
            "exclude_seen = false)."
            in report.splitlines())
    headers = [line for line in report.splitlines() if line.startswith("### popularity") or line.startswith("### ease")]
    assert len(headers) == 2 and all(line.endswith("; seen items ranked too: repurchases count)") for line in headers)
    assert "test metrics (temporal split; seen items ranked too: repurchases count)" in result.stdout
    assert json.loads((out / "model" / "manifest.json").read_text())["recommender"]["exclude_seen"] is False
    ok(run("recommend", "--model-dir", "out/model", "--all-users", "--k", 5, "--output", "r.csv", cwd=tmp_path))
    recommended = pd.read_csv(tmp_path / "r.csv", dtype=str)
    trained = pd.read_csv(out / "split" / "train.csv", dtype=str)[["user_id", "item_id"]].drop_duplicates()
    assert len(recommended.merge(trained, on=["user_id", "item_id"])) > 0  # items the users already took come back

    (tmp_path / "bad.toml").write_text(SMALL_JOB + "\n[evaluate]\nexclude_sen = false\n")
    bad = run("run", "bad.toml", cwd=tmp_path)
    assert bad.returncode == 2 and "exclude_sen" in bad.stderr and "exclude_seen" in bad.stderr


def test_train_param_exclude_seen_false_gives_back_the_items_a_user_took(tmp_path: Path) -> None:
    data = tiny_interactions(tmp_path / "interactions.csv")
    ok(run("train", "--interactions", data, "--algorithm", "popularity", "--param", "exclude_seen=false",
           "--model-dir", "model", "--no-context-stages", cwd=tmp_path))
    ok(run("recommend", "--model-dir", "model", "--all-users", "--k", 7, "--output", "r.csv", cwd=tmp_path))
    recommended = pd.read_csv(tmp_path / "r.csv", dtype=str)
    taken = pd.read_csv(data, dtype=str)[["user_id", "item_id"]]
    assert len(recommended.merge(taken, on=["user_id", "item_id"])) == len(taken)  # every pair taken is listed again


def test_an_item_without_a_title_is_named_by_its_id_and_a_name_column_serves_as_title() -> None:
    from tailored.data.dataset import Dataset
    from tailored.models import create_scorer
    from tailored.pipeline.recommender import Recommender
    from tailored.rank.explain import with_titles

    rows = [(f"u{u}", item) for u in range(10) for item in ("a", "b")]
    rows += [(f"v{u}", item) for u in range(10) for item in ("c", "d")]
    frame = pd.DataFrame(rows + [("target", "a"), ("target", "c"), ("w", "e")], columns=["user_id", "item_id"])
    items = pd.DataFrame({"item_id": list("abcde"), "name": ["Apples", "Bread", " ", "Dates", "Eggs"]})
    recommender = Recommender(create_scorer("item-knn")).fit(Dataset.from_frame(frame, items=items))
    listed = recommender.recommend(["target"], 2, explain=True).set_index("item_id")
    assert listed.loc["b", "reasons"] == "like Apples" and listed.loc["d", "reasons"] == "like c"  # c's name is blank
    titled = with_titles(listed.reset_index()[["user_id", "item_id", "score"]], recommender.catalogue)
    assert titled.columns.tolist() == ["user_id", "item_id", "title", "score"]
    assert titled.set_index("item_id")["title"].to_dict() == {"b": "Bread", "d": "Dates"}
