"""MovieLens readers (real 100K, tiny 1M/10M/CSV folders) and the downloader against a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import logging
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.io import read_attributes, read_interactions
from tailored.data.movielens import (
    AGE_BANDS,
    KNOWN_HASHES,
    download_movielens,
    load_movielens,
    load_movielens_fold,
)
from tailored.errors import ConfigError, DataError
from tests.cli.helpers import cli, ok


# -- MovieLens 100K (real files) ----------------------------------------------------------------------------
def test_100k_counts_and_types(ml100k_dir: Path) -> None:
    movielens = load_movielens(ml100k_dir)
    assert movielens.variant == "100k"
    ratings = movielens.ratings
    assert list(ratings.columns) == ["user_id", "item_id", "value", "timestamp"]
    assert len(ratings) == 100_000
    assert ratings["user_id"].nunique() == 943 and ratings["item_id"].nunique() == 1682
    assert ratings["value"].dtype == np.float64 and set(ratings["value"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ratings["timestamp"].dtype == np.int64
    assert ratings.iloc[0].tolist() == ["196", "242", 3.0, 881250949]
    assert movielens.tags is None


def test_100k_items(ml100k_dir: Path) -> None:
    items = load_movielens(ml100k_dir).items.set_index("item_id")
    assert len(items) == 1682
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "genres"] == "Animation|Children's|Comedy"
    assert items.loc["1", "year"] == 1995
    assert items.loc["2", "genres"] == "Action|Adventure|Thriller"
    assert items.loc["267", "title"] == "unknown" and items["year"].isna().sum() == 1


def test_100k_users_and_age_bands(ml100k_dir: Path) -> None:
    users = load_movielens(ml100k_dir).users.set_index("user_id")
    assert len(users) == 943
    assert list(users.columns) == ["age", "gender", "occupation", "zip", "age_band"]
    assert users.loc["1"].tolist() == [24, "M", "technician", "85711", "18-24"]
    assert set(users["age_band"]) == set(AGE_BANDS)
    assert (users.loc[users["age"] < 18, "age_band"] == "<18").all()
    assert (users.loc[users["age"] >= 56, "age_band"] == "56+").all()
    assert users.loc[users["age"].between(50, 55), "age_band"].eq("50-55").all()


@pytest.mark.parametrize(
    ("fold", "sizes"),
    [(1, (80_000, 20_000)), ("u5", (80_000, 20_000)), ("a", (90_570, 9_430)), ("ub", (90_570, 9_430))],
)
def test_100k_folds(ml100k_dir: Path, fold: int | str, sizes: tuple[int, int]) -> None:
    train, test = load_movielens_fold(ml100k_dir, fold)
    assert (len(train), len(test)) == sizes
    assert list(train.columns) == ["user_id", "item_id", "value", "timestamp"]
    pairs = [set(zip(frame["user_id"], frame["item_id"], strict=True)) for frame in (train, test)]
    assert not pairs[0] & pairs[1]


def test_fold_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown MovieLens 100K fold 'u9'; choose one of \['u1'"):
        load_movielens_fold(tmp_path, "u9")
    (tmp_path / "u2.base").write_text("")
    (tmp_path / "u2.test").write_text("")
    with pytest.raises(
        DataError, match=r"Fold u1 not found in .*: expected u1\.base and u1\.test; folds present: \['u2'\]"
    ):
        load_movielens_fold(tmp_path, 1)


# -- other releases (tiny folders written here) --------------------------------------------------------------
def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.encode(encoding))


@pytest.fixture
def ml1m(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(folder, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::99::55117\n")
    write(
        folder,
        "movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Café Noir (1996)::Animation|Children's\n",
        "latin-1",
    )
    return folder


def test_1m_format(ml1m: Path) -> None:
    movielens = load_movielens(ml1m)
    assert movielens.variant == "1m"
    assert movielens.ratings.values.tolist() == [
        ["1", "1193", 5.0, 978300760],
        ["1", "661", 3.0, 978302109],
        ["2", "1193", 4.0, 978298413],
    ]
    users = movielens.users
    assert list(users.columns) == ["user_id", "age", "gender", "occupation", "zip", "age_band"]
    assert users["age_band"].tolist() == ["<18", "56+", "25-34"]  # 1M stores age band codes
    assert users["occupation"].tolist() == ["K-12 student", "self-employed", "99"]  # unknown code kept as given
    items = movielens.items
    assert items["title"].tolist() == ["One Flew Over the Cuckoo's Nest (1975)", "Café Noir (1996)"]  # Latin-1 decoded
    assert items["year"].tolist() == [1975, 1996]
    assert items["genres"].tolist() == ["Drama", "Animation|Children's"]
    assert movielens.tags is None


def test_written_as_the_command_lines_inputs(ml1m: Path, tmp_path: Path) -> None:
    movielens = load_movielens(ml1m)
    written = movielens.write(tmp_path / "csv")
    assert [path.name for path in written] == ["interactions.csv", "items.csv", "users.csv"]  # no tags in 1M
    pd.testing.assert_frame_equal(read_interactions(tmp_path / "csv" / "interactions.csv"), movielens.ratings)
    items = read_attributes(tmp_path / "csv" / "items.csv", "item_id")
    assert items["title"].tolist() == ["One Flew Over the Cuckoo's Nest (1975)", "Café Noir (1996)"]  # now UTF-8
    assert items["genres"].tolist() == ["Drama", "Animation|Children's"]
    users = read_attributes(tmp_path / "csv" / "users.csv")
    assert users[["occupation", "zip", "age_band"]].values.tolist() == [
        ["K-12 student", 48067, "<18"], ["self-employed", 70072, "56+"], ["99", 55117, "25-34"]]


def test_10m_format_with_tags(tmp_path: Path) -> None:
    folder = tmp_path / "ml-10M100K"
    write(folder, "ratings.dat", "1::122::5::838985046\n2::185::4.5::838983525\n")
    write(folder, "movies.dat", "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime|Thriller\n")
    write(folder, "tags.dat", "15::4973::excellent!::1215184630\n20::1747::politics: satire::1188263867\n")
    movielens = load_movielens(folder)
    assert movielens.variant == "10m" and movielens.users is None
    assert movielens.ratings["value"].tolist() == [5.0, 4.5]
    assert movielens.items["title"].tolist() == ["Boomerang (1992)", "Net, The (1995)"]
    assert movielens.tags.values.tolist() == [
        ["15", "4973", "excellent!", 1215184630],
        ["20", "1747", "politics: satire", 1188263867],
    ]


def latest_small_files() -> dict[str, str]:
    return {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,2.5,964982224\n",
        "movies.csv": (
            "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
            '3,"American President, The (1995)",Comedy|Drama\n4,Cosmos,(no genres listed)\n'
        ),
        "tags.csv": 'userId,movieId,tag,timestamp\n2,1,"pixar, fun",1445714994\n',
    }


def test_csv_release_format(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    for name, text in latest_small_files().items():
        write(folder, name, text)
    movielens = load_movielens(folder)
    assert movielens.variant == "latest-small" and movielens.users is None
    assert movielens.ratings.values.tolist() == [
        ["1", "1", 4.0, 964982703],
        ["1", "3", 4.5, 964981247],
        ["2", "1", 2.5, 964982224],
    ]
    items = movielens.items
    assert items["title"].tolist() == ["Toy Story (1995)", "American President, The (1995)", "Cosmos"]
    assert items["year"].tolist()[:2] == [1995, 1995] and items["year"].isna().tolist() == [False, False, True]
    assert items["genres"].tolist() == ["Adventure|Animation", "Comedy|Drama", "(no genres listed)"]
    assert movielens.tags.values.tolist() == [["2", "1", "pixar, fun", 1445714994]]
    renamed = tmp_path / "my-copy"
    folder.rename(renamed)
    assert load_movielens(renamed).variant == "latest"  # same layout, the name no longer tells which
    assert load_movielens(renamed, "25m").variant == "25m"


def test_not_a_movielens_folder(tmp_path: Path, ml1m: Path) -> None:
    write(tmp_path / "stuff", "notes.txt", "hello")
    with pytest.raises(DataError) as caught:
        load_movielens(tmp_path / "stuff")
    message = str(caught.value)
    assert "is not a MovieLens folder: expected u.data (100k), ratings.dat (1m, 10m) or ratings.csv" in message
    assert "found ['notes.txt']" in message
    expected = r"\['u\.data', 'u\.item', 'u\.user'\]"
    with pytest.raises(
        DataError, match=rf"does not hold MovieLens 100k: expected {expected}, missing {expected}; found \['movies"
    ):
        load_movielens(ml1m, "100k")
    with pytest.raises(DataError, match="MovieLens folder not found"):
        load_movielens(tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"Unknown MovieLens variant '5k'; choose one of \['100k', '1m'"):
        load_movielens(ml1m, "5k")


def test_corrupt_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", "1::1193::five::978300760\n")
    write(folder, "users.dat", "1::F::1::10::48067\n")
    write(folder, "movies.dat", "1193::Film (1975)::Drama\n")
    with pytest.raises(DataError, match=r"ratings\.dat is not a valid MovieLens file .*download the data set again"):
        load_movielens(folder)


# -- downloader ---------------------------------------------------------------------------------------------
class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str, ThreadingHTTPServer]]:
    """A real HTTP server on 127.0.0.1 serving the files of a folder."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/", server
    server.shutdown()
    server.server_close()
    thread.join()


