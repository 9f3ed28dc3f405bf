"""The attribute-based cold-start model and the Recommender's attribute-aware fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.jobs import tasks as jobs
from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models import create_scorer
from tailored.data.features import attribute_columns, attribute_problems, attribute_vocabulary, readable
from tailored.models.demographic import DemographicScorer
from tailored.models.popularity import PopularityScorer
from tailored.pipeline.recommender import Recommender
from tailored.query import parse_context
from tailored.registry.model_dir import load_model, save_model
from tests.cli.helpers import cli, flat, ok


def two_segments() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment 'a' (100 users) buys items a0..a4, segment 'b' (200 users) items b0..b4, globally more popular.

    Ridge shrinks a segment towards the global mean by ``n / (n + reg)``: with the default reg of 100, segments
    of a hundred users or more are clearly heard.
    """
    rows = [(f"ua{u}", f"a{i}") for u in range(100) for i in range(5)]
    rows += [(f"ub{u}", f"b{i}") for u in range(200) for i in range(5)]
    users = pd.DataFrame({"user_id": [f"ua{u}" for u in range(100)] + [f"ub{u}" for u in range(200)],
                          "segment": ["a"] * 100 + ["b"] * 200, "gender": ["F", "M"] * 150})
    return pd.DataFrame(rows, columns=["user_id", "item_id"]), users


def test_new_users_get_lists_that_depend_on_their_attributes() -> None:
    frame, users = two_segments()
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, users=users))
    assert isinstance(recommender.fallback_, DemographicScorer)
    newcomers = pd.DataFrame({"user_id": ["new-a", "new-b"], "segment": ["a", "b"], "gender": ["M", "F"]})
    lists = recommender.recommend(["ua0", "new-a", "new-b"], n=5, attributes=newcomers)
    assert lists["user_id"].drop_duplicates().tolist() == ["ua0", "new-a", "new-b"]  # input order kept
    by_user = lists.groupby("user_id")["item_id"].apply(set)
    assert by_user["new-a"] == {f"a{i}" for i in range(5)}
    assert by_user["new-b"] == {f"b{i}" for i in range(5)}


def test_explanations_of_users_without_history_name_the_attribute_that_raises_the_item() -> None:
    frame, users = two_segments()
    users = pd.concat([users, pd.DataFrame({"user_id": ["quiet-a"], "segment": ["a"], "gender": ["F"]})])
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, users=users))
    newcomers = pd.DataFrame({"user_id": ["new-a", "new-b"], "segment": ["a", "b"], "gender": ["M", "F"]})
    lists = recommender.recommend(["quiet-a", "new-a", "new-b", "ua0"], n=5, attributes=newcomers, explain=True)
    reasons = lists.groupby("user_id")["reasons"].apply(set)
    assert reasons["quiet-a"] == reasons["new-a"] == {"more popular with segment=a"}
    assert reasons["new-b"] == {"more popular with segment=b"}
    assert not any("more popular" in reason for reason in reasons["ua0"])  # a user with history: items like theirs
    # the visitor without attributes gets the popular items, which no attribute of theirs explains
    assert set(recommender.recommend(["visitor"], n=5, explain=True)["reasons"]) == {""}


def test_attribute_reasons_need_a_lift_and_read_like_sentences() -> None:
    frame, users = two_segments()
    model = DemographicScorer().fit(Dataset.from_frame(frame, users=users.assign(age=np.arange(300) % 60 + 18)))
    row = model.indicators(pd.DataFrame({"segment": ["b"], "gender": ["F"], "age": [70]}))
    items = Dataset.from_frame(frame).items.index(np.array(["b0", "a0"]))
    # b0: segment b raises it; a0: nothing the user holds raises it by 10% of its mean rate
    assert model.attribute_reasons(row[[0, 0]], items).tolist() == ["more popular with segment=b", ""]
    assert readable("age=[-inf,23)") == "age under 23" and readable("age=[46,inf)") == "age 46 or more"
    assert readable("age=[23,29)&gender=F") == "age 23-29 and gender=F" and readable("dept=R&D") == "dept=R&D"


