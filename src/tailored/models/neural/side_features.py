"""Side features of users and items for the neural hybrids (`ncf`, `two-tower`): sparse rows fed to EmbeddingBags.

Users: one ``column=value`` token per categorical attribute (as in `demographic`). Items: the `ItemEncoder` blocks
(categories, ``|`` lists, TF-IDF text, numeric bins, embedding vectors). Both encoders are stored as arrays with
the model, so users and items that arrive later are encoded identically; unseen values give no feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.features import ItemEncoder
from tailored.errors import DataError
from tailored.data.features import attribute_tokens, attribute_vocabulary, encode, numeric_bins
from tailored.models.neural.training import require_torch

MAX_USER_CATEGORIES = 50
MIN_DENSE_COLUMNS = 32
"""`feature_sums` takes the matrix-product path from this many columns held by most rows."""


def user_features(encoder: dict[str, np.ndarray], attributes: pd.DataFrame | None, n_rows: int) -> sp.csr_matrix:
    """Rows x user tokens (1 per token, each row L2-normalised); all zero without attributes."""
    columns = [str(c) for c in encoder["columns"]]
    if attributes is None or not columns:
        return sp.csr_matrix((n_rows, len(encoder["vocabulary"])), dtype=np.float32)
    table = attributes.reindex(columns=columns).reset_index(drop=True)
    tokens = attribute_tokens(table, columns, False, numeric_bins(columns, encoder.get("edges")))
    matrix = encode(tokens, encoder["vocabulary"])
    norms = np.sqrt(np.maximum(matrix.getnnz(axis=1), 1))
    return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix, dtype=np.float32)


def item_encoder(dataset: Dataset, max_text_features: int) -> dict[str, np.ndarray]:
    """The fitted `ItemEncoder` as arrays (no blocks when items carry no usable attribute)."""
    if dataset.item_attributes is None:
        return {"columns": np.empty(0, str), "kinds": np.empty(0, str)}
    try:
        return ItemEncoder(max_text_features=max_text_features).fit(dataset.item_attributes).to_arrays()
    except DataError:
        return {"columns": np.empty(0, str), "kinds": np.empty(0, str)}


def item_features(encoder: dict[str, np.ndarray], attributes: pd.DataFrame | None, n_rows: int) -> sp.csr_matrix:
    if attributes is None or len(encoder["columns"]) == 0:
        return sp.csr_matrix((n_rows, 0), dtype=np.float32)
    return ItemEncoder.from_arrays(encoder).transform(attributes.reset_index(drop=True))


def side_features(dataset: Dataset, max_text_features: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                                     sp.csr_matrix, sp.csr_matrix]:
    """User encoder, item encoder, user feature rows and item feature rows of a dataset."""
    users = attribute_vocabulary(dataset.user_attributes, MAX_USER_CATEGORIES)
    items = item_encoder(dataset, max_text_features)
    return (users, items, user_features(users, dataset.user_attributes, dataset.n_users),
            item_features(items, dataset.item_attributes, dataset.n_items))


def with_unknown_id(n: int, rows: np.ndarray, dropout: float, rng: np.random.Generator | None) -> np.ndarray:
    """Ids with a random ``dropout`` share replaced by the unknown id ``n`` (training; DropoutNet, Volkovs et al.
    2017), so that the model learns to score from features alone; unchanged when ``rng`` is None."""
    if rng is None or dropout <= 0:
        return rows
    return np.where(rng.random(len(rows)) < dropout, n, rows)


def feature_sums(bags: Sequence[Any], features: sp.csr_matrix) -> list[Any]:
    """Each bag's weighted sums of its embeddings over the feature rows, ``bag(*bag_inputs(features))``, with the
    columns that most rows hold (the dense blocks of `tailored embed`: hundreds of values per item) summed by one
    matrix product instead: the same sum, many times faster forward and backward than an EmbeddingBag over every
    value. The rows are split once for all the bags."""
    torch = require_torch()
    held = np.bincount(features.indices, minlength=features.shape[1]) > features.shape[0] / 2
    if held.sum() < MIN_DENSE_COLUMNS:
        inputs = bag_inputs(features)
        return [bag(*inputs) for bag in bags]
    dense, rest = torch.from_numpy(np.flatnonzero(held)), torch.from_numpy(np.flatnonzero(~held))
    indices, offsets, weights = bag_inputs(features[:, rest.numpy()])
    values = torch.from_numpy(features[:, dense.numpy()].toarray())
    embedding_bag = torch.nn.functional.embedding_bag
    return [embedding_bag(indices, bag.weight[rest], offsets, mode="sum", per_sample_weights=weights)
            + values @ bag.weight[dense] for bag in bags]


def bag_inputs(block: sp.csr_matrix) -> tuple[Any, Any, Any]:
    """``(indices, offsets, per_sample_weights)`` of sparse feature rows for ``torch.nn.EmbeddingBag``."""
    torch = require_torch()
    return (torch.from_numpy(block.indices.astype(np.int64)), torch.from_numpy(block.indptr[:-1].astype(np.int64)),
            torch.from_numpy(block.data.astype(np.float32)))