def publish(root: Path, folder: str, archive: str, md5: str | None = "correct") -> str:
    """Write ``archive`` (holding ``folder/`` with a tiny CSV release) and its ``.md5`` file; the archive's MD5."""
    path = root / archive
    with zipfile.ZipFile(path, "w") as zipped:
        for name, text in latest_small_files().items():
            zipped.writestr(f"{folder}/{name}", text)
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    if md5 is not None:
        (root / f"{archive}.md5").write_text(f"MD5 ({archive}) = {digest if md5 == 'correct' else md5}\n")
    return digest


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_extracts_and_then_uses_the_cache(tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]) -> None:
    root, url, server = site
    publish(root, "ml-latest-small", "ml-latest-small.zip")
    size = (root / "ml-latest-small.zip").stat().st_size
    calls: list[tuple[int, int | None]] = []
    cache = tmp_path / "cache"
    folder = download_movielens(
        "latest-small", cache, base_url=url, progress=lambda done, total: calls.append((done, total))
    )
    assert folder == cache / "ml-latest-small"
    assert calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert cache_files(cache) == ["ml-latest-small", "ml-latest-small.zip"]  # no partial or staging leftovers
    assert load_movielens(folder).ratings["value"].tolist() == [4.0, 4.5, 2.5]
    server.shutdown()
    assert download_movielens("latest-small", cache, base_url=closed_port_url()) == folder  # no network needed


