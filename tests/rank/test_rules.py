"""Business rules: each rule alone on five hand-built items, the rules file and its errors, then inside a pipeline."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank.base import Catalogue, Request, bare_request
from tailored.query import Context
from tailored.rank.rules import BusinessRules, MaxShare, load_rules
from tailored.registry.model_dir import load_model, save_model

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
TODAY = NOW.timestamp() / 86_400
INF = np.inf


def catalogue() -> Catalogue:
    """a: coffee 3.0, b: alcohol 10, c: tea 250 (from 1 April), d: unknown category and price (until 1 February),
    e: coffee 6.0 out of stock."""
    attributes = pd.DataFrame({
        "category": ["coffee", "Alcohol", "tea", np.nan, "coffee"],
        "price": [3.0, 10.0, 250.0, np.nan, 6.0],
        "brand": ["X", "X", "X", "Y", "Z"],
        "available_from": [np.nan, "2026-01-01", "2026-04-01", np.nan, np.nan],
        "available_until": [np.nan, "2026-03-01", np.nan, "2026-02-01", np.nan],
        "in_stock": [True, True, True, True, False],
    })
    return Catalogue(np.array(["a", "b", "c", "d", "e"]), attributes=attributes)


SCORES = np.array([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0]], np.float32)


def adjusted(rules: BusinessRules, items: Catalogue | None = None, moment: dt.datetime = NOW) -> np.ndarray:
    return rules.adjust(SCORES, bare_request(2, items or catalogue(), Context(moment)))


def plain(attributes: dict) -> Catalogue:
    """Five items carrying only ``attributes`` (no dates, no stock flag)."""
    return Catalogue(np.array(["a", "b", "c", "d", "e"]), attributes=pd.DataFrame(attributes))


def test_no_rule_changes_nothing_but_dates_and_stock() -> None:
    # 1 March: c not yet available (1 April), d no longer (1 February), e out of stock; b's last day is today
    expected = np.array([[5, 4, -INF, -INF, -INF], [1, 2, -INF, -INF, -INF]], np.float32)
    np.testing.assert_array_equal(adjusted(BusinessRules()), expected)
    # 1 April: c arrives, b's window has closed
    april = adjusted(BusinessRules(), moment=dt.datetime(2026, 4, 1, 8))
    assert np.isfinite(april)[0].tolist() == [True, False, True, False, False]


def test_category_filters_match_case_insensitively_and_unknown_categories_only_pass_exclusion() -> None:
    items = plain({"category": ["coffee", "Alcohol", "tea", np.nan, "coffee"]})
    np.testing.assert_array_equal(adjusted(BusinessRules(exclude_categories=["alcohol"]), items)[0], [5, -INF, 3, 2, 1])
    np.testing.assert_array_equal(adjusted(BusinessRules(include_categories=["COFFEE", "tea"]), items)[0],
                                  [5, -INF, 3, -INF, 1])


def test_price_range_keeps_unknown_prices() -> None:
    items = plain({"price": [3.0, 10.0, 250.0, np.nan, 6.0]})
    np.testing.assert_array_equal(adjusted(BusinessRules(min_price=5, max_price=200), items)[0], [-INF, 4, -INF, 2, 1])
    np.testing.assert_array_equal(adjusted(BusinessRules(max_price=6), items)[1], [1, -INF, -INF, 4, 5])


def test_stock_flags_in_words_and_numbers() -> None:
    items = plain({"in_stock": ["yes", "No", 0, np.nan, "1"]})
    np.testing.assert_array_equal(np.isfinite(adjusted(BusinessRules(), items)[0]), [True, False, False, True, True])


def test_pinned_items_come_first_in_order_unless_filtered() -> None:
    items = plain({"category": ["coffee", "Alcohol", "tea", np.nan, "coffee"]})
    # row 0: top 5, step 5 -> d = 5 + 2*5 = 15, e = 5 + 5 = 10; row 1: top 5 -> d = 15, e = 10
    np.testing.assert_array_equal(adjusted(BusinessRules(pinned=["d", "e", "unknown"]), items),
                                  [[5, 4, 3, 15, 10], [1, 2, 3, 15, 10]])
    # b is filtered out: it stays out; c is pinned in front of everything
    np.testing.assert_array_equal(adjusted(BusinessRules(exclude_categories=["alcohol"], pinned=["b", "c"]), items)[0],
                                  [5, -INF, 10, 2, 1])
    negative = BusinessRules(pinned=["a"]).adjust(np.array([[-3.0, -1.0, -INF]]),
                                                  bare_request(1, plain({"x": [1, 2, 3]})))
    np.testing.assert_array_equal(negative, [[1.0, -1.0, -INF]])  # top max(-1, 0) = 0, step 1


def test_promotion_adds_log_factor_to_standardised_scores() -> None:
    scores = np.array([[1.0, 2.0, 3.0, -INF]], np.float32)
    result = BusinessRules(promoted={"b": 2.0, "zz": 5.0}).adjust(scores, bare_request(1, plain({"x": [1, 2, 3, 4]})))
    z = 3 * math.tanh(1 / math.sqrt(2 / 3) / 3)  # mean 2, population spread sqrt(2/3), softly bounded
    np.testing.assert_allclose(result, [[-z, math.log(2.0), z, -INF]], rtol=1e-6)


def repurchase_request(scores: np.ndarray) -> Request:
    """User 0 bought a (coffee) 40 days ago and c (tea, no cycle) 40 days ago; user 1 bought a 10 days ago."""
    rows, columns, days = np.array([0, 0, 1]), np.array([0, 2, 0]), np.array([TODAY - 40, TODAY - 40, TODAY - 10])
    history = sp.csr_matrix((np.ones(3), (rows, columns)), shape=(2, 5))
    last_seen = sp.csr_matrix((days, (rows, columns)), shape=(2, 5))
    excluded = sp.coo_matrix((scores[rows, columns], (rows, columns)), shape=(2, 5))
    masked = scores.copy()
    masked[rows, columns] = -INF
    return Request(np.array([0, 1]), Context(NOW), plain({"category": ["coffee", "Alcohol", "tea", np.nan, "coffee"]}),
                   history, last_seen, excluded), masked


def test_a_consumable_comes_back_after_its_cycle() -> None:
    request, masked = repurchase_request(SCORES)
    rows, columns, restored = BusinessRules(repurchase_days={"Coffee": 30}).readmit(request)
    assert (rows.tolist(), columns.tolist(), restored.tolist()) == ([0], [0], [5.0])
    assert BusinessRules(repurchase_days={"coffee": 30}).explain(np.array([[0, 1], [1, -1]]), request).tolist() == \
        [["bought again (coffee: every 30 days)", ""], ["", ""]]
    request.last_seen = None  # no timestamps: nothing comes back
    assert len(BusinessRules(repurchase_days={"coffee": 30}).readmit(request)[0]) == 0


def test_a_repurchased_item_still_obeys_the_filters() -> None:
    request, masked = repurchase_request(SCORES)
    rules = BusinessRules(repurchase_days={"coffee": 30}, exclude_categories=["coffee"])
    rows, columns, restored = rules.readmit(request)
    masked[rows, columns] = restored  # what the Recommender does before the adjusters
    assert not np.isfinite(rules.adjust(masked, request)[:, [0, 4]]).any()


def test_explanations_name_the_rule() -> None:
    rules = BusinessRules(pinned=["d"], promoted={"a": 1.5})
    items = np.array([[3, 0, 1], [3, -1, -1]])
    assert rules.explain(items, bare_request(2, catalogue())).tolist() == [["pinned", "promoted x1.5", ""],
                                                                           ["pinned", "", ""]]


def test_rules_that_filter_everything_leave_rows_of_minus_infinity() -> None:
    rules = BusinessRules(include_categories=["nothing"], pinned=["a"], promoted={"a": 2.0})
    result = adjusted(rules)
    assert result.shape == SCORES.shape and np.isneginf(result).all()
    assert rules.explain(np.full((2, 3), -1), bare_request(2, catalogue())).tolist() == [["", "", ""]] * 2


def test_a_rule_without_its_column_names_it() -> None:
    with pytest.raises(ConfigError, match=r"'category'.*columns: \['price'\]"):
        adjusted(BusinessRules(include_categories=["tea"]), plain({"price": [1, 2, 3, 4, 5]}))
    with pytest.raises(ConfigError, match="'cost'"):
        adjusted(BusinessRules(min_price=1, price_column="cost"))
    with pytest.raises(DataError, match="'price'.*'cheap'"):
        adjusted(BusinessRules(min_price=1), plain({"price": [1, "cheap", 3, 4, 5]}))
    with pytest.raises(DataError, match="'available_from'.*'soon'"):
        adjusted(BusinessRules(), plain({"available_from": ["soon", None, None, None, None]}))


def test_max_share_caps_each_brand() -> None:
    request = bare_request(2, catalogue())
    items = np.array([[0, 1, 2, 3, 4], [1, 0, 4, -1, -1]])
    scores = np.array([[9, 8, 7, 6, 5], [9, 8, 7, -INF, -INF]], np.float32)
    # n=3, share 0.34 -> 1 slot per brand: row 0 X(a), Y(d), Z(e); row 1 X(b), Z(e), then the pool runs out
    chosen, values = MaxShare(max_share=0.34).rerank(items, scores, request, 3)
    np.testing.assert_array_equal(chosen, [[0, 3, 4], [1, 4, -1]])
    np.testing.assert_array_equal(values, [[9, 6, 5], [9, 7, -INF]])
    # share 0.67 -> 2 slots per brand
    chosen, _ = MaxShare(max_share=0.67).rerank(items, scores, request, 3)
    np.testing.assert_array_equal(chosen, [[0, 1, 3], [1, 0, 4]])
    with pytest.raises(ConfigError, match="'vendor'"):
        MaxShare(column="vendor").rerank(items, scores, request, 3)


# -- the rules file ----------------------------------------------------------------------------------------------

EXAMPLE = """\
exclude_categories = ["alcohol"]
min_price = 5
max_price = 200
pinned = ["sku-1", "sku-7"]
[promoted]
"sku-3" = 1.5
[repurchase_days]
"coffee" = 30
[max_share]
column = "brand"
max_share = 0.3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_load_rules_reads_every_setting(tmp_path) -> None:
    rules, share = load_rules(write(tmp_path, EXAMPLE))
    assert vars(rules) == vars(BusinessRules(
        exclude_categories=["alcohol"], min_price=5, max_price=200, pinned=["sku-1", "sku-7"], promoted={"sku-3": 1.5},
        repurchase_days={"coffee": 30}))
    assert (share.column, share.max_share, share.pool_factor) == ("brand", 0.3, 5)
    assert [type(stage) for stage in load_rules(write(tmp_path, "pinned = []"))] == [BusinessRules]


