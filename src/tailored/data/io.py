"""Reading interactions and attribute tables from files or frames into canonical columns; atomic writes.

Row numbers in error messages: for CSV files they are **line numbers as seen in the file, the header being line 1**
(so the first data row is line 2); for Parquet files and in-memory frames they are 0-based positions (``frame.iloc``).
"""

from __future__ import annotations

import csv
import itertools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import BASKET_ID, EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.cells import id_texts, maybe_numbers, numbers, timestamps
from tailored.errors import DataError

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES
DELIMITERS = ",;\t|"
Source = str | os.PathLike[str] | pd.DataFrame | Any  # Any: a polars DataFrame (polars is optional)

_SNIFF_LINES = 50
_SHOWN = 5
_CLEAN_HINT = "fix or remove those rows (`tailored check` reports invalid rows and can drop them)"


def rows_named(mask: np.ndarray, from_text: bool) -> str:
    """How an error names the rows of ``mask`` (the first few): lines of a text file, whose header is line 1, or rows
    of a frame counted from 0."""
    positions = np.flatnonzero(mask)
    numbers = positions + 2 if from_text else positions
    shown = ", ".join(str(n) for n in numbers[:_SHOWN]) + (", ..." if len(numbers) > _SHOWN else "")
    noun = ("line" if from_text else "row") + ("s" if len(numbers) > 1 else "")
    return f"{noun} {shown}{'; the header is line 1' if from_text else ', counting from 0'}"


@dataclass(frozen=True)
class _Table:
    """A loaded table and where it came from, to point at rows in error messages."""

    frame: pd.DataFrame
    label: str
    from_text: bool

    def rows(self, mask: pd.Series) -> str:
        return rows_named(mask.to_numpy(dtype=bool), self.from_text)

    def fail(self, column: str, canonical: str, mask: pd.Series, one: str, many: str) -> DataError:
        """A DataError naming the source, column, count (``one``/``many`` problem), rows and samples of ``mask``."""
        count = int(mask.sum())
        problem = f"{count} {one if count == 1 else many}"
        role = f" ({canonical})" if canonical != column else ""
        samples = self.frame.loc[mask.to_numpy(dtype=bool), column].dropna().astype(str).unique()[:3].tolist()
        example = f", e.g. {', '.join(repr(s) for s in samples)}" if samples else ""
        return DataError(
            f"Column '{column}'{role} in {self.label} has {problem}{example} ({self.rows(mask)}); {_CLEAN_HINT}."
        )

    def require(self, columns: list[tuple[str, str]]) -> None:
        """Raise when a column of ``columns`` ((how it was given, name) pairs) is absent, listing the available ones."""
        missing = [(given, column) for given, column in columns if column not in self.frame.columns]
        if missing:
            given = ", ".join(f"'{column}' (given as {how})" for how, column in missing)
            raise DataError(
                f"Column {given} not found in {self.label}; available columns: {list(self.frame.columns)}. "
                "Pass the names your file uses."
            )


# -- tables -------------------------------------------------------------------------------------------------
def read_table(source: Source, delimiter: str | None = None) -> pd.DataFrame:
    """A table from a CSV/TSV/TXT or Parquet path, a pandas DataFrame or a polars DataFrame.

    CSV cells are read as text (ids such as ``007`` keep their zeros; only empty cells are missing) with the
    delimiter detected from the first lines unless given; Parquet files and frames keep their dtypes.
    """
    return _load(source, delimiter).frame


_WRITERS: dict[str, Callable[[pd.DataFrame, str], object]] = {
    ".csv": lambda f, p: f.to_csv(p, index=False),
    ".tsv": lambda f, p: f.to_csv(p, index=False, sep="\t"),
    ".parquet": lambda f, p: f.to_parquet(p, index=False),
    ".pq": lambda f, p: f.to_parquet(p, index=False),
}


