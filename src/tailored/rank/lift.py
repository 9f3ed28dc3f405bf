"""Periodic lifts shared by the time stages: how much more (or less) an item sells in one bucket of a cycle (week of
the year, hour of the week) than the catalogue does, and the score adjustment that applies it: the one lift adjuster
(`PeriodicAdjuster`), whose presets (`Cycle`, `preset`) are the `seasonal` and `time-of-day` stages."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import standardize
from tailored.rank.base import Request, register_stage
from tailored.query import Context

Buckets = Callable[[np.ndarray], np.ndarray]
"""Unix seconds -> bucket indices of the cycle."""

IN_SEASON = 1.5
"""Lift from which an item counts as lifted on the request's date (its reason reads "in season" for the seasonal
preset); the items lifted by a preset with a ``marks`` key are left in the request's tally under it."""


@dataclass(frozen=True)
class Cycle:
    """What a preset of `PeriodicAdjuster` learns over: the stage name, the buckets of the cycle (``n_buckets``, each
    made of periods of ``unit`` seconds: days for weeks of the year, hours for hours), the name of the smoothing
    parameter (in buckets: ``smoothing_weeks``), the default ``min_history_days``, the reasons given to lifted and
    lowered items and, optionally, the tally key under which the lifted items are left for a later stage."""

    stage: str
    class_name: str
    buckets: Buckets
    n_buckets: int
    unit: int
    smoothing: str
    min_history_days: float
    rising: str
    falling: str
    marks: str | None = None


@dataclass(eq=False)
class PeriodicAdjuster:
    """A lift per item and bucket of its ``cycle`` (`learn_lift`), and ``strength * log(lift)`` of the request's bucket
    added to each user's standardised scores. Its presets (`preset`: seasonal, time-of-day) name the cycle."""

    learns: ClassVar[bool] = True
    cycle: ClassVar[Cycle]

    strength: float = 2.0
    prior: float | None = None
    min_history_days: float = 0.0
    min_gain: float = 0.0

    def fit(self, dataset: Dataset) -> Self:
        cycle = self.cycle
        prior = 1.0 if self.prior is None else self.prior
        smoothing = getattr(self, cycle.smoothing)
        for key, value, valid in (("strength", self.strength, self.strength >= 0), ("prior", prior, prior > 0),
                                  ("smoothing", smoothing, smoothing >= 0)):
            if not (valid and math.isfinite(value)):
                raise ConfigError(f"Stage '{cycle.stage}' parameter {key} = {value!r} is invalid: strength must "
                                  f"be >= 0, prior > 0 (or none: chosen on held-out users) and smoothing a whole "
                                  f"number >= 0.")
        priors = PRIORS if self.prior is None else (self.prior,)
        self.lift_, self.prior_ = learn_lift(dataset, cycle.buckets, cycle.n_buckets, cycle.unit, priors,
                                             int(smoothing), self.min_history_days, self.min_gain)
        return self

    @property
    def inert(self) -> bool:
        """Nothing was learned: every score is left as it is."""
        return len(self.lift_) == 0

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        if self.cycle.marks and not self.inert and request.context.moment is not None:
            lifted = self.lift_[:, request_bucket(self.cycle.buckets, request.context)] >= IN_SEASON
            request.tally[self.cycle.marks] = lifted
        return apply_lift(scores, self.lift_, self.cycle.buckets, request, self.strength)

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        return lift_reasons(items, self.lift_, self.cycle.buckets, request.context, self.cycle.rising,
                            self.cycle.falling)


def preset(cycle: Cycle, module: str) -> type[PeriodicAdjuster]:
    """The stage class of ``cycle`` (registered under ``cycle.stage``, defined in ``module``): `PeriodicAdjuster`'s
    parameters with the cycle's default ``min_history_days`` and its smoothing parameter (default 1 bucket)."""
    fields = [("min_history_days", float, cycle.min_history_days), (cycle.smoothing, int, 1)]
    doc = f"The '{cycle.stage}' preset of `PeriodicAdjuster`: {cycle.n_buckets} buckets of `{cycle.buckets.__name__}`."
    cls = dataclasses.make_dataclass(cycle.class_name, fields, bases=(PeriodicAdjuster,), eq=False,
                                     namespace={"cycle": cycle, "__module__": module, "__doc__": doc})
    return register_stage(cycle.stage)(cls)


PRIORS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
"""The ``prior`` values tried on the held-out users when none is given."""

HOLDOUT_USERS = 5
"""One user in this many (by index) is held out: the profiles learned on the others must predict when the held-out
users take their items better than the catalogue's curve, or nothing is learned."""

STOPPED_SALES = 5.0
"""An item whose own rate predicts at least this many sales after its last one has stopped selling (its season
ended): its exposure counts from the history's start. Otherwise (still selling: a launch, or an item sold all along)
it counts from its first sale, so that a product launched in October is not taken to be out of season in March."""


