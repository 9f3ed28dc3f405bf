"""Interactions on Spark: CSV or Parquet files and folders of parts read into the canonical columns; frames written
atomically (a temporary sibling renamed into place, so nothing half-written is ever found at the output path).

Local folders: every part file inside (recursively, Hive-style ``key=value`` partitions included) except hidden ones
(``.``/``_`` prefixes, so a Delta table's ``_delta_log`` and Spark's ``_SUCCESS`` are skipped). A Delta table is read
as the Parquet parts present in its folder: vacuum it first if it holds files of older versions. Remote paths
(``hdfs://``, ``s3a://``...) are read by Spark alone: pass ``fmt`` unless the name ends in .csv or .parquet, and the
parts' schemas are not compared there (Spark then fails on conflicting types and fills absent fields with nulls).
"""

from __future__ import annotations

import csv
import logging
import posixpath
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.io import CSV_SUFFIXES, DELIMITERS, PARQUET_SUFFIXES
from tailored.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")


def read_interactions(spark: SparkSession, path: str | Path, *, fmt: str | None = None, user_col: str = USER_ID,
                      item_col: str = ITEM_ID, value_col: str | None = None, time_col: str | None = None,
                      parse: bool = True) -> DataFrame:
    """The interactions at ``path`` (a CSV/Parquet file or a folder of parts) with ``user_col``/``item_col`` renamed to
    ``user_id``/``item_id`` (strings), ``value_col`` to ``value`` (double) and ``time_col`` to ``timestamp`` (long unix
    seconds, from numbers floored, Spark timestamps or ISO-8601 text read as UTC); other columns are kept as read.

    ``fmt`` (csv|parquet) defaults to what the file name or the folder's parts say. Cells that do not parse become
    null; with ``parse=False`` value and time stay as read (text from CSV), so that `quality.check_quality` tells an
    unparsable cell (``invalid_value``) from an empty one (``missing_value``) as the local check does.
    """
    from pyspark.sql import functions as F

    text = str(path)
    remote = "://" in text and not text.startswith("file://")
    located = Path(text.removeprefix("file://"))
    parts = [located] if remote else _parts(located)
    fmt = fmt or _format(located, parts)
    if fmt not in FORMATS:
        raise DataError(f"Cannot read {text} as {fmt!r}: use one of {', '.join(FORMATS)}.")
    if fmt == "parquet":
        if not remote:
            _same_parquet_schemas(parts)
        frame = spark.read.parquet(text if remote else str(located))
    else:
        delimiter = "," if remote else _delimiter(parts[0])
        if not remote:
            _same_headers(parts, delimiter)
        frame = spark.read.csv(text if remote else str(located), header=True, inferSchema=False, enforceSchema=False,
                               sep=delimiter)
    wanted = {user_col: USER_ID, item_col: ITEM_ID} | ({value_col: VALUE} if value_col else {}) | (
        {time_col: TIMESTAMP} if time_col else {})
    for given, canonical in wanted.items():
        if given not in frame.columns:
            shown = parts[0] if len(parts) == 1 else f"{located} (e.g. its part {parts[0].name})"
            role = "" if given == canonical else f" (given as the {canonical} column)"
            raise DataError(f"Column '{given}'{role} not found in {shown}; its columns are {frame.columns}. Pass the "
                            "names your file uses (--user-col, --item-col, --value-col, --time-col).")
    clashes = sorted(canonical for given, canonical in wanted.items() if canonical in frame.columns and
                     canonical != given and canonical not in wanted)
    if clashes:
        raise DataError(f"{located} already has columns {clashes} besides the ones mapped to them; rename them first.")
    columns = [F.col(f"`{name}`").alias(wanted.get(name, name)) for name in frame.columns]
    frame = frame.select(*columns).withColumn(USER_ID, F.col(USER_ID).cast("string")).withColumn(
        ITEM_ID, F.col(ITEM_ID).cast("string"))
    if parse and value_col:
        frame = frame.withColumn(VALUE, number(F.col(VALUE), frame.schema[VALUE].dataType))
    if parse and time_col:
        frame = frame.withColumn(TIMESTAMP, unix_seconds(F.col(TIMESTAMP), frame.schema[TIMESTAMP].dataType))
    logger.info("read interactions path=%s format=%s parts=%d", located, fmt, len(parts))
    return frame


def number(column: Column, data_type: object) -> Column:
    """A column as double: numbers cast, text parsed (null where it is not a number)."""
    from pyspark.sql.types import StringType

    return column.try_cast("double") if isinstance(data_type, StringType) else column.cast("double")


