"""The EM driver: one loop for every model, E-step strategy and backend.

Data flows one way: for each chunk the E-step strategy produces truncated
posteriors, they become :class:`~truncmix.stats.SufficientStats`, the parts are
summed, and the M-step turns the sum into new parameters.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .exceptions import (
    DegenerateComponentWarning,
    FitInterruptedWarning,
    FreeEnergyDecreaseWarning,
)
from .history import IterationRecord
from .mstep import m_step
from .stats import from_posterior

#: relative decrease of F tolerated as rounding. The scale is |F| / W floored at
#: one nat per unit weight: F sums per-point log-densities of either sign, so the
#: total can cancel to near zero while each term's rounding stays O(1).
MONOTONE_RTOL = 1e-10

#: below this many features the M-step's small matrix algebra runs on one BLAS
#: thread (thread start-up costs more than a 4 x 4 factorisation, and 2 threads
#: on a busy 2-core machine can make it 100x slower)
SMALL_MSTEP_FEATURES = 256


@dataclass(frozen=True)
class EMConfig:
    """Settings of one EM run.

    Attributes
    ----------
    learned_weights : bool
    floor : Floor
    reg_covar : float
    max_iter : int
    tol : float
        Stop when ``|F_t - F_{t-1}| / W < tol`` (change of the free energy per
        unit sample weight; scale-free, since rescaling the data shifts every
        log-density by the same constant).
    outlier_capacity : int
        Points remembered per E-step for re-seeding empty components.
    """

    learned_weights: bool
    floor: object
    reg_covar: float = 0.0
    max_iter: int = 100
    tol: float = 1e-3
    outlier_capacity: int = 16


def chunk_stats(chunk, estep, mixture, moments_of=None, *, update_state=True,
                outlier_capacity=0):
    """The E-step and the sufficient statistics of one chunk.

    This is the unit of work every backend runs, in process or on a worker.

    Returns
    -------
    stats : SufficientStats
    result : ChunkResult
        The truncated posteriors (``result.K`` is also written into ``chunk.K``
        when ``update_state``).
    """
    cov = mixture.covariance if moments_of is None else moments_of
    res = estep.update(chunk.X, mixture, chunk.K, chunk.start, chunk.weights)
    n_changed = -1
    if chunk.K is not None and res.K is not None:
        if res.n_changed is not None:
            n_changed = res.n_changed  # counted by the E-step on its way
        else:
            # zero-weight rows do not enter the M-step, so their moves don't count
            if chunk.K.shape[1] == 1:
                changed = chunk.K[:, 0] != res.K[:, 0]  # no reduction over one column
            else:
                changed = np.any(chunk.K != res.K, axis=1)
            changed &= chunk.weights > 0
            n_changed = int(changed.sum())
        if update_state:
            chunk.K[...] = res.K
    stats = from_posterior(
        chunk.X, chunk.weights, res.K, res.q, res.lse, mixture.means, cov.moment, cov.shared,
        n_evals=res.n_evals, n_changed=n_changed, offset=chunk.start,
        outlier_capacity=outlier_capacity, extra=res.extra,
        moments=_moments_for(res, cov.moment), totals=res.totals, lowest=res.lowest,
    )
    return stats, res


def _moments_for(res, moment):
    """The E-step's own statistics when they are of the moment needed, else None."""
    if res.moments is not None and res.moments[0] == moment:
        return res.moments[1:]
    if res.q is None:
        raise RuntimeError("the E-step kept neither posteriors nor the statistics needed")
    return None


def e_pass(backend, estep, mixture, *, update_state=True, outlier_capacity=0, on_chunk=None,
           moments_of=None, learn=True):
    """One E-step over all chunks; returns the summed statistics.

    Parameters
    ----------
    backend : InMemory (or another backend)
        A backend with a ``map_reduce(fn, n_components)`` method runs ``fn``
        (chunk -> SufficientStats) where its data lives and sums the results;
        otherwise its ``chunks`` are processed here, in order.
    estep : EStep
    mixture : Mixture
    update_state : bool
        Store the new truncated sets in the backend's per-point state, and let
        the E-step update what it keeps across passes (:meth:`EStep.end_pass`).
    learn : bool
        With ``update_state``, whether :meth:`EStep.end_pass` runs. The final
        pass of a fit sets it to False: no pass follows that could use what
        the E-step would learn (the neighbourhood search's new neighbourhoods).
    outlier_capacity : int
    on_chunk : callable or None
        Called as ``on_chunk(chunk, result)`` (used to collect labels; in-process
        backends only).
    moments_of : Covariance or None
        Gather the second moments this covariance needs instead of the
        mixture's own (the first M-step ranks by distance but may fit any type).
    """
    C = mixture.n_components

    def one(chunk):
        stats, res = chunk_stats(chunk, estep, mixture, moments_of, update_state=update_state,
                                 outlier_capacity=outlier_capacity)
        if on_chunk is not None:
            on_chunk(chunk, res)
        return stats

    if hasattr(backend, "map_reduce") and on_chunk is None:
        total = backend.map_reduce(one, estep.columns(C))
    else:
        total = 0
        for chunk in backend.chunks(estep.columns(C)):
            total = total + one(chunk)
    if update_state and learn:
        estep.end_pass(total, mixture)
    return total


def _small_blas(n_features):
    """One BLAS thread for the M-step's per-component algebra when D is small."""
    if n_features >= SMALL_MSTEP_FEATURES:
        return contextlib.nullcontext()
    from ._threads import single_threaded_blas

    return single_threaded_blas()


