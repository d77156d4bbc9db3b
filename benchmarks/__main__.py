"""Command line of the benchmark suite: ``python -m benchmarks run [--suite quick|full] [--only NAME]``.

Run from the repository root, with the OpenBLAS variables that slow numpy
unset::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks run --suite full

Writes ``benchmarks/results/<suite>-<name>.json`` per benchmark and rebuilds
``benchmarks/results/<suite>.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

from .suites import NAMES, SUITES


def parse_args(argv=None):
    """Parse the command line.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    argparse.Namespace
    """
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="truncmix benchmarks against scikit-learn and faiss")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a suite and write benchmarks/results/")
    r.add_argument("--suite", choices=sorted(SUITES), default="quick",
                   help="quick: small shapes, about a minute; full: the shapes of issue 3")
    r.add_argument("--only", action="append", default=None, metavar="NAME",
                   help=f"run only these benchmarks (repeatable or comma-separated): {', '.join(NAMES)}")
    r.add_argument("--data", default=None, metavar="DIR",
                   help="folder of the public data sets (default: ../shared/data from the repository root)")
    r.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    r.add_argument("--repeats", type=int, default=None,
                   help="override the suite's number of interleaved repeats")
    r.add_argument("--memory-cap-gib", type=float, default=12.0,
                   help="kill a memory-benchmark worker above this RSS (default 12)")
    r.add_argument("--results", default=None, metavar="DIR",
                   help="where to write the JSON and markdown (default benchmarks/results)")
    return p.parse_args(argv)


def selected(only):
    """Benchmark names chosen by ``--only`` (all when None), validated, in run order."""
    if not only:
        return list(NAMES)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    bad = [n for n in names if n not in NAMES]
    if bad:
        sys.exit(f"unknown benchmark(s) {', '.join(bad)}; choose from {', '.join(NAMES)}")
    return [n for n in NAMES if n in names]


def main(argv=None):
    """Run the selected benchmarks of a suite and write the results.

    Returns
    -------
    int
        Exit status: 0 when every benchmark ran (targets may fail), 1 otherwise.
    """
    args = parse_args(argv)
    from . import report
    from .harness import environment, limit_threads
    from .suites import Context, module

    results_dir = report.RESULTS if args.results is None else args.results
    ctx = Context(suite=args.suite, threads=args.threads, data_dir=args.data,
                  log=lambda *a: print(*a, flush=True))
    status = 0
    t_all = time.perf_counter()
    for name in selected(args.only):
        params = dict(SUITES[args.suite][name])
        if args.repeats is not None and "repeats" in params:
            params["repeats"] = args.repeats
        if name == "memory":
            params["cap_gib"] = args.memory_cap_gib
        env = environment(args.threads)
        print(f"[{args.suite}] {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            with limit_threads(args.threads):
                result = module(name).run(params, ctx)
        except Exception as exc:  # keep the other benchmarks running; report the failure
            import traceback

            traceback.print_exc()
            status = 1
            result = {"name": name, "params": params, "error": f"{type(exc).__name__}: {exc}",
                      "cases": [], "targets": [], "tables": []}
        elapsed = time.perf_counter() - t0
        path = report.write_json(args.suite, result, env, elapsed, results_dir)
        n_t = len(result["targets"])
        n_p = sum(t["pass"] for t in result["targets"])
        print(f"[{args.suite}] {name}: {elapsed:.0f} s, {n_p}/{n_t} targets pass -> {path}",
              flush=True)
    md = report.write_markdown(args.suite, results_dir)
    print(f"[{args.suite}] total {time.perf_counter() - t_all:.0f} s; report: {md}")
    return status


if __name__ == "__main__":
    sys.exit(main())
