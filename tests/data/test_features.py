"""The item encoder: one block per usable column, fitted once, new items encoded the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.features import ItemEncoder, attribute_vectors
from tailored.errors import DataError

ITEMS = pd.DataFrame({
    "genres": ["Action|Comedy", "Drama", None, "Comedy"],
    "title": ["Toy Story (1995)", "Heat (1995)", None, "Toy Soldiers (1991)"],
    "price": [1.0, 2.5, np.nan, 40.0],
    "brand": ["x", "y", "x", "y"],
    "sku": ["s1", "s2", "s3", "s4"],
    "embedding": [np.array([1.0, 0.0]), np.array([0.0, 1.0]), None, np.array([1.0, 1.0])],
})


def test_each_usable_column_gets_its_kind_and_ids_are_left_out() -> None:
    encoder = ItemEncoder(max_categories=1).fit(ITEMS)
    kinds = {name: block[0] for name, block in encoder.blocks.items()}
    assert kinds == {"genres": "multi", "title": "text", "price": "numeric", "brand": "category", "embedding": "vector"}
    assert ItemEncoder().fit(ITEMS).blocks["brand"][0] == "category"
    assert "sku" not in ItemEncoder().fit(ITEMS).blocks  # unique per item: cannot generalise


def test_a_category_of_more_values_than_max_categories_keeps_the_shared_ones_when_they_cover_most_items() -> None:
    """Brands or authors by the thousand: the values two items or more share are categories, the rest unknown."""
    brands = [f"b{i}" for i in range(5) for _ in range(3)] + [f"own{i}" for i in range(6)]  # 15 of 21 items shared
    authors = ["a0", "a0", "a1", "a1"] + [f"solo{i}" for i in range(17)]  # 4 of 21: mostly alone, like an id
    catalogue = pd.DataFrame({"brand": brands, "author": authors})
    encoder = ItemEncoder(max_categories=3).fit(catalogue)
    assert list(encoder.blocks) == ["brand"]
    assert encoder.blocks["brand"][1].tolist() == ["b0", "b1", "b2", "b3", "b4"]
    rows = encoder.transform(pd.DataFrame({"brand": ["b2", "own1", "new"]})).toarray()
    assert rows[0].any() and not rows[1].any() and not rows[2].any()  # a brand of one item counts as unknown
    assert list(ItemEncoder(max_categories=30).fit(catalogue).blocks) == ["brand", "author"]  # few values: as before


def test_numbers_are_binned_when_most_items_have_their_own_and_stay_categories_when_they_are_codes() -> None:
    """A price per item on a catalogue of 100 (fewer values than ``max_categories``) was left out as an id; a release
    year shared by many items stays one category per year."""
    catalogue = pd.DataFrame({"price": np.linspace(5.0, 500.0, 100), "year": np.repeat(np.arange(1990, 2000), 10),
                              "grade": np.arange(100) % 5})
    encoder = ItemEncoder().fit(catalogue)
    assert {name: block[0] for name, block in encoder.blocks.items()} == {
        "price": "numeric", "year": "category", "grade": "category"}
    bins = encoder.transform(pd.DataFrame({"price": [6.0, 7.0, 480.0]})).toarray()
    assert (bins[0] == bins[1]).all() and not (bins[0] == bins[2]).all()  # neighbouring prices share their bin


def test_rows_are_unit_length_and_missing_values_give_zero_rows() -> None:
    matrix = ItemEncoder().fit(ITEMS).transform(ITEMS)
    norms = np.linalg.norm(matrix.toarray(), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    sparse_only = ItemEncoder().fit(ITEMS[["genres"]]).transform(ITEMS[["genres"]]).toarray()
    assert not sparse_only[2].any()


def test_new_items_are_encoded_like_the_training_ones_and_unseen_values_are_unknown() -> None:
    encoder = ItemEncoder().fit(ITEMS)
    restored = ItemEncoder.from_arrays(encoder.to_arrays())
    np.testing.assert_allclose(restored.transform(ITEMS).toarray(), encoder.transform(ITEMS).toarray(), rtol=1e-6)
    new = pd.DataFrame({"genres": ["Comedy|Western"], "title": ["Toy Town"], "brand": ["never-seen"]})
    row = restored.transform(new).toarray()[0]  # missing columns (price, embedding) are zero blocks
    comedy_like = restored.transform(ITEMS.iloc[[3]]).toarray()[0]
    assert row @ comedy_like > 0  # shares 'Comedy' and the token 'toy'
    assert restored.transform(pd.DataFrame({"brand": ["never-seen"]})).nnz == 0


def test_integer_codes_read_as_floats_because_of_a_missing_cell_are_still_known() -> None:
    encoder = ItemEncoder().fit(pd.DataFrame({"category": [12, 7, 12, 7]}))
    new = pd.DataFrame({"category": [12.0, np.nan]})  # one missing cell turns the codes into floats
    np.testing.assert_allclose(encoder.transform(new).toarray()[0],
                               encoder.transform(pd.DataFrame({"category": [12]})).toarray()[0])
    assert encoder.transform(new).toarray()[0].any()


def test_a_table_without_usable_columns_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="No usable item attribute"):
        attribute_vectors(pd.DataFrame({"sku": ["a", "b"]}))


def test_a_vector_of_another_length_is_an_error_naming_the_items() -> None:
    encoder = ItemEncoder().fit(ITEMS)
    new = pd.DataFrame({"item_id": ["n1", "n2", "n3"], "embedding": [np.ones(2), np.ones(3), None]})
    with pytest.raises(DataError,
                       match=r"'embedding': 1 vector\(s\) of length \[3\] where the column has 2 .*\['n2'\]"):
        encoder.transform(new)
    mixed = ITEMS.assign(embedding=[np.ones(2), np.ones(2), None, np.ones(4)])
    with pytest.raises(DataError, match=r"of length \[4\] where the column has 2"):
        ItemEncoder().fit(mixed).transform(mixed)
