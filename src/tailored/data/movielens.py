"""MovieLens readers (100K, 1M, 10M and the CSV releases 20M/25M/32M/latest) and a verified, cached downloader.

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. ACM TiiS 5, 4.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.io import write_table
from tailored.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
VARIANTS = ("100k", "1m", "10m", "20m", "25m", "32m", "latest-small", "latest")
FOLDERS = {variant: f"ml-{variant}" for variant in VARIANTS} | {"10m": "ml-10M100K"}
FOLDS_100K = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip

KNOWN_HASHES = {
    "100k": "md5:0e33842e24a9c977be4e0107933c0723",
    "1m": "md5:c4d9eecfca2ab87c1945afe126590906",
    "10m": "md5:ce571fd55effeba0271552578f2648bd",
    "20m": "md5:cd245b17a1ae2cc31bb14903e1204af3",
    "25m": "md5:6b51fb2759a8657d3bfcbfc42b592ada",
}
"""pooch's checksums of GroupLens's stable archives: the MD5 it publishes beside each (it publishes no SHA-256). The
rolling releases (32m, latest*) are checked against the ``<zip>.md5`` published at download time."""
_CSV_VARIANTS = ("20m", "25m", "32m", "latest-small", "latest")
_LAYOUTS = {  # files a folder of each variant must hold
    "100k": ("u.data", "u.item", "u.user"),
    "1m": ("ratings.dat", "movies.dat", "users.dat"),
    "10m": ("ratings.dat", "movies.dat"),
} | {variant: ("ratings.csv", "movies.csv") for variant in _CSV_VARIANTS}
_RATING_TYPES = {USER_ID: str, ITEM_ID: str, VALUE: np.float64, TIMESTAMP: np.int64}
_CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class MovieLens:
    """One MovieLens release in canonical frames.

    ``ratings``: user_id, item_id, value (the rating), timestamp. ``users`` (100K/1M only): user_id, age, gender,
    occupation, zip, age_band. ``items``: item_id, title, year (nullable), genres ("A|B"). ``tags``: user_id, item_id,
    tag, timestamp (10M and CSV releases).
    """

    variant: str
    ratings: pd.DataFrame
    users: pd.DataFrame | None
    items: pd.DataFrame
    tags: pd.DataFrame | None

    def write(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the release as the command line's inputs: ``interactions.csv`` (the ratings), ``items.csv``, and
        ``users.csv`` / ``tags.csv`` when the release has them; returns the files written."""
        tables = {"interactions": self.ratings, "items": self.items, "users": self.users, "tags": self.tags}
        return [write_table(table, Path(directory) / f"{name}.csv")
                for name, table in tables.items() if table is not None]


# -- reading ------------------------------------------------------------------------------------------------
def load_movielens(path: str | os.PathLike[str], variant: str | None = None) -> MovieLens:
    """Read an extracted MovieLens folder; the variant is detected from its files when not given."""
    folder = Path(path)
    variant = _check_variant(variant) if variant is not None else detect_variant(folder)
    _require_files(folder, variant)
    reader = {"100k": _load_100k, "1m": _load_1m, "10m": _load_10m}.get(variant, _load_csv_release)
    movielens = MovieLens(variant, *reader(folder))
    logger.info("loaded movielens variant=%s ratings=%d items=%d", variant, len(movielens.ratings),
                len(movielens.items))
    return movielens


