"""Quality rules on tiny frames, the nothing-lost property, reports and bias numbers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.io import read_table
from tailored.data.bias import gini, top_share
from tailored.data.quality import RETAIL_COUNT_ZSCORE, TAIL_NORMAL_Z, QualityRules, check_quality, require_valid
from tailored.errors import ConfigError, DataError, TailoredError
from tailored.models.base import check_scores
from tests.cli.helpers import POOL, cli, flat, ok

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
NOW = T0 + 86_400 * 365


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (user, item, value, timestamp), kept as given (object columns where mixed)."""
    return pd.DataFrame(rows, columns=[USER_ID, ITEM_ID, VALUE, TIMESTAMP])


def reasons(report) -> dict[int, str]:
    return dict(zip(report.rejected["row"], report.rejected["reason"], strict=True))


def finding(report, rule: str, field: str):
    (match,) = [f for f in report.findings if f.rule == rule and f.field == field]
    return match


def test_missing_ids_values_and_timestamps_are_rejected_with_the_column() -> None:
    data = frame([
        ("u1", "i1", 1, T0), ("u1", None, 1, T0), ("u2", "  ", 1, T0), ("", "i1", 1, T0), ("u3", "i2", None, T0),
        ("u3", "i3", 1, None),
    ])
    report = check_quality(data, now=NOW)
    assert reasons(report) == {
        1: "missing_value:item_id",
        2: "missing_value:item_id",
        3: "missing_value:user_id",
        4: "missing_value:value",
        5: "missing_value:timestamp",
    }
    assert finding(report, "missing_value", ITEM_ID).count == 2
    assert finding(report, "missing_value", ITEM_ID).sample_rows == (1, 2)
    assert report.clean[USER_ID].tolist() == ["u1"]


def test_drop_missing_false_reports_but_keeps_the_rows() -> None:
    data = frame([("u1", "i1", 1.0, T0), ("u1", "i2", np.nan, T0)])
    report = check_quality(data, QualityRules(drop_missing=False), now=NOW)
    missing = finding(report, "missing_value", VALUE)
    assert (missing.count, missing.action, missing.severity) == (1, "kept", "error")
    assert len(report.clean) == 2 and len(report.rejected) == 0
    assert np.isnan(report.clean[VALUE].iloc[1])


def test_non_numeric_and_infinite_values_are_invalid() -> None:
    data = frame([
        ("u1", "i1", "2", T0), ("u1", "i2", "two", T0), ("u2", "i1", "1,5", T0), ("u2", "i2", "inf", T0),
        ("u3", "i1", " 3.5 ", T0),
    ])
    report = check_quality(data, now=NOW)
    assert reasons(report) == {1: "invalid_value:value", 2: "invalid_value:value", 3: "invalid_value:value"}
    assert finding(report, "invalid_value", VALUE).sample_values == ("two", "1,5", "inf")
    assert report.clean[VALUE].tolist() == [2.0, 3.5]
    assert report.clean[VALUE].dtype == np.float64


def test_timestamps_parse_from_numbers_and_iso_dates_and_garbage_is_invalid() -> None:
    data = frame([
        ("u1", "i1", 1, "1704067200"), ("u1", "i2", 1, "2024-01-01T00:00:00Z"), ("u2", "i1", 1, "2024-01-01 06:00"),
        ("u2", "i2", 1, "yesterday"),
    ])
    report = check_quality(data, now=NOW)
    assert reasons(report) == {3: "invalid_timestamp:timestamp"}
    assert report.clean[TIMESTAMP].tolist() == [T0, T0, T0 + 6 * 3600]
    assert report.clean[TIMESTAMP].dtype == np.int64


def test_datetime_column_becomes_unix_seconds() -> None:
    data = frame([("u1", "i1", 1, T0)]).assign(timestamp=pd.to_datetime(["2024-01-01 00:00:30"]))
    assert check_quality(data, now=NOW).clean[TIMESTAMP].tolist() == [T0 + 30]


