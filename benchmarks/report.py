"""Results on disk: one JSON per benchmark run, and the combined markdown report of a suite.

``benchmarks/results/<suite>-<name>.json`` holds one benchmark's raw
measurements with the environment they were taken in. ``<suite>.md`` is rebuilt
from every JSON of the suite present, so running ``--only kmeans`` refreshes the
k-means section and keeps the others (each section shows its own date and
environment differences).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .suites import NAMES

RESULTS = Path(__file__).resolve().parent / "results"


def _jsonable(obj):
    """Convert numpy scalars/arrays and tuples into JSON types, recursively."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else str(obj)
    return obj


def write_json(suite, result, env, elapsed, results_dir=RESULTS):
    """Write ``<suite>-<name>.json``.

    Parameters
    ----------
    suite : str
    result : dict
        A benchmark's output (``name``, ``cases``, ``targets``, ``tables``...).
    env : dict
        :func:`benchmarks.harness.environment`.
    elapsed : float
        Wall time of the benchmark in seconds.
    results_dir : Path

    Returns
    -------
    Path
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{suite}-{result['name']}.json"
    doc = {"suite": suite, "name": result["name"], "elapsed_seconds": elapsed,
           "environment": env, "result": result}
    path.write_text(json.dumps(_jsonable(doc), indent=1) + "\n")
    return path


def _measured(t):
    m = t.get("measured")
    if m is None:
        return "failed"
    if t["benchmark"] == "memory":
        return f"{m / 2**30:.2f} GiB (limit {t['limit'] / 2**30:.2f})"
    if t["benchmark"] == "outofcore":
        return f"{m / 1e6:.0f} MB (limit {t['limit'] / 1e6:.0f})"
    if t["benchmark"] == "quality":
        return f"{m:+.4f}"
    if "log-likelihood" in t["target"]:
        return f"{m:.1e}"
    return f"{m:.3f}"


def _table(tab):
    lines = [f"#### {tab['title']}", ""]
    lines.append("| " + " | ".join(tab["columns"]) + " |")
    lines.append("|" + "---|" * len(tab["columns"]))
    for row in tab["rows"]:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    if tab.get("note"):
        lines += ["", tab["note"]]
    return lines


def _blas_line(env):
    b = env.get("numpy_blas") or {}
    return (f"{b.get('internal_api', '?')} {b.get('version', '?')} "
            f"({b.get('architecture', '?')} kernel, {b.get('threading_layer', '?')} threads)")


def _env_lines(env):
    v = env["versions"]
    pools = env.get("threadpool_info", [])
    others = sorted({f"{p.get('internal_api')} {p.get('version')} ({p.get('prefix')}, "
                     f"{p.get('architecture', '-')}, {p.get('num_threads')} threads)" for p in pools})
    ob = env["openblas_variables"]
    git = env["git"]
    return [
        f"- date: {env['date']}",
        f"- command: `{env['command']}`",
        f"- threads: {env['threads']} (threadpoolctl, numba, faiss); host: {env['host']['processor']}, "
        f"{env['host']['cpu_count']} CPUs, load average at start {env['host']['loadavg_at_start']}",
        f"- numpy's BLAS: {_blas_line(env)}",
        f"- all thread pools: {'; '.join(others)}",
        f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set: {env['openblas_variables_set']} ({ob})",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- truncmix checkout: {git.get('branch')} @ {str(git.get('commit'))[:10]}"
        + (" **with uncommitted changes under src/** (numbers are of the working tree)"
           if git.get("src_dirty") else ""),
    ]


def write_markdown(suite, results_dir=RESULTS):
    """Rebuild ``<suite>.md`` from the suite's JSON files.

    Parameters
    ----------
    suite : str
    results_dir : Path

    Returns
    -------
    Path or None
        None when the suite has no results yet.
    """
    results_dir = Path(results_dir)
    docs = []
    for name in NAMES:
        p = results_dir / f"{suite}-{name}.json"
        if p.is_file():
            docs.append(json.loads(p.read_text()))
    if not docs:
        return None
    latest = max(docs, key=lambda d: d["environment"]["date"])
    lines = [f"# truncmix benchmarks: `{suite}` suite", "",
             "Ratios are truncmix / competitor, measured interleaved in the same process "
             "(lower is better for times; the sublinear suites report speed-ups, higher is better). "
             "Times are per iteration by the difference method "
             "of benchmarks/README.md. Re-run with:", "",
             f"    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks run --suite {suite}",
             "", "## Environment (latest section)", "", *_env_lines(latest["environment"]), ""]
    # targets
    lines += ["## Targets (issues 3, 4 and 6)", "",
              "| benchmark | case | target | measured | result |", "|---|---|---|---|---|"]
    for d in docs:
        for t in d["result"].get("targets", []):
            res = "PASS" if t["pass"] else "**FAIL**"
            note = f" ({t['note']})" if t.get("note") else ""
            lines.append(f"| {t['benchmark']} | {t['case']} | {t['target']} | "
                         f"{_measured(t)}{note} | {res} |")
    n_t = sum(len(d["result"].get("targets", [])) for d in docs)
    n_p = sum(t["pass"] for d in docs for t in d["result"].get("targets", []))
    lines += ["", f"{n_p} of {n_t} targets pass.", ""]
    for d in docs:
        env = d["environment"]
        lines += [f"## {d['name']}", "",
                  f"Run {env['date']}, {d['elapsed_seconds']:.0f} s, numpy BLAS {_blas_line(env)}, "
                  f"{env['threads']} threads, load average at start {env['host']['loadavg_at_start']}"
                  + ("; src/ had uncommitted changes" if env["git"].get("src_dirty") else "")
                  + ".", ""]
        if d["result"].get("error"):
            lines += [f"**The benchmark failed**: {d['result']['error']}", ""]
        if d["result"].get("skipped"):
            lines += [f"Skipped: {d['result']['skipped']}", ""]
        for tab in d["result"].get("tables", []):
            lines += _table(tab) + [""]
    path = results_dir / f"{suite}.md"
    path.write_text("\n".join(lines))
    return path
