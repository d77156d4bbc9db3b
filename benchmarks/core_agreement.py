"""Agreement of the core with scikit-learn and with the theory: the figures behind issue 2.

Run: ``python -m benchmarks.core_agreement``. Prints, for fixed seeds, the largest
relative differences to scikit-learn's Lloyd and GaussianMixture from the same
starting parameters, the largest free-energy decrease seen, the truncated
bound, sampling errors, weight equivalence and chunk-size independence.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

from truncmix import KMeans, TruncatedGaussianMixture


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def main():
    warnings.simplefilter("ignore")
    out = {}
    # 1. KMeans vs Lloyd
    worst = dict(labels_differ=0, centres=0.0, inertia=0.0)
    for seed in range(5):
        X, _ = make_blobs(3000, n_features=4 + seed, centers=8, cluster_std=3.0, random_state=seed)
        X += 100 * seed
        init, _ = kmeans_plusplus(X, 8, random_state=seed)
        for m in (1, 5, 50):
            sk = SkKMeans(8, init=init, n_init=1, max_iter=m, tol=0, algorithm="lloyd").fit(X)
            km = KMeans(8, init=init, max_iter=m, tol=0).fit(X)
            worst["labels_differ"] += int((sk.labels_ != km.labels_).sum())
            worst["centres"] = max(worst["centres"], rel(km.cluster_centers_, sk.cluster_centers_))
            worst["inertia"] = max(worst["inertia"], rel(km.inertia_, sk.inertia_))
    out["1 KMeans vs sklearn lloyd (5 data sets x m in 1,5,50)"] = worst
    # 2. exact EM vs GaussianMixture
    X, _ = make_blobs(2000, n_features=3, centers=4, cluster_std=2.0, random_state=0)
    C, D = 4, 3
    means = X[np.random.RandomState(0).choice(len(X), C, replace=False)]
    w = np.full(C, 1 / C)
    prec = {"spherical": np.full(C, 0.5), "diag": np.full((C, D), 0.5),
            "tied": np.eye(D) * 0.5, "full": np.stack([np.eye(D) * 0.5] * C)}
    for ct in prec:
        worst = dict(means=0.0, weights=0.0, covariances=0.0, score=0.0, n_iter_equal=True)
        for m in (1, 5, 30):
            kw = dict(covariance_type=ct, means_init=means, weights_init=w,
                      precisions_init=prec[ct], reg_covar=1e-6, max_iter=m, tol=0)
            sk = GaussianMixture(C, **kw).fit(X)
            t = TruncatedGaussianMixture(C, covariance_floor=0, **kw).fit(X)
            worst["means"] = max(worst["means"], rel(t.means_, sk.means_))
            worst["weights"] = max(worst["weights"], rel(t.weights_, sk.weights_))
            worst["covariances"] = max(worst["covariances"], rel(t.covariances_, sk.covariances_))
            worst["score"] = max(worst["score"], rel(t.score(X), sk.score(X)))
            worst["n_iter_equal"] &= t.n_iter_ == sk.n_iter_
        out[f"2 exact EM vs GaussianMixture, {ct}"] = worst
    # 3./4. monotone free energy, truncated bound
    worst_drop, worst_gap, bound_ok = 0.0, 0.0, True
    rng = np.random.default_rng(0)
    for ct in ("isotropic", "spherical", "diag", "tied", "full"):
        for weights in ("equal", "learned"):
            for n_active in (1, 2, 3, None):
                X = rng.standard_normal((300, 3)) + rng.integers(0, 4, (300, 1)) * 2
                g = TruncatedGaussianMixture(5, n_active=n_active, covariance_type=ct,
                                             weights=weights, random_state=1, tol=0,
                                             max_iter=60).fit(X)
                h = g.free_energy_history_
                worst_drop = max(worst_drop, float(np.max(-np.diff(h) / np.maximum(np.abs(h[:-1]), 1))))
                gap = g.score(X) - g.lower_bound_
                k = 5 if n_active is None else n_active
                bound_ok &= -1e-12 <= gap <= np.log(5 / k) + 1e-12
                if n_active is None:
                    worst_gap = max(worst_gap, abs(gap) / abs(g.score(X)))
    out["3 largest relative F decrease over 40 models"] = worst_drop
    out["4 0 <= L-F <= log(C/C') everywhere / |L-F|/|L| at C'=C"] = (bool(bound_ok), worst_gap)
    km = KMeans(8, random_state=0).fit(X)
    closed = -np.log(8) - 0.5 * X.shape[1] * np.log(2 * np.pi * np.e * km.sigma2_)
    out["4 k-means identity |F - closed form|"] = abs(km.lower_bound_ - closed)
    # 5. sigma2 and sampling
    out["5 sigma2_ vs inertia/(N D)"] = rel(km.sigma2_, km.inertia_ / X.size)
    S, lab = km.sample(200_000)
    mean_err = max(np.abs(S[lab == c].mean(0) - km.cluster_centers_[c]).max() / np.sqrt(km.sigma2_ / (lab == c).sum())
                   for c in range(8))
    var_err = abs(((S - km.cluster_centers_[lab]) ** 2).mean() - km.sigma2_) / km.sigma2_
    out["5 sampling: max mean error in std errors, relative variance error"] = (float(mean_err), float(var_err))
    # 6. weights == repeats
    X, _ = make_blobs(400, n_features=3, centers=3, random_state=2)
    sw = np.random.default_rng(0).integers(0, 4, len(X))
    init = X[sw > 0][:3]
    a = TruncatedGaussianMixture(3, covariance_type="full", means_init=init, tol=0, max_iter=20).fit(X, sample_weight=sw)
    b = TruncatedGaussianMixture(3, covariance_type="full", means_init=init, tol=0, max_iter=20).fit(np.repeat(X, sw, axis=0))
    out["6 integer weights vs repeated rows (full, means)"] = rel(a.means_, b.means_)
    # 7. chunk size
    a = TruncatedGaussianMixture(3, n_active=2, covariance_type="diag", random_state=0, chunk_size=7).fit(X)
    b = TruncatedGaussianMixture(3, n_active=2, covariance_type="diag", random_state=0).fit(X)
    out["7 chunk_size 7 vs auto (diag, C'=2, covariances)"] = rel(a.covariances_, b.covariances_)
    for k, val in out.items():
        print(f"{k}: {val}")


if __name__ == "__main__":
    main()
