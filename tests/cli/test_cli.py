"""The `tailored` command line as a user runs it: a real subprocess of the installed console script, in a temporary
folder, checking exit codes, messages on stdout/stderr and the files written.

Every invocation pays the package's import time (a few seconds), so independent commands are started together on a
small thread pool and the fixtures that produce shared artefacts (data, models) are module-scoped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections import defaultdict
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.helpers import POOL, TAILORED, cli, flat, ok


@pytest.fixture(scope="module", autouse=True)
def _console_script() -> None:
    if not Path(TAILORED).exists():
        pytest.fail("the `tailored` console script is not installed (pip install -e .)")


# ---- data made in the test -------------------------------------------------------------------------------------
N_USERS, N_ITEMS, K = 40, 30, 10
GHOST = "ghost-user"  # a test user absent from training


def implicit_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unique (user, item) pairs with timestamps: train = all but each user's 2 latest rows, test = those 2 rows
    plus 2 rows of a user unknown to training."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(N_USERS):
        liked = rng.choice(N_ITEMS, int(rng.integers(8, 13)), replace=False, p=_item_weights())
        for j, i in enumerate(liked):
            rows.append((f"u{u:02d}", f"i{i:02d}", 1.0, 1_700_000_000 + 1000 * u + 10 * j))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    latest = frame.groupby("user_id")["timestamp"].rank(ascending=False, method="first") <= 2
    train, test = frame[~latest].reset_index(drop=True), frame[latest].reset_index(drop=True)
    missing = sorted(set(f"i{i:02d}" for i in range(N_ITEMS)) - set(train["item_id"]))
    extra = pd.DataFrame({"user_id": "u00", "item_id": missing, "value": 1.0, "timestamp": 1_600_000_000})
    train = pd.concat([train, extra], ignore_index=True)  # every item has a training interaction
    ghost = pd.DataFrame({"user_id": GHOST, "item_id": ["i00", "i01"], "value": 1.0, "timestamp": 1_800_000_000})
    return train, pd.concat([test, ghost], ignore_index=True)


def _item_weights() -> np.ndarray:
    weights = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.7
    return weights / weights.sum()


def ratings_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explicit 1..5 ratings from a low-rank taste model; test pairs include an unknown user and item."""
    rng = np.random.default_rng(5)
    users, items = rng.normal(size=(50, 2)), rng.normal(size=(35, 2))
    rows = []
    for u in range(50):
        for i in rng.choice(35, 14, replace=False):
            rating = int(np.clip(np.rint(3 + users[u] @ items[i] + rng.normal(scale=0.3)), 1, 5))
            rows.append((f"r{u}", f"m{i}", float(rating), 1_700_000_000 + u * 100 + int(i)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    test_mask = np.random.default_rng(6).random(len(frame)) < 0.15
    test = pd.concat(
        [frame[test_mask], pd.DataFrame({"user_id": ["nobody", "r1", "nobody"], "item_id": ["m1", "unseen", "unseen"],
                                         "value": [3.0, 4.0, 2.0], "timestamp": 1_800_000_000})],
        ignore_index=True,
    )
    return frame[~test_mask].reset_index(drop=True), test


# ---- everything is started at once ----------------------------------------------------------------------------
Results = dict[str, subprocess.CompletedProcess[str]]


def chain(cwd: Path, steps: dict[str, list[object]], before: dict[str, object] | None = None) -> Results:
    """Run named commands one after the other in ``cwd``, stopping at the first failure."""
    results: Results = {}
    for name, args in steps.items():
        if before and name in before:
            before[name]()  # type: ignore[operator]
        results[name] = cli(*args, cwd=cwd)
        if results[name].returncode != 0:
            break
    return results


def step(results: Results, name: str) -> subprocess.CompletedProcess[str]:
    assert name in results, f"step {name!r} did not run: an earlier step failed: " + "; ".join(
        f"{n}: exit {r.returncode} {r.stderr[-500:]}" for n, r in results.items() if r.returncode != 0)
    return ok(results[name])


@pytest.fixture(scope="module")
def ml100k_dir_optional() -> Path | None:
    shared = Path(os.environ.get("TAILORED_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data"))
    path = shared / "ml-100k"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def started(work: Path, ml100k_dir_optional: Path | None) -> dict[str, Future[Results]]:
    """Writes the input files, then starts every command chain on the pool (longest first); tests collect them."""
    implicit, explicit, syn, job = (work / name for name in ("implicit", "explicit", "syn", "job"))
    for folder in (implicit, explicit, syn, job):
        folder.mkdir()
    train, test = implicit_data()
    train.to_csv(implicit / "train.csv", index=False)
    test.to_csv(implicit / "test.csv", index=False)
    renamed = train.rename(columns={"user_id": "customer", "item_id": "sku", "value": "qty", "timestamp": "ts"})
    renamed.to_parquet(implicit / "train_renamed.parquet", index=False)
    ratings, rating_test = ratings_data()
    ratings.to_csv(explicit / "ratings.csv", index=False)
    rating_test.to_csv(explicit / "test.csv", index=False)
    rating_test[["user_id", "item_id"]].to_csv(explicit / "pairs.csv", index=False)
    (job / "small.toml").write_text(SMALL_SPEC)
    prepare_bad_inputs(implicit)

    futures: dict[str, Future[Results]] = {}
    if ml100k_dir_optional is not None:
        futures["benchmark"] = POOL.submit(chain, work, {"benchmark": [
            "benchmark", "movielens-100k", "--data-dir", ml100k_dir_optional, "--algorithm", "popularity",
            "--algorithm", "ease", "--output", "bench.csv"]})
    futures["implicit"] = POOL.submit(chain, implicit, {
        "train": ["train", "--interactions", "train.csv", "--algorithm", "ease", "--model-dir", "model"],
        "train_renamed": ["train", "--interactions", "train_renamed.parquet", "--user-col", "customer", "--item-col",
                          "sku", "--value-col", "qty", "--time-col", "ts", "--algorithm", "ease", "--model-dir",
                          "model_renamed"],
        "all_users": ["recommend", "--model-dir", "model", "--all-users", "--k", K, "--output", "all.csv"],
        # --users FILE: the test file's user_id column, with a user unknown to training; Parquet output
        "users_file": ["recommend", "--model-dir", "model", "--users", "test.csv", "--k", K, "--output",
                       "test_recs.parquet"],
        "evaluate_file": ["evaluate", "--test", "test.csv", "--recommendations", "test_recs.parquet", "--train",
                          "train.csv", "--metric", "ndcg@10", "--metric", "hr@10", "--output", "from_file.json"],
        "evaluate_model": ["evaluate", "--test", "test.csv", "--model-dir", "model", "--train", "train.csv",
                           "--metric", "ndcg@10", "--metric", "hr@10", "--output", "from_model.json"],
    })
    futures["synthetic"] = POOL.submit(chain, syn, {
        "synthetic": ["datasets", "synthetic", "--customers", 200, "--products", 60, "--days", 120, "--output-dir",
                      "."],
        "check": ["check", "--interactions", "interactions.csv", "--users", "customers.csv", "--items", "products.csv",
                  "--rule", "min_value=1", "--output", "clean.csv", "--report", "report.json"],
        "per_user": ["split", "--interactions", "clean.csv", "--method", "per_user", "--valid-fraction", 0.25,
                     "--output-dir", "split_per_user"],
        "leave_last_out": ["split", "--interactions", "clean.csv", "--method", "leave_last_out", "--output-dir",
                           "split_leave_last_out"],
        "temporal": ["split", "--interactions", "clean.csv", "--method", "temporal", "--test-fraction", 0.1,
                     "--output-dir", "split_temporal"],
    })
    futures["tune"] = POOL.submit(chain, implicit, {
        "tune": ["tune", "--interactions", "train.csv", "--algorithm", "ease", "--metric", "hr@10", "--trials", 3,
                 "--seed", 1, "--output", "tuned/best.json"],
        "params_file": ["train", "--interactions", "train.csv", "--algorithm", "ease", "--params-file",
                        "tuned/best.json", "--model-dir", "tuned/model_file"],
    })
    futures["explicit"] = POOL.submit(chain, explicit, {
        "train": ["train", "--interactions", "ratings.csv", "--algorithm", "mf", "--param", "epochs=40", "--param",
                  "burn_in=10", "--model-dir", "mf"],
        "predict": ["predict", "--model-dir", "mf", "--pairs", "pairs.csv", "--output", "predictions.csv"],
        "evaluate": ["evaluate", "--test", "test.csv", "--model-dir", "mf", "--metric", "rmse", "--metric", "mae",
                     "--output", "errors.json"],
    })
    futures["run"] = POOL.submit(chain, work, {"run": ["run", "job/small.toml"]})
    for name, (args, _, _) in BAD_CASES.items():
        before = {name: lambda: copy_as_old_model(implicit)} if name == "incompatible_model" else None
        if name == "incompatible_model":  # needs the trained model: after the implicit chain
            futures[f"bad:{name}"] = POOL.submit(lambda a=args, b=before, n=name: (futures["implicit"].result(),
                                                                                 chain(implicit, {n: a}, b))[1])
        else:
            futures[f"bad:{name}"] = POOL.submit(chain, implicit, {name: args})
    return futures


@pytest.fixture(scope="module")
def implicit(work: Path, started: dict[str, Future[Results]]) -> Path:
    """train.csv / test.csv, the same training data as Parquet with other column names, an ease model trained on
    each, recommendations for all users and for the test users (one unknown to training)."""
    results = started["implicit"].result()
    for name in ("train", "train_renamed", "all_users", "users_file"):
        step(results, name)
    return work / "implicit"


# ---- train -> recommend ----------------------------------------------------------------------------------------
def _check_lists(recs: pd.DataFrame, train: pd.DataFrame, users: list[str]) -> None:
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank", "model"]
    assert sorted(recs["user_id"].unique()) == sorted(users)
    seen = set(zip(train["user_id"].astype(str), train["item_id"].astype(str)))
    for user, rows in recs.groupby("user_id"):
        assert len(rows) == K, user
        assert rows["rank"].tolist() == list(range(1, K + 1)), user
        assert rows["item_id"].is_unique
        assert rows["score"].is_monotonic_decreasing
        assert not {(user, item) for item in rows["item_id"]} & seen, f"{user} is recommended a training item"
    assert np.isfinite(recs["score"]).all()


def test_recommend_all_users(implicit: Path) -> None:
    train = pd.read_csv(implicit / "train.csv", dtype={"user_id": str, "item_id": str})
    recs = pd.read_csv(implicit / "all.csv", dtype={"user_id": str, "item_id": str})
    _check_lists(recs, train, sorted(train["user_id"].unique()))
    manifest = json.loads((implicit / "model" / "manifest.json").read_text())
    assert manifest["algorithm"] == "ease" and manifest["n_interactions"] == len(train)


def test_recommend_users_file_with_unknown_user_gets_popularity(implicit: Path) -> None:
    train = pd.read_csv(implicit / "train.csv", dtype={"user_id": str, "item_id": str})
    test = pd.read_csv(implicit / "test.csv", dtype={"user_id": str, "item_id": str})
    recs = pd.read_parquet(implicit / "test_recs.parquet")  # Parquet output
    users = test["user_id"].drop_duplicates().tolist()
    assert GHOST in users and GHOST not in set(train["user_id"])
    _check_lists(recs, train, users)
    assert recs["user_id"].drop_duplicates().tolist() == users, "users in the order of the file"
    ghost = recs[recs["user_id"] == GHOST]
    counts = train.groupby("item_id").size()  # pairs are unique: interactions == distinct users
    top = counts.sort_values(ascending=False, kind="stable")
    assert set(ghost["item_id"]) <= set(top[top >= top.iloc[K - 1]].index)
    assert ghost["score"].tolist() == [counts[item] for item in ghost["item_id"]]
    # known users get personal lists, not the popularity list
    personal = recs[recs["user_id"] != GHOST].groupby("user_id")["item_id"].apply(list)
    assert any(items != ghost["item_id"].tolist() for items in personal)


def test_train_says_which_attribute_columns_the_model_uses_and_recommend_what_it_cannot_use(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_id": [f"u{u % 120}" for u in range(600)],
                  "item_id": [f"i{i}" for i in rng.integers(0, 30, 600)]}
                 ).drop_duplicates().to_csv(tmp_path / "events.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(120)], "segment": ["a", "b"] * 60,
                  "income": rng.normal(40_000, 9_000, 120).round(), "customer_no": [f"c{u}" for u in range(120)],
                  "country": "FR"}).to_csv(tmp_path / "users.csv", index=False)
    pd.DataFrame({"item_id": [f"i{i}" for i in range(30)], "category": ["x", "y", "z"] * 10,
                  "genres": ["x|y", "z"] * 15, "sku": [f"s{i}" for i in range(30)], "note": "",
                  "photo": [f"img/{i}.JPG" for i in range(30)]}).to_csv(tmp_path / "items.csv", index=False)
    said = ok(cli("train", "--interactions", "events.csv", "--users", "users.csv", "--items", "items.csv",
                  "--algorithm", "ease", "--model-dir", "m", cwd=tmp_path)).stderr
    assert ("user attributes used: segment, income (5 bins); left out: customer_no (a different value in every row), "
            "country (the same value everywhere)") in said
    assert ("item attributes used: category, genres ('|' list); left out: sku (a different value in every row), "
            "note (no value), photo (image files: `tailored embed --image-column photo` makes features of them)"
            ) in said
    # new items at recommend time: what the model cannot use is named; columns training left out (sku) are not foreign
    pd.DataFrame({"item_id": ["n1", "n2"], "category": ["x", "unseen"], "Genres": ["x|y", "z"], "sku": ["s98", "s99"]}
                 ).to_csv(tmp_path / "new_items.csv", index=False)
    said = flat(ok(cli("recommend", "--model-dir", "m", "--all-users", "--items", "new_items.csv", "--k", "3",
                       "--output", "r.csv", cwd=tmp_path)).stderr)
    assert "warning: new_items.csv: no column(s) 'genres' (trained on 'category', 'genres'): scored as unknown." in said
    assert "column(s) 'Genres' not among the training attributes ('category', 'genres'): ignored." in said
    assert "1 item(s) without any value known from training, e.g. 'n2': scored alike, as unknown items." in said
    assert "'sku'" not in said


