"""`ncf` specifics: the sampled softmax on catalogues larger than ``negatives``, and scoring in blocks."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.models.neural import ncf
from tests.models.test_contract import planted_groups, planted_users

pytest.importorskip("torch", reason="the torch extra is not installed")


@pytest.fixture(scope="module")
def planted() -> Dataset:
    train, _, items = planted_groups()
    return Dataset.from_frame(train, users=planted_users(), items=items)


def test_sampled_softmax_still_learns_the_planted_tastes(planted: Dataset) -> None:
    scorer = create_scorer("ncf", {"negatives": 5, "epochs": 6}).fit(planted)  # fewer negatives than items
    scores = scorer.score(np.arange(planted.n_users))
    assert scores.shape == (planted.n_users, planted.n_items) and np.isfinite(scores).all()
    seen = planted.matrix(binary=True).toarray() > 0
    assert scores[seen].mean() > scores[~seen].mean()


def test_scores_do_not_depend_on_the_block_size(planted: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = create_scorer("ncf", {"epochs": 2}).fit(planted)
    users = np.arange(planted.n_users)
    whole = scorer.score(users)
    monkeypatch.setattr(ncf, "PAIR_BLOCK", 3 * planted.n_items)  # three users per block
    np.testing.assert_allclose(scorer.score(users), whole, rtol=1e-5, atol=1e-6)


def test_pretrained_branches_fuse_into_their_average(planted: Dataset) -> None:
    """NeuMF initialised from a GMF and an MLP trained alone scores the mean of their logits (alpha 0.5)."""
    scorer = create_scorer("ncf", {"epochs": 1, "pretrain": False}).fit(planted)
    matrix = planted.matrix(binary=True)
    gmf, _ = scorer._train(matrix, None, 2, ("gmf",), 1e-2, None)
    mlp, _ = scorer._train(matrix, None, 2, ("mlp",), 1e-2, None)
    fused = ncf.from_arrays(scorer._build(*matrix.shape), ncf._fused(gmf, mlp, scorer.factors))
    users, items = np.arange(planted.n_users), np.arange(planted.n_items)

    def logits(network, branches):
        user = scorer._represent(network, "user", users, scorer.user_features_)
        item = scorer._represent(network, "item", items, scorer.item_features_)
        return scorer._pairwise(network, user, item, branches)

    expected = 0.5 * logits(gmf, ("gmf",)) + 0.5 * logits(mlp, ("mlp",))
    np.testing.assert_allclose(logits(fused, ("gmf", "mlp")), expected, rtol=1e-4, atol=1e-5)
