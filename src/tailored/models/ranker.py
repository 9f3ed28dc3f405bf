"""A learned second stage: LambdaMART over the candidates of several retrievers (Burges, "From RankNet to LambdaRank to
LambdaMART: An Overview", Microsoft Research TR-2010-82; LightGBM's ``lambdarank`` objective, Ke et al., NeurIPS
2017).

Two stages. Retrievers of the catalogue (``retrievers``, default ``auto``: ease, als, item-knn, without ease where
its dense matrices would not fit in half the available memory; each with its own parameters after colons if any,
``ease:recency_half_life=10``) each propose their best ``candidates`` items a user has not taken (and, with
``recent`` > 0, the user's own latest items: repeats); a gradient-boosted tree ensemble then orders that union from
features of the user, the item, the pair and each retriever's score and rank (`tailored.models.ranker_features`).
LambdaMART fits trees to the gradients of a pairwise loss weighted by how much swapping two items changes NDCG, so it
optimises the list's order directly.

Training carves labels out of the training data. ``carve="user"`` (the default) labels a seeded random
``label_fraction`` of each user's rows, the features read from the other rows: the question a per-user random
hold-out asks (MovieLens P1), and the carve that validation chose there (NDCG@10 0.2713 against 0.2566 for the time
carve and 0.2598 for the last, on a validation split of the P1 training file; docs/algorithms/ranker.md).
``carve="time"`` asks what comes next: a global cut leaves the latest ``label_fraction`` of the interactions (or the
last ``label_days`` days) as labels; ``carve="last"`` labels each user's latest ``label_fraction`` of rows (what a
leave-last-out hold-out such as P2 asks, with every user labelled). In every carve the retrievers are fitted on the
earlier part only, and every feature is read from that part (`Window` before the cut), so nothing of the labels
leaks into a feature. A candidate is relevant when the user took it in the labels; one group per user (users with no
relevant candidate are left out). A seeded 20 % of the labelled users is held out, and boosting stops when their
NDCG@10 has not improved for `EARLY_STOPPING_ROUNDS` rounds. With ``feedback`` (a `tailored logs export` file), the
labels are the log's instead of a carve's: each click is a query against the unclicked items of its list, weighted by
the inverse examination probability of its position (``feedback_weighting``; `tailored.models.ranker_feedback`), and
the features and retrievers read the interactions before the log's first list. The retrievers are then refitted on
all the data, and scoring computes the same features, by the same code, from all the data. Each retriever's score
is constrained to raise, and its rank to lower, the prediction (LightGBM's monotone constraints), all else equal.

Boosting starts from the first retriever: its standardised score times ``base_weight`` (1.0) is each pair's initial
score (LightGBM's ``init_score``, added back at prediction), so the trees learn corrections to its order and early
stopping, when they find none, leaves that order in place. Without it the carve's trees, fitted where the retrievers
had less data than at serving, reordered a stronger serving retriever (validation NDCG@10: 0.2590 with
``base_weight=0``, 0.2665 / 0.2701 / 0.2713 / 0.2681 with 0.25 / 0.5 / 1 / 2; its first retriever ease alone
0.2679).

``score`` is minus each item's position in the final order: the candidates by the ranker's prediction (ties, which
the leaves of a few trees make common, broken by the first retriever), then every other item in the first
retriever's order, so that a full ranking stays meaningful. Every training user's candidates and context-free
features are computed at the end of ``fit`` and kept (up to ``precompute`` values), so that a request only adds its
context's features, runs the trees and scores the first retriever. The booster is kept in LightGBM's own text
format (as bytes), never pickled; a loaded model scores exactly as the fitted one. Needs the ``ranker`` extra
(lightgbm).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.config import available_memory, num_threads
from tailored.data.dataset import Dataset
from tailored.data.transforms import apply_weighting
from tailored.errors import ConfigError, DataError
from tailored.models.base import (Choice, Float, Int, Scorer, algorithm_names, check_fitted, create_scorer, register,
                                  scorer_class, standardize)
from tailored.models.ease import DENSE_BYTES_PER_ENTRY
from tailored.models.ranker_feedback import WEIGHTINGS, FeedbackGroups, FeedbackLog
from tailored.models.ranker_features import (DAY, ITEM_FEATURES, REPEAT_FEATURES, SESSION_FEATURE, TIME_KEYS,
                                             USER_FEATURES, ContextKeys, ItemAttributes, Sources, UserAttributes,
                                             Window, context_features, interaction_seconds, pair_features)

logger = logging.getLogger(__name__)

EARLY_STOPPING_ROUNDS = 20
EXPLAINED = 2
"""The features an explanation names: those that raised the item's prediction the most."""
VALIDATION_SHARE = 0.2
"""Share of the labelled users (seeded) held out for early stopping."""
BLOCK_ENTRIES = 2**21
"""(user, item) entries of the dense blocks held at once (each retriever's scores and ranks, users x all items)."""
NOT_RETRIEVERS = ("ranker",)
AUTO_RETRIEVERS = "ease,als,item-knn"
AUTO_EASE_BYTES = 2 * DENSE_BYTES_PER_ENTRY
"""Bytes per (item, item) pair that the ranker's two ease fits hold at once."""
CARVES = ("time", "user", "last")
GAINS = ("binary", "value")
MAX_GRADES = 30
"""Relevance grades of ``gain="value"`` (LightGBM's default label_gain table has 31 entries; ours replaces it)."""