def test_column_mapping_and_parquet_input_give_the_same_model(implicit: Path) -> None:
    from tailored.registry.model_dir import load_model

    plain, renamed = load_model(implicit / "model"), load_model(implicit / "model_renamed")
    assert sorted(plain.users_.external_ids) == sorted(renamed.users_.external_ids)
    users = np.asarray(sorted(plain.users_.external_ids))
    first, second = plain.recommend(users, K), renamed.recommend(users, K)
    pd.testing.assert_frame_equal(first[["user_id", "item_id", "rank"]], second[["user_id", "item_id", "rank"]],
                                  check_dtype=False)
    np.testing.assert_allclose(first["score"], second["score"], rtol=1e-5)
    manifest = json.loads((implicit / "model_renamed" / "manifest.json").read_text())
    reference = json.loads((implicit / "model" / "manifest.json").read_text())
    assert manifest["data_fingerprint"] == reference["data_fingerprint"]


def test_output_files_get_normal_permissions(implicit: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    assert (implicit / "all.csv").stat().st_mode & 0o777 == 0o666 & ~umask


# ---- predict / evaluate rmse with mf ---------------------------------------------------------------------------
def test_predict_every_pair_including_unknown_ids(work: Path, started: dict[str, Future[Results]]) -> None:
    explicit = work / "explicit"
    results = started["explicit"].result()
    step(results, "predict")
    pairs = pd.read_csv(explicit / "pairs.csv", dtype=str)
    frame = pd.read_csv(explicit / "predictions.csv", dtype={"user_id": str, "item_id": str})
    assert list(frame.columns) == ["user_id", "item_id", "prediction"]
    pd.testing.assert_frame_equal(frame[["user_id", "item_id"]], pairs)
    train = pd.read_csv(explicit / "ratings.csv")
    assert np.isfinite(frame["prediction"]).all()
    assert frame["prediction"].between(train["value"].min(), train["value"].max()).all()
    unknown = frame[(frame["user_id"] == "nobody") | (frame["item_id"] == "unseen")]
    assert len(unknown) == 3

    # evaluate --metric rmse --model-dir: the RMSE/MAE of exactly these predictions
    step(results, "evaluate")
    errors = _metrics_json(explicit / "errors.json")
    truth = pd.read_csv(explicit / "test.csv")["value"].to_numpy()
    difference = frame["prediction"].to_numpy() - truth
    assert errors["rmse"] == pytest.approx(math.sqrt(float(np.mean(difference**2))), abs=1e-6)
    assert errors["mae"] == pytest.approx(float(np.mean(np.abs(difference))), abs=1e-6)


# ---- evaluate from files and from a model ----------------------------------------------------------------------
def plain_metrics(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """NDCG@k and HR@k by the PROTOCOLS.md definitions, in plain Python."""
    relevant: dict[str, set[str]] = defaultdict(set)
    for user, item in zip(test["user_id"].astype(str), test["item_id"].astype(str)):
        relevant[user].add(item)
    lists: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for user, item, rank in zip(recs["user_id"].astype(str), recs["item_id"].astype(str), recs["rank"]):
        lists[user].append((float(rank), item))
    ndcg, hr = [], []
    for user, items in relevant.items():
        ranked = [item for _, item in sorted(lists.get(user, []))][:k]
        gains = sum(1 / math.log2(r + 1) for r, item in enumerate(ranked, start=1) if item in items)
        ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(items), k) + 1))
        ndcg.append(gains / ideal)
        hr.append(1.0 if any(item in items for item in ranked) else 0.0)
    return {"ndcg@10": sum(ndcg) / len(ndcg), "hr@10": sum(hr) / len(hr)}


