"""Readers and writer of data/io.py: delimiters, formats, column mapping and the errors users see."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.data.io import read_attributes, read_interactions, read_table, write_table
from tailored.data.quality import check_quality
from tailored.errors import DataError
from tailored.jobs.tasks import read_valid

ROWS = [("u1", "007", "5", "881250949"), ("u2", "i2", "3.5", "881250950"), ("u1", "i3", "1", "881250951")]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ratings_file(path: Path, delimiter: str = ",", rows: list[tuple[str, ...]] = ROWS) -> Path:
    header = delimiter.join(["user_id", "item_id", "value", "timestamp"])
    return write_lines(path, [header, *(delimiter.join(row) for row in rows)])


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    frame = read_interactions(ratings_file(tmp_path / "ratings.csv", delimiter))
    assert list(frame.columns) == ["user_id", "item_id", "value", "timestamp"]
    assert frame["user_id"].tolist() == ["u1", "u2", "u1"]
    assert frame["item_id"].tolist() == ["007", "i2", "i3"]  # ids are text: leading zeros kept
    assert frame["value"].tolist() == [5.0, 3.5, 1.0]
    assert frame["value"].dtype == np.float64
    assert frame["timestamp"].dtype == np.int64
    assert frame["timestamp"].tolist() == [881250949, 881250950, 881250951]


def test_explicit_delimiter_and_txt_suffix(tmp_path: Path) -> None:
    path = ratings_file(tmp_path / "ratings.txt", ";")
    assert read_table(path, delimiter=";").shape == (3, 4)
    assert read_table(path, delimiter=",").shape == (3, 1)  # the caller's choice wins over detection


def test_text_ids_that_look_missing_stay_ids(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.csv", ["user_id,item_id", "NA,null", "None,nan"])
    frame = read_interactions(path)
    assert frame["user_id"].tolist() == ["NA", "None"]
    assert frame["item_id"].tolist() == ["null", "nan"]
    assert (frame["value"] == 1.0).all()


def test_parquet_input_keeps_integer_ids_as_plain_strings(tmp_path: Path) -> None:
    source = pd.DataFrame({"user_id": [1, 2], "item_id": [10.0, 20.0], "value": [1, 2], "timestamp": [5.9, 7.0]})
    path = write_table(source, tmp_path / "deep" / "ratings.parquet")
    frame = read_interactions(path)
    assert frame["user_id"].tolist() == ["1", "2"]
    assert frame["item_id"].tolist() == ["10", "20"]  # not "10.0"
    assert frame["timestamp"].tolist() == [5, 7]  # fractional seconds floored


def test_pandas_input_with_datetimes_and_event_and_extra_columns() -> None:
    source = pd.DataFrame(
        {
            "user_id": ["a", "b"],
            "item_id": ["x", "y"],
            "timestamp": pd.to_datetime(["2024-03-01", "2024-03-01 12:30:00"], format="ISO8601"),
            "event_type": ["view", "purchase"],
            "device": ["mobile", "desktop"],
        }
    )
    frame = read_interactions(source, extra=["device"])
    assert list(frame.columns) == ["user_id", "item_id", "value", "timestamp", "event_type", "device"]
    assert frame["timestamp"].tolist() == [1709251200, 1709296200]
    assert frame["event_type"].tolist() == ["view", "purchase"]
    assert frame["device"].tolist() == ["mobile", "desktop"]


def test_polars_input() -> None:
    import polars  # the test extra installs it

    source = polars.DataFrame({"user": [1, 2], "item": ["x", "y"], "rating": [4.0, 2.0], "when": [100, 200]})
    frame = read_interactions(source, user="user", item="item", value="rating", time="when")
    assert frame["user_id"].tolist() == ["1", "2"]
    assert frame["value"].tolist() == [4.0, 2.0]
    assert frame["timestamp"].tolist() == [100, 200]
    assert read_table(source).shape == (2, 4)


def test_column_mapping_with_iso_dates(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "orders.csv",
        [
            "customer_id,sku,qty,ordered_at,store",
            "c1,SKU-1,2,2024-03-01,north",
            "c2,SKU-2,1,2024-03-01T12:30:00Z,south",
            "c1,SKU-3,4,2024-03-01T12:30:00+02:00,north",
            "c3,SKU-1,1,1709251200,east",
        ],
    )
    frame = read_interactions(path, user="customer_id", item="sku", value="qty", time="ordered_at", extra=["store"])
    assert list(frame.columns) == ["user_id", "item_id", "value", "timestamp", "store"]
    assert frame["timestamp"].tolist() == [1709251200, 1709296200, 1709289000, 1709251200]
    assert frame["value"].tolist() == [2.0, 1.0, 4.0, 1.0]
    assert frame["store"].tolist() == ["north", "south", "north", "east"]


def test_default_value_absent_is_one_but_explicit_value_must_exist(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "clicks.csv", ["user_id,item_id", "a,x", "b,y"])
    frame = read_interactions(path)
    assert frame["value"].tolist() == [1.0, 1.0]
    assert "timestamp" not in frame and "event_type" not in frame
    with pytest.raises(DataError) as caught:
        read_interactions(path, value="qty")
    message = str(caught.value)
    assert "'qty' (given as value=) not found" in message
    assert str(path) in message
    assert "available columns: ['user_id', 'item_id']" in message


def test_missing_column_lists_available_columns(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "orders.csv", ["customer_id,sku,qty", "c1,s1,1"])
    with pytest.raises(DataError) as caught:
        read_interactions(path, user="customer", item="sku", extra=["store", "qty", "channel"])
    message = str(caught.value)
    assert "'customer' (given as user=)" in message
    assert "'store' (given as extra=), 'channel' (given as extra=) not found" in message
    assert f"not found in {path}" in message
    assert "available columns: ['customer_id', 'sku', 'qty']" in message


def test_an_unparsable_value_is_kept_as_read_and_the_training_guard_names_its_line(tmp_path: Path) -> None:
    rows = [(f"u{i}", f"i{i}", "abc" if i == 17 else "4", "100") for i in range(1, 31)]
    path = ratings_file(tmp_path / "ratings.csv", rows=rows)
    frame = read_interactions(path)
    assert len(frame) == 30 and frame["value"].iloc[16] == "abc" and frame["value"].iloc[0] == 4.0
    with pytest.raises(DataError) as caught:
        read_valid(path)
    message = str(caught.value)
    assert f"{path}: 1 row(s) with values that are not finite numbers in column 'value' (line 18 ('abc'))" in message
    assert "tailored check --interactions FILE --output clean.csv" in message


def test_many_bad_values_show_count_and_first_lines(tmp_path: Path) -> None:
    rows = [(f"u{i}", "i", "x" if i % 2 else "1", "100") for i in range(1, 21)]
    path = ratings_file(tmp_path / "ratings.csv", rows=rows)
    with pytest.raises(DataError, match=r"10 row\(s\) with values that are not finite numbers in column 'value' "
                       r"\(lines 2 \('x'\), 4 \('x'\), 6 \('x'\), 8 \('x'\), 10 \('x'\), \.\.\.\)"):
        read_valid(path)


def test_empty_ids_reach_the_quality_check_which_rejects_them_with_their_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.csv", ["customer,item_id,event_type", "a,x,view", ",y,view", "c,,", "d,z,buy"])
    frame = read_interactions(path, user="customer")
    assert frame["user_id"].fillna("<empty>").tolist() == ["a", "<empty>", "c", "d"]
    assert frame["item_id"].fillna("<empty>").tolist() == ["x", "y", "<empty>", "z"]
    report = check_quality(frame, first_line=2)
    assert report.rejected[["line", "reason"]].to_dict("records") == [
        {"line": 3, "reason": "missing_value:user_id"}, {"line": 4, "reason": "missing_value:item_id"}]
    assert report.clean["user_id"].tolist() == ["a", "d"]


def test_bad_dates_are_kept_as_read_for_the_quality_check(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.csv", ["user_id,item_id,ordered_at", "a,x,2024-03-01", "b,y,yesterday", "c,z,"])
    frame = read_interactions(path, time="ordered_at")
    assert frame["timestamp"].tolist()[:2] == [1709251200, "yesterday"] and pd.isna(frame["timestamp"].iloc[2])
    report = check_quality(frame, first_line=2, now=2e9)
    assert report.rejected[["line", "reason"]].to_dict("records") == [
        {"line": 3, "reason": "invalid_timestamp:timestamp"}, {"line": 4, "reason": "missing_value:timestamp"}]
    assert report.rejected["timestamp"].iloc[0] == "yesterday"
    assert report.clean["timestamp"].tolist() == [1709251200]


def test_frame_rows_are_counted_from_zero() -> None:
    source = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"], "value": [1.0, np.nan, 2.0]})
    assert read_interactions(source)["value"].dtype == np.float64
    with pytest.raises(DataError, match=r"the given interactions: 1 row\(s\) with empty cells in column 'value' "
                       r"\(row 1 \('nan'\)\)"):
        read_valid(source)


def test_the_documented_python_snippet_runs_as_written(tmp_path: Path) -> None:
    """The Python section of the documentation's home page, extracted and run in a fresh interpreter, on the data it
    generates."""
    home = (Path(__file__).resolve().parents[2] / "docs" / "index.md").read_text()
    section = home[home.index("## From Python\n"):]
    snippet = section[section.index("```python\n") + len("```python\n"):section.index("\n```\n")]
    result = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TAILORED_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert sum("missing_value:item_id" in line for line in lines) == 2  # the generator's rows without an item id
    assert sum("invalid_value:value" in line for line in lines) == 2  # "two" and "1,5"
    assert any(line.startswith("| ndcg@10 | 0.") for line in lines)
    assert sum(" C00116 " in line for line in lines) == 5 and sum(" C00030 " in line for line in lines) == 5


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"File not found: .*nowhere\.csv"):
        read_table(tmp_path / "nowhere.csv")
    path = tmp_path / "ratings.xlsx"
    path.write_bytes(b"")
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert "unsupported extension '.xlsx'" in str(caught.value)
    assert ".csv, .tsv, .txt, .parquet" in str(caught.value)
    with pytest.raises(DataError, match="Cannot read a list"):
        read_table([1, 2])


def test_extra_column_clashing_with_canonical_one_is_rejected() -> None:
    source = pd.DataFrame({"customer": ["a"], "user_id": ["z"], "item_id": ["x"]})
    with pytest.raises(DataError, match=r"extra columns \['user_id'\] .* clash with canonical columns"):
        read_interactions(source, user="customer", extra=["user_id"])


def test_read_attributes_types_and_rename(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "catalog.csv",
        ["sku;category;price;tags;zip;title", "s1;shoes;12.5;a|b;02139;Run", "s2;hats;;c;10001;Sun"],
    )
    frame = read_attributes(path, id_column="item_id", rename={"sku": "item_id"})
    assert list(frame.columns) == ["item_id", "category", "price", "tags", "zip", "title"]
    assert frame["item_id"].tolist() == ["s1", "s2"]
    assert frame["price"].dtype == np.float64 and frame["price"].iloc[0] == 12.5 and np.isnan(frame["price"].iloc[1])
    assert frame["zip"].tolist() == ["02139", "10001"]  # zero-padded codes stay text
    assert frame["tags"].tolist() == ["a|b", "c"]


def test_read_attributes_errors(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "users.csv", ["customer,age", "a,30"])
    with pytest.raises(DataError) as caught:
        read_attributes(path)
    assert f"Attribute table {path} has no 'user_id' column" in str(caught.value)
    assert "available columns: ['customer', 'age']" in str(caught.value)
    assert "rename={'<your column>': 'user_id'}" in str(caught.value)
    with pytest.raises(DataError, match=r"'cust' \(given as a key of rename\) not found"):
        read_attributes(path, rename={"cust": "user_id"})
    frame = read_attributes(pd.DataFrame({"user_id": [3, 4], "age": ["30", "x"]}))
    assert frame["user_id"].tolist() == ["3", "4"] and frame["age"].tolist() == ["30", "x"]


def test_an_id_on_several_rows_of_an_attribute_table_is_named_with_its_lines(tmp_path: Path, caplog) -> None:
    path = write_lines(tmp_path / "users.csv", ["user_id,segment", "a,x", "b,y", "a,z", "c,x", "c,x"])
    with caplog.at_level("WARNING", logger="tailored.data.io"):
        frame = read_attributes(path)
    assert len(frame) == 5  # nothing dropped here: the last row of an id is the one that counts downstream
    assert caplog.messages == [f"{path}: 2 user_id(s) on several rows, e.g. 'a' (lines 2, 4; the header is line 1): "
                               "the last row of each is used"]
    caplog.clear()
    read_attributes(write_lines(tmp_path / "unique.csv", ["user_id,segment", "a,x", "b,y"]))
    assert caplog.messages == []


@pytest.mark.parametrize("name", ["out.csv", "out.tsv", "out.parquet"])
def test_write_table_round_trip(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame({"user_id": ["007", "b"], "item_id": ["x", "y"], "value": [1.5, 2.0], "timestamp": [1, 2]})
    path = write_table(frame, tmp_path / "a" / "b" / name)
    assert path.is_file()
    back = read_interactions(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert sorted(p.name for p in path.parent.iterdir()) == [name]  # no temporary file left


def test_write_table_is_atomic_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old content\n")

    def broken_to_csv(self: pd.DataFrame, path: str, **_: object) -> None:
        Path(path).write_text("half a ro")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(KeyboardInterrupt):
        write_table(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_write_table_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"unsupported extension '\.json'; use one of \['\.csv', '\.parquet', '\.pq', '\.tsv'\]"
    ):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.json")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.text("0123456789abXY-_.", min_size=1, max_size=8), st.text("0123456789", min_size=1, max_size=6)),
        min_size=1,
        max_size=20,
    )
)
def test_ids_survive_a_csv_round_trip_exactly(pairs: list[tuple[str, str]]) -> None:
    frame = pd.DataFrame({"user_id": [u for u, _ in pairs], "item_id": [i for _, i in pairs], "value": 1.0})
    with tempfile.TemporaryDirectory() as folder:
        back = read_interactions(write_table(frame, Path(folder) / "r.csv"))
    assert back["user_id"].tolist() == frame["user_id"].tolist()
    assert back["item_id"].tolist() == frame["item_id"].tolist()
