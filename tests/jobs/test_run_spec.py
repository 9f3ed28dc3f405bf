"""Job specs (`tailored.jobs.spec`): parsing and validation, the dump/parse round trip, paths relative to the spec file;
and `run_job` on a tiny spec read from another working directory."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError, DataError
from tailored.jobs.spec import AlgorithmSpec, DataSpec, JobSpec, SplitSpec, dump_spec, load_spec, parse_spec, resolve

REPOSITORY = Path(__file__).resolve().parents[2]
MINIMAL = {"data": {"interactions": "orders.csv"}}


def with_(document: dict, **sections: dict) -> dict:
    return {**document, **sections}


def round_trip(spec: JobSpec) -> JobSpec:
    return parse_spec(tomllib.loads(dump_spec(spec)), base_dir=spec.base_dir)


# ---- parsing ---------------------------------------------------------------------------------------------------
def test_minimal_spec_takes_the_defaults() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.data == DataSpec(interactions="orders.csv")
    assert spec.split == SplitSpec()
    assert [a.name for a in spec.algorithms] == ["popularity", "ease"]
    assert spec.select_by in spec.metrics
    assert spec.base_dir == "."


def test_full_spec_is_parsed_with_types() -> None:
    spec = parse_spec({
        "job": {"output": "runs/x", "metrics": ["ndcg@10", "hr@10"], "select_by": "hr@10", "k": 5, "show_users": 1},
        "data": {"interactions": "o.csv", "users": "u.csv", "items": "i.csv", "user_col": "customer",
                 "event_weights": {"purchase": 1.0, "view": 0.5}, "history_days": 90, "min_user_interactions": 3},
        "split": {"method": "temporal", "cutoff": "2024-06-01"},
        "quality": {"min_value": 1},
        "algorithms": [{"name": "ease", "params": {"reg": 100.0}}, {"name": "item-knn"}],
    }, base_dir="/somewhere")
    assert spec.k == 5 and spec.select_by == "hr@10" and spec.output == "runs/x"
    assert spec.data.user_col == "customer" and spec.data.history_days == 90 and spec.data.min_user_interactions == 3
    assert spec.split.method == "temporal" and spec.split.cutoff == "2024-06-01"
    assert spec.quality == {"min_value": 1}
    assert spec.algorithms == [AlgorithmSpec("ease", {"reg": 100.0}), AlgorithmSpec("item-knn", {})]
    assert spec.base_dir == "/somewhere"


@pytest.mark.parametrize(
    ("document", "named", "valid"),
    [
        (with_(MINIMAL, job={"bogus": 1}), "bogus", "select_by"),
        ({"data": {"interactions": "o.csv", "interaction": "typo.csv"}}, "interaction", "interactions"),
        (with_(MINIMAL, split={"methd": "random"}), "methd", "method"),
        (with_(MINIMAL, algorithms=[{"name": "ease", "parms": {}}]), "parms", "params"),
    ],
    ids=["job", "data", "split", "algorithms"],
)
def test_unknown_key_is_a_config_error_naming_it_and_the_valid_ones(document: dict, named: str, valid: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_spec(document)
    message = str(error.value)
    assert repr(named) in message and valid in message


@pytest.mark.parametrize(
    ("document", "texts"),
    [
        (with_(MINIMAL, algorithms=[{"name": "popularity"}, {"name": "ease", "params": {"regg": 100.0}}]),
         ["[[algorithms]] number 2 ('ease'): Unknown parameter(s) ['regg'] for algorithm 'ease'", "reg"]),
        (with_(MINIMAL, algorithms=[{"name": "eas"}]), ["[[algorithms]] number 1 ('eas')", "ease"]),
        (with_(MINIMAL, job={"metrics": ["ndcg10"], "select_by": "ndcg10"}),
         ["[job] metrics: Unknown metric 'ndcg10'", "Did you mean 'ndcg@10'?"]),
        (with_(MINIMAL, job={"metrics": ["ndcg@10", "rmse"]}),
         ["[[algorithms]] number 1 ('popularity'): rmse measures predicted ratings"]),
        (with_(MINIMAL, job={"metrics": ["ndcg@10"], "select_by": "recall@5"}),
         ["[job] select_by = 'recall@5' is not one of the job's metrics ['ndcg@10']"]),
        (with_(MINIMAL, split={"method": "per-user"}), ["[split] method 'per-user' is unknown", "per_user"]),
    ],
    ids=["parameter", "algorithm", "metric", "rating_metric", "select_by", "split_method"],
)
def test_what_would_fail_after_the_data_is_read_fails_when_the_spec_is_parsed(document: dict, texts: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        parse_spec(document)
    for text in texts:
        assert text in str(error.value)


def test_unknown_section_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"\['extras', 'zzz'\].*valid: job, data, split, evaluate, algorithms"):
        parse_spec(with_(MINIMAL, extras={"a": 1}, zzz={}))


def test_bad_value_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"job\.k='ten'.*int"):
        parse_spec(with_(MINIMAL, job={"k": "ten"}))
    with pytest.raises(ConfigError, match=r"min_user_interactions"):
        parse_spec({"data": {"interactions": "o.csv", "min_user_interactions": "many"}})


def test_data_needs_interactions_or_synthetic() -> None:
    with pytest.raises(ConfigError, match="interactions"):
        parse_spec({"job": {"k": 3}})
    assert parse_spec({"data": {"synthetic": {"n_customers": 50}}}).data.synthetic == {"n_customers": 50}


def test_load_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "absent.toml")
    (tmp_path / "broken.toml").write_text("[job\nk = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(tmp_path / "broken.toml")
    (tmp_path / "unknown.toml").write_text('[data]\ninteractions = "o.csv"\n[job]\nk = 3\nbogus = true\n')
    with pytest.raises(ConfigError, match="bogus"):
        load_spec(tmp_path / "unknown.toml")


def test_unknown_synthetic_setting_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text("[data.synthetic]\nn_customers = 200\ncustomerz = 3\n")
    with pytest.raises(ConfigError, match="customerz"):
        load_spec(tmp_path / "s.toml")


def test_unknown_quality_rule_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "q.toml").write_text('[data]\ninteractions = "o.csv"\n[quality]\nmin_valu = 1\n')
    with pytest.raises(ConfigError, match="min_valu"):
        load_spec(tmp_path / "q.toml")


def test_algorithms_under_job_are_parsed_or_rejected() -> None:
    try:
        spec = parse_spec(with_(MINIMAL, job={"algorithms": [{"name": "ease"}]}))
    except ConfigError:
        return
    assert all(isinstance(a, AlgorithmSpec) for a in spec.algorithms)


# ---- dump_spec round trip ----------------------------------------------------------------------------------------
def test_quickstart_round_trips() -> None:
    spec = load_spec(REPOSITORY / "configs" / "quickstart.toml")
    assert round_trip(spec) == spec
    assert dump_spec(round_trip(spec)) == dump_spec(spec)


def test_full_spec_round_trips() -> None:
    spec = JobSpec(
        data=DataSpec(interactions="o.parquet", users="u.csv", items="i.csv", user_col="customer", item_col="sku",
                      value_col="qty", time_col="ordered_at", event_weights={"purchase": 1.0, "view": 0.25},
                      history_days=180, min_user_interactions=2, min_item_interactions=3),
        split=SplitSpec(method="temporal", cutoff="2024-06-01T00:00:00Z", horizon_days=14.5),
        algorithms=[AlgorithmSpec("ease", {"reg": 250.0, "weighting": "log1p", "recency_half_life": float("inf")}),
                    AlgorithmSpec("item-knn", {"neighbors": 50})],
        metrics=["ndcg@10", "recall@20"],
        quality={"min_value": 1, "max_count_zscore": 12.5, "clip_outliers": True, "min_timestamp": "2023-01-01"},
        output="../runs/x",
        select_by="recall@20",
        show_users=1,
        k=20,
        base_dir="/data/jobs",
    )
    assert round_trip(spec) == spec


def test_synthetic_spec_round_trips_with_default_base_dir() -> None:
    spec = parse_spec({"data": {"synthetic": {"n_customers": 100, "seed": 3}}, "split": {"method": "random"}})
    assert parse_spec(tomllib.loads(dump_spec(spec))) == spec


def test_none_inside_quality_survives_the_round_trip() -> None:
    spec = parse_spec(MINIMAL)
    spec.quality = {"max_future_seconds": None}
    assert round_trip(spec) == spec


# ---- paths relative to the spec file ---------------------------------------------------------------------------
def test_relative_paths_resolve_from_the_spec_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project" / "jobs"
    folder.mkdir(parents=True)
    (folder / "job.toml").write_text('[data]\ninteractions = "data/orders.csv"\nitems = "/abs/items.csv"\n')
    monkeypatch.chdir(tmp_path)
    spec = load_spec("project/jobs/job.toml")
    assert resolve(spec, spec.data.interactions).resolve() == (folder / "data" / "orders.csv").resolve()
    assert resolve(spec, spec.data.items) == Path("/abs/items.csv")
    assert resolve(spec, spec.data.users) is None


def test_run_job_reads_and_writes_relative_to_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tailored.registry.model_dir import load_model
    from tailored.jobs.run import run_job

    folder = tmp_path / "jobs"
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", 1.0, 1_700_000_000 + 100 * u + j)
            for u in range(30) for j, i in enumerate(rng.choice(20, 8, replace=False))]
    frame = pd.DataFrame(rows, columns=["customer", "sku", "qty", "ts"])
    frame.to_csv(folder / "data" / "orders.csv", index=False)
    with (folder / "data" / "orders.csv").open("a") as handle:
        handle.write("u0,i1,abc,1700000000\n")  # rejected by the quality check
    (folder / "job.toml").write_text(
        '[job]\noutput = "out"\nmetrics = ["ndcg@10", "hr@10"]\nk = 5\nshow_users = 2\n'
        '[data]\ninteractions = "data/orders.csv"\nuser_col = "customer"\nitem_col = "sku"\nvalue_col = "qty"\n'
        'time_col = "ts"\n[split]\nmethod = "leave_last_out"\n[[algorithms]]\nname = "popularity"\n'
        '[[algorithms]]\nname = "ease"\nparams = { reg = 10.0 }\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_job(load_spec(folder / "job.toml"))
    out = folder / "out"
    assert result.output == out.resolve()
    assert not list(elsewhere.iterdir())
    for name in ("report.md", "metrics.png", "recommendations.csv", "rejected.csv", "job.toml"):
        assert (out / name).is_file(), name
    assert len(pd.read_csv(out / "rejected.csv")) == 1
    assert len(result.quality.clean) == len(frame)
    assert set(result.reports) == {"popularity", "ease"} and result.best in result.reports
    runner_up = ({"popularity", "ease"} - {result.best}).pop()
    report = (out / "report.md").read_text()
    assert f"{result.best} - {runner_up} on ndcg@10 over the same " in report
    train = result.split.counts["train"]
    assert f"- train: {train['rows']:,} rows, {train['users']:,} users, {train['items']:,} items" in report
    assert load_model(out / "model").is_fitted
    assert parse_spec(tomllib.loads((out / "job.toml").read_text()),
                      base_dir=str(folder)) == load_spec(folder / "job.toml")


def test_a_cold_users_job_says_which_models_ranked_the_new_users(tmp_path: Path) -> None:
    from tailored.jobs.run import run_job

    document = {"job": {"output": "out", "metrics": ["ndcg@10"]},
                "data": {"synthetic": {"n_customers": 80, "n_products": 50, "days": 60, "seed": 1}},
                "split": {"method": "cold_users", "fraction": 0.25}, "algorithms": [{"name": "popularity"}]}
    result = run_job(parse_spec(document, base_dir=tmp_path))
    new_users = result.split.counts["test"]["users"]
    assert result.cold_users == {"popularity": f"the {new_users} test users absent from training ranked by demographic"}
    assert f"### popularity (fit {result.fit_seconds['popularity']:.2f} s; the {new_users} test users absent" in (
        tmp_path / "out" / "report.md").read_text()


def test_a_job_that_fails_late_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    from tailored.jobs.run import run_job

    document = {"job": {"output": "out", "metrics": ["ndcg@10"]},
                "data": {"synthetic": {"n_customers": 60, "n_products": 50, "days": 60, "seed": 1}},
                "algorithms": [{"name": "popularity"}]}
    run_job(parse_spec(document, base_dir=tmp_path))
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*"))
    failing = parse_spec(with_(document, data={**document["data"], "min_user_interactions": 10_000}), base_dir=tmp_path)
    with pytest.raises(DataError, match="No interactions are left"):
        run_job(failing)  # fails after reading and checking the data, in the staging folder
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind
