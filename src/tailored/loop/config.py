"""``loop.toml``: what one cycle of the improvement loop reads, trains, evaluates and canaries.

Every table is a dataclass below; unknown tables and keys are errors, and each error names the file, the table and
the field (`load_loop_config`). Relative paths are read from the config file's folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailored.config import build_dataclass, read_toml
from tailored.errors import ConfigError


@dataclass(frozen=True)
class DataSection:
    """Where the interactions come from: the store's events (``db``), plus an optional file read each cycle."""

    db: str = "sqlite:///tailored.db"
    interactions: str | None = None
    event_types: list[str] = field(default_factory=lambda: ["click", "purchase"])
    """The event types trained on (the store holds clicks, purchases...)."""
    window_days: float = 28.0
    """The candidate is trained on this many days before the frozen test sample."""
    max_rejected_share: float = 0.05
    """The quality check fails (the cycle stops, with an alert) when its rules reject more of the new rows."""


@dataclass(frozen=True)
class ModelSection:
    algorithm: str = "als"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistrySection:
    folder: str = "registry"
    name: str = "shop"
    """The model's name in the registry: the champion is NAME@production."""


@dataclass(frozen=True)
class TestSection:
    """The frozen test sample: the last ``days`` of events (never trained on), at most ``users`` users of them."""

    days: float = 1.0
    users: int = 5000
    seed: int = 0
    refit: bool = True
    """Once the candidate passes the offline check, register the same recipe refitted on the last
    ``[data] window_days`` up to now (every user's events, the sample's days included, which the evaluated candidate
    never saw: what retraining by hand would fit on); false registers the evaluated model."""


@dataclass(frozen=True)
class GateSection:
    """The offline check of a candidate against the champion, paired over the sample's users."""

    metric: str = "ndcg@10"
    min_gain: float = -0.2
    """Minimum relative gain of the candidate on ``metric`` (-0.2 accepts a 20 % loss; -1 turns the gate off). The
    sample's events answer lists the champion chose, which favours the champion: a fresher, better model often
    scores 10-25 % below it there. The gate stops broken candidates; the canary judges the rest."""
    guardrails: list[str] = field(default_factory=lambda: ["recall@10"])
    """Metrics on which the candidate must not fall below ``min_gain`` significantly (paired t-test at ``alpha``)."""
    alpha: float = 0.05


@dataclass(frozen=True)
class CanarySection:
    """The online check: an experiment with the champion as control and the candidate at ``share`` percent."""

    share: int = 10
    metric: str = "click_rate"
    guardrails: list[str] = field(default_factory=list)
    """``METRIC<=BOUND`` / ``METRIC>=BOUND`` as `tailored experiments create --guardrail` takes them."""
    min_users: int = 500
    max_cycles: int = 3
    """Cycles the canary may run without a decision; then ``on_timeout`` decides."""
    on_timeout: str = "promote"
    """"promote": promote the candidate -- the fresher model -- unless the canary shows it worse (the lift's 95 %
    interval's upper end below 0, or an observed loss beyond ``margin``); "non-inferior": promote only when the
    interval's lower end is above ``-margin`` (a stricter rule, which needs a canary precise enough to resolve
    ``margin``); "stop": stop the experiment and keep the champion. A breached guardrail rolls back at once."""
    margin: float = 0.1
    """The relative loss on ``metric`` a timeout promotion may still allow (see ``on_timeout``)."""


@dataclass(frozen=True)
class LoopSection:
    retrain: str = "always"
    """"always": train a candidate every cycle; "drift": only when the drift check says retraining is due."""
    alert_rules: str | None = None
    """Alert rules (the monitoring's TOML): each cycle stores the daily figures of the two days before its clock's
    and evaluates the rules on them (as `tailored monitor daily --alerts` does)."""


SECTIONS: dict[str, type] = {"data": DataSection, "model": ModelSection, "registry": RegistrySection,
                             "test": TestSection, "gate": GateSection, "canary": CanarySection, "loop": LoopSection}


@dataclass(frozen=True)
class LoopConfig:
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    registry: RegistrySection = RegistrySection()
    test: TestSection = TestSection()
    gate: GateSection = GateSection()
    canary: CanarySection = CanarySection()
    loop: LoopSection = LoopSection()
    source: str = "loop.toml"
    """The file it was read from (for messages)."""

    @property
    def registry_folder(self) -> Path:
        return Path(self.registry.folder)


def parse_loop_config(document: dict[str, Any], source: str = "loop.toml", base_dir: str | Path = ".") -> LoopConfig:
    """Validate a loop document; a ConfigError naming ``source``, the table and the field."""
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {unknown}; valid tables: {sorted(SECTIONS)}.")
    sections = {}
    for name, cls in SECTIONS.items():
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table, got {table!r}.")
        try:
            sections[name] = build_dataclass(cls, table, f"[{name}]")
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None
    config = LoopConfig(**sections, source=source)
    config = _with_paths(config, Path(base_dir))
    _check(config)
    return config


