"""Split: train/test[/valid] Datasets sharing one pair of IdMaps, frozen to disk; shared vectorised helpers.

Randomised splitters draw one uniform key per row in a canonical order (user id, item id, timestamp), so a
split depends on the seed and the data, never on the order of the rows in the input file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.data.dataset import Dataset
from tailored.data.idmap import IdMap
from tailored.data.ordering import id_ranks
from tailored.errors import ConfigError, DataError

FORMAT_VERSION = 1
PARTS = ("train", "test", "valid")


@dataclass(frozen=True, eq=False)
class Split:
    """Train and test (and optional validation) interactions of one dataset, without leakage.

    ``params`` holds the splitter's arguments (including ``seed``) and any counts it flagged; it is JSON-native
    so that ``save``/``load`` restore it exactly. ``dataset_fingerprint`` names the data the split was cut from.
    """

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    name: str = "split"
    params: dict[str, Any] = field(default_factory=dict)
    dataset_fingerprint: str | None = None

    def parts(self) -> dict[str, Dataset]:
        """The non-empty parts by name (``train``, ``test`` and ``valid`` when present)."""
        found = {"train": self.train, "test": self.test, "valid": self.valid}
        return {name: part for name, part in found.items() if part is not None}

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Rows, distinct users and distinct items of each part."""
        return {
            name: {
                "rows": len(part),
                "users": int(np.unique(part.user_index).size),
                "items": int(np.unique(part.item_index).size),
            }
            for name, part in self.parts().items()
        }

    def save(self, directory: str | Path) -> None:
        """Write ``train.csv``, ``test.csv`` [``valid.csv``] (external ids), ``users.csv``/``items.csv`` (id order
        and attributes) and ``split.json`` (name, params, seed, counts, fingerprints, column types)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        dtypes = {name: _write_csv(part.to_frame(), directory / f"{name}.csv") for name, part in self.parts().items()}
        for kind, idmap, attributes, id_column in (
            ("users", self.train.users, self.train.user_attributes, USER_ID),
            ("items", self.train.items, self.train.item_attributes, ITEM_ID),
        ):
            table = pd.DataFrame({id_column: idmap.external_ids})
            if attributes is not None:
                table = pd.concat([table, attributes.reset_index(drop=True)], axis=1)
            dtypes[kind] = _write_csv(table, directory / f"{kind}.csv")
        manifest = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "params": self.params,
            "seed": self.params.get("seed"),
            "counts": self.counts,
            "dataset_fingerprint": self.dataset_fingerprint,
            "fingerprints": {name: part.fingerprint() for name, part in self.parts().items()},
            "attributes": {
                "users": self.train.user_attributes is not None,
                "items": self.train.item_attributes is not None,
            },
            "dtypes": dtypes,
        }
        (directory / "split.json").write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Split:
        """Restore a saved split exactly (same ids, index order, rows, attributes, params); files edited since
        ``save`` raise ``DataError``."""
        directory = Path(directory)
        path = directory / "split.json"
        if not path.exists():
            raise DataError(f"{directory} holds no saved split (split.json is missing); create one with Split.save.")
        manifest = json.loads(path.read_text())
        dtypes = manifest["dtypes"]
        users = _read_csv(directory / "users.csv", dtypes["users"])
        items = _read_csv(directory / "items.csv", dtypes["items"])
        user_map = IdMap(users[USER_ID].to_numpy(), name="user")
        item_map = IdMap(items[ITEM_ID].to_numpy(), name="item")
        parts = {}
        for name in manifest["fingerprints"]:
            part = Dataset.from_frame(
                _read_csv(directory / f"{name}.csv", dtypes[name]),
                users=users if manifest["attributes"]["users"] else None,
                items=items if manifest["attributes"]["items"] else None,
                user_map=user_map,
                item_map=item_map,
            )
            if part.fingerprint() != manifest["fingerprints"][name]:
                raise DataError(
                    f"{directory / (name + '.csv')} differs from the split that was saved (fingerprint "
                    f"{part.fingerprint()} != {manifest['fingerprints'][name]}); re-create the split instead of "
                    "editing it."
                )
            parts[name] = part
        return cls(
            train=parts["train"],
            test=parts["test"],
            valid=parts.get("valid"),
            name=manifest["name"],
            params=manifest["params"],
            dataset_fingerprint=manifest["dataset_fingerprint"],
        )


def _write_csv(frame: pd.DataFrame, path: Path) -> dict[str, str]:
    frame.to_csv(path, index=False)
    return {column: str(dtype) for column, dtype in frame.dtypes.items()}


def _read_csv(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    dates = [column for column, dtype in dtypes.items() if dtype.startswith("datetime64")]
    frame = pd.read_csv(
        path, dtype={column: dtype for column, dtype in dtypes.items() if column not in dates}, parse_dates=dates
    )
    return frame.astype({column: dtypes[column] for column in dates})


# -- helpers shared by the splitters ---------------------------------------------------------------------------
def make_split(
    dataset: Dataset, test: np.ndarray, name: str, params: dict[str, Any], train: np.ndarray | None = None
) -> Split:
    """A Split of ``dataset`` with the ``test`` rows (mask) held out; ``train`` defaults to all other rows."""
    train = ~test if train is None else train
    return Split(
        train=dataset.subset(train),
        test=dataset.subset(test),
        name=name,
        params=json_native(params),
        dataset_fingerprint=dataset.fingerprint(),
    )


def json_native(value: Any) -> Any:
    """``value`` with numpy scalars and timestamps turned into JSON types (so params round-trip exactly)."""
    if isinstance(value, dict):
        return {str(key): json_native(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_native(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    return value


def check_fraction(value: float, name: str) -> float:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"Parameter {name}={value!r} must be a fraction strictly between 0 and 1, e.g. 0.2.")
    return float(value)


def time_order(dataset: Dataset, where: str) -> np.ndarray:
    """Timestamps as sortable integer codes (any numeric or datetime dtype); a clear error when absent."""
    if TIMESTAMP not in dataset.interactions:
        raise DataError(f"{where} needs a '{TIMESTAMP}' column and the interactions have none: name the file's "
                        "time column with --time-col.")
    codes, _ = pd.factorize(dataset.interactions[TIMESTAMP], sort=True)
    if (codes < 0).any():
        raise DataError(f"{where}: {(codes < 0).sum()} rows have no '{TIMESTAMP}'; drop or fill them first.")
    return codes


def random_keys(dataset: Dataset, seed: int) -> np.ndarray:
    """One uniform key per row, drawn in canonical (user id, item id, timestamp) order."""
    columns = [id_ranks(dataset.items)[dataset.item_index], id_ranks(dataset.users)[dataset.user_index]]
    if TIMESTAMP in dataset.interactions:
        columns.insert(0, pd.factorize(dataset.interactions[TIMESTAMP], sort=True)[0])
    keys = np.empty(len(dataset))
    keys[np.lexsort(columns)] = np.random.default_rng(seed).random(len(dataset))
    return keys


def rank_within(groups: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """0-based rank of each row inside its group when ordered by ``keys`` (first key most significant, stable)."""
    order = np.lexsort((*reversed(keys), groups))
    sorted_groups = groups[order]
    is_start = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]] if len(order) else np.zeros(0, bool)
    starts = np.flatnonzero(is_start)
    positions = np.arange(len(order))
    ranks = np.empty(len(order), np.int64)
    ranks[order] = positions - starts[np.cumsum(is_start) - 1]
    return ranks


def hold_out_per_user(dataset: Dataset, n_test: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Test mask: each user's first ``n_test[user]`` rows when ordered by ``keys``."""
    users = dataset.user_index
    return rank_within(users, *keys) < n_test[users]
