"""Sublinear in C (issue 4): the neighbourhood search against scikit-learn and faiss.

Three measurements, all in one process, float32 data, the same thread limit:

1. **k-means, time to an objective.** scikit-learn ``KMeans(algorithm="lloyd")``
   from its own k-means++ seeds, run to convergence, gives the reference
   objective Q*. Every method's *time to reach* ``1.01 Q*`` is reported:
   scikit-learn (lloyd, and elkan where its N x C bounds fit in memory) as its
   seeding time plus the iterations it needed (from its verbose per-iteration
   inertia) times its time per iteration; faiss ``Kmeans`` with subsampling
   off from its own per-iteration statistics; truncmix
   ``KMeans(search="neighbourhood")`` as the whole fit time of the shortest
   run (``max_iter`` on a doubling schedule, then bisected) whose centres reach
   it. Objectives are recomputed the same way for everybody: the float64 sum of
   squared distances of every point to its nearest centre.
2. **Diagonal GMM, time to a held-out log-likelihood.** scikit-learn
   ``GaussianMixture(diag)`` (its default k-means start) one iteration at a
   time (``warm_start``), scored on held-out rows after each; the reference is
   its converged score. truncmix ``TruncatedGaussianMixture(diag, n_active=5,
   search="neighbourhood", init="k-means")`` on the same schedule as above;
   the complete fit found is then timed ``gmm_repeats`` (3) times in all and
   the median counts (every run must reach the target).
3. **Cost per iteration against C** at fixed N and D: median seconds and
   log-joint evaluations per iteration, neighbourhood against exhaustive.

Targets (issue 4): k-means at least 10x faster than the best scikit-learn at
C = 1 000 and 30x at C = 4 000, and faster than faiss; the GMM 30x faster at
C = 1 000; per-iteration cost from C = 1 000 to 8 000 grows at most 2x.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import warnings

import numpy as np

from .. import data
from ..harness import fmt_seconds, optional_faiss

#: objective (k-means) or log-likelihood slack that counts as reached
SLACK = 0.01


# ------------------------------------------------------------------- helpers
def objective(X, centres, block=8192):
    """Float64 k-means objective of ``centres``: sum of squared distances to the nearest."""
    C64 = np.asarray(centres, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", C64, C64)
    total = 0.0
    for s in range(0, X.shape[0], block):
        x = np.asarray(X[s : s + block], dtype=np.float64)
        d2 = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * x @ C64.T + c_sq[None, :]
        total += float(np.maximum(d2.min(axis=1), 0.0).sum())
    return total


def separated_blobs(n_samples, n_features, n_centers, seed, n_test=0):
    """scikit-learn ``make_blobs`` (centres in a box of side 20, unit noise), float32."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples + n_test, n_features, centers=n_centers, random_state=seed)
    X = X.astype(np.float32)
    return X[:n_samples], y[:n_samples], X[n_samples:]


