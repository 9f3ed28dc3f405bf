"""Business rules: what the shop wants whatever the model thinks, read from a TOML rules file (`load_rules`).

`BusinessRules` is an adjuster; on each block of scores (users x items) it applies, in this order:

1. **repurchase cycles** (``repurchase_days``, category -> days): an item the user already bought, removed by
   seen-item exclusion, comes back with its scorer score (``request.excluded_seen``) once ``cycle`` days have passed
   since the user's last interaction with it (``request.last_seen``): coffee every 30 days. `readmit` names them
   and the Recommender restores them before its first adjuster, whatever the order of the stages. Without
   timestamps nothing comes back;
2. **filters**, which set ``-inf``: ``include_categories`` (only these; an unknown category is out),
   ``exclude_categories``, ``min_price`` / ``max_price`` (an unknown price passes), availability dates (out when the
   request's date lies outside ``[available_from, available_until]``, both inclusive, a missing date is no limit)
   and the stock flag (false, 0, "no" = out; unknown = in stock). Categories match case-insensitively;
3. **promotion** (``promoted``, item id -> factor): each user's finite scores are standardised (softly bounded) and
   ``log(factor)`` added to the promoted items, as the seasonal lift does (`tailored.rank.lift.add_log_lift`);
4. **pinning** (``pinned``, item ids): the pinned items still allowed (not filtered, not already seen) are placed
   above every other item, in the given order, for every user.

A rule reads its column from the catalogue's item attributes; a configured rule whose column is absent is a
`ConfigError`, except the availability and stock columns, which are optional (no column, no limit). A rule set that
filters everything leaves rows of ``-inf``: users get fewer items (empty slots), never an error.

`MaxShare` is a re-ranker: from each user's pool it keeps the best items, greedily, while no value of ``column``
(brand, category...) holds more than ``max(1, floor(max_share * n))`` of the ``n`` slots; unknown values are not
capped.
"""

from __future__ import annotations

import logging
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.rank.base import Request, Reranker, Stage, register_stage
from tailored.data.activity import DAY
from tailored.rank.lift import add_log_lift

logger = logging.getLogger(__name__)
OUT_OF_STOCK = {"false", "0", "0.0", "no", "n", "out"}


