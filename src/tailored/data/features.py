"""Item attribute vectors: a fitted encoder from an attribute table to a sparse feature matrix.

Each usable column becomes one block, L2-normalised per row: one-hot categories, multi-hot ``|`` lists (genres,
tags), TF-IDF text (titles, descriptions), quantile bins of numbers (price) and dense vectors (a Parquet column of
arrays: text or image embeddings, see `tailored.data.embeddings`). Columns whose every value is unique (ids, file
paths) are left out: they cannot generalise from one item to another. The encoder is fitted once on the training
catalogue and stored as named arrays, so items added later (``--items`` at recommend time) are encoded the same way:
unseen categories, tokens and missing values give an all-zero block (the "unknown" bucket), never an error.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID, USER_ID
from tailored.errors import DataError

TEXT_COLUMNS = frozenset({"title", "tags", "text", "description"})
NUMERIC_BINS = 5
MIN_SHARED_ITEMS = 2
"""In a category of more than ``max_categories`` values (brands, authors), the items a value needs to be kept."""


def is_measurement(column: pd.Series, max_categories: int) -> bool:
    """A numeric column to cut into quantile bins rather than one-hot: more than ``max_categories`` distinct values, or
    more than ``NUMERIC_BINS`` and most rows with a value of their own (prices, incomes: a measurement, not a code)."""
    if column.dtype.kind not in "fiu":
        return False
    distinct = column.nunique()
    return distinct > max_categories or distinct > max(NUMERIC_BINS, column.count() / 2)


def common_values(values: pd.Series, min_rows: int) -> np.ndarray | None:
    """The values (sorted) that at least ``min_rows`` rows hold, when there are two or more and they cover at least
    half the rows: the categories of a column of many values (brands, cities); None for values mostly held alone (ids,
    zip codes)."""
    counts = values.value_counts()
    common = counts[counts >= min_rows]
    return np.sort(common.index.to_numpy(dtype=str)) if len(common) > 1 and common.sum() >= counts.sum() / 2 else None


def is_vector_column(column: pd.Series) -> bool:
    """True when the column's values are arrays or lists of numbers (an embedding column)."""
    values = column.dropna()
    return len(values) > 0 and isinstance(values.iloc[0], (np.ndarray, list, tuple))


