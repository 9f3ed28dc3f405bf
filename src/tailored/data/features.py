"""Item attribute vectors: one-hot categories, multi-hot ``|`` lists and TF-IDF text, for content models and
intra-list diversity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.errors import DataError

TEXT_COLUMNS = frozenset({"title", "tags", "text", "description"})


def attribute_vectors(
    attributes: pd.DataFrame, text_columns: set[str] | frozenset[str] = TEXT_COLUMNS, max_categories: int = 1000
) -> sp.csr_matrix:
    """Items x features: one block per usable column, each block's rows L2-normalised, then the rows."""
    blocks = []
    for name in attributes.columns:
        column = attributes[name]
        if column.isna().all():
            continue
        if name in text_columns:
            text = column.fillna("").astype(str)
            if not text.str.contains(r"\w\w", regex=True).any():
                continue
            from sklearn.feature_extraction.text import TfidfVectorizer  # imported here: sklearn is slow to load

            block = TfidfVectorizer(sublinear_tf=True).fit_transform(text)
        else:
            values = column.astype("string")
            if values.str.contains("|", regex=False).any():
                block = values.fillna("").str.get_dummies(sep="|")
            elif values.nunique() <= max_categories:
                block = pd.get_dummies(values, dtype=np.float64)
            else:
                continue
            block = sp.csr_matrix(block.to_numpy(np.float64))
        blocks.append(normalize_rows(block))
    if not blocks:
        raise DataError(
            f"No usable item attribute among {list(attributes.columns)}: 'content' needs categorical, '|'-separated "
            f"or text columns ({', '.join(sorted(text_columns))})."
        )
    return normalize_rows(sp.hstack(blocks).tocsr())


def normalize_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix)
