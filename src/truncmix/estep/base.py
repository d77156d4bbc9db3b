"""The protocol every E-step strategy follows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkResult:
    """The truncated posterior of one chunk.

    Attributes
    ----------
    K : ndarray (n, C') int32, or None
        Each point's truncated set, best component first; ``None`` when every
        component is kept (exact EM), in which case ``q`` is dense.
    q : ndarray (n, C') or (n, C), float64
        Truncated posteriors (rows sum to one).
    lse : ndarray (n,), float64
        ``log sum_{c in K_n} exp l_n(c)``; its weighted sum is the free energy.
    n_evals : int
        Log-joint evaluations made.
    extra : object or None
        Statistics the strategy gathers for itself (closed under ``+``); they
        are summed over chunks and handed to :meth:`EStep.end_pass`.
    moments : tuple or None
        ``(moment, resp, first, second)``: the statistics about the mixture's
        means for the given moment (a ``MOMENT_*`` code), when the strategy
        computed them on its way; None lets them be accumulated from ``K``
        and ``q`` (``q`` may then be None).
    best : ndarray (n,) or None
        Each point's most probable component, when ``q`` is not kept.
    totals : tuple or None
        ``(sum_n w_n lse_n, sum_n w_n)`` when the strategy summed them on its
        way (saves two passes over the chunk); None sums them from ``lse``.
    n_changed : int or None
        Rows of nonzero weight whose best component differs from ``K_prev``'s,
        when the strategy counted them; None compares the sets.
    lowest : tuple or None
        ``(rows, k)``: rows that include the chunk's k weighted rows of lowest
        ``(lse, row)``, when the strategy kept them; the worst-explained
        points are then chosen among these instead of over the chunk.
    """

    K: np.ndarray | None
    q: np.ndarray
    lse: np.ndarray
    n_evals: int
    extra: object = None
    moments: tuple | None = None
    best: np.ndarray | None = None
    totals: tuple | None = None
    n_changed: int | None = None
    lowest: tuple | None = None

    @property
    def labels(self):
        """The best component of each point."""
        if self.best is not None:
            return self.best
        if self.K is None:
            return np.argmax(self.q, axis=1)
        return self.K[:, 0]


class EStep:
    """Base of the E-step strategies.

    A strategy is stateless across chunks except through ``K``, the per-point
    truncated sets that the backend stores beside the data.

    Parameters
    ----------
    n_active : int or None
        C', the number of components kept per point; ``None`` keeps all.
    """

    def __init__(self, n_active):
        self.n_active = n_active

    def kept(self, n_components):
        """C' for a mixture of ``n_components`` components."""
        return n_components if self.n_active is None else min(self.n_active, n_components)

    def state_shape(self, n_samples, n_components):
        """Shape of the per-point state, or None when none is needed."""
        k = self.kept(n_components)
        return None if k == n_components else (n_samples, k)

    def start_fit(self, mixture, random_state):
        """Reset any state kept across passes, at the start of one EM run."""

    def end_pass(self, stats, mixture):
        """Called after each state-updating pass with the summed statistics."""

    def after_m_step(self, mixture, report):
        """Called after each M-step with the new mixture and its MStepReport."""

    def columns(self, n_components):
        """Work-array columns per row, for sizing chunks."""
        return n_components

    def update(self, X, mixture, K_prev, start=0, weights=None):
        """Run the E-step on one chunk.

        Parameters
        ----------
        X : ndarray (n, D)
        mixture : Mixture
        K_prev : ndarray (n, C') or None
            The previous truncated sets (read only; -1 where unknown).
        start : int
            Global index of the chunk's first row (seeds per-row randomness,
            so results do not depend on chunking or threads).
        weights : ndarray (n,) or None
            Sample weights, for statistics the strategy gathers for itself.

        Returns
        -------
        ChunkResult
        """
        raise NotImplementedError
