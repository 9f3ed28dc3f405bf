"""What a trained model makes of the attribute tables it was given: the columns it uses, how, and why it leaves
the others out (`tailored train` prints it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.features import is_vector_column, numeric_bins, value_text
from tailored.pipeline.recommender import Recommender


def attribute_report(recommender: Recommender, dataset: Dataset) -> list[str]:
    """A line each for the users' and the items' attribute tables of ``dataset``: the columns the fitted model uses
    (and how, where not as categories) and the columns it leaves out, with the reason."""
    lines = []
    if dataset.user_attributes is not None:
        vocabulary = recommender.user_vocabulary_
        bins = numeric_bins(vocabulary["columns"], vocabulary.get("edges"))
        tokens = pd.Series(vocabulary["vocabulary"], dtype=str).str.split("=", n=1).str[0].value_counts()
        used = {str(name): f"{len(bins[name]) + 1} bins" if name in bins
                else _categories_kept(int(tokens.get(name, 0)), dataset.user_attributes[name])
                for name in vocabulary["columns"]}
        lines.append(_attribute_line("user", used, dataset.user_attributes))
    if dataset.item_attributes is not None:
        encoder = recommender.item_encoder_ or {"columns": [], "kinds": []}
        used = {str(name): _item_use(str(kind), encoder[f"vocabulary_{i}"], dataset.item_attributes[name])
                for i, (name, kind) in enumerate(zip(encoder["columns"], encoder["kinds"]))}
        lines.append(_attribute_line("item", used, dataset.item_attributes))
    return lines


def _attribute_line(kind: str, used: dict[str, str], table: pd.DataFrame) -> str:
    names = [f"{name} ({how})" if how else name for name, how in used.items()] or ["none"]
    left_out = [f"{name} ({_why_left_out(table[name])})" for name in table.columns if name not in used]
    return f"{kind} attributes used: {', '.join(names)}" + (f"; left out: {', '.join(left_out)}" if left_out else "")


def _item_use(kind: str, vocabulary: np.ndarray, column: pd.Series) -> str:
    if kind == "vector":
        return f"vector of {int(vocabulary[0])}"
    if kind == "numeric":
        return f"{len(vocabulary) + 1} bins"
    return {"multi": "'|' list", "text": "text"}.get(kind) or _categories_kept(len(vocabulary), column)


def _categories_kept(kept: int, column: pd.Series) -> str:
    """'' when every value of a categorical column is a category, else how many are (the rarer ones are unknown)."""
    distinct = value_text(column.dropna()).nunique()
    return f"the {kept:,} most shared of {distinct:,} values, the others as unknown" if kept < distinct else ""


IMAGE_FILE = r"\.(?:jpe?g|png|gif|webp|bmp|tiff?)$"
"""A value naming an image file."""


def _why_left_out(column: pd.Series) -> str:
    if is_vector_column(column):
        return "vectors: user attributes are categories and numbers"
    values = column.dropna().astype(str)
    distinct = values.nunique()
    if distinct <= 1:
        return "no value" if values.empty else "the same value everywhere"
    if values.str.contains(IMAGE_FILE, case=False).mean() > 0.5:
        return f"image files: `tailored embed --image-column {column.name}` makes features of them"
    if distinct == len(values):
        return "a different value in every row"
    return f"{distinct:,} distinct values, mostly rare"
