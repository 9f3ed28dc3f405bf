"""`tailored embed`: multimodal item features computed offline (text, images, supplied vectors)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tailored.data.columns import ITEM_ID
from tailored.data.io import read_attributes
from tailored.errors import DataError
from tailored.jobs.tasks import Progress


def embed_items(
    items: str | Path,
    text_columns: list[str],
    image_column: str | None = None,
    image_root: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    vectors: str | Path | None = None,
    vectors_column: str = "image_embedding",
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The items table with a ``text_embedding`` column (MiniLM of the text columns joined), an
    ``image_descriptor`` column and/or a ``vectors_column`` of embeddings supplied in a NumPy file
    (`supplied_vectors`); also returns the rows whose image could not be read, with the reason. ``progress`` gets
    (what, done, total) with ``what`` "texts" or "images"."""
    from tailored.data.embeddings import image_descriptors, supplied_vectors, text_embeddings

    table = read_attributes(items, id_column=ITEM_ID)
    missing = [c for c in [*text_columns, *([image_column] if image_column else [])] if c not in table.columns]
    if missing:
        raise DataError(f"{items} has no column(s) {missing}; columns are {list(table.columns)}.")
    if not text_columns and image_column is None and vectors is None:
        raise DataError("Nothing to embed: give --text-columns, --image-column and/or --vectors.")
    if vectors is not None and vectors_column in table.columns:
        raise DataError(f"{items} already has a column {vectors_column!r}: choose another --vectors-column.")
    supplied = supplied_vectors(vectors, table[ITEM_ID].astype(str).tolist()) if vectors is not None else None
    failures: dict[int, str] = {}
    if text_columns:
        texts = table[text_columns].fillna("").astype(str).agg(". ".join, axis=1).str.strip(". ")
        table["text_embedding"] = list(text_embeddings(texts.tolist(), progress=_labelled(progress, "texts")))
    if image_column is not None:
        paths = table[image_column].tolist()
        descriptors, failures = image_descriptors(paths, image_root, _labelled(progress, "images"))
        table["image_descriptor"] = list(descriptors)
    if supplied is not None:
        table[vectors_column] = list(supplied)
    return table, failures


def _labelled(progress: Callable[[str, int, int], None] | None, what: str) -> Progress | None:
    return None if progress is None else lambda done, total: progress(what, done, total)
