"""Choosing the number of components."""

import numpy as np
import pytest

from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.selection import parse_range, select_n_components


def six_component_mixture(n_per=200, seed=0):
    """A known mixture: six Gaussians with different shapes on a ring."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    centres = np.c_[9 * np.cos(angles), 9 * np.sin(angles)]
    scales = rng.uniform(0.6, 1.4, size=(6, 2))
    X = np.concatenate([rng.normal(c, s, size=(n_per, 2)) for c, s in zip(centres, scales)])
    return X[rng.permutation(len(X))]


def test_bic_chooses_six():
    X = six_component_mixture()
    sel = select_n_components(X, "2:10", criterion="bic", random_state=0)
    assert sel.best == 6
    values = {r.n_components: r.value for r in sel.rows}
    assert values[6] == min(values.values())
    assert [r.n_components for r in sel.rows] == list(range(2, 11))
    assert sel.best_model.n_components == 6
    assert sel.best_model.bic(X) == pytest.approx(values[6])
    table = sel.table().splitlines()
    assert sum(line.endswith("*") for line in table) == 1
    assert [line for line in table if line.endswith("*")][0].split()[0] == "6"


def test_heldout_and_aic_and_kmeans_template():
    X = six_component_mixture(seed=1)
    sel = select_n_components(X, [3, 6, 12], criterion="heldout", random_state=0,
                              estimator=TruncatedGaussianMixture(n_init=2, random_state=0))
    values = [r.value for r in sel.rows]
    assert sel.best == sel.rows[int(np.argmax(values))].n_components
    # higher is better: six components explain unseen rows far better than three
    assert values[1] > values[0] + 0.3
    # held-out scores come from rows the model did not see: fitted on 80%
    assert sel.best_model.n_features_in_ == 2
    aic = select_n_components(X, "4:8:2", criterion="aic", random_state=0)
    assert [r.n_components for r in aic.rows] == [4, 6, 8]
    assert aic.best == aic.rows[int(np.argmin([r.value for r in aic.rows]))].n_components
    km = select_n_components(X, "5:7", estimator=KMeans(random_state=0))
    assert all(m.n_clusters == k for k, m in km.models.items())


@pytest.mark.parametrize("spec,expected", [
    ("2:5", [2, 3, 4, 5]), ("2:10:4", [2, 6, 10]), ("6", [6]), ("9,3,6,3", [3, 6, 9]),
])
def test_parse_range(spec, expected):
    assert parse_range(spec) == expected


@pytest.mark.parametrize("spec", ["5:2", "0:3", "a:b", "1:2:3:4", "", "2:8:0"])
def test_parse_range_rejects(spec):
    with pytest.raises(ValueError):
        parse_range(spec)


def test_bad_arguments():
    X = six_component_mixture(n_per=5)
    with pytest.raises(ValueError, match="criterion"):
        select_n_components(X, "2:3", criterion="dic")
    with pytest.raises(ValueError, match="samples"):
        select_n_components(X, "2:40")
