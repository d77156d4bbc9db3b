"""Out-of-core benchmark (issue 6): fit a float32 ``.npy`` file larger than the memory target.

The file (N x D float32 blobs, seed 0) is written once under ``/tmp`` (reused
when its shape matches) and fitted by path, ``KMeans(C, init="k-means++")``
with a few iterations, in a subprocess of its own so that its peak RSS
(``VmHWM``, imports included) is not mixed with the parent's. Reported: peak
RSS against the target, RSS after the imports, whole-fit time, and the time of
each Lloyd iteration as the fit measured it (``history_[i].seconds``: E-step
over every chunk read from the file, plus the M-step).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from .memory import GIB, _maxrss, _rss, measure

MIB = 2**20
MB = 10**6


def data_file(N, D, dtype, log=print):
    """Path of the benchmark file under the temporary directory, written if missing."""
    import numpy as np

    from .. import data

    path = os.path.join(tempfile.gettempdir(), f"truncmix-bench-{N}x{D}-{dtype}.npy")
    if os.path.exists(path):
        try:
            mm = np.load(path, mmap_mode="r")
            if mm.shape == (N, D) and mm.dtype == np.dtype(dtype):
                return path
        except ValueError:
            pass
    log(f"  writing {path} ({N * D * np.dtype(dtype).itemsize / GIB:.2f} GiB)")
    tmp = path + ".part"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(N, D))
    data.blobs_into(out, 100, seed=0)
    out.flush()
    del out
    os.replace(tmp, path)
    return path


def worker(spec):
    """Fit the file once; print ``RESULT {json}``."""
    import warnings

    from ..harness import limit_threads

    from truncmix import KMeans

    rss_imports = _rss()
    warnings.simplefilter("ignore")
    with limit_threads(spec["threads"]):
        t0 = time.perf_counter()
        est = KMeans(spec["C"], init="k-means++", random_state=0, max_iter=spec["max_iter"],
                     tol=0).fit(spec["path"])
        seconds = time.perf_counter() - t0
    iters = [r.seconds for r in est.history_[: est.n_iter_]]
    out = {"estimator": "truncmix_kmeans_npy", "rss_after_imports": rss_imports,
           "rss_after_data": rss_imports, "peak": _maxrss(), "fit_seconds": seconds,
           "iteration_seconds": iters, "n_iter": est.n_iter_, "inertia": est.inertia_,
           "labels_on_disk": type(est.labels_).__name__ == "memmap"}
    print("RESULT " + json.dumps(out), flush=True)


def run(params, ctx):
    """Write the file if needed and fit it in a subprocess.

    Parameters
    ----------
    params : dict
        ``shape`` (N, D, C), ``dtype``, ``max_iter``, ``target_mb`` (decimal MB),
        ``timeout``.
    ctx : benchmarks.suites.Context
    """
    import numpy as np

    N, D, C = params["shape"]
    path = data_file(N, D, params["dtype"], ctx.log)
    file_bytes = os.path.getsize(path)
    spec = {"estimator": "truncmix_kmeans_npy", "path": path, "C": C,
            "max_iter": params["max_iter"], "threads": ctx.threads,
            "N": N, "D": D, "dtype": params["dtype"]}
    ctx.log(f"  outofcore KMeans C={C} on {path} ({file_bytes / GIB:.2f} GiB)")
    target = params["target_mb"] * MB
    res = measure(spec, cap=4 * GIB, timeout=params["timeout"], log=ctx.log,
                  module="benchmarks.suites.outofcore")
    label = f"KMeans C={C} on a {N:,} x {D} {params['dtype']} .npy file ({file_bytes / GIB:.2f} GiB)"
    if "error" in res:
        ctx.log(f"    failed: {res['error']}")
        return {"name": "outofcore", "params": params, "cases": [res],
                "targets": [{"benchmark": "outofcore", "case": label,
                             "target": f"peak RSS < {params['target_mb']} MB",
                             "measured": None, "limit": target, "pass": False,
                             "note": res["error"]}], "tables": []}
    it = res["iteration_seconds"]
    ctx.log(f"    peak {res['peak'] / MB:.0f} MB, fit {res['fit_seconds']:.1f} s, "
            f"iterations {', '.join(f'{s:.2f}' for s in it)} s")
    ok = res["peak"] < target
    table = {
        "title": f"Out-of-core fit by path, {label}, max_iter={params['max_iter']}, "
                 f"{ctx.threads} threads, own subprocess",
        "columns": ["RSS after imports MB", "peak RSS MB (MiB)", f"< {params['target_mb']} MB",
                    "fit s (incl. moment pass, seeding, final pass)",
                    "s / iteration (median, in-loop)", "GB/s read per iteration", "labels_"],
        "rows": [[f"{res['rss_after_imports'] / MB:.0f}",
                  f"{res['peak'] / MB:.0f} ({res['peak'] / MIB:.0f})",
                  "PASS" if ok else "FAIL", f"{res['fit_seconds']:.1f}",
                  f"{np.median(it):.2f}", f"{file_bytes / np.median(it) / 1e9:.2f}",
                  "memory-mapped temp file" if res["labels_on_disk"] else "in memory"]],
    }
    return {"name": "outofcore", "params": {**params, "path": path, "file_bytes": file_bytes},
            "cases": [res],
            "targets": [{"benchmark": "outofcore", "case": label,
                         "target": f"peak RSS < {params['target_mb']} MB",
                         "measured": res["peak"], "limit": target, "pass": bool(ok)}],
            "tables": [table]}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m benchmarks.suites.outofcore --worker SPEC_JSON")
