"""Dask benchmark (issue 6): time per iteration on 1 and 2 local workers against in memory.

The same float32 blobs are fitted in memory (NumPy array, ``--threads``
threads) and as a Dask array persisted on a ``LocalCluster`` of 1 worker
process (``--threads`` threads) or 2 worker processes (``--threads / 2``
threads each), ``blocks_per_worker`` row blocks per worker. Same start
(the shared initial means, and for the GMM weights and precisions), ``tol=0``.
Per-iteration times by the difference method of the harness, the three runners
interleaved; the ratio dask / in-memory is the overhead (target: at most
``target`` with 2 workers).

Workers start without ``distributed``'s default ``MALLOC_TRIM_THRESHOLD_=65536``
(``params["malloc_trim"] == "glibc default"``): setting it turns off glibc's
adaptive mmap threshold, so every chunk-sized temporary of the E-step is a
fresh mmap and page-faults, which made an iteration about 1.5x slower (see
docs/scaling.md). ``"distributed default"`` keeps it.
"""

from __future__ import annotations

import logging
import warnings


def _estimator(model, C, st, dtype, max_iter):
    from truncmix import KMeans, TruncatedGaussianMixture

    if model == "kmeans":
        return KMeans(C, init=st.means_as(dtype), max_iter=max_iter, tol=0)
    return TruncatedGaussianMixture(
        C, covariance_type="diag", means_init=st.means, weights_init=st.weights,
        precisions_init=st.precisions("diag"), max_iter=max_iter, tol=0)


def run(params, ctx):
    """Run the Dask benchmark.

    Parameters
    ----------
    params : dict
        ``shape`` (N, D, C), ``dtype``, ``blocks_per_worker``, ``models``
        (``"kmeans"``, ``"gmm_diag"``), ``m`` (m1, m2), ``repeats``, ``target``.
    ctx : benchmarks.suites.Context
    """
    import dask
    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster, futures_of, wait

    from .. import data
    from ..harness import fmt_seconds, median_ratio, per_iteration

    N, D, C = params["shape"]
    dtype = np.dtype(params["dtype"])
    X, _ = data.blobs(N, D, C, dtype, seed=0)
    st = data.start(X, C, seed=1)
    m1, m2 = params["m"]
    clients, arrays = {}, {}
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if params.get("malloc_trim", "glibc default") == "glibc default":
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        for n_workers in (1, 2):
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                cluster = LocalCluster(n_workers=n_workers, processes=True,
                                       threads_per_worker=max(1, ctx.threads // n_workers),
                                       dashboard_address=":0", silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
            rows = -(-N // (n_workers * params["blocks_per_worker"]))
            with client.as_current(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "large graph": the data, sent once
                Xd = da.from_array(X, chunks=(rows, D)).persist()
                wait(futures_of(Xd))
            clients[n_workers], arrays[n_workers] = client, Xd

        def fit_memory(model):
            def fit(max_iter):
                est = _estimator(model, C, st, dtype, max_iter).fit(X)
                return est.n_iter_, {"in_loop_median": float(np.median(
                    [r.seconds for r in est.history_[: est.n_iter_]]))}
            return fit

        def fit_dask(model, n_workers):
            def fit(max_iter):
                with clients[n_workers].as_current():
                    est = _estimator(model, C, st, dtype, max_iter).fit(arrays[n_workers])
                return est.n_iter_, {"in_loop_median": float(np.median(
                    [r.seconds for r in est.history_[: est.n_iter_]]))}
            return fit

        cases, targets, rows_out = [], [], []
        for model in params["models"]:
            runners = {"in-memory": fit_memory(model), "dask 1 worker": fit_dask(model, 1),
                       "dask 2 workers": fit_dask(model, 2)}
            for fit in runners.values():  # warm-up: numba caches, worker imports
                fit(1)
            ctx.log(f"  dask {model} N={N:,} D={D} C={C} {dtype.name}")
            res = per_iteration(runners, m1, m2, params["repeats"], ctx.log)
            base = res["in-memory"]
            for name, r in res.items():
                ratio = r["per_iter"] / base["per_iter"]
                med = median_ratio(r["per_iter_repeats"], base["per_iter_repeats"])
                rows_out.append([model, name, fmt_seconds(r["per_iter"]),
                                 fmt_seconds(r["extra"]["in_loop_median"]), f"{ratio:.2f}",
                                 f"{med:.2f}", "" if r["valid"] else "fallback"])
                ctx.log(f"    {name}: {fmt_seconds(r['per_iter'])} per iteration, x{ratio:.2f}")
            ratio2 = res["dask 2 workers"]["per_iter"] / base["per_iter"]
            cases.append({"model": model, "timings": res})
            targets.append({"benchmark": "dask",
                            "case": f"{model}, N={N:,} D={D} C={C} {dtype.name}, 2 workers",
                            "target": f"time per iteration <= {params['target']} x in memory",
                            "measured": ratio2, "limit": params["target"],
                            "pass": bool(ratio2 <= params["target"])})
    finally:
        for client in clients.values():
            cluster = client.cluster
            client.close()
            cluster.close()
    table = {
        "title": f"Time per iteration, in memory ({ctx.threads} threads) vs Dask LocalCluster "
                 f"(worker processes; {params['blocks_per_worker']} blocks per worker; worker "
                 f"malloc trim: {params.get('malloc_trim', 'glibc default')}), "
                 f"N={N:,} D={D} C={C} {dtype.name}, max_iter {m1} and {m2}, tol=0",
        "columns": ["model", "runner", "s / iteration (difference)", "in-loop median",
                    "ratio to in-memory (best)", "median of per-repeat ratios", "notes"],
        "rows": rows_out,
    }
    return {"name": "dask", "params": params, "cases": cases, "targets": targets,
            "tables": [table]}