def test_value_range() -> None:
    data = frame([("u1", "i1", -2, T0), ("u1", "i2", 0, T0), ("u2", "i1", 5, T0), ("u2", "i2", 6, T0)])
    assert len(check_quality(data, now=NOW).rejected) == 0
    report = check_quality(data, QualityRules(min_value=0, max_value=5), now=NOW)
    assert reasons(report) == {0: "below_minimum:value", 3: "above_maximum:value"}
    kept = check_quality(data, QualityRules(min_value=0, drop_invalid_values=False), now=NOW)
    assert len(kept.clean) == 4 and finding(kept, "below_minimum", VALUE).action == "kept"


def test_future_timestamps_relative_to_now_with_tolerance() -> None:
    data = frame([("u1", "i1", 1, NOW - 1), ("u1", "i2", 1, NOW), ("u2", "i1", 1, NOW + 1), ("u2", "i2", 1, NOW + 100)])
    assert reasons(check_quality(data, now=NOW)) == {2: "future_timestamp:timestamp", 3: "future_timestamp:timestamp"}
    tolerant = check_quality(data, QualityRules(max_future_seconds=10), now=NOW)
    assert reasons(tolerant) == {3: "future_timestamp:timestamp"}
    assert reasons(check_quality(data, QualityRules(max_future_seconds=None), now=NOW)) == {}


def test_future_is_measured_from_the_real_clock_by_default() -> None:
    data = frame([("u1", "i1", 1, T0), ("u1", "i2", 1, 4_102_444_800)])  # 2100-01-01
    assert reasons(check_quality(data)) == {1: "future_timestamp:timestamp"}


def test_min_timestamp_accepts_dates_and_rejects_nonsense() -> None:
    data = frame([("u1", "i1", 1, T0 - 1), ("u1", "i2", 1, T0)])
    report = check_quality(data, QualityRules(min_timestamp="2024-01-01"), now=NOW)
    assert reasons(report) == {0: "before_min_timestamp:timestamp"}
    assert finding(report, "before_min_timestamp", TIMESTAMP).severity == "warning"
    with pytest.raises(ConfigError, match="min_timestamp='soon'"):
        check_quality(data, QualityRules(min_timestamp="soon"), now=NOW)


def test_unknown_ids_against_attribute_tables() -> None:
    data = frame([("u1", "i1", 1, T0), ("u9", "i1", 1, T0), ("u1", "i9", 1, T0)])
    users = pd.DataFrame({USER_ID: ["u1", "u2"]})
    items = pd.DataFrame({ITEM_ID: ["i1"]})
    report = check_quality(data, users=users, items=items, now=NOW)
    assert reasons(report) == {1: "unknown_id:user_id", 2: "unknown_id:item_id"}
    assert "absent from the item table" in finding(report, "unknown_id", ITEM_ID).message
    users_only = check_quality(data, QualityRules(known_items=False), users=users, items=items, now=NOW)
    assert reasons(users_only) == {1: "unknown_id:user_id"}


def test_numeric_ids_in_attribute_tables_match_string_ids() -> None:
    data = frame([("1", "7", 1, T0)])
    users, items = pd.DataFrame({USER_ID: [1.0, np.nan]}), pd.DataFrame({ITEM_ID: [7]})
    report = check_quality(data, users=users, items=items, now=NOW)
    assert len(report.rejected) == 0


def test_exact_duplicates_keep_the_first_copy() -> None:
    data = frame([("u1", "i1", 1, T0), ("u1", "i1", 1, T0), ("u1", "i1", 2, T0), ("u1", "i1", 1, T0)])
    report = check_quality(data, now=NOW)
    assert reasons(report) == {1: "duplicate_row:all_columns", 3: "duplicate_row:all_columns"}
    assert finding(report, "duplicate_row", "all_columns").sample_values[0] == f"u1|i1|1|{T0}"
    kept = check_quality(data, QualityRules(drop_duplicates=False), now=NOW)
    assert len(kept.clean) == 4 and finding(kept, "duplicate_row", "all_columns").count == 2


