from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from tailored.errors import ConfigError
from tailored.experiments.assignment import EXCLUDED, HOLDOUT, Assignment, hash_id, hash_ids, salt_key

IDS = np.array([f"user{i}" for i in range(1_000_000)])


def test_golden_values_pin_the_hash_across_versions() -> None:
    assert salt_key("exp") == 0x63D337E24D61C62E
    assert hash_ids(["user-42", "", "é漢字😀"], "exp").tolist() == [
        10191492791120857315, 3657503330297139615, 9545006566918385469]
    assert Assignment("exp", {"control": 50, "treatment": 50}).assign(["u1", "u2", "u3", "u4"]).tolist() == [
        "control", "treatment", "treatment", "control"]


def test_an_id_hashes_alike_alone_in_a_batch_and_as_an_int() -> None:
    batch = hash_ids(np.array(["a", "abcdefghijklmnop", "42"]), "s")
    assert hash_ids(["a"], "s")[0] == batch[0]
    assert hash_ids([42], "s")[0] == batch[2]
    assert len(set(hash_ids(["a", "a\x00b", "ab", "ba", "b"], "s").tolist())) == 5


def test_a_million_ids_split_fifty_fifty_within_a_third_of_a_percent() -> None:
    codes = Assignment("checkout-2026", {"control": 50, "treatment": 50}).codes(IDS)
    assert abs(np.mean(codes == 0) - 0.5) < 0.003
    three = Assignment("three", {"control": 45, "treatment": 45, "holdout": 10}).codes(IDS)
    assert np.allclose(np.bincount(three) / len(IDS), [0.45, 0.45, 0.10], atol=0.003)


def test_two_salts_split_independently() -> None:
    first = Assignment("a", {"control": 50, "treatment": 50}).codes(IDS[:200_000])
    second = Assignment("b", {"control": 50, "treatment": 50}).codes(IDS[:200_000])
    table = np.histogram2d(first, second, bins=2)[0]
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert 0.45 < np.mean(first == second) < 0.55


def test_the_same_user_gets_the_same_arm_in_another_process() -> None:
    assignment = Assignment("sticky", {"control": 30, "treatment": 70})
    here = assignment.assign(IDS[:1000]).tolist()
    script = ("import numpy as np, json; from tailored.experiments.assignment import Assignment; "
              "print(json.dumps(Assignment('sticky', {'control': 30, 'treatment': 70}).assign("
              "[f'user{i}' for i in range(1000)]).tolist()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert there.stdout.strip() == str(here).replace("'", '"')
    assert assignment.arm_of("user7") == here[7]


def test_holdout_is_the_same_users_in_every_experiment_and_excluded_users_are_in_no_arm() -> None:
    ids = IDS[:100_000]
    first = Assignment("one", {"control": 50, "treatment": 50}, holdout=0.05, excluded={"user3"}).assign(ids)
    second = Assignment("two", {"a": 20, "b": 80}, holdout=0.05).assign(ids)
    assert abs(np.mean(first == HOLDOUT) - 0.05) < 0.003
    held = (first == HOLDOUT) & (ids != "user3")
    assert np.array_equal(held, (second == HOLDOUT) & (ids != "user3"))
    assert first[3] == EXCLUDED
    assert abs(np.mean(second[second != HOLDOUT] == "a") - 0.2) < 0.005


@pytest.mark.parametrize(("arms", "holdout", "message"), [
    ({"control": 50, "treatment": 49}, 0.0, "Traffic shares 50,49 sum to 99, not 100: fix the 'traffic' field"),
    ({"control": 50.0, "treatment": 50}, 0.0, "Traffic share of arm 'control' is 50.0: give a whole percentage"),
    ({"control": 110, "treatment": -10}, 0.0, "Traffic share of arm 'treatment' is -10"),
    ({"control": 50, "treatment": 50}, 1.0, "Holdout fraction is 1.0: give a fraction in [0, 1)"),
    ({"control": 50, "holdout": 50}, 0.1, "Arm name 'holdout' is reserved while a holdout fraction is set"),
])
def test_bad_shares_are_named(arms: dict[str, int], holdout: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)")):
        Assignment("x", arms, holdout=holdout)


def test_one_users_arm_in_plain_integers_equals_the_batch() -> None:
    """The service's per-request path (`Assignment.arm_of`, `hash_id`) gives the vectorised answer for any text."""
    rng = np.random.default_rng(3)
    ids = ["".join(chr(code) for code in rng.integers(32, 0x2FF, rng.integers(1, 40))) for _ in range(5_000)]
    ids += ["42", "é", "user-1", "x" * 201]
    assert [hash_id(user, "salt") for user in ids] == hash_ids(np.array(ids), "salt").tolist()
    split = Assignment("s", {"a": 45, "b": 45, "c": 10}, holdout=0.05, excluded=frozenset(ids[:50]))
    assert [split.arm_of(user) for user in ids] == split.assign(ids).tolist()
