"""The ``truncmix`` command: fit, predict, score, sample, info, select, plot, demo.

Errors are one line on stderr naming the file and the problem; the exit code
is 2 for usage and input errors, 1 when a fit fails, 130 on Ctrl-C (``fit``
first saves the model of the last completed M-step). ``--debug`` shows the
traceback instead. A progress bar (tqdm if installed, else plain
lines) goes to stderr when it is a terminal, unless ``--quiet``; ``--json``
prints a machine-readable result on stdout.

Heavy modules (numba, matplotlib, pyarrow, the estimators) are imported inside
the commands, so ``truncmix --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPT = 0, 1, 2, 130

__all__ = ["CLIError", "build_parser", "main"]


class CLIError(Exception):
    """An error the command reports in one line, with its exit code."""

    def __init__(self, message, code=EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and an exception we can catch)."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


# ------------------------------------------------------------------- helpers
def _integer_at_least(low, name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {name} integer; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a {name} integer; got {value}")
        return value

    return parse


_positive_int = _integer_at_least(1, "positive")
_non_negative_int = _integer_at_least(0, "non-negative")


def _active(text):
    if text.lower() in ("all", "none", "c"):
        return "all"
    return _positive_int(text)


def _say(args, *lines):
    """Human-readable output on stdout (suppressed by --json)."""
    if not args.json:
        for line in lines:
            print(line)


def _emit_json(args, payload):
    if args.json:
        print(json.dumps(payload, indent=1, default=_json_default))


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def _read(args, path=None):
    """The data file; with ``--missing drop``, rows with missing values are dropped (and said so)."""
    from .io import read_data

    path = args.data if path is None else path
    header = getattr(args, "header", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X, names = read_data(path, columns=getattr(args, "columns", None), header=header,
                             missing=getattr(args, "missing", "raise"))
    _show_warnings(args, caught)
    args.n_dropped = sum(getattr(w.message, "n_dropped", 0) for w in caught)
    return X, names


def _show_warnings(args, caught):
    """Each distinct warning as one line on stderr (unless --quiet)."""
    if getattr(args, "quiet", False):
        return
    seen = set()
    for w in caught:
        msg = str(w.message).splitlines()[0]
        if msg not in seen:
            seen.add(msg)
            print(f"truncmix: warning: {msg}", file=sys.stderr)


def _load(path):
    from .io import load

    return load(path)


def _check_features(model, X, data_path, model_path):
    if X.shape[1] != model.n_features_in_:
        raise CLIError(
            f"{data_path}: has {X.shape[1]} feature(s) but {model_path} was fitted on "
            f"{model.n_features_in_} (pick columns with --columns)"
        )


def _write_table(args, array, columns, output):
    """Write to ``output`` (format from the extension), or CSV on stdout."""
    from .io import write_array, write_text_table

    if output and output != "-":
        write_array(output, array, columns=columns)
        return output
    write_text_table(sys.stdout, array, columns)
    return None


def _n_components(model):
    return int(getattr(model, "n_clusters", None) or model.n_components)


def _n_active(model):
    C = _n_components(model)
    return 1 if hasattr(model, "n_clusters") else min(model.n_active or C, C)


def free_energy(model, X, block=65536):
    """Mean truncated free energy per sample of ``X`` under ``model``.

    Each point keeps its C' most probable components (C' = ``n_active``, 1 for
    k-means): ``F = mean_n log sum_{c in K_n} p(c, x_n)``. With C' = C it is the
    mean log-likelihood.

    Parameters
    ----------
    model : fitted KMeans or TruncatedGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    block : int, default=65536
        Rows per block (bounds the memory of the n x C posterior).

    Returns
    -------
    float
    """
    import numpy as np

    k = _n_active(model)
    total = 0.0
    for start in range(0, X.shape[0], block):
        x = X[start : start + block]
        log_px = model.score_samples(x)
        proba = model.predict_proba(x)
        if k < proba.shape[1]:
            top = -np.partition(-proba, k - 1, axis=1)[:, :k]
        else:
            top = proba
        total += float(np.sum(log_px + np.log(top.sum(axis=1))))
    return total / X.shape[0]


class Progress:
    """Per-iteration progress on stderr: a tqdm bar, or plain lines without tqdm.

    Parameters
    ----------
    n_samples : int
        To report the free energy per sample.
    max_iter : int
        Length of the bar.
    n_init : int
    enabled : bool
    label : str
    """

    def __init__(self, n_samples, max_iter, n_init=1, enabled=True, label="fit"):
        self.n = max(n_samples, 1)
        self.max_iter = max_iter
        self.n_init = n_init
        self.enabled = enabled
        self.label = label
        self.bar = None
        self.run = 0
        self.last = None
        self._tqdm = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._tqdm = tqdm
            except ImportError:
                self._tqdm = None

    def __call__(self, record):
        """Show one :class:`~truncmix.history.IterationRecord`; never stops the fit."""
        if not self.enabled:
            return False
        if self.last is None or record.iteration <= self.last:
            self._new_run()
        self.last = record.iteration
        fe = record.free_energy / self.n
        delta = "" if record.delta != record.delta else f", change {record.delta:+.3g}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"F/N={fe:.6g}{delta.replace(', change ', ' dF=')}", refresh=True)
        else:
            print(f"{self._desc()} iteration {record.iteration}: free energy per sample "
                  f"{fe:.6g}{delta}", file=sys.stderr, flush=True)
        return False

    def _desc(self):
        return self.label + (f" (init {self.run}/{self.n_init})" if self.n_init > 1 else "")

    def _new_run(self):
        self.run += 1
        if self._tqdm is not None:
            if self.bar is not None:
                self.bar.close()
            try:
                width = os.get_terminal_size(sys.stderr.fileno()).columns
            except (OSError, ValueError):
                width = 0
            # a terminal that reports no size (0 x 0) would get no bar at all (tqdm
            # hides bars below the last row): assume 80 x 24
            size = {"dynamic_ncols": True} if width > 0 else {"ncols": 80, "nrows": 24}
            self.bar = self._tqdm(total=self.max_iter, desc=self._desc(), unit="it",
                                  file=sys.stderr, leave=False, **size)

    def close(self):
        """Remove the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_enabled(args):
    return not args.quiet and sys.stderr.isatty()


