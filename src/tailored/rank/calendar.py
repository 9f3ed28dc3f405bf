"""Events calendar: named date ranges (Christmas, the sales, a custom "Lent"...) that boost or suppress the items
they concern, read from a TOML file or built in (French retail events and public holidays).

An event is active on the request's date (``request.context.when()``, in its own time zone) and concerns items by
external id (``items``), by the value of an attribute column (``categories``, matched against ``category_column``,
default ``category``) or by tag (``tags``, matched against the ``|``-separated values of the ``tags`` column);
values match whole and case-insensitively. Each concerned item gets the event's ``factor``; when several active events
concern an item their factors multiply. Items with factor 0 are removed (``-inf``); then, like the seasonal stage
(`tailored.rank.lift.add_log_lift`), each user's finite scores are standardised (z-scores, softly bounded) and
``strength * log(factor)`` is added, so a factor of 1.5 lifts an item by 0.41 standard deviations at strength 1,
whatever the scorer's scale. Without an active event concerning any item the scores are returned unchanged.

Built-in events (``builtin``, factor 1.5, matched on tags and on the category column; dates from the French trade
calendar, Code de commerce art. D310-15-2 for the sales) and the public holidays of ``country`` (from the
``holidays`` package, each a one-day event named after the holiday, concerning items tagged ``holiday``) are listed
in docs/calendar.md. A custom event with the name of a built-in one replaces it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import holidays
import numpy as np
import pandas as pd
from dateutil.easter import easter
from dateutil.relativedelta import TH, WE, relativedelta

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.rank.base import Catalogue, Request, register_stage
from tailored.rank.lift import add_log_lift

BUILTIN_FACTOR = 1.5
TAG_COLUMN = "tags"
TAG_SEPARATOR = "|"
CATEGORY_COLUMN = "category"
REQUIRED_KEYS = ("name", "start", "end", "factor")
EVENT_KEYS = (*REQUIRED_KEYS, "items", "categories", "tags", "category_column")
FILE_KEYS = ("event", "builtin", "country", "strength")
HOLIDAY_KEYWORDS = ("holiday", "public holiday", "jour férié", "jour ferie", "férié", "ferie")
EVERY_YEAR = re.compile(r"(\d{2})-(\d{2})")
ONE_YEAR = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
EVENT_HEADER = re.compile(r"\s*\[\[\s*event\s*\]\]")
TABLE_HEADER = re.compile(r"\s*\[")

Window = Callable[[int], tuple[dt.date, dt.date]]
"""A yearly event's first and last day for the occurrence starting in a year (the last may fall in the next)."""


@dataclass(frozen=True)
class Event:
    """A named event ready to apply: when it is on, what it concerns (casefolded keywords) and its factor."""

    name: str
    active: Callable[[dt.date], bool]
    factor: float
    items: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    category_column: str = CATEGORY_COLUMN


# -- built-in events ---------------------------------------------------------------------------------------------
def fixed(first: tuple[int, int], last: tuple[int, int]) -> Window:
    """The same month-days every year; ``last`` before ``first`` ends in the next year."""
    return lambda year: (dt.date(year, *first), dt.date(year + (last < first), *last))


def easter_week(year: int) -> tuple[dt.date, dt.date]:
    """Palm Sunday to Easter Monday."""
    sunday = easter(year)
    return sunday - dt.timedelta(days=7), sunday + dt.timedelta(days=1)


def mothers_day(year: int) -> tuple[dt.date, dt.date]:
    """The week up to French Mother's Day: the last Sunday of May, or the first of June when that is Pentecost."""
    day = dt.date(year, 5, 31)
    day -= dt.timedelta(days=(day.weekday() + 1) % 7)
    if day == easter(year) + dt.timedelta(days=49):
        day += dt.timedelta(days=7)
    return day - dt.timedelta(days=6), day


