"""Request-time stages through the command line: --calendar, --rules, --stage, --pipeline, --context, --explain,
and `tailored trending`, with their bad inputs (exit 2, file/line/key named, nothing written)."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.helpers import POOL, cli, flat, ok

DAY = 86_400
START = int(pd.Timestamp("2026-01-05", tz="UTC").timestamp())
CALENDAR = '[[event]]\nname = "Lent"\nstart = "03-01"\nend = "04-05"\nfactor = 0\ncategories = ["foie gras"]\n'
RULES = 'exclude_categories = ["wine"]\npinned = ["s7"]\n'
PIPELINE = '[[stage]]\nname = "recent-activity"\n[[stage]]\nname = "location"\ndecay_km = 2.0\n'


def shop_data(folder: Path) -> None:
    """60 customers, 20 shop items in Paris (foie gras, wine, bread...), 8 weeks of purchases, the last week rising."""
    rng = np.random.default_rng(3)
    categories = ["foie gras", "wine", "bread", "cheese"] * 5
    items = pd.DataFrame({"item_id": [f"s{i}" for i in range(20)], "category": categories,
                          "lat": 48.80 + 0.01 * np.arange(20), "lon": 2.35, "price": 5.0 + np.arange(20)})
    rows = [(f"c{rng.integers(60)}", f"s{rng.integers(20)}", START + int(rng.integers(56 * DAY))) for _ in range(300)]
    rows += [(f"c{rng.integers(60)}", "s3", START + 56 * DAY - int(rng.integers(6 * DAY))) for _ in range(40)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(folder / "history.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    pd.DataFrame({"user_id": [f"c{u}" for u in range(60)]}).to_csv(folder / "users.csv", index=False)
    (folder / "calendar.toml").write_text(CALENDAR)
    (folder / "rules.toml").write_text(RULES)
    (folder / "all_out.toml").write_text('max_price = 1\n')
    (folder / "pipeline.toml").write_text(PIPELINE)
    (folder / "bad_calendar.toml").write_text(CALENDAR.replace("factor = 0", "factor = 0\ncolour = \"red\""))
    (folder / "bad_rules.toml").write_text('exclude_categories = ["wine"]\nmax_price = "cheap"\n')
    (folder / "bad_pipeline.toml").write_text('[[stage]]\nname = "location"\n\n[[stage]]\nname = "teleport"\n')


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    shop_data(folder)
    ok(cli("train", "--interactions", "history.csv", "--items", "items.csv", "--algorithm", "item-knn",
           "--pipeline", "pipeline.toml", "--model-dir", "model", cwd=folder))
    return folder


def recommend(folder: Path, output: str, *extra: str) -> Future:
    return POOL.submit(cli, "recommend", "--model-dir", "model", "--users", "users.csv", "--k", "5",
                       "--output", output, *extra, cwd=folder)


def test_calendar_rules_location_and_reasons(shop: Path) -> None:
    march = recommend(shop, "march.csv", "--calendar", "calendar.toml", "--rules", "rules.toml", "--explain",
                      "--context", "date=2026-03-10T10:00", "--context", "lat=48.99", "--context", "lon=2.35")
    december = recommend(shop, "december.csv", "--calendar", "calendar.toml", "--context", "date=2026-12-10")
    nowhere = recommend(shop, "nowhere.csv", "--calendar", "calendar.toml", "--rules", "rules.toml",
                        "--context", "date=2026-03-10T10:00")
    empty = recommend(shop, "empty.csv", "--rules", "all_out.toml", "--context", "date=2026-03-10")
    trending = POOL.submit(cli, "trending", "--model-dir", "model", "--k", "3", "--output", "trending.csv", cwd=shop)
    ok(march.result())
    frame = pd.read_csv(shop / "march.csv")
    categories = pd.read_csv(shop / "items.csv").set_index("item_id")["category"]
    assert not frame["item_id"].map(categories).isin(["foie gras", "wine"]).any()  # Lent and the wine rule
    history = pd.read_csv(shop / "history.csv")
    bought_s7 = set(history.loc[history["item_id"] == "s7", "user_id"])
    firsts = frame[(frame["rank"] == 1) & ~frame["user_id"].isin(bought_s7)]  # a pin never shows a seen item
    assert len(firsts) and (firsts["item_id"] == "s7").all() and firsts["reasons"].str.contains("pinned").all()
    assert frame["reasons"].str.contains("km away").all()
    ok(nowhere.result())
    northern = {name: pd.read_csv(shop / name)["item_id"].str[1:].astype(int).mean()
                for name in ("march.csv", "nowhere.csv")}
    assert northern["march.csv"] > northern["nowhere.csv"] + 1, northern  # items further north: nearer 48.99 N
    ok(december.result())
    assert pd.read_csv(shop / "december.csv")["item_id"].map(categories).eq("foie gras").any()
    result = ok(empty.result())
    assert len(pd.read_csv(shop / "empty.csv")) == 0 and "60 user(s) got fewer than 5 items" in flat(result.stderr)
    ok(trending.result())
    assert pd.read_csv(shop / "trending.csv")["item_id"].iloc[0] == "s3"


def test_anonymous_session_through_context(shop: Path) -> None:
    (shop / "visitor.csv").write_text("user_id\nvisitor\n")
    ok(cli("recommend", "--model-dir", "model", "--users", "visitor.csv", "--k", "3", "--explain", "--output",
           "session.csv", "--context", "recent=s5|s9", "--context", "date=2026-03-03", cwd=shop))
    frame = pd.read_csv(shop / "session.csv")
    assert len(frame) == 3 and not frame["item_id"].isin(["s5", "s9"]).any()
    assert frame["reasons"].str.contains("goes with s|similar to s", regex=True).all()


BAD = {
    "calendar_key": (["--calendar", "bad_calendar.toml"], ["bad_calendar.toml", "line 6", "[[event]] #1", "colour"]),
    "rules_type": (["--rules", "bad_rules.toml"], ["bad_rules.toml", "line 2", "max_price", "cheap"]),
    "pipeline_stage": (["--pipeline", "bad_pipeline.toml"], ["bad_pipeline.toml", "line 4", "teleport", "location"]),
    "context_key": (["--context", "weather=rain"], ["weather", "Valid keys", "radius_km"]),
    "latitude": (["--context", "lat=123", "--context", "lon=2"], ["lat=123.0", "-90 to 90"]),
    "learning_stage": (["--stage", "seasonal"],
                       ["seasonal", "learns from the training interactions", "tailored train"]),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_stage_input_exits_2(shop: Path, name: str) -> None:
    extra, texts = BAD[name]
    result = recommend(shop, f"{name}.csv", *extra).result()
    message = flat(result.stderr)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    for text in texts:
        assert text in message, f"{text!r} not in {message!r}"
    assert not (shop / f"{name}.csv").exists()


def test_a_pipeline_table_named_after_the_algorithm_gives_its_parameters(shop: Path) -> None:
    """``[ranker]`` in the pipeline spec sets the ranker's parameters, ``--param`` overrides them, the stages still
    apply, and a table of another algorithm is only for that one."""
    (shop / "ranker.toml").write_text('[[stage]]\nname = "recent-activity"\n\n[ranker]\nretrievers = "ease"\n'
                                      'candidates = 5\ncontext = "none"\n\n[ease]\nreg = 3.0\n')
    (shop / "typo.toml").write_text('[rankr]\nretrievers = "ease"\n')
    (shop / "bad_param.toml").write_text('[ranker]\ncandidatez = 5\n')
    ok(cli("train", "--interactions", "history.csv", "--algorithm", "ranker", "--pipeline", "ranker.toml",
           "--param", "candidates=7", "--model-dir", "ranker-model", cwd=shop))
    from tailored.registry.model_dir import load_model

    model = load_model(shop / "ranker-model")
    assert (model.scorer.retrievers, model.scorer.candidates, model.scorer.context) == ("ease", 7, "none")
    assert [type(stage).__name__ for stage in model.stages][-1] == "RecentActivityBooster"
    for spec, texts in {"typo.toml": ["typo.toml", "rankr", "[ranker]"],
                        "bad_param.toml": ["candidatez"]}.items():
        result = cli("train", "--interactions", "history.csv", "--algorithm", "ranker", "--pipeline", spec,
                     "--model-dir", f"model-{spec}", cwd=shop)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert all(text in flat(result.stderr) for text in texts), flat(result.stderr)
        assert not (shop / f"model-{spec}").exists()
