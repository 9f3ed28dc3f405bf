"""One cycle of the improvement loop, as a resumable state machine.

A cycle reads the events (the store's, plus a file when configured), checks their quality (a failure stops the
cycle and raises an alert), measures drift against the champion (``NAME@production``), retrains a candidate on the
configured window, evaluates candidate and champion on a fresh temporal frozen sample (the last ``test.days`` of
events: trained on by neither) with a paired test over its users, and, when the candidate is not worse, registers it
and starts a canary experiment (control ``NAME@production``, treatment the candidate's version, shares
``100 - share`` / ``share``). Later cycles read the experiment (`jobs.experiments.status_of`) and promote the
candidate on "ship", stop it on "roll back", else wait (``canary.max_cycles``, then ``canary.on_timeout``).

The state lives in ``REGISTRY/NAME/loop-state.json``, written atomically after each step; each step is audited first
(the store's ``audit_log``, action ``loop:STEP``) and is idempotent: the candidate is registered once per cycle (its
manifest carries the cycle), the experiment is named after the version, a decision is written down before it is
acted on. A cycle killed at any point thus resumes where it stopped on the next run, and until a promotion the
champion keeps serving.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tailored.data.columns import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.io import read_table, write_table, write_text
from tailored.data.quality import QualityRules, check_quality
from tailored.errors import ConfigError, ConflictError, DataError
from tailored.eval.evaluator import evaluate_lists
from tailored.eval.significance import paired_test
from tailored.experiments.design import design_of
from tailored.jobs.experiments import status_of
from tailored.jobs.tasks import read_valid, recommend, train
from tailored.loop.config import LoopConfig
from tailored.monitoring.alerts import evaluate_day, load_rules
from tailored.monitoring.daily import day_of, default_days, store_days
from tailored.monitoring.drift import drift_report
from tailored.monitoring.training import record_training
from tailored.pipeline.recommender import Recommender
from tailored.registry.model_dir import MANIFEST, load_model, read_manifest
from tailored.registry.versions import ModelRegistry
from tailored.store import schema
from tailored.store.database import EventStore
from tailored.store.experiments import RUNNING, create_experiment, experiments, stop_experiment
from tailored.store.monitoring import add_alert
from tailored.store.schema import write_transaction

logger = logging.getLogger(__name__)

STATE = "loop-state.json"
WORK = ".loop"
"""The folder (under REGISTRY/NAME) of each cycle's frozen sample and candidate model."""
REFIT_WINDOW = "refit.csv"
"""The events of the last ``window_days`` up to the cycle's clock (``[test] refit``), in the cycle's folder."""
DAY = 86_400.0
IDLE, CHECKED, TRAINED, EVALUATED = "idle", "checked", "trained", "evaluated"
REGISTERED, CANARY = "registered", "canary"
COLUMNS = [USER_ID, ITEM_ID, VALUE, TIMESTAMP, EVENT_TYPE]
ACTOR = "tailored loop"
"""Who the registry's audit trail says promoted a candidate."""
QUALITY_RULE = "loop quality"
"""The alert a failed quality check raises (the monitoring's alerts table)."""
RECORD_BOOTSTRAP = 200
"""Bootstrap resamples of the training record's intervals (on the frozen sample)."""
WindowHook = Callable[[pd.DataFrame], pd.DataFrame]
"""Applied to the training window before the candidate is fitted (the benchmarks corrupt a window with it)."""