def _metrics_json(path: Path) -> dict[str, float]:
    return {row["metric"]: row["value"] for row in json.loads(path.read_text())}


def test_evaluate_recommendations_and_model_dir_agree_with_plain_python(implicit: Path,
                                                                        started: dict[str, Future[Results]]) -> None:
    results = started["implicit"].result()
    step(results, "evaluate_file")
    step(results, "evaluate_model")
    expected = plain_metrics(pd.read_parquet(implicit / "test_recs.parquet"), pd.read_csv(implicit / "test.csv",
                                                                                          dtype=str))
    from_file = _metrics_json(implicit / "from_file.json")
    assert 0 < expected["ndcg@10"] < 1 and 0 < expected["hr@10"] <= 1
    for name, value in expected.items():
        assert from_file[name] == pytest.approx(value, abs=1e-6), name
    assert _metrics_json(implicit / "from_model.json") == pytest.approx(from_file, abs=1e-9)


def test_evaluate_files_hand_made_lists(tmp_path: Path) -> None:
    """What `evaluate --recommendations` computes (jobs.evaluate_files) on edge cases: ranks out of order, a user
    without recommendations, a repeated test row, a list longer than 10."""
    from tailored.jobs.evaluate import evaluate_files

    pd.DataFrame({"user_id": ["a", "a", "a", "b", "b", "c"], "item_id": ["x", "y", "y", "z", "w", "x"]}).to_csv(
        tmp_path / "test.csv", index=False)
    pd.DataFrame({"user_id": ["a", "b"], "item_id": ["q", "q"]}).to_csv(tmp_path / "train.csv", index=False)
    recs = pd.DataFrame({
        "user_id": ["a"] * 3 + ["b"] * 12,
        "item_id": ["p", "y", "x"] + [f"n{i}" for i in range(10)] + ["z", "w"],
        "rank": [3, 1, 2] + list(range(1, 13)),
    })
    recs.to_csv(tmp_path / "recs.csv", index=False)
    report = evaluate_files(tmp_path / "test.csv", tmp_path / "recs.csv", tmp_path / "train.csv", ["ndcg@10", "hr@10"])
    values = report.to_frame().set_index("metric")["value"].to_dict()
    # a: y at rank 1, x at rank 2 -> NDCG 1; b: z, w beyond rank 10 -> 0; c: no list -> 0
    assert values["ndcg@10"] == pytest.approx(1 / 3, abs=1e-9)
    assert values["hr@10"] == pytest.approx(1 / 3, abs=1e-9)
    assert plain_metrics(recs, pd.read_csv(tmp_path / "test.csv")) == pytest.approx(values, abs=1e-9)


