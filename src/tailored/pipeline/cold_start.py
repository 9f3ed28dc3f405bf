"""New users -- users without training interactions: unknown ids, users of the training users table who never
interacted, users described by attributes at request time -- ranked by the fallback (picked by catalogue name) and by
the scorers that score attributes (`AttributeScorer`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailored.data.columns import USER_ID
from tailored.data.dataset import Dataset
from tailored.data.features import usable_columns
from tailored.data.idmap import IdMap
from tailored.errors import ConfigError
from tailored.models.base import Capabilities, Scorer, capabilities, create_scorer, standardize
from tailored.pipeline.sessions import Session, Sessions
from tailored.pipeline.settings import AUTO_FALLBACK
from tailored.query import Context

DEMOGRAPHIC, POPULARITY = "demographic", "popularity"
Paths = tuple[Session | None, np.ndarray, np.ndarray]
"""How new users are ranked beyond the fallback (`new_user_paths`): a session and who it ranks, who attributes rank."""


def demographic_categories() -> int:
    """How many distinct values the demographic model reads of an attribute column (its default)."""
    return create_scorer(DEMOGRAPHIC).max_categories  # type: ignore[attr-defined]


def fallback_scorer(name: str, dataset: Dataset) -> Scorer:
    """The fallback called ``name`` (unfitted); ``auto``: the demographic model when users carry usable attributes,
    popularity otherwise. A scorer that cannot rank users unknown to it (``handles_cold_users``) is refused."""
    if name == AUTO_FALLBACK:
        usable = usable_columns(dataset.user_attributes, demographic_categories())
        return create_scorer(DEMOGRAPHIC if usable else POPULARITY)
    scorer = create_scorer(name)
    if not scorer.handles_cold_users:
        raise ConfigError(f"fallback={name!r} cannot rank users without interactions; give auto, {DEMOGRAPHIC}, "
                          f"{POPULARITY} or another algorithm that handles new users.")
    return scorer


@dataclass(frozen=True, eq=False)
class NewUsers:
    """Scores new users over the trained items: the ``fallback``'s scores, or those of the ``attribute_scorers``
    (the scorer when it scores attributes -- ncf, two-tower -- and the fallback when it does and is another kind of
    model) for users whose attributes are known; ``warm_items``: the trained items with interactions."""

    fallback: Scorer
    fallback_can: Capabilities
    attribute_scorers: tuple[Scorer, ...]
    warm_items: np.ndarray

    @classmethod
    def of(cls, scorer: Scorer, fallback: Scorer, warm_items: np.ndarray) -> NewUsers:
        """The new-user path of a fitted ``scorer`` and ``fallback``, their capabilities read once here."""
        can = capabilities(fallback)
        scorers = (scorer,) if capabilities(scorer).attributes else ()
        if can.attributes and type(fallback) is not type(scorer):
            scorers = (*scorers, fallback)
        return cls(fallback, can, scorers, warm_items)

    def models(self) -> list[str]:
        """The algorithms that rank a users-table user without interactions (`scores`): the fallback, or the
        scorer and the fallback when each scores attributes."""
        if len(self.attribute_scorers) > 1:
            return [model.algorithm for model in self.attribute_scorers]  # type: ignore[attr-defined]
        return [self.fallback.algorithm]  # type: ignore[attr-defined]

    def model_names(self, trained: np.ndarray, known: np.ndarray, by_session: np.ndarray, described: np.ndarray,
                    scorer: str, session_by_scorer: bool) -> np.ndarray:
        """What ranks each user: the ``scorer`` for a ``trained`` user; ``(session)`` after the scorer (or the
        fallback, when the scorer cannot read a session: not ``session_by_scorer``) for a user ranked ``by_session``;
        ``(cold start)`` after the attribute scorers for a new user ``described`` by attributes, after `models` for
        a ``known`` users-table user without interactions, after the fallback for an unknown user."""
        fallback = self.fallback.algorithm  # type: ignore[attr-defined]
        attributes = "+".join(model.algorithm for model in self.attribute_scorers)  # type: ignore[attr-defined]
        return np.select([trained, by_session, described, known],
                         [scorer, f"{scorer if session_by_scorer else fallback} (session)",
                          f"{attributes} (cold start)", "+".join(self.models()) + " (cold start)"],
                         f"{fallback} (cold start)")

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of new users by index (-1: unknown): the fallback's; the users table's users get those of every
        attribute scorer, fused as for new users described by the same attributes."""
        scores = np.asarray(self.fallback.score(users), np.float32)
        in_table = users >= 0
        if len(self.attribute_scorers) > 1 and in_table.any():
            scores[in_table] = self._fused([model.score(users[in_table]) for model in self.attribute_scorers])
        return scores

    def attribute_scores(self, rows: pd.DataFrame) -> np.ndarray:
        """Scores of new users described by ``rows`` (attribute columns): those of the one attribute scorer, or of
        both standardised over the trained items and added: on cold-user validation carves of MovieLens 100K, ncf
        alone 0.541, the demographic model 0.560, both 0.562 (20 carves); two-tower 0.505, 0.561, 0.561 (10)."""
        if len(self.attribute_scorers) == 1:
            return self.attribute_scorers[0].score_attributes(rows)  # type: ignore[attr-defined]
        return self._fused([model.score_attributes(rows) for model in self.attribute_scorers])  # type: ignore[attr-defined]

    def _fused(self, scores: list[np.ndarray]) -> np.ndarray:
        """The sum of the models' scores (users x trained items), each standardised over the trained items."""
        masked = ~self.warm_items[None, :]
        return np.asarray(sum(standardize(np.asarray(part, np.float64), ~masked) for part in scores), np.float32)

    def prior(self, user_ids: np.ndarray, table: pd.DataFrame | None) -> np.ndarray:
        """What a session is blended with, per user (rows) over the trained items: the fallback's scores, from the
        attributes of the users that ``table`` (indexed by user id) describes when it scores attributes (the
        `demographic` model; the scorer's own attribute path, as ncf's or two-tower's, made a worse prior on
        validation), for an anonymous visitor otherwise."""
        prior = np.repeat(self.fallback.score(np.array([-1])), len(user_ids), axis=0).astype(np.float64)
        if table is None or not self.fallback_can.attributes:
            return prior
        described = np.isin(user_ids, table.index)
        if described.any():
            rows = table.loc[user_ids[described]].reset_index(drop=True)
            prior[described] = self.fallback.score_attributes(rows)  # type: ignore[attr-defined]
        return prior

    def blocks(self, user_ids: np.ndarray, paths: Paths, table: pd.DataFrame | None, sessions: Sessions,
               batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, pd.DataFrame | None, Session | None]]:
        """Blocks of the new users that ``paths`` (`new_user_paths`) ranks by the session, then by their attributes
        (``table``, by user id): their ids, scores over the trained items, attribute rows and session."""
        session, by_session, described = paths
        for block in _blocks(user_ids[by_session], batch_size):
            described_here = table is not None and bool(np.isin(block, table.index).any())
            rows = table.reindex(block).reset_index(drop=True) if described_here else None  # type: ignore[union-attr]
            yield block, sessions.scores(session, self.prior(block, table)), rows, session  # type: ignore[arg-type]
        for block in _blocks(user_ids[described], batch_size):
            rows = table.loc[block].reset_index(drop=True)  # type: ignore[union-attr]
            yield block, self.attribute_scores(rows), rows, None

    def reasons(self, users: np.ndarray, ids: np.ndarray, items: np.ndarray, trained: np.ndarray,
                table: pd.DataFrame | None) -> np.ndarray:
        """For (user, item) pairs -- user indices (-1: unknown) and ids, item indices -- the attribute that most
        raises each item's rate (``more popular with occupation=writer``) for users without training interactions
        whose attributes are known (the training users table's, or ``table``'s), when the fallback can tell
        (`AttributeExplainer`); "" for the other pairs. ``trained``: which users have training interactions."""
        added = np.full(len(ids), "", dtype=object)
        if not self.fallback_can.explains_attributes:
            return added
        in_table = users >= 0
        in_table[in_table] = ~trained[users[in_table]]
        new = (users < 0) & np.isin(ids, table.index if table is not None else [])
        trained_item = (items >= 0) & (items < len(self.warm_items))
        explainer = self.fallback
        pairs = np.flatnonzero(in_table & trained_item)
        added[pairs] = explainer.attribute_reasons(explainer.user_features_[users[pairs]], items[pairs])  # type: ignore[attr-defined]
        pairs = np.flatnonzero(new & trained_item)
        if len(pairs):
            described = explainer.indicators(table.loc[ids[pairs]].reset_index())  # type: ignore[attr-defined, union-attr]
            added[pairs] = explainer.attribute_reasons(described, items[pairs])  # type: ignore[attr-defined]
        return added


