"""IdMap: a few ids looked up one by one give what the indexer gives for many, unknown ids included."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.data.idmap import FEW_IDS, IdMap
from tailored.errors import UnknownIdError


@pytest.mark.parametrize("ids", [["u3", "nobody", "u0", "u3"], [f"u{n % 50}" for n in range(FEW_IDS + 5)] + ["x"]])
def test_index_masks_drops_or_refuses_unknown_ids_for_few_and_many(ids) -> None:
    users = IdMap([f"u{n}" for n in range(40)], name="user")
    expected = np.array([int(one[1:]) if one[1:].isdigit() and int(one[1:]) < 40 else -1 for one in ids])
    assert users.index(ids).tolist() == expected.tolist()
    assert users.index(np.array(ids), missing="drop").tolist() == expected[expected >= 0].tolist()
    with pytest.raises(UnknownIdError, match="unknown user"):
        users.index(ids, missing="raise")
    assert IdMap([7, 9]).index([9, 8]).tolist() == [1, -1]  # integer ids too