# ---- tune -> train --params-file / --param ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tuned(implicit: Path, started: dict[str, Future[Results]]) -> tuple[Path, Results]:
    results = started["tune"].result()
    step(results, "tune")
    return implicit, results


def test_tune_hr_uses_leave_last_out_and_round_trips_into_train(tuned: tuple[Path, Results]) -> None:
    folder, results = tuned
    assert "validation (leave_last_out) hr@10" in flat(results["tune"].stderr)
    best = json.loads((folder / "tuned" / "best.json").read_text())
    assert set(best) == {"reg", "recency_half_life", "weighting"}
    as_params = [arg for name, value in best.items() for arg in ("--param", f"{name}={value}")]
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "ease", *as_params, "--model-dir",
           "tuned/model_params", cwd=folder))
    step(results, "params_file")
    for name in ("model_file", "model_params"):
        manifest = json.loads((folder / "tuned" / name / "manifest.json").read_text())
        assert manifest["params"] == {k: v for k, v in best.items() if k != "weighting"}, name
        assert manifest["recommender"]["weighting"] == best["weighting"], name


def test_tune_output_is_standard_json(tuned: tuple[Path, Results]) -> None:
    folder, _ = tuned

    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    json.loads((folder / "tuned" / "best.json").read_text(), parse_constant=reject)