def load_loop_config(path: str | Path) -> LoopConfig:
    path = Path(path)
    return parse_loop_config(read_toml(path, "Loop config")[0], str(path), path.parent)


def _with_paths(config: LoopConfig, base: Path) -> LoopConfig:
    """Relative file paths (and a relative SQLite file) read from the config's folder."""
    from dataclasses import replace

    def resolved(value: str | None) -> str | None:
        return None if value is None or Path(value).is_absolute() else str(base / value)

    data = config.data
    if data.db.startswith("sqlite:///") and not data.db.startswith("sqlite:////") and data.db != "sqlite:///:memory:":
        data = replace(data, db="sqlite:///" + str(base / data.db.removeprefix("sqlite:///")))
    if data.interactions is not None:
        data = replace(data, interactions=resolved(data.interactions) or data.interactions)
    registry = replace(config.registry, folder=resolved(config.registry.folder) or config.registry.folder)
    loop = replace(config.loop, alert_rules=resolved(config.loop.alert_rules) or config.loop.alert_rules)
    return replace(config, data=data, registry=registry, loop=loop)


def _check(config: LoopConfig) -> None:
    """What a cycle would otherwise find wrong only after reading the data."""
    from tailored.eval.evaluator import parse_metrics
    from tailored.experiments.design import design_of
    from tailored.experiments.statistics import METRICS
    from tailored.pipeline.recommender import build_recommender

    source = config.source

    def fail(table: str, key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: [{table}] {key}: {message}")

    data, test, gate, canary = config.data, config.test, config.gate, config.canary
    if not data.window_days > 0:
        raise fail("data", "window_days", f"{data.window_days} must be a positive number of days.")
    if not 0 <= data.max_rejected_share <= 1:
        raise fail("data", "max_rejected_share", f"{data.max_rejected_share} must be in [0, 1].")
    if not data.event_types or not all(isinstance(kind, str) and kind for kind in data.event_types):
        raise fail("data", "event_types", f"{data.event_types!r}: list at least one event type, e.g. [\"click\"].")
    if data.interactions is not None and not Path(data.interactions).exists():
        raise fail("data", "interactions", f"{data.interactions} does not exist.")
    try:
        build_recommender(config.model.algorithm, config.model.params)
    except ConfigError as error:
        raise fail("model", "algorithm/params", str(error)) from None
    if not config.registry.name or any(c in config.registry.name for c in "@/") or config.registry.name[0] == ".":
        raise fail("registry", "name", f"{config.registry.name!r} must be a plain name (no '@', '/', leading dot).")
    if not test.days > 0:
        raise fail("test", "days", f"{test.days} must be a positive number of days.")
    if test.users < 2:
        raise fail("test", "users", f"{test.users} must be at least 2 (the paired test needs users).")
    for key, names in (("metric", [gate.metric]), ("guardrails", gate.guardrails)):
        try:
            ranking, rating = parse_metrics(names) if names else ([], [])
        except ConfigError as error:
            raise fail("gate", key, str(error)) from None
        if rating or not all(metric.per_user for metric in ranking):
            raise fail("gate", key, f"{names}: use per-user ranking metrics such as ndcg@10 or recall@10.")
    if not gate.min_gain >= -1:
        raise fail("gate", "min_gain", f"{gate.min_gain} must be at least -1 (-1 turns the offline gate off).")
    if not 0 < gate.alpha < 1:
        raise fail("gate", "alpha", f"{gate.alpha} must be in (0, 1).")
    if not 1 <= canary.share <= 50:
        raise fail("canary", "share", f"{canary.share} must be a whole percentage from 1 to 50.")
    if canary.metric not in METRICS:
        raise fail("canary", "metric", f"{canary.metric!r}: choose one of {', '.join(METRICS)}.")
    try:  # the experiment the canary will start, checked now
        design_of("canary", ["control=baseline", "treatment=baseline"], f"{100 - canary.share},{canary.share}",
                  canary.metric, canary.guardrails, max(canary.min_users, 1))
    except ConfigError as error:
        raise fail("canary", "guardrails", str(error).replace("--guardrail ", "")) from None
    if canary.min_users < 1 or canary.max_cycles < 1:
        raise fail("canary", "min_users/max_cycles", "both must be at least 1.")
    if not 0 <= canary.margin < 1:
        raise fail("canary", "margin", f"{canary.margin} must be in [0, 1).")
    if canary.on_timeout not in ("promote", "non-inferior", "stop"):
        raise fail("canary", "on_timeout", f"{canary.on_timeout!r}: choose \"promote\", \"non-inferior\" or \"stop\".")
    if config.loop.retrain not in ("always", "drift"):
        raise fail("loop", "retrain", f"{config.loop.retrain!r}: choose \"always\" or \"drift\".")
    if config.loop.alert_rules is not None:
        from tailored.monitoring.alerts import load_rules

        try:
            load_rules(Path(config.loop.alert_rules))
        except ConfigError as error:
            raise fail("loop", "alert_rules", str(error)) from None
