"""Cells as read from a file, to canonical columns: ids as text, values as float64, timestamps as unix seconds. A
column whose cells do not all parse keeps the raw ones where they failed, so that `check_quality` names the row."""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPOCH = pd.Timestamp(0, tz="UTC")


def id_texts(raw: pd.Series) -> pd.Series:
    """Ids as strings (pandas' string dtype), empty cells left missing; integral floats (a Parquet/pandas artefact
    of missing values) lose their ``.0``."""
    present = raw.notna()
    if pd.api.types.is_float_dtype(raw) and bool((raw[present] % 1 == 0).all()):
        raw = raw.astype("Int64")
    return raw.astype(str).where(present)


def numbers(raw: pd.Series) -> pd.Series:
    """Values as float64; a column with an empty cell or text that is not a number keeps those cells as read."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(np.float64)
    return _parsed_or_raw(pd.to_numeric(raw, errors="coerce").astype(np.float64), raw, np.float64)


def timestamps(raw: pd.Series) -> pd.Series:
    """Unix seconds (int64) from integers, floats (floored), datetimes or ISO-8601 strings (naive = UTC); a column
    with an empty cell or a cell that is neither keeps those cells as read."""
    if pd.api.types.is_integer_dtype(raw):
        return raw.astype(np.int64)
    if pd.api.types.is_datetime64_any_dtype(raw):
        seconds = _seconds(raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")).astype(np.float64)
    elif pd.api.types.is_numeric_dtype(raw):
        seconds = np.floor(raw.astype(np.float64))
    else:
        numbers = pd.to_numeric(raw, errors="coerce")
        dates = pd.to_datetime(raw.where(numbers.isna()), errors="coerce", utc=True, format="ISO8601")
        seconds = np.floor(numbers.astype(np.float64)).fillna(_seconds(dates).astype(np.float64))
    return _parsed_or_raw(seconds, raw, np.int64)


def _parsed_or_raw(parsed: pd.Series, raw: pd.Series, dtype: type) -> pd.Series:
    """``parsed`` (NaN where a cell did not parse) as ``dtype`` when every cell parsed; otherwise an object column
    holding the raw cell where parsing failed, so that `check_quality` names the row and shows what it held."""
    failed = parsed.isna()
    if not failed.any():
        return parsed.astype(dtype)
    return parsed.astype(dtype if dtype is np.float64 else "Int64").astype(object).where(~failed, raw)


def _seconds(moments: pd.Series) -> pd.Series:
    return (moments - _EPOCH) // pd.Timedelta(seconds=1)


def maybe_numbers(column: pd.Series) -> pd.Series:
    """Numbers when every non-empty cell is one and none is a zero-padded code; the column unchanged otherwise."""
    if not pd.api.types.is_string_dtype(column) or column.isna().all():
        return column
    numbers = pd.to_numeric(column, errors="coerce")
    if (numbers.isna() & column.notna()).any() or column.str.match(r"\s*[+-]?0\d").any():
        return column
    return numbers
