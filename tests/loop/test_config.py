from pathlib import Path

import pytest

from tailored.errors import ConfigError
from tailored.loop.config import load_loop_config, parse_loop_config

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "loop.example.toml"


def test_the_example_config_loads_with_paths_from_its_folder() -> None:
    config = load_loop_config(EXAMPLE)
    assert config.registry_folder == EXAMPLE.parent / "registry"
    assert config.data.db == f"sqlite:///{EXAMPLE.parent / 'tailored.db'}"
    assert config.canary.share == 10 and config.gate.metric == "ndcg@10"


@pytest.mark.parametrize(("document", "message"), [
    ({"dat": {}}, "l.toml: unknown table(s) ['dat']"),
    ({"data": {"windo_days": 3}}, "l.toml: Unknown [data] setting(s) ['windo_days']"),
    ({"data": {"window_days": 0}}, "l.toml: [data] window_days: 0"),
    ({"data": {"window_days": "soon"}}, "l.toml: "),
    ({"model": {"algorithm": "nope"}}, "l.toml: [model] algorithm/params: Unknown algorithm 'nope'"),
    ({"model": {"algorithm": "als", "params": {"factor": 3}}}, "l.toml: [model] algorithm/params"),
    ({"registry": {"name": "a@b"}}, "l.toml: [registry] name"),
    ({"test": {"users": 1}}, "l.toml: [test] users"),
    ({"gate": {"metric": "coverage@10"}}, "l.toml: [gate] metric"),
    ({"gate": {"guardrails": ["ndcg@ten"]}}, "l.toml: [gate] guardrails"),
    ({"canary": {"share": 80}}, "l.toml: [canary] share: 80"),
    ({"canary": {"metric": "ndcg"}}, "l.toml: [canary] metric"),
    ({"canary": {"guardrails": ["p99_ms<30"]}}, "l.toml: [canary] guardrails"),
    ({"canary": {"on_timeout": "ship"}}, "l.toml: [canary] on_timeout"),
    ({"loop": {"retrain": "sometimes"}}, "l.toml: [loop] retrain"),
    ({"data": {"interactions": "missing.csv"}}, "l.toml: [data] interactions"),
    ({"loop": {"alert_rules": "missing.toml"}}, "l.toml: [loop] alert_rules: Alert rules file"),
])
def test_errors_name_the_file_table_and_field(document: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_loop_config(document, "l.toml")
    assert str(raised.value).startswith(message)


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_loop_config(tmp_path / "loop.toml")
    (tmp_path / "loop.toml").write_text("[data\n")
    with pytest.raises(ConfigError, match="loop.toml is not valid TOML"):
        load_loop_config(tmp_path / "loop.toml")