# ---- check ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_results(started: dict[str, Future[Results]]) -> Results:
    return started["synthetic"].result()


@pytest.fixture(scope="module")
def synthetic(work: Path, synthetic_results: Results) -> Path:
    step(synthetic_results, "synthetic")
    return work / "syn"


@pytest.fixture(scope="module")
def checked(synthetic: Path, synthetic_results: Results) -> tuple[Path, subprocess.CompletedProcess[str]]:
    return synthetic, step(synthetic_results, "check")


def test_datasets_synthetic_is_deterministic(tmp_path: Path, synthetic: Path) -> None:
    """Same seed -> byte-identical files (the CLI's files against a fresh generation with the default seed)."""
    from tailored.data.synthetic import generate_retail

    generate_retail(n_customers=200, n_products=60, days=120, seed=42).write(tmp_path)
    for name in ("customers.csv", "interactions.csv", "products.csv"):
        assert (synthetic / name).read_bytes() == (tmp_path / name).read_bytes(), name
    assert len(pd.read_csv(synthetic / "customers.csv")) == 200
    assert len(pd.read_csv(synthetic / "products.csv")) == 60
    generate_retail(n_customers=200, n_products=60, days=120, seed=43).write(tmp_path / "other")
    assert (tmp_path / "other" / "interactions.csv").read_bytes() != (synthetic / "interactions.csv").read_bytes()