@register_stage("rules")
@dataclass(eq=False)
class BusinessRules:
    """Repurchase cycles, filters, promotions and pinned items (see the module docstring), applied in that order."""

    include_categories: list[str] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    category_column: str = "category"
    min_price: float | None = None
    max_price: float | None = None
    price_column: str = "price"
    available_from_column: str = "available_from"
    available_until_column: str = "available_until"
    stock_column: str = "in_stock"
    repurchase_days: dict[str, float] = field(default_factory=dict)
    pinned: list[str] = field(default_factory=list)
    promoted: dict[str, float] = field(default_factory=dict)

    def fit(self, dataset: Dataset) -> Self:
        """Learns nothing; checks the settings."""
        problem = rule_problem(vars(self))
        if problem:
            raise ConfigError(f"Business rule '{problem[0]}': {problem[1]}.")
        return self

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        scores = scores.copy()
        scores[:, ~self._allowed(request, scores.shape[1])] = -np.inf
        if self.promoted:
            scores = add_log_lift(scores, self._factors(request, scores.shape[1]), 1.0)
        pinned = _positions(request, self.pinned, scores.shape[1])
        if len(pinned):
            top = np.maximum(scores.max(axis=1), 0.0)[:, None]  # the best score (-inf when none), at least 0
            rank = np.arange(len(pinned), 0, -1)
            scores[:, pinned] = np.where(np.isfinite(scores[:, pinned]), top + rank * np.maximum(top, 1.0), -np.inf)
        return scores

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        """"pinned", "promoted x<factor>" and "bought again (<category>: every <days> days)" for the items moved."""
        n_items = len(request.catalogue)
        valid = items >= 0
        safe = np.where(valid, items, 0)
        labels = np.full(n_items, "", dtype=object)
        factors = self._factors(request, n_items)
        promoted = np.flatnonzero(factors != 1.0)
        labels[promoted] = [f"promoted x{factor:g}" for factor in factors[promoted]]
        labels[_positions(request, self.pinned, n_items)] = "pinned"
        reasons = np.where(valid, labels[safe], "")
        rows, columns, _ = self.readmit(request)
        if len(rows):
            again = valid & np.isin(np.arange(len(items))[:, None] * n_items + safe, rows * n_items + columns)
            categories = _text(request.catalogue.column(self.category_column), n_items)
            cycles = self._cycles(request, n_items)
            listed = np.unique(safe[again])
            text = np.full(n_items, "", dtype=object)
            text[listed] = [f"bought again ({categories[i]}: every {cycles[i]:g} days)" for i in listed]
            reasons = np.where(again, np.where(reasons == "", text[safe], reasons + "; " + text[safe]), reasons)
        return reasons

    def _allowed(self, request: Request, n_items: int) -> np.ndarray:
        """Items passing every filter, computed once per run (same rules, same request date)."""
        key = f"rules-allowed:{id(self)}"
        if key not in request.tally:
            known = set(np.asarray(request.catalogue.ids).astype(str))
            unknown = [i for i in [*self.pinned, *self.promoted] if i not in known]
            if unknown:
                logger.warning("rules.unknown_items count=%d examples=%s", len(unknown), unknown[:3])
            request.tally[key] = self._filters(request, n_items)
        return request.tally[key]

    def _filters(self, request: Request, n_items: int) -> np.ndarray:
        catalogue = request.catalogue
        allowed = np.ones(n_items, bool)
        if self.include_categories or self.exclude_categories:
            category = _folded(_required(request, self.category_column, "include/exclude_categories"), n_items)
            if self.include_categories:
                allowed &= category.isin([c.casefold() for c in self.include_categories]).to_numpy()
            allowed &= ~category.isin([c.casefold() for c in self.exclude_categories]).to_numpy()
        if self.min_price is not None or self.max_price is not None:
            price = _numbers(_required(request, self.price_column, "min_price/max_price"), n_items)
            allowed &= ~(price < (-np.inf if self.min_price is None else self.min_price))
            allowed &= ~(price > (np.inf if self.max_price is None else self.max_price))
        today = np.datetime64(_utc(request).date(), "D")
        allowed &= ~(_dates(catalogue.column(self.available_from_column), n_items) > today)
        allowed &= ~(_dates(catalogue.column(self.available_until_column), n_items) < today)
        stock = catalogue.column(self.stock_column)
        if stock is not None:
            allowed &= ~_folded(stock, n_items).str.strip().isin(OUT_OF_STOCK).to_numpy()
        return allowed

    def _cycles(self, request: Request, n_items: int) -> np.ndarray:
        """Each item's repurchase cycle in days (NaN: never comes back)."""
        days = {name.casefold(): float(value) for name, value in self.repurchase_days.items()}
        category = _folded(_required(request, self.category_column, "repurchase_days"), n_items)
        return category.map(days).to_numpy(np.float64, na_value=np.nan)

    def readmit(self, request: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and scorer scores of the seen-item exclusions whose repurchase cycle has elapsed: the
        Recommender gives them back before any adjuster runs, so later stages see them on the scorer's scale."""
        n_items = len(request.catalogue)
        excluded, last_seen = request.excluded_seen, request.last_seen
        if not self.repurchase_days or excluded is None or last_seen is None or excluded.nnz == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        rows, columns = excluded.row.astype(np.int64), excluded.col.astype(np.int64)
        within = columns < last_seen.shape[1]
        last = np.full(len(rows), np.nan)
        last[within] = np.asarray(last_seen[rows[within], columns[within]]).ravel()
        elapsed = _utc(request).timestamp() / DAY - last
        due = elapsed >= self._cycles(request, n_items)[columns]  # False for NaN: no cycle or no date
        return rows[due], columns[due], excluded.data[due]

    def _factors(self, request: Request, n_items: int) -> np.ndarray:
        """Each item's promotion factor (1 for none)."""
        found = pd.Index(np.asarray(request.catalogue.ids).astype(str)).get_indexer(list(self.promoted))
        known = (found >= 0) & (found < n_items)
        factors = np.ones(n_items)
        factors[found[known]] = np.array(list(self.promoted.values()), np.float64)[known]
        return factors


@register_stage("max-share")
@dataclass(eq=False)
class MaxShare:
    """Keeps each user's best items while no value of ``column`` exceeds ``max(1, floor(max_share * n))`` slots."""

    pool_factor: int = 5
    column: str = "brand"
    max_share: float = 0.3

    def fit(self, dataset: Dataset) -> Self:
        problem = share_problem(vars(self))
        if problem:
            raise ConfigError(f"Stage max-share '{problem[0]}': {problem[1]}.")
        return self

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request, n: int) -> tuple[np.ndarray, np.ndarray]:
        n_items = len(request.catalogue)
        codes = pd.factorize(_aligned(_required(request, self.column, "max_share"), n_items))[0]
        limit = max(1, math.floor(self.max_share * n))
        valid = items >= 0
        group = np.where(valid, codes[np.where(valid, items, 0)], -1)
        taken = np.zeros(items.shape, bool)
        used = np.zeros(items.shape, np.int32)  # slots already held by each pool item's group
        rows = np.arange(len(items))
        chosen = np.full((len(items), n), -1, np.int64)
        values = np.full((len(items), n), -np.inf, scores.dtype)
        for slot in range(n):
            open_ = valid & ~taken & ((used < limit) | (group < 0))
            found = open_.any(axis=1)
            first = open_.argmax(axis=1)
            chosen[found, slot] = items[rows[found], first[found]]
            values[found, slot] = scores[rows[found], first[found]]
            taken[rows[found], first[found]] = True
            picked = group[rows, first][:, None]
            used += (found[:, None] & (group == picked) & (picked >= 0)).astype(np.int32)
        return chosen, values