def test_the_first_failing_rule_names_the_row() -> None:
    data = frame([("u1", None, "two", T0), ("u1", None, "two", T0)])
    report = check_quality(data, now=NOW)
    assert reasons(report) == {0: "missing_value:item_id", 1: "missing_value:item_id"}
    assert finding(report, "invalid_value", VALUE).count == 0
    assert finding(report, "duplicate_row", "all_columns").count == 0


def outlier_frame() -> pd.DataFrame:
    """40 pairs bought once, 20 bought twice, and one user buying an item 500 times (one row each)."""
    rows = [(f"u{i}", "i1", 1.0, T0 + i) for i in range(40)]
    rows += [(f"v{i}", "i2", 1.0, T0 + i + j) for i in range(20) for j in range(2)]
    rows += [("heavy", "i3", 1.0, T0 + k) for k in range(500)]
    return frame(rows)


def test_outlier_counts_are_rejected_pair_by_pair() -> None:
    data = outlier_frame()
    report = check_quality(data, QualityRules(max_count_zscore=5), now=NOW)
    assert set(report.rejected["reason"]) == {"outlier_count:value"}
    assert len(report.rejected) == 500 and set(report.rejected[USER_ID]) == {"heavy"}
    assert finding(report, "outlier_count", VALUE).sample_values[0] == "500.0"
    assert len(check_quality(data, now=NOW).rejected) == 0  # off by default


def test_clipped_outliers_keep_their_rows_and_sum_to_the_cap() -> None:
    data = outlier_frame()
    report = check_quality(data, QualityRules(max_count_zscore=5, clip_outliers=True), now=NOW)
    assert len(report.clean) == len(data) and finding(report, "outlier_count", VALUE).action == "clipped"
    # pair totals 1 x 40, 2 x 20, 500: median log1p(1); 99th percentile (a value of the data) log1p(2)
    center, spread = math.log1p(1), (math.log1p(2) - math.log1p(1)) / TAIL_NORMAL_Z
    heavy = report.clean.loc[report.clean[USER_ID] == "heavy", VALUE]
    assert heavy.sum() == pytest.approx(math.expm1(center + 5 * spread))
    assert (report.clean.loc[report.clean[USER_ID] != "heavy", VALUE] == 1.0).all()


def test_raw_scale_reads_the_spread_from_the_99th_percentile() -> None:
    data = frame([(f"u{i}", "i1", 1.0, T0) for i in range(10)] + [("u0", "i2", 3.0, T0), ("u1", "i2", 30.0, T0)])
    # totals 1 x 10, 3, 30: median 1; the 99th percentile is 3, not interpolated towards the largest total
    spread = (3 - 1) / TAIL_NORMAL_Z
    report = check_quality(data, QualityRules(max_count_zscore=(3 - 1) / spread + 0.01, zscore_scale="raw"), now=NOW)
    assert reasons(report) == {11: "outlier_count:value"}


def test_mean_deviation_fallback_when_the_99th_percentile_is_the_median() -> None:
    data = frame([(f"u{i}", "i1", 1.0, T0) for i in range(200)] + [("u0", "i2", 4.0, T0)])
    spread = 1.2533 * 3 / 201  # totals 1 x 200 and 4: mean absolute deviation from the median 1
    rules = QualityRules(max_count_zscore=3 / spread - 0.01, zscore_scale="raw")
    assert reasons(check_quality(data, rules, now=NOW)) == {200: "outlier_count:value"}
    rules = QualityRules(max_count_zscore=3 / spread + 0.01, zscore_scale="raw")
    assert reasons(check_quality(data, rules, now=NOW)) == {}


def test_minimum_interactions_per_user_and_item_in_one_pass() -> None:
    data = frame([("u1", "i1", 1, T0), ("u1", "i2", 1, T0), ("u2", "i1", 1, T0), ("u3", "i1", 1, T0),
                  ("u3", "i3", 1, T0)])
    report = check_quality(data, QualityRules(min_user_interactions=2, min_item_interactions=2), now=NOW)
    few_items = "too_few_interactions:item_id"
    assert reasons(report) == {2: "too_few_interactions:user_id", 1: few_items, 4: few_items}
    # rows are rejected, so it is more than information
    assert finding(report, "too_few_interactions", USER_ID).severity == "warning"