def test_published_md5_mismatch_deletes_the_download(
    tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]
) -> None:
    root, url, _ = site
    digest = publish(root, "ml-32m", "ml-32m.zip", md5="0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        download_movielens("32m", cache, base_url=url)
    message = str(caught.value)
    assert f"Checksum mismatch for ml-32m.zip downloaded from {url}ml-32m.zip" in message
    assert f"expected md5:{'0' * 32} but got {digest}. Deleted download for safety" in message
    assert cache_files(cache) == []


def test_known_checksum_is_checked_before_any_md5_file(
    tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]
) -> None:
    root, url, _ = site
    publish(root, "ml-100k", "ml-100k.zip")  # a correct .md5 for a file that is not GroupLens's archive
    with pytest.raises(DataError, match=f"expected {KNOWN_HASHES['100k']} but got"):
        download_movielens("100k", tmp_path / "cache", base_url=url)
    assert cache_files(tmp_path / "cache") == []


def test_unpublished_md5_downloads_unverified_with_a_warning(
    tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer], caplog: pytest.LogCaptureFixture
) -> None:
    root, url, _ = site
    publish(root, "ml-latest", "ml-latest.zip", md5=None)
    with caplog.at_level(logging.WARNING, logger="tailored.data.movielens"):
        folder = download_movielens("ml-latest", tmp_path / "cache", base_url=url)
    assert folder.name == "ml-latest" and (folder / "ratings.csv").is_file()
    assert "no published checksum" in caplog.text


