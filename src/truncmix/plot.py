"""Pictures of a fit: the free energy per iteration, a 2-D view with component
ellipses (PCA when the data has more than two features), and samples beside data.

matplotlib is imported only inside the functions (``pip install 'truncmix[plot]'``),
and only its object-oriented API is used: no pyplot, no GUI backend, so the
functions work on headless machines and in threads.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["full_covariances", "pca_projection", "plot_fit", "plot_selection", "save_figure"]

#: formats matplotlib can write without extra software
_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib: pip install 'truncmix[plot]'"
        ) from None
    return matplotlib, Figure


def full_covariances(model):
    """Every component's covariance as a full matrix.

    Parameters
    ----------
    model : fitted KMeans or TruncatedGaussianMixture

    Returns
    -------
    ndarray of shape (n_components, n_features, n_features)
    """
    means = _means(model)
    C, D = means.shape
    if hasattr(model, "sigma2_"):
        return np.broadcast_to(model.sigma2_ * np.eye(D), (C, D, D)).copy()
    cov = np.asarray(model.covariances_, dtype=np.float64)
    kind = model.covariance_type
    if kind == "isotropic":
        return np.broadcast_to(float(cov) * np.eye(D), (C, D, D)).copy()
    if kind == "spherical":
        return cov[:, None, None] * np.eye(D)[None]
    if kind == "diag":
        return np.einsum("cd,de->cde", cov, np.eye(D))
    if kind == "tied":
        return np.broadcast_to(cov, (C, D, D)).copy()
    return cov.copy()


def _means(model):
    return np.asarray(model.cluster_centers_ if hasattr(model, "cluster_centers_") else model.means_)


def _weights(model):
    means = _means(model)
    if hasattr(model, "weights_"):
        return np.asarray(model.weights_)
    return np.full(means.shape[0], 1.0 / means.shape[0])


def pca_projection(X):
    """Centre and 2-D basis of the principal components of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), n_features >= 2

    Returns
    -------
    centre : ndarray of shape (n_features,)
    basis : ndarray of shape (n_features, 2)
        Orthonormal columns; the identity when ``n_features == 2``.
    explained : ndarray of shape (2,)
        Fraction of the variance along each column.
    """
    X = np.asarray(X, dtype=np.float64)
    D = X.shape[1]
    centre = X.mean(axis=0)
    total = float(((X - centre) ** 2).sum())
    if D == 2:
        basis = np.eye(2)
    else:
        _, _, vt = np.linalg.svd(X - centre, full_matrices=False)
        basis = vt[:2].T
        # a fixed sign per axis, so pictures do not flip between runs
        basis = basis * np.where(basis[np.argmax(np.abs(basis), axis=0), [0, 1]] < 0, -1.0, 1.0)
    var = (((X - centre) @ basis) ** 2).sum(axis=0)
    explained = var / total if total > 0 else np.zeros(2)
    return centre, basis, explained


def _ellipse(ax, mean2, cov2, color, n_std=2.0):
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(0.5 * (cov2 + cov2.T))
    vals = np.maximum(vals, 0.0)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    width, height = 2 * n_std * np.sqrt(vals[1]), 2 * n_std * np.sqrt(vals[0])
    ax.add_patch(Ellipse(mean2, width, height, angle=angle, fill=False, edgecolor=color, lw=1.6))


def _colours(n):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _subsample(X, max_points, rng):
    if X.shape[0] <= max_points:
        return np.arange(X.shape[0])
    return np.sort(rng.choice(X.shape[0], max_points, replace=False))


def plot_fit(model, X, path=None, *, max_points=4000, random_state=0, title=None, dpi=90):
    """Draw a fitted mixture over its data; optionally write the figure to ``path``.

    Four panels: the free energy per sample at every E-step; the data in 2-D
    (the first two principal components when ``n_features > 2``) coloured by
    predicted component, with each component's 2-standard-deviation ellipse;
    the data alone; and as many samples drawn from the model, on the same axes.

    Parameters
    ----------
    model : fitted KMeans or TruncatedGaussianMixture
    X : array-like of shape (n_samples, n_features)
    path : str or os.PathLike, optional
        Where to write (format from the extension: png, pdf, svg, jpg);
        written atomically.
    max_points : int, default=4000
        At most this many points are drawn per panel (a random subset).
    random_state : int, default=0
        Seeds the subset of points drawn (the samples come from
        ``model.sample``, seeded by the model's own ``random_state``).
    title : str, optional
    dpi : int, default=90

    Returns
    -------
    matplotlib.figure.Figure
    """
    _, Figure = _matplotlib()
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    means, covs, weights = _means(model), full_covariances(model), _weights(model)
    C, D = means.shape
    idx = _subsample(X, max_points, rng)
    Xs = X[idx]
    labels = model.predict(Xs)
    samples = np.asarray(model.sample(len(idx))[0], dtype=np.float64)
    colours = _colours(C)

    fig = Figure(figsize=(11, 8.5), layout="constrained")
    axes = fig.subplots(2, 2)
    ax_f, ax_c, ax_d, ax_s = axes.ravel()

    fe = np.asarray(getattr(model, "free_energy_history_", []), dtype=np.float64)
    ax_f.plot(np.arange(1, len(fe) + 1), fe, marker="o", ms=3, color="C0")
    ax_f.set_xlabel("E-step")
    ax_f.set_ylabel("free energy per sample")
    ax_f.set_title(f"free energy per E-step: {fe[0]:.4g} -> {fe[-1]:.4g}" if len(fe) else
                   "free energy")
    ax_f.grid(alpha=0.3)

    if D == 1:
        centre, basis, explained = np.zeros(1), np.ones((1, 1)), np.ones(1)
    else:
        centre, basis, explained = pca_projection(X)
    P = (Xs - centre) @ basis
    Ps = (samples - centre) @ basis
    Pm = (means - centre) @ basis
    if D == 1:
        P, Ps, Pm = (np.c_[a, np.zeros(len(a))] for a in (P, Ps, Pm))
    if D > 2:
        xl = f"PC1 ({100 * explained[0]:.0f}% of variance)"
        yl = f"PC2 ({100 * explained[1]:.0f}%)"
    else:
        xl, yl = "x0", "x1" if D == 2 else ""
    # bigger dots when there are few of them
    point = dict(s=float(np.clip(3000.0 / len(idx), 4.0, 16.0)), alpha=0.6, linewidths=0,
                 rasterized=True)
    ax_c.scatter(P[:, 0], P[:, 1], c=[colours[i] for i in labels], **point)
    for c in range(C):
        if weights[c] <= 0:
            continue
        cov2 = basis.T @ covs[c] @ basis if D > 1 else np.diag([covs[c, 0, 0], 0.0])
        _ellipse(ax_c, Pm[c], cov2, colours[c])
    ax_c.scatter(Pm[:, 0], Pm[:, 1], marker="x", c="k", s=25, linewidths=1.2)
    ax_c.set_title(f"{C} components: 2-s.d. ellipses" + (" in the PCA view" if D > 2 else ""))
    ax_d.scatter(P[:, 0], P[:, 1], color="0.3", **point)
    ax_d.set_title(f"data ({X.shape[0]} points" + (f", {len(idx)} shown)" if len(idx) < X.shape[0] else ")"))
    ax_s.scatter(Ps[:, 0], Ps[:, 1], color="C3", **point)
    ax_s.set_title(f"{len(idx)} samples drawn from the model")
    both = np.vstack([P, Ps])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    for ax in (ax_c, ax_d, ax_s):
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        if D > 1:
            ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    name = type(model).__name__
    extra = ", one shared variance, C'=1" if not hasattr(model, "covariance_type") else (
        f", {model.covariance_type} covariances, C'={min(model.n_active or C, C)}")
    fig.suptitle(title or f"truncmix {name}: {C} components, {D} features{extra}")
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def plot_selection(selection, path=None, *, dpi=90):
    """The criterion against the number of components, the best one marked.

    Parameters
    ----------
    selection : truncmix.selection.Selection
    path : str or os.PathLike, optional
        Where to write; atomically, format from the extension.
    dpi : int, default=90

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .selection import CRITERIA

    _, Figure = _matplotlib()
    ks = np.array([r.n_components for r in selection.rows])
    vals = np.array([r.value for r in selection.rows])
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(ks, vals, marker="o", ms=4)
    best = [r for r in selection.rows if r.n_components == selection.best][0]
    ax.plot([best.n_components], [best.value], marker="*", ms=16, color="C3",
            label=f"best: k = {selection.best}")
    title, lower = CRITERIA[selection.criterion]
    ax.set_xlabel("number of components k")
    ax.set_ylabel(f"{title} ({'lower' if lower else 'higher'} is better)")
    ax.legend()
    ax.grid(alpha=0.3)
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def save_figure(fig, path, *, dpi=90):
    """Write ``fig`` to ``path`` atomically; the format follows the extension.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
    dpi : int, default=90

    Returns
    -------
    path : str
    """
    from .io import atomic_write

    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError(f"{path}: unknown picture format {fmt!r}; use one of {', '.join(_FORMATS)}")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="jpeg" if fmt == "jpg" else fmt, dpi=dpi)
    return path