def summer_sales(year: int) -> tuple[dt.date, dt.date]:
    """Four weeks from the last Wednesday of June (the one before when the last falls after the 28th)."""
    start = dt.date(year, 6, 1) + relativedelta(day=31, weekday=WE(-1))
    if start.day > 28:
        start -= dt.timedelta(days=7)
    return start, start + dt.timedelta(days=27)


def winter_sales(year: int) -> tuple[dt.date, dt.date]:
    """Four weeks from the second Wednesday of January (the first when the second falls after the 12th)."""
    start = dt.date(year, 1, 1) + relativedelta(weekday=WE(2))
    if start.day > 12:
        start -= dt.timedelta(days=7)
    return start, start + dt.timedelta(days=27)


def black_friday(year: int) -> tuple[dt.date, dt.date]:
    """The day after the fourth Thursday of November through Cyber Monday."""
    friday = dt.date(year, 11, 1) + relativedelta(weekday=TH(4)) + dt.timedelta(days=1)
    return friday, friday + dt.timedelta(days=3)


SALES = ("sale", "sales", "soldes", "promotion", "clearance")
BUILTIN_EVENTS: tuple[tuple[str, Window, tuple[str, ...]], ...] = (
    ("Winter sales", winter_sales, (*SALES, "winter sale", "soldes d'hiver")),
    ("Valentine's Day", fixed((2, 7), (2, 14)), ("valentine", "valentines", "saint-valentin", "saint valentin",
                                                 "romantic", "flowers")),
    ("Easter", easter_week, ("easter", "paques", "pâques", "chocolate")),
    ("Mother's Day", mothers_day, ("mother's day", "mothers day", "fête des mères", "fete des meres", "flowers",
                                   "gift")),
    ("Summer sales", summer_sales, (*SALES, "summer sale", "soldes d'été", "soldes d'ete")),
    ("Back to school", fixed((8, 15), (9, 10)), ("back to school", "back-to-school", "rentrée", "rentree", "school",
                                                 "stationery")),
    ("Black Friday", black_friday, ("black friday", "black-friday", "cyber monday", "cyber-monday", "deal", "deals")),
    ("Christmas", fixed((12, 1), (12, 24)), ("christmas", "xmas", "noël", "noel", "festive")),
    ("New Year", fixed((12, 26), (1, 1)), ("new year", "nouvel an", "réveillon", "reveillon", "party", "champagne",
                                           "festive")),
)
"""Name, dates and keywords (matched on tags and on the category column) of the built-in retail events."""


def yearly(window: Window) -> Callable[[dt.date], bool]:
    """Whether a day falls in the occurrence starting that year or in the one started the year before."""
    return lambda day: any(first <= day <= last for first, last in (window(day.year - 1), window(day.year)))


def keyword_event(name: str, active: Callable[[dt.date], bool], keywords: Iterable[str]) -> Event:
    words = frozenset(word.casefold() for word in keywords)
    return Event(name, active, BUILTIN_FACTOR, categories=words, tags=words)


@functools.cache
def public_holidays(country: str, year: int) -> holidays.HolidayBase:
    """The country's public holidays of a year, named in English where the package has the translation."""
    try:
        languages = holidays.country_holidays(country).supported_languages
        return holidays.country_holidays(country, years=year, language="en_US" if "en_US" in languages else None)
    except NotImplementedError as error:
        raise ConfigError(f"Calendar country {country!r} is not known to the holidays package; use an ISO 3166 "
                          f"code such as 'FR' or 'DE'.") from error


def holiday_events(country: str, day: dt.date) -> list[Event]:
    """One event per public holiday on ``day``, concerning items tagged ``holiday`` or the holiday's own name."""
    return [keyword_event(name, lambda _: True, (*HOLIDAY_KEYWORDS, name))
            for name in public_holidays(country, day.year).get_list(day)]


