"""`tailored split`: a split of an interactions file frozen to disk, proven free of leakage, with the attribute
tables cut the same way (the users and items only test holds are the new ones)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailored.data.columns import ITEM_ID, USER_ID
from tailored.data.io import PARQUET_SUFFIXES, read_attributes, write_table
from tailored.jobs.tasks import ColumnNames, load_dataset
from tailored.split import Split, carve_validation, check_leakage, split_by_name
from tailored.split.cold_start import attributes_by_part

WRITTEN = ["train.csv", "test.csv", "valid.csv", "users.csv", "items.csv", "split.json"] + [
    f"{kind}_{part}{suffix}"
    for kind in ("users", "items") for part in ("train", "new") for suffix in (".csv", ".parquet")]
"""Every file a split may write into its folder."""


@dataclass(frozen=True)
class AttributeParts:
    """One attribute table cut in two: the rows of ids in training, and of the new ids (in test only)."""

    kind: str
    suffix: str
    trained: int
    new: int


def split_files(
    interactions: Path,
    output_dir: Path,
    method: str,
    settings: dict[str, Any],
    valid_fraction: float | None = None,
    users: Path | None = None,
    items: Path | None = None,
    columns: ColumnNames = ColumnNames(),
) -> tuple[Split, dict[str, Any], list[AttributeParts]]:
    """Split ``interactions`` by ``method`` (its ``settings``; validation carved from training with
    ``valid_fraction``) into ``output_dir``, with ``users``/``items`` written as ``KIND_train`` and ``KIND_new``
    (Parquet stays Parquet). Returns the split, its leakage check and the attribute tables' parts."""
    dataset = load_dataset(interactions, columns=columns)
    attributes = {  # kind -> (table, id column, suffix)
        kind: (read_attributes(source, column), column,
               ".parquet" if source.suffix.lower() in PARQUET_SUFFIXES else ".csv")
        for kind, source, column in (("users", users, USER_ID), ("items", items, ITEM_ID)) if source is not None
    }
    result = split_by_name(dataset, method, **settings)
    if valid_fraction is not None:
        seed = settings.get("seed")
        carved = carve_validation(result, fraction=valid_fraction, seed=42 if seed is None else seed)
        result = Split(carved.train, result.test, carved.test, result.name, result.params, result.dataset_fingerprint)
    leakage = check_leakage(result)
    result.save(output_dir)
    parts = []
    for kind, (table, column, suffix) in attributes.items():
        trained, new = attributes_by_part(result, table, column)
        write_table(trained, output_dir / f"{kind}_train{suffix}")
        write_table(new, output_dir / f"{kind}_new{suffix}")
        parts.append(AttributeParts(kind, suffix, len(trained), len(new)))
    return result, leakage, parts