@dataclass
class ItemEncoder:
    """Fitted on an item attribute table; ``transform`` encodes any table with (some of) the same columns."""

    text_columns: frozenset[str] = TEXT_COLUMNS
    max_categories: int = 1000
    max_text_features: int = 2000
    blocks: dict[str, tuple[str, np.ndarray, np.ndarray]] = field(default_factory=dict)
    """column -> (kind, vocabulary or bin edges, idf weights or an empty array)."""

    def fit(self, table: pd.DataFrame) -> Self:
        self.blocks = {}
        for name in table.columns:
            column = table[name]
            if column.isna().all():
                continue
            if is_vector_column(column):
                self.blocks[name] = ("vector", np.asarray([len(column.dropna().iloc[0])]), np.empty(0))
            elif name in self.text_columns:
                text = column.fillna("").astype(str)
                if text.str.contains(r"\w\w", regex=True).any():
                    vectorizer = _tfidf(max_features=self.max_text_features).fit(text)
                    self.blocks[name] = ("text", vectorizer.get_feature_names_out().astype(str), vectorizer.idf_)
            elif is_measurement(column, self.max_categories):
                quantiles = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
                edges = np.unique(np.nanquantile(column.to_numpy(np.float64), quantiles))
                self.blocks[name] = ("numeric", edges, np.empty(0))
            else:
                multi = column.astype("string").str.contains("|", regex=False).any()
                tokens = _tokens(column, multi)
                vocabulary = np.unique(tokens.to_numpy(dtype=str))
                shared = len(vocabulary) < len(tokens)  # a value held by one item only (ids, paths) cannot generalise
                if shared and (multi or len(vocabulary) <= self.max_categories):
                    self.blocks[name] = ("multi" if multi else "category", vocabulary, np.empty(0))
                elif (common := common_values(tokens, MIN_SHARED_ITEMS)) is not None:
                    self.blocks[name] = ("category", common, np.empty(0))  # the others: unknown
        if not self.blocks:
            raise DataError(
                f"No usable item attribute among {list(table.columns)}: item features need categorical, '|'-separated, "
                f"numeric, embedding or text columns ({', '.join(sorted(self.text_columns))})."
            )
        return self

    def problems(self, table: pd.DataFrame) -> list[str]:
        """What the encoder cannot use in ``table`` (new items; the id column is ignored): `column_problems`, and the
        items that no value of a trained column describes (missing, unseen tokens), which all score alike."""
        problems = column_problems(list(self.blocks), [str(name) for name in table.columns if name != ITEM_ID])
        blank = np.flatnonzero(self.transform(table).getnnz(axis=1) == 0)
        if len(blank):
            examples = ", ".join(repr(str(item)) for item in table[ITEM_ID].iloc[blank[:3]]) if ITEM_ID in table else ""
            problems.append(f"{len(blank):,} item(s) without any value known from training"
                            + (f", e.g. {examples}" if examples else "") + ": scored alike, as unknown items")
        return problems

    @property
    def n_features(self) -> int:
        return sum(_width(kind, vocabulary) for kind, vocabulary, _ in self.blocks.values())

    def transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        """Rows x features, each block and then each row L2-normalised; missing columns give zero blocks."""
        encoded = []
        for name, (kind, vocabulary, weights) in self.blocks.items():
            column = table[name] if name in table.columns else pd.Series([None] * len(table), index=table.index)
            if kind == "vector":
                _check_vector_lengths(table, name, int(vocabulary[0]))
            encoded.append(normalize_rows(_encode(kind, vocabulary, weights, column)))
        return normalize_rows(sp.hstack(encoded).tocsr()).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (what a model directory stores)."""
        arrays: dict[str, np.ndarray] = {"columns": np.asarray(list(self.blocks), dtype=str),
                                         "kinds": np.asarray([b[0] for b in self.blocks.values()], dtype=str)}
        for position, (_, vocabulary, weights) in enumerate(self.blocks.values()):
            arrays[f"vocabulary_{position}"] = vocabulary
            arrays[f"weights_{position}"] = weights
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ItemEncoder:
        blocks = {str(name): (str(kind), arrays[f"vocabulary_{i}"], arrays[f"weights_{i}"])
                  for i, (name, kind) in enumerate(zip(arrays["columns"], arrays["kinds"]))}
        return cls(blocks=blocks)


def column_problems(trained: list[str], given: list[str]) -> list[str]:
    """Sentences about a table of new users or items whose columns differ from training's: the training columns it
    lacks (scored as unknown) and its columns that training did not use (ignored)."""
    problems = []
    lacking = [name for name in trained if name not in given]
    if lacking:
        problems.append(f"no column(s) {_quoted(lacking)} (trained on {_quoted(trained)}): scored as unknown")
    unused = [name for name in given if name not in trained]
    if unused:
        problems.append(f"column(s) {_quoted(unused)} not among the training attributes ({_quoted(trained)}): ignored")
    return problems


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def attribute_vectors(attributes: pd.DataFrame, text_columns: Iterable[str] = TEXT_COLUMNS,
                      max_categories: int = 1000) -> sp.csr_matrix:
    """Items x features for one table (fit and transform at once): for diversity metrics and reports."""
    encoder = ItemEncoder(frozenset(text_columns), max_categories).fit(attributes)
    return encoder.transform(attributes)


def normalize_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix)


def _tfidf(**options: object) -> object:
    from sklearn.feature_extraction.text import TfidfVectorizer  # imported here: sklearn is slow to load

    return TfidfVectorizer(sublinear_tf=True, **options)


def _check_vector_lengths(table: pd.DataFrame, name: str, width: int) -> None:
    """A vector of another length than the fitted column's (another embedding model) is an error naming the items;
    a missing vector is not (a zero block, like any missing attribute)."""
    if name not in table.columns:
        return
    lengths = np.array([len(v) if isinstance(v, (np.ndarray, list, tuple)) else width for v in table[name]], np.int64)
    wrong = lengths != width
    if wrong.any():
        items = table["item_id"].to_numpy()[wrong] if "item_id" in table.columns else np.flatnonzero(wrong)
        raise DataError(f"Item attribute {name!r}: {int(wrong.sum()):,} vector(s) of length "
                        f"{np.unique(lengths[wrong])[:3].tolist()} where the column has {width} dimensions (e.g. items "
                        f"{items[:5].tolist()}): embed every item with the same model.")


def _width(kind: str, vocabulary: np.ndarray) -> int:
    if kind == "vector":
        return int(vocabulary[0])
    return len(vocabulary) + 1 if kind == "numeric" else len(vocabulary)


def _encode(kind: str, vocabulary: np.ndarray, weights: np.ndarray, column: pd.Series) -> sp.csr_matrix:
    rows = len(column)
    if kind == "vector":
        dense = np.zeros((rows, int(vocabulary[0])), np.float64)
        for position, value in enumerate(column.to_numpy()):
            if isinstance(value, (np.ndarray, list, tuple)) and len(value) == dense.shape[1]:
                dense[position] = np.nan_to_num(np.asarray(value, np.float64))
        return sp.csr_matrix(dense)
    if kind == "text":
        vectorizer = _tfidf(vocabulary={term: i for i, term in enumerate(vocabulary)})
        vectorizer.fit([""] if len(vocabulary) else ["x"])
        vectorizer.idf_ = weights
        return vectorizer.transform(column.fillna("").astype(str))
    if kind == "numeric":
        values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
        known = ~np.isnan(values)
        bins = np.searchsorted(vocabulary, values[known], side="right")
        return sp.csr_matrix((np.ones(known.sum()), (np.flatnonzero(known), bins)), shape=(rows, len(vocabulary) + 1))
    tokens = _tokens(column, kind == "multi")
    columns = pd.Index(vocabulary).get_indexer(tokens.to_numpy(dtype=str))
    known = columns >= 0
    matrix = sp.csr_matrix((np.ones(known.sum()), (tokens.index[known], columns[known])), shape=(rows, len(vocabulary)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def value_text(column: pd.Series) -> pd.Series:
    """Values as text, whole floats without ``.0``: a missing cell turns a column of integer codes into floats, which
    must still give the tokens of the integers."""
    if column.dtype.kind != "f":
        return column.astype(str)
    numbers = column.astype(np.float64)
    whole = np.isfinite(numbers) & (numbers % 1 == 0) & (numbers.abs() < 2**53)
    return column.astype(str).where(~whole, numbers.where(whole, 0).astype(np.int64).astype(str))


def _tokens(column: pd.Series, multi: bool) -> pd.Series:
    """Non-missing category values (or ``|``-separated tokens, stripped), indexed by row position."""
    values = value_text(column).where(column.notna()).astype("string").reset_index(drop=True)
    if multi:
        values = values.str.split("|").explode().str.strip()
    return values[values.notna() & (values != "")]


MIN_SHARED_USERS = 5
"""In a column of more than ``max_categories`` values (a city, a country), the users a value needs to be a category."""
def attribute_columns(attributes: pd.DataFrame | None, max_categories: int) -> tuple[list[str], np.ndarray]:
    """The usable attribute columns and their bin edges (one row per column): a numeric column with many values (raw
    ages, incomes, tenure: `is_measurement`) is cut at the users' quantiles into ``NUMERIC_BINS`` bins; another with 2
    to ``max_categories`` distinct values is categorical (a row of NaN), and so is one with more whose values are
    mostly shared (`common_values`: countries, cities; its rare values count as unknown). Others (ids, zip codes,
    free text, vectors) are left out."""
    columns: list[str] = []
    edges: list[np.ndarray] = []
    quantiles = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
    for name in [] if attributes is None else attributes.columns:
        column = attributes[name]  # type: ignore[index]
        if is_vector_column(column):
            continue
        distinct = column.nunique()
        if is_measurement(column, max_categories):
            columns.append(name)
            edges.append(np.nanquantile(column.to_numpy(np.float64), quantiles))
        elif 1 < distinct <= max_categories or (
                distinct > max_categories and common_values(value_text(column.dropna()), MIN_SHARED_USERS) is not None):
            columns.append(name)
            edges.append(np.full(NUMERIC_BINS - 1, np.nan))
    return columns, np.asarray(edges, np.float64).reshape(len(columns), NUMERIC_BINS - 1)


def token_vocabulary(tokens: pd.DataFrame, columns: Sequence[str], max_categories: int) -> np.ndarray:
    """The sorted tokens users are encoded by: all of ``tokens`` (`attribute_tokens`), except in a column of
    ``columns`` with more than ``max_categories`` values, where only those ``MIN_SHARED_USERS`` users share are kept
    (the rarer ones are left to the "unknown" bucket)."""
    kept = []
    for name in tokens.columns:
        present = tokens[name][tokens[name] != ""]
        large = name in columns and present.nunique() > max_categories
        common = common_values(present, MIN_SHARED_USERS) if large else None
        kept.append(np.asarray(present.unique(), dtype=str) if common is None else common)
    return np.unique(np.concatenate(kept)).astype(str) if kept else np.empty(0, str)


def usable_columns(attributes: pd.DataFrame | None, max_categories: int) -> list[str]:
    """The columns of `attribute_columns`."""
    return attribute_columns(attributes, max_categories)[0]


def numeric_bins(columns: Sequence[str], edges: np.ndarray | None) -> dict[str, np.ndarray]:
    """Column -> bin edges of the binned columns among ``columns`` (``edges`` rows aligned with them; None, as in
    models saved before numeric attributes were binned: none)."""
    if edges is None:
        return {}
    return {str(name): row for name, row in zip(columns, edges) if not np.isnan(row).all()}


def attribute_tokens(attributes: pd.DataFrame, columns: list[str], crosses: bool,
                     bins: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One ``column=value`` token per row and column (``column=[lo,hi)`` for a column of ``bins``; and one per pair
    of columns when ``crosses``); '' when missing."""
    single = {}
    for name in columns:
        text, known = _value_text(attributes[name], (bins or {}).get(name))
        single[name] = (name + "=" + text).where(known, "")
    tokens = pd.DataFrame(single, index=attributes.index)
    if crosses:
        for first, second in itertools.combinations(columns, 2):
            both = (tokens[first] != "") & (tokens[second] != "")
            tokens[f"{first}&{second}"] = (tokens[first] + "&" + tokens[second]).where(both, "")
    return tokens


