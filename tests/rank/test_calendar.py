"""Events calendar: named date ranges boost or suppress the items they concern; built-in French retail events."""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank.base import Catalogue, Request, bare_request, create_stage
from tailored.rank.calendar import CalendarAdjuster, load_calendar
from tailored.query import Context
from tailored.registry.model_dir import load_model, save_model

def on(date: str) -> Context:
    return Context(dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC))


def request(date: str, n_users: int = 1) -> Request:
    """Items a, b, c, d; attributes known for the first three only (d lies beyond the table)."""
    attributes = pd.DataFrame({"category": ["Foie Gras", "cheese", np.nan],
                               "tags": ["festive|Luxury", np.nan, "noël|sweet"]})
    return bare_request(n_users, Catalogue(np.array(["a", "b", "c", "d"]), attributes), on(date))


def event(name: str = "Promo", start: str = "03-01", end: str = "04-05", factor: float = 2.0, **selectors) -> dict:
    return {"name": name, "start": start, "end": end, "factor": factor, "items": [], "categories": [], "tags": [],
            "category_column": "category", **selectors}


def stage(*events: dict, builtin: bool = False, strength: float = 1.0) -> CalendarAdjuster:
    return CalendarAdjuster(list(events), builtin=builtin, strength=strength)


def four(row: list[float]) -> np.ndarray:
    return np.array([row], np.float64)


def soft(z: np.ndarray | float) -> np.ndarray:
    """The standardised scores' soft bound: 3 tanh(z / 3) (`tailored.rank.lift.bounded`)."""
    return 3.0 * np.tanh(np.asarray(z, np.float64) / 3.0)


def test_a_factor_adds_its_log_to_the_standardised_scores() -> None:
    scores = four([1.0, 2.0, 3.0, 2.0])  # mean 2, standard deviation sqrt(1/2)
    expected = soft((scores - 2.0) / math.sqrt(0.5))
    expected[0, 0] += math.log(2.0)
    np.testing.assert_allclose(stage(event(items=["a"])).adjust(scores, request("2026-03-15")), expected, rtol=1e-6)
    expected = soft((scores - 2.0) / math.sqrt(0.5))
    expected[0, 0] += 2.0 * math.log(2.0)
    np.testing.assert_allclose(stage(event(items=["a"]), strength=2.0).adjust(scores, request("2026-03-15")),
                               expected, rtol=1e-6)


def test_factor_zero_removes_the_item_before_standardising() -> None:
    scores = four([1.0, 2.0, 3.0, 4.0])
    adjusted = stage(event(factor=0.0, categories=["foie gras"])).adjust(scores, request("2026-03-15"))
    # the three others, 2, 3, 4: mean 3, standard deviation sqrt(2/3)
    z = soft(1 / math.sqrt(2 / 3))
    np.testing.assert_allclose(adjusted, [[-np.inf, -z, 0.0, z]], rtol=1e-6)


def test_no_active_or_no_concerned_item_leaves_the_scores_unchanged() -> None:
    scores = four([1.0, 2.0, 3.0, 4.0])
    assert stage(event(items=["a"])).adjust(scores, request("2026-06-15")) is scores
    assert stage(event(items=["zzz"], tags=["unknown"])).adjust(scores, request("2026-03-15")) is scores
    assert stage(event(factor=1.0, items=["a"])).adjust(scores, request("2026-03-15")) is scores
    assert stage().adjust(scores, request("2026-12-15")) is scores  # nothing built in


def test_items_match_by_id_category_and_tag_case_insensitively() -> None:
    cases = {  # selector -> items concerned (c has no category, d no attributes at all)
        "items": (["b", "d"], [False, True, False, True]),
        "categories": (["FOIE GRAS", "Cheese"], [True, True, False, False]),
        "tags": (["luxury", "Noël"], [True, False, True, False]),
    }
    for key, (values, concerned) in cases.items():
        explained = stage(event(**{key: values})).explain(np.array([[0, 1, 2, 3]]), request("2026-03-15"))
        assert (explained == "event Promo x2").tolist() == [concerned], key
    # a tag matches whole tag values only; a missing column matches nothing
    assert (stage(event(tags=["lux"])).explain(np.array([[0]]), request("2026-03-15")) == "").all()
    assert (stage(event(categories=["x"], category_column="brand")).explain(np.array([[0]]), request("2026-03-15"))
            == "").all()