def test_check_rejects_every_malformed_row_with_its_reason(
        checked: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    folder, result = checked
    raw = pd.read_csv(folder / "interactions.csv", dtype=str, keep_default_na=False)
    clean = pd.read_csv(folder / "clean.csv", dtype={"user_id": str, "item_id": str})
    rejected = pd.read_csv(folder / "clean.rejected.csv", dtype=str, keep_default_na=False)
    assert len(clean) + len(rejected) == len(raw), "no row lost"
    assert {"row", "reason", "user_id", "item_id", "value"} <= set(rejected.columns)
    reasons = rejected["reason"].str.split(":").str[0]
    # the generator's malformed rows: 2 missing item ids, 1 negative and 2 non-numeric quantities, 1 duplicate,
    # 1 timestamp in 2099 and 1 unknown product id
    assert sorted(reasons) == sorted(["missing_value"] * 2 + ["below_minimum"] + ["invalid_value"] * 2
                                     + ["duplicate_row", "future_timestamp", "unknown_id"])
    assert (rejected.loc[reasons == "missing_value", "item_id"] == "").all()
    assert set(rejected.loc[reasons == "invalid_value", "value"]) == {"two", "1,5"}
    assert float(rejected.loc[reasons == "below_minimum", "value"].iloc[0]) < 1
    # each rejected row is the input row it names (0-based position), and no rejected row survives in clean
    for row in rejected.itertuples(index=False):
        original = raw.iloc[int(row.row)]
        assert (original["user_id"], original["item_id"], original["value"]) == (row.user_id, row.item_id, row.value)
    assert (clean["value"] >= 1).all() and clean["item_id"].notna().all()
    assert set(clean["item_id"]) <= set(pd.read_csv(folder / "products.csv", dtype=str)["item_id"])
    assert not clean.duplicated().any()
    assert "below_minimum" in result.stdout and "8 rejected" in flat(result.stdout)
    report = json.loads((folder / "report.json").read_text())
    assert report


# ---- split ---------------------------------------------------------------------------------------------------------
def test_split_methods_write_train_test_and_manifest(checked: tuple[Path, subprocess.CompletedProcess[str]],
                                                     synthetic_results: Results) -> None:
    folder, _ = checked
    runs = {method: step(synthetic_results, method) for method in ("per_user", "leave_last_out", "temporal")}
    clean = pd.read_csv(folder / "clean.csv", dtype={"user_id": str, "item_id": str})
    key = ["user_id", "item_id", "timestamp"]
    for method, result in runs.items():
        assert "no leakage" in result.stderr, method
        out = folder / f"split_{method}"
        manifest = json.loads((out / "split.json").read_text())
        assert manifest["name"].endswith(method) or method in manifest["name"], manifest["name"]
        parts = {p: pd.read_csv(out / f"{p}.csv", dtype={"user_id": str, "item_id": str})
                 for p in ("train", "test", "valid") if (out / f"{p}.csv").exists()}
        assert sum(len(frame) for frame in parts.values()) == len(clean), method
        for name, frame in parts.items():
            assert manifest["counts"][name]["rows"] == len(frame)
        together = pd.concat(parts.values(), ignore_index=True)
        parted = sorted(map(tuple, together[key].astype(str).to_numpy()))
        assert parted == sorted(map(tuple, clean[key].astype(str).to_numpy()))
        if method == "leave_last_out":
            assert parts["test"]["user_id"].is_unique
            latest = parts["train"].groupby("user_id")["timestamp"].max()
            test = parts["test"].set_index("user_id")["timestamp"]
            assert (test >= latest.reindex(test.index)).all()
        if method == "temporal":
            assert parts["test"]["timestamp"].min() >= parts["train"]["timestamp"].max()
            assert len(parts["test"]) == pytest.approx(0.1 * len(clean), rel=0.05)
    per_user = {p: pd.read_csv(folder / "split_per_user" / f"{p}.csv") for p in ("train", "test", "valid")}
    assert len(per_user["valid"]) == pytest.approx(0.25 * (len(per_user["train"]) + len(per_user["valid"])), rel=0.1)
    assert len(per_user["test"]) == pytest.approx(0.2 * len(clean), rel=0.1)


# ---- run SPEC ------------------------------------------------------------------------------------------------------
SMALL_SPEC = """
[job]
output = "out"                 # relative to the spec's folder
metrics = ["ndcg@10", "recall@10", "hr@10", "coverage@10"]
select_by = "ndcg@10"
k = 5
show_users = 2

[data.synthetic]
n_customers = 200
n_products = 60
days = 120
seed = 7

[data]
event_weights = { purchase = 1.0, view = 0.2 }
min_user_interactions = 2

[quality]
min_value = 1
max_count_zscore = 18
clip_outliers = true

[split]
method = "temporal"
test_fraction = 0.1
horizon_days = 14

[[algorithms]]
name = "popularity"

[[algorithms]]
name = "ease"
params = { reg = 100.0, weighting = "log1p" }
"""


def test_run_small_spec_writes_the_whole_job(work: Path, started: dict[str, Future[Results]]) -> None:
    result = step(started["run"].result(), "run")
    out = work / "job" / "out"  # resolved from the spec's folder, not the working directory
    assert not (work / "out").exists()
    for name in ("report.md", "metrics.png", "recommendations.csv", "rejected.csv", "job.toml"):
        assert (out / name).is_file(), name
    for name in ("model", "split"):
        assert (out / name).is_dir(), name
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"train.csv", "test.csv", "split.json"} <= {p.name for p in (out / "split").iterdir()}
    report = (out / "report.md").read_text()
    assert "popularity" in report and "ease" in report and "ndcg@10" in report
    recs = pd.read_csv(out / "recommendations.csv")
    assert {"user_id", "item_id", "score", "rank"} <= set(recs.columns)
    assert recs["user_id"].nunique() == 2 and (recs.groupby("user_id").size() == 5).all()
    rejected = pd.read_csv(out / "rejected.csv")
    assert len(rejected) == 8 and "reason" in rejected.columns
    text = flat(result.stdout + result.stderr)
    assert "test metrics (temporal split)" in text and "8 rejected" in text

    from tailored.registry.model_dir import load_model
    from tailored.jobs.spec import load_spec, parse_spec

    model = load_model(out / "model")
    assert model.is_fitted and len(model.recommend([model.users_.external_ids[0]], 5)) == 5
    assert json.loads((out / "model" / "manifest.json").read_text())["algorithm"] in ("popularity", "ease")
    import tomllib

    spec = load_spec(work / "job" / "small.toml")
    assert parse_spec(tomllib.loads((out / "job.toml").read_text()), base_dir=spec.base_dir) == spec


