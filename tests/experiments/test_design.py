"""`design_of`: every bad option gets an error naming it, and nothing is made of a bad design."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailored.errors import ConfigError
from tailored.experiments.design import Design, design_of

ARMS = ["control=shop@production", "treatment=shop@v0002", "holdout=baseline"]


def registry(reference: str) -> Path:
    if reference not in ("shop@production", "shop@v0002"):
        raise ConfigError(f"No version of {reference.partition('@')[0]!r} is at {reference.partition('@')[2]!r}.")
    return Path("/registry") / reference


def test_a_design_round_trips_through_json_and_splits_as_its_shares() -> None:
    design = design_of("ranker", ARMS, "45,45,10", "click_rate", ["p99_ms<=30", "conversion>=0.01"], 500,
                       resolve=registry)
    assert Design.from_json(design.to_json()) == design
    assert [(arm.name, arm.ref, arm.share) for arm in design.arms] == [
        ("control", "shop@production", 45), ("treatment", "shop@v0002", 45), ("holdout", "baseline", 10)]
    assert [str(rail) for rail in design.guardrails] == ["p99_ms<=30", "conversion>=0.01"]
    assert design.guardrails[0].holds(29.9) and not design.guardrails[0].holds(30.1)
    assert len(design.salt) == 32 and design.salt != design_of("ranker", ARMS, "45,45,10", "click_rate").salt
    arms = design.assignment().assign([f"user-{index}" for index in range(20_000)])
    shares = {name: (arms == name).mean() for name in ("control", "treatment", "holdout")}
    assert shares == pytest.approx({"control": 0.45, "treatment": 0.45, "holdout": 0.10}, abs=0.015)


@pytest.mark.parametrize(("arms", "traffic", "metric", "guardrails", "message"), [
    (ARMS, "45,45", "click_rate", [], "--traffic '45,45': give one share per --arm \\(3\\)"),
    (ARMS, "45,45,20", "click_rate", [], "--traffic '45,45,20': the shares sum to 110, not 100"),
    (ARMS, "45,45,x", "click_rate", [], "each share is a whole percentage"),
    (ARMS, "45,45,10", "ctr", [], "--metric 'ctr': choose one of click_rate"),
    (ARMS, "45,45,10", "click_rate", ["p99<30"], "--guardrail 'p99<30': write METRIC<=BOUND"),
    (ARMS, "45,45,10", "click_rate", ["speed<=3"], "unknown metric 'speed'"),
    (["control=shop@production"], "100", "click_rate", [], "at least two arms"),
    (["control=shop@production", "control=shop@v0002"], "50,50", "click_rate", [], "arm names must differ"),
    (["control=shop@production", "treatment=shop@v0009"], "50,50", "click_rate", [],
     "--arm 'treatment=shop@v0009': No version of 'shop' is at 'v0009'"),
    (["control=shop@production", "treatment=shop"], "50,50", "click_rate", [], "is not NAME@VERSION"),
    (["control=shop@production", "treatment"], "50,50", "click_rate", [], "write NAME=MODEL_REF"),
])
def test_bad_options_are_named(arms, traffic, metric, guardrails, message) -> None:
    with pytest.raises(ConfigError, match=message):
        design_of("ranker", arms, traffic, metric, guardrails, resolve=registry)


def test_bad_names_and_minimum_users_are_named() -> None:
    with pytest.raises(ConfigError, match="--name 'a b'"):
        design_of("a b", ARMS, "45,45,10", "click_rate")
    with pytest.raises(ConfigError, match="--min-users 0"):
        design_of("ranker", ARMS, "45,45,10", "click_rate", min_users=0)