def test_clean_frame_is_canonical_and_keeps_extra_columns() -> None:
    data = frame([("u1", "i1", "2", "1704067200")]).assign(event_type="purchase", store="north")
    clean = check_quality(data, now=NOW).clean
    assert list(clean.columns) == [USER_ID, ITEM_ID, VALUE, TIMESTAMP, "event_type", "store"]
    assert clean.dtypes[[VALUE, TIMESTAMP]].tolist() == [np.float64, np.int64]


def test_frames_without_value_or_timestamp_are_checked_too() -> None:
    data = pd.DataFrame({USER_ID: ["u1", "u2", "u2"], ITEM_ID: ["i1", "i2", "i2"]})
    report = check_quality(data)
    assert reasons(report) == {2: "duplicate_row:all_columns"}
    assert report.clean[VALUE].tolist() == [1.0, 1.0]
    assert {f.rule for f in report.findings} == {"missing_value", "duplicate_row"}


def test_missing_id_column_is_a_data_error() -> None:
    with pytest.raises(DataError, match="orders.csv has no 'item_id' column"):
        check_quality(pd.DataFrame({USER_ID: ["u1"]}), source="orders.csv")


def test_raise_for_errors_summarises_errors_but_not_warnings() -> None:
    dirty = frame([("u1", "i1", 1, T0), ("u1", None, 1, T0), ("u2", "i2", "two", T0)])
    with pytest.raises(DataError, match=r"orders.csv failed 2 data quality rule\(s\)") as error:
        check_quality(dirty, source="orders.csv", now=NOW).raise_for_errors()
    assert "1 row(s) with empty cells in column 'item_id' (row 1" in str(error.value)
    assert "values that are not finite numbers in column 'value' (row 2 ('two'))" in str(error.value)
    duplicates_only = frame([("u1", "i1", 1, T0), ("u1", "i1", 1, T0)])
    report = check_quality(duplicates_only, now=NOW)
    assert report.raise_for_errors() is report


def test_report_outputs(tmp_path) -> None:
    data = frame([("u1", "i1", 1, T0), ("u1", None, 1, T0), ("u2", "i2", "two", T0), ("u2", "i2", 1, T0)])
    report = check_quality(data, source="orders.csv", now=NOW)
    table = report.to_frame()
    assert list(table.columns) == [
        "rule", "field", "severity", "action", "count", "sample_rows", "sample_values", "message"
    ]
    assert table.set_index(["rule", "field"]).loc[("missing_value", ITEM_ID), "count"] == 1
    summary = json.loads(json.dumps(report.to_dict()))
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (4, 2, 2)
    assert summary["bias"]["item_gini"] == 0.0
    assert json.loads(report.to_json())["source"] == "orders.csv"
    text = report.to_markdown()
    assert "4 rows checked: 2 accepted, 2 rejected." in text
    assert "| missing_value | item_id | error | rejected | 1 | 1 |" in text
    assert "| duplicate_row | all_columns | warning | ok | 0 |  |" in text
    for name in ("rejected.csv", "rejected.parquet"):
        report.write_rejected(tmp_path / name)
        written = read_table(tmp_path / name)
        assert written["reason"].tolist() == ["missing_value:item_id", "invalid_value:value"]
        assert written[VALUE].astype(str).tolist() == ["1", "two"]
        assert [int(r) for r in written["row"]] == [1, 2]


def test_gini_and_top_share_by_hand() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 1])) == pytest.approx(0.75)
    assert gini(np.array([1, 2, 3])) == pytest.approx(2 * (1 + 4 + 9) / (3 * 6) - 4 / 3)
    assert gini(np.array([])) == 0.0
    assert top_share(np.array([5, 3, 1, 1]), 0.01) == pytest.approx(0.5)
    assert top_share(np.array([5, 3, 1, 1]), 0.5) == pytest.approx(0.8)
    assert top_share(np.zeros(3), 0.1) == 0.0