class Loop:
    """The loop of one config: its store, registry, state file and the steps of a cycle."""

    def __init__(self, config: LoopConfig, window_hook: WindowHook | None = None) -> None:
        self.config = config
        self.name = config.registry.name
        self.registry = ModelRegistry(config.registry_folder)
        self.store = EventStore(config.data.db, create=False)
        self.folder = config.registry_folder / self.name
        self.window_hook = window_hook

    # -- state and audit ---------------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.folder / STATE

    def state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"phase": IDLE, "cycle": 0, "clock": None, "work": {}}
        return json.loads(self.state_path.read_text())

    def _save(self, state: dict[str, Any]) -> None:
        write_text(json.dumps(state, indent=2), self.state_path)

    def _audit(self, step: str, detail: dict[str, Any]) -> None:
        """One row of the store's audit log (``loop:STEP``, the model's name, the step's figures)."""
        detail = json.loads(json.dumps(detail, default=_plain))
        with write_transaction(self.store.engine) as connection:
            connection.execute(schema.audit_log.insert().values(action=f"loop:{step}", subject=self.name,
                                                                detail=detail, at=time.time()))
        logger.info("loop step=%s model=%s %s", step, self.name, detail)

    def _step(self, state: dict[str, Any], step: str, phase: str, detail: dict[str, Any], report: dict[str, Any],
              **work: Any) -> None:
        """Audit a finished step, then move the state on (atomically)."""
        self._audit(step, detail | {"cycle": state["cycle"]})
        report["steps"].append({"step": step} | detail)
        state["phase"] = phase
        state["work"] = {} if phase == IDLE else state["work"] | work
        self._save(state)

    # -- the cycle -----------------------------------------------------------------------------------------------------
    def run_cycle(self) -> dict[str, Any]:
        """Run (or resume) one cycle; returns what it did: ``{"cycle", "steps": [{"step", ...}], "phase"}``."""
        state = self.state()
        report: dict[str, Any] = {"cycle": state["cycle"], "steps": []}
        if state["phase"] == CANARY and not self._decide(state, report):
            return report | {"phase": state["phase"]}
        if state["phase"] == IDLE and not self._check(state, report):
            return report | {"phase": state["phase"]}
        if state["phase"] == CHECKED:
            self._train(state, report)
        if state["phase"] == TRAINED:
            self._evaluate(state, report)
        if state["phase"] == EVALUATED:
            self._register(state, report)
        if state["phase"] == REGISTERED:
            self._canary(state, report)
        return report | {"cycle": state["cycle"], "phase": state["phase"]}

    def _check(self, state: dict[str, Any], report: dict[str, Any]) -> bool:
        """Begin a cycle: read the events, check their quality, measure drift, freeze the test sample."""
        frame = self.events()
        if frame.empty:
            self._audit("read", {"events": 0, "stopped": "no events to learn from"})
            report["steps"].append({"step": "read", "events": 0})
            return False
        clock = float(frame[TIMESTAMP].max())
        state["cycle"] += 1
        report["cycle"] = state["cycle"]
        test_start = clock - self.config.test.days * DAY
        start = test_start - self.config.data.window_days * DAY
        recent = frame[frame[TIMESTAMP] > start]
        new = int((frame[TIMESTAMP] > state["clock"]).sum()) if state["clock"] is not None else len(frame)
        self._audit("read", {"cycle": state["cycle"], "events": len(frame), "new_events": new, "in_window": len(recent),
                             "clock": clock})
        report["steps"].append({"step": "read", "events": len(frame), "new_events": new})
        if self.config.loop.alert_rules is not None:
            self._monitor(state["cycle"], clock, report)
        quality = check_quality(recent, QualityRules(max_future_seconds=None), source="the loop's window")
        rejected = len(quality.rejected) / max(len(recent), 1)
        detail = {"rows": len(recent), "rejected": len(quality.rejected), "rejected_share": rejected,
                  "findings": [f.message for f in quality.findings if f.count]}
        if rejected > self.config.data.max_rejected_share or quality.clean.empty:
            message = (f"the quality rules rejected {rejected:.1%} of the window's rows (more than "
                       f"[data] max_rejected_share = {self.config.data.max_rejected_share:.1%}): cycle stopped")
            self._audit("alert", {"cycle": state["cycle"], "rule": QUALITY_RULE, "severity": "critical",
                                  "message": message})
            add_alert(self.store, day_of(clock), QUALITY_RULE, "critical", message, rejected)
            self._step(state, "quality", IDLE, detail | {"failed": True}, report)
            report["alert"] = message
            return False
        clean = quality.clean
        sample = self._sample(clean[clean[TIMESTAMP] > test_start], state["cycle"])
        champion = self.champion()
        drift = drift_report(champion, sample) if champion is not None and len(sample) else None
        cycle_folder = self.folder / WORK / f"cycle-{state['cycle']:05d}"
        write_table(sample, cycle_folder / "sample.csv")
        window = clean[(clean[TIMESTAMP] > start) & (clean[TIMESTAMP] <= test_start)]
        write_table(window[COLUMNS], cycle_folder / "window.csv")
        if self.config.test.refit:  # the recipe's own window, up to the clock: what the registered model is fitted on
            write_table(clean[clean[TIMESTAMP] > clock - self.config.data.window_days * DAY][COLUMNS],
                        cycle_folder / REFIT_WINDOW)
        self._audit("quality", detail | {"failed": False, "cycle": state["cycle"]})
        report["steps"].append({"step": "quality"} | detail | {"failed": False})
        state["clock"] = clock  # the checks are saved with the drift step: a resumed cycle has both or neither
        verdict = drift.verdict if drift is not None else "no champion yet"
        self._step(state, "drift", CHECKED, {"verdict": verdict} | (_drift_figures(drift) if drift else {}), report,
                   folder=str(cycle_folder))
        if self.config.loop.retrain == "drift" and drift is not None and not verdict.startswith("significant"):
            self._step(state, "train", IDLE, {"skipped": f"drift check: {verdict}"}, report)
            return False
        if len(window) == 0:
            self._step(state, "train", IDLE, {"skipped": "no events in the training window"}, report)
            return False
        return True

    def _monitor(self, cycle: int, clock: float, report: dict[str, Any]) -> None:
        """The daily figures of the two days before the clock's (stored, replacing earlier ones) and the alert rules
        evaluated on them (`tailored monitor daily --alerts`); the alerts are stored for the dashboard."""
        rules = load_rules(Path(str(self.config.loop.alert_rules)))
        days = default_days(clock)
        store_days(self.store, days)
        raised = [alert for day in days for alert in evaluate_day(self.store, rules, day)]
        detail = {"days": days, "alerts": [alert["message"] for alert in raised]}
        self._audit("monitor", detail | {"cycle": cycle})
        report["steps"].append({"step": "monitor"} | detail)

    def _sample(self, recent: pd.DataFrame, cycle: int) -> pd.DataFrame:
        """The frozen test sample: the recent rows of at most ``test.users`` users (seeded per cycle)."""
        users = pd.unique(recent[USER_ID])
        if len(users) > self.config.test.users:
            rng = np.random.default_rng([self.config.test.seed, cycle])
            users = rng.choice(users, self.config.test.users, replace=False)
        return recent[recent[USER_ID].isin(users)][COLUMNS]

    def _fit(self, state: dict[str, Any], events: str, model_dir: str) -> Dataset:
        """Train the configured recipe on the cycle folder's ``events`` (a CSV name) into its ``model_dir``."""
        folder = Path(state["work"]["folder"])
        window = read_valid(folder / events)
        if self.window_hook is not None:
            window = self.window_hook(window)
        dataset = Dataset.from_frame(window)
        model = self.config.model
        train(dataset, model.algorithm, model.params, folder / model_dir,
              {"loop_cycle": state["cycle"], "window_days": self.config.data.window_days})
        return dataset

    def _train(self, state: dict[str, Any], report: dict[str, Any]) -> None:
        folder = Path(state["work"]["folder"])
        model = self.config.model
        dataset = self._fit(state, "window.csv", "candidate")
        gate = self.config.gate
        record = record_training(self.store, self.name, folder / "candidate", folder / "sample.csv",
                                 [gate.metric, *gate.guardrails], bootstrap=RECORD_BOOTSTRAP)
        self._step(state, "train", TRAINED, {"algorithm": model.algorithm, "interactions": len(dataset),
                                              "users": dataset.n_users, "items": dataset.n_items,
                                              "fingerprint": record["fingerprint"]}, report)

    def _evaluate(self, state: dict[str, Any], report: dict[str, Any]) -> None:
        """Candidate against champion on the frozen sample, paired over its users; no champion: nothing to beat."""
        folder = Path(state["work"]["folder"])
        champion = self.champion()
        if champion is None:
            self._step(state, "evaluate", EVALUATED, {"passed": True, "reason": "no champion yet"}, report)
            return
        gate = self.config.gate
        sample = read_valid(folder / "sample.csv")
        metrics = [gate.metric, *gate.guardrails]
        candidate = per_user_metrics(load_model(folder / "candidate"), sample, metrics)
        current = per_user_metrics(champion, sample, metrics)
        tests = {metric: paired_test(candidate[metric], current[metric], bootstrap=0) for metric in metrics}
        primary = tests[gate.metric]
        gain = primary.mean_a / primary.mean_b - 1 if primary.mean_b > 0 else (1.0 if primary.mean_a > 0 else 0.0)
        worse = [metric for metric in gate.guardrails if tests[metric].mean_difference < gate.min_gain
                 * tests[metric].mean_b and tests[metric].t_pvalue < gate.alpha]
        passed = gate.min_gain <= -1 or (gain >= gate.min_gain and not worse)
        reason = ("gate off" if gate.min_gain <= -1 else
                  f"relative gain {gain:+.2%} on {gate.metric} below [gate] min_gain {gate.min_gain:+.2%}"
                  if gain < gate.min_gain else f"significantly worse than min_gain on {', '.join(worse)}" if worse
                  else "not worse")
        detail = {"passed": passed, "reason": reason, "users": primary.n_users, "gain": gain,
                  "metrics": {metric: {"candidate": test.mean_a, "champion": test.mean_b,
                                       "p_value": test.t_pvalue} for metric, test in tests.items()}}
        self._step(state, "evaluate", EVALUATED if passed else IDLE, detail, report)

    def _register(self, state: dict[str, Any], report: dict[str, Any]) -> None:
        """Register the candidate once per cycle (a resumed cycle finds its version by the manifest's cycle); with
        ``[test] refit``, the recipe refitted on the last ``window_days`` up to the clock, every user's events (made
        once: a resumed cycle reuses it)."""
        folder = Path(state["work"]["folder"])
        refit = self.config.test.refit and (folder / REFIT_WINDOW).exists()  # not in a cycle checked before refits
        chosen = folder / ("final" if refit else "candidate")
        if refit and not (chosen / MANIFEST).exists():
            self._fit(state, REFIT_WINDOW, "final")
        candidate = read_manifest(chosen)
        mine = (state["cycle"], candidate.get("data_fingerprint"))
        version = next((found for found in self.registry.versions(self.name)
                        if _origin(read_manifest(self.folder / found)) == mine), None)
        version = version or self.registry.register(self.name, chosen)
        self._step(state, "register", REGISTERED, {"version": version, "refitted": refit}, report,
                   version=version)

    def _canary(self, state: dict[str, Any], report: dict[str, Any]) -> None:
        """No champion: promote the first candidate. Else start (or find, when resuming) its canary experiment."""
        version = state["work"]["version"]
        if self.registry.current(self.name, "production") is None:
            self.registry.promote(self.name, version, by=ACTOR, reason=f"loop cycle {state['cycle']}: first model")
            self._step(state, "promote", IDLE, {"version": version, "reason": "first model"}, report)
            return
        canary = self.config.canary
        experiment = f"{self.name}-{version}"
        known = {row["name"] for row in experiments(self.store)}
        if experiment not in known:
            design = design_of(experiment, [f"control={self.name}@production", f"treatment={self.name}@{version}"],
                               f"{100 - canary.share},{canary.share}", canary.metric, canary.guardrails,
                               canary.min_users, resolve=self.registry.resolve)
            try:
                create_experiment(self.store, experiment, design.surface, design.to_json())
            except ConflictError as error:  # another experiment holds the surface: try again next cycle
                self._audit("canary", {"cycle": state["cycle"], "waiting": str(error)})
                report["steps"].append({"step": "canary", "waiting": str(error)})
                return
        self._step(state, "canary", CANARY, {"experiment": experiment, "share": canary.share}, report,
                   experiment=experiment, canary_cycles=0)

    def _decide(self, state: dict[str, Any], report: dict[str, Any]) -> bool:
        """Read the running canary; act on a decision (written down first). True when the canary is over."""
        work = state["work"]
        if "action" not in work:
            status = status_of(self.store, work["experiment"])
            decision = str(status["decision"])
            found = status["lift"].get("treatment", {}).get(self.config.canary.metric, {})
            lift, (low, high) = found.get("value"), (found.get("ci") or [None, None])
            cycles = work["canary_cycles"] + 1
            if status["status"] != RUNNING:
                action = "keep"  # stopped by hand: the champion stays
            elif decision == "ship":
                action = "promote"
            elif decision.startswith("roll back"):
                action = "stop"
            elif cycles >= self.config.canary.max_cycles:
                action = timeout_action(self.config.canary.on_timeout, lift, low, high, self.config.canary.margin)
                decision = f"{decision} after {cycles} cycles: [canary] on_timeout = {self.config.canary.on_timeout}"
            else:
                self._step(state, "decide", CANARY, {"decision": decision, "lift": lift, "canary_cycles": cycles},
                           report, canary_cycles=cycles)
                return False
            self._step(state, "decide", CANARY, {"decision": decision, "lift": lift, "lift_low": low, "lift_high": high,
                                                 "action": action,
                                                 "arms": {arm: figures["users"]
                                                          for arm, figures in status["arms"].items()}},
                       report, action=action, decision=decision)
        work = state["work"]
        action, version, experiment = work["action"], work["version"], work["experiment"]
        if action == "promote" and self.registry.current(self.name, "production") != version:
            self.registry.promote(self.name, version, by=ACTOR,
                                  reason=f"loop cycle {state['cycle']}, canary {experiment}: {work['decision']}")
        if experiments(self.store, experiment)[0]["status"] == RUNNING:
            stop_experiment(self.store, experiment, f"loop: {work['decision']}"[:200])
        step = {"promote": "promote", "stop": "roll back", "keep": "stopped by hand"}[action]
        self._step(state, step, IDLE, {"version": version, "experiment": experiment}, report)
        return True

    # -- reads ---------------------------------------------------------------------------------------------------------
    def events(self) -> pd.DataFrame:
        """The configured event types of the store (and of the interactions file), in `COLUMNS`."""
        parts = [chunk[COLUMNS] for chunk in self.store.export_events()]
        if self.config.data.interactions is not None:
            parts.append(read_table(self.config.data.interactions).reindex(columns=COLUMNS))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
        frame = frame[frame[EVENT_TYPE].isin(self.config.data.event_types)]
        frame[TIMESTAMP] = pd.to_numeric(frame[TIMESTAMP], errors="coerce")
        return frame.reset_index(drop=True)

    def champion(self) -> Recommender | None:
        if self.registry.current(self.name, "production") is None:
            return None
        return load_model(self.registry.resolve(f"{self.name}@production"))

    def audit_trail(self) -> list[dict[str, Any]]:
        """The loop's audit rows of this model, oldest first."""
        log = schema.audit_log.c
        query = sa.select(schema.audit_log).where(log.action.like("loop:%") & (log.subject == self.name))
        with self.store.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.order_by(log.id))]