def _value_text(column: pd.Series, edges: np.ndarray | None) -> tuple[pd.Series, pd.Series]:
    """Each value's token text and whether it is known; with ``edges``, the bin ``[lo,hi)`` of a number (text that is
    not a number is unknown)."""
    if edges is None:
        return value_text(column), column.notna()
    numbers = pd.to_numeric(column, errors="coerce")
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    labels = np.array([f"[{low:g},{high:g})" for low, high in zip(bounds[:-1], bounds[1:])])
    bins = np.searchsorted(edges, np.nan_to_num(numbers.to_numpy(np.float64)), side="right")
    return pd.Series(labels[bins], index=column.index), numbers.notna()


def attribute_vocabulary(attributes: pd.DataFrame | None, max_categories: int) -> dict[str, np.ndarray]:
    """The usable attribute ``columns``, their bin ``edges`` (`attribute_columns`) and the tokens seen in them
    (``vocabulary``): what users who arrive later are encoded with. Empty arrays when no column is usable. Also the
    table's other columns (``left_out``), which a later table may hold without being warned about."""
    columns, edges = attribute_columns(attributes, max_categories)
    left_out = np.asarray([str(name) for name in ([] if attributes is None else attributes.columns)
                           if name not in columns], str)
    if not columns:
        return {"columns": np.empty(0, str), "vocabulary": np.empty(0, str), "edges": edges, "left_out": left_out}
    tokens = attribute_tokens(attributes, columns, False, numeric_bins(columns, edges))  # type: ignore[arg-type]
    return {"columns": np.asarray(columns, str), "vocabulary": token_vocabulary(tokens, columns, max_categories),
            "edges": edges, "left_out": left_out}