def _fit_model(args, model, X, label="fit"):
    """Fit with progress; warnings become one line each; errors become CLIError(code 1).

    Returns ``(seconds, interrupted)``: a Ctrl-C during the fit leaves the model
    with the parameters of the last completed M-step and ``interrupted`` True.
    """
    import numpy as np

    from .exceptions import FitInterruptedWarning

    progress = Progress(X.shape[0], model.max_iter, model.n_init, _progress_enabled(args), label)
    model._progress = progress
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError, MemoryError) as exc:
        if args.debug:
            raise
        raise CLIError(f"{args.data}: the fit failed: {exc}", EXIT_FAILURE) from None
    finally:
        progress.close()
        del model._progress
    seconds = time.perf_counter() - t0
    _show_warnings(args, caught)
    return seconds, any(issubclass(w.category, FitInterruptedWarning) for w in caught)


def _estimator(args, n):
    """The estimator the fit / select options describe, with ``n`` components."""
    from .estimators import KMeans, TruncatedGaussianMixture

    if args.kmeans:
        clashes = [opt for opt, val in (("--covariance", args.covariance), ("--active", args.active),
                                        ("--weights", args.weights)) if val is not None]
        if clashes:
            raise CLIError(
                f"--kmeans fixes one shared variance, equal weights and C'=1; drop {', '.join(clashes)}"
            )
        cls, kwargs = KMeans, dict(n_clusters=n)
        if args.algorithm is not None:
            kwargs["algorithm"] = args.algorithm
    else:
        if args.algorithm is not None:
            raise CLIError("--algorithm chooses how k-means assigns points; use it with --kmeans")
        cls = TruncatedGaussianMixture
        kwargs = dict(n_components=n, covariance_type=args.covariance or "diag",
                      weights=args.weights or "learned",
                      n_active=None if args.active in (None, "all") else args.active)
    if args.search is not None:
        kwargs["search"] = args.search
    for option, name in (("neighbors", "n_neighbors"), ("random", "n_random"),
                         ("coreset", "coreset_size"), ("init", "init")):
        if getattr(args, option) is not None:
            kwargs[name] = getattr(args, option)
    kwargs.update(n_init=args.n_init, random_state=args.seed)
    if args.max_iter is not None:
        kwargs["max_iter"] = args.max_iter
    if args.tol is not None:
        kwargs["tol"] = args.tol
    return cls(**kwargs)


def _describe(model):
    C = _n_components(model)
    if hasattr(model, "n_clusters"):
        return f"KMeans, {C} clusters (one shared variance, equal weights, C'=1)"
    return (f"TruncatedGaussianMixture, {C} components, {model.covariance_type} covariances, "
            f"{model.weights} weights, C'={_n_active(model)}")