def learn_lift(dataset: Dataset, buckets: Buckets, n_buckets: int, unit: int, priors: tuple[float, ...],
               smoothing: int, min_history_days: float, min_gain: float) -> tuple[np.ndarray, float]:
    """`periodic_lift` of the dataset's interactions with the best of ``priors``, and that prior; the lift is empty
    (none) without timestamps, with a history shorter than ``min_history_days`` (too short to show the cycle), or when
    the items' profiles do not predict when they are taken: profiles learned without one user in ``HOLDOUT_USERS``
    must give the held-out users' interactions a mean log-lift above ``min_gain`` nats (the prior that gives the
    highest is chosen). Rating sessions at odd hours (MovieLens) fail; breakfast in the morning and foie gras at
    Christmas pass, even for items with a dozen sales and for a single year of history."""
    none = np.ones((0, n_buckets), np.float32), float("nan")
    timestamps = dataset.timestamps
    if timestamps is None or len(timestamps) == 0 or np.ptp(timestamps) < min_history_days * DAY:
        return none
    seconds = np.asarray(timestamps, np.int64)
    items = dataset.item_index
    held = dataset.user_index % HOLDOUT_USERS == 0
    if not held.any() or held.all():
        return none
    cells = buckets(seconds[held])
    gains = []
    sales = sales_and_expected(items[~held], seconds[~held], dataset.n_items, buckets, n_buckets, unit)
    for prior in priors:  # only the shrinkage depends on the prior
        learned = shrunk_lift(*sales, prior, smoothing)
        gains.append(float(np.mean(np.log(np.maximum(learned[items[held], cells], 1e-6)))))
    if max(gains) <= min_gain:
        return none
    prior = priors[int(np.argmax(gains))]
    return periodic_lift(items, seconds, dataset.n_items, buckets, n_buckets, unit, prior, smoothing), prior


def apply_lift(scores: np.ndarray, lift: np.ndarray, buckets: Buckets, request: Request, strength: float) -> np.ndarray:
    """`add_log_lift` for the bucket of the request's moment; scores unchanged when nothing was learned or the
    request has no moment."""
    if len(lift) == 0 or request.context.moment is None:
        return scores
    bucket = request_bucket(buckets, request.context)
    return add_log_lift(scores, lift[:, bucket], strength, request)


def request_bucket(buckets: Buckets, context: Context) -> int:
    """The bucket of the request's moment."""
    return int(buckets(np.array([int(context.when().timestamp())]))[0])


def lift_reasons(items: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, rising: str, falling: str,
                 threshold: float = 1.5) -> np.ndarray:
    """``"<rising> x2.4"`` / ``"<falling> x0.3"`` for listed items whose lift in the request's bucket is at least
    ``threshold`` (or at most its inverse); "" otherwise."""
    reasons = np.full(items.shape, "", dtype=object)
    if len(lift) == 0 or context.moment is None:
        return reasons
    bucket = request_bucket(buckets, context)
    learned = (items >= 0) & (items < len(lift))
    values = np.where(learned, lift[np.where(learned, items, 0), bucket], 1.0)
    reasons[values >= threshold] = [f"{rising} x{value:.1f}" for value in values[values >= threshold]]
    reasons[values <= 1 / threshold] = [f"{falling} x{value:.1f}" for value in values[values <= 1 / threshold]]
    return reasons


def periodic_lift(items: np.ndarray, seconds: np.ndarray, n_items: int, buckets: Buckets, n_buckets: int, unit: int,
                  prior: float, smoothing: int) -> np.ndarray:
    """Items x buckets lift: how many times more an item sells in a bucket than the catalogue's sales there predict.

    Expected sales ``e_i(b)`` spread the item's sales over the catalogue's sales (per ``unit`` of time: a day, an
    hour) from the start of its exposure (`STOPPED_SALES`) to the end of the history; ``c_i(b)`` are its sales. Both
    are summed over circular windows of ``±smoothing`` buckets, then of doubling widths up to the whole cycle; each
    window's lift ``(c + prior * wider) / (e + prior)`` is shrunk towards the next wider one (the whole cycle: 1).
    An item sold 300 times in December, never in March, has a March lift near 0.01 (every window around March is
    empty); one with a dozen sales is pulled to its wider windows, a bucket it was never exposed to is read from
    them."""
    return shrunk_lift(*sales_and_expected(items, seconds, n_items, buckets, n_buckets, unit), prior, smoothing)