def test_factors_of_overlapping_events_multiply_and_are_explained() -> None:
    scores = four([1.0, 2.0, 3.0, 2.0])
    calendar = stage(event("Lent", factor=0.2, tags=["festive"]), event("Cheese week", factor=3.0, items=["a", "b"]))
    expected = soft((scores - 2.0) / math.sqrt(0.5)) + np.log([[0.6, 3.0, 1.0, 1.0]])
    np.testing.assert_allclose(calendar.adjust(scores, request("2026-03-15")), expected, rtol=1e-6)
    reasons = calendar.explain(np.array([[0, 1, 2], [3, -1, -1]]), request("2026-03-15", n_users=2))
    assert reasons.tolist() == [["event Lent x0.2; event Cheese week x3", "event Cheese week x3", ""], ["", "", ""]]


def test_an_event_crossing_the_year_end_is_active_on_both_sides() -> None:
    calendar = stage(event("Holidays", start="12-26", end="01-01", items=["a"]))
    active = {date: calendar.explain(np.array([[0]]), request(date))[0, 0] for date in
              ("2026-12-25", "2026-12-26", "2026-12-31", "2027-01-01", "2027-01-02")}
    assert active == {"2026-12-25": "", "2026-12-26": "event Holidays x2", "2026-12-31": "event Holidays x2",
                      "2027-01-01": "event Holidays x2", "2027-01-02": ""}


def test_a_one_off_event_is_active_in_its_year_only() -> None:
    calendar = stage(event("Launch", start="2026-03-10", end="2026-03-20", items=["a"]))
    assert [calendar.explain(np.array([[0]]), request(date))[0, 0] for date in
            ("2026-03-09", "2026-03-10", "2026-03-20", "2027-03-15")] == ["", "event Launch x2", "event Launch x2", ""]


def test_built_in_christmas_is_on_in_december_only_and_can_be_replaced() -> None:
    scores = four([1.0, 2.0, 3.0, 2.0])
    calendar = stage(builtin=True)
    expected = soft((scores - 2.0) / math.sqrt(0.5))  # a (tag festive) and c (tag noël) get x1.5
    expected[0, [0, 2]] += math.log(1.5)
    np.testing.assert_allclose(calendar.adjust(scores, request("2026-12-15")), expected, rtol=1e-6)
    assert calendar.explain(np.array([[0, 1, 2]]), request("2026-12-15")).tolist() == [
        ["event Christmas x1.5", "", "event Christmas x1.5"]]
    assert calendar.adjust(scores, request("2026-03-15")) is scores
    replaced = stage(event("Christmas", start="12-01", end="12-24", factor=3.0, items=["b"]), builtin=True)
    assert replaced.explain(np.array([[0, 1, 2]]), request("2026-12-15")).tolist() == [["", "event Christmas x3", ""]]


@pytest.mark.parametrize(("date", "expected"), [
    ("2026-03-28", []),
    ("2026-03-29", ["Easter"]),  # Palm Sunday; Easter Sunday is 5 April 2026
    ("2026-04-06", ["Easter", "Easter Monday"]),  # Easter Monday is also a public holiday
    ("2026-04-07", []),
    ("2026-02-14", ["Valentine's Day"]),
    ("2026-05-31", ["Mother's Day"]),  # last Sunday of May 2026
    ("2012-05-27", []),  # 2012: the last Sunday of May was Pentecost, so Mother's Day moved to 3 June
    ("2012-06-03", ["Mother's Day"]),
    ("2026-06-24", ["Summer sales"]),  # last Wednesday of June 2026
    ("2026-07-21", ["Summer sales"]),  # four weeks, inclusive
    ("2026-07-22", []),
    ("2026-01-07", ["Winter sales"]),  # second Wednesday (14th) falls after the 12th: the first
    ("2025-01-08", ["Winter sales"]),  # second Wednesday of January 2025
    ("2026-08-15", ["Back to school", "Assumption Day"]),
    ("2026-09-10", ["Back to school"]),
    ("2026-11-26", []),  # Thanksgiving
    ("2026-11-27", ["Black Friday"]),
    ("2026-11-30", ["Black Friday"]),  # Cyber Monday
    ("2026-12-01", ["Christmas"]),
    ("2026-12-25", ["Christmas Day"]),
    ("2026-12-31", ["New Year"]),
    ("2027-01-01", ["New Year", "New Year's Day"]),
    ("2026-07-14", ["Summer sales", "National Day"]),
])
def test_built_in_event_dates(date: str, expected: list[str]) -> None:
    names = [e.name for e in CalendarAdjuster().active_events(dt.date.fromisoformat(date))]
    assert names == expected