def unix_seconds(column: Column, data_type: object) -> Column:
    """A column as long unix seconds: numbers floored, timestamps and dates converted, text read as a number or else
    an ISO-8601 date (UTC unless it says otherwise); null where none of these parses."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, NumericType, StringType, TimestampNTZType, TimestampType

    if isinstance(data_type, NumericType):
        return F.floor(column.cast("double")).cast("long")
    if isinstance(data_type, (TimestampType, TimestampNTZType, DateType)):
        return F.floor(column.cast("timestamp").cast("double")).cast("long")
    if not isinstance(data_type, StringType):
        return F.lit(None).cast("long")
    text = F.trim(column)
    return F.floor(F.coalesce(text.try_cast("double"), text.try_cast("timestamp").cast("double"))).cast("long")


def write_frame(df: DataFrame, path: str | Path, fmt: str = "parquet") -> Path:
    """Write ``df`` as a folder of CSV (with a header) or Parquet parts at ``path``: to a hidden sibling first, renamed
    into place once every part is written; an existing ``path`` is replaced only then (and kept when the write
    fails). Any Hadoop file system works (local, HDFS, S3A...): the renames go through its API."""
    if fmt not in FORMATS:
        raise DataError(f"Cannot write {path} as {fmt!r}: use one of {', '.join(FORMATS)}.")
    target = str(path).rstrip("/")
    folder, name = posixpath.split(target)
    staging = posixpath.join(folder, f".{name}.partial-{uuid.uuid4().hex[:12]}")
    retired = posixpath.join(folder, f".{name}.retired-{uuid.uuid4().hex[:12]}")
    filesystem, hadoop_path = _filesystem(df.sparkSession, target)
    writer = df.write.mode("error").format(fmt)
    if fmt == "csv":
        writer = writer.option("header", True)
    try:
        writer.save(staging)
        replacing = filesystem.exists(hadoop_path(target))
        if replacing and not filesystem.rename(hadoop_path(target), hadoop_path(retired)):
            raise DataError(f"Cannot move the old {target} aside to replace it; check its permissions.")
        if not filesystem.rename(hadoop_path(staging), hadoop_path(target)):
            if replacing:
                filesystem.rename(hadoop_path(retired), hadoop_path(target))
            raise DataError(f"Cannot rename the finished {staging} to {target}; check the folder's permissions.")
        if replacing:
            filesystem.delete(hadoop_path(retired), True)
    except BaseException:
        filesystem.delete(hadoop_path(staging), True)
        raise
    logger.info("wrote frame path=%s format=%s", target, fmt)
    return Path(target.removeprefix("file://"))


# -- helpers ---------------------------------------------------------------------------------------------------
def _parts(path: Path) -> list[Path]:
    """The data files of a file or a folder (recursively; hidden files, ``_``-prefixed ones and folders skipped)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"Interactions not found: {path} is neither a file nor a folder; check the path.")
    parts = sorted(file for file in path.rglob("*") if file.is_file() and not any(
        piece.startswith((".", "_")) for piece in file.relative_to(path).parts))
    if not parts:
        raise DataError(f"The folder {path} holds no data files (hidden and _-prefixed files are skipped).")
    return parts


def _format(path: Path, parts: list[Path]) -> str:
    """csv or parquet, from the file's suffix or the suffixes of a folder's parts (Spark writes Parquet parts as
    ``*.snappy.parquet`` and CSV parts as ``*.csv``)."""
    suffixes = {part.suffix.lower() for part in parts}
    if suffixes <= set(PARQUET_SUFFIXES):
        return "parquet"
    if suffixes <= set(CSV_SUFFIXES):
        return "csv"
    what = f"extension '{path.suffix}'" if path.is_file() else f"parts with extensions {sorted(suffixes)}"
    raise DataError(f"Cannot tell the format of {path} ({what}); pass fmt='csv' or fmt='parquet'.")


def _delimiter(path: Path) -> str:
    """The delimiter of a CSV part from its first lines (comma, or tab for .tsv, if unsure), as the local reader."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        sample = "".join(handle.readline() for _ in range(50))
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return "\t" if path.suffix.lower() == ".tsv" else ","


def _same_headers(parts: list[Path], delimiter: str) -> None:
    """A DataError naming two CSV parts and the first column where their headers differ (Spark would read every part
    by the first one's header)."""
    def header(part: Path) -> list[str]:
        with part.open(newline="", encoding="utf-8", errors="replace") as handle:
            return next(csv.reader(handle, delimiter=delimiter), [])

    first = header(parts[0])
    for part in parts[1:]:
        other = header(part)
        if other != first:
            at = next((i for i, (a, b) in enumerate(zip(first, other, strict=False)) if a != b), min(len(first),
                                                                                                    len(other)))
            here, there = (names[at] if at < len(names) else "nothing" for names in (first, other))
            raise DataError(f"The CSV parts disagree on column {at + 1}: '{here}' in {parts[0]}, '{there}' in {part}; "
                            "write every part with the same header.")


def _same_parquet_schemas(parts: list[Path]) -> None:
    """A DataError naming two parts and the field where their schemas differ (read from the footers only)."""
    import pyarrow.parquet as pq

    try:
        first = pq.read_schema(parts[0])
    except Exception as error:
        raise DataError(f"{parts[0]} could not be read as Parquet: {error}") from error
    fields = {field.name: _spark_type(field.type) for field in first}
    for part in parts[1:]:
        try:
            schema = pq.read_schema(part)
        except Exception as error:
            raise DataError(f"{part} could not be read as Parquet: {error}") from error
        other = {field.name: _spark_type(field.type) for field in schema}
        for name in sorted(set(fields) | set(other)):
            if fields.get(name) != other.get(name):
                here, there = (found or "absent" for found in (fields.get(name), other.get(name)))
                raise DataError(f"The Parquet parts disagree on field '{name}': {here} in {parts[0]}, {there} in "
                                f"{part}; rewrite the parts with one schema.")


def _spark_type(arrow_type: object) -> str:
    """An Arrow type as Spark reads it: ``large_string`` (pandas 3's strings) is a ``string`` like any other."""
    return str(arrow_type).replace("large_", "")


def _filesystem(spark: SparkSession, path: str) -> tuple[Any, Callable[[str], Any]]:
    """The Hadoop FileSystem that holds ``path`` (by its scheme) and a constructor of Hadoop paths."""
    jvm = spark.sparkContext._jvm

    def hadoop_path(text: str) -> Any:
        return jvm.org.apache.hadoop.fs.Path(text)

    return hadoop_path(path).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path
