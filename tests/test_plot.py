"""Pictures: written, non-trivial, for 2-D and high-dimensional data."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from truncmix import KMeans, TruncatedGaussianMixture  # noqa: E402
from truncmix.plot import full_covariances, pca_projection, plot_fit, plot_selection  # noqa: E402
from truncmix.selection import select_n_components  # noqa: E402


def blobs(D, n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(4, D))
    return np.concatenate([rng.normal(c, 1.0, size=(n, D)) for c in centres])


def check_png(path, min_colours=30):
    img = imread(path)
    h, w = img.shape[:2]
    assert h >= 400 and w >= 600
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) > min_colours
    # not a blank canvas: a good share of the pixels is not white
    assert (rgb.min(axis=1) < 200).mean() > 0.02
    return img


@pytest.mark.parametrize("D,model", [
    (2, TruncatedGaussianMixture(4, covariance_type="full", random_state=0)),
    (2, KMeans(4, random_state=0)),
    (12, TruncatedGaussianMixture(4, covariance_type="diag", n_active=2, random_state=0)),
    (30, TruncatedGaussianMixture(4, covariance_type="tied", random_state=0)),
])
def test_plot_fit_writes_a_real_png(D, model, tmp_path):
    X = blobs(D)
    model.fit(X)
    fig = plot_fit(model, X, tmp_path / "fit.png")
    check_png(tmp_path / "fit.png")
    assert len(fig.axes) == 4
    # one ellipse per component in the 2-D view
    ellipses = [p for p in fig.axes[1].patches if type(p).__name__ == "Ellipse"]
    assert len(ellipses) == 4
    assert [f for f in tmp_path.iterdir()] == [tmp_path / "fit.png"]


def test_one_feature_and_other_formats(tmp_path):
    X = blobs(1)
    model = TruncatedGaussianMixture(2, random_state=0).fit(X)
    plot_fit(model, X, tmp_path / "fit.svg")
    assert (tmp_path / "fit.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="unknown picture format"):
        plot_fit(model, X, tmp_path / "fit.bmpx")


def test_selection_curve(tmp_path):
    X = blobs(2, n=100)
    sel = select_n_components(X, "2:5", random_state=0)
    fig = plot_selection(sel, tmp_path / "bic.png")
    img = imread(tmp_path / "bic.png")
    assert img.shape[0] > 200 and img.shape[1] > 300
    xs = fig.axes[0].lines[0].get_xdata()
    assert list(xs) == [2, 3, 4, 5]


def test_full_covariances_and_projection():
    X = blobs(5)
    diag = TruncatedGaussianMixture(4, covariance_type="diag", random_state=0).fit(X)
    full = full_covariances(diag)
    assert full.shape == (4, 5, 5)
    np.testing.assert_array_equal(np.diagonal(full, axis1=1, axis2=2), diag.covariances_)
    assert np.count_nonzero(full - np.einsum("cii->ci", full)[:, :, None] * np.eye(5)) == 0
    km = KMeans(4, random_state=0).fit(X)
    np.testing.assert_allclose(full_covariances(km)[2], km.sigma2_ * np.eye(5))
    centre, basis, explained = pca_projection(X)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)
    assert explained[0] >= explained[1] > 0 and explained.sum() <= 1 + 1e-12
    np.testing.assert_allclose(centre, X.mean(axis=0))
