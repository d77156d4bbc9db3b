"""A tour of truncmix on scikit-learn's digits: k-means as a density model and the C' knob.

Run with ``truncmix demo`` (or ``python -m truncmix demo``). Everything it needs
ships with scikit-learn; nothing is downloaded. It prints a comparison table and
a summary, and writes into ``--out-dir`` (default ``./truncmix-demo``): the data
it used, the best model as a ``.tmx`` file, pictures of two fits and the BIC
curve for choosing the number of clusters (pictures need matplotlib).
"""

from __future__ import annotations

import warnings

import numpy as np


def _row(name, model, fit_seconds, X_train, X_test, labels_true, labels_pred):
    from sklearn.metrics import adjusted_rand_score

    ll_test = model.score(X_test) if hasattr(model, "score_samples") else float("nan")
    return (name, adjusted_rand_score(labels_true, labels_pred), ll_test, fit_seconds)


def run(seed=0, out=print, out_dir=None, quick=False):
    """Fit the family on digits, print what each member achieves, write the files.

    Parameters
    ----------
    seed : int, default=0
    out : callable, default=print
        Receives each line of the report.
    out_dir : str or None, default=None
        Where to write the data, the model and the pictures; None writes nothing.
    quick : bool, default=False
        One start per model instead of four, and fewer sizes in the BIC curve.

    Returns
    -------
    dict
        ``rows``: the table rows ``(model, ARI on train, held-out
        log-likelihood per sample, seconds)``; ``files``: what was written.
    """
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import train_test_split

    from . import KMeans, TruncatedGaussianMixture
    from .selection import quiet_timed_fit

    digits = load_digits()
    # 64 pixels, several of them always blank: a 20-dimensional PCA view keeps
    # 90% of the variance and gives every model a proper density to fit
    X_all = PCA(n_components=20, random_state=seed).fit_transform(digits.data)
    X, X_test, y, _ = train_test_split(X_all, digits.target, test_size=0.25, random_state=seed)
    C = 10
    n_init = 1 if quick else 4
    out(f"digits: {X.shape[0]} training and {X_test.shape[0]} held-out images, "
        f"{X.shape[1]} PCA features, {C} clusters\n")

    rows = []

    def fit(name, model):
        seconds = quiet_timed_fit(model, X)
        pred = model.predict(X)
        rows.append(_row(name, model, seconds, X, X_test, y, pred))
        return model

    km = fit("truncmix KMeans (C'=1, isotropic, equal weights)", KMeans(C, n_init=n_init, random_state=seed))
    sk = fit("scikit-learn KMeans (lloyd)", SkKMeans(C, n_init=n_init, algorithm="lloyd", random_state=seed))
    fit("truncmix k-means-C' (C'=3, isotropic)",
        TruncatedGaussianMixture(C, n_active=3, covariance_type="isotropic", weights="equal",
                                 n_init=n_init, random_state=seed))
    fit("truncmix diag GMM, C'=3", TruncatedGaussianMixture(C, n_active=3, n_init=n_init, random_state=seed))
    full = fit("truncmix full GMM, exact EM (C'=C)",
        TruncatedGaussianMixture(C, covariance_type="full", n_init=n_init, random_state=seed))
    fit("scikit-learn GaussianMixture full", GaussianMixture(C, covariance_type="full", n_init=n_init,
                                                             random_state=seed))

    width = max(len(r[0]) for r in rows)
    out(f"{'model':<{width}}  {'ARI':>6}  {'held-out log-lik':>16}  {'seconds':>8}")
    for name, ari, ll, sec in rows:
        ll_s = "   (no density)" if np.isnan(ll) else f"{ll:16.3f}"
        out(f"{name:<{width}}  {ari:6.3f}  {ll_s:>16}  {sec:8.3f}")

    out(f"\nk-means as a generative model: sigma^2 = inertia / (N D) = {km.sigma2_:.4f}; "
        f"inertia {km.inertia_:.1f} (scikit-learn: {sk.inertia_:.1f})")
    out(f"free energy per sample rose monotonically over {len(km.free_energy_history_)} "
        f"E-steps: {km.free_energy_history_[0]:.4f} -> {km.free_energy_history_[-1]:.4f}")
    samples, which = km.sample(5)
    out(f"five samples drawn from the fitted k-means model came from clusters {which.tolist()}")
    files = _write_files(out_dir, X, km, full, seed, quick, out) if out_dir else []
    return {"rows": [dict(zip(("model", "ari", "heldout_log_likelihood", "seconds"), r)) for r in rows],
            "out_dir": out_dir, "files": files}


def _write_files(out_dir, X, km, full, seed, quick, out):
    """Data, model file and pictures in ``out_dir``; returns the paths written."""
    import os

    from .io import save, write_array
    from .selection import select_n_components

    os.makedirs(out_dir, exist_ok=True)
    files = []
    data = os.path.join(out_dir, "digits-pca20.npy")
    write_array(data, X)
    files.append(data)
    model_path = os.path.join(out_dir, "digits-full.tmx")
    save(full, model_path, metadata={"data": os.path.abspath(data), "n_samples": int(X.shape[0]),
                                     "n_features": int(X.shape[1]), "columns": None})
    files.append(model_path)
    from . import TruncatedGaussianMixture

    ks = range(4, 17, 4) if quick else range(2, 21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_n_components(
            X, ks, estimator=TruncatedGaussianMixture(covariance_type="full", n_init=1,
                                                      random_state=seed))
    out(f"\nchoosing the number of clusters by BIC (full covariances): best k = {sel.best}")
    out(sel.table())
    try:
        from .plot import plot_fit, plot_selection
    except ImportError:  # pragma: no cover - matplotlib is an extra
        out("\n(install matplotlib for the pictures: pip install 'truncmix[plot]')")
        return files
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        out("\n(install matplotlib for the pictures: pip install 'truncmix[plot]')")
        return files
    for name, model in (("digits-full.png", full), ("digits-kmeans.png", km)):
        path = os.path.join(out_dir, name)
        plot_fit(model, X, path, title=f"digits (20 PCA features): {type(model).__name__}")
        files.append(path)
    path = os.path.join(out_dir, "digits-bic.png")
    plot_selection(sel, path)
    files.append(path)
    out(f"\nwrote to {os.path.abspath(out_dir)}:")
    for f in files:
        out(f"  {os.path.basename(f)}")
    out(f"try:  truncmix info {model_path}\n      truncmix plot {model_path} {data} -o fit.png")
    return files


def main(argv=None):
    """``truncmix demo`` (kept for ``from truncmix.demo import main``)."""
    from .cli import main as cli_main

    return cli_main(["demo", *(argv or [])])