def test_bias_summary_on_a_hand_made_frame() -> None:
    data = frame([("u1", "i1", 1, T0), ("u1", "i2", 1, T0), ("u1", "i1", 1, T0 + 1), ("u2", "i1", 1, T0)])
    users = pd.DataFrame({USER_ID: ["u1", "u2", "u3", "u4"], "segment": ["a", "b", "b", "b"]})
    items = pd.DataFrame({ITEM_ID: ["i1", "i2", "i3"], "category": ["x", "y", "y"]})
    bias = check_quality(data, users=users, items=items, now=NOW).bias
    assert (bias.interactions, bias.users, bias.items) == (4, 4, 3)
    assert bias.item_gini == pytest.approx(gini(np.array([3, 1, 0])))
    assert bias.top1_item_share == pytest.approx(0.75)
    assert bias.top1_user_share == pytest.approx(0.75)
    assert (bias.median_per_user, bias.mean_per_user) == (0.5, 1.0)
    assert (bias.median_per_item, bias.mean_per_item) == (1.0, pytest.approx(4 / 3))
    segments = bias.user_groups.set_index("group")
    assert segments.loc["a"].tolist() == [0.25, 0.75]
    assert segments.loc["b"].tolist() == [0.75, 0.25]
    categories = bias.item_groups.set_index("group")
    assert categories.loc["x"].tolist() == [pytest.approx(1 / 3), 0.75]
    assert bias.to_dict()["user_groups"][0] == {"group": "a", "population_share": 0.25, "interaction_share": 0.75}


def test_a_list_column_puts_an_item_in_each_of_its_groups_and_the_report_shows_the_largest() -> None:
    data = frame([("u1", "i1", 1, T0), ("u1", "i2", 1, T0), ("u2", "i1", 1, T0), ("u2", "i9", 1, T0)])
    items = pd.DataFrame({ITEM_ID: ["i1", "i2", "i3", "i4"], "category": ["Drama|Romance", "Drama", " ", None]})
    report = check_quality(data, items=items, rules=QualityRules(known_items=False), now=NOW)
    categories = report.bias.item_groups.set_index("group")
    assert categories.loc["Drama"].tolist() == [0.5, 0.75]  # i1 and i2 of 4 items; 3 of the 4 interactions
    assert categories.loc["Romance"].tolist() == [0.25, 0.5]
    assert categories.loc["(missing)"].tolist() == [0.5, 0.0]
    assert categories.loc["(unknown)"].tolist() == [0.0, 0.25]  # i9 is not in the items table
    many = pd.DataFrame({ITEM_ID: [f"i{n}" for n in range(40)], "category": [f"c{n}" for n in range(40)]})
    markdown = check_quality(data, items=many, rules=QualityRules(known_items=False), now=NOW).to_markdown()
    assert "| c1 | 0.025 | 0.500 |" in markdown and "| c39 |" not in markdown
    assert "... and 10 smaller groups (`tailored check --report FILE` lists them all)." in markdown


def test_bias_without_attribute_tables_has_no_groups() -> None:
    bias = check_quality(frame([("u1", "i1", 1, T0), ("u2", "i1", 1, T0)]), now=NOW).bias
    assert bias.user_groups is None and bias.item_groups is None
    assert (bias.users, bias.items, bias.item_gini, bias.top10_user_share) == (2, 1, 0.0, 0.5)


cells = st.one_of(st.none(), st.just(""), st.sampled_from(["u1", "u2", "u3", " "]))
values = st.one_of(st.none(), st.floats(), st.sampled_from(["1", "two", "-3", "1e3"]))
stamps = st.one_of(st.none(), st.integers(0, 2 * NOW), st.sampled_from(["2024-02-01", "later", "1704067200"]))
rows = st.lists(st.tuples(cells, cells, values, stamps), max_size=40)
rule_sets = st.builds(
    QualityRules,
    drop_missing=st.booleans(),
    drop_duplicates=st.booleans(),
    drop_invalid_values=st.booleans(),
    min_value=st.none() | st.just(0.0),
    max_value=st.none() | st.just(10.0),
    max_count_zscore=st.none() | st.just(2.0),
    clip_outliers=st.booleans(),
    min_user_interactions=st.integers(1, 3),
    min_item_interactions=st.integers(1, 3),
)


