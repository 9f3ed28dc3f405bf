"""Save a fitted Recommender to a directory and load it back: manifest JSON + one ``.npz`` of arrays (+ the items'
attributes as Parquet, which the stages read at request time).

No pickle: every learned attribute is a numpy array, a scipy CSR matrix, a dict of named arrays (network weights)
or a JSON scalar. Writes go to a temporary
sibling folder that replaces the target only when complete, so an interrupted save never corrupts a model. The
manifest records each data file's size: a folder copied incompletely (a file missing, truncated or unreadable) fails
at load with an IncompatibleModelError naming the folder and the file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored import __version__
from tailored.config import json_safe
from tailored.data.columns import ITEM_INDEX, USER_INDEX, VALUE
from tailored.data.dataset import Dataset
from tailored.data.idmap import IdMap
from tailored.data.io import staged_directory
from tailored.errors import IncompatibleModelError, NotFittedError
from tailored.models.base import create_scorer, fitted_state, params_of, restore_state
from tailored.pipeline.recommender import Recommender
from tailored.pipeline.settings import settings_of
from tailored.rank.base import create_stage

FORMAT = "tailored-model"
FORMAT_VERSION = 5
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "implicit")
RECOMMENDER_STATE = ("seen_", "warm_users_", "warm_items_", "candidate_items_", "user_vocabulary_", "item_encoder_",
                     "item_features_", "co_purchase_", "basket_count_", "first_seen_", "last_seen_", "daily_counts_",
                     "counts_end_")
ITEM_ATTRIBUTES = "item_attributes.parquet"
MANIFEST_KEYS = ("algorithm", "params", "recommender", "fallback", "item_model", "stages", "scalars")
_REPAIR = "copy the whole folder again, or retrain it with `tailored train`"


def save_model(recommender: Recommender, directory: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``recommender`` (fitted) to ``directory``; ``metadata`` (metrics, data fingerprint...) joins the
    manifest."""
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {
        "recommender.users": _id_array(recommender.users_.external_ids),
        "recommender.items": _id_array(recommender.items_.external_ids),
    }
    scalars: dict[str, dict[str, Any]] = {}
    parts = {"recommender": {k: getattr(recommender, k) for k in RECOMMENDER_STATE}}
    members = getattr(recommender.scorer, "members_", [])  # an ensemble's fitted members, each saved as its own part
    scorer_state = {k: v for k, v in fitted_state(recommender.scorer).items() if k != "members_"}
    parts |= {"scorer": scorer_state, "fallback": fitted_state(recommender.fallback_)}
    parts |= {f"member{position}": fitted_state(member) for position, member in enumerate(members)}
    if recommender.item_model_ is not None:
        parts["item_model"] = fitted_state(recommender.item_model_)
    for position, stage in enumerate(recommender.stages):
        parts[f"stage{position}"] = fitted_state(stage)
    for part, state in parts.items():
        scalars[part] = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"{part}.{key}"] = value
            elif sp.issparse(value):
                csr = sp.csr_matrix(value)
                for field in ("data", "indices", "indptr"):
                    arrays[f"{part}.{key}.csr_{field}"] = getattr(csr, field)
                arrays[f"{part}.{key}.csr_shape"] = np.asarray(csr.shape)
            elif isinstance(value, dict):  # named arrays, e.g. a neural network's weights
                for name, array in value.items():
                    arrays[f"{part}.{key}.dict_{name}"] = np.asarray(array)
            elif isinstance(value, (bool, int, float, str, np.generic)) or value is None:
                scalars[part][key] = value.item() if isinstance(value, np.generic) else value
            else:
                raise TypeError(f"Cannot save {part} attribute {key} of type {type(value).__name__}")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tailored_version": __version__,
        "algorithm": recommender.scorer.algorithm,  # type: ignore[attr-defined]
        "params": json_safe(params_of(recommender.scorer)),
        "members": [_describe(member) for member in members],
        "recommender": settings_of(recommender) | {"weighting": recommender.weighting_},  # what "auto" chose
        "fallback": _describe(recommender.fallback_),
        "item_model": None if recommender.item_model_ is None else _describe(recommender.item_model_),
        "stages": [{"name": stage.stage, "params": json_safe(dataclasses.asdict(stage))}  # type: ignore[attr-defined]
                   for stage in recommender.stages],
        "scalars": scalars,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "libraries": {name: _version(name) for name in LIBRARIES},
        **(metadata or {}),
    }
    with staged_directory(directory) as staging:
        np.savez(staging / ARRAYS, **arrays)
        if recommender.item_attributes_ is not None:
            recommender.item_attributes_.to_parquet(staging / ITEM_ATTRIBUTES, index=False)
        manifest["files"] = {name: (staging / name).stat().st_size for name in (ARRAYS, ITEM_ATTRIBUTES)
                             if (staging / name).exists()}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default))
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a model directory, once it is known to be whole: the manifest parses, is of this format, and
    every data file it lists is there with the size it was written with (IncompatibleModelError otherwise)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise IncompatibleModelError(
            f"{directory} is not a tailored model directory ({MANIFEST} is missing); create one with `tailored train`."
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IncompatibleModelError(
            f"Model in {directory} is damaged: {MANIFEST} cannot be read ({error}); {_REPAIR}.") from error
    if not isinstance(manifest, dict):
        raise IncompatibleModelError(f"Model in {directory} is damaged: {MANIFEST} is not a JSON object; {_REPAIR}.")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise IncompatibleModelError(
            f"Model in {directory} has format {manifest.get('format')!r} version {manifest.get('format_version')!r} "
            f"(written by tailored {manifest.get('tailored_version', '?')}); this is tailored {__version__}, which "
            "reads "
            f"format version {FORMAT_VERSION}. Retrain it with `tailored train`."
        )
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise IncompatibleModelError(f"Model in {directory} is damaged: {MANIFEST} lacks {missing}; {_REPAIR}.")
    for name, size in _data_files(directory, manifest).items():
        if not (directory / name).is_file():
            raise IncompatibleModelError(f"Model in {directory} is incomplete: {name} is missing; {_REPAIR}.")
        if size is not None and (directory / name).stat().st_size != size:
            raise IncompatibleModelError(
                f"Model in {directory} is damaged: {name} has {(directory / name).stat().st_size:,} bytes where "
                f"{size:,} were written (a truncated copy?); {_REPAIR}."
            )
    return manifest


def _data_files(directory: Path, manifest: dict[str, Any]) -> dict[str, int | None]:
    """The data files of a model directory and their sizes in bytes (None: a model saved before sizes were kept)."""
    if "files" in manifest:
        return dict(manifest["files"])
    return {ARRAYS: None} | ({ITEM_ATTRIBUTES: None} if (directory / ITEM_ATTRIBUTES).exists() else {})


def _read(directory: str | Path, name: str, reader: Callable[[Path], Any]) -> Any:
    """``reader(directory / name)``; a file that cannot be read is an IncompatibleModelError naming it."""
    try:
        return reader(Path(directory) / name)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise IncompatibleModelError(
            f"Model in {directory} is damaged: {name} cannot be read ({error}); {_REPAIR}.") from error


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    missing = [key for key in ("recommender.users", "recommender.items") if key not in arrays]
    if missing:
        raise KeyError(f"no {missing} arrays")
    return arrays


def load_model(directory: str | Path) -> Recommender:
    """Rebuild the fitted Recommender saved in ``directory``."""
    manifest = read_manifest(directory)
    scorer = create_scorer(manifest["algorithm"], manifest["params"])
    fallback = create_scorer(manifest["fallback"]["algorithm"], manifest["fallback"]["params"])
    described = manifest["item_model"]
    item_model = described and create_scorer(described["algorithm"], described["params"])
    stages = [create_stage(entry["name"], entry["params"]) for entry in manifest["stages"]]
    recommender = Recommender(scorer, **manifest["recommender"], stages=stages)
    recommender.weighting_ = recommender.weighting
    recommender.fallback_ = fallback
    recommender.item_model_ = item_model
    files = _data_files(Path(directory), manifest)
    recommender.item_attributes_ = (_read(directory, ITEM_ATTRIBUTES, pd.read_parquet) if ITEM_ATTRIBUTES in files
                                    else None)
    arrays = _read(directory, ARRAYS, _arrays)
    recommender.users_ = IdMap(arrays.pop("recommender.users"), name="user")
    recommender.items_ = IdMap(arrays.pop("recommender.items"), name="item")
    members = [create_scorer(entry["algorithm"], entry["params"]) for entry in manifest.get("members", [])]
    if members:
        scorer.members_ = members  # type: ignore[attr-defined]
    owners = {"recommender": recommender, "scorer": scorer, "fallback": fallback}
    owners |= {f"member{position}": member for position, member in enumerate(members)}
    if item_model is not None:
        owners["item_model"] = item_model
    owners |= {f"stage{position}": stage for position, stage in enumerate(stages)}
    for part, owner in owners.items():
        state = dict(manifest["scalars"].get(part, {}))
        for key in [k for k in arrays if k.startswith(part + ".")]:
            name = key[len(part) + 1 :]
            if ".dict_" in name:
                attribute, entry = name.split(".dict_", 1)
                state.setdefault(attribute, {})[entry] = arrays[key]
            elif ".csr_" in name:
                attribute, field = name.split(".csr_")
                if field == "shape":
                    state[attribute] = sp.csr_matrix(
                        tuple(arrays[f"{part}.{attribute}.csr_{f}"] for f in ("data", "indices", "indptr")),
                        shape=tuple(arrays[key]),
                    )
            else:
                state[name] = arrays[key]
        restore_state(owner, state)
    _check_state(recommender, directory, manifest["algorithm"])
    return recommender.composed()


def fit_added_stages(recommender: Recommender, stages: list[Any]) -> list[Any]:
    """Fit ``stages`` added to a loaded model at request time (`recommend --stage long-tail`: the items' popularity;
    rules and calendars: their checks) on the training pairs the model keeps: who interacted with what, without values
    or times. Stages that learn from times (``learns``) belong to training: `check_request_time` refuses them."""
    pairs = recommender.seen_.tocoo()
    interactions = pd.DataFrame({USER_INDEX: pairs.row.astype(np.int32), ITEM_INDEX: pairs.col.astype(np.int32),
                                 VALUE: np.ones(pairs.nnz, np.float32)})
    training = Dataset(recommender.users_, recommender.items_, interactions,
                       item_attributes=recommender.item_attributes_)
    return [stage.fit(training) for stage in stages]


def _check_state(recommender: Recommender, directory: str | Path, algorithm: str) -> None:
    """One user's scores, so that a directory whose saved state does not fit its algorithm (an edited manifest,
    another algorithm's arrays) fails at load, saying so, rather than at the first request."""
    try:
        recommender.scorer.score(np.zeros(1, np.int64))
    except NotFittedError as error:
        raise IncompatibleModelError(
            f"Model in {directory}: its saved state does not fit algorithm {algorithm!r} (a fitted "
            f"{type(recommender.scorer).__name__} is not there); it was written by another algorithm or version. "
            "Retrain it with `tailored train`."
        ) from error


def _describe(scorer: Any) -> dict[str, Any]:
    return {"algorithm": scorer.algorithm, "params": json_safe(params_of(scorer))}


def _id_array(ids: np.ndarray) -> np.ndarray:
    return ids if ids.dtype.kind in "iu" else ids.astype(str)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
