"""Reading CSV/Parquet files and folders into canonical columns, clear errors, and atomic writes."""

from __future__ import annotations

import pandas as pd
import pytest
from pyspark.sql import functions as F

from tailored.errors import DataError
from tailored.spark.io import read_interactions, write_frame


@pytest.fixture
def orders(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer;sku;qty;ordered_at;store\n007;A1;2;2024-01-01T00:00:00Z;north\n"
                    "8;B2;1.5;1704067201.9;south\n9;A1;x;2024-01-01 00:00:05;\n")
    return path


def test_a_csv_file_is_read_into_canonical_columns_with_its_names_mapped(spark, orders):
    frame = read_interactions(spark, orders, user_col="customer", item_col="sku", value_col="qty",
                              time_col="ordered_at")
    assert dict(frame.dtypes) == {"user_id": "string", "item_id": "string", "value": "double", "timestamp": "bigint",
                                  "store": "string"}
    rows = frame.orderBy("timestamp").toPandas()
    assert rows["user_id"].tolist() == ["007", "8", "9"]  # ids keep their zeros
    assert rows["timestamp"].tolist() == [1704067200, 1704067201, 1704067205]  # ISO dates (UTC) and floored seconds
    assert rows["value"].tolist()[:2] == [2.0, 1.5] and rows["value"].isna().tolist() == [False, False, True]
    raw = read_interactions(spark, orders, user_col="customer", item_col="sku", value_col="qty",
                            time_col="ordered_at", parse=False)
    assert sorted(raw.toPandas()["value"]) == ["1.5", "2", "x"]  # as read, for check_quality to name the bad cell


def test_a_missing_column_names_the_file_and_the_column(spark, orders):
    with pytest.raises(DataError, match=r"Column 'product' \(given as the item_id column\) not found in .*orders.csv"):
        read_interactions(spark, orders, user_col="customer", item_col="product")


def test_folders_of_parts_and_a_delta_style_folder_are_read_whole(spark, tmp_path):
    frame = pd.DataFrame({"user_id": ["1", "2", "3", "4"], "item_id": ["a", "b", "c", "d"], "value": [1.0, 2, 3, 4],
                          "timestamp": [10, 20, 30, 40]})
    table = tmp_path / "table"
    (table / "_delta_log").mkdir(parents=True)
    (table / "_delta_log" / "00000000000000000000.json").write_text('{"commitInfo": {}}\n')
    frame[:2].to_parquet(table / "part-0.parquet")
    frame[2:].to_parquet(table / "part-1.parquet")
    read = read_interactions(spark, table, value_col="value", time_col="timestamp")
    assert sorted(read.toPandas()["timestamp"]) == [10, 20, 30, 40]
    csvs = tmp_path / "csvs"
    csvs.mkdir()
    frame[:3].to_csv(csvs / "part-0.csv", index=False)
    frame[3:].to_csv(csvs / "part-1.csv", index=False)
    assert read_interactions(spark, csvs, value_col="value").agg(F.sum("value")).first()[0] == 10.0


def test_parquet_parts_with_mixed_schemas_name_two_parts_and_the_field(spark, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    pd.DataFrame({"user_id": ["1"], "item_id": ["a"], "value": [1.0]}).to_parquet(folder / "part-0.parquet")
    pd.DataFrame({"user_id": ["2"], "item_id": ["b"], "value": ["1"]}).to_parquet(folder / "part-1.parquet")
    with pytest.raises(DataError, match=r"disagree on field 'value': double in .*part-0.parquet, string in "
                                        r".*part-1.parquet"):
        read_interactions(spark, folder)


def test_csv_parts_with_different_headers_name_two_parts_and_the_column(spark, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "part-0.csv").write_text("user_id,item_id,value\n1,a,1\n")
    (folder / "part-1.csv").write_text("user_id,sku,value\n2,b,1\n")
    with pytest.raises(DataError, match=r"disagree on column 2: 'item_id' in .*part-0.csv, 'sku' in .*part-1.csv"):
        read_interactions(spark, folder)


def test_write_frame_round_trips_and_replaces_only_after_a_successful_write(spark, tmp_path):
    frame = spark.createDataFrame(pd.DataFrame({"user_id": ["1", "2"], "item_id": ["a", "b"], "value": [1.0, 2.0]}))
    target = tmp_path / "out.parquet"
    assert write_frame(frame, target) == target
    assert sorted(spark.read.parquet(str(target)).toPandas()["value"]) == [1.0, 2.0]
    failing = frame.withColumn("value", F.when(F.col("user_id") == "2", F.raise_error("boom")).otherwise(9.0))
    with pytest.raises(Exception, match="boom"):
        write_frame(failing, target)
    assert sorted(spark.read.parquet(str(target)).toPandas()["value"]) == [1.0, 2.0]  # the old output, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]  # no staging folder left behind
    write_frame(frame.withColumn("value", F.lit(5.0)), target)
    assert spark.read.parquet(str(target)).toPandas()["value"].tolist() == [5.0, 5.0]
    csv_path = write_frame(frame, tmp_path / "out.csv", fmt="csv")
    assert read_interactions(spark, csv_path, value_col="value").count() == 2