def test_missing_archive_is_an_http_error(tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]) -> None:
    _, url, _ = site
    with pytest.raises(DataError, match=r"Download of MovieLens 20m failed: .*ml-20m\.zip: HTTP 404"):
        download_movielens("20m", tmp_path / "cache", base_url=url)
    assert cache_files(tmp_path / "cache") == []


def test_server_down_is_a_clear_offline_error(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        download_movielens("latest-small", cache, base_url=closed_port_url(), timeout=5)
    message = str(caught.value)
    assert "Download of MovieLens latest-small failed" in message
    assert "offline, DNS failure or server unreachable?" in message
    assert f"pass the folder with --data-dir (e.g. --data-dir {cache / 'ml-latest-small'})" in message


def test_interrupted_download_leaves_no_file(tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]) -> None:
    root, url, _ = site
    publish(root, "ml-latest-small", "ml-latest-small.zip")

    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_movielens("latest-small", tmp_path / "cache", base_url=url, progress=interrupt)
    assert cache_files(tmp_path / "cache") == []


def test_a_corrupt_cached_archive_is_downloaded_again(
    tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]
) -> None:
    root, url, _ = site
    publish(root, "ml-latest-small", "ml-latest-small.zip")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-latest-small.zip").write_bytes(b"left by an older, broken download")
    folder = download_movielens("latest-small", cache, base_url=url)
    assert (cache / "ml-latest-small.zip").read_bytes() == (root / "ml-latest-small.zip").read_bytes()
    assert load_movielens(folder).ratings["value"].tolist() == [4.0, 4.5, 2.5]


class CutShort(QuietHandler):
    """Announces 1,000 bytes and sends 10: a connection lost in the middle of the archive."""

    def do_GET(self) -> None:
        if self.path.endswith(".md5"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"PK" + b"0" * 8)
        self.close_connection = True


def test_a_download_cut_short_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(DataError, match=r"Download of MovieLens latest failed: .*ml-latest\.zip: .*--data-dir"):
            download_movielens("latest", tmp_path / "cache", base_url=f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert cache_files(tmp_path / "cache") == []


def test_archive_without_the_release_folder(tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]) -> None:
    root, url, _ = site
    publish(root, "something-else", "ml-latest-small.zip")
    with pytest.raises(
        DataError,
        match=r"ml-latest-small\.zip holds no 'ml-latest-small' folder \(it holds \['something-else'\]\); it was del",
    ):
        download_movielens("latest-small", tmp_path / "cache", base_url=url)
    assert cache_files(tmp_path / "cache") == []


