"""The per-iteration record of a fit."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class IterationRecord:
    """What one EM iteration did.

    Attributes
    ----------
    iteration : int
        1-based; the record of the final E-step has ``iteration = n_iter + 1``.
    free_energy : float
        F(K^t, Theta^{t-1}): the truncated free energy the E-step computed with
        the parameters of the previous M-step (summed over points, weighted).
    delta : float
        Change of ``free_energy`` per unit of sample weight since the previous
        record (nan for the first).
    n_evals : int
        Log-joint evaluations in this E-step.
    n_changed : int
        Points whose truncated set changed (-1 when not tracked: exact EM).
    n_empty : int
        Components that received no mass in this E-step.
    n_relocated : int
        Of those, re-seeded at badly explained points (equal weights).
    n_removed : int
        Of those, removed (learned weights: their weight became zero).
    n_floored : int
        Components whose variance the floor raised in the M-step.
    n_alive : int
        Components still in the model after the M-step.
    n_swapped : int
        Components moved by global swap moves after the M-step
        (:mod:`truncmix.moves`).
    seconds : float
        Wall time of the iteration.
    """

    iteration: int
    free_energy: float
    delta: float
    n_evals: int
    n_changed: int
    n_empty: int = 0
    n_relocated: int = 0
    n_removed: int = 0
    n_floored: int = 0
    n_alive: int = 0
    n_swapped: int = 0
    seconds: float = 0.0

    def as_dict(self):
        return asdict(self)