@settings(max_examples=60, deadline=None)
@given(rows=rows, rules=rule_sets)
def test_nothing_is_lost(rows: list[tuple], rules: QualityRules) -> None:
    data = frame(rows).astype(object)
    report = check_quality(data, rules, items=pd.DataFrame({ITEM_ID: ["u1", "u2"]}), now=NOW)
    assert len(report.clean) + len(report.rejected) == len(data)
    assert report.rejected["reason"].str.fullmatch(r"[a-z_]+:[a-z_]+").all()
    assert report.rejected["row"].is_unique and report.rejected["row"].between(0, len(data) - 1).all()
    assert sum(f.count for f in report.findings if f.action == "rejected") == len(report.rejected)


def test_first_line_makes_messages_name_file_lines_like_the_readers() -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["i1", None, "i3"], "value": [1.0, 1.0, 1.0]})
    report = check_quality(frame, first_line=2, source="orders.csv")
    message = next(f.message for f in report.findings if f.rule == "missing_value" and f.count)
    assert "orders.csv" in message and "(line 3 ('nan'))" in message
    assert report.rejected[["row", "line"]].to_dict("records") == [{"row": 1, "line": 3}]


def test_absurd_values_are_rejected_as_errors_and_the_limit_is_a_knob() -> None:
    data = frame([("u1", "i1", 1e308, T0), ("u1", "i2", -2e9, T0), ("u2", "i1", 1e9, T0), ("u2", "i2", 3, T0)])
    report = check_quality(data, now=NOW)
    assert reasons(report) == {0: "absurd_value:value", 1: "absurd_value:value"}
    assert finding(report, "absurd_value", VALUE).severity == "error"
    assert "beyond plus or minus 1e+09" in finding(report, "absurd_value", VALUE).message
    assert len(check_quality(data, QualityRules(max_abs_value=None), now=NOW).clean) == 4


def test_require_valid_names_every_invalid_row_and_keeps_duplicates_and_future_dates() -> None:
    valid = frame([("u1", "i1", 1.0, T0), ("u1", "i1", 1.0, T0), ("u2", "i1", 2.0, NOW * 2)])
    assert len(require_valid(valid)) == 3
    invalid = frame([("u1", "i1", 1.0, T0), ("u2", "i1", math.inf, T0), ("u3", "i1", 1e308, T0)])
    with pytest.raises(DataError) as caught:
        require_valid(invalid, "orders.csv", first_line=2)
    message = str(caught.value)
    assert "orders.csv failed 2 data quality rule(s)" in message
    assert "values that are not finite numbers in column 'value' (line 3 ('inf'))" in message
    assert "absurd values (beyond plus or minus 1e+09) in column 'value' (line 4 ('1e+308'))" in message
    assert "tailored check --interactions FILE --output clean.csv" in message


# ---- through the command line: bad data or parameters never give a silent bad model -------------------------------
def orders(path: Path, bad: str | None = None) -> Path:
    """40 customers x 6 of 30 products (value 1), and one more row with value ``bad`` (line 242) when given."""
    rng = np.random.default_rng(1)
    rows = [f"c{u},p{i},1" for u in range(40) for i in rng.choice(30, 6, replace=False)]
    path.write_text("\n".join(["user_id,item_id,value", *rows, *([f"c1,p1,{bad}"] if bad else [])]) + "\n")
    return path


