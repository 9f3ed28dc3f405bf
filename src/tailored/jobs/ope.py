"""`tailored ope`: a target policy's expected reward per list estimated from a feedback log (`tailored.eval.ope`).

The target's probabilities come from the same composition as serving: for each logged list, the model's candidates
for the list's user (`candidates_of(model, Query(user), k)`, k = the list's last position) and the policy's exact
`marginals` over them, read at the logged (item, position). A logged item that is not among the candidates has
probability 0. Lists sharing a user and k share candidates (the model is deterministic), so the policy is asked once
per (user, k). A stateful policy (thompson, linucb) is evaluated in the state it is built in (its prior).

Without a model, the ``uniform`` policy draws from the catalogue of items seen in the log (every list the same
candidates): the Open Bandit Dataset's Random policy. Callers that know each list's candidates (the simulator) pass
them in the log's list order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.feedback_log import EXPOSURE_ID, POSITION, PROPENSITY, read_feedback_log
from tailored.data.io import write_text
from tailored.errors import ConfigError
from tailored.eval.ope import (
    MODEL_ESTIMATORS,
    OffPolicyReport,
    PositionBasedRewards,
    RewardRefit,
    SlateLog,
    estimate,
)
from tailored.pipeline.recommender import Recommender
from tailored.policies.base import Candidates, Policy, parse_policy, spec_of
from tailored.pipeline.slates import candidate_lists

DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr")
UNLOGGED_MASS_WARNING = 0.01
"""Warn when more than this share of the target's probability goes to items the log never shows."""


def read_log(path: str | Path | None = None, db: str | None = None, reward: str = "click",
             window: float = 24 * 3600.0) -> pd.DataFrame:
    """The validated feedback log of a file (CSV/Parquet) or of a store's database (``db`` URL; events attributed
    within ``window`` seconds), exactly one of them."""
    if (path is None) == (db is None):
        raise ConfigError("Give the feedback log as exactly one of --log FILE or --db URL.")
    if path is not None:
        return read_feedback_log(path, reward)
    from tailored.jobs.logs import feedback_log_frame
    from tailored.store import EventStore

    return read_feedback_log(feedback_log_frame(EventStore(db, create=False), window), reward)