@pytest.mark.parametrize(("text", "expected"), [
    ("min_price = 5\nmax_price = = 3\n", r"invalid TOML.*line 2"),
    ("min_price = 5\nmax_prise = 3\n", r"line 2, key 'max_prise': unknown key; valid keys: include_categories"),
    ("pinned = ['a']\nmax_price = \"cheap\"\n", r"line 2, key 'max_price': must be a number, got 'cheap'"),
    ("pinned = 'a'\n", r"line 1, key 'pinned': must be a list of strings"),
    ("min_price = 50\n\nmax_price = 20\n", r"line 1, key 'min_price': min_price 50 is above max_price 20"),
    ("pinned = []\n[repurchase_days]\ntea = 10\n'coffee' = -3\n",
     r"line 4, key 'repurchase_days.coffee': must be a number of days >= 0"),
    ("[promoted]\n\"sku-3\" = 0\n", r"line 2, key 'promoted.sku-3': must be a factor > 0"),
    ("promoted = { a = \"x\" }\n", r"line 1, key 'promoted': must be a table of numbers"),
    ("[max_share]\ncolumn = 'brand'\nmax_share = 1.5\n", r"line 3, key 'max_share.max_share': must be in \(0, 1\]"),
    ("[max_share]\nmax_share = 0\n", r"line 2, key 'max_share.max_share'"),
    ("[max_share]\ncolum = 'brand'\n", r"line 2, key 'max_share.colum': unknown key; valid keys: column, max_share"),
    ("max_share = 0.3\n", r"line 1, key 'max_share': must be a table"),
])
def test_rules_file_errors_name_file_line_and_key(tmp_path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as error:
        load_rules(path)
    assert str(path) in str(error.value)


def test_a_missing_rules_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="rules file .*nowhere.toml"):
        load_rules(tmp_path / "nowhere.toml")