def lightgbm() -> Any:
    """The lightgbm module, or a ConfigError saying how to install it."""
    try:
        import lightgbm as module
    except ImportError as error:
        raise ConfigError('Algorithm \'ranker\' needs LightGBM: install the extra with `pip install ".[ranker]"` in '
                          "the tailored checkout (or pip install lightgbm).") from error
    return module


@register("ranker")
@dataclass(eq=False)
class RankerScorer:
    retrievers: str = "auto"
    candidates: int = 50
    recent: int = 0
    carve: str = "user"
    label_fraction: float = 0.2
    label_days: float | None = None
    n_estimators: int = 500
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    base_weight: float = 1.0
    context: str = "auto"
    gain: str = "binary"
    feedback: str = ""
    feedback_weighting: str = "position"
    precompute: int = 2**25
    seed: int = 0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Int | Choice]] = {
        "candidates": Int(10, 200, log=True),
        "carve": Choice(CARVES),
        "label_fraction": Float(0.05, 0.5),
        "learning_rate": Float(0.01, 0.3, log=True),
        "num_leaves": Int(7, 127, log=True),
        "min_child_samples": Int(5, 200, log=True),
        "base_weight": Float(0.0, 2.0),
    }

    @classmethod
    def space_for(cls, dataset: Dataset) -> dict[str, Float | Int | Choice]:
        """`search_space` for ``dataset``: without timestamps, only the carve that reads no time."""
        return cls.search_space | ({} if dataset.timestamps is not None else {"carve": Choice(("user",))})

    def fit(self, dataset: Dataset) -> Self:
        names = retriever_names(auto_retrievers(dataset.n_items) if self.retrievers == "auto" else self.retrievers)
        self._check_params()
        module = lightgbm()
        seconds = self._seconds(dataset)
        log = FeedbackLog.read(self.feedback, dataset, "revenue" if self.gain == "value" else "click") \
            if self.feedback else None
        if log is not None:
            cut = float(log.seconds.min())
            label_rows = seconds >= cut
            if label_rows.all():
                raise DataError(f"ranker.feedback: no interaction comes before the first list of {self.feedback} "
                                "(the features are read from the interactions before it); give the history before "
                                "the log.")
        elif self.carve == "time":
            cut = self._cut(seconds)
            label_rows = seconds >= cut
        else:
            order = -seconds if self.carve == "last" else np.random.default_rng(self.seed).random(len(seconds))
            cut, label_rows = None, per_user_carve(dataset.user_index, self.label_fraction, order)
        earlier, later = dataset.subset(~label_rows), dataset.subset(label_rows)
        attributes = ItemAttributes.of(dataset.item_attributes, dataset.n_items)
        people = UserAttributes.of(dataset.user_attributes, dataset.n_users)
        keys = ContextKeys.of(dataset.interactions, self.context)
        levels = keys.row_levels(dataset.interactions, seconds)
        window = Window.of(earlier, seconds[~label_rows], until=cut, context=levels[~label_rows])
        sources = Sources.of(window, attributes, people, keys)
        retrievers = [create_retriever(name).fit(self._retrieval(earlier)) for name in names]
        columns = sources.feature_names([feature_label(name) for name in names])
        if log is None:
            groups: LabelGroups | FeedbackGroups = self._label_groups(earlier, later, levels[label_rows])
            source = f"{self.carve} carve"
        else:
            groups = self._feedback_groups(log, keys, earlier)
            source = f"feedback log, {self.feedback_weighting} weighting"
        labelled = np.unique(groups.users)
        held_out = np.random.default_rng(self.seed).random(len(labelled)) < VALIDATION_SHARE
        held_groups = np.isin(groups.users, labelled[held_out])
        sets = [self._rows(retrievers, sources, groups.subset(chosen), module, columns)
                for chosen in (~held_groups, held_groups)]
        if sets[0] is None:
            raise DataError("ranker: no labelled user has a relevant item among the candidates; raise candidates "
                            "or label_fraction.")
        params = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "learning_rate": self.learning_rate,
                  "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples, "seed": self.seed,
                  "deterministic": True, "force_row_wise": True, "num_threads": num_threads(), "verbose": -1,
                  "monotone_constraints": monotone_constraints(columns), "monotone_constraints_method": "advanced"}
        if groups.gains is not None:
            params["label_gain"] = groups.gains.tolist()
        callbacks = [module.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)] if sets[1] is not None else []
        booster = module.train(params, sets[0], num_boost_round=self.n_estimators,
                               valid_sets=[s for s in sets[1:] if s is not None], callbacks=callbacks)
        self.rounds_ = int(booster.best_iteration or booster.current_iteration())
        text = booster.model_to_string(num_iteration=self.rounds_)
        self.booster_ = np.frombuffer(text.encode(), np.uint8).copy()
        self.feature_names_ = np.asarray(columns)
        logger.info("ranker: %d rounds on %d labelled users in %d groups (%d users held out), %s, context %s",
                    self.rounds_, len(labelled), len(groups.users), held_out.sum(), source,
                    ", ".join(keys.names) or "none")
        self.members_: list[Scorer] = [create_retriever(name).fit(self._retrieval(dataset)) for name in names]
        self.interaction_users_ = dataset.user_index.astype(np.int32)
        self.interaction_items_ = dataset.item_index.astype(np.int32)
        self.interaction_seconds_ = seconds
        self.interaction_context_ = levels.astype(np.int16)
        self.context_names_ = np.asarray(keys.names, dtype=str)
        self.context_values_ = np.asarray([value for values in keys.vocabularies for value in values], dtype=str)
        self.context_sizes_ = np.asarray([len(values) for values in keys.vocabularies], np.int64)
        self.item_numbers_, self.item_categories_ = attributes.numbers, attributes.categories
        self.category_blocks_ = attributes.category_blocks
        self.number_names_ = np.asarray(attributes.number_names, dtype=str)
        self.category_names_ = np.asarray(attributes.category_names, dtype=str)
        self.user_numbers_, self.user_segments_ = people.numbers, people.segments
        self.user_number_names_ = np.asarray(people.number_names, dtype=str)
        self.user_segment_names_ = np.asarray(people.segment_names, dtype=str)
        self.n_users_, self.n_items_ = dataset.n_users, dataset.n_items
        self._serving: tuple[Any, Sources] | None = None
        self._precompute()
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores without a request context (every context feature at no lift)."""
        check_fitted(self, "booster_")
        return self._scores(users, np.full(len(self.context_names_), -1, np.int64), items)

    def score_context(self, users: np.ndarray, context: Mapping[str, Any]) -> np.ndarray:
        """Scores in a request's ``context`` (`tailored.query.Context`'s fields by name: device, channel, segment,
        moment...); a key the ranker was not trained on and a value it has not seen are logged as warnings."""
        check_fitted(self, "booster_")
        return self._scores(users, self._serving_state()[1].context.request_levels(context))

    def _scores(self, users: np.ndarray, levels: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``users`` with the context ``levels`` (one per key, -1: not given)."""
        booster, sources = self._serving_state()
        users = np.asarray(users, np.int64)
        out = np.empty((len(users), self.n_items_), np.float32)
        size = block_users(self.n_items_)
        for start in range(0, len(users), size):
            block = users[start:start + size]
            inside = (block >= 0) & (block < self.n_users_)
            rows, candidate_items, features, first_ranks = self._candidates(np.where(inside, block, 0))
            keep = inside[rows]
            rows, candidate_items = rows[keep], candidate_items[keep]
            features = np.hstack([features[keep],
                                  context_features(sources, np.tile(levels, (len(rows), 1)), candidate_items)])
            predicted = booster.predict(features, num_threads=num_threads()) + self._base(features, rows)
            out[start:start + len(block)] = full_ranking(predicted, rows, candidate_items, first_ranks, len(block))
        return out if items is None else out[:, items]

    def _candidates(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The candidate pairs of ``users`` (each pair's row in ``users``, its item), their context-free features
        and the first retriever's ranks (users x all items): from the table `precompute` kept, else computed."""
        sources = self._serving_state()[1]
        offsets = getattr(self, "served_offsets_", None)
        if offsets is not None and len(offsets):
            rows, pairs = offset_ranges(offsets, users)
            seen = sources.window.taken[users].toarray() > 0
            _, first_ranks = retriever_ranking(self.members_[0], users, seen)
            return rows, self.served_items_[pairs].astype(np.int64), self.served_features_[pairs], first_ranks
        scores, ranks = retriever_features(self.members_, sources.window, users)
        rows, items = candidate_pairs(ranks, sources.window, users, self.candidates, self.recent)
        return rows, items, pair_features(sources, users, rows, items, scores, ranks), ranks[0]

    def _precompute(self) -> None:
        """Keeps every user's candidates and context-free features for serving (``served_*``), when they hold at
        most ``precompute`` values; else requests compute them."""
        n_features = len(self.feature_names_) - len(self.context_names_)
        bound = self.n_users_ * (self.candidates * len(self.members_) + self.recent) * n_features
        self.served_offsets_ = np.zeros(0, np.int64)
        if bound > self.precompute:
            if self.precompute:
                logger.warning("ranker: candidates and features computed at request time: the table for serving "
                               "could hold %d values, above precompute=%d (raise it to serve faster, at %d MiB of "
                               "float32 in the model directory)", bound, self.precompute, bound * 4 // 2**20)
            return
        items, features, counts = [], [], []
        size = block_users(self.n_items_)
        for start in range(0, self.n_users_, size):
            users = np.arange(start, min(start + size, self.n_users_))
            rows, block_items, block_features, _ = self._candidates(users)
            items.append(block_items.astype(np.int32))
            features.append(block_features)
            counts.append(np.bincount(rows, minlength=len(users)))
        self.served_items_, self.served_features_ = np.concatenate(items), np.concatenate(features)
        self.served_offsets_ = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)

    def explain_scores(self, users: np.ndarray, items: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        """``str[users, n]``: for each listed item (``items``: item indices, -1 empty), the `EXPLAINED` largest
        positive contributions to its prediction in ``context`` (LightGBM's SHAP values, ``pred_contrib``, and the
        first retriever's starting score), "ranker: ease (start) +1.21, context_lift_hour +0.42"; for an item
        outside the candidates, that it follows them in the first retriever's order."""
        check_fitted(self, "booster_")
        booster, sources = self._serving_state()
        no_context = np.full(len(self.context_names_), -1, np.int64)
        levels = no_context if context is None else sources.context.request_levels(context)
        users, out = np.asarray(users, np.int64), np.full(items.shape, "", dtype=object)
        first = str(self.feature_names_[0]).removesuffix("_score")
        size = block_users(self.n_items_)
        for start in range(0, len(users), size):
            block, listed = users[start:start + size], items[start:start + size]
            scores, ranks = retriever_features(self.members_, sources.window, block)
            candidate = np.zeros(ranks[0].shape, bool)
            candidate[candidate_pairs(ranks, sources.window, block, self.candidates, self.recent)] = True
            rows, slots = np.nonzero((listed >= 0) & (listed < self.n_items_))
            chosen = candidate[rows, listed[rows, slots]]
            out[start + rows[~chosen], slots[~chosen]] = f"after the ranker's candidates, in {first}'s order"
            rows, slots = rows[chosen], slots[chosen]
            if not len(rows):
                continue
            pair_items = listed[rows, slots]
            features = np.hstack([pair_features(sources, block, rows, pair_items, scores, ranks),
                                  context_features(sources, np.tile(levels, (len(rows), 1)), pair_items)])
            parts = np.column_stack([self._base(features, rows), booster.predict(features, pred_contrib=True,
                                                                                 num_threads=num_threads())[:, :-1]])
            out[start + rows, slots] = contribution_reasons(parts, [f"{first} (start)", *self.feature_names_])
        return out

    def feature_importances(self) -> pd.Series:
        """Each feature's total gain over the booster's splits, largest first."""
        check_fitted(self, "booster_")
        booster = self._serving_state()[0]
        gains = booster.feature_importance(importance_type="gain")
        return pd.Series(gains, index=self.feature_names_.tolist(), name="gain").sort_values(ascending=False)

    def _base(self, features: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Where boosting starts: ``base_weight`` times the first retriever's standardised score (the first column
        of ``features``); a repeat candidate, which retrievers do not score, starts at the mean of its user's
        (``rows``) scored candidates."""
        first = features[:, 0].astype(np.float64)
        scored = ~np.isnan(first)
        sums = np.bincount(rows[scored], first[scored], minlength=rows.max(initial=-1) + 1)
        means = sums / np.maximum(np.bincount(rows[scored], minlength=len(sums)), 1)
        return self.base_weight * np.where(scored, first, means[rows])

    def _label_groups(self, earlier: Dataset, later: Dataset, levels: np.ndarray) -> LabelGroups:
        """The carve's queries: the label rows ``later`` (``levels``: their context) of the users who have rows
        ``earlier`` too."""
        labelled = np.intersect1d(np.unique(later.user_index), np.unique(earlier.user_index))
        if len(labelled) == 0:
            raise DataError("ranker: no user has interactions both in the carve's labels and before them; raise "
                            "label_fraction (or label_days), or give more history per user.")
        groups = LabelGroups.of(later, levels, labelled, by_value=self.gain == "value")
        if groups.gains is not None and len(groups.gains) <= 2:
            logger.warning("ranker.gain=value: every label has the same value, so the gains are those of binary; "
                           "an aggregating weighting (binary, auto) sets them to 1: train with weighting=raw.")
        return groups

    def _feedback_groups(self, log: FeedbackLog, keys: ContextKeys, earlier: Dataset) -> FeedbackGroups:
        """The feedback log's queries (`FeedbackGroups`) of the users with interactions before it (the others are
        the fallback's to serve), by click or, with ``gain="value"``, by revenue grade."""
        positive = log.rewards > 0
        grades, gains = value_grades(log.rewards[positive]) if self.gain == "value" else (None, None)
        groups = FeedbackGroups.of(log, log.levels(keys), self.feedback_weighting, grades, gains)
        known = np.isin(groups.users, np.unique(earlier.user_index))
        if not known.any():
            raise DataError(f"ranker.feedback: no {'revenue' if self.gain == 'value' else 'click'} in "
                            f"{self.feedback} comes from a user with interactions before the log: nothing to learn.")
        return groups.subset(known)

    def _retrieval(self, dataset: Dataset) -> Dataset:
        """What the retrievers learn from: the data as given, or, with ``gain="value"``, which pairs exist (the
        values weigh the labels, not what the retrievers propose)."""
        return apply_weighting(dataset, "binary") if self.gain == "value" else dataset

    def _check_params(self) -> None:
        if self.carve not in CARVES:
            raise ConfigError(f"ranker.carve must be one of {', '.join(CARVES)}, not {self.carve!r}.")
        if self.gain not in GAINS:
            raise ConfigError(f"ranker.gain must be one of {', '.join(GAINS)}, not {self.gain!r} (value: the "
                              "interactions' values, e.g. revenue, weigh each relevant item).")
        if self.feedback_weighting not in WEIGHTINGS:
            raise ConfigError(f"ranker.feedback_weighting must be one of {', '.join(WEIGHTINGS)}, not "
                              f"{self.feedback_weighting!r} (position: each click weighs 1 / the examination "
                              "probability of its position).")
        if not 0 < self.label_fraction < 1:
            raise ConfigError(f"ranker.label_fraction={self.label_fraction} must be between 0 and 1 (exclusive).")
        if self.base_weight < 0:
            raise ConfigError(f"ranker.base_weight={self.base_weight} must be at least 0 (0: boosting starts from "
                              "nothing, not from the first retriever).")
        if self.label_days is not None and self.label_days <= 0:
            raise ConfigError(f"ranker.label_days={self.label_days} must be above 0 (or none: label_fraction).")
        if self.precompute < 0:
            raise ConfigError(f"ranker.precompute={self.precompute} must be at least 0 (0: compute every request's "
                              "candidates and features when it comes).")
        for name in ("candidates", "n_estimators", "num_leaves", "min_child_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ranker.{name}={getattr(self, name)} must be at least 1.")

    def _seconds(self, dataset: Dataset) -> np.ndarray:
        """The interactions' Unix seconds. Without timestamps, the per-user random carve (the default) still works:
        the times are unknown (NaN), so the features read from them are too, with a warning; a carve by time, a
        feedback log, recent items or a time context key needs them (a DataError naming the column and what needs
        it)."""
        needs = [what for what, used in (
            (f"carve={self.carve}", self.carve != "user"), ("feedback", bool(self.feedback)),
            (f"recent={self.recent}", self.recent > 0),
            ("the context keys hour/weekday/month", any(key.strip() in TIME_KEYS for key in self.context.split(","))))
            if used]
        if dataset.timestamps is not None or needs:
            return interaction_seconds(dataset, "ranker", f"with {' and '.join(needs)} reads time")
        logger.warning("ranker: the interactions have no timestamp: %s are unknown and teach nothing (give the "
                       "file's time column, `--time-col`, to use them).",
                       ", ".join([*USER_FEATURES[1:], *ITEM_FEATURES[1:], SESSION_FEATURE, *REPEAT_FEATURES]))
        return np.full(len(dataset), np.nan)

    def _cut(self, seconds: np.ndarray) -> float:
        """The time from which interactions are labels: the last ``label_days`` days, else the quantile that leaves
        ``label_fraction`` of the rows after it; a DataError when it leaves nothing before or after."""
        if len(seconds) == 0:
            raise DataError("ranker: the interactions are empty.")
        if self.label_days is not None:
            cut = float(seconds.max() - self.label_days * DAY)
        else:
            cut = float(np.quantile(seconds, 1.0 - self.label_fraction, method="higher"))
        if not seconds.min() < cut <= seconds.max():
            raise DataError(
                f"ranker: the time cut ({cut:.0f} s) leaves no interaction on one side (times run from "
                f"{seconds.min():.0f} to {seconds.max():.0f} s); the interactions need distinct timestamps, or set "
                "label_days / label_fraction so that both parts hold some."
            )
        return cut

    def _rows(self, retrievers: list[Scorer], sources: Sources, groups: LabelGroups | FeedbackGroups, module: Any,
              names: list[str]) -> Any:
        """The LightGBM dataset of ``groups`` (one query per group with a relevant member), or None without one."""
        blocks = self._label_rows(retrievers, sources, groups) if isinstance(groups, LabelGroups) \
            else self._feedback_rows(retrievers, sources, groups)
        if not blocks:
            return None
        features, relevant, sizes, bases, weights = (np.concatenate(part) for part in zip(*blocks, strict=True))
        return module.Dataset(features, relevant, group=sizes, init_score=bases, feature_name=names,
                              weight=weights if groups.weighted else None, free_raw_data=True)

    def _label_rows(self, retrievers: list[Scorer], sources: Sources, groups: LabelGroups) -> list[tuple]:
        """Per block of the label ``groups``: the features, relevance, query sizes, initial scores and weights (1) of
        the queries with a relevant candidate. A user's candidates and context-free features are computed once, then
        repeated for each of the user's groups beside the group's context features."""
        blocks = []
        size = block_users(groups.labels.shape[1])
        for start in range(0, len(groups.users), size):
            block = slice(start, start + size)
            users, inverse = np.unique(groups.users[block], return_inverse=True)
            scores, ranks = retriever_features(retrievers, sources.window, users)
            user_rows, user_items = candidate_pairs(ranks, sources.window, users, self.candidates, self.recent)
            per_user = pair_features(sources, users, user_rows, user_items, scores, ranks)
            pairs, rows = group_pairs(user_rows, len(users), inverse)
            items = user_items[pairs]
            hits = np.asarray(groups.labels[start + rows, items]).ravel()
            useful = np.bincount(rows, hits > 0, minlength=len(inverse))[rows] > 0
            pairs, rows, items, hits = pairs[useful], rows[useful], items[useful], hits[useful]
            if not len(rows):
                continue
            features = np.hstack([per_user[pairs], context_features(sources, groups.levels[block][rows], items)])
            blocks.append((features, hits.astype(np.float32), np.bincount(rows)[np.unique(rows)],
                           self._base(features, rows), np.ones(len(rows))))
        return blocks

    def _feedback_rows(self, retrievers: list[Scorer], sources: Sources, groups: FeedbackGroups) -> list[tuple]:
        """`_label_rows` of a feedback log's queries: their members are the items shown, each row weighted by its
        query's weight."""
        blocks = []
        users = np.unique(groups.users)
        size = block_users(sources.window.n_items)
        for start in range(0, len(users), size):
            block = users[start:start + size]
            chosen = groups.subset(np.isin(groups.users, block))
            if not len(chosen.users):
                continue
            scores, ranks = retriever_features(retrievers, sources.window, block)
            rows = np.searchsorted(block, chosen.users[chosen.query])
            features = np.hstack([pair_features(sources, block, rows, chosen.items, scores, ranks),
                                  context_features(sources, chosen.levels[chosen.query], chosen.items)])
            blocks.append((features, chosen.labels.astype(np.float32), np.bincount(chosen.query),
                           self._base(features, chosen.query), chosen.weights[chosen.query]))
        return blocks

    def _serving_state(self) -> tuple[Any, Sources]:
        """The booster and what the features read from all the data, built once from the stored arrays."""
        if getattr(self, "_serving", None) is None:
            booster = lightgbm().Booster(model_str=self.booster_.tobytes().decode())
            window = Window(self.interaction_users_.astype(np.int64), self.interaction_items_.astype(np.int64),
                            self.interaction_seconds_, int(self.n_users_), int(self.n_items_),
                            float(self.interaction_seconds_.max()))
            attributes = ItemAttributes(self.item_numbers_, tuple(self.number_names_.tolist()),
                                        sp.csr_matrix(self.item_categories_), self.category_blocks_,
                                        tuple(self.category_names_.tolist()))
            people = UserAttributes(self.user_numbers_, tuple(self.user_number_names_.tolist()),
                                    self.user_segments_, tuple(self.user_segment_names_.tolist()))
            bounds = np.cumsum([0, *self.context_sizes_.tolist()])
            keys = ContextKeys(tuple(self.context_names_.tolist()),
                               tuple(tuple(self.context_values_[a:b].tolist()) for a, b in zip(bounds, bounds[1:])))
            window = dataclasses.replace(window, context=self.interaction_context_.astype(np.int64))
            self._serving = (booster, Sources.of(window, attributes, people, keys))
        return self._serving


@dataclass(frozen=True)
class LabelGroups:
    """The ranker's queries: one per (user, context) of the label rows, with the items taken there."""

    users: np.ndarray
    levels: np.ndarray
    """groups x context keys."""
    labels: sp.csr_matrix
    """groups x items: the relevance grade of each item the group's user took in the group's context (1; or, by
    value, `value_grades`)."""
    gains: np.ndarray | None = None
    """By value: each grade's gain (LightGBM's ``label_gain``)."""

    @classmethod
    def of(cls, later: Dataset, levels: np.ndarray, users: np.ndarray, by_value: bool = False) -> LabelGroups:
        """The groups of the label rows ``later`` (``levels``: their context levels) of the ``users``; without a
        context key, one group per user. ``by_value``: an item's grade grows with the summed values of its rows
        (revenue), else every item taken is 1."""
        keep = np.isin(later.user_index, users)
        keys = np.column_stack([later.user_index[keep], levels[keep]]).astype(np.int64)
        unique, group = np.unique(keys, axis=0, return_inverse=True)
        values = later.values[keep].astype(np.float64) if by_value else np.ones(int(keep.sum()))
        labels = sp.csr_matrix((values, (group.ravel(), later.item_index[keep])), (len(unique), later.n_items))
        labels.sum_duplicates()
        gains = None
        if by_value:
            labels.data, gains = value_grades(labels.data)
            labels.eliminate_zeros()
        else:
            labels.data[:] = 1.0
        return cls(unique[:, 0], unique[:, 1:], labels, gains)

    weighted: ClassVar[bool] = False

    def subset(self, chosen: np.ndarray) -> LabelGroups:
        return LabelGroups(self.users[chosen], self.levels[chosen], self.labels[chosen], self.gains)


def value_grades(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer grades of ``values`` (0 for a value of 0 or less; the positive ones by their distinct values, or cut at
    their quantiles where more than `MAX_GRADES`, numbered 1, 2... without gaps) and each grade's gain: the mean
    value in the grade over the mean positive value (0 for grade 0), so that LambdaMART weighs a swap by the revenue
    it moves."""
    positive = values > 0
    if not positive.any():
        return np.zeros(len(values)), np.zeros(1)
    distinct = np.unique(values[positive])
    edges = distinct[1:] if len(distinct) <= MAX_GRADES else np.unique(
        np.quantile(values[positive], np.linspace(0, 1, MAX_GRADES + 1)[1:-1]))
    _, bins = np.unique(np.searchsorted(edges, values[positive], side="right"), return_inverse=True)
    grades = np.zeros(len(values), np.int64)
    grades[positive] = 1 + bins.ravel()
    sums = np.bincount(grades, np.where(positive, values, 0.0))
    gains = sums / np.maximum(np.bincount(grades), 1) / values[positive].mean()
    gains[0] = 0.0
    return grades.astype(np.float64), gains


def group_pairs(user_rows: np.ndarray, n_users: int, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups whose users are ``inverse`` (positions among ``n_users``), the indices of their users' candidate
    pairs (``user_rows``: each pair's user, sorted) and each such pair's group."""
    counts = np.bincount(user_rows, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lengths = counts[inverse.ravel()]
    rows = np.repeat(np.arange(len(lengths)), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return starts[inverse.ravel()][rows] + np.arange(len(rows)) - first[rows], rows


def contribution_reasons(contributions: np.ndarray, names: list[str]) -> list[str]:
    """Per row of ``contributions`` (pairs x ``names``), "ranker: " and its `EXPLAINED` largest positive ones ("" when
    none is positive)."""
    reasons = []
    for row in contributions:
        best = [column for column in np.argsort(-row, kind="stable")[:EXPLAINED] if row[column] > 0]
        reasons.append("ranker: " + ", ".join(f"{names[column]} {row[column]:+.2f}" for column in best) if best else "")
    return reasons


def block_users(n_items: int) -> int:
    """Users scored in one block: `BLOCK_ENTRIES` entries' worth, at least one."""
    return max(1, BLOCK_ENTRIES // max(n_items, 1))


def auto_retrievers(n_items: int) -> str:
    """``retrievers="auto"``: `AUTO_RETRIEVERS`, ease left out (with a warning) where its dense items x items
    matrices, one being fitted while the carve's is kept, would take more than half the available memory."""
    if AUTO_EASE_BYTES * n_items**2 <= available_memory() / 2:
        return AUTO_RETRIEVERS
    logger.warning("ranker: %d items are too many for ease's dense items x items matrices (about %.1f GiB, over half "
                   "the %.1f GiB available); retrievers als,item-knn (name them in `retrievers` to choose).", n_items,
                   AUTO_EASE_BYTES * n_items**2 / 2**30, available_memory() / 2**30)
    return AUTO_RETRIEVERS.removeprefix("ease,")


def retriever_names(retrievers: str) -> list[str]:
    """The comma-separated retrievers, checked: known ranking algorithms other than the ranker itself, each with its
    own parameters after colons if any (``ease:recency_half_life=10``; `create_retriever`)."""
    names = [name.strip() for name in retrievers.split(",") if name.strip()]
    if not names:
        raise ConfigError("ranker.retrievers names no algorithm; give a comma-separated list, e.g. 'ease,item-knn'.")
    choices = [name for name in algorithm_names() if name not in NOT_RETRIEVERS and not scorer_class(name).explicit]
    for name in names:
        algorithm = name.split(":")[0].strip()
        if algorithm not in choices:
            raise ConfigError(f"ranker.retrievers: '{algorithm}' is not a ranking algorithm of the catalogue; "
                              f"choices: {', '.join(choices)}.")
        create_retriever(name)  # its parameters checked now, before any fit
    if len(set(names)) < len(names):
        raise ConfigError(f"ranker.retrievers names a retriever twice: {retrievers!r}.")
    return names


def create_retriever(name: str) -> Scorer:
    """The unfitted retriever ``algorithm[:param=value[:param=value...]]``; a ConfigError naming a setting that is
    not ``param=value`` (unknown parameters and bad values are create_scorer's errors)."""
    algorithm, *settings = (part.strip() for part in name.split(":"))
    malformed = [setting for setting in settings if "=" not in setting]
    if malformed:
        raise ConfigError(f"ranker.retrievers: '{name}' has setting(s) {malformed} that are not param=value; write "
                          "e.g. 'ease:recency_half_life=10'.")
    return create_scorer(algorithm, dict(setting.split("=", 1) for setting in settings))


def feature_label(name: str) -> str:
    """A retriever's name as its features' prefix: characters other than letters, digits, ``_`` and ``-`` (which
    LightGBM refuses in feature names, or which read badly) become ``_``: ``ease:recency_half_life=10`` gives
    ``ease_recency_half_life_10``."""
    return re.sub(r"[^0-9A-Za-z_-]+", "_", name.strip()).strip("_")


def per_user_carve(users: np.ndarray, fraction: float, order: np.ndarray) -> np.ndarray:
    """A boolean mask of rows: per user, the ``round(fraction * n)`` of the user's ``n`` rows that come first by
    ``order`` (random keys: a random share; minus the times: the latest rows), at least one when ``n`` >= 2 and never
    all."""
    ranked = np.lexsort((order, users))
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(len(users), np.int64)
    position[ranked] = np.arange(len(users)) - starts[users[ranked]]
    chosen = np.clip(np.round(fraction * counts), np.minimum(counts - 1, 1), np.maximum(counts - 1, 0))
    return position < chosen[users]


def monotone_constraints(names: list[str]) -> list[int]:
    """+1 for each retriever's score, -1 for its rank, 0 for the other features: all else equal, an item that a
    retriever puts higher is never ranked lower (a prior that keeps a few noisy labels from reversing it)."""
    return [1 if name.endswith("_score") else -1 if name.endswith("_rank") else 0 for name in names]


def retriever_features(retrievers: list[Scorer], window: Window, users: np.ndarray
                       ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per retriever, `retriever_ranking` of ``users`` (their unseen items read from ``window``)."""
    seen = window.taken[users].toarray() > 0
    pairs = [retriever_ranking(retriever, users, seen) for retriever in retrievers]
    return [scores for scores, _ in pairs], [ranks for _, ranks in pairs]


def retriever_ranking(retriever: Scorer, users: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The retriever's scores for ``users`` standardised over each user's unseen items (``seen``: users x all items)
    and its ranks (1 = best unseen item; the seen items after every unseen one), each users x all items."""
    raw = np.asarray(retriever.score(users), np.float64)
    order = np.argsort(np.where(seen, np.inf, -raw), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, raw.shape[1] + 1)[None, :], axis=1)
    return standardize(raw, ~seen), ranks


def offset_ranges(offsets: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``users`` whose entries are ``offsets[user]:offsets[user + 1]`` of a table, each entry's row in
    ``users`` and its index in the table, by row."""
    starts, counts = offsets[users], offsets[users + 1] - offsets[users]
    rows = np.repeat(np.arange(len(users)), counts)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return rows, starts[rows] + np.arange(len(rows)) - firsts[rows]


def candidate_pairs(ranks: list[np.ndarray], window: Window, users: np.ndarray, candidates: int, recent: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The (row in ``users``, item) candidate pairs, by row then item: each retriever's best ``candidates`` unseen
    items, and the user's ``recent`` latest distinct items."""
    seen = window.taken[users].toarray() > 0
    chosen = np.zeros(seen.shape, bool)
    for rank in ranks:
        chosen |= (rank <= candidates) & ~seen
    if recent:
        last = window.last_taken[users].toarray()  # 1 + days before now; 0 where never taken
        latest = np.argsort(np.where(last > 0, last, np.inf), axis=1, kind="stable")[:, :recent]
        mark = np.zeros(seen.shape, bool)
        np.put_along_axis(mark, latest, True, axis=1)
        chosen |= mark & seen
    return np.nonzero(chosen)


def full_ranking(predicted: np.ndarray, rows: np.ndarray, items: np.ndarray, first_ranks: np.ndarray,
                 n_rows: int) -> np.ndarray:
    """users x items scores, minus each item's position (1 = first) in the final order: a row's candidates first,
    by the ranker's prediction (ties, which a few trees' leaves make common, by the first retriever), then every
    other item in the first retriever's order (``first_ranks``: each row a permutation of 1..items)."""
    order = np.lexsort((first_ranks[rows, items], -predicted, rows))
    starts = np.searchsorted(rows[order], np.arange(n_rows))
    position = np.empty(len(rows), np.int64)
    position[order] = np.arange(len(rows)) - starts[rows[order]]
    counts = np.bincount(rows, minlength=n_rows)
    candidate_at_rank = np.zeros(first_ranks.shape, np.int64)
    candidate_at_rank[rows, first_ranks[rows, items] - 1] = 1
    candidates_before = np.take_along_axis(np.cumsum(candidate_at_rank, axis=1), first_ranks - 1, axis=1)
    out = -(counts[:, None] + first_ranks - candidates_before).astype(np.float64)
    out[rows, items] = -(1.0 + position)
    return out.astype(np.float32)