def _positions(request: Request, ids: list[str], n_items: int) -> np.ndarray:
    """Item indices of the known ``ids`` in the given order (unknown ids are skipped)."""
    found = pd.Index(np.asarray(request.catalogue.ids).astype(str)).get_indexer(list(dict.fromkeys(ids)))
    return found[(found >= 0) & (found < n_items)]


def _utc(request: Request) -> pd.Timestamp:
    """The request's moment in UTC (a naive moment is taken as UTC)."""
    moment = pd.Timestamp(request.context.when())
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _required(request: Request, column: str, rule: str) -> pd.Series:
    values = request.catalogue.column(column)
    if values is None:
        attributes = request.catalogue.attributes
        available = [] if attributes is None else list(attributes.columns)
        raise ConfigError(
            f"Business rule {rule} reads the item column '{column}', which the items do not carry (columns: "
            f"{available}). Name another column in the rules file or train with an items table (--items FILE) that "
            "has it."
        )
    return values


def _aligned(values: pd.Series, n_items: int) -> pd.Series:
    """One value per item index (NaN beyond the table)."""
    return values.reset_index(drop=True).reindex(range(n_items))


def _text(values: pd.Series | None, n_items: int) -> np.ndarray:
    """The values as strings per item, "" where unknown."""
    if values is None:
        return np.full(n_items, "", dtype=object)
    series = _aligned(values, n_items)
    return np.where(series.isna(), "", series.astype(str)).astype(object)


def _folded(values: pd.Series, n_items: int) -> pd.Series:
    """Case-folded strings per item, NaN where unknown."""
    series = _aligned(values, n_items)
    return series.astype(object).where(series.isna(), series.astype(str).str.casefold())


def _numbers(values: pd.Series, n_items: int) -> np.ndarray:
    series = _aligned(values, n_items)
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        raise DataError(f"Item column '{values.name}' holds non-numbers (e.g. {series[bad].iloc[0]!r}); fix or blank "
                        "them.")
    return numbers.to_numpy(np.float64)


def _dates(values: pd.Series | None, n_items: int) -> np.ndarray:
    """Calendar dates per item (NaT where unknown or without the column)."""
    if values is None:
        return np.full(n_items, np.datetime64("NaT"), "datetime64[D]")
    series = _aligned(values, n_items)
    dates = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    bad = dates.isna() & series.notna()
    if bad.any():
        raise DataError(f"Item column '{values.name}' holds values that are not ISO dates (e.g. "
                        f"{series[bad].iloc[0]!r}).")
    return dates.dt.tz_localize(None).to_numpy().astype("datetime64[D]")


# -- the rules file ----------------------------------------------------------------------------------------------