def load_movielens_fold(path: str | os.PathLike[str], fold: int | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (train, test) ratings of a MovieLens 100K fold: 1-5 / "u1".."u5" or "a"/"b" / "ua"/"ub"."""
    name = str(fold) if str(fold).startswith("u") else f"u{fold}"
    if name not in FOLDS_100K:
        raise ConfigError(f"Unknown MovieLens 100K fold {fold!r}; choose one of {list(FOLDS_100K)} (or 1-5, 'a', 'b').")
    folder = Path(path)
    files = (folder / f"{name}.base", folder / f"{name}.test")
    if not all(file.is_file() for file in files):
        present = sorted(f for f in FOLDS_100K if (folder / f"{f}.base").is_file() and (folder / f"{f}.test").is_file())
        raise DataError(
            f"Fold {name} not found in {folder}: expected {files[0].name} and {files[1].name}; "
            f"folds present: {present or 'none'}. Pass the extracted ml-100k folder."
        )
    return _read_ratings_100k(files[0]), _read_ratings_100k(files[1])


def detect_variant(folder: Path) -> str:
    """The release a folder holds, from its files (and its name, for the CSV releases that share one layout)."""
    if not folder.is_dir():
        raise DataError(f"MovieLens folder not found: {folder}; pass the extracted folder (e.g. ml-100k).")
    if (folder / "u.data").is_file():
        return "100k"
    if (folder / "ratings.dat").is_file():
        return "1m" if (folder / "users.dat").is_file() else "10m"
    if (folder / "ratings.csv").is_file():
        named = {FOLDERS[v].lower(): v for v in _CSV_VARIANTS}.get(folder.name.lower())
        return named or "latest"
    raise DataError(
        f"{folder} is not a MovieLens folder: expected u.data (100k), ratings.dat (1m, 10m) or ratings.csv "
        f"(20m, 25m, 32m, latest-small, latest); found {_listing(folder)}."
    )


def age_band(ages: pd.Series) -> pd.Series:
    """MovieLens 1M age bands (<18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+) of ages or 1M age codes."""
    bands = pd.cut(ages, [-np.inf, 18, 25, 35, 45, 50, 56, np.inf], right=False, labels=list(AGE_BANDS))
    return bands.astype(str)


def _load_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, None]:
    items = _read_fields(
        folder / "u.item", "|", [ITEM_ID, "title", "release_date", "video_release_date", "url", *GENRES_100K]
    )
    flags = items[list(GENRES_100K)].to_numpy(np.int8).astype(bool)
    released = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year.astype("Int64")
    items = _items(items[ITEM_ID], items["title"], _join_flags(flags, GENRES_100K), fallback_year=released)
    users = _read_fields(folder / "u.user", "|", [USER_ID, "age", "gender", "occupation", "zip"], {"age": np.int64})
    users["age_band"] = age_band(users["age"])
    return _read_ratings_100k(folder / "u.data"), users, items, None


def _load_1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, None]:
    users = _read_fields(folder / "users.dat", "::", [USER_ID, "gender", "age", "occupation", "zip"], {"age": np.int64})
    codes = pd.to_numeric(users["occupation"], errors="coerce")
    known = codes.between(0, len(OCCUPATIONS_1M) - 1)
    names = np.asarray(OCCUPATIONS_1M, dtype=object)[codes.where(known, 0).astype(int)]
    users["occupation"] = pd.Series(names, index=users.index).where(known, users["occupation"]).astype(str)
    users["age_band"] = age_band(users["age"])
    users = users[[USER_ID, "age", "gender", "occupation", "zip", "age_band"]]
    return _read_ratings_dat(folder / "ratings.dat"), users, _read_movies_dat(folder / "movies.dat"), None


def _load_10m(folder: Path) -> tuple[pd.DataFrame, None, pd.DataFrame, pd.DataFrame | None]:
    tags_file, tags = folder / "tags.dat", None
    if tags_file.is_file():
        tags = _read_fields(tags_file, "::", [USER_ID, ITEM_ID, "tag", TIMESTAMP], {TIMESTAMP: np.int64})
    return _read_ratings_dat(folder / "ratings.dat"), None, _read_movies_dat(folder / "movies.dat"), tags


def _load_csv_release(folder: Path) -> tuple[pd.DataFrame, None, pd.DataFrame, pd.DataFrame | None]:
    renames = {"userId": USER_ID, "movieId": ITEM_ID, "rating": VALUE}
    rating_types = {"rating": np.float64, TIMESTAMP: np.int64}
    ratings = _read_fields(folder / "ratings.csv", ",", None, rating_types, encoding="utf-8").rename(columns=renames)
    movies = _read_fields(folder / "movies.csv", ",", None)
    items = _items(movies["movieId"], movies["title"], movies["genres"])
    tags_file = folder / "tags.csv"
    tags = None
    if tags_file.is_file():
        tags = _read_fields(tags_file, ",", None, {TIMESTAMP: np.int64}).rename(columns=renames)
    return ratings[[USER_ID, ITEM_ID, VALUE, TIMESTAMP]], None, items, tags


def _read_ratings_100k(file: Path) -> pd.DataFrame:
    return _read_fields(file, "\t", list(_RATING_TYPES), _RATING_TYPES, encoding="utf-8")


def _read_ratings_dat(file: Path) -> pd.DataFrame:
    """``UserID::MovieID::Rating::Timestamp``: numbers only, so split on ':' with the fast C parser, skipping gaps."""
    names = [USER_ID, "gap1", ITEM_ID, "gap2", VALUE, "gap3", TIMESTAMP]
    return _read_fields(file, ":", names, _RATING_TYPES, usecols=[0, 2, 4, 6], encoding="utf-8")


def _read_movies_dat(file: Path) -> pd.DataFrame:
    movies = _read_fields(file, "::", [ITEM_ID, "title", "genres"])
    return _items(movies[ITEM_ID], movies["title"], movies["genres"])


def _items(
    ids: pd.Series, titles: pd.Series, genres: pd.Series, fallback_year: pd.Series | None = None
) -> pd.DataFrame:
    """Canonical item table; the year comes from the title's trailing "(1995)"."""
    titles = titles.str.strip()
    year = pd.to_numeric(titles.str.extract(r"\((\d{4})\)$", expand=False), errors="coerce").astype("Int64")
    if fallback_year is not None:
        year = year.fillna(fallback_year)
    return pd.DataFrame({ITEM_ID: ids, "title": titles, "year": year, "genres": genres.fillna("")})


def _join_flags(flags: np.ndarray, names: tuple[str, ...]) -> pd.Series:
    """One "A|B" string per row of a boolean (rows x names) matrix, in the names' order ("" when none)."""
    rows, columns = np.nonzero(flags)
    joined = pd.Series(np.asarray(names, dtype=object)[columns]).groupby(rows).agg("|".join)
    return joined.reindex(range(len(flags)), fill_value="").astype(str)


def _read_fields(file: Path, separator: str, names: list[str] | None, types: dict[str, object] | None = None,
                 usecols: list[int] | None = None, encoding: str | None = None) -> pd.DataFrame:
    """A MovieLens text file: headerless with ``names``, or with its own header when ``names`` is None.

    Columns not in ``types`` are strings (ids keep their text); headerless files are read without quoting. The
    encoding is detected (UTF-8, else Latin-1) unless given.
    """
    headerless = names is not None
    try:
        return pd.read_csv(
            file,
            sep=separator,
            header=None if headerless else 0,
            names=names,
            usecols=usecols,
            dtype=defaultdict(lambda: str, types or {}),
            encoding=encoding or _encoding(file),
            engine="python" if len(separator) > 1 else "c",
            quoting=csv.QUOTE_NONE if headerless else csv.QUOTE_MINIMAL,
            keep_default_na=False,
            na_values=[""],
        )
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{file} is not a valid MovieLens file ({error}); download the data set again.") from error


def _encoding(file: Path) -> str:
    """UTF-8 when the file decodes as such, else Latin-1 (the older releases' encoding)."""
    try:
        file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _check_variant(variant: str) -> str:
    name = variant.lower().removeprefix("ml-")
    if name not in VARIANTS:
        raise ConfigError(f"Unknown MovieLens variant {variant!r}; choose one of {list(VARIANTS)}.")
    return name


def _require_files(folder: Path, variant: str) -> None:
    if not folder.is_dir():
        raise DataError(f"MovieLens folder not found: {folder}; pass the extracted folder (e.g. ml-100k).")
    missing = [name for name in _LAYOUTS[variant] if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"{folder} does not hold MovieLens {variant}: expected {list(_LAYOUTS[variant])}, missing {missing}; "
            f"found {_listing(folder)}."
        )


def _listing(folder: Path, limit: int = 20) -> str:
    names = sorted(entry.name for entry in folder.iterdir())
    if not names:
        return "no files"
    return str(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- downloading --------------------------------------------------------------------------------------------
def download_movielens(
    variant: str,
    cache_dir: str | os.PathLike[str],
    base_url: str = BASE_URL,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> Path:
    """Download (pooch), verify and extract ``ml-<variant>.zip`` into ``cache_dir``; return the extracted folder.

    A folder already extracted there is returned without touching the network. The archive is checked against
    `KNOWN_HASHES`, else against the MD5 GroupLens publishes beside it, and kept only once verified (an interrupted
    or corrupt download leaves nothing). ``progress(bytes_done, bytes_total)`` is called after each chunk
    (``bytes_total`` None when unknown).
    """
    import pooch  # imported here: the readers need neither pooch nor requests
    import requests

    from tailored import __version__

    variant = _check_variant(variant)
    cache = Path(cache_dir)
    folder = cache / FOLDERS[variant]
    if folder.is_dir():
        logger.info("movielens cache hit variant=%s folder=%s", variant, folder)
        return folder
    name = f"ml-{variant}.zip"
    url = f"{base_url.rstrip('/')}/{name}"
    options = {"timeout": timeout, "headers": {"User-Agent": f"tailored/{__version__}"}}
    pooch.get_logger().setLevel(logging.WARNING)  # pooch logs each download at INFO on its own handler
    try:
        known = KNOWN_HASHES.get(variant) or _published_md5(url + ".md5", pooch.HTTPDownloader(**options))
        bar = _Progress(progress) if progress else False
        downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=_CHUNK, **options)
        archive = Path(pooch.retrieve(url, known, fname=name, path=cache, downloader=downloader))
    except requests.RequestException as error:
        raise _download_failed(url, cache / name, variant, error) from error
    except ValueError as error:  # pooch's checksum mismatch: the download is already deleted
        raise DataError(f"Checksum mismatch for {name} downloaded from {url}: {error} Run the download again, or fetch "
                        "the archive by hand, unzip it and pass the folder with --data-dir.") from error
    logger.info("downloaded movielens variant=%s archive=%s checksum=%s", variant, archive, known)
    _extract(archive, folder)
    return folder


def _published_md5(url: str, downloader: Callable[..., None]) -> str | None:
    """The MD5 GroupLens publishes next to an archive, as pooch's ``md5:<hex>``; None (with a warning) when it
    publishes none."""
    import requests

    text = io.BytesIO()
    try:
        downloader(url, text, None)
    except requests.HTTPError as error:
        if error.response is None or error.response.status_code != 404:
            raise
        logger.warning("no published checksum url=%s; the archive will not be verified", url)
        return None
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text.getvalue()[:4096].decode("ascii", errors="replace"))
    if match is None:
        raise DataError(f"{url} holds no MD5 checksum (it starts {text.getvalue()[:60]!r}); check base_url.")
    return f"md5:{match.group(0).lower()}"


class _Progress:
    """pooch's progress bar protocol (``total``, ``update``, ``reset``, ``close``) as ``progress(done, total)``."""

    def __init__(self, report: Progress) -> None:
        self.report, self.done, self.total = report, 0, 0

    def update(self, size: int) -> None:
        """pooch adds its chunk size per chunk (the last one may be shorter), then the total once all is read."""
        self.done = min(self.done + size, self.total) if self.total else self.done + size
        self.report(self.done, self.total or None)

    def reset(self) -> None:
        """pooch resets before adding the total: the count stays (it never goes back)."""

    def close(self) -> None:
        pass


def _download_failed(url: str, archive: Path, variant: str, error: Exception) -> DataError:
    import requests

    response = getattr(error, "response", None)
    if isinstance(error, requests.HTTPError) and response is not None:
        why = f"HTTP {response.status_code} {response.reason}"
    elif isinstance(error, requests.ConnectionError):
        why = f"cannot connect ({type(error).__name__}: offline, DNS failure or server unreachable?)"
    else:
        why = str(error) or type(error).__name__
    return DataError(
        f"Download of MovieLens {variant} failed: {url}: {why}. Check the network connection, or download "
        f"{archive.name} by hand, unzip it and pass the folder with --data-dir (e.g. --data-dir "
        f"{archive.parent / FOLDERS[variant]})."
    )


def _extract(archive: Path, folder: Path) -> None:
    """Unzip into a staging folder beside ``folder``, then rename the release's folder into place."""
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(staging)
        except zipfile.BadZipFile as error:
            archive.unlink(missing_ok=True)
            raise DataError(
                f"{archive} is not a valid zip archive ({error}); it was deleted, run the download again."
            ) from error
        extracted = staging / folder.name
        if not extracted.is_dir():
            archive.unlink()
            raise DataError(
                f"{archive.name} holds no '{folder.name}' folder (it holds {_listing(staging)}); it was deleted: check "
                "base_url, or download the archive by hand, unzip it and pass the folder with --data-dir."
            )
        os.replace(extracted, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("extracted movielens archive=%s folder=%s", archive, folder)