def test_the_demographic_algorithm_scores_new_users_alone() -> None:
    """Under `demographic` itself the fallback (another demographic model) is not added: the list's scores are the
    model's rates."""
    frame, users = two_segments()
    recommender = Recommender(create_scorer("demographic")).fit(Dataset.from_frame(frame, users=users))
    newcomers = pd.DataFrame({"user_id": ["new-a"], "segment": ["a"], "gender": ["F"]})
    lists = recommender.recommend(["new-a"], n=3, attributes=newcomers)
    rates = recommender.scorer.score_attributes(newcomers)[0]
    np.testing.assert_allclose(lists["score"], np.sort(rates)[::-1][:3], rtol=1e-6)


def test_an_unseen_or_missing_attribute_counts_as_the_training_users_average() -> None:
    frame, users = two_segments()
    dataset = Dataset.from_frame(frame, users=users)
    scorer = DemographicScorer().fit(dataset)
    strangers = pd.DataFrame({"user_id": ["x", "y"], "segment": ["zzz", None]})  # unseen value, missing; no gender
    rate = np.asarray(dataset.matrix(binary=True).mean(axis=0)).ravel()  # each item's share of users: popularity
    np.testing.assert_allclose(scorer.score_attributes(strangers), np.vstack([rate, rate]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scorer.score(np.array([-1])), rate[None, :], rtol=1e-5, atol=1e-6)  # an unknown user
    # gender is F for half the training users: "segment a, gender unknown" is the mean of a/F and a/M
    both = scorer.score_attributes(pd.DataFrame({"segment": ["a", "a", "a"], "gender": ["F", "M", "?"]}))
    np.testing.assert_allclose(both[2], both[:2].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(both[2], rate, atol=1e-3)  # the known segment still counts


def test_a_session_is_steadied_by_its_users_attributes_when_they_are_known() -> None:
    """A new user with a session and attributes: the session's scores blended with their attribute scores, not
    with the anonymous visitor's (popularity)."""
    frame, users = two_segments()
    recommender = Recommender(create_scorer("item-knn")).fit(Dataset.from_frame(frame, users=users))
    context = parse_context(["recent=a0|b0"])  # one item of each segment: the session alone cannot tell
    newcomers = pd.DataFrame({"user_id": ["new-a", "new-b"], "segment": ["a", "b"], "gender": ["F", "F"]})
    lists = recommender.recommend(["new-a", "new-b", "visitor"], n=4, attributes=newcomers, context=context)
    by_user = lists.groupby("user_id")["item_id"].apply(set)
    assert by_user["new-a"] == {"a1", "a2", "a3", "a4"}
    assert by_user["new-b"] == by_user["visitor"] == {"b1", "b2", "b3", "b4"}  # segment b is the popular one


def test_users_known_only_by_attributes_at_training_time_are_scored_from_them() -> None:
    frame, users = two_segments()
    users = pd.concat([users, pd.DataFrame({"user_id": ["quiet-a"], "segment": ["a"], "gender": ["F"]})])
    recommender = Recommender(create_scorer("item-knn")).fit(Dataset.from_frame(frame, users=users))
    assert recommender.cold_user_models() == ["demographic"]
    assert set(recommender.recommend(["quiet-a"], n=5)["item_id"]) == {f"a{i}" for i in range(5)}


def test_popularity_remains_the_fallback_without_usable_attributes() -> None:
    frame, _ = two_segments()
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame))
    assert isinstance(recommender.fallback_, PopularityScorer)
    assert recommender.cold_user_models() == ["popularity"]


def test_needs_attributes() -> None:
    frame, _ = two_segments()
    with pytest.raises(DataError, match="needs user attributes"):
        DemographicScorer().fit(Dataset.from_frame(frame))