def sales_and_expected(items: np.ndarray, seconds: np.ndarray, n_items: int, buckets: Buckets, n_buckets: int,
                       unit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`periodic_lift`'s evidence, whatever the prior: items x buckets sales ``c`` and expected sales ``e``, and each
    item's `dispersion`."""
    period = seconds // unit
    origin = int(period.min())
    period = (period - origin).astype(np.int64)
    n_periods = int(period.max()) + 1
    sales = np.bincount(period, minlength=n_periods).astype(np.float64)
    from_period = np.zeros((n_periods + 1, n_buckets))  # row t: the catalogue's sales per bucket from period t on
    from_period[np.arange(n_periods), buckets((np.arange(n_periods) + origin) * unit)] = sales
    from_period = np.cumsum(from_period[::-1], axis=0)[::-1]
    counts = np.zeros((n_items, n_buckets))
    np.add.at(counts, (items, buckets(seconds)), 1.0)
    sold = counts.sum(axis=1)
    first = np.full(n_items, n_periods, np.int64)
    np.minimum.at(first, items, period)
    last = np.full(n_items, -1, np.int64)
    np.maximum.at(last, items, period)
    rate = sold / np.maximum(from_period[first].sum(axis=1), 1.0)
    stopped = rate * from_period[last + 1].sum(axis=1) >= STOPPED_SALES
    exposure = from_period[np.where(stopped, 0, first)]
    expected = exposure * (sold / np.maximum(exposure.sum(axis=1), 1.0))[:, None]
    return counts, expected, dispersion(counts, expected)


def shrunk_lift(counts: np.ndarray, expected: np.ndarray, excess: np.ndarray, prior: float,
                smoothing: int) -> np.ndarray:
    """`periodic_lift` from its evidence (`sales_and_expected`): the windows' lifts shrunk with ``prior``."""
    n_items, n_buckets = counts.shape
    pseudo = np.where(excess > 0, np.minimum(prior, counts.sum(axis=1) / np.maximum(excess, 1e-12)), prior)[:, None]
    widths = [smoothing]
    while 2 * widths[-1] + 1 < n_buckets:
        widths.append(max(1, 2 * widths[-1]))
    lift = np.ones((n_items, n_buckets))
    for width in reversed(widths):
        lift = (circular_sum(counts, width) + pseudo * lift) / (circular_sum(expected, width) + pseudo)
    return lift.astype(np.float32)


def dispersion(counts: np.ndarray, expected: np.ndarray, blocks: int = 12) -> np.ndarray:
    """Per item, how far its sales vary over ``blocks`` stretches of the cycle beyond chance: Pearson's X^2 of its
    sales against the expected ones, less K + 2 sqrt(2K) (K stretches exposed: the mean and two standard deviations
    of X^2 for an item that does not vary). Positive for a season: ``sales / excess`` estimates ``a`` of a Gamma(a, a)
    lift, the item's pseudo-sales in `periodic_lift` (at most ``prior``), so that a season's own evidence counts."""
    block = np.arange(counts.shape[1]) * blocks // counts.shape[1]
    sold = np.add.reduceat(counts, np.flatnonzero(np.diff(block, prepend=-1)), axis=1)
    due = np.add.reduceat(expected, np.flatnonzero(np.diff(block, prepend=-1)), axis=1)
    exposed = due > 0
    chi2 = np.where(exposed, (sold - due) ** 2 / np.where(exposed, due, 1.0), 0.0).sum(axis=1)
    stretches = exposed.sum(axis=1)
    return chi2 - stretches - 2 * np.sqrt(2 * stretches)


def circular_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Each column's sum over the columns within ``±width`` of it, the last column next to the first."""
    if 2 * width + 1 >= values.shape[1]:
        return np.repeat(values.sum(axis=1, keepdims=True), values.shape[1], axis=1)
    wrapped = np.concatenate([values[:, values.shape[1] - width :], values, values[:, :width]], axis=1)
    total = np.concatenate([np.zeros((len(values), 1)), np.cumsum(wrapped, axis=1)], axis=1)
    return total[:, 2 * width + 1 :] - total[:, : -(2 * width + 1)]


BOUND = 3.0
"""Standardised scores are softly bounded to ±BOUND before an adjustment is added: a heavy-tailed scorer (popularity:
a bestseller 6 standard deviations above the rest) must not outvote a season in which the item never sells. Chosen
on the July validation month of the synthetic history (docs/stages.md)."""


ON_SCALE = "scores on the bounded scale"
"""The request's tally key naming the block (its `Request`) whose scores an `add_log_lift` already brought to the
bounded scale."""


def add_log_lift(scores: np.ndarray, lift: np.ndarray, strength: float, request: Request | None = None) -> np.ndarray:
    """`bounded` scores plus ``strength * log(lift)`` of their item: the item's odds times ``lift ** strength``.
    Items beyond ``lift`` (added after training) get no lift; -inf stays -inf. Given the ``request``, a block already
    brought to the bounded scale by an earlier `add_log_lift` is not bounded again, so that the factors of successive
    stages (season, hour, events) multiply instead of the later ones squashing the earlier ones."""
    full = np.ones(scores.shape[1], np.float32)
    full[: len(lift)] = np.maximum(lift, 1e-6)
    scaled = request is not None and request.tally.get(ON_SCALE) is request
    if request is not None:
        request.tally[ON_SCALE] = request
    return (scores if scaled else bounded(scores)) + (strength * np.log(full)).astype(np.float32)


def bounded(scores: np.ndarray) -> np.ndarray:
    """`standardize`d scores through ``BOUND * tanh(z / BOUND)``: the same order, z near 0 unchanged, tails within
    ±BOUND; -inf stays -inf."""
    z = standardize(scores)
    return np.where(np.isfinite(z), BOUND * np.tanh(z / BOUND), z).astype(scores.dtype)

