"""Item-item similarity on Spark: the local ``item-knn`` scorer's similarities (`tailored.models.knn`) by a
distributed sparse product, the self-join of the user x item matrix on users, each item keeping its ``neighbors``
most similar items.

For target item ``j`` and neighbour ``i`` (the local ``similarity_[i, j]``: a user's score for ``j`` sums it over
the user's items ``i``), over the weighted values ``w_ui`` of the Recommender (`weighted_interactions`):

* ``cosine``: ``sum_u w_ui w_uj / (|w_i|^(2 alpha) |w_j|^(2 (1 - alpha)) + shrink)`` (alpha 0.5: the cosine; other
  values Aiolli's asymmetric cosine);
* ``rp3beta``: ``sum_u b_ui b_uj / (deg_i^alpha deg_u^alpha deg_j^beta)`` with ``b`` the binary matrix and the
  degrees its row and column sums (the random walk user -> item -> user -> item, popularity-penalised);
* ``cooccurrence``: ``sum_u b_ui b_uj``, the number of users who have both (not a local item-knn similarity: the
  support that complementary items and "bought together" lists start from).

An item is never its own neighbour, only positive similarities are kept, and the ``neighbors`` largest per target
item (ties by neighbour id). The self-join costs ``sum_u deg_u^2`` rows: cap heavy users' histories first (k-core,
history window) on data with users of tens of thousands of items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tailored.data.columns import ITEM_ID, USER_ID, VALUE
from tailored.config import json_safe
from tailored.errors import ConfigError
from tailored.models.base import params_of
from tailored.models.knn import ItemKNNScorer
from tailored.spark.als import resolve_weighting, weighted_interactions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

NEIGHBOUR_ID = "neighbour_id"
SIMILARITY = "similarity"
SIMILARITIES = ("cosine", "rp3beta", "cooccurrence")


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


@dataclass
class SparkNeighbours:
    """A trained item-knn model: ``neighbours`` (``item_id, neighbour_id, similarity``) and the parameters (the local
    scorer's, the Recommender's weighting as resolved)."""

    neighbours: DataFrame
    params: dict[str, Any] = field(default_factory=dict)


def train_item_knn(df: DataFrame, *, weighting: str = "auto", confidence_alpha: float = 1.0,
                   decay_half_life_days: float | None = None, **params: Any) -> SparkNeighbours:
    """The local ``item-knn`` scorer (``params``: its hyperparameters, ``recency_half_life`` infinite: every
    interaction counts) fitted inside a Recommender, for `tailored.spark.model_dir.write_model_dir`."""
    scorer = ItemKNNScorer(**params)
    if scorer.recency_half_life != float("inf"):
        raise ConfigError("recency_half_life is not available on Spark (each user's k-th latest interaction weighed "
                          "needs the whole history in order); leave it infinite.")
    concrete, _ = resolve_weighting(df, weighting)
    given = {name: value for name, value in params_of(scorer).items() if name != "recency_half_life"}
    neighbours = item_neighbours(df, weighting=concrete, confidence_alpha=confidence_alpha,
                                 decay_half_life_days=decay_half_life_days, **given)
    return SparkNeighbours(neighbours, {"algorithm": "item-knn", "scorer": json_safe(params_of(scorer)),
                                        "weighting": concrete, "confidence_alpha": confidence_alpha,
                                        "decay_half_life_days": decay_half_life_days})


def item_neighbours(df: DataFrame, *, similarity: str = ItemKNNScorer.similarity,
                    neighbors: int = ItemKNNScorer.neighbors, alpha: float = ItemKNNScorer.alpha,
                    beta: float = ItemKNNScorer.beta, shrink: float = ItemKNNScorer.shrink,
                    feature_weighting: str = ItemKNNScorer.feature_weighting, weighting: str = "auto",
                    confidence_alpha: float = 1.0, decay_half_life_days: float | None = None) -> DataFrame:
    """``item_id, neighbour_id, similarity``: each item's ``neighbors`` most similar items (the module docstring's
    definitions, the local ``item-knn`` parameters) over ``df``'s interactions weighted as the Recommender weighs
    them (``weighting``, ``confidence_alpha``, ``decay_half_life_days``)."""
    from pyspark.sql.window import Window

    F = _functions()
    if similarity not in SIMILARITIES:
        raise ConfigError(f"similarity={similarity!r} is not one of {', '.join(SIMILARITIES)}.")
    if feature_weighting != "none":
        raise ConfigError(f"feature_weighting={feature_weighting!r} is not available on Spark; use 'none' (BM25 and "
                          "TF-IDF re-weighting run in the local item-knn).")
    if neighbors < 1:
        raise ConfigError(f"neighbors must be 1 or more, got {neighbors}.")
    weighted, _ = weighted_interactions(df, weighting, confidence_alpha, decay_half_life_days)
    if similarity == "cosine":
        vectors = weighted.where(F.col(VALUE) != 0)
        norms = vectors.groupBy(ITEM_ID).agg(F.sqrt(F.sum(F.col(VALUE) * F.col(VALUE))).alias("norm"))
        entries = vectors.join(norms, ITEM_ID)
        left = entries.select(USER_ID, F.col(ITEM_ID).alias("i"), F.col(VALUE).alias("wi"),
                              F.pow(F.col("norm"), 2.0 * alpha).alias("di"))
        right = entries.select(USER_ID, F.col(ITEM_ID).alias("j"), F.col(VALUE).alias("wj"),
                               F.pow(F.col("norm"), 2.0 * (1.0 - alpha)).alias("dj"))
        dots = (left.join(right, USER_ID).where(F.col("i") != F.col("j"))
                .groupBy("i", "j").agg(F.sum(F.col("wi") * F.col("wj")).alias("dot"),
                                       F.first("di").alias("di"), F.first("dj").alias("dj")))
        denominator = F.col("di") * F.col("dj") + float(shrink)
        scored = dots.select("i", "j", (F.col("dot") / F.when(denominator > 0, denominator).otherwise(1.0))
                             .alias(SIMILARITY))
    else:
        binary = weighted.where(F.col(VALUE) > 0).select(USER_ID, ITEM_ID)
        users = binary.groupBy(USER_ID).agg(F.count("*").cast("double").alias("du"))
        items = binary.groupBy(ITEM_ID).agg(F.count("*").cast("double").alias("di"))
        entries = binary.join(users, USER_ID).join(items, ITEM_ID)
        if similarity == "rp3beta":
            left = entries.select(USER_ID, F.col(ITEM_ID).alias("i"),
                                  (F.pow(F.col("di"), -alpha) * F.pow(F.col("du"), -alpha)).alias("wi"))
            right = entries.select(USER_ID, F.col(ITEM_ID).alias("j"), F.pow(F.col("di"), -beta).alias("wj"))
        else:
            left = entries.select(USER_ID, F.col(ITEM_ID).alias("i"), F.lit(1.0).alias("wi"))
            right = entries.select(USER_ID, F.col(ITEM_ID).alias("j"), F.lit(1.0).alias("wj"))
        scored = (left.join(right, USER_ID).where(F.col("i") != F.col("j"))
                  .groupBy("i", "j").agg(F.sum(F.col("wi") * F.col("wj")).alias(SIMILARITY)))
    order = Window.partitionBy("j").orderBy(F.col(SIMILARITY).desc(), F.col("i"))
    return (scored.where(F.col(SIMILARITY) > 0).withColumn("position", F.row_number().over(order))
            .where(F.col("position") <= neighbors)
            .select(F.col("j").alias(ITEM_ID), F.col("i").alias(NEIGHBOUR_ID), F.col(SIMILARITY).cast("double")))