def test_recommend_job_reads_new_users_attributes_from_the_users_file(tmp_path) -> None:
    frame, users = two_segments()
    save_model(Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, users=users)), tmp_path / "model")
    new = pd.DataFrame({"user_id": ["n1", "n2"], "segment": ["a", "b"], "gender": ["F", "F"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    ids, attributes = jobs.read_users(tmp_path / "new.csv")
    lists = jobs.recommend(tmp_path / "model", ids, 3, attributes=attributes)
    first = lists.groupby("user_id")["item_id"].first()
    assert first["n1"].startswith("a") and first["n2"].startswith("b")


def test_a_segment_of_n_users_is_shrunk_towards_the_global_rate_by_n_over_n_plus_reg() -> None:
    """Two segments of 100 users each: 'a' users all take item x, 'b' users all take item y (global rate 0.5)."""
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in range(200)], "item_id": ["x"] * 100 + ["y"] * 100})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(200)], "segment": ["a"] * 100 + ["b"] * 100})
    dataset = Dataset.from_frame(frame, users=users)
    for reg in (100.0, 300.0):
        scores = DemographicScorer(reg=reg).fit(dataset).score_attributes(pd.DataFrame({"segment": ["a", "b"]}))
        x, y = dataset.items.index(np.array(["x", "y"]))
        shrunk = 0.5 + 0.5 * 100 / (100 + reg)
        np.testing.assert_allclose(scores[:, [x, y]], [[shrunk, 1 - shrunk], [1 - shrunk, shrunk]], rtol=1e-5)


def test_integer_codes_read_as_floats_because_of_a_missing_cell_keep_their_tokens() -> None:
    frame, users = two_segments()
    users["segment"] = users["segment"].map({"a": 1, "b": 2})  # integer codes at training time
    scorer = DemographicScorer().fit(Dataset.from_frame(frame, users=users))
    as_floats = pd.DataFrame({"segment": [1.0, 2.0, np.nan], "gender": ["F", "F", "F"]})  # NaN makes the column float
    as_ints = pd.DataFrame({"segment": [1, 2], "gender": ["F", "F"]})
    np.testing.assert_allclose(scorer.score_attributes(as_floats)[:2], scorer.score_attributes(as_ints), rtol=1e-6)
    assert not np.allclose(scorer.score_attributes(as_floats)[0], scorer.score_attributes(as_floats)[2])


def test_a_numeric_attribute_with_many_values_is_cut_into_bins_kept_with_the_model(tmp_path) -> None:
    """Raw ages (61 distinct values, more than ``max_categories``): the young buy y0..y4, the old o0..o4. They are cut
    at the users' quantiles, so a new user of 21 gets the young items and one of 66 the old ones, after a save and a
    load too; text that is not a number counts as unknown, and is named."""
    ages = np.arange(18, 79)
    rows = [(f"u{age}", f"{'y' if age < 48 else 'o'}{i}") for age in ages for i in range(5)]
    users = pd.DataFrame({"user_id": [f"u{age}" for age in ages], "age": ages})
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, users=users))
    assert isinstance(recommender.fallback_, DemographicScorer)
    save_model(recommender, tmp_path / "model")
    newcomers = pd.DataFrame({"user_id": ["young", "old", "unknown"], "age": ["21", "66", "n/a"]})
    for model in (recommender, load_model(tmp_path / "model")):
        lists = model.recommend(["young", "old"], n=5, attributes=newcomers).groupby("user_id")["item_id"].apply(set)
        assert lists["young"] == {f"y{i}" for i in range(5)} and lists["old"] == {f"o{i}" for i in range(5)}
        assert model.attribute_problems(newcomers) == ["age: 1 row(s) without a numeric value, scored as unknown"]
    vocabulary = attribute_vocabulary(users.drop(columns="user_id"), max_categories=50)
    assert vocabulary["columns"].tolist() == ["age"] and len(vocabulary["vocabulary"]) == 5


def test_a_numeric_attribute_of_a_small_users_table_is_binned_when_most_users_have_their_own_value() -> None:
    """40 users with an income each: fewer values than ``max_categories``, but a measurement, not 40 segments."""
    users = pd.DataFrame({"income": np.linspace(20_000, 80_000, 40), "children": np.arange(40) % 3})
    columns, edges = attribute_columns(users, max_categories=50)
    assert columns == ["income", "children"]
    assert not np.isnan(edges[0]).any() and np.isnan(edges[1]).all()  # income cut into bins, children categories


def countries() -> tuple[pd.DataFrame, pd.DataFrame]:
    """600 users in 60 countries of 10 users (a country's users buy items of its region, one of 4) and 60 users each
    alone in a country of their own; a zip code per user."""
    country = [f"c{i % 60}" for i in range(600)] + [f"alone{i}" for i in range(60)]
    region = [i % 60 % 4 for i in range(600)] + [i % 4 for i in range(60)]
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(660)], "country": country,
                          "zip": [f"0{1_000 + i}" for i in range(660)]})
    rows = [(f"u{u}", f"r{region[u]}-{(u + k) % 8}") for u in range(660) for k in range(4)]
    return pd.DataFrame(rows, columns=["user_id", "item_id"]), users