# ------------------------------------------------------------------ commands
def cmd_fit(args):
    """``truncmix fit``."""
    from .io import save

    X, names = _read(args)
    model = _estimator(args, args.k)
    if X.shape[0] < args.k:
        raise CLIError(f"{args.data}: {X.shape[0]} rows cannot be split into {args.k} components")
    seconds, interrupted = _fit_model(args, model, X)
    output = args.output or os.path.splitext(os.path.basename(_strip_gz(args.data)))[0] + ".tmx"
    meta = {"data": os.path.abspath(args.data), "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]), "columns": names, "fit_seconds": round(seconds, 4),
            "n_dropped": args.n_dropped, "interrupted": interrupted}
    save(model, output, metadata=meta)
    if interrupted:
        print(f"truncmix: interrupted: saved the model of iteration {model.n_iter_} (the last "
              f"completed M-step) to {output}", file=sys.stderr)
    ll = model.score(X)
    result = {
        "model": output, "class": type(model).__name__, "n_components": _n_components(model),
        "n_active": _n_active(model), "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
        "n_iter": int(model.n_iter_), "converged": bool(model.converged_),
        "free_energy_per_sample": float(model.lower_bound_), "mean_log_likelihood": ll,
        "bic": float(model.bic(X)), "seconds": seconds,
        "free_energy_history": model.free_energy_history_.tolist(),
        "n_dropped": args.n_dropped, "interrupted": interrupted,
    }
    _say(args,
         f"fitted {_describe(model)}",
         f"  data          {args.data}: {X.shape[0]} samples x {X.shape[1]} features",
         f"  iterations    {model.n_iter_} ({'converged' if model.converged_ else 'NOT converged'}) "
         f"in {seconds:.2f} s",
         f"  free energy   {model.lower_bound_:.6g} per sample",
         f"  log-lik       {ll:.6g} per sample   BIC {result['bic']:.6g}",
         f"wrote {output}")
    _emit_json(args, result)
    return EXIT_INTERRUPT if interrupted else EXIT_OK


def _strip_gz(path):
    return path[:-3] if path.lower().endswith(".gz") else path


def cmd_predict(args):
    """``truncmix predict``."""
    model = _load(args.model)
    X, _ = _read(args)
    _check_features(model, X, args.data, args.model)
    if args.proba:
        out = model.predict_proba(X)
        columns = [f"p{c}" for c in range(out.shape[1])]
    else:
        out = model.predict(X)
        columns = ["label"]
    if args.json and not args.output:
        _emit_json(args, {"model": args.model, "data": args.data, "n_samples": int(X.shape[0]),
                          ("proba" if args.proba else "labels"): out})
        return EXIT_OK
    written = _write_table(args, out, columns, args.output)
    if written:
        what = "probabilities" if args.proba else "labels"
        _say(args, f"wrote {X.shape[0]} {what} to {written}")
        _emit_json(args, {"model": args.model, "data": args.data, "output": written,
                          "n_samples": int(X.shape[0])})
    return EXIT_OK


def cmd_score(args):
    """``truncmix score``."""
    model = _load(args.model)
    X, _ = _read(args)
    _check_features(model, X, args.data, args.model)
    ll = model.score(X)
    fe = free_energy(model, X)
    result = {"model": args.model, "data": args.data, "n_samples": int(X.shape[0]),
              "mean_log_likelihood": ll, "free_energy_per_sample": fe,
              "n_active": _n_active(model), "bic": float(model.bic(X)), "aic": float(model.aic(X))}
    _say(args,
         f"{args.data}: {X.shape[0]} samples under {args.model}",
         f"  mean log-likelihood      {ll:.6g}",
         f"  free energy per sample   {fe:.6g}   (C'={result['n_active']})",
         f"  BIC {result['bic']:.6g}   AIC {result['aic']:.6g}")
    _emit_json(args, result)
    return EXIT_OK


def cmd_sample(args):
    """``truncmix sample``."""
    import numpy as np

    model = _load(args.model)
    if args.seed is not None:
        model.random_state = args.seed
    X, labels = model.sample(args.n)
    names = _model_columns(args.model) or [f"x{i}" for i in range(X.shape[1])]
    if args.labels:
        X = np.column_stack([X, labels])
        names = names + ["component"]
    if args.json and not args.output:
        _emit_json(args, {"model": args.model, "n_samples": int(X.shape[0]), "columns": names,
                          "samples": X})
        return EXIT_OK
    written = _write_table(args, X, names, args.output)
    if written:
        _say(args, f"wrote {X.shape[0]} samples x {len(names)} columns to {written}")
        _emit_json(args, {"model": args.model, "output": written, "n_samples": int(X.shape[0]),
                          "columns": names})
    return EXIT_OK