def test_fit_checks_settings_made_in_code() -> None:
    with pytest.raises(ConfigError, match="'promoted.a'"):
        BusinessRules(promoted={"a": -1.0}).fit(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'max_share'"):
        MaxShare(max_share=2.0).fit(None)  # type: ignore[arg-type]


# -- inside a pipeline ---------------------------------------------------------------------------------------------

ITEMS = pd.DataFrame({
    "item_id": ["beer", "wine", "coffee", "tea", "cake", "bread", "caviar"],
    "category": ["alcohol", "alcohol", "coffee", "tea", "bakery", "bakery", "deli"],
    "brand": ["B1", "B1", "B2", "B2", "B2", "B3", "B4"],
    "price": [8.0, 15.0, 9.0, 6.0, 7.0, 5.5, 900.0],
})
PIPELINE_RULES = """\
exclude_categories = ["alcohol"]
min_price = 5
max_price = 200
pinned = ["bread"]
[repurchase_days]
coffee = 30
"""


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """Popularity: beer > wine > coffee > tea > cake > bread > caviar; u0 bought coffee 40 days before NOW, u1 10 days
    before, u2 bought tea 40 days before."""
    counts = {"beer": 7, "wine": 6, "coffee": 5, "tea": 4, "cake": 3, "bread": 2, "caviar": 1}
    rows = [(f"x{i}", item, NOW.timestamp() - 100 * 86_400) for item, count in counts.items() for i in range(count)]
    rows += [("u0", "coffee", NOW.timestamp() - 40 * 86_400), ("u1", "coffee", NOW.timestamp() - 10 * 86_400),
             ("u2", "tea", NOW.timestamp() - 40 * 86_400)]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), items=ITEMS)


