"""Peak resident memory of one fit, each estimator in its own subprocess.

The parent starts ``python -m benchmarks.suites.memory --worker SPEC`` once per
estimator, so peaks never mix. The worker limits its threads, generates the data
from a seed straight into float32 (no float64 copy), records its RSS, fits once
and reports its peak RSS (``VmHWM``, the high-water mark of the process, imports
and data included; not ``ru_maxrss``, which Linux carries over from the parent
across fork+exec) as one JSON line. Target (issue 3): peak RSS at most the data size +
1 GiB for every estimator.

Safety: the machine is shared, and scikit-learn's ``GaussianMixture`` needs
N x C arrays (4 GB each in float32 at N=10^6, C=10^3). The parent polls the
worker's RSS and kills it above a cap (default 12 GiB, ``--memory-cap-gib``),
and the worker's address space is limited to the cap + 4 GiB, so a run fails
with "exceeded the cap" instead of invoking the kernel's OOM killer.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

GIB = 2**30

#: estimator name -> what it is (for the table)
ESTIMATORS = {
    "truncmix_kmeans": "truncmix KMeans",
    "truncmix_gmm_diag": "truncmix TruncatedGaussianMixture(diag, exact)",
    "truncmix_gmm_diag_c5": "truncmix TruncatedGaussianMixture(diag, n_active=5)",
    "sklearn_lloyd": "sklearn KMeans(lloyd)",
    "sklearn_elkan": "sklearn KMeans(elkan)",
    "sklearn_gmm_diag": "sklearn GaussianMixture(diag)",
    "faiss": "faiss Kmeans (no subsampling)",
}


# ---------------------------------------------------------------------- worker
def _rss():
    """Current RSS of this process in bytes (from /proc, psutil when available)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss():
    """Peak RSS of this process image so far, in bytes.

    ``VmHWM`` of ``/proc/self/status`` (the high-water mark of this address
    space, reset by ``exec``). ``ru_maxrss`` is the fallback only: on Linux it is
    carried across fork+exec, so a worker started by a large parent would report
    the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(spec):
    """Fit one estimator and print ``RESULT {json}``.

    Parameters
    ----------
    spec : dict
        ``estimator``, ``N``, ``D``, ``C``, ``dtype``, ``max_iter``, ``threads``,
        ``as_limit`` (bytes, or None).
    """
    if spec.get("as_limit"):
        resource.setrlimit(resource.RLIMIT_AS, (spec["as_limit"], spec["as_limit"]))
    import warnings

    import numpy as np

    from .. import data
    from ..harness import limit_threads, optional_faiss

    name = spec["estimator"]
    if name.startswith("truncmix"):
        from truncmix import KMeans, TruncatedGaussianMixture
    elif name.startswith("sklearn"):
        from sklearn.cluster import KMeans as SkKMeans
        from sklearn.mixture import GaussianMixture
    rss_imports = _rss()
    N, D, C, m = spec["N"], spec["D"], spec["C"], spec["max_iter"]
    X, _ = data.blobs(N, D, C, np.dtype(spec["dtype"]), seed=0)
    st = data.start(X, C, seed=1)
    init = st.means_as(X.dtype)
    rss_data = _rss()
    peak_before = _maxrss()
    warnings.simplefilter("ignore")
    with limit_threads(spec["threads"]):
        t0 = time.perf_counter()
        if name == "truncmix_kmeans":
            est = KMeans(C, init=init, max_iter=m, tol=0).fit(X)
        elif name.startswith("truncmix_gmm_diag"):
            est = TruncatedGaussianMixture(
                C, n_active=5 if name.endswith("c5") else None, covariance_type="diag",
                means_init=st.means, weights_init=st.weights,
                precisions_init=st.precisions("diag"), max_iter=m, tol=0).fit(X)
        elif name in ("sklearn_lloyd", "sklearn_elkan"):
            est = SkKMeans(C, init=init, n_init=1, max_iter=m, tol=0,
                           algorithm=name.split("_")[1]).fit(X)
        elif name == "sklearn_gmm_diag":
            est = GaussianMixture(C, covariance_type="diag", means_init=st.means,
                                  weights_init=st.weights, precisions_init=st.precisions("diag"),
                                  init_params="random_from_data", random_state=0,
                                  reg_covar=1e-6, max_iter=m, tol=0).fit(X)
        elif name == "faiss":
            faiss = optional_faiss()
            est = faiss.Kmeans(D, C, niter=m, max_points_per_centroid=10**9,
                               min_points_per_centroid=1, seed=0, verbose=False)
            est.train(X, init_centroids=init.astype(np.float32))
        else:
            raise ValueError(f"unknown estimator {name!r}")
        seconds = time.perf_counter() - t0
    out = {"estimator": name, "data_bytes": int(X.nbytes), "rss_after_imports": rss_imports,
           "rss_after_data": rss_data, "peak_before_fit": peak_before, "peak": _maxrss(),
           "fit_seconds": seconds}
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------- parent
def measure(spec, cap, timeout, log=print, module="benchmarks.suites.memory"):
    """Run one worker, polling its RSS; kill it above ``cap`` bytes or after ``timeout`` s.

    ``module`` is the benchmark module whose ``--worker`` entry point runs ``spec``.

    Returns
    -------
    dict
        The worker's result, or ``{"estimator", "error", "polled_peak"}``.
    """
    import psutil

    cmd = [sys.executable, "-m", module, "--worker", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))
    ps = psutil.Process(proc.pid)
    polled, error, t0 = 0, None, time.monotonic()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss
        except psutil.Error:
            break
        polled = max(polled, rss)
        if rss > cap:
            proc.kill()
            error = f"exceeded the {cap / GIB:.0f} GiB cap (killed at {rss / GIB:.2f} GiB RSS)"
            break
        if time.monotonic() - t0 > timeout:
            proc.kill()
            error = f"timeout after {timeout} s"
            break
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["polled_peak"] = polled
            return res
    if error is None:
        tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        if proc.returncode and proc.returncode < 0:
            error = f"killed by signal {-proc.returncode}"
        else:
            error = f"exit code {proc.returncode}: {' '.join(tail)}"
        if "MemoryError" in stderr or "Unable to allocate" in stderr:
            error = "MemoryError (address space limited to cap + 4 GiB): " + " ".join(tail)[:200]
    return {"estimator": spec["estimator"], "error": error, "polled_peak": polled,
            "data_bytes": int(spec["N"] * spec["D"] * (4 if spec["dtype"] == "float32" else 8))}


def run(params, ctx):
    """Run the memory benchmark: one subprocess per estimator.

    Parameters
    ----------
    params : dict
        ``shape`` (N, D, C), ``dtype``, ``max_iter``, ``timeout``, optional
        ``cap_gib``.
    ctx : benchmarks.suites.Context

    Returns
    -------
    dict
    """
    try:
        import psutil
    except ImportError:
        ctx.log("  memory: psutil is not installed (the bench extra); skipped")
        return {"name": "memory", "params": params, "skipped": "psutil not installed",
                "cases": [], "targets": [], "tables": []}
    from ..harness import optional_faiss

    N, D, C = params["shape"]
    cap = int(params.get("cap_gib", 12) * GIB)
    avail = psutil.virtual_memory().available
    cap = min(cap, int(0.8 * avail))
    names = [n for n in ESTIMATORS if n != "faiss" or optional_faiss() is not None]
    cases, targets, rows = [], [], []
    for name in names:
        spec = {"estimator": name, "N": N, "D": D, "C": C, "dtype": params["dtype"],
                "max_iter": params["max_iter"], "threads": ctx.threads,
                "as_limit": cap + 4 * GIB}
        ctx.log(f"  memory {name} N={N} D={D} C={C} {params['dtype']} (cap {cap / GIB:.1f} GiB)")
        res = measure(spec, cap, params["timeout"], ctx.log)
        cases.append(res)
        data_b = res["data_bytes"]
        limit = data_b + GIB
        label = f"{ESTIMATORS[name]}, N={N:,} D={D} C={C} {params['dtype']}"
        if "error" in res:
            ctx.log(f"    failed: {res['error']}")
            targets.append({"benchmark": "memory", "case": label,
                            "target": "peak RSS <= data + 1 GiB", "measured": None,
                            "limit": limit, "pass": False, "note": res["error"]})
            rows.append([ESTIMATORS[name], f"{data_b / GIB:.3f}", "-", "-",
                         f">= {res['polled_peak'] / GIB:.2f} (polled)", "-", "-", "FAIL",
                         res["error"]])
            continue
        peak = res["peak"]
        ctx.log(f"    peak {peak / GIB:.2f} GiB (data {data_b / GIB:.2f} GiB), "
                f"fit {res['fit_seconds']:.1f} s")
        targets.append({"benchmark": "memory", "case": label,
                        "target": "peak RSS <= data + 1 GiB", "measured": peak,
                        "limit": limit, "pass": bool(peak <= limit)})
        rows.append([ESTIMATORS[name], f"{data_b / GIB:.3f}", f"{res['rss_after_imports'] / GIB:.3f}",
                     f"{res['rss_after_data'] / GIB:.3f}", f"{peak / GIB:.3f}",
                     f"{(peak - res['rss_after_data']) / GIB:.3f}", f"{res['fit_seconds']:.1f}",
                     "PASS" if peak <= limit else "FAIL", ""])
    table = {
        "title": f"Peak RSS of one fit (max_iter={params['max_iter']}), N={N:,} D={D} C={C} "
                 f"{params['dtype']}, one subprocess per estimator (GiB)",
        "columns": ["estimator", "data", "RSS after imports", "RSS after data", "peak RSS",
                    "peak - RSS after data", "fit s", "<= data + 1 GiB", "notes"],
        "rows": rows,
    }
    return {"name": "memory", "params": {**params, "cap_bytes": cap}, "cases": cases,
            "targets": targets, "tables": [table]}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m benchmarks.suites.memory --worker SPEC_JSON")