def evaluate_log(
    log: pd.DataFrame,
    policy: str | Policy,
    model: Recommender | None = None,
    candidates: Sequence[Candidates] | None = None,
    reward: str = "click",
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The result of `tailored ope` for a validated ``log``: ``policy, reward, n, rows, logged_value, estimates
    {name: {value, ci, ess}}, warnings``. Candidates come from ``candidates`` (one per list, in the order lists first
    appear in the log), else from ``model``, else (``uniform`` only) from the items seen in the log."""
    target = parse_policy(policy) if isinstance(policy, str) else policy
    with_model = any(name in MODEL_ESTIMATORS for name in estimators)
    slates, warnings = target_log(log, target, model, candidates, reward, with_model)
    report = estimate(slates, tuple(estimators), samples=samples, level=level, seed=seed)
    return result_of(report, spec_of(target), reward, warnings, level, samples)


def target_log(log: pd.DataFrame, policy: Policy, model: Recommender | None, candidates: Sequence[Candidates] | None,
               reward: str, with_model: bool) -> tuple[SlateLog, list[str]]:
    """The log's rows with the target's probabilities (and, ``with_model``, a position-based reward model's
    predictions), plus the support warnings only the candidates can tell."""
    lists, exposures = pd.factorize(log[EXPOSURE_ID])
    positions = log[POSITION].to_numpy(np.int64)
    depth = np.zeros(len(exposures), np.int64)
    np.maximum.at(depth, lists, positions)
    groups, sources = _candidate_groups(log, lists, depth, policy, model, candidates)
    stacked, sizes = _stack_marginals(policy, sources)
    owner = np.repeat(np.arange(len(sources)), sizes)
    item_ids = np.concatenate([found.item_ids for found, _ in sources]).astype(str).astype(object)
    row_groups, row_items = groups[lists], log["item_id"].to_numpy(object)
    table = pd.DataFrame({"group": owner, "item": item_ids,
                          "row": np.arange(len(item_ids))}).drop_duplicates(["group", "item"])
    found_rows = pd.DataFrame({"group": row_groups, "item": row_items}).merge(table, how="left")["row"].to_numpy()
    inside = ~np.isnan(found_rows)
    probabilities = np.where(inside, stacked[np.where(inside, found_rows, 0).astype(np.int64), positions - 1], 0.0)
    rewards = log[reward].to_numpy(np.float64)
    logged_items = pd.Index(pd.unique(row_items))
    predicted = expected = refit = None
    propensities = log[PROPENSITY].to_numpy(np.float64)
    if with_model:
        codes = logged_items.get_indexer(row_items)
        rewards_model = PositionBasedRewards.select(codes, positions, rewards, len(logged_items), lists,
                                                    weights=probabilities / propensities)
        predicted = rewards_model.predict(codes, positions)
        candidate_codes = logged_items.get_indexer(item_ids)
        attraction = rewards_model.attraction(candidate_codes)
        depth_all = stacked.shape[1]
        per_group = np.stack([np.bincount(owner, attraction * column, minlength=len(sources)) for column in stacked.T],
                             axis=1) * rewards_model.examination(np.arange(1, depth_all + 1))
        expected = per_group[row_groups, positions - 1]
        rows_at = np.bincount(row_groups * depth_all + positions - 1, minlength=len(sources) * depth_all)
        mass = rows_at.reshape(len(sources), depth_all)[owner] * stacked
        unlogged_code = np.where(candidate_codes < 0, len(logged_items), candidate_codes)
        target_mass = np.stack([np.bincount(unlogged_code, column, minlength=len(logged_items) + 1)
                                for column in mass.T])
        refit = RewardRefit(rewards_model, codes, target_mass)
    slates = SlateLog(lists, positions, rewards, propensities, probabilities, predicted, expected, refit)
    never = ~pd.Index(item_ids).isin(logged_items)
    mass = stacked.sum(axis=1) * np.repeat(np.bincount(groups, minlength=len(sources)), sizes)
    unlogged = float(mass[never].sum() / mass.sum()) if mass.sum() > 0 else 0.0
    return slates, _candidate_warnings(int((~inside).sum()), len(log), unlogged, len(np.unique(item_ids[never])))


def _candidate_groups(log: pd.DataFrame, lists: np.ndarray, depth: np.ndarray, policy: Policy,
                      model: Recommender | None, candidates: Sequence[Candidates] | None
                      ) -> tuple[np.ndarray, list[tuple[Candidates, int]]]:
    """Per list the index of its (candidates, k) among the distinct ones returned."""
    if candidates is not None:
        if len(candidates) != len(depth):
            raise ConfigError(f"{len(candidates)} candidate lists given for the log's {len(depth)} lists.")
        groups = pd.factorize(pd.Series([id(found) for found in candidates]).astype(str) + ":"
                              + pd.Series(depth).astype(str))[0]
        firsts = np.unique(groups, return_index=True)[1]
        return groups, [(candidates[first], int(depth[first])) for first in firsts]
    if model is None:
        if policy.policy != "uniform":
            raise ConfigError(f"Policy '{spec_of(policy)}' needs the model's candidates: give --model-dir. Only "
                              "'uniform' is evaluated without a model (over the items seen in the log).")
        catalogue = np.sort(pd.unique(log["item_id"]).astype(str))
        everything = Candidates(catalogue, np.zeros(len(catalogue)), np.zeros(len(catalogue), bool))
        groups, ks = pd.factorize(depth)
        return groups, [(everything, int(k)) for k in ks]
    users = log["user_id"].to_numpy(object)[np.unique(lists, return_index=True)[1]].astype(str)
    groups = pd.factorize(pd.Series(users, dtype=object) + "\x00" + pd.Series(depth).astype(str))[0]
    firsts = np.unique(groups, return_index=True)[1]
    found: dict[int, tuple[Candidates, int]] = {}
    for k in np.unique(depth[firsts]):
        chosen = firsts[depth[firsts] == k]
        found.update(zip(groups[chosen].tolist(), ((c, int(k)) for c in candidate_lists(model, users[chosen], int(k)))))
    return groups, [found[group] for group in range(len(firsts))]


def _stack_marginals(policy: Policy, sources: list[tuple[Candidates, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The target's marginals of every distinct candidate list, stacked (rows: candidates; columns: positions up to
    the deepest list, zero beyond a list's k), and each list's number of candidates."""
    depth = max(k for _, k in sources)
    blocks = []
    for found, k in sources:
        block = np.zeros((len(found), depth))
        if len(found):
            block[:, :k] = policy.marginals(found, k)
        blocks.append(block)
    return np.concatenate(blocks), np.array([len(block) for block in blocks], np.int64)


def _candidate_warnings(outside: int, rows: int, unlogged_mass: float, unlogged_items: int) -> list[str]:
    warnings = []
    if outside:
        warnings.append(
            f"support: {outside} of {rows} logged rows ({outside / rows:.1%}) show an item that is not among the "
            "target's candidates for that list (probability 0): the candidates differ from the logging policy's "
            "(another model, catalogue or user history?), so the target may put probability where the logging "
            "policy never could.")
    if unlogged_mass > UNLOGGED_MASS_WARNING:
        warnings.append(
            f"support: {unlogged_mass:.1%} of the target's probability goes to {unlogged_items} items that never "
            "appear in the log: if the logging policy could show them the estimates stay unbiased but rest on few "
            "rows; if it could not, that part of the target is outside its support and ips, snips, dr and pi miss "
            "it (dm guesses their reward as the mean).")
    return warnings


def result_of(report: OffPolicyReport, policy: str, reward: str, warnings: list[str], level: float,
              samples: int) -> dict[str, Any]:
    """The JSON result of `tailored ope`."""
    return {
        "policy": policy, "reward": reward, "n": report.n, "rows": report.rows,
        "logged_value": report.logged_value, "level": level, "samples": samples,
        "estimates": {name: {"value": found.value, "ci": [found.low, found.high], "ess": found.ess}
                      for name, found in report.estimates.items()},
        "warnings": warnings + report.warnings,
    }


def run_ope(log: str | Path | None, db: str | None, model_dir: str | Path | None, policy: str, reward: str,
            estimators: Sequence[str], output: str | Path, samples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """`tailored ope`: read the log and the model, estimate, write the result as JSON (atomically)."""
    target = parse_policy(policy)
    frame = read_log(log, db, reward)
    model = None
    if model_dir is not None:
        from tailored.registry.model_dir import load_model

        model = load_model(model_dir)
    result = evaluate_log(frame, target, model, reward=reward, estimators=estimators, samples=samples, seed=seed)
    write_text(json.dumps(result, indent=2) + "\n", output)
    return result
