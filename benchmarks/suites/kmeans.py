"""k-means per Lloyd iteration: truncmix ``KMeans`` against scikit-learn lloyd/elkan, faiss and the GEMM floor.

Every estimator starts from the same centres (C distinct data rows), runs with
``tol=0`` and is timed at two iteration counts (see
:func:`benchmarks.harness.per_iteration`). Targets (issue 3): truncmix at most
0.7x the best of scikit-learn lloyd/elkan in the same dtype, and at most 2x the
GEMM-only floor of the same shape.

Two iteration windows are measured, because methods with bounds (truncmix's
default Yinyang search, scikit-learn's elkan) cost less per iteration as the
centres settle: the early iterations 3..m2 (``m``), where the centres still
move a lot, and the whole run, iterations 3 up to scikit-learn lloyd's
convergence (capped at ``whole_run_cap``), where every estimator runs that many
iterations (faiss, which has no convergence test, too).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans as SkKMeans

from truncmix import KMeans

from .. import data
from ..harness import fmt_seconds, gemm_floor, median_ratio, optional_faiss, per_iteration

TARGET_VS_SKLEARN = 0.7
TARGET_VS_FLOOR = 2.0


def runners(X, init, seed=0):
    """Fit functions ``f(max_iter) -> (n_iter, extra)`` for every k-means implementation.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    init : ndarray of shape (C, D), X's dtype
    seed : int

    Returns
    -------
    dict of str to callable
    """
    C = init.shape[0]

    def truncmix(m):
        est = KMeans(C, init=init, max_iter=m, tol=0).fit(X)
        loop = [r.seconds for r in est.history_[: est.n_iter_]]
        return est.n_iter_, {"inertia": float(est.inertia_),
                             "in_loop_median": float(np.median(loop)) if loop else None}

    def sk(algorithm):
        def fit(m):
            est = SkKMeans(C, init=init, n_init=1, max_iter=m, tol=0, algorithm=algorithm,
                           random_state=seed).fit(X)
            return est.n_iter_, {"inertia": float(est.inertia_)}
        return fit

    out = {"truncmix": truncmix, "sklearn_lloyd": sk("lloyd"), "sklearn_elkan": sk("elkan")}
    faiss = optional_faiss()
    if faiss is not None and X.dtype == np.float32:
        def faiss_fit(m):
            km = faiss.Kmeans(X.shape[1], C, niter=m, max_points_per_centroid=10**9,
                              min_points_per_centroid=1, seed=seed, verbose=False)
            km.train(X, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
            return m, {"objective_last": float(km.obj[-1]) if len(km.obj) else None}
        out["faiss"] = faiss_fit
    return out


def run(params, ctx):
    """Run the k-means benchmark.

    Parameters
    ----------
    params : dict
        ``shapes`` [(N, D, C)], ``dtypes``, ``m`` (m1, m2), ``repeats``.
    ctx : benchmarks.suites.Context

    Returns
    -------
    dict
    """
    m1, m2 = params["m"]
    cases, targets, rows, whole_rows = [], [], [], []
    for (N, D, C) in params["shapes"]:
        for dtype, X, st in data.variants(N, D, C, params["dtypes"]):
            init = st.means_as(dtype)
            ctx.log(f"  kmeans N={N} D={D} C={C} {dtype}")
            floor = gemm_floor(X, init)
            ctx.log(f"    GEMM floor {fmt_seconds(floor['seconds'])} ({floor['gflops']:.0f} GFLOP/s)")
            fns = runners(X, init)
            warm = X[: min(N, max(5000, 2 * C))]
            warm_fns = runners(warm, init)
            with warnings.catch_warnings():  # numba compilation, first-touch of BLAS buffers
                warnings.simplefilter("ignore")
                for f in warm_fns.values():
                    f(1)
            res = per_iteration(fns, m1, m2, params["repeats"], log=ctx.log)
            # the whole run: as many iterations as scikit-learn lloyd needs
            m_conv = min(params.get("whole_run_cap", 60), fns["sklearn_lloyd"](10**4)[0])
            whole = None
            if m_conv > m1 + 1:
                ctx.log(f"    whole run: {m_conv} iterations")
                whole = per_iteration(fns, m1, m_conv, params["repeats"], log=ctx.log)
            again = gemm_floor(X, init)  # the floor again after the fits: keep the better
            if again["seconds"] < floor["seconds"]:
                floor = again
            t = res["truncmix"]["per_iter"]
            sk_best_name = min(("sklearn_lloyd", "sklearn_elkan"), key=lambda n: res[n]["per_iter"])
            sk_best = res[sk_best_name]["per_iter"]
            case = {"N": N, "D": D, "C": C, "dtype": dtype, "floor": floor, "m": [m1, m2],
                    "results": res, "sklearn_best": sk_best_name, "whole_run": whole,
                    "whole_run_iterations": m_conv,
                    "inertia_rel_diff_vs_lloyd": abs(res["truncmix"]["extra"]["inertia"]
                                                     - res["sklearn_lloyd"]["extra"]["inertia"])
                    / res["sklearn_lloyd"]["extra"]["inertia"]}
            cases.append(case)
            label = f"N={N:,} D={D} C={C} {dtype}"
            r_sk = t / sk_best
            r_floor = t / floor["seconds"]
            targets.append({"benchmark": "kmeans", "case": label,
                            "target": f"truncmix / best(sklearn lloyd, elkan) <= {TARGET_VS_SKLEARN}",
                            "measured": r_sk, "limit": TARGET_VS_SKLEARN,
                            "pass": bool(r_sk <= TARGET_VS_SKLEARN)})
            targets.append({"benchmark": "kmeans", "case": label,
                            "target": f"truncmix / GEMM floor <= {TARGET_VS_FLOOR}",
                            "measured": r_floor, "limit": TARGET_VS_FLOOR,
                            "pass": bool(r_floor <= TARGET_VS_FLOOR)})
            if whole is not None:
                w_best_name = min(("sklearn_lloyd", "sklearn_elkan"),
                                  key=lambda n: whole[n]["per_iter"])
                w_t = whole["truncmix"]["per_iter"]
                w_r = w_t / whole[w_best_name]["per_iter"]
                targets.append({"benchmark": "kmeans", "case": label + f" whole run ({m_conv} it.)",
                                "target": f"truncmix / best(sklearn lloyd, elkan) <= {TARGET_VS_SKLEARN}",
                                "measured": w_r, "limit": TARGET_VS_SKLEARN,
                                "pass": bool(w_r <= TARGET_VS_SKLEARN)})
                w_faiss = whole["faiss"]["per_iter"] if "faiss" in whole else None
                whole_rows.append([
                    label, str(m_conv), fmt_seconds(w_t),
                    fmt_seconds(whole["sklearn_lloyd"]["per_iter"]),
                    fmt_seconds(whole["sklearn_elkan"]["per_iter"]),
                    fmt_seconds(w_faiss) if w_faiss else "-",
                    f"{w_t / whole['sklearn_lloyd']['per_iter']:.2f}",
                    f"{w_t / whole['sklearn_elkan']['per_iter']:.2f}",
                    f"{w_t / w_faiss:.2f}" if w_faiss else "-",
                    f"{w_t / floor['seconds']:.2f}",
                    f"{median_ratio(whole['truncmix']['per_iter_repeats'], whole[w_best_name]['per_iter_repeats']):.2f}",
                    "" if all(r["valid"] for r in whole.values())
                    else "fallback: " + ",".join(n for n, r in whole.items() if not r["valid"]),
                ])
            faiss_t = res["faiss"]["per_iter"] if "faiss" in res else None
            rows.append([
                label, fmt_seconds(t),
                fmt_seconds(res["sklearn_lloyd"]["per_iter"]),
                fmt_seconds(res["sklearn_elkan"]["per_iter"]),
                fmt_seconds(faiss_t) if faiss_t else "-",
                fmt_seconds(floor["seconds"]),
                f"{t / res['sklearn_lloyd']['per_iter']:.2f}",
                f"{t / res['sklearn_elkan']['per_iter']:.2f}",
                f"{t / faiss_t:.2f}" if faiss_t else "-",
                f"{r_floor:.2f}",
                f"{median_ratio(res['truncmix']['per_iter_repeats'], res[sk_best_name]['per_iter_repeats']):.2f}",
                f"{case['inertia_rel_diff_vs_lloyd']:.1e}",
                "" if all(r["valid"] for r in res.values())
                else "fallback: " + ",".join(n for n, r in res.items() if not r["valid"]),
            ])
    table = {
        "title": f"k-means, time per Lloyd iteration (m = {m1} vs {m2} iterations, same initial centres)",
        "columns": ["case", "truncmix", "sk lloyd", "sk elkan", "faiss", "GEMM floor",
                    "/lloyd", "/elkan", "/faiss", "/floor", "median /best-sk per repeat",
                    "inertia rel. diff vs lloyd", "notes"],
        "rows": rows,
    }
    whole_table = {
        "title": f"k-means, time per Lloyd iteration over the whole run (m = {m1} vs "
                 "scikit-learn lloyd's iterations to convergence, capped; same initial centres)",
        "columns": ["case", "iterations", "truncmix", "sk lloyd", "sk elkan", "faiss",
                    "/lloyd", "/elkan", "/faiss", "/floor", "median /best-sk per repeat", "notes"],
        "rows": whole_rows,
    }
    return {"name": "kmeans", "params": params, "cases": cases, "targets": targets,
            "tables": [table, whole_table]}