def attribute_problems(vocabulary: dict[str, np.ndarray], attributes: pd.DataFrame) -> list[str]:
    """What an attribute-based scorer cannot use in ``attributes`` (rows of new users; an id column is ignored):
    training columns the table lacks, its columns that are not training attributes, and missing or unseen values.
    Each of these scores as "unknown" (the scorer's own way: `demographic` takes the training users' average, the
    neural models an "unknown" bucket); one sentence per problem, empty when there is none."""
    columns = [str(name) for name in vocabulary["columns"]]
    given = [str(name) for name in attributes.columns if name != USER_ID]
    if not columns:
        return ["the model was trained without usable user attributes, so new users get the same lists whatever "
                "their attributes: retrain with a users table (--users FILE)"] if given else []
    left_out = {str(name) for name in vocabulary.get("left_out", [])}  # columns training saw and did not use
    problems = column_problems(columns, [name for name in given if name not in left_out])
    present = [name for name in columns if name in given]
    bins = numeric_bins(columns, vocabulary.get("edges"))
    tokens = attribute_tokens(attributes, present, False, bins)
    for name in present:
        missing = tokens[name] == ""
        unseen = value_text(attributes[name])[~missing & ~tokens[name].isin(vocabulary["vocabulary"])].value_counts()
        if missing.any():
            value = "a numeric value" if name in bins else "a value"
            problems.append(f"{name}: {int(missing.sum()):,} row(s) without {value}, scored as unknown")
        if len(unseen):
            examples = ", ".join(f"{value!r} ({count})" for value, count in unseen.head(5).items())
            more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
            problems.append(f"{name}: value(s) not learnt in training (unseen or rare), scored as unknown: "
                            f"{examples}{more}")
    return problems