def undescribed(user_ids: np.ndarray, users: IdMap, attributes: pd.DataFrame | None, context: Context | None
                ) -> np.ndarray:
    """The ``user_ids`` unknown to the model (``users``) that come with neither ``attributes`` (a ``user_id``
    column) nor recent items in the ``context``: all they can get is an anonymous visitor's list (often a sign of
    ids that do not match training's)."""
    unknown = np.asarray(user_ids)[users.index(np.asarray(user_ids), missing="mask") < 0]
    if context is not None and context.recent:
        return unknown[:0]
    described = attributes[USER_ID].astype(str).to_numpy() if attributes is not None else np.array([], str)
    return unknown[~np.isin(unknown, described)]


def new_user_paths(user_ids: np.ndarray, indices: np.ndarray, new: np.ndarray, session: Session | None,
                   table: pd.DataFrame | None, attributes_scored: bool) -> Paths:
    """Of a block of users (ids, indices: -1 unknown), those ``new`` (without training interactions) ranked by the
    ``session`` -- all of them, when it holds trained items -- and, failing that, by their attributes: the unknown
    ids that ``table`` (by user id) describes, when a model scores attributes (``attributes_scored``). The others
    get `NewUsers.scores`."""
    by_session = new if session is not None else np.zeros(len(user_ids), bool)
    described = np.zeros(len(user_ids), bool)
    if table is not None and attributes_scored:
        described = (indices < 0) & ~by_session & np.isin(user_ids, table.index)
    return session, by_session, described


def _blocks(ids: np.ndarray, size: int) -> Iterator[np.ndarray]:
    return (ids[start : start + size] for start in range(0, len(ids), size))