def recommend(recommender: Recommender, n: int = 3) -> dict[str, list[tuple[str, str]]]:
    frame = recommender.recommend(["u0", "u1", "u2"], n, context=Context(NOW), explain=True)
    return {user: list(zip(group["item_id"], group["reasons"])) for user, group in frame.groupby("user_id")}


def test_rules_in_a_pipeline(dataset, tmp_path) -> None:
    recommender = Recommender(create_scorer("popularity"), stages=load_rules(write(tmp_path, PIPELINE_RULES)))
    lists = recommend(recommender.fit(dataset))
    # alcohol and caviar (price) are out, bread is pinned first, u0's coffee is due again, u1's and u2's tea are not
    assert [item for item, _ in lists["u0"]] == ["bread", "coffee", "tea"]
    assert [item for item, _ in lists["u1"]] == ["bread", "tea", "cake"]
    assert [item for item, _ in lists["u2"]] == ["bread", "coffee", "cake"]
    assert lists["u0"][0][1].endswith("pinned") and lists["u0"][1][1].endswith("bought again (coffee: every 30 days)")
    save_model(recommender, tmp_path / "model")
    assert recommend(load_model(tmp_path / "model")) == lists


def test_max_share_in_a_pipeline(dataset, tmp_path) -> None:
    text = "exclude_categories = ['alcohol']\n[max_share]\ncolumn = 'brand'\nmax_share = 0.25\n"
    recommender = Recommender(create_scorer("popularity"), stages=load_rules(write(tmp_path, text))).fit(dataset)
    # 4 slots, 1 per brand: u2 (tea seen) gets coffee (B2), bread (B3), caviar (B4); cake would be B2's second
    assert [item for item, _ in recommend(recommender, 4)["u2"]] == ["coffee", "bread", "caviar"]


def test_a_rule_set_that_filters_everything_returns_empty_lists(dataset, tmp_path) -> None:
    recommender = Recommender(create_scorer("popularity"), stages=load_rules(write(tmp_path, "max_price = 1\n")))
    frame = recommender.fit(dataset).recommend(["u0", "u1"], 5, context=Context(NOW), explain=True)
    assert frame.empty
    few = Recommender(create_scorer("popularity"), stages=load_rules(write(tmp_path, "include_categories = ['tea']\n")))
    assert few.fit(dataset).recommend(["u0", "u2"], 5, context=Context(NOW))["item_id"].tolist() == ["tea"]