# -- custom events -------------------------------------------------------------------------------------------------
def read_event(raw: Mapping[str, Any], locate: Callable[[str], str]) -> dict[str, Any]:
    """A custom event checked and normalised to plain JSON values; ``locate(key)`` says where a key is written."""
    unknown = sorted(set(raw) - set(EVENT_KEYS))
    if unknown:
        raise ConfigError(f"{locate(unknown[0])}: unknown key '{unknown[0]}'; valid keys: {', '.join(EVENT_KEYS)}.")
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ConfigError(f"{locate(key)}: missing key '{key}' (every event needs {', '.join(REQUIRED_KEYS)}).")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{locate('name')}: key 'name' must be a non-empty string, got {name!r}.")
    (start, start_once), (end, end_once) = (read_date(raw[key], key, locate) for key in ("start", "end"))
    if start_once != end_once:
        raise ConfigError(f"{locate('end')}: keys 'start' ({start}) and 'end' ({end}) mix MM-DD (every year) and "
                          f"YYYY-MM-DD (one year); write both the same way.")
    if start_once and end < start:
        raise ConfigError(f"{locate('end')}: key 'end' ({end}) is before 'start' ({start}).")
    factor = raw["factor"]
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
        raise ConfigError(f"{locate('factor')}: key 'factor' must be a number >= 0 (above 1 boosts, below 1 "
                          f"suppresses, 0 removes the items), got {factor!r}.")
    selectors = {key: read_strings(raw.get(key, []), key, locate) for key in ("items", "categories", "tags")}
    if not any(selectors.values()):
        raise ConfigError(f"{locate('name')}: event {name!r} concerns no item; give at least one of 'items', "
                          f"'categories' or 'tags'.")
    column = raw.get("category_column", CATEGORY_COLUMN)
    if not isinstance(column, str) or not column:
        raise ConfigError(f"{locate('category_column')}: key 'category_column' must be a column name, got {column!r}.")
    return {"name": name.strip(), "start": start, "end": end, "factor": float(factor), **selectors,
            "category_column": column}


def read_date(value: Any, key: str, locate: Callable[[str], str]) -> tuple[str, bool]:
    """``MM-DD`` (every year) or ``YYYY-MM-DD`` / a TOML date (one year): the text and whether it is one year's."""
    hint = "write MM-DD for every year (e.g. \"03-01\") or YYYY-MM-DD for one year (e.g. \"2026-03-01\")"
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat(), True
    text = value.strip() if isinstance(value, str) else ""
    match = ONE_YEAR.fullmatch(text) or EVERY_YEAR.fullmatch(text)
    if match is None:
        raise ConfigError(f"{locate(key)}: key '{key}' = {value!r} is not a date; {hint}.")
    parts = [int(part) for part in match.groups()]
    try:
        dt.date(*parts) if len(parts) == 3 else dt.date(2000, *parts)  # 2000 is a leap year: "02-29" is valid
    except ValueError as error:
        raise ConfigError(f"{locate(key)}: key '{key}' = {value!r} is out of range ({error}); {hint}.") from error
    return text, len(parts) == 3


