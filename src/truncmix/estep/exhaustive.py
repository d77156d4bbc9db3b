"""The exhaustive E-step: score every component, keep the best C'."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .base import ChunkResult, EStep


class Exhaustive(EStep):
    """Score all C components through BLAS and keep each point's best C'.

    With ``n_active=None`` (or C) this is the exact E-step of EM and the free
    energy is the log-likelihood; with ``n_active=1`` and an isotropic,
    equal-weight mixture it is Lloyd's assignment step.
    """

    def update(self, X, mixture, K_prev):
        log_joint = mixture.log_joint(X)
        n, C = log_joint.shape
        k = self.kept(C)
        if k == C:
            lse = logsumexp(log_joint, axis=1)
            q = np.exp(log_joint - lse[:, None])
            return ChunkResult(None, q, lse, n * C)
        if k == 1:
            best = np.argmax(log_joint, axis=1)
            lse = log_joint[np.arange(n), best]
            return ChunkResult(best.astype(np.int32)[:, None], np.ones((n, 1)), lse, n * C)
        from ..kernels.topk import top_k_softmax

        K, q, lse = top_k_softmax(log_joint, k)
        return ChunkResult(K, q, lse, n * C)