def check_table_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if `write_table` can write it (by its extension), so that a command refuses it before any work."""
    path = Path(path)
    if path.suffix.lower() not in _WRITERS:
        raise DataError(f"Cannot write {path}: unsupported extension '{path.suffix}'; use one of {sorted(_WRITERS)}.")
    return path


def read_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a CSV/TSV/TXT or Parquet file, from its header alone (to check names before a long read)."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    delimiter, skip_space = _sniff(path)
    return list(pd.read_csv(path, sep=delimiter, nrows=0, skipinitialspace=skip_space).columns)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV/TSV or Parquet (by extension), atomically: a temporary file renamed into place."""
    path = check_table_path(path)
    _replace_atomically(path, lambda temporary: _WRITERS[path.suffix.lower()](frame, temporary))
    logger.debug("wrote table path=%s rows=%d", path, len(frame))
    return path


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write a text file (JSON, Markdown) atomically, like ``write_table``."""
    path = Path(path)
    _replace_atomically(path, lambda temporary: Path(temporary).write_text(text))
    return path


@contextmanager
def staged_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty sibling folder to fill; it replaces ``target`` only when the block completes, so an error or
    Ctrl-C leaves the previous ``target`` (or nothing) rather than a half-written folder."""
    target = Path(target)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        retired = target.parent / f".{target.name}.retired-{os.getpid()}"
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(target)