def readable(token: str) -> str:
    """``gender=F`` as is, a bin ``age=[23,29)`` as ``age 23-29`` (``age under 23``, ``age 46 or more`` at the ends),
    a cross ``a=x&b=y`` as ``a=x and b=y``."""
    crossed = token.split("&")
    parts = []
    for part in crossed if all("=" in part for part in crossed) else [token]:
        name, _, value = part.partition("=")
        low, comma, high = value.strip("[)").partition(",")
        if not (value.startswith("[") and value.endswith(")") and comma):
            parts.append(part)
        elif low == "-inf":
            parts.append(f"{name} under {high}")
        else:
            parts.append(f"{name} {low} or more" if high == "inf" else f"{name} {low}-{high}")
    return " and ".join(parts)


def encode(tokens: pd.DataFrame, vocabulary: np.ndarray) -> sp.csr_matrix:
    """Rows x vocabulary indicator matrix; tokens outside the vocabulary are dropped."""
    flat = tokens.to_numpy(dtype=str).ravel()
    columns = pd.Index(vocabulary).get_indexer(flat)
    rows = np.repeat(np.arange(len(tokens)), tokens.shape[1])
    known = columns >= 0
    return sp.csr_matrix((np.ones(known.sum()), (rows[known], columns[known])), shape=(len(tokens), len(vocabulary)))