@pytest.mark.parametrize(("bad", "rule", "problem"), [
    ("inf", "invalid_value", "values that are not finite numbers"),
    ("-inf", "invalid_value", "values that are not finite numbers"),
    ("1e308", "absurd_value", "absurd values (beyond plus or minus 1e+09)"),
])
def test_train_refuses_a_non_finite_or_absurd_value_naming_its_line(tmp_path: Path, bad: str, rule: str,
                                                                     problem: str) -> None:
    orders(tmp_path / "orders.csv", bad)
    started = {algorithm: POOL.submit(cli, "train", "--interactions", "orders.csv", "--algorithm", algorithm,
                                      "--model-dir", f"model_{algorithm}", cwd=tmp_path)
               for algorithm in ("ease", "als")}
    checked = ok(cli("check", "--interactions", "orders.csv", "--output", "clean.csv", cwd=tmp_path))
    for algorithm, future in started.items():
        result = future.result()
        assert result.returncode == 2, f"{algorithm}: exit {result.returncode}\n{result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
        assert f"orders.csv: 1 row(s) with {problem} in column 'value' (line 242" in flat(result.stderr)
        assert not (tmp_path / f"model_{algorithm}").exists()
    assert f"| {rule} | value | error | rejected | 1 | 242 |" in checked.stdout
    rejected = pd.read_csv(tmp_path / "clean.rejected.csv")
    assert rejected[["line", "reason"]].to_dict("records") == [{"line": 242, "reason": f"{rule}:value"}]
    assert len(pd.read_csv(tmp_path / "clean.csv")) == 240


