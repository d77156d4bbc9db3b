"""Exact EM per iteration: ``TruncatedGaussianMixture(n_active=None)`` against scikit-learn ``GaussianMixture``.

Both start from the same ``means_init``, ``weights_init`` and ``precisions_init``
and use scikit-learn's regularisation (``reg_covar=1e-6``; truncmix with
``covariance_floor=0``), so they run the same E- and M-steps and must reach the
same log-likelihood. Targets (issue 3): at most 0.3x scikit-learn per iteration
for ``diag`` and ``spherical``, 0.5x for ``full``, and ``score(X)`` equal to
scikit-learn's within rtol 1e-6 in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.mixture import GaussianMixture

from truncmix import TruncatedGaussianMixture

from .. import data
from ..harness import fmt_seconds, gemm_floor, median_ratio, per_iteration

TARGETS = {"diag": 0.3, "spherical": 0.3, "full": 0.5, "tied": 0.5}
LL_RTOL = 1e-6
REG_COVAR = 1e-6


def runners(X, st, covariance_type, n_active=None, keep=None):
    """Fit functions ``f(max_iter) -> (n_iter, extra)`` for truncmix and scikit-learn.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    st : benchmarks.data.Start
    covariance_type : str
    n_active : int or None
        truncmix's C'; None is exact EM.
    keep : dict, optional
        When given, the fitted estimators of the latest fit are stored in it
        under the runner names (for the log-likelihood check).

    Returns
    -------
    dict of str to callable
    """
    C = st.means.shape[0]
    prec = st.precisions(covariance_type)
    common = dict(means_init=st.means, weights_init=st.weights, precisions_init=prec,
                  reg_covar=REG_COVAR, tol=0)

    def truncmix(m):
        est = TruncatedGaussianMixture(C, n_active=n_active, covariance_type=covariance_type,
                                       covariance_floor=0, max_iter=m, **common).fit(X)
        if keep is not None:
            keep["truncmix"] = est
        loop = [r.seconds for r in est.history_[: est.n_iter_]]
        return est.n_iter_, {"lower_bound": float(est.lower_bound_),
                             "in_loop_median": float(np.median(loop)) if loop else None}

    def sklearn(m):
        # the given parameters override the initialisation; "random_from_data" keeps its
        # (discarded) work small instead of a full k-means run
        est = GaussianMixture(C, covariance_type=covariance_type, max_iter=m,
                              init_params="random_from_data", random_state=0, **common).fit(X)
        if keep is not None:
            keep["sklearn"] = est
        return est.n_iter_, {"lower_bound": float(est.lower_bound_)}

    return {"truncmix": truncmix, "sklearn": sklearn}


def time_case(X, st, covariance_type, m, repeats, log, n_active=None):
    """Warm up, time both libraries and compare their log-likelihood at ``max_iter=m2``.

    Returns
    -------
    res : dict
        :func:`~benchmarks.harness.per_iteration` output.
    ll : dict
        ``truncmix`` and ``sklearn`` ``score(X)`` after m2 iterations and their
        relative difference ``rel_diff``.
    """
    m1, m2 = m
    C = st.means.shape[0]
    warm = X[: min(X.shape[0], max(2000, 2 * C))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in runners(warm, st, covariance_type, n_active).values():
            f(1)
    keep = {}
    res = per_iteration(runners(X, st, covariance_type, n_active, keep), m1, m2, repeats, log=log)
    ll_t = float(keep["truncmix"].score(X))
    ll_s = float(keep["sklearn"].score(X))
    ll = {"truncmix": ll_t, "sklearn": ll_s, "rel_diff": abs(ll_t - ll_s) / abs(ll_s)}
    return res, ll


def run(params, ctx):
    """Run the exact-EM benchmark.

    Parameters
    ----------
    params : dict
        ``cases`` [((N, D, C), covariance types)], ``dtypes``, ``m``, ``repeats``.
    ctx : benchmarks.suites.Context

    Returns
    -------
    dict
    """
    m1, m2 = params["m"]
    cases, targets, rows = [], [], []
    for (N, D, C), cov_types in params["cases"]:
        for dtype, X, st in data.variants(N, D, C, params["dtypes"]):
            floor = gemm_floor(X, st.means_as(dtype))
            for ct in cov_types:
                ctx.log(f"  gmm N={N} D={D} C={C} {dtype} {ct}")
                label = f"N={N:,} D={D} C={C} {dtype} {ct}"
                try:
                    res, ll = time_case(X, st, ct, (m1, m2), params["repeats"], ctx.log)
                except Exception as exc:  # a library failing on a case is a result too
                    msg = f"{type(exc).__name__}: {str(exc)[:160]}"
                    ctx.log(f"    failed: {msg}")
                    cases.append({"N": N, "D": D, "C": C, "dtype": dtype,
                                  "covariance_type": ct, "floor": floor, "failed": msg})
                    rows.append([label] + ["-"] * 9 + [f"failed: {msg}"])
                    continue
                t, s = res["truncmix"]["per_iter"], res["sklearn"]["per_iter"]
                ratio = t / s
                limit = TARGETS[ct]
                cases.append({"N": N, "D": D, "C": C, "dtype": dtype, "covariance_type": ct,
                              "floor": floor, "m": [m1, m2], "results": res,
                              "log_likelihood": ll})
                targets.append({"benchmark": "gmm", "case": label,
                                "target": f"truncmix / sklearn GaussianMixture({ct}) <= {limit}",
                                "measured": ratio, "limit": limit, "pass": bool(ratio <= limit)})
                if dtype == "float64":
                    targets.append({"benchmark": "gmm", "case": label,
                                    "target": f"same log-likelihood, rtol {LL_RTOL:g}",
                                    "measured": ll["rel_diff"], "limit": LL_RTOL,
                                    "pass": bool(ll["rel_diff"] <= LL_RTOL)})
                rows.append([
                    label, fmt_seconds(t), fmt_seconds(s), f"{ratio:.2f}",
                    f"{median_ratio(res['truncmix']['per_iter_repeats'], res['sklearn']['per_iter_repeats']):.2f}",
                    fmt_seconds(floor["seconds"]), f"{t / floor['seconds']:.1f}",
                    f"{ll['truncmix']:.8g}", f"{ll['sklearn']:.8g}", f"{ll['rel_diff']:.1e}",
                    "" if all(r["valid"] for r in res.values())
                    else "fallback: " + ",".join(n for n, r in res.items() if not r["valid"]),
                ])
    table = {
        "title": f"Exact EM (n_active=None), time per iteration (m = {m1} vs {m2}, same initial parameters, reg_covar=1e-6)",
        "columns": ["case", "truncmix", "sklearn GMM", "ratio", "median ratio per repeat",
                    "GEMM floor", "truncmix/floor", "score truncmix", "score sklearn",
                    "rel. diff", "notes"],
        "rows": rows,
    }
    return {"name": "gmm", "params": params, "cases": cases, "targets": targets,
            "tables": [table]}
