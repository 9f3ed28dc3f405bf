"""Interactions generated inside Spark for scale tests: every row is a function of its row number and the seed, built
from ``spark.range`` and column expressions (``xxhash64`` as the random source), so nothing is built on the driver,
any number of executors can produce any slice, and the same seed gives the same rows whatever the partitioning.

Item popularity is Zipf-like: the item of popularity rank ``r`` (1 = most popular) is drawn with probability about
``r^-s`` (``popularity_exponent`` s), by inverting the continuous power law's distribution function,
``r = ((N + 1)^(1-s) - 1) u + 1)^(1/(1-s))`` for a uniform ``u`` (``r = (N + 1)^u`` when s = 1).

User activity is lognormal: user positions ``x`` in [0, 1) carry weights ``exp(sigma * Phi^-1(x))``; drawing a user
in proportion to its weight has the distribution function ``F(x) = Phi(Phi^-1(x) - sigma)``, so a row's user is at
``x = Phi(z + sigma)`` for a standard normal ``z`` (Box-Muller from two hashed uniforms). ``Phi`` is the logistic
approximation ``1 / (1 + exp(-(1.5976 t + 0.070566 t^3)))`` (Bowling et al. 2009, error below 1.4e-4). Each user's
expected count is therefore lognormal with log-spread ``sigma``; realised counts add Poisson noise.

Popularity and activity ranks are scattered over the ids by an affine bijection ``(a i + b) mod n`` (``a`` coprime
with ``n``), so ``i0`` is not the most popular item. Timestamps are uniform over the 365 days from ``start``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

YEAR_SECONDS = 365 * 86_400
START = 1_735_689_600
"""2025-01-01T00:00:00Z: the first second of the generated year."""
ROWS_PER_PARTITION = 2_000_000


def generate_interactions(
    spark: SparkSession,
    users: int,
    items: int,
    interactions: int,
    seed: int = 0,
    *,
    popularity_exponent: float = 0.9,
    activity_sigma: float = 1.0,
    start: int = START,
    partitions: int | None = None,
) -> DataFrame:
    """``interactions`` rows ``user_id, item_id, value (1.0), timestamp`` over ``users`` users (``u<n>``) and
    ``items`` items (``i<n>``), Zipf-like items and lognormal user activity (module docstring); lazily evaluated.
    ``partitions`` (default: one per 2,000,000 rows) changes only how the rows are spread, never which rows."""
    from pyspark.sql import functions as F

    for name, value in (("users", users), ("items", items), ("interactions", interactions)):
        if value < 1:
            raise ConfigError(f"generate_interactions needs {name} >= 1, got {value}.")
    if popularity_exponent < 0 or activity_sigma < 0:
        raise ConfigError(f"popularity_exponent and activity_sigma must be >= 0, got {popularity_exponent} and "
                          f"{activity_sigma}.")
    count = partitions or max(1, math.ceil(interactions / ROWS_PER_PARTITION))
    rows = spark.range(0, interactions, numPartitions=count)

    def uniform(stream: int) -> Column:
        """A uniform in (0, 1) from the row number, the seed and the stream number (53 bits of a 64-bit hash)."""
        bits = F.xxhash64(F.col("id"), F.lit(seed), F.lit(stream)).bitwiseAND(F.lit((1 << 53) - 1))
        return (bits.cast("double") + 0.5) / float(1 << 53)

    s = popularity_exponent
    if abs(s - 1.0) < 1e-9:
        rank = F.exp(uniform(0) * math.log(items + 1.0))
    else:
        top = (items + 1.0) ** (1.0 - s) - 1.0
        rank = F.pow(uniform(0) * top + 1.0, 1.0 / (1.0 - s))
    item_rank = F.least(F.floor(rank).cast("long") - 1, F.lit(items - 1))
    normal = F.sqrt(-2.0 * F.log(uniform(1))) * F.cos(2.0 * math.pi * uniform(2))
    t = normal + activity_sigma
    position = 1.0 / (1.0 + F.exp(-(1.5976 * t + 0.070566 * t * t * t)))
    user_rank = F.least(F.floor(position * users).cast("long"), F.lit(users - 1))
    return rows.select(
        F.concat(F.lit("u"), _scatter(user_rank, users, seed, 1).cast("string")).alias(USER_ID),
        F.concat(F.lit("i"), _scatter(item_rank, items, seed, 2).cast("string")).alias(ITEM_ID),
        F.lit(1.0).alias(VALUE),
        (F.lit(start) + F.floor(uniform(3) * YEAR_SECONDS).cast("long")).alias(TIMESTAMP),
    )


def _scatter(rank: Column, size: int, seed: int, stream: int) -> Column:
    """``(a rank + b) mod size``: a bijection of 0..size-1 that spreads popularity ranks over the ids."""
    multiplier = _coprime(size, 1_000_003 + 7_919 * (seed % 1_000) + stream)
    offset = (seed * 2_654_435_761 + stream) % size
    return (rank * multiplier + offset) % size  # rank, multiplier < size: the product fits a long below 3e9 ids


def _coprime(size: int, start: int) -> int:
    """The first integer from ``start % size`` (at least 1) up that is coprime with ``size``."""
    candidate = max(1, start % size) if size > 1 else 1
    while math.gcd(candidate, size) != 1:
        candidate += 1
    return candidate
