"""The experiment a service runs on its lists: the one running on the recommendations surface, read from the store
when the service starts and every ``interval`` seconds after (``TAILORED_EXPERIMENT_POLL_SECONDS``), whichever process
or command (`tailored experiments create|stop`, `tailored loop`) started or stopped it, with the users excluded from
every experiment and the models of its arms (loaded once per registry version, the served one not again). A user's
arm is a function of the experiment's salt and the user's id (`Assignment`): every process gives the same answer,
after any restart, with no per-user storage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tailored.experiments.assignment import Assignment
from tailored.experiments.design import BASELINE, SURFACE, Design
from tailored.pipeline.recommender import Recommender
from tailored.serve.polling import Poller
from tailored.store import EventStore
from tailored.store.experiments import excluded_users, running_experiments

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assigned:
    """A user's arm: the experiment, the arm, its model reference, the model that serves it (None: the served
    model) and whether the list is personalised (False for a `BASELINE` arm: the holdout)."""

    experiment: str
    arm: str
    ref: str
    model: Recommender | None
    personalised: bool

    def answer(self) -> dict[str, str]:
        """The ``experiment`` field of a recommendation answer."""
        return {"name": self.experiment, "arm": self.arm}


@dataclass(frozen=True)
class Running:
    """A running experiment, the store keys of the excluded users and each arm's `Assigned` (one per arm)."""

    design: Design
    excluded: frozenset[str]
    arms: dict[str, Assigned]
    assignment: Assignment = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignment", self.design.assignment())

    def assigned(self, user_id: str, user_key: str) -> Assigned | None:
        """The arm of a user (``user_key``: the id as the store keeps it), None when excluded."""
        if user_key in self.excluded:
            return None
        return self.arms[self.assignment.arm_of(user_id)]


class ExperimentFollower(Poller):
    """``running``: the experiment on the recommendations surface now (None: none), swapped whole on each poll."""

    def __init__(self, store: EventStore, interval: float, resolve: Callable[[str], Path],
                 load: Callable[[Path], Recommender | None]) -> None:
        """``resolve``: a registry reference's folder; ``load``: its model (None for the served model's folder)."""
        super().__init__("experiment-follower", interval, "experiments")
        self.store, self.resolve, self.load = store, resolve, load
        self.running: Running | None = None
        self.models: dict[Path, Recommender | None] = {}
        self.poll()
        self.start()

    def assigned(self, user_id: str, user_key: str) -> Assigned | None:
        running = self.running
        return None if running is None else running.assigned(user_id, user_key)

    def poll(self) -> Running | None:
        """Read the running experiment and the exclusions; load the models of new arms. An arm that cannot be
        loaded leaves the experiment unserved (logged), the served model answering everyone."""
        rows = [row for row in running_experiments(self.store) if row["surface"] == SURFACE]
        found = None
        if rows:
            design = Design.from_json(rows[0]["design"])
            try:
                paths = {arm.ref: self.resolve(arm.ref) for arm in design.arms if arm.ref != BASELINE}
                self.models = {path: self.models[path] if path in self.models else self.load(path)
                               for path in paths.values()}  # the arms' models, each loaded once; others dropped
                found = Running(design, excluded_users(self.store), {
                    arm.name: Assigned(design.name, arm.name, arm.ref, self.models[paths[arm.ref]], True)
                    if arm.ref != BASELINE else Assigned(design.name, arm.name, arm.ref, None, False)
                    for arm in design.arms})
            except Exception as error:  # noqa: BLE001  (a broken arm must not stop the service)
                logger.warning("experiment %s not served: %s: %s", design.name, type(error).__name__, error)
        if (found and found.design.name) != (self.running and self.running.design.name):
            logger.info("experiment on %s: %s", SURFACE, found.design.name if found else "none")
        self.running = found
        return found