def write_chunks(chunks: Iterable[pd.DataFrame], path: str | os.PathLike[str]) -> int:
    """Stream frames with the same columns to one ``.csv`` or ``.parquet`` file, atomically (nothing is left
    behind if interrupted): memory stays bounded by a chunk. Returns the rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*CSV_SUFFIXES, ".parquet"):
        raise DataError(f"Cannot write {path}: use a .csv or .parquet file name.")
    rows = 0

    def write(temporary: str) -> None:
        nonlocal rows
        writer = None
        for index, chunk in enumerate(chunks):
            rows += len(chunk)
            if suffix == ".parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(chunk, preserve_index=False)
                writer = writer or pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table)
            else:
                chunk.to_csv(temporary, mode="w" if index == 0 else "a", header=index == 0, index=False)
        if writer is not None:
            writer.close()

    _replace_atomically(path, write)
    return rows


def _replace_atomically(path: Path, write: Callable[[str], object]) -> None:
    """``write`` a temporary sibling of ``path``, then rename it into place (mode as for a new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- interactions -------------------------------------------------------------------------------------------
def read_interactions(
    source: Source,
    user: str = USER_ID,
    item: str = ITEM_ID,
    value: str | None = VALUE,
    time: str | None = TIMESTAMP,
    event: str | None = EVENT_TYPE,
    delimiter: str | None = None,
    extra: list[str] | None = None,
    basket: str | None = BASKET_ID,
) -> pd.DataFrame:
    """Interactions in canonical columns:
    ``user_id, item_id, value[, timestamp][, event_type][, basket_id][, extra...]``.

    ``user``/``item``/``value``/``time``/``event``/``basket`` name the source's columns. ``value``, ``time``,
    ``event`` and ``basket`` may be absent from the source when left at their default names (or passed as None):
    ``value`` then is 1.0 for every row and the others are omitted; a name passed explicitly must exist. Ids become
    strings, ``value`` float64, ``timestamp`` int64 unix seconds (from integers, floats or ISO-8601 dates, naive
    dates read as UTC); ``extra`` columns are kept as they are. Bad rows are kept for the quality check to report,
    not refused here: an empty cell stays empty, and a column with a value or a timestamp that does not parse keeps
    that cell as read (the column then has object dtype). Pass the frame through `check_quality` (or
    `require_valid`, as every job that trains does) before `Dataset.from_frame`.
    """
    table = _load(source, delimiter)
    defaults = {"value": (value, VALUE), "time": (time, TIMESTAMP), "event": (event, EVENT_TYPE),
                "basket": (basket, BASKET_ID)}
    optional = {
        argument: name
        for argument, (name, default) in defaults.items()
        if name is not None and (name != default or name in table.frame.columns)
    }
    extras = list(extra or [])
    table.require(
        [("user=", user), ("item=", item)]
        + [(f"{argument}=", name) for argument, name in optional.items()]
        + [("extra=", name) for name in extras]
    )
    frame = table.frame
    result = pd.DataFrame(
        {
            USER_ID: id_texts(frame[user]),
            ITEM_ID: id_texts(frame[item]),
            VALUE: numbers(frame[optional["value"]]) if "value" in optional else 1.0,
        },
        index=frame.index,
    )
    if "time" in optional:
        result[TIMESTAMP] = timestamps(frame[optional["time"]])
    if "event" in optional:
        result[EVENT_TYPE] = id_texts(frame[optional["event"]])
    if "basket" in optional:
        result[BASKET_ID] = id_texts(frame[optional["basket"]])
    clashes = sorted(set(extras) & set(result.columns))
    if clashes:
        raise DataError(f"extra columns {clashes} of {table.label} clash with canonical columns; rename them first.")
    for name in extras:
        result[name] = frame[name]
    logger.info("read interactions source=%s rows=%d", table.label, len(result))
    return result.reset_index(drop=True)


# -- attributes ---------------------------------------------------------------------------------------------
def read_attributes(
    source: Source,
    id_column: str = USER_ID,
    rename: dict[str, str] | None = None,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """A user or item attribute table: ``id_column`` first, as strings, every other column kept. An id on several
    rows is logged as a warning (the last row is the one that counts downstream).

    ``rename`` maps the source's column names to ours (e.g. ``{"customer_id": "user_id"}``). Text columns of a CSV
    that hold only numbers become numeric, except codes with leading zeros (zip codes, ``007``).
    """
    table = _load(source, delimiter)
    if rename:
        table.require([("a key of rename", old) for old in rename])
        table = _Table(table.frame.rename(columns=rename), table.label, table.from_text)
    if id_column not in table.frame.columns:
        raise DataError(
            f"Attribute table {table.label} has no '{id_column}' column; available columns: "
            f"{list(table.frame.columns)}. Map yours with rename={{'<your column>': '{id_column}'}}."
        )
    frame = table.frame.copy()
    frame[id_column] = _id_strings(table, id_column, id_column)
    repeated = frame[id_column].duplicated(keep=False)
    if repeated.any():
        ids = frame.loc[repeated, id_column]
        logger.warning("%s: %d %s(s) on several rows, e.g. %r (%s): the last row of each is used", table.label,
                       ids.nunique(), id_column, ids.iloc[0], table.rows(frame[id_column] == ids.iloc[0]))
    if table.from_text:
        for column in frame.columns.drop(id_column):
            frame[column] = maybe_numbers(frame[column])
    return frame[[id_column, *frame.columns.drop(id_column)]].reset_index(drop=True)


# -- loading ------------------------------------------------------------------------------------------------
def _load(source: Source, delimiter: str | None) -> _Table:
    if isinstance(source, pd.DataFrame):
        return _Table(source, "the given pandas DataFrame", from_text=False)
    if type(source).__module__.split(".")[0] == "polars" and hasattr(source, "to_pandas"):
        return _Table(source.to_pandas(), "the given polars DataFrame", from_text=False)
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(
            f"Cannot read a {type(source).__name__}: pass a file path ({', '.join(SUPPORTED_SUFFIXES)}), "
            "a pandas DataFrame or a polars DataFrame."
        )
    path = Path(source)
    if not path.is_file():
        raise DataError(f"File not found: {path} (working directory {Path.cwd()}); check the path.")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            return _Table(pd.read_parquet(path), str(path), from_text=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{path} could not be read as Parquet: {error}") from error
    if suffix in CSV_SUFFIXES:
        return _Table(_read_csv(path, delimiter), str(path), from_text=True)
    raise DataError(
        f"Cannot read {path}: unsupported extension '{path.suffix}'; supported: {', '.join(SUPPORTED_SUFFIXES)}."
    )


def _read_csv(path: Path, delimiter: str | None) -> pd.DataFrame:
    skip_space = False
    if delimiter is None:
        delimiter, skip_space = _sniff(path)
    try:
        return pd.read_csv(
            path, sep=delimiter, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=skip_space
        )
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); re-save it as UTF-8."
        ) from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path} could not be parsed as CSV with delimiter {delimiter!r}: {error}") from error


def _sniff(path: Path) -> tuple[str, bool]:
    """Delimiter and skip-initial-space of a CSV file, from its first lines (comma, or tab for .tsv, if unsure)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        sample = "".join(itertools.islice(handle, _SNIFF_LINES))
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        return ("\t" if path.suffix.lower() == ".tsv" else ","), False
    return dialect.delimiter, bool(dialect.skipinitialspace)


# -- column conversions -------------------------------------------------------------------------------------
def _present(table: _Table, column: str, canonical: str) -> pd.Series:
    """The column, after rejecting empty cells."""
    raw = table.frame[column]
    missing = raw.isna()
    if missing.any():
        raise table.fail(column, canonical, missing, "empty value", "empty values")
    return raw


def _id_strings(table: _Table, column: str, canonical: str) -> pd.Series:
    """Ids of an attribute table as strings, after rejecting empty cells."""
    return id_texts(_present(table, column, canonical))