# ---- benchmark -----------------------------------------------------------------------------------------------------
def test_benchmark_movielens_p1_p2(ml100k_dir: Path, work: Path, started: dict[str, Future[Results]]) -> None:
    result = step(started["benchmark"].result(), "benchmark")
    assert "P1 (test)" in result.stdout and "P2 (test)" in result.stdout
    table = pd.read_csv(work / "bench.csv")
    assert set(table["algorithm"]) == {"popularity", "ease"}
    assert set(table["protocol"]) == {"P1", "P2", "items", "sessions", "sessions+attributes"}
    p1 = table[(table["protocol"] == "P1") & (table["algorithm"] == "ease")].iloc[0]
    assert p1["ndcg@10"] == pytest.approx(0.4527, abs=5e-5)
    assert "0.4527" in result.stdout
    cold = table[(table["protocol"] == "items") & (table["algorithm"] == "ease")].iloc[0]
    assert cold["ratio"] == pytest.approx(3.902, abs=5e-3)  # new items ranked through the item model
    sessions = table[table["protocol"] == "sessions"].set_index("algorithm")["ndcg@10"]
    assert sessions["popularity"] == pytest.approx(0.4529, abs=5e-5)  # the fallback, the session's 5 items left out
    assert sessions["ease"] == pytest.approx(0.4426, abs=5e-5)  # folded in, blended with popularity
    described = table[table["protocol"] == "sessions+attributes"].set_index("algorithm")["ndcg@10"]
    assert described["ease"] > sessions["ease"] + 0.005, (described, sessions)  # the attributes steady the session


def test_benchmark_p1_split_is_the_shared_one(ml100k_dir: Path, ml100k_splits_dir: Path) -> None:
    """The P1 split the benchmark scores on is the shared P1 file pair."""
    from tailored.benchmarks.movielens import ranking_splits

    split = ranking_splits(ml100k_dir, validation=False)["P1"]
    key = ["user_id", "item_id"]
    for part, frame in (("train", split.train.to_frame()), ("test", split.test.to_frame())):
        shared = pd.read_csv(ml100k_splits_dir / f"P1.{part}.csv", dtype=str)
        ours = frame[key].astype(str)
        assert sorted(map(tuple, ours.to_numpy())) == sorted(map(tuple, shared[key].to_numpy())), part


