"""Truncated EM per iteration: ``TruncatedGaussianMixture(n_active=5, "diag")`` against exact ``GaussianMixture(diag)``.

Same starting parameters as the exact-EM benchmark; the two algorithms differ
(C' = 5 of C components per point), so the log-likelihoods are reported for
information, not compared. Target (issue 3): at most 0.15x scikit-learn's
``GaussianMixture(diag)`` per iteration at C = 1 000, judged as the exact-EM
suite judges its own: by iterations timed inside the loop (see
:func:`benchmarks.suites.gmm.in_loop`), with the difference of whole fits
beside it (on the AMD EPYC machine of 2026-11-25 the two disagreed, 0.145
against a per-repeat median of 0.381).
"""

from __future__ import annotations


from .. import data
from ..harness import fmt_seconds, gemm_floor, median_ratio
from .gmm import in_loop, time_case

TARGET = 0.15


def run(params, ctx):
    """Run the truncated-EM benchmark.

    Parameters
    ----------
    params : dict
        ``shapes``, ``n_active``, ``dtypes``, ``m``, ``repeats``.
    ctx : benchmarks.suites.Context

    Returns
    -------
    dict
    """
    m1, m2 = params["m"]
    n_active = params["n_active"]
    cases, targets, rows = [], [], []
    for (N, D, C) in params["shapes"]:
        for dtype, X, st in data.variants(N, D, C, params["dtypes"]):
            floor = gemm_floor(X, st.means_as(dtype))
            ctx.log(f"  truncated N={N} D={D} C={C} {dtype} diag n_active={n_active}")
            label = f"N={N:,} D={D} C={C} {dtype} diag C'={n_active}"
            try:
                res, ll = time_case(X, st, "diag", (m1, m2), params["repeats"], ctx.log,
                                    n_active=n_active)
            except Exception as exc:  # a library failing on a case is a result too
                msg = f"{type(exc).__name__}: {str(exc)[:160]}"
                ctx.log(f"    failed: {msg}")
                cases.append({"N": N, "D": D, "C": C, "dtype": dtype, "n_active": n_active,
                              "floor": floor, "failed": msg})
                rows.append([label] + ["-"] * 10 + [f"failed: {msg}"])
                continue
            t, s = in_loop(res, "truncmix"), in_loop(res, "sklearn")
            ratio = t / s
            diff_ratio = res["truncmix"]["per_iter"] / res["sklearn"]["per_iter"]
            cases.append({"N": N, "D": D, "C": C, "dtype": dtype, "n_active": n_active,
                          "floor": floor, "m": [m1, m2], "results": res,
                          "log_likelihood": ll,
                          "in_loop": {"truncmix": t, "sklearn": s, "ratio": ratio},
                          "free_energy_truncmix": res["truncmix"]["extra"]["lower_bound"]})
            full_size = C >= 1000
            targets.append({"benchmark": "truncated", "case": label,
                            "target": f"truncmix C'={n_active} / sklearn GaussianMixture(diag) <= {TARGET}"
                                      + ("" if full_size else " (issue's C=1000; indicative here)"),
                            "measured": ratio, "limit": TARGET, "pass": bool(ratio <= TARGET)})
            rows.append([
                label, fmt_seconds(t), fmt_seconds(s), f"{ratio:.3f}", f"{diff_ratio:.3f}",
                f"{median_ratio(res['truncmix']['per_iter_repeats'], res['sklearn']['per_iter_repeats']):.3f}",
                fmt_seconds(floor["seconds"]), f"{t / floor['seconds']:.1f}",
                f"{res['truncmix']['extra']['lower_bound']:.8g}",
                f"{ll['truncmix']:.8g}", f"{ll['sklearn']:.8g}",
                "" if all(r["valid"] for r in res.values())
                else "fallback: " + ",".join(n for n, r in res.items() if not r["valid"]),
            ])
    table = {
        "title": f"Truncated EM (C'={n_active}, diag) vs exact GaussianMixture(diag), time per "
                 f"iteration inside the loop (least over fits of each fit's median); the fit "
                 f"difference: fits of {m1} and {m2} iterations",
        "columns": ["case", "truncmix", "sklearn GMM", "ratio", "fit difference ratio",
                    "median ratio per repeat",
                    "GEMM floor", "truncmix/floor", "free energy truncmix",
                    "score truncmix", "score sklearn", "notes"],
        "rows": rows,
    }
    return {"name": "truncated", "params": params, "cases": cases, "targets": targets,
            "tables": [table]}