def _model_columns(path):
    from .io import read_header

    cols = (read_header(path).get("metadata") or {}).get("columns")
    return list(cols) if isinstance(cols, list) else None


def cmd_info(args):
    """``truncmix info``."""
    import numpy as np

    from .io import read_header

    header = read_header(args.model)
    model = _load(args.model)
    C, D = _n_components(model), int(model.n_features_in_)
    meta = header.get("metadata") or {}
    weights = np.asarray(getattr(model, "weights_", np.full(C, 1.0 / C)))
    fe = model.free_energy_history_
    info = {
        "file": args.model, "format_version": header["format_version"], "class": header["class"],
        "library_version": header.get("library_version"), "created": header.get("created"),
        "n_components": C, "n_features": D, "n_active": _n_active(model),
        "params": {k: v for k, v in header["params"].items()},
        "n_iter": int(model.n_iter_), "converged": bool(model.converged_),
        "free_energy_per_sample": float(model.lower_bound_), "training_data": meta,
        "n_parameters": int(model._n_parameters()),
    }
    lines = [
        f"{args.model}: truncmix model file, format version {header['format_version']}, "
        f"written by truncmix {header.get('library_version')} at {header.get('created')}",
        f"  model         {_describe(model)}",
        f"  features      {D}" + (f" ({', '.join(meta['columns'])})" if meta.get("columns") else ""),
        f"  parameters    {info['n_parameters']} free",
        f"  fit           {model.n_iter_} iterations, {'converged' if model.converged_ else 'not converged'}; "
        f"free energy per sample {fe[0]:.6g} -> {model.lower_bound_:.6g}",
    ]
    if meta.get("data"):
        lines.append(f"  trained on    {meta['data']} ({meta.get('n_samples')} x {meta.get('n_features')})")
    if hasattr(model, "sigma2_"):
        lines.append(f"  sigma^2       {model.sigma2_:.6g} (shared variance); inertia {model.inertia_:.6g}")
    alive = int((weights > 0).sum())
    lines.append(f"  weights       min {weights.min():.4g}, max {weights.max():.4g}; {alive} of {C} alive")
    shown = {k: v for k, v in header["params"].items() if v is not None}
    lines.append("  settings      " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    if header.get("dropped_params"):
        lines.append(f"  note          {header['dropped_params']}")
    _say(args, *lines)
    _emit_json(args, info)
    return EXIT_OK


def cmd_select(args):
    """``truncmix select``."""
    from .selection import parse_range, select_n_components

    try:
        ks = parse_range(args.k)
    except ValueError as exc:
        raise CLIError(f"-k: {exc}") from None
    X, _ = _read(args)
    template = _estimator(args, ks[0])
    if args.criterion == "heldout" and not 0 < args.heldout_fraction < 1:
        raise CLIError("--heldout-fraction must be between 0 and 1")
    n_fit = X.shape[0] if args.criterion != "heldout" else X.shape[0] - round(args.heldout_fraction * X.shape[0])
    if ks[-1] > n_fit:
        raise CLIError(f"{args.data}: {n_fit} rows to fit cannot be split into {ks[-1]} components")
    show = _progress_enabled(args)

    def on_fit(row, model):
        if show:
            print(f"  k={row.n_components}: {row.value:.6g} ({row.seconds:.2f} s)", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel = select_n_components(X, ks, criterion=args.criterion, estimator=template,
                                      heldout_fraction=args.heldout_fraction,
                                      random_state=args.seed, on_fit=on_fit)
    except (ValueError, FloatingPointError) as exc:
        if args.debug:
            raise
        raise CLIError(f"{args.data}: the fit failed: {exc}", EXIT_FAILURE) from None
    seconds = time.perf_counter() - t0
    extra = []
    if args.plot:
        from .plot import plot_selection

        plot_selection(sel, args.plot)
        extra.append(f"wrote the curve to {args.plot}")
    if args.output:
        from .io import save

        save(sel.best_model, args.output, metadata={"data": os.path.abspath(args.data),
                                                    "selected_by": args.criterion})
        extra.append(f"wrote the k={sel.best} model to {args.output}")
    kind = "KMeans" if args.kmeans else f"{template.covariance_type} GMM"
    _say(args, f"{args.data}: {X.shape[0]} samples x {X.shape[1]} features; {kind}, "
               f"k = {', '.join(map(str, ks)) if len(ks) <= 6 else f'{ks[0]}..{ks[-1]}'}",
         sel.table(), f"best by {args.criterion}: k = {sel.best}  ({seconds:.1f} s)", *extra)
    result = sel.as_dict()
    result.update(data=args.data, seconds=seconds, plot=args.plot, model=args.output)
    _emit_json(args, result)
    return EXIT_OK


def cmd_plot(args):
    """``truncmix plot``."""
    from .plot import plot_fit

    model = _load(args.model)
    X, _ = _read(args)
    _check_features(model, X, args.data, args.model)
    plot_fit(model, X, args.output, max_points=args.max_points, title=args.title)
    _say(args, f"wrote {args.output}")
    _emit_json(args, {"model": args.model, "data": args.data, "output": args.output})
    return EXIT_OK


def cmd_demo(args):
    """``truncmix demo``."""
    from .demo import run

    result = run(seed=args.seed, out_dir=args.out_dir, quick=args.quick,
                 out=(lambda *a, **k: None) if args.json else print)
    _emit_json(args, result)
    return EXIT_OK


# -------------------------------------------------------------------- parser
def build_parser():
    """The argument parser of the ``truncmix`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    from . import __version__

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("output")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bar and no warnings on stderr")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print a machine-readable result (JSON) on stdout")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of an error")

    data = argparse.ArgumentParser(add_help=False)
    g = data.add_argument_group("data file")
    g.add_argument("--columns", metavar="COLS",
                   help="columns to use, by name or 0-based index, comma-separated (e.g. 0,2,5)")
    hdr = g.add_mutually_exclusive_group()
    hdr.add_argument("--header", dest="header", action="store_const", const=True, default=None,
                     help="the text file has a header row (default: detected)")
    hdr.add_argument("--no-header", dest="header", action="store_const", const=False,
                     help="the text file has no header row")

    model = argparse.ArgumentParser(add_help=False)
    g = model.add_argument_group("model")
    g.add_argument("--kmeans", action="store_true",
                   help="the k-means model: one shared variance, equal weights, C'=1")
    g.add_argument("--covariance", choices=("isotropic", "spherical", "diag", "tied", "full"),
                   help="covariance type (default: diag)")
    g.add_argument("--active", type=_active, metavar="C'",
                   help="components kept per point (C'); 'all' for exact EM (default)")
    g.add_argument("--search", choices=("exhaustive", "neighbourhood"),
                   help="how each point's C' components are found (default: exhaustive)")
    g.add_argument("--algorithm", choices=("auto", "lloyd", "yinyang"),
                   help="--kmeans with exhaustive search: 'yinyang' skips distances that "
                        "group bounds rule out (same result), 'lloyd' scores every centre; "
                        "default 'auto' (yinyang for data in memory)")
    g.add_argument("--neighbors", type=_positive_int, metavar="G",
                   help="neighbourhood size for --search neighbourhood (default: 5)")
    g.add_argument("--random", type=_non_negative_int, metavar="E",
                   help="random candidates per point for --search neighbourhood (default: 1)")
    g.add_argument("--init", choices=("k-means++", "afk-mc2", "random"),
                   help="seeding of the means (default: k-means++)")
    g.add_argument("--coreset", type=_positive_int, metavar="N",
                   help="seed on a lightweight coreset of N points instead of all data")
    g.add_argument("--weights", choices=("equal", "learned"), help="mixing weights (default: learned)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--n-init", type=_positive_int, default=1, metavar="N",
                   help="runs from different starts; the best is kept (default: 1)")
    g.add_argument("--max-iter", type=_positive_int, metavar="N", help="iteration limit per run")
    g.add_argument("--tol", type=float, help="stop when the free energy per sample changes less")
    g.add_argument("--missing", choices=("raise", "drop"), default="raise",
                   help="rows with an empty field, NaN or inf: an error (default) or drop them")

    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(
        prog="truncmix", formatter_class=fmt,
        description="k-means and Gaussian mixtures fitted by truncated variational EM.",
        epilog="Data files: .npy, .csv, .tsv (optionally .gz), .parquet. Models: .tmx.\n"
               "Examples:\n"
               "  truncmix fit data.csv -k 50 -o model.tmx\n"
               "  truncmix predict model.tmx data.csv -o labels.csv\n"
               "  truncmix select data.csv -k 2:40 --plot bic.png\n"
               "  truncmix plot model.tmx data.csv -o fit.png\n"
               "  truncmix demo",
    )
    p.add_argument("--version", action="version", version=f"truncmix {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("fit", parents=[common, data, model], help="fit a model to a data file",
                       description="Fit a Gaussian mixture (or k-means with --kmeans) and save it.")
    s.add_argument("data", metavar="DATA")
    s.add_argument("-k", type=_positive_int, required=True, metavar="C", help="number of components")
    s.add_argument("-o", "--output", metavar="MODEL",
                   help="model file to write (default: DATA's name with .tmx, here)")
    s.set_defaults(func=cmd_fit)

    s = sub.add_parser("predict", parents=[common, data], help="label data with a fitted model",
                       description="Most probable component of each row (or all posteriors).")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("data", metavar="DATA")
    s.add_argument("-o", "--output", metavar="FILE", help="labels file (default: CSV on stdout)")
    s.add_argument("--proba", action="store_true", help="write p(c | x) for every component")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("score", parents=[common, data], help="log-likelihood and free energy of data",
                       description="Mean log-likelihood and truncated free energy per sample.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("data", metavar="DATA")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("sample", parents=[common], help="draw samples from a model",
                       description="Draw new data from a fitted model.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("-n", type=_positive_int, default=1000, metavar="N", help="how many (default: 1000)")
    s.add_argument("-o", "--output", metavar="FILE", help="samples file (default: CSV on stdout)")
    s.add_argument("--seed", type=int, help="random seed (default: the model's own)")
    s.add_argument("--labels", action="store_true", help="add a column with each sample's component")
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("info", parents=[common], help="summary of a model file",
                       description="A readable summary of a model file.")
    s.add_argument("model", metavar="MODEL")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("select", parents=[common, data, model], help="choose the number of components",
                       description="Fit a range of sizes; print a table; mark the best.")
    s.add_argument("data", metavar="DATA")
    s.add_argument("-k", required=True, metavar="RANGE",
                   help="sizes: LOW:HIGH (inclusive), LOW:HIGH:STEP or a list 3,6,9")
    s.add_argument("--criterion", choices=("bic", "aic", "heldout"), default="bic",
                   help="bic / aic (lower is better) or held-out log-likelihood (default: bic)")
    s.add_argument("--heldout-fraction", type=float, default=0.2, metavar="F",
                   help="fraction of rows held out for --criterion heldout (default: 0.2)")
    s.add_argument("--plot", metavar="PNG", help="write the criterion curve to this picture")
    s.add_argument("-o", "--output", metavar="MODEL", help="save the best model")
    s.set_defaults(func=cmd_select)

    s = sub.add_parser("plot", parents=[common, data], help="pictures of a fit",
                       description="Free energy per iteration, a 2-D view (PCA when D > 2) with "
                                   "component ellipses, and samples beside data.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("data", metavar="DATA")
    s.add_argument("-o", "--output", default="fit.png", metavar="PNG", help="picture (default: fit.png)")
    s.add_argument("--max-points", type=_positive_int, default=4000, metavar="N",
                   help="points drawn per panel (default: 4000)")
    s.add_argument("--title")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("demo", parents=[common], help="a tour on scikit-learn's digits",
                       description="Fit the family on scikit-learn's digits (nothing is downloaded), "
                                   "print a comparison, write pictures and a model file.")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out-dir", default="truncmix-demo", metavar="DIR",
                   help="where the pictures and the model go (default: ./truncmix-demo)")
    s.add_argument("--quick", action="store_true", help="fewer restarts (for tests)")
    s.set_defaults(func=cmd_demo)
    return p


def _args_for_errors(argv):
    return argparse.Namespace(debug="--debug" in argv, quiet="--quiet" in argv or "-q" in argv)


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def main(argv=None):
    """Run the ``truncmix`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 success, 1 fit failure, 2 usage or input error,
        130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _args_for_errors(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise CLIError("choose a command: fit, predict, score, sample, info, select, plot, demo "
                           "(see 'truncmix --help')")
        return args.func(args)
    except CLIError as exc:
        if args.debug:
            raise
        print(f"truncmix: error: {_one_line(exc)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("truncmix: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except Exception as exc:  # one line, not a traceback
        if args.debug:
            raise
        from .exceptions import ModelFileError
        from .io import DataFileError

        if isinstance(exc, (DataFileError, ModelFileError, OSError, ImportError, ValueError)):
            print(f"truncmix: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"truncmix: error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_FAILURE