def quiet_fit(make, X, measure):
    """Fit ``make()`` on X with warnings silenced; ``(seconds, measure(est), n_iter, converged)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        est = make().fit(X)
        seconds = time.perf_counter() - t0
    return seconds, measure(est), est.n_iter_, est.converged_


def first_reaching(values, limit, higher_is_better=False):
    """Index of the first value within ``limit``, or None."""
    for i, v in enumerate(values):
        if (v >= limit) if higher_is_better else (v <= limit):
            return i
    return None


def schedule_search(fit_until, reached, max_iter):
    """Shortest ``max_iter`` whose fit reaches the target, and that fit's seconds.

    ``fit_until(m)`` returns ``(seconds, value, n_iter, converged)``. Doubling,
    then bisection between the last miss and the first hit.
    """
    tried = {}

    def attempt(m):
        if m not in tried:
            tried[m] = fit_until(m)
        return tried[m]

    m, hit = 1, None
    while m <= max_iter:
        seconds, value, n_iter, converged = attempt(m)
        if reached(value):
            hit = m
            break
        if converged:
            break
        m *= 2
    if hit is None:
        return None, tried
    lo = hit // 2
    while hit - lo > 1:
        mid = (lo + hit) // 2
        if reached(attempt(mid)[1]):
            hit = mid
        else:
            lo = mid
    return hit, tried


def sklearn_kmeans_timeline(X, C, seed, algorithm, seeding=None):
    """Seeding time, iteration inertias and time per iteration of scikit-learn KMeans.

    scikit-learn gets its fastest configuration: k-means++ on a float64 copy
    (its float32 seeding upcasts block by block and was 20x slower here), then
    Lloyd/Elkan in the data's float32. ``seeding`` reuses ``(seeds, seconds)``.
    """
    from sklearn.cluster import KMeans as SKKMeans
    from sklearn.cluster import kmeans_plusplus

    if seeding is None:
        X64 = np.asarray(X, dtype=np.float64)
        t0 = time.perf_counter()
        seeds, _ = kmeans_plusplus(X64, C, random_state=seed)
        t_seed = time.perf_counter() - t0
        del X64
    else:
        seeds, t_seed = seeding
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        km = SKKMeans(C, init=seeds, n_init=1, algorithm=algorithm, max_iter=300, tol=1e-4,
                      verbose=1, random_state=seed).fit(X)
        t_fit = time.perf_counter() - t0
    inertias = [float(v.rstrip(".")) for v in re.findall(r"Iteration \d+, inertia ([0-9.e+-]+)", buf.getvalue())]
    return {"seed_seconds": t_seed, "fit_seconds": t_fit, "n_iter": int(km.n_iter_),
            "per_iter": t_fit / max(km.n_iter_, 1), "inertias": inertias,
            "centres": km.cluster_centers_, "seeding": (seeds, t_seed)}


def faiss_timeline(X, C, seed, niter):
    faiss = optional_faiss()
    if faiss is None:
        return None
    km = faiss.Kmeans(X.shape[1], C, niter=niter, seed=seed, max_points_per_centroid=10**9,
                      verbose=False)
    t0 = time.perf_counter()
    km.train(np.ascontiguousarray(X, dtype=np.float32))
    total = time.perf_counter() - t0
    stats = km.iteration_stats
    times = [s["time"] for s in stats] if isinstance(stats[0], dict) else [s.time for s in stats]
    objs = [s["obj"] for s in stats] if isinstance(stats[0], dict) else [s.obj for s in stats]
    # faiss's clock starts after its set-up: add the set-up to every entry
    setup = total - times[-1]
    return {"seconds": total, "times": [setup + t for t in times], "objs": objs,
            "centres": km.centroids.copy()}


# --------------------------------------------------------------- benchmark 1
def kmeans_case(name, X, C, seed, params, ctx):
    from truncmix import KMeans

    ctx.log(f"  sublinear k-means {name}: N={X.shape[0]} D={X.shape[1]} C={C}")
    out = {"case": name, "N": X.shape[0], "D": X.shape[1], "C": C}
    sk = sklearn_kmeans_timeline(X, C, seed, "lloyd")
    q_star = objective(X, sk["centres"])
    limit = (1 + SLACK) * q_star
    out["q_star"] = q_star
    times = {}
    k = first_reaching(sk["inertias"], limit)
    sk_t = sk["seed_seconds"] + (k + 1 if k is not None else sk["n_iter"]) * sk["per_iter"]
    times["sklearn lloyd"] = sk_t
    out["sklearn_lloyd"] = {kk: v for kk, v in sk.items() if kk not in ("centres", "seeding")}
    ctx.log(f"    sklearn lloyd: seeding {sk['seed_seconds']:.2f} s + {sk['n_iter']} it "
            f"x {sk['per_iter']:.3f} s; Q* = {q_star:.6g}; to 1%: {sk_t:.2f} s")
    elkan_bytes = 8 * X.shape[0] * C
    if elkan_bytes <= params["elkan_max_bytes"]:
        el = sklearn_kmeans_timeline(X, C, seed, "elkan", seeding=sk["seeding"])
        k = first_reaching(el["inertias"], limit)
        times["sklearn elkan"] = (el["seed_seconds"]
                                  + (k + 1 if k is not None else el["n_iter"]) * el["per_iter"])
        out["sklearn_elkan"] = {kk: v for kk, v in el.items() if kk not in ("centres", "seeding")}
        ctx.log(f"    sklearn elkan: to 1%: {times['sklearn elkan']:.2f} s")
    else:
        out["sklearn_elkan"] = f"skipped: its bounds need {elkan_bytes / 2**30:.1f} GiB"
    fa = faiss_timeline(X, C, seed, params["faiss_niter"])
    if fa is not None:
        q_faiss = objective(X, fa["centres"])
        # faiss reports its objective per iteration in float32 sums: rescale by
        # the recomputed final objective so that both scales agree
        objs = np.array(fa["objs"]) * (q_faiss / fa["objs"][-1])
        k = first_reaching(objs, limit)
        out["faiss"] = {"seconds": fa["seconds"], "objective": q_faiss,
                        "reached": k is not None}
        times["faiss"] = fa["times"][k] if k is not None else None
        ctx.log(f"    faiss: {fa['seconds']:.2f} s, Q/Q* = {q_faiss / q_star:.4f}, "
                f"reached: {k is not None}")

    def fit_until(m):
        return quiet_fit(lambda: KMeans(C, search="neighbourhood", random_state=seed, max_iter=m,
                                        coreset_size=min(X.shape[0], params["coreset_factor"] * C)),
                         X, lambda km: objective(X, km.cluster_centers_))

    fit_until(2)  # compile
    m, tried = schedule_search(fit_until, lambda q: q <= limit, params["max_iter"])
    ours = tried[m][0] if m is not None else None
    last = tried[max(tried)]
    out["truncmix"] = {"max_iter": m, "seconds": ours, "tried": {str(k): list(v) for k, v in tried.items()},
                       "objective_at_end": last[1]}
    ctx.log(f"    truncmix: to 1% in {ours if ours is None else round(ours, 2)} s "
            f"(max_iter={m}); longest run Q/Q* = {last[1] / q_star:.4f}")
    best_sk = min(v for k2, v in times.items() if k2.startswith("sklearn"))
    out["times_to_1pct"] = times | {"truncmix": ours}
    out["speedup_vs_best_sklearn"] = None if ours is None else best_sk / ours
    out["speedup_vs_faiss"] = (None if ours is None or times.get("faiss") is None
                               else times["faiss"] / ours)
    return out


# --------------------------------------------------------------- benchmark 2
def gmm_case(X, X_test, C, seed, params, ctx):
    from sklearn.mixture import GaussianMixture

    from truncmix import TruncatedGaussianMixture

    ctx.log(f"  sublinear GMM diag: N={X.shape[0]} D={X.shape[1]} C={C}")
    gm = GaussianMixture(C, covariance_type="diag", warm_start=True, max_iter=1,
                         random_state=seed, tol=1e-3)
    elapsed, scores = 0.0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(params["gmm_max_iter"]):
            t0 = time.perf_counter()
            gm.fit(X)
            elapsed += time.perf_counter() - t0
            scores.append((elapsed, float(gm.score(X_test))))
            if len(scores) > 1 and abs(scores[-1][1] - scores[-2][1]) < 1e-3:
                break
    ref = scores[-1][1]
    limit = ref - SLACK * abs(ref)
    k = first_reaching([s for _, s in scores], limit, higher_is_better=True)
    sk_t = scores[k][0]
    ctx.log(f"    sklearn: {len(scores)} iterations, {elapsed:.1f} s, held-out {ref:.5g}; "
            f"to 1%: {sk_t:.2f} s")

    def fit_until(m):
        return quiet_fit(lambda: TruncatedGaussianMixture(
            C, covariance_type="diag", n_active=5, search="neighbourhood", init="k-means",
            coreset_size=min(X.shape[0], params["coreset_factor"] * C), random_state=seed,
            max_iter=m), X, lambda g: float(g.score(X_test)))

    fit_until(2)
    m, tried = schedule_search(fit_until, lambda s: s >= limit, params["gmm_max_iter"])
    # A fit of well under a second is exposed to the scheduling noise of a
    # shared machine: the complete fit that reaches the target is timed
    # ``gmm_repeats`` times in all (each run whole, seeding included; each one
    # must reach the target) and the median counts. scikit-learn's single run
    # lasts seconds, over which such noise averages out.
    repeats = []
    if m is not None:
        repeats = [tried[m]] + [fit_until(m) for _ in range(params.get("gmm_repeats", 3) - 1)]
        if not all(r[1] >= limit for r in repeats):
            m = None
    ours = float(np.median([r[0] for r in repeats])) if m is not None else None
    best = max(v[1] for v in list(tried.values()) + repeats)
    ctx.log(f"    truncmix: to 1% in {ours if ours is None else round(ours, 2)} s "
            f"(max_iter={m}, median of {[round(r[0], 3) for r in repeats]}); "
            f"best held-out {best:.5g}")
    return {"N": X.shape[0], "D": X.shape[1], "C": C, "sklearn_scores": scores,
            "reference": ref, "sklearn_seconds": sk_t, "truncmix_seconds": ours,
            "truncmix_max_iter": m, "truncmix_best_score": best,
            "truncmix_repeats": [list(r) for r in repeats],
            "tried": {str(k2): list(v) for k2, v in tried.items()},
            "speedup": None if ours is None else sk_t / ours}


# --------------------------------------------------------------- benchmark 3
def scaling(params, ctx):
    from truncmix import KMeans

    N, D = params["scaling_shape"]
    rows = []
    for C in params["scaling_components"]:
        X, _, _ = separated_blobs(N, D, C, 0)
        res = {"C": C}
        for search in ("neighbourhood", "exhaustive"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                km = KMeans(C, search=search, coreset_size=2 * C, random_state=0, tol=0,
                            max_iter=params["scaling_iter"] if search == "neighbourhood" else 3
                            ).fit(X)
            # the steady cost of one iteration: the second half of the run (the
            # first iterations also rescue points of clusters the seeding
            # missed and make swaps; their counts are kept in all_evals)
            hist = (km.history_[len(km.history_) // 2 : -1] if search == "neighbourhood"
                    else km.history_[1:-1])
            res[search] = {"seconds": float(np.median([r.seconds for r in hist])),
                           "evals": int(np.median([r.n_evals for r in hist])),
                           "all_evals": [r.n_evals for r in km.history_],
                           "all_seconds": [r.seconds for r in km.history_]}
        ctx.log(f"  sublinear scaling C={C}: neighbourhood {res['neighbourhood']['seconds']:.3f} s "
                f"{res['neighbourhood']['evals']:,} evals; exhaustive "
                f"{res['exhaustive']['seconds']:.3f} s {res['exhaustive']['evals']:,} evals")
        rows.append(res)
    return rows


# ----------------------------------------------------------------------- run
def run(params, ctx):
    """Run the sublinear benchmark (see the module docstring)."""
    cases, targets, rows = [], [], []
    seed = params["seed"]
    for (N, D, C) in params["blobs"]:
        X, _, _ = separated_blobs(N, D, C, seed)
        cases.append(kmeans_case(f"blobs {N:,}x{D} C={C}", X, C, seed, params, ctx))
    manifest = data.load_manifest(ctx.data_dir or data.default_data_dir())
    if manifest is not None and params.get("birch1", True):
        entry = next((e for e in manifest["datasets"] if e["name"] == "birch1"), None)
        if entry is not None:
            Xb, yb = data.load_dataset(ctx.data_dir or data.default_data_dir(), entry)
            C = len(set(yb[yb >= 0].tolist()))
            cases.append(kmeans_case("birch1", Xb.astype(np.float32), C, seed, params, ctx))
    goals = params["goals"]
    for case in cases:
        C = case["C"]
        t = case["times_to_1pct"]
        rows.append([
            case["case"], f"{case['q_star']:.6g}",
            fmt_seconds(t["truncmix"]) if t["truncmix"] else "not reached",
            fmt_seconds(t["sklearn lloyd"]),
            fmt_seconds(t["sklearn elkan"]) if "sklearn elkan" in t else "-",
            fmt_seconds(t["faiss"]) if t.get("faiss") else ("not reached" if "faiss" in t else "-"),
            f"{case['speedup_vs_best_sklearn']:.1f}x" if case["speedup_vs_best_sklearn"] else "-",
            f"{case['truncmix']['objective_at_end'] / case['q_star']:.4f}",
            f"{case['faiss']['objective'] / case['q_star']:.4f}" if "faiss" in case else "-",
        ])
        if str(C) in goals:
            sp = case["speedup_vs_best_sklearn"] or 0.0
            targets.append({"benchmark": "sublinear", "case": case["case"],
                            "target": f"time to 1% of sklearn's Q: >= {goals[str(C)]}x faster "
                                      "than best sklearn",
                            "measured": sp, "limit": goals[str(C)],
                            "pass": bool(sp >= goals[str(C)])})
            if "faiss" in case:
                ok = t["truncmix"] is not None and (t.get("faiss") is None
                                                    or t["truncmix"] < t["faiss"])
                targets.append({"benchmark": "sublinear", "case": case["case"],
                                "target": "faster than faiss (no subsampling) to 1% of sklearn's Q",
                                "measured": case["speedup_vs_faiss"] or 0.0, "limit": 1.0,
                                "pass": bool(ok)})
    tables = [{
        "title": "k-means: time to reach 1.01 x scikit-learn lloyd's converged objective Q* "
                 "(float32, same seed)",
        "columns": ["case", "Q*", "truncmix", "sk lloyd", "sk elkan", "faiss",
                    "speed-up vs best sklearn", "truncmix Q/Q* (longest run)", "faiss Q/Q*"],
        "rows": rows,
    }]
    return {"name": "sublinear", "params": params, "cases": cases,
            "targets": targets, "tables": tables}


def run_em(params, ctx):
    """The diagonal-GMM comparison and the cost per iteration against C."""
    cases, targets, tables = [], [], []
    seed = params["seed"]
    if params.get("gmm"):
        N, D, C = params["gmm"]
        X, _, X_test = separated_blobs(N, D, C, seed, n_test=N // 5)
        g = gmm_case(X, X_test, C, seed, params, ctx)
        cases.append({"gmm": g})
        sp = g["speedup"] or 0.0
        targets.append({"benchmark": "sublinear", "case": f"GMM diag N={N:,} D={D} C={C}",
                        "target": "held-out log-likelihood within 1% of sklearn's: >= 30x faster",
                        "measured": sp, "limit": 30.0, "pass": bool(sp >= 30.0)})
        tables.append({
            "title": "Diagonal GMM: time to a held-out log-likelihood within 1% of scikit-learn's "
                     "converged GaussianMixture(diag)",
            "columns": ["case", "sklearn reference", "sklearn time", "truncmix C'=5 time",
                        "truncmix best held-out", "speed-up"],
            "rows": [[f"N={N:,} D={D} C={C}", f"{g['reference']:.6g}",
                      fmt_seconds(g["sklearn_seconds"]),
                      fmt_seconds(g["truncmix_seconds"]) if g["truncmix_seconds"] else "not reached",
                      f"{g['truncmix_best_score']:.6g}", f"{sp:.1f}x"]],
        })
    if params.get("scaling_components"):
        sc = scaling(params, ctx)
        cases.append({"scaling": sc})
        base = sc[0]
        srows = []
        for r in sc:
            srows.append([
                r["C"], f"{r['neighbourhood']['evals']:,}", fmt_seconds(r["neighbourhood"]["seconds"]),
                f"{r['neighbourhood']['seconds'] / base['neighbourhood']['seconds']:.2f}",
                f"{r['exhaustive']['evals']:,}", fmt_seconds(r["exhaustive"]["seconds"]),
                f"{r['exhaustive']['seconds'] / base['exhaustive']['seconds']:.2f}",
            ])
        growth = sc[-1]["neighbourhood"]["seconds"] / base["neighbourhood"]["seconds"]
        targets.append({"benchmark": "sublinear",
                        "case": f"C {base['C']} -> {sc[-1]['C']}",
                        "target": "neighbourhood time per iteration grows at most 2x",
                        "measured": growth, "limit": 2.0, "pass": bool(growth <= 2.0)})
        N, D = params["scaling_shape"]
        tables.append({
            "title": f"Cost per iteration against C (N={N:,}, D={D}, float32, k-means; median "
                     f"over the second half of {params['scaling_iter']} iterations for the "
                     "neighbourhood search, iterations 2-3 exhaustive)",
            "columns": ["C", "neighbourhood evals", "neighbourhood time", "x first",
                        "exhaustive evals", "exhaustive time", "x first"],
            "rows": srows,
        })
    return {"name": "sublinear_em", "params": params, "cases": cases, "targets": targets,
            "tables": tables}