def test_public_holidays_concern_items_tagged_holiday() -> None:
    attributes = pd.DataFrame({"tags": ["Jour férié|flowers", "national day", "sweet"]})
    catalogue = Catalogue(np.array(["x", "y", "z"]), attributes)
    reasons = CalendarAdjuster().explain(np.array([[0, 1, 2]]), bare_request(1, catalogue, on("2026-07-14")))
    assert reasons.tolist() == [["event National Day x1.5", "event National Day x1.5", ""]]


# -- the TOML file -------------------------------------------------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


LENT = """\
    strength = 2.0

    [[event]]
    name = "Christmas"
    start = "12-01"
    end = "12-24"
    factor = 3
    tags = ["festive"]

    [[event]]
    name = "Lent"
    start = 2026-02-18
    end = "2026-04-04"
    factor = 0
    categories = ["foie gras"]
    items = ["sku-12", 12]
    category_column = "family"
    """


def test_load_calendar_reads_and_normalises_the_events(tmp_path) -> None:
    calendar = load_calendar(write(tmp_path, LENT))
    assert (calendar.builtin, calendar.country, calendar.strength) == (True, "FR", 2.0)
    assert calendar.events == [
        {"name": "Christmas", "start": "12-01", "end": "12-24", "factor": 3.0, "items": [], "categories": [],
         "tags": ["festive"], "category_column": "category"},
        {"name": "Lent", "start": "2026-02-18", "end": "2026-04-04", "factor": 0.0, "items": ["sku-12", "12"],
         "categories": ["foie gras"], "tags": [], "category_column": "family"},
    ]
    assert not load_calendar(write(tmp_path, "builtin = false\n")).builtin
    assert not load_calendar(write(tmp_path, LENT), builtin=False).builtin
    assert load_calendar(write(tmp_path, "")).events == []


def test_the_example_calendar_works_on_the_synthetic_products() -> None:
    from tailored.data.synthetic import generate_retail

    products = generate_retail(n_customers=20, malformed=False).products
    catalogue = Catalogue(products["item_id"].to_numpy(), products.drop(columns="item_id"))
    calendar = load_calendar(Path(__file__).parents[2] / "configs" / "calendar.example.toml")
    foie_gras = products["title"].str.contains("Foie gras").to_numpy()
    items = np.arange(len(products))[None, :]
    march = calendar.explain(items, bare_request(1, catalogue, on("2026-03-15")))[0]
    assert foie_gras.any() and (march[foie_gras] == "event Foie gras off season x0.2").all()
    assert (march[~foie_gras] == "").all()
    december = calendar.explain(items, bare_request(1, catalogue, on("2026-12-15")))[0]
    assert (december[foie_gras] == "event Christmas x1.5; event Foie gras season x2").all()


HEADER = '[[event]]\nname = "Lent"\nstart = "03-01"\nend = "04-05"\nfactor = 0.2\ntags = ["festive"]\n'