def per_user_metrics(model: Recommender, sample: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Each sample user's value of each metric for ``model``'s lists (users x metrics)."""
    users = pd.unique(sample[USER_ID])
    k = max(int(name.split("@")[1]) for name in metrics)
    lists = recommend(model, users, k)
    empty = pd.DataFrame({USER_ID: pd.Series(dtype=str), ITEM_ID: pd.Series(dtype=str)})
    return evaluate_lists(lists, sample, empty, metrics).per_user[metrics]


def timeout_action(rule: str, lift: float | None, low: float | None, high: float | None, margin: float) -> str:
    """What a canary still undecided at its last cycle does (``[canary] on_timeout``), from the lift's estimate and
    95 % interval: "promote" promotes the fresher model unless the canary shows it worse (the interval's upper end
    below 0, or an observed loss beyond ``margin``); "non-inferior" promotes only when the interval's lower end is
    above ``-margin``; "stop" keeps the champion. No estimate (no clicks yet): stop."""
    if rule == "stop" or lift is None or low is None or high is None:
        return "stop"
    if rule == "non-inferior":
        return "promote" if low >= -margin else "stop"
    return "promote" if high >= 0 and lift >= -margin else "stop"


def _origin(manifest: dict[str, Any]) -> tuple[Any, Any]:
    """The loop cycle and data fingerprint a registered version came from (None for versions made by hand)."""
    return manifest.get("loop_cycle"), manifest.get("data_fingerprint")


def _drift_figures(drift: Any) -> dict[str, float]:
    return {"item_popularity_psi": drift.item_popularity_psi, "noise_floor": drift.noise_floor,
            "user_activity_psi": drift.user_activity_psi, "new_user_share": drift.new_user_share,
            "new_item_share": drift.new_item_share}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise DataError(f"The loop cannot audit a {type(value).__name__}: {value!r}.")


EVERY = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}


def every_seconds(text: str) -> float:
    """``1d``, ``12h``, ``30m``, ``45s`` in seconds; a ConfigError naming ``--every`` otherwise."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        seconds = float(number) * EVERY[unit]
    except (KeyError, ValueError):
        raise ConfigError(f"--every {text!r}: write a number and a unit (s, m, h, d), e.g. 1d or 6h.") from None
    if not seconds > 0:
        raise ConfigError(f"--every {text!r} must be a positive duration.")
    return seconds


def run_every(config: LoopConfig, seconds: float, on_cycle: Callable[[dict[str, Any]], None],
              sleep: Callable[[float], None] = time.sleep) -> None:
    """A cycle every ``seconds`` (counted from each cycle's start), forever; ``on_cycle`` gets each report."""
    while True:
        started = time.monotonic()
        on_cycle(Loop(config).run_cycle())
        sleep(max(0.0, seconds - (time.monotonic() - started)))