def test_a_benchmark_session_is_the_users_first_events_or_a_seeded_random_draw_of_them() -> None:
    from tailored.benchmarks.movielens import SESSION_LENGTH, session_rows

    rows = pd.DataFrame({"user_id": ["a"] * 40 + ["b"] * 3, "timestamp": list(range(40)) + [0, 1, 2]})
    first = session_rows(rows, random_draw=False)
    assert first.tolist() == [True] * SESSION_LENGTH + [False] * (40 - SESSION_LENGTH) + [True] * 3
    drawn = session_rows(rows, random_draw=True)
    assert drawn[:40].sum() == SESSION_LENGTH and drawn[40:].all()  # a user with fewer events gives them all
    assert not drawn[:SESSION_LENGTH].all()  # not the first ones
    assert (session_rows(rows, random_draw=True) == drawn).all()  # seeded


# ---- bad input -----------------------------------------------------------------------------------------------------
BAD_SPEC_KEY = '[job]\noutput = "never_key"\nbogus = 1\n[data]\ninteractions = "train.csv"\n'

# name -> (arguments, texts the message must contain, path that must not exist afterwards)
BAD_CASES: dict[str, tuple[list[object], list[str], str | None]] = {
    "missing_file": (["train", "--interactions", "nope.csv", "--algorithm", "ease", "--model-dir", "m_missing"],
                     ["nope.csv", "not found"], "m_missing"),
    "wrong_column": (["train", "--interactions", "train.csv", "--user-col", "customer", "--algorithm", "ease",
                      "--model-dir", "m_column"], ["'customer'", "available columns", "'user_id'", "'item_id'"],
                     "m_column"),
    "unparsable_value": (["train", "--interactions", "bad_value.csv", "--algorithm", "ease", "--model-dir", "m_value"],
                         ["'value'", "bad_value.csv", "line 4", "'abc'"], "m_value"),
    "unknown_algorithm": (["train", "--interactions", "train.csv", "--algorithm", "nope", "--model-dir", "m_algo"],
                          ["'nope'", "ease", "popularity", "item-knn", "mf"], "m_algo"),
    "unknown_parameter": (["train", "--interactions", "train.csv", "--algorithm", "ease", "--param", "foo=1",
                           "--model-dir", "m_param"], ["'foo'", "reg", "recency_half_life"], "m_param"),
    "bad_parameter_type": (["train", "--interactions", "train.csv", "--algorithm", "ease", "--param", "reg=abc",
                            "--model-dir", "m_type"], ["reg", "'abc'", "float"], "m_type"),
    "not_a_model": (["recommend", "--model-dir", "not_a_model", "--all-users", "--output", "r_not_model.csv"],
                    ["not_a_model", "manifest.json", "tailored train"], "r_not_model.csv"),
    "incompatible_model": (["recommend", "--model-dir", "old_model", "--all-users", "--output", "r_old.csv"],
                           ["old_model", "version 99", "format version 5"], "r_old.csv"),
    "empty_data": (["train", "--interactions", "empty.csv", "--algorithm", "ease", "--model-dir", "m_empty"],
                   ["empty.csv", "no interactions"], "m_empty"),
    "spec_unknown_key": (["run", "bad_key.toml"], ["bogus", "valid", "select_by"], "never_key"),
}


def prepare_bad_inputs(folder: Path) -> None:
    (folder / "bad_value.csv").write_text("user_id,item_id,value\nu1,i1,1\nu2,i2,2\nu3,i3,abc\n")
    (folder / "empty.csv").write_text("user_id,item_id,value,timestamp\n")
    (folder / "not_a_model").mkdir()
    (folder / "not_a_model" / "notes.txt").write_text("hello")
    (folder / "bad_key.toml").write_text(BAD_SPEC_KEY)


def copy_as_old_model(folder: Path) -> None:
    shutil.copytree(folder / "model", folder / "old_model")
    manifest = json.loads((folder / "old_model" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (folder / "old_model" / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def bad_results(started: dict[str, Future[Results]]) -> Results:
    return {name: started[f"bad:{name}"].result()[name] for name in BAD_CASES}


@pytest.mark.parametrize("name", list(BAD_CASES))
def test_bad_input_exits_2_with_a_clear_message(name: str, bad_results: Results, implicit: Path) -> None:
    _, texts, absent = BAD_CASES[name]
    result = bad_results[name]
    message = flat(result.stderr)
    assert result.returncode == 2, f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr
    assert message.startswith("error:")
    for text in texts:
        assert text in message, f"{name}: {text!r} not in {message!r}"
    # a failing command leaves no partial output (no file, model folder, temporary or staging folder)
    if absent is not None:
        assert not (implicit / absent).exists(), f"{name} left {absent} behind"
    assert not [p.name for p in implicit.iterdir() if p.name.endswith(".tmp") or ".partial-" in p.name]


def test_unknown_parameter_message_lists_recommender_parameters(bad_results: Results) -> None:
    message = flat(bad_results["unknown_parameter"].stderr)
    assert "weighting" in message and "confidence_alpha" in message