@pytest.mark.parametrize(("text", "pattern"), [
    ('[[event]\nname = "Lent"\n', r"calendar.toml is not valid TOML: .*line 1"),
    ('colour = "red"\n' + HEADER, r"line 1: unknown key 'colour'; valid top-level keys: event, builtin"),
    ('strength = -1\n' + HEADER, r"line 1: key 'strength' must be a number >= 0"),
    ('country = "Atlantis"\n' + HEADER, r"line 1: Calendar country 'Atlantis' is not known"),
    ('[event]\nname = "Lent"\n', r"line 1: key 'event' must be an array of tables.*\[\[event\]\]"),
    (HEADER + 'colour = "red"\n', r"line 7 \(\[\[event\]\] #1, event 'Lent'\): unknown key 'colour'; valid keys: "
                                  r"name, start, end, factor, items, categories, tags, category_column"),
    (HEADER.replace('factor = 0.2\n', ''), r"line 1 .*missing key 'factor'"),
    ('# my calendar\n\n' + HEADER.replace('name = "Lent"\n', ''), r"line 3 \(\[\[event\]\] #1, event #1\): "
                                                                   r"missing key 'name'"),
    (HEADER.replace('"03-01"', '"02-30"'), r"line 3 .*key 'start' = '02-30' is out of range \(day is out of range"),
    (HEADER.replace('"04-05"', '"13-01"'), r"line 4 .*key 'end' = '13-01' is out of range \(month must be in 1..12"),
    (HEADER.replace('"03-01"', '"1st of March"'), r"line 3 .*key 'start' = '1st of March' is not a date; write MM-DD"),
    (HEADER.replace('"03-01"', '"2026-3-1"'), r"line 3 .*key 'start' = '2026-3-1' is not a date"),
    (HEADER.replace('"03-01"', '2026-03-01T10:00:00'), r"line 3 .*key 'start' .* is not a date"),
    (HEADER.replace("0.2", "-0.5"), r"line 5 .*key 'factor' must be a number >= 0 .*got -0.5"),
    (HEADER.replace("0.2", '"half"'), r"line 5 .*key 'factor' must be a number >= 0"),
    (HEADER.replace('tags = ["festive"]\n', ''), r"line 2 .*event 'Lent' concerns no item; give at least one of "
                                                  r"'items', 'categories' or 'tags'"),
    (HEADER.replace('["festive"]', '"festive"'), r"line 6 .*key 'tags' must be a list of strings"),
    (HEADER.replace('"04-05"', '"2026-04-05"'), r"line 4 .*keys 'start' \(03-01\) and 'end' \(2026-04-05\) mix MM-DD"),
    (HEADER.replace('"03-01"', '"2026-05-01"').replace('"04-05"', '"2026-04-05"'),
     r"line 4 .*key 'end' \(2026-04-05\) is before 'start' \(2026-05-01\)"),
    (HEADER + "\n" + HEADER, r"line 8: event name 'Lent' is already used by .*line 1"),
])
def test_malformed_calendars_name_the_file_line_and_key(tmp_path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_calendar(write(tmp_path, text))


def test_second_event_errors_point_at_its_own_lines(tmp_path) -> None:
    text = HEADER + "\n" + HEADER.replace('"Lent"', '"Easter"').replace('"04-05"', '"04-31"')
    with pytest.raises(ConfigError, match=r"calendar.toml, line 11 \(\[\[event\]\] #2, event 'Easter'\): key 'end'"):
        load_calendar(write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"Calendar file .*missing.toml does not exist"):
        load_calendar(tmp_path / "missing.toml")


def test_events_given_as_stage_parameters_are_checked_at_fit() -> None:
    dataset = Dataset.from_frame(pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}))
    good = create_stage("calendar", {"events": [{"name": "Promo", "start": "03-01", "end": "04-05", "factor": 2,
                                                 "items": ["a"]}], "builtin": "false"})
    assert good.fit(dataset) is good and good.builtin is False
    assert good.explain(np.array([[0, 1]]), request("2026-03-15")).tolist() == [["event Promo x2", ""]]
    with pytest.raises(ConfigError, match=r"stage 'calendar' events\[0\]: key 'start' = '02-30' is out of range"):
        create_stage("calendar", {"events": [event(start="02-30", items=["a"])]}).fit(dataset)
    with pytest.raises(ConfigError, match="country 'XX' is not known"):
        CalendarAdjuster(country="XX").fit(dataset)


# -- inside a pipeline ---------------------------------------------------------------------------------------------
def test_a_calendar_inside_a_fitted_and_saved_recommender(tmp_path) -> None:
    interactions = pd.DataFrame({  # popularity: foie (4) > cheese (3) > bread (2) > wine (1)
        "user_id": ["u1", "u2", "u3", "u4", "u1", "u2", "u3", "u1", "u2", "u1"],
        "item_id": ["foie", "foie", "foie", "foie", "cheese", "cheese", "cheese", "bread", "bread", "wine"],
        "timestamp": np.arange(10) * 86_400 + 1_700_000_000,
    })
    items = pd.DataFrame({"item_id": ["foie", "cheese", "bread", "wine"],
                          "category": ["Foie gras", "Cheese", "Bakery", "Wine"],
                          "tags": ["festive|luxury", "french", "bread", "festive|wine"]})
    path = write(tmp_path, """\
        strength = 3.0

        [[event]]
        name = "Lent"
        start = "03-01"
        end = "10-31"
        factor = 0
        categories = ["foie gras"]
        """)
    recommender = Recommender(create_scorer("popularity"), exclude_seen=False, stages=[load_calendar(path)])
    recommender.fit(Dataset.from_frame(interactions, items=items))
    march = recommender.recommend(["u4"], 4, context=on("2026-03-15"), explain=True)
    assert march["item_id"].tolist() == ["cheese", "bread", "wine"]
    december = recommender.recommend(["u4"], 4, context=on("2026-12-15"), explain=True)
    # wine (tagged festive) passes bread: z-scores -1.34 + 3 log 1.5 = -0.13 > -0.45
    assert december["item_id"].tolist() == ["foie", "cheese", "wine", "bread"]
    assert december["reasons"].str.contains("event Christmas x1.5").tolist() == [True, False, True, False]
    save_model(recommender, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    for context in (on("2026-03-15"), on("2026-12-15")):
        pd.testing.assert_frame_equal(loaded.recommend(["u4", "u1"], 4, context=context, explain=True),
                                      recommender.recommend(["u4", "u1"], 4, context=context, explain=True))