def test_a_column_of_many_values_is_a_category_when_most_users_share_theirs(tmp_path) -> None:
    """More countries than ``max_categories``: the 60 that 10 users share are categories, the 60 of one user count as
    unknown; a zip code per user stays out."""
    frame, users = countries()
    columns, _ = attribute_columns(users.drop(columns="user_id"), max_categories=50)
    assert columns == ["country"]
    vocabulary = attribute_vocabulary(users.drop(columns="user_id"), max_categories=50)["vocabulary"]
    assert len(vocabulary) == 60 and "country=alone3" not in vocabulary
    model = DemographicScorer().fit(Dataset.from_frame(frame, users=users))
    newcomers = pd.DataFrame({"user_id": ["n1", "n2", "n3", "n4"], "country": ["c1", "c2", "alone3", None]})
    top = np.argsort(-model.score_attributes(newcomers), axis=1)[:, :4]
    regions = [{item[:2] for item in Dataset.from_frame(frame).items.ids(row)} for row in top]
    assert regions[:2] == [{"r1"}, {"r2"}]
    np.testing.assert_allclose(*model.score_attributes(newcomers.iloc[2:]))  # a rare country is as good as none
    frame.to_csv(tmp_path / "events.csv", index=False)
    users.to_csv(tmp_path / "users.csv", index=False)
    said = flat(ok(cli("train", "--interactions", "events.csv", "--users", "users.csv", "--algorithm", "ease",
                       "--model-dir", "m", cwd=tmp_path)).stderr)
    assert ("user attributes used: country (the 60 most shared of 120 values, the others as unknown); left out: zip "
            "(a different value in every row)") in said


def test_attribute_problems_name_each_column_and_value_the_model_cannot_use() -> None:
    _, users = two_segments()
    vocabulary = attribute_vocabulary(users.drop(columns="user_id"), max_categories=50)
    good = pd.DataFrame({"user_id": ["n1"], "segment": ["a"], "gender": ["F"]})
    assert attribute_problems(vocabulary, good) == []
    bad = pd.DataFrame({"user_id": ["n1", "n2", "n3"], "segment": ["a", "zzz", None], "Gender": ["F", "M", "F"]})
    problems = attribute_problems(vocabulary, bad)
    assert problems == [
        "no column(s) 'gender' (trained on 'segment', 'gender'): scored as unknown",
        "column(s) 'Gender' not among the training attributes ('segment', 'gender'): ignored",
        "segment: 1 row(s) without a value, scored as unknown",
        "segment: value(s) not learnt in training (unseen or rare), scored as unknown: 'zzz' (1)",
    ]
    nothing = attribute_vocabulary(None, max_categories=50)
    assert "trained without usable user attributes" in attribute_problems(nothing, good)[0]
    assert attribute_problems(nothing, good[["user_id"]]) == []


def test_the_recommender_checks_only_the_users_it_does_not_know_and_keeps_the_check_when_saved(tmp_path) -> None:
    frame, users = two_segments()
    save_model(Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, users=users)), tmp_path / "model")
    recommender = load_model(tmp_path / "model")
    table = pd.DataFrame({"user_id": ["ua0", "new"], "segment": ["old-value", "a"], "gender": ["F", "X"]})
    assert recommender.attribute_problems(table) == [
        "gender: value(s) not learnt in training (unseen or rare), scored as unknown: 'X' (1)"]
    assert recommender.attribute_problems(table.iloc[:1]) == []  # ua0 is scored from its history


