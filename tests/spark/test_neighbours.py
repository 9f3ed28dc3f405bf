"""`item_neighbours`: the local item-knn's similarity matrix (cosine, asymmetric cosine with shrink, rp3beta) and
co-occurrence counts, computed by the self-join on Spark, kept per target item as the local pruning keeps them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.transforms import apply_weighting, resolve_weighting
from tailored.errors import ConfigError
from tailored.models.knn import ItemKNNScorer
from tailored.spark.neighbours import item_neighbours
from tests.spark.test_als import counts


def as_matrix(frame: pd.DataFrame, dataset: Dataset) -> sp.csr_matrix:
    """Our neighbours as the local ``similarity_[neighbour, item]``."""
    rows = dataset.items.index(frame["neighbour_id"].to_numpy(), missing="raise")
    columns = dataset.items.index(frame["item_id"].to_numpy(), missing="raise")
    return sp.csr_matrix((frame["similarity"].to_numpy(), (rows, columns)), shape=(dataset.n_items,) * 2)


@pytest.mark.parametrize("params", [
    {"similarity": "cosine", "alpha": 0.7, "shrink": 2.0, "weighting": "log1p"},
    {"similarity": "rp3beta", "alpha": 0.6, "beta": 0.5, "weighting": "binary"},
])
def test_similarity_is_the_local_item_knns(spark, params) -> None:
    frame = counts(seed=2, rows=250)
    dataset = Dataset.from_frame(frame)
    weighting = params.pop("weighting")
    concrete, _ = resolve_weighting(weighting, dataset, explicit=False)
    full = ItemKNNScorer(neighbors=100, **params).fit(apply_weighting(dataset, concrete)).similarity_
    few = ItemKNNScorer(neighbors=4, **params).fit(apply_weighting(dataset, concrete)).similarity_.tocsc()
    kept = item_neighbours(spark.createDataFrame(frame), neighbors=4, weighting=weighting, **params).toPandas()
    assert len(kept) == few.nnz and full.nnz > 3 * few.nnz  # the pruning kept 4 per item of many more
    mine = as_matrix(kept, dataset)
    np.testing.assert_allclose(mine[mine.nonzero()].A1, full[mine.nonzero()].A1, rtol=1e-5)  # the local values
    for j, column in kept.groupby("item_id"):  # and the 4 largest of each item (ties may keep another neighbour)
        expected = np.sort(few[:, dataset.items.position(j)].data)[::-1]
        np.testing.assert_allclose(np.sort(column["similarity"].to_numpy())[::-1], expected, rtol=1e-5)


def test_cooccurrence_counts_users_with_both_and_errors(spark) -> None:
    frame = counts(seed=4, rows=150)
    dataset = Dataset.from_frame(frame)
    binary = (dataset.matrix() > 0).astype(np.float64)
    both = (binary.T @ binary).toarray()
    np.fill_diagonal(both, 0.0)
    mine = as_matrix(item_neighbours(spark.createDataFrame(frame), similarity="cooccurrence", neighbors=50)
                     .toPandas(), dataset)
    np.testing.assert_array_equal(mine.toarray(), both)
    df = spark.createDataFrame(frame)
    with pytest.raises(ConfigError, match="feature_weighting='bm25' is not available"):
        item_neighbours(df, feature_weighting="bm25")
    with pytest.raises(ConfigError, match="similarity='jaccard'"):
        item_neighbours(df, similarity="jaccard")
