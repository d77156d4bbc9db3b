"""A/B of the neighbourhood search against another checkout, in one process.

On a shared machine two runs minutes apart see different loads; here the two
versions alternate fit by fit in one process. The other checkout's package is
copied under the name ``truncmix_base`` (all its imports are relative).

    python -m benchmarks.ab_neighbourhood --base ../main --reps 3 scaling 1000 8000
    python -m benchmarks.ab_neighbourhood --base ../main --reps 9 gmm

``scaling``: ``KMeans(C, search="neighbourhood", coreset_size=2C, tol=0,
max_iter=16)`` on 200 000 x 64 float32 blobs, the median seconds and
evaluations of the second half of its iterations, as the sublinear suite's
``scaling`` measures them. ``gmm``: the suite's diagonal GMM fit (100 000 x 32,
C = 1 000, ``max_iter=1``, the iterations its schedule found), whole-fit
seconds and held-out score.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

from .suites.sublinear import separated_blobs


def load_base(checkout):
    """Import ``checkout``/src/truncmix as ``truncmix_base``."""
    where = tempfile.mkdtemp(prefix="truncmix-base-")
    shutil.copytree(os.path.join(checkout, "src", "truncmix"),
                    os.path.join(where, "truncmix_base"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, where)
    return importlib.import_module("truncmix_base")


def scaling_fit(pkg, C, X, max_iter=16):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = pkg.KMeans(C, search="neighbourhood", coreset_size=2 * C, random_state=0, tol=0,
                        max_iter=max_iter).fit(X)
    hist = km.history_[len(km.history_) // 2 : -1]
    return (float(np.median([r.seconds for r in hist])),
            int(np.median([r.n_evals for r in hist])), float(km.inertia_))


def gmm_fit(pkg, X, X_test):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        g = pkg.TruncatedGaussianMixture(1000, covariance_type="diag", n_active=5,
                                         search="neighbourhood", init="k-means",
                                         coreset_size=2000, random_state=0, max_iter=1).fit(X)
        seconds = time.perf_counter() - t0
    return seconds, float(g.score(X_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the other checkout (A)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("case", choices=["scaling", "gmm"])
    parser.add_argument("components", nargs="*", type=int, default=[1000, 8000])
    args = parser.parse_args(argv)
    import truncmix

    pkgs = {"A": load_base(args.base), "B": truncmix}
    out = {}
    if args.case == "scaling":
        data = {C: separated_blobs(200_000, 64, C, 0)[0] for C in args.components}
        for v in "AB":  # compile or load the kernels outside the timing
            scaling_fit(pkgs[v], 200, data[args.components[0]][:20_000], 3)
        for r in range(args.reps):
            for C in args.components:
                for v in ("AB" if r % 2 == 0 else "BA"):
                    res = scaling_fit(pkgs[v], C, data[C])
                    out.setdefault((C, v), []).append(res)
                    print(f"rep {r} C={C} {v}: {res[0] * 1e3:.1f} ms, {res[1]:,} evals, "
                          f"inertia {res[2]:.8g}", flush=True)
        for C in args.components:
            for v in "AB":
                runs = [o[0] * 1e3 for o in out[(C, v)]]
                print(f"C={C} {v}: median {np.median(runs):.1f} ms per iteration "
                      f"(runs {', '.join(f'{t:.1f}' for t in runs)}), "
                      f"{out[(C, v)][0][1]:,} evals")
        lo, hi = args.components[0], args.components[-1]
        for v in "AB":
            ratio = (np.median([o[0] for o in out[(hi, v)]])
                     / np.median([o[0] for o in out[(lo, v)]]))
            print(f"{v}: C={hi} / C={lo} = {ratio:.2f}x")
    else:
        X, _, X_test = separated_blobs(100_000, 32, 1000, 0, n_test=20_000)
        for v in "AB":
            gmm_fit(pkgs[v], X, X_test)
        for r in range(args.reps):
            for v in ("AB" if r % 2 == 0 else "BA"):
                res = gmm_fit(pkgs[v], X, X_test)
                out.setdefault(v, []).append(res)
                print(f"rep {r} {v}: {res[0]:.3f} s, held-out {res[1]:.5f}", flush=True)
        for v in "AB":
            print(f"{v}: median {np.median([o[0] for o in out[v]]):.3f} s")
        print(f"B / A = {np.median([o[0] for o in out['B']]) / np.median([o[0] for o in out['A']]):.3f}")


if __name__ == "__main__":
    main()