def test_recommend_warns_about_attribute_columns_and_values_it_cannot_use(tmp_path) -> None:
    frame, users = two_segments()
    frame.to_csv(tmp_path / "events.csv", index=False)
    users.to_csv(tmp_path / "users.csv", index=False)
    ok(cli("train", "--interactions", "events.csv", "--users", "users.csv", "--algorithm", "ease", "--model-dir", "m",
           cwd=tmp_path))
    new = pd.DataFrame({"user_id": ["n1", "n2"], "segment": ["a", "c"], "Gender": ["F", "M"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    result = ok(cli("recommend", "--model-dir", "m", "--users", "new.csv", "--k", "3", "--output", "r.csv",
                    cwd=tmp_path))
    said = flat(result.stdout + result.stderr)
    assert "warning: new.csv: no column(s) 'gender'" in said
    assert "column(s) 'Gender' not among the training attributes" in said
    assert "segment: value(s) not learnt in training (unseen or rare), scored as unknown: 'c' (1)" in said
    assert pd.read_csv(tmp_path / "r.csv")["user_id"].nunique() == 2  # warned, not refused
    clean = ok(cli("recommend", "--model-dir", "m", "--users", "users.csv", "--k", "3", "--output", "r2.csv",
                   cwd=tmp_path))
    assert "warning" not in clean.stdout + clean.stderr


def test_recommend_warns_about_ids_it_does_not_know_that_come_without_attributes(tmp_path) -> None:
    """A list of ids only: the unknown ones (a misspelt id, an id the training data spelt otherwise) can only get an
    anonymous visitor's list, and the command says so; known ids and users described by attributes or recent items
    do not warn."""
    frame, users = two_segments()
    frame.to_csv(tmp_path / "events.csv", index=False)
    users.to_csv(tmp_path / "users.csv", index=False)
    ok(cli("train", "--interactions", "events.csv", "--users", "users.csv", "--algorithm", "ease", "--model-dir", "m",
           cwd=tmp_path))
    pd.DataFrame({"user_id": ["ua0", "ua01", "zz"]}).to_csv(tmp_path / "ids.csv", index=False)
    said = flat(ok(cli("recommend", "--model-dir", "m", "--users", "ids.csv", "--k", "2", "--output", "r.csv",
                       cwd=tmp_path)).stderr)
    assert "warning: ids.csv: 2 user id(s) unknown to the model and without attributes, e.g. 'ua01', 'zz'" in said
    pd.DataFrame({"user_id": ["ua0", "new"], "segment": ["a", "b"]}).to_csv(tmp_path / "described.csv", index=False)
    for asked in (["--users", "described.csv"], ["--users", "ids.csv", "--context", "recent=a0"]):
        result = ok(cli("recommend", "--model-dir", "m", *asked, "--k", "2", "--output", "r.csv", cwd=tmp_path))
        assert "unknown to the model" not in flat(result.stderr)


def test_columns_training_left_out_vectors_included_are_named_once_and_not_warned_about_later(tmp_path) -> None:
    """A users table with a user embedding (arrays, which crashed training) and a customer number: both left out and
    said so at training; a file of new users with the same columns gets no warning about them."""
    frame, users = two_segments()
    users["embedding"] = [np.array([0.1, 0.2])] * len(users)
    users["customer_no"] = [f"c{n}" for n in range(len(users))]
    frame.to_csv(tmp_path / "events.csv", index=False)
    users.to_parquet(tmp_path / "users.parquet")
    said = flat(ok(cli("train", "--interactions", "events.csv", "--users", "users.parquet", "--algorithm", "ease",
                       "--model-dir", "m", cwd=tmp_path)).stderr)
    assert ("user attributes used: segment, gender; left out: embedding (vectors: user attributes are categories and "
            "numbers), customer_no (a different value in every row)") in said
    users.iloc[:2].assign(user_id=["n1", "n2"]).to_parquet(tmp_path / "new.parquet")
    result = ok(cli("recommend", "--model-dir", "m", "--users", "new.parquet", "--k", "3", "--output", "r.csv",
                    cwd=tmp_path))
    assert "warning" not in result.stdout + result.stderr


def test_new_users_are_scored_block_by_block_in_the_order_asked() -> None:
    frame, users = two_segments()
    recommender = Recommender(create_scorer("ease"), batch_size=2).fit(Dataset.from_frame(frame, users=users))
    ids = [f"new{k}" for k in range(5)]
    newcomers = pd.DataFrame({"user_id": ids, "segment": ["a", "b", "a", "b", "a"], "gender": ["F"] * 5})
    lists = recommender.recommend(["ua0", *ids], n=5, attributes=newcomers)
    assert lists["user_id"].drop_duplicates().tolist() == ["ua0", *ids]
    first = lists.groupby("user_id", sort=False)["item_id"].first()
    assert [first[user][0] for user in ids] == ["a", "b", "a", "b", "a"]
