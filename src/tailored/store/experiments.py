"""The experiments a store holds: each one's design (a JSON document that `tailored.experiments` writes and reads),
its surface and status, and the users excluded from every experiment. At most one experiment runs on a surface at a
time: the unique column ``running_on`` holds the surface while it runs (NULL once stopped), so two processes creating
experiments on one surface at once cannot both succeed."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tailored.errors import ConfigError, ConflictError
from tailored.store import schema
from tailored.store.attribution import ATTRIBUTION_WINDOW_SECONDS
from tailored.store.database import EventStore, write_transaction
from tailored.store.reads import ID_CHUNK

RUNNING, STOPPED = "running", "stopped"
REGISTRY_SETTING = "model_registry"
"""The `store_settings` entry of the registry folder a service serves from (`remember_registry`)."""


def create_experiment(store: EventStore, name: str, surface: str, design: dict[str, Any]) -> dict[str, Any]:
    """Store a new running experiment; a ConflictError, storing nothing, when ``name`` exists or another experiment
    runs on ``surface``. Returns its row."""
    row = {"name": name, "surface": surface, "running_on": surface, "design": design, "status": RUNNING,
           "created_at": time.time(), "stopped_at": None, "stop_reason": None}
    try:
        with write_transaction(store.engine) as connection:
            connection.execute(schema.experiments.insert().values(**row))
    except sa.exc.IntegrityError as error:
        found = {each["name"]: each for each in experiments(store)}
        if name in found:
            raise ConflictError(f"An experiment named {name!r} exists ({found[name]['status']}): choose another "
                                "--name.") from error
        running = [each["name"] for each in found.values() if each["running_on"] == surface]
        raise ConflictError(f"Experiment {', '.join(running) or '?'} already runs on surface {surface!r}: stop it "
                            f"(`tailored experiments stop --name ...`) or use another --surface.") from error
    return row


def experiments(store: EventStore, name: str | None = None) -> list[dict[str, Any]]:
    """Every experiment (or the one named), oldest first; a ConfigError when ``name`` is unknown."""
    query = sa.select(schema.experiments).order_by(schema.experiments.c.created_at, schema.experiments.c.name)
    if name is not None:
        query = query.where(schema.experiments.c.name == name)
    with store.engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    if name is not None and not rows:
        known = ", ".join(each["name"] for each in experiments(store)) or "none"
        raise ConfigError(f"No experiment named {name!r} (experiments: {known}).")
    return rows


def running_experiments(store: EventStore) -> list[dict[str, Any]]:
    """The experiments running now, one per surface."""
    return [row for row in experiments(store) if row["status"] == RUNNING]


def stop_experiment(store: EventStore, name: str, reason: str) -> dict[str, Any]:
    """Stop a running experiment (its surface is free again); a ConfigError when it is unknown or already stopped."""
    experiments(store, name)  # a clear error for an unknown name
    with write_transaction(store.engine) as connection:
        stopped = connection.execute(
            schema.experiments.update().where((schema.experiments.c.name == name)
                                              & (schema.experiments.c.status == RUNNING))
            .values(status=STOPPED, running_on=None, stopped_at=time.time(), stop_reason=reason[:200])).rowcount
    if not stopped:
        raise ConfigError(f"Experiment {name!r} is already stopped.")
    return experiments(store, name)[0]


def exclude_users(store: EventStore, user_ids: Iterable[str]) -> int:
    """Exclude users from every experiment (stored as the store keys them: pseudonymised when it is); returns how
    many were not excluded before."""
    rows = [{"user_id": store.user_key(str(user)), "excluded_at": time.time()} for user in user_ids]
    if not rows:
        return 0
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    with write_transaction(store.engine) as connection:
        insert = dialect.insert(schema.experiment_exclusions).on_conflict_do_nothing(index_elements=["user_id"])
        return len(connection.execute(insert.returning(schema.experiment_exclusions.c.user_id), rows).all())


def excluded_users(store: EventStore) -> frozenset[str]:
    """The store keys of the users excluded from every experiment."""
    with store.engine.connect() as connection:
        return frozenset(connection.execute(sa.select(schema.experiment_exclusions.c.user_id)).scalars())


def experiment_totals(store: EventStore, name: str,
                      window: float = ATTRIBUTION_WINDOW_SECONDS) -> pd.DataFrame:
    """One row per (user, arm) of experiment ``name``: ``user_id`` (as stored), ``arm``, ``lists`` shown and the
    ``clicks``, ``purchases`` and ``revenue`` attributed to them (the feedback log's rule and window); erased users
    never appear. Zero rows when nothing was shown yet."""
    experiments(store, name)  # a clear error for an unknown name
    parts = []
    for chunk in store.feedback_log(window, extra=["experiment", "arm"]):
        mine = chunk[chunk["experiment"] == name]
        if len(mine):
            parts.append(mine.groupby(["user_id", "arm"], sort=False).agg(
                lists=("exposure_id", "nunique"), clicks=("click", "sum"), purchases=("purchase", "sum"),
                revenue=("revenue", "sum")).reset_index())
    columns = ["user_id", "arm", "lists", "clicks", "purchases", "revenue"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def arm_latencies(store: EventStore, name: str) -> dict[str, np.ndarray]:
    """Each arm's serving latencies (ms) of experiment ``name``, from its exposures (those logged with one)."""
    query = sa.select(schema.exposures.c.arm, schema.exposures.c.latency_ms).where(
        (schema.exposures.c.experiment == name) & schema.exposures.c.latency_ms.is_not(None))
    with store.engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=["arm", "latency_ms"])
    return {str(arm): rows.to_numpy(np.float64) for arm, rows in frame.groupby("arm")["latency_ms"]}


def spend_before(store: EventStore, user_ids: Sequence[str], before: float, days: float) -> np.ndarray:
    """Each user's purchase value (``user_ids`` as stored) in the ``days`` before ``before``: the pre-period covariate
    of CUPED (0 for a user without purchases then)."""
    events = schema.events.c
    query = sa.select(events.user_id, sa.func.sum(sa.func.coalesce(events.value, 0.0))).where(
        (events.type == "purchase") & events.timestamp.between(before - days * 86_400.0, before)
        & events.user_id.in_(sa.bindparam("users", expanding=True))).group_by(events.user_id)
    spent: dict[str, float] = {}
    with store.engine.connect() as connection:
        for start in range(0, len(user_ids), ID_CHUNK):
            spent.update(connection.execute(query, {"users": list(user_ids[start:start + ID_CHUNK])}).all())
    return np.array([spent.get(user, 0.0) for user in user_ids], dtype=np.float64)


def first_exposure(store: EventStore, name: str) -> float | None:
    """When experiment ``name`` first served a list (None: not yet)."""
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.min(schema.exposures.c.created_at)).where(
            schema.exposures.c.experiment == name)).scalar()


def remember_registry(store: EventStore, folder: str | Path) -> None:
    """Record the model registry a service serves from (`store_settings`), so that `tailored experiments create` on
    the same database finds the arms' models without ``--registry``; a path over the column's 200 characters is not
    recorded."""
    path = str(Path(folder).resolve())
    if len(path) > 200:
        return
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(schema.store_settings).values(name=REGISTRY_SETTING, value=path)
    with write_transaction(store.engine) as connection:
        connection.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"value": path}))


def remembered_registry(store: EventStore) -> Path | None:
    """The registry folder the last service on this database served from (None: none recorded)."""
    with store.engine.connect() as connection:
        value = connection.execute(sa.select(schema.store_settings.c.value).where(
            schema.store_settings.c.name == REGISTRY_SETTING)).scalar()
    return None if value is None else Path(value)