def read_strings(value: Any, key: str, locate: Callable[[str], str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{locate(key)}: key '{key}' must be a list of strings, e.g. {key} = [\"festive\"], "
                          f"got {value!r}.")
    return [str(v) for v in value]


def compile_event(spec: Mapping[str, Any]) -> Event:
    """The `Event` of a custom event checked by `read_event` (optional keys may be left out)."""
    start, end = spec["start"], spec["end"]
    if ONE_YEAR.fullmatch(start):
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        active = lambda day: first <= day <= last  # noqa: E731
    else:
        begin, finish = (int(start[:2]), int(start[3:])), (int(end[:2]), int(end[3:]))
        if begin <= finish:
            active = lambda day: begin <= (day.month, day.day) <= finish  # noqa: E731
        else:  # crosses the year end
            active = lambda day: (day.month, day.day) >= begin or (day.month, day.day) <= finish  # noqa: E731
    return Event(spec["name"], active, spec["factor"], frozenset(map(str, spec.get("items", []))),
                 frozenset(c.casefold() for c in spec.get("categories", [])),
                 frozenset(t.casefold() for t in spec.get("tags", [])), spec.get("category_column", CATEGORY_COLUMN))


# -- the stage -----------------------------------------------------------------------------------------------------
@register_stage("calendar")
@dataclass(eq=False)
class CalendarAdjuster:
    """Multiplies the concerned items' odds by the factors of the events active on the request's date: adds
    ``strength * log(factor)`` to the standardised scores and removes items of factor 0."""

    events: list[dict[str, Any]] = field(default_factory=list)
    builtin: bool = True
    country: str = "FR"
    strength: float = 1.0

    def fit(self, dataset: Dataset) -> Self:
        """Learns nothing; checks the events (and the country) so that a bad job spec fails before training."""
        checked = [read_event(event, lambda key, i=i: f"stage 'calendar' events[{i}]") for i, event in
                   enumerate(self.events)]
        duplicates(checked, lambda i: f"stage 'calendar' events[{i}]")
        public_holidays(self.country, 2000)
        return self

    def active_events(self, day: dt.date) -> list[Event]:
        """The events on ``day``: built-in and public holidays (unless a custom event takes the name), then custom."""
        custom = [compile_event(spec) for spec in self.events]
        taken = {event.name.casefold() for event in custom}
        builtin = [keyword_event(name, yearly(window), words) for name, window, words in BUILTIN_EVENTS]
        builtin = ([e for e in builtin if e.active(day)] + holiday_events(self.country, day)) if self.builtin else []
        return [e for e in builtin if e.name.casefold() not in taken] + [e for e in custom if e.active(day)]

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        factor, _ = self._effects(request, scores.shape[1])
        if np.all(factor == 1.0):
            return scores
        removed = factor == 0
        scores = np.where(removed, -np.inf, scores).astype(scores.dtype) if removed.any() else scores
        return add_log_lift(scores, np.where(removed, 1.0, factor), self.strength, request)

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        """``"event Christmas x1.5"`` for each item an active event concerns ("; "-joined), "" otherwise."""
        _, reasons = self._effects(request, len(request.catalogue))
        explained = np.full(items.shape, "", dtype=object)
        shown = (items >= 0) & (items < len(reasons))
        explained[shown] = reasons[items[shown]]
        return explained

    def _effects(self, request: Request, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-item factor and reasons for the request's date, computed once per recommendation run (no event
        without a date: ``Context.moment`` None)."""
        if request.context.moment is None:
            return np.ones(n_items), np.full(n_items, "", dtype=object)
        day = request.context.when().date()
        key = f"calendar {id(self)} {day} {n_items}"
        if key not in request.tally:
            request.tally[key] = event_effects(self.active_events(day), request.catalogue, n_items)
        return request.tally[key]


def event_effects(events: list[Event], catalogue: Catalogue, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``(factor[n_items], reasons[n_items])``: the product of the factors of the events concerning each item and
    their "event NAME xFACTOR" labels."""
    factor = np.ones(n_items)
    reasons = np.full(n_items, "", dtype=object)
    values = functools.cache(lambda name, split: attribute_values(catalogue.column(name), n_items, split))
    ids = np.asarray(catalogue.ids).astype(str)[:n_items]
    for event in events:
        concerned = np.zeros(n_items, bool)
        concerned[: len(ids)] = np.isin(ids, list(event.items))
        for column, split, keywords in ((event.category_column, False, event.categories),
                                        (TAG_COLUMN, True, event.tags)):
            if keywords:
                matched = values(column, split)
                concerned[matched.index[matched.isin(list(keywords)).to_numpy()]] = True
        if concerned.any():
            factor[concerned] *= event.factor
            label = f"event {event.name} x{event.factor:g}"
            reasons[concerned] = np.where(reasons[concerned] == "", label, reasons[concerned] + "; " + label)
    return factor, reasons


def attribute_values(column: pd.Series | None, n_items: int, split: bool) -> pd.Series:
    """The column's casefolded values indexed by item position (one row per tag when ``split``), NaN rows dropped."""
    if column is None:
        return pd.Series([], dtype=object)
    values = column.reset_index(drop=True).iloc[:n_items].dropna().astype(str)
    if split:
        values = values.str.split(TAG_SEPARATOR).explode()
    return values.str.strip().str.casefold()


def duplicates(events: list[dict[str, Any]], locate: Callable[[int], str]) -> None:
    """Raise when two custom events share a name (the second would silently shadow the first)."""
    seen: dict[str, int] = {}
    for index, event in enumerate(events):
        name = event["name"].casefold()
        if name in seen:
            raise ConfigError(f"{locate(index)}: event name {event['name']!r} is already used by "
                              f"{locate(seen[name])}; give each event its own name.")
        seen[name] = index


# -- the file ------------------------------------------------------------------------------------------------------
def load_calendar(path: str | Path, builtin: bool = True) -> CalendarAdjuster:
    """Read a TOML calendar (``[[event]]`` tables, optional ``builtin``, ``country``, ``strength``) into a stage;
    ``builtin=False`` (or ``builtin = false`` in the file) leaves out the built-in events and public holidays."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except FileNotFoundError as error:
        raise ConfigError(f"Calendar file {path} does not exist; see configs/calendar.example.toml.") from error
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"Calendar file {path} is not valid TOML: {error}.") from error
    lines = text.splitlines()
    headers = [number for number, line in enumerate(lines, 1) if EVENT_HEADER.match(line)]

    def top(key: str) -> str:
        return f"{path}, line {key_line(lines, key, 1, headers[0] if headers else len(lines) + 1) or 1}"

    unknown = sorted(set(document) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(f"{top(unknown[0])}: unknown key '{unknown[0]}'; valid top-level keys: "
                          f"{', '.join(FILE_KEYS)} (events go in [[event]] tables).")
    raw_events = document.get("event", [])
    if not isinstance(raw_events, list) or not all(isinstance(event, dict) for event in raw_events):
        raise ConfigError(f"{top('event')}: key 'event' must be an array of tables: write each event under its own "
                          f"[[event]] header (double brackets).")
    settings = {key: document[key] for key in ("builtin", "country", "strength") if key in document}
    valid = {"builtin": lambda v: isinstance(v, bool), "country": lambda v: isinstance(v, str),
             "strength": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf}
    expected = {"builtin": "true or false", "country": "a country code such as \"FR\"", "strength": "a number >= 0"}
    for key, value in settings.items():
        if not valid[key](value):
            raise ConfigError(f"{top(key)}: key '{key}' must be {expected[key]}, got {value!r}.")

    def header(index: int) -> int:
        return headers[index] if index < len(headers) else key_line(lines, "event", 1, len(lines) + 1) or 1

    def locator(index: int, name: Any) -> Callable[[str], str]:
        start = header(index)
        end = next((n for n in range(start + 1, len(lines) + 1) if TABLE_HEADER.match(lines[n - 1])), len(lines) + 1)
        label = f"event {name!r}" if isinstance(name, str) else f"event #{index + 1}"
        return lambda key: f"{path}, line {key_line(lines, key, start, end) or start} ([[event]] #{index + 1}, {label})"

    events = [read_event(raw, locator(i, raw.get("name"))) for i, raw in enumerate(raw_events)]
    duplicates(events, lambda i: f"{path}, line {header(i)}")
    if "country" in settings:
        try:
            public_holidays(settings["country"], 2000)
        except ConfigError as error:
            raise ConfigError(f"{top('country')}: {error}") from error
    return CalendarAdjuster(events, builtin=builtin and settings.get("builtin", True),
                            country=settings.get("country", "FR"), strength=float(settings.get("strength", 1.0)))


def key_line(lines: list[str], key: str, start: int, end: int) -> int | None:
    """The 1-based line in ``[start, end)`` where ``key = ...`` is written, if any."""
    pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
    return next((n for n in range(start, end) if pattern.match(lines[n - 1])), None)
