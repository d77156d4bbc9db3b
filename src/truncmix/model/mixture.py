"""The Gaussian mixture itself: weights, means and a covariance object."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .covariance import Covariance


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture ``p(x) = sum_c pi_c N(x; mu_c, Sigma_c)``.

    Attributes
    ----------
    means : ndarray of shape (C, D), float64
    log_weights : ndarray of shape (C,), float64
        ``log pi_c``; ``-inf`` marks a removed component.
    covariance : Covariance
    """

    means: np.ndarray
    log_weights: np.ndarray
    covariance: Covariance

    @property
    def n_components(self):
        return self.means.shape[0]

    @property
    def n_features(self):
        return self.means.shape[1]

    @property
    def weights(self):
        """Mixing weights ``pi_c``."""
        return np.exp(self.log_weights)

    @property
    def alive(self):
        """Components that can still be chosen (non-zero weight)."""
        return np.isfinite(self.log_weights)

    @classmethod
    def with_equal_weights(cls, means, covariance):
        C = means.shape[0]
        return cls(np.asarray(means, dtype=np.float64), np.full(C, -np.log(C)), covariance)

    def shifted(self, delta):
        """The same mixture in coordinates shifted by ``-delta``."""
        return replace(self, means=self.means - np.asarray(delta, dtype=np.float64))

    def log_joint(self, X):
        """``log p(c, x) = log pi_c + log N(x; mu_c, Sigma_c)`` for all components.

        Parameters
        ----------
        X : ndarray of shape (n, D), float32 or float64

        Returns
        -------
        ndarray of shape (n, C), float64
        """
        out = self.covariance.quadratic(X, self.means)
        out *= -0.5
        out += (self.log_weights + self.covariance.log_norm())[None, :]
        return out

    def log_joint_at(self, X, K):
        """Log-joints only for the components in ``K`` (n, C'), row by row.

        Parameters
        ----------
        X : ndarray of shape (n, D)
        K : ndarray of shape (n, C'), int

        Returns
        -------
        ndarray of shape (n, C'), float64
        """
        K = np.asarray(K)
        n, k = K.shape
        out = np.empty((n, k))
        flat = K.ravel()
        rows = np.repeat(np.arange(n), k)
        order = np.argsort(flat, kind="stable")
        bounds = np.flatnonzero(np.diff(flat[order])) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            c = int(flat[group[0]])
            sub = Mixture(
                self.means[c : c + 1], self.log_weights[c : c + 1], self.covariance.take([c])
            )
            out.flat[group] = sub.log_joint(X[rows[group]])[:, 0]
        return out

    def sample(self, n_samples, rng):
        """Draw ``n_samples`` points and their components.

        Returns
        -------
        X : ndarray (n_samples, D)
        labels : ndarray (n_samples,), int64
        """
        weights = self.weights
        counts = rng.multinomial(n_samples, weights / weights.sum())
        labels = np.repeat(np.arange(self.n_components), counts)
        rng.shuffle(labels)
        X = self.means[labels] + self.covariance.noise(rng, labels)
        return X, labels

    def n_parameters(self, learned_weights):
        """Free parameters: means, covariances and (if learned) C - 1 weights."""
        C, D = self.means.shape
        return C * D + self.covariance.n_parameters() + (C - 1 if learned_weights else 0)
