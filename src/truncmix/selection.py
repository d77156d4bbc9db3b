"""Choosing the number of clusters: fit a range, score each fit, keep the best."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CRITERIA", "Selection", "SelectionRow", "parse_range", "select_n_components"]

#: criterion name -> (column title, True when lower is better)
CRITERIA = {
    "bic": ("BIC", True),
    "aic": ("AIC", True),
    "heldout": ("held-out log-lik", False),
}


@dataclass(frozen=True)
class SelectionRow:
    """One fitted size.

    Attributes
    ----------
    n_components : int
    value : float
        The criterion (BIC / AIC: lower is better; heldout: mean held-out
        log-likelihood per sample, higher is better).
    log_likelihood : float
        Mean log-likelihood per sample of the data the model was fitted on
        (all data for BIC / AIC, the training part for heldout).
    n_parameters : int
    n_iter : int
    converged : bool
    seconds : float
    """

    n_components: int
    value: float
    log_likelihood: float
    n_parameters: int
    n_iter: int
    converged: bool
    seconds: float


@dataclass
class Selection:
    """The result of :func:`select_n_components`.

    Attributes
    ----------
    criterion : str
        "bic", "aic" or "heldout".
    rows : list of SelectionRow
        One per size, in the order fitted.
    best : int
        The chosen number of components.
    best_model : estimator
        The fit of that size (for "heldout": fitted on the training part).
    models : dict of int -> estimator
        Every fit, by size.
    """

    criterion: str
    rows: list
    best: int
    best_model: object
    models: dict = field(default_factory=dict, repr=False)

    @property
    def lower_is_better(self):
        """Whether the criterion is minimised (BIC, AIC) or maximised (heldout)."""
        return CRITERIA[self.criterion][1]

    def table(self):
        """The result as text: one line per size, the best one marked with ``*``.

        Returns
        -------
        str
        """
        title = CRITERIA[self.criterion][0]
        ll_title = "train log-lik" if self.criterion == "heldout" else "log-lik/sample"
        lines = [f"{'k':>4}  {title:>16}  {ll_title:>14}  {'params':>7}  {'iters':>5}  {'seconds':>7}"]
        for r in self.rows:
            mark = "  *" if r.n_components == self.best else ""
            note = "" if r.converged else " (not converged)"
            lines.append(
                f"{r.n_components:>4}  {r.value:16.3f}  {r.log_likelihood:14.4f}  {r.n_parameters:>7d}  "
                f"{r.n_iter:>5d}  {r.seconds:7.2f}{mark}{note}"
            )
        return "\n".join(lines)

    def as_dict(self):
        """A JSON-able summary."""
        return {
            "criterion": self.criterion,
            "best": self.best,
            "rows": [r.__dict__.copy() for r in self.rows],
        }


def parse_range(spec):
    """Parse a size range: ``"2:40"`` (inclusive), ``"2:40:2"``, ``"3,6,9"`` or ``"6"``.

    Parameters
    ----------
    spec : str

    Returns
    -------
    list of int
        Sorted, distinct, all >= 1.

    Raises
    ------
    ValueError
    """
    spec = str(spec).strip()
    try:
        if ":" in spec:
            parts = [int(p) for p in spec.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            lo, hi = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            if step < 1 or hi < lo:
                raise ValueError
            ks = list(range(lo, hi + 1, step))
        else:
            ks = [int(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        raise ValueError(
            f"cannot read the range {spec!r}: use LOW:HIGH (inclusive), LOW:HIGH:STEP or a list like 3,6,9"
        ) from None
    if not ks or min(ks) < 1:
        raise ValueError(f"the range {spec!r} must hold numbers >= 1")
    return sorted(set(ks))


def _with_size(estimator, k):
    from sklearn.base import clone

    est = clone(estimator)
    name = "n_clusters" if "n_clusters" in est.get_params() else "n_components"
    return est.set_params(**{name: int(k)})


def select_n_components(X, n_components, *, criterion="bic", estimator=None, heldout_fraction=0.2,
                        random_state=None, on_fit=None):
    """Fit a mixture for each size and choose the size by BIC, AIC or held-out likelihood.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int or str
        Sizes to try; a string is read by :func:`parse_range` (``"2:40"``).
    criterion : {"bic", "aic", "heldout"}, default="bic"
        "bic" and "aic" are computed on all of ``X`` (lower is better);
        "heldout" fits on a random ``1 - heldout_fraction`` of the rows and
        scores the mean log-likelihood of the rest (higher is better).
    estimator : KMeans or TruncatedGaussianMixture, optional
        Template whose other hyper-parameters are kept (cloned for every size);
        default ``TruncatedGaussianMixture(random_state=random_state)``.
    heldout_fraction : float, default=0.2
    random_state : int or None, default=None
        Seeds the train / held-out split (and the default estimator).
    on_fit : callable, optional
        Called as ``on_fit(row, model)`` after each size is fitted (progress).

    Returns
    -------
    Selection

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(600, centers=4, random_state=0)
    >>> select_n_components(X, "2:7", random_state=0).best
    4
    """
    from sklearn.utils import check_array

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    ks = parse_range(n_components) if isinstance(n_components, str) else sorted({int(k) for k in n_components})
    if not ks or ks[0] < 1:
        raise ValueError("n_components must hold sizes >= 1")
    X = check_array(X, dtype=[np.float64, np.float32])
    if estimator is None:
        from .estimators import TruncatedGaussianMixture

        estimator = TruncatedGaussianMixture(random_state=random_state)
    if criterion == "heldout":
        if not 0 < heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in (0, 1); got {heldout_fraction}")
        order = np.random.default_rng(random_state).permutation(X.shape[0])
        n_test = max(1, int(round(heldout_fraction * X.shape[0])))
        X_fit, X_eval = X[order[n_test:]], X[order[:n_test]]
    else:
        X_fit = X_eval = X
    if ks[-1] > X_fit.shape[0]:
        raise ValueError(
            f"cannot fit {ks[-1]} components to {X_fit.shape[0]} samples; lower the largest size"
        )
    rows, models = [], {}
    for k in ks:
        model = _with_size(estimator, k)
        seconds = quiet_timed_fit(model, X_fit)
        ll = model.score(X_fit)
        n_par = int(model._n_parameters())
        if criterion == "bic":
            value = model.bic(X_eval)
        elif criterion == "aic":
            value = model.aic(X_eval)
        else:
            value = model.score(X_eval)
        row = SelectionRow(k, float(value), float(ll), n_par, int(model.n_iter_),
                           bool(model.converged_), seconds)
        rows.append(row)
        models[k] = model
        if on_fit is not None:
            on_fit(row, model)
    values = np.array([r.value for r in rows])
    best_i = int(np.argmin(values) if CRITERIA[criterion][1] else np.argmax(values))
    best = rows[best_i].n_components
    return Selection(criterion, rows, best, models[best], models)


def quiet_timed_fit(model, X):
    """Fit ``model`` to ``X`` with its warnings silenced; return the seconds taken.

    For tables of many fits, where convergence warnings would drown the output.
    A Ctrl-C stops the whole table: the fit keeps its last M-step, and the
    KeyboardInterrupt is raised again here.
    """
    from .exceptions import FitInterruptedWarning

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
    if any(issubclass(w.category, FitInterruptedWarning) for w in caught):
        raise KeyboardInterrupt
    return time.perf_counter() - t0