class EMRun:
    """One run of truncated variational EM from a given starting mixture.

    Iterate with :meth:`iterate` (a generator of :class:`IterationRecord`, one
    per E+M iteration) or call :meth:`run`; then :meth:`finish` does the final
    E-step so that the reported free energy and labels belong to the returned
    parameters.

    Parameters
    ----------
    backend, estep, mixture, config :
        Where the data is, how K is searched, where to start, how to stop.
    callback : callable or None
        Called with each :class:`IterationRecord`; returning True stops the fit.
    keep_state : bool
        Start from the per-point state already in the backend (written by the
        initialisation) instead of a fresh one.
    moves : callable or None
        Global moves after each M-step, called as ``moves(backend, mixture,
        stats)`` and returning ``(mixture, n_moves)``; they must not lower the
        free energy (see :mod:`truncmix.moves`).
    """

    def __init__(self, backend, estep, mixture, config, callback=None, keep_state=False,
                 moves=None):
        self.backend = backend
        self.estep = estep
        self.mixture = mixture
        self.config = config
        self.callback = callback
        self.moves = moves
        self.history = []
        self.converged = False
        self.n_iter = 0
        self.interrupted = False
        if not keep_state:
            backend.allocate_state(estep.state_shape(backend.n_samples, mixture.n_components))

    def iterate(self):
        """E-step, M-step, record; until converged or ``max_iter``."""
        cfg = self.config
        hard = self.estep.kept(self.mixture.n_components) == 1
        previous = None
        moved = 0
        for it in range(1, cfg.max_iter + 1):
            t0 = time.perf_counter()
            stats = e_pass(self.backend, self.estep, self.mixture,
                           outlier_capacity=cfg.outlier_capacity)
            F, W = stats.free_energy, stats.weight
            if not np.isfinite(F):
                raise FloatingPointError(
                    f"the free energy became {F} at iteration {it}; the data may hold "
                    "values too large to square in float64"
                )
            delta = np.nan if previous is None else (F - previous) / W
            if (previous is not None and cfg.reg_covar == 0
                    and (F - previous) / W < -MONOTONE_RTOL * max(abs(previous) / W, 1.0)):
                warnings.warn(
                    f"free energy decreased from {previous!r} to {F!r} at iteration {it}",
                    FreeEnergyDecreaseWarning, stacklevel=3,
                )
            with _small_blas(self.mixture.n_features):
                self.mixture, report = m_step(
                    stats, self.mixture, learned_weights=cfg.learned_weights,
                    floor=cfg.floor, reg_covar=cfg.reg_covar,
                )
            self.estep.after_m_step(self.mixture, report)
            self._report_degenerate(report, it)
            settled = moved == 0
            moved = 0
            if self.moves is not None:
                self.mixture, moved = self.moves(self.backend, self.mixture, stats)
            self.n_iter = it
            record = IterationRecord(
                iteration=it, free_energy=F, delta=delta, n_evals=stats.n_evals,
                n_changed=stats.n_changed, n_empty=report.n_empty,
                n_relocated=len(report.relocated), n_removed=len(report.removed),
                n_floored=report.n_floored, n_alive=int(self.mixture.alive.sum()),
                n_swapped=moved, seconds=time.perf_counter() - t0,
            )
            self.history.append(record)
            yield record
            stop = self.callback(record) if self.callback is not None else False
            # A hard E-step that changed no set is a fixed point: the M-step just
            # reproduced the parameters. Not at the first iteration (the start's
            # M-step may have kept its means), nor around global moves (they
            # changed sets and means outside the E- and M-steps).
            fixed = hard and it > 1 and settled and stats.n_changed == 0 and report.n_empty == 0
            small = previous is not None and abs(F - previous) / W < cfg.tol
            if moved == 0 and (fixed or small):
                self.converged = True
                return
            if stop:
                return
            previous = F

    def run(self):
        """Drain :meth:`iterate`; Ctrl-C keeps the parameters of the last M-step."""
        try:
            for _ in self.iterate():
                pass
        except KeyboardInterrupt:
            self.interrupted = True
            warnings.warn(
                f"fit interrupted after {self.n_iter} iterations; keeping the parameters "
                "of the last completed M-step",
                FitInterruptedWarning, stacklevel=2,
            )
        return self

    def finish(self, backend=None, mixture=None, on_chunk=None):
        """Final E-step with the returned parameters; returns its statistics.

        ``backend`` and ``mixture`` may give the same data and parameters in other
        coordinates (the estimators score in the coordinates ``predict`` uses);
        the per-point state is shared with the fitting backend.
        """
        mixture = self.mixture if mixture is None else mixture
        if backend is None:
            backend = self.backend
        else:
            backend.state = self.backend.state
        # the last pass: nothing follows that could use new neighbourhoods
        stats = e_pass(backend, self.estep, mixture, on_chunk=on_chunk, learn=False)
        previous = self.history[-1].free_energy if self.history else np.nan
        self.history.append(IterationRecord(
            iteration=self.n_iter + 1, free_energy=stats.free_energy,
            delta=(stats.free_energy - previous) / stats.weight, n_evals=stats.n_evals,
            n_changed=stats.n_changed, n_alive=int(mixture.alive.sum()),
        ))
        return stats

    @staticmethod
    def _report_degenerate(report, it):
        if report.relocated:
            warnings.warn(
                f"iteration {it}: component(s) {list(report.relocated)} received no points "
                "and were re-seeded at the worst-explained points",
                DegenerateComponentWarning, stacklevel=4,
            )
        if report.removed:
            warnings.warn(
                f"iteration {it}: component(s) {list(report.removed)} received no points "
                "and were removed (weight set to zero)",
                DegenerateComponentWarning, stacklevel=4,
            )