def test_unknown_variant(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown MovieLens variant '3m'"):
        download_movielens("3m", tmp_path)


def test_command_line_downloads_and_writes_the_inputs_of_train(
    tmp_path: Path, site: tuple[Path, str, ThreadingHTTPServer]
) -> None:
    root, url, _ = site
    publish(root, "ml-latest-small", "ml-latest-small.zip")
    result = ok(cli("datasets", "movielens", "--variant", "latest-small", "--cache-dir", "cache", "--base-url", url,
                    "--output-dir", "csv", cwd=tmp_path))
    assert "wrote 3 ratings of 2 users and 2 items (MovieLens latest-small)" in " ".join(result.stderr.split())
    assert sorted(path.name for path in (tmp_path / "csv").iterdir()) == ["interactions.csv", "items.csv", "tags.csv"]
    assert read_attributes(tmp_path / "csv" / "tags.csv")["tag"].tolist() == ["pixar, fun"]
    ok(cli("train", "--interactions", "csv/interactions.csv", "--items", "csv/items.csv", "--algorithm", "item-knn",
           "--model-dir", "model", cwd=tmp_path))
    refused = cli("datasets", "movielens", "--data-dir", "cache/ml-latest-small", cwd=tmp_path)
    assert refused.returncode == 2 and "pass --output-dir" in refused.stderr
    split = ["split", "--interactions", "csv/interactions.csv", "--method", "cold_items", "--fraction", 0.5]
    wrong = cli(*split, "--users", "csv/items.csv", "--output-dir", "wrong", cwd=tmp_path)
    assert wrong.returncode == 2 and "has no 'user_id' column" in " ".join(wrong.stderr.split())
    assert not (tmp_path / "wrong").exists()  # the attribute file is read before anything is written
    ok(cli(*split, "--items", "csv/items.csv", "--output-dir", "split", cwd=tmp_path))
    cold = pd.read_csv(tmp_path / "split" / "test.csv")["item_id"].unique().tolist()
    assert pd.read_csv(tmp_path / "split" / "items_new.csv")["item_id"].tolist() == cold
    assert sorted(pd.read_csv(tmp_path / "split" / "items_train.csv")["item_id"]) == sorted({1, 3, 4} - set(cold))
    embedded = read_attributes(tmp_path / "csv" / "items.csv", "item_id")
    embedded = embedded.assign(vector=[np.ones(2) * i for i in range(3)])
    embedded.to_parquet(tmp_path / "embedded.parquet")
    ok(cli(*split, "--items", "embedded.parquet", "--output-dir", "vectors", cwd=tmp_path))
    new = pd.read_parquet(tmp_path / "vectors" / "items_new.parquet")  # Parquet in, Parquet out: vectors kept
    assert new["item_id"].tolist() == [str(item) for item in cold] and len(new["vector"].iloc[0]) == 2


def test_p6_through_the_command_line_from_the_written_100k(
    ml100k_dir: Path, ml100k_splits_dir: Path, tmp_path: Path
) -> None:
    """The issue's user cold start end to end, as a user runs it: MovieLens written as CSV, the cold-users split with
    the users table cut in two, training on the warm users' attributes, lists for the new users from theirs."""
    ok(cli("datasets", "movielens", "--data-dir", ml100k_dir, "--output-dir", "csv", cwd=tmp_path))
    assert [len(pd.read_csv(tmp_path / "csv" / f"{name}.csv")) for name in ("interactions", "items", "users")] == [
        100_000, 1682, 943]
    ok(cli("split", "--interactions", "csv/interactions.csv", "--method", "cold_users", "--fraction", 0.2,
           "--users", "csv/users.csv", "--output-dir", "split", cwd=tmp_path))
    test = pd.read_csv(tmp_path / "split" / "test.csv", dtype={"user_id": str, "item_id": str})
    shared = pd.read_csv(ml100k_splits_dir / "P6.test.csv", dtype={"user_id": str, "item_id": str})
    key = ["user_id", "item_id", "timestamp"]
    pd.testing.assert_frame_equal(test[key].sort_values(key, ignore_index=True),
                                  shared[key].sort_values(key, ignore_index=True))
    new = pd.read_csv(tmp_path / "split" / "users_new.csv", dtype={"user_id": str})
    warm = pd.read_csv(tmp_path / "split" / "users_train.csv", dtype={"user_id": str})
    assert set(new["user_id"]) == set(shared["user_id"]) and len(new) == 189 and len(warm) == 943 - 189
    assert not set(warm["user_id"]) & set(new["user_id"])
    ndcg = {}
    for algorithm, users in (("popularity", None), ("ease", "split/users_train.csv")):
        ok(cli("train", "--interactions", "split/train.csv", *(["--users", users] if users else []), "--algorithm",
               algorithm, "--model-dir", algorithm, cwd=tmp_path))
        ok(cli("recommend", "--model-dir", algorithm, "--users", "split/users_new.csv", "--k", 10, "--output",
               f"{algorithm}.csv", cwd=tmp_path))
        ok(cli("evaluate", "--test", "split/test.csv", "--recommendations", f"{algorithm}.csv", "--metric", "ndcg@10",
               "--output", f"{algorithm}.json", cwd=tmp_path))
        ndcg[algorithm] = pd.read_json(tmp_path / f"{algorithm}.json")["value"].item()
    assert abs(ndcg["popularity"] - 0.524) < 0.001, ndcg  # the global popularity on these users
    assert ndcg["ease"] > ndcg["popularity"] + 0.02, ndcg  # measured 0.5540 (attributes) against 0.5239