def test_train_names_the_files_own_column_and_line_of_an_empty_id(tmp_path: Path) -> None:
    """The reader keeps the row without a customer; the guard of train rejects it in the file's own words."""
    (tmp_path / "orders.csv").write_text("customer,sku,qty\nc1,p1,1\n,p2,1\nc2,p1,1\n")
    result = cli("train", "--interactions", "orders.csv", "--user-col", "customer", "--item-col", "sku",
                 "--value-col", "qty", "--algorithm", "ease", "--model-dir", "model", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "orders.csv: 1 row(s) with empty cells in column 'customer' (line 3 (" in flat(result.stderr)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(("algorithm", "param", "message"), [
    ("als", "factors=0", "Parameter als.factors=0 must be above 0 (default 128)."),
    ("als", "epochs=-1", "Parameter als.epochs=-1 must be above 0 (default 15)."),
    ("ease", "reg=nan", "Parameter ease.reg=nan is not a number (default 400.0)."),
    ("ease", "reg=-5", "Parameter ease.reg=-5.0 must not be negative (default 400.0)."),
    ("ease", "confidence_alpha=inf", "Parameter ease.confidence_alpha=inf must be finite (default 1.0)."),
    ("multvae", "dropout=1", "Parameter multvae.dropout=1.0 must be below 1 (default 0.5)."),
])
def test_train_refuses_hyperparameters_out_of_range_naming_them(tmp_path: Path, algorithm: str, param: str,
                                                                message: str) -> None:
    result = cli("train", "--interactions", orders(tmp_path / "orders.csv"), "--algorithm", algorithm,
                 "--param", param, "--model-dir", "model", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert flat(result.stderr) == f"error: {message}"
    assert not (tmp_path / "model").exists()


def test_a_model_whose_scores_are_not_finite_fails_its_post_training_check(tmp_path: Path) -> None:
    """A job that keeps invalid values (drop_invalid_values = false) trains on an infinite value: the model's NaN
    scores stop the run instead of saving a model that recommends nothing."""
    orders(tmp_path / "orders.csv", "inf")
    (tmp_path / "job.toml").write_text(
        '[job]\noutput = "run"\n[data]\ninteractions = "orders.csv"\n[quality]\ndrop_invalid_values = false\n'
        '[split]\nmethod = "random"\n[[algorithms]]\nname = "ease"\nparams = { weighting = "raw" }\n'
    )
    result = cli("run", "job.toml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "The ease model failed its post-training check" in flat(result.stderr)
    assert "have NaN or infinite scores" in flat(result.stderr)
    assert not (tmp_path / "run").exists()


def test_the_post_training_check_accepts_left_out_items_but_not_nan() -> None:
    dataset = Dataset.from_frame(frame([("u1", "i1", 1.0, T0), ("u2", "i2", 1.0, T0)]))

    @dataclass
    class Fixed:
        scores: list[float]
        algorithm = "fixed"

        def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
            return np.tile(self.scores, (len(users), 1))

    check_scores(Fixed([0.5, -math.inf]), dataset)
    for broken in ([math.nan, 1.0], [math.inf, 1.0], [-math.inf, -math.inf]):
        with pytest.raises(TailoredError, match="The fixed model failed its post-training check"):
            check_scores(Fixed(broken), dataset)


def test_events_prune_refuses_a_retention_window_that_is_not_a_number(tmp_path: Path) -> None:
    from tailored.store import EventStore

    EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    result = cli("events", "prune", "--days", "nan", "--db", "sqlite:///events.db", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert flat(result.stderr) == "error: The retention window must be positive, got nan days."


# ---- the outlier rule means the same at every size ------------------------------------------------------------------
def heavy_tailed_counts(n_customers: int, seed: int) -> pd.DataFrame:
    """Another generator: customers (lognormal activity) buy ~13 items of a Zipf-popular catalogue, each a lognormal
    number of times (a heavy but ordinary tail, up to ~100 on 60,000 customers), and one more customer buys one item
    569 times."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_customers), 1 + rng.poisson(12, n_customers))
    popularity = 1 / np.arange(1, 2001) ** 1.1
    items = rng.choice(2000, len(users), p=popularity / popularity.sum())
    counts = np.ceil(rng.lognormal(0, 0.7, len(users)) * rng.lognormal(0, 0.6, n_customers)[users])
    ordinary = pd.DataFrame({USER_ID: users.astype(str), ITEM_ID: items.astype(str), VALUE: counts})
    extreme = pd.DataFrame({USER_ID: "extreme", ITEM_ID: "0", VALUE: np.ones(569)})
    data = pd.concat([ordinary, extreme], ignore_index=True)
    return data.assign(**{TIMESTAMP: T0 + np.arange(len(data))})  # one purchase a second: no duplicate rows


def outliers(report) -> pd.DataFrame:
    return report.rejected[report.rejected["reason"] == "outlier_count:value"]


@pytest.mark.parametrize("n_customers", [600, 6_000, pytest.param(60_000, marks=pytest.mark.slow)])
def test_the_569_buyer_and_no_ordinary_heavy_buyer_is_an_outlier_of_synthetic_retail(n_customers: int) -> None:
    from tailored.data.synthetic import EXTREME_PURCHASES, generate_retail

    retail = generate_retail(n_customers, seed=n_customers)
    report = check_quality(retail.interactions, QualityRules(min_value=1, max_count_zscore=RETAIL_COUNT_ZSCORE),
                           items=retail.products)
    flagged = outliers(report)
    assert len(flagged) == EXTREME_PURCHASES and flagged[USER_ID].nunique() == 1 and flagged[ITEM_ID].nunique() == 1
    assert finding(report, "outlier_count", VALUE).sample_values[0] == f"{EXTREME_PURCHASES:.1f}"


@pytest.mark.parametrize("n_customers", [600, 6_000, 60_000])
def test_the_569_buyer_and_no_ordinary_heavy_buyer_is_an_outlier_of_another_heavy_tail(n_customers: int) -> None:
    data = heavy_tailed_counts(n_customers, seed=n_customers)
    report = check_quality(data, QualityRules(max_count_zscore=RETAIL_COUNT_ZSCORE), now=NOW)
    assert set(outliers(report)[USER_ID]) == {"extreme"} and len(outliers(report)) == 569
    totals = data.groupby([USER_ID, ITEM_ID])[VALUE].sum()
    assert totals.drop("extreme").max() >= 25  # heavy buyers exist, and pass


def test_check_flags_the_569_buyer_of_600_customers_through_the_command_line(tmp_path: Path) -> None:
    ok(cli("datasets", "synthetic", "--output-dir", "retail", "--customers", 600, cwd=tmp_path))
    ok(cli("check", "--interactions", "retail/interactions.csv", "--items", "retail/products.csv",
           "--rule", "min_value=1", "--rule", f"max_count_zscore={RETAIL_COUNT_ZSCORE}", "--output", "clean.csv",
           cwd=tmp_path))
    rejected = pd.read_csv(tmp_path / "clean.rejected.csv", dtype=str)
    flagged = rejected[rejected["reason"] == "outlier_count:value"]
    assert len(flagged) == 569 and flagged[USER_ID].nunique() == 1 and flagged[ITEM_ID].nunique() == 1
