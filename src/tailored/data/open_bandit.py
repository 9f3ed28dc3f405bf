"""The Open Bandit Dataset sample (ZOZOTOWN fashion e-commerce; Saito et al. 2021) that the wheel of Open Bandit
Pipeline (``obp``, the ``feedback`` extra) ships, as a feedback log. Read from the installed package, never copied.

The sample holds, per logging policy (``random``: a uniformly random slate; ``bts``: Bernoulli Thompson Sampling)
and campaign (``all``, ``men``, ``women``), 10,000 records: one shown position each (positions 1-3), the item (80 in
``all``), the click and the logging policy's propensity of that item at that position. The records are sampled from
the full dataset one by one, not impression by impression (9,982 distinct timestamps in the random ``all`` file),
so **each record is a list of its own**: ``exposure_id`` = policy/campaign/record number, the record's position
kept. Estimates over this log are therefore clicks per shown position, comparable with the mean click of the
random policy's records. ``user_id`` joins the four user features (the dataset identifies no users).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from tailored.errors import ConfigError, DataError

POLICIES = {"random": "uniform", "bts": "bernoulli-thompson"}
"""The dataset's logging policies -> the spec recorded in the log's ``policy`` column (``uniform`` is ours)."""
CAMPAIGNS = ("all", "men", "women")
EPOCH = pd.Timestamp(0, tz="UTC")
USER_FEATURES = tuple(f"user_feature_{index}" for index in range(4))
INSTALL_HINT = 'pip install ".[feedback]" in the tailored checkout (or pip install obp==0.4.1)'


def open_bandit_file(policy: str = "bts", campaign: str = "all") -> Path:
    """The CSV of ``policy`` and ``campaign`` inside the installed obp package (found without importing obp)."""
    if policy not in POLICIES:
        raise ConfigError(f"Unknown Open Bandit policy {policy!r}: use one of {', '.join(POLICIES)}.")
    if campaign not in CAMPAIGNS:
        raise ConfigError(f"Unknown Open Bandit campaign {campaign!r}: use one of {', '.join(CAMPAIGNS)}.")
    spec = importlib.util.find_spec("obp")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"The Open Bandit Dataset sample ships with Open Bandit Pipeline, which is not installed: "
                          f"{INSTALL_HINT}.")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset" / "obd" / policy / campaign / f"{campaign}.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed obp package; reinstall it: {INSTALL_HINT}.")
    return path


def read_open_bandit(policy: str = "bts", campaign: str = "all") -> pd.DataFrame:
    """The sample of ``policy`` and ``campaign`` in the feedback log's format (`tailored.data.feedback_log`)."""
    path = open_bandit_file(policy, campaign)
    records = pd.read_csv(path, usecols=["timestamp", "item_id", "position", "click", "propensity_score",
                                         *USER_FEATURES])
    clicks = records["click"].to_numpy(dtype=np.float64)
    return pd.DataFrame({
        "exposure_id": [f"obd-{policy}-{campaign}-{row}" for row in range(len(records))],
        "user_id": records[USER_FEATURES[0]].astype(str).str.cat(
            [records[name].astype(str) for name in USER_FEATURES[1:]], sep=":"),
        "position": records["position"].astype(np.int64),
        "item_id": records["item_id"].astype(str),
        "propensity": records["propensity_score"].astype(np.float64),
        "policy": POLICIES[policy],
        "model_version": f"obd-{policy}-{campaign}",
        "created_at": (pd.to_datetime(records["timestamp"], utc=True) - EPOCH) / pd.Timedelta(seconds=1),
        "click": clicks,
        "purchase": 0.0,
        "revenue": 0.0,
    })
