"""Policy specs: `parse_policy` reads ``NAME[:key=value,...]``, refuses what is wrong naming the field, and `spec_of`
writes back what it reads."""

from __future__ import annotations

import pytest

from tailored.errors import ConfigError
from tailored.policies.base import POLICIES, parse_policy, spec_of
from tailored.policies.epsilon import EpsilonGreedyPolicy
from tailored.policies.greedy import GreedyPolicy
from tailored.policies.softmax import SoftmaxPolicy
from tailored.policies.uniform import UniformPolicy


@pytest.mark.parametrize(("spec", "kind", "params"), [
    ("greedy", GreedyPolicy, {}),
    (" uniform ", UniformPolicy, {}),
    ("epsilon-greedy", EpsilonGreedyPolicy, {"epsilon": 0.1}),
    ("epsilon-greedy:epsilon=0.25", EpsilonGreedyPolicy, {"epsilon": 0.25}),
    ("epsilon-greedy:epsilon=0", EpsilonGreedyPolicy, {"epsilon": 0.0}),
    ("epsilon-greedy:epsilon=1", EpsilonGreedyPolicy, {"epsilon": 1.0}),
    ("softmax", SoftmaxPolicy, {"temperature": 0.5}),
    ("softmax: temperature = 2", SoftmaxPolicy, {"temperature": 2.0}),
])
def test_parse_policy_reads_names_and_parameters(spec: str, kind: type, params: dict) -> None:
    policy = parse_policy(spec)
    assert type(policy) is kind
    assert policy.params() == params


@pytest.mark.parametrize(("spec", "named"), [
    ("greedier", ["'greedier'", "epsilon-greedy", "softmax", "uniform"]),
    ("softmax:temp=0.5", ["temp", "temperature"]),
    ("greedy:epsilon=0.1", ["epsilon", "greedy"]),
    ("softmax:temperature=0", ["'softmax'.temperature=0", "> 0"]),
    ("softmax:temperature=-1", ["'softmax'.temperature=-1", "> 0"]),
    ("softmax:temperature=inf", ["'softmax'.temperature=inf"]),
    ("softmax:temperature=warm", ["'softmax'.temperature='warm'", "float"]),
    ("epsilon-greedy:epsilon=1.5", ["'epsilon-greedy'.epsilon=1.5", "[0, 1]"]),
    ("epsilon-greedy:epsilon=-0.1", ["'epsilon-greedy'.epsilon=-0.1", "[0, 1]"]),
    ("epsilon-greedy:epsilon=nan", ["'epsilon-greedy'.epsilon=nan", "[0, 1]"]),
    ("softmax:temperature", ["'temperature' is not key=value"]),
])
def test_parse_policy_errors_name_the_field(spec: str, named: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        parse_policy(spec)
    for text in named:
        assert text in str(error.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        SoftmaxPolicy(temperature=0.0)
    with pytest.raises(ConfigError, match="epsilon"):
        EpsilonGreedyPolicy(epsilon=2.0)


@pytest.mark.parametrize("spec", ["greedy", "uniform", "epsilon-greedy:epsilon=0.3", "softmax:temperature=0.05"])
def test_spec_of_writes_the_spec_back(spec: str) -> None:
    assert spec_of(parse_policy(spec)) == spec


@pytest.mark.parametrize("name", POLICIES.names())
def test_spec_of_round_trips_every_policy(name: str) -> None:
    policy = POLICIES[name]()
    again = parse_policy(spec_of(policy))
    assert type(again) is type(policy)
    assert again.params() == policy.params()
    assert spec_of(again) == spec_of(policy)
