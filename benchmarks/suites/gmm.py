"""Exact EM per iteration: ``TruncatedGaussianMixture(n_active=None)`` against scikit-learn ``GaussianMixture``.

Both start from the same ``means_init``, ``weights_init`` and ``precisions_init``
and use scikit-learn's regularisation (``reg_covar=1e-6``; truncmix with
``covariance_floor=0``), so they run the same E- and M-steps and must reach the
same log-likelihood. Targets (issue 3): at most 0.3x scikit-learn per iteration
for ``diag`` and ``spherical``, 0.5x for ``full``, and ``score(X)`` equal to
scikit-learn's within rtol 1e-6 in float64.

The time per iteration is measured inside the loop, for both libraries: each
fit's median iteration (scikit-learn: its ``_e_step`` plus ``_m_step``, timed
by a subclass; truncmix: ``history_[i].seconds``, E-step, M-step and
bookkeeping), the least over all fits of the case. The difference method of
the other suites (whole fits at two iteration counts) is reported beside it:
for scikit-learn it proved unreliable here, its whole fits varying by up to
0.7 s from one to the next with what ran before them in the process (at
100k x 32, C = 100, a 1-iteration fit took 0.59-1.55 s, and a 4-iteration one
once less than a 2-iteration one), as much as two of its iterations.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture

from truncmix import TruncatedGaussianMixture

from .. import data
from ..harness import fmt_seconds, gemm_floor, median_ratio, per_iteration

TARGETS = {"diag": 0.3, "spherical": 0.3, "full": 0.5, "tied": 0.5}
LL_RTOL = 1e-6
REG_COVAR = 1e-6


class TimedGaussianMixture(GaussianMixture):
    """scikit-learn's ``GaussianMixture``, timing every E- and M-step of its fits.

    After a fit, ``loop_seconds_[i]`` is the time of iteration i's E-step plus
    its M-step (the E-step after the loop, for the labels, is left out).
    """

    def fit(self, X, y=None):
        self._e_seconds, self._m_seconds = [], []
        super().fit(X, y)
        self.loop_seconds_ = [e + m for e, m in zip(self._e_seconds, self._m_seconds)]
        return self

    def _e_step(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = super()._e_step(*args, **kwargs)
        self._e_seconds.append(time.perf_counter() - t0)
        return out

    def _m_step(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = super()._m_step(*args, **kwargs)
        self._m_seconds.append(time.perf_counter() - t0)
        return out


def in_loop(res, name):
    """The least, over all of a runner's fits, of its median in-loop iteration time."""
    values = [e["in_loop_median"] for e in res[name]["extras"] if e.get("in_loop_median")]
    return min(values) if values else float("nan")


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
        est = TimedGaussianMixture(C, covariance_type=covariance_type, max_iter=m,
                                   init_params="random_from_data", random_state=0,
                                   **common).fit(X)
        if keep is not None:
            keep["sklearn"] = est
        loop = est.loop_seconds_[: est.n_iter_]
        return est.n_iter_, {"lower_bound": float(est.lower_bound_),
                             "in_loop_median": float(np.median(loop)) if loop else None}

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
                    rows.append([label] + ["-"] * 10 + [f"failed: {msg}"])
                    continue
                t, s = in_loop(res, "truncmix"), in_loop(res, "sklearn")
                ratio = t / s
                diff_ratio = res["truncmix"]["per_iter"] / res["sklearn"]["per_iter"]
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
                cases[-1]["in_loop"] = {"truncmix": t, "sklearn": s, "ratio": ratio,
                                        "difference_method_ratio": diff_ratio}
                rows.append([
                    label, fmt_seconds(t), fmt_seconds(s), f"{ratio:.2f}", f"{diff_ratio:.2f}",
                    f"{median_ratio(res['truncmix']['per_iter_repeats'], res['sklearn']['per_iter_repeats']):.2f}",
                    fmt_seconds(floor["seconds"]), f"{t / floor['seconds']:.1f}",
                    f"{ll['truncmix']:.8g}", f"{ll['sklearn']:.8g}", f"{ll['rel_diff']:.1e}",
                    "" if all(r["valid"] for r in res.values())
                    else "fallback: " + ",".join(n for n, r in res.items() if not r["valid"]),
                ])
    table = {
        "title": f"Exact EM (n_active=None), time per iteration inside the loop (fits of {m1} and {m2} iterations, same initial parameters, reg_covar=1e-6)",
        "columns": ["case", "truncmix", "sklearn GMM", "ratio", "ratio by the difference method",
                    "median ratio per repeat (difference method)",
                    "GEMM floor", "truncmix/floor", "score truncmix", "score sklearn",
                    "rel. diff", "notes"],
        "rows": rows,
    }
    return {"name": "gmm", "params": params, "cases": cases, "targets": targets,
            "tables": [table]}