RULE_TYPES: dict[str, str] = {
    "include_categories": "list of strings", "exclude_categories": "list of strings", "category_column": "string",
    "min_price": "number", "max_price": "number", "price_column": "string", "available_from_column": "string",
    "available_until_column": "string", "stock_column": "string", "repurchase_days": "table of numbers",
    "pinned": "list of strings", "promoted": "table of numbers",
}
SHARE_TYPES: dict[str, str] = {"column": "string", "max_share": "number", "pool_factor": "integer"}


def _type_problem(value: Any, kind: str) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return not {
        "string": isinstance(value, str),
        "number": number or value is None,
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "table of numbers": isinstance(value, dict)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()),
    }[kind]


def rule_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first invalid business-rule setting as ``(key, what is wrong)``, None when all are valid."""
    for key, kind in RULE_TYPES.items():
        if key in values and _type_problem(values[key], kind):
            return key, f"must be a {kind}, got {values[key]!r}"
    low, high = values.get("min_price"), values.get("max_price")
    if low is not None and high is not None and low > high:
        return "min_price", f"min_price {low} is above max_price {high}"
    for key, sign in (("repurchase_days", "negative"), ("promoted", "positive")):
        for name, number in values.get(key, {}).items():
            if (number < 0 if sign == "negative" else number <= 0) or not math.isfinite(number):
                wanted = "a number of days >= 0" if sign == "negative" else "a factor > 0"
                return f"{key}.{name}", f"must be {wanted}, got {number}"
    return None


def share_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first invalid max-share setting as ``(key, what is wrong)``, None when all are valid."""
    for key, kind in SHARE_TYPES.items():
        if key in values and (values[key] is None or _type_problem(values[key], kind)):
            return key, f"must be a {kind}, got {values[key]!r}"
    if "max_share" in values and not 0 < values["max_share"] <= 1:
        return "max_share", f"must be in (0, 1], got {values['max_share']}"
    if "pool_factor" in values and values["pool_factor"] < 1:
        return "pool_factor", f"must be at least 1, got {values['pool_factor']}"
    return None


def load_rules(path: str | Path) -> list[Stage | Reranker]:
    """The stages of a TOML rules file: ``[BusinessRules]``, plus ``MaxShare`` when it has a ``[max_share]`` table.
    Errors name the file, the line and the key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"Cannot read the rules file {path}: {error.strerror}.") from error
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}.") from error

    def fail(key: str, message: str, table: str | None = None) -> ConfigError:
        return ConfigError(f"{path}, line {_line(text, key.split('.')[0] if table is None else key, table)}, "
                           f"key '{key if table is None else f'{table}.{key}'}': {message}.")

    share = settings.pop("max_share", None)
    unknown = [key for key in settings if key not in RULE_TYPES]
    if unknown:
        raise fail(unknown[0], f"unknown key; valid keys: {', '.join([*RULE_TYPES, 'max_share'])}")
    problem = rule_problem(settings)
    if problem:
        key, message = problem
        top, _, entry = key.partition(".")
        raise fail(entry, message, top) if entry else fail(key, message)
    stages: list[Stage | Reranker] = [BusinessRules(**settings)]
    if share is not None:
        if not isinstance(share, dict):
            raise fail("max_share", "must be a table ([max_share] with column, max_share, pool_factor)")
        unknown = [key for key in share if key not in SHARE_TYPES]
        if unknown:
            raise fail(unknown[0], f"unknown key; valid keys: {', '.join(SHARE_TYPES)}", "max_share")
        problem = share_problem(share)
        if problem:
            raise fail(problem[0], problem[1], "max_share")
        stages.append(MaxShare(**share))
    return stages


def _line(text: str, key: str, table: str | None) -> int:
    """The 1-based line where ``key`` is set (inside ``[table]`` when given, or as an inline ``table = {...}``);
    the table's own line when the key is not found there."""
    current: str | None = None
    table_line = 1
    assignment = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip("\"'")
            if current == (table or key):
                table_line = number
                if table is None:
                    return number
            continue
        if current == table and assignment.match(line):
            return number
        if table is not None and current is None and re.match(rf"^\s*{re.escape(table)}\s*=", line):
            table_line = number
    return table_line
