"""Small shared constants (codes the numba kernels understand)."""

# Forms of the second moment that a covariance type needs from the data.
MOMENT_SCALAR = 0  # sum_n r ||x - a||^2            (isotropic, spherical)
MOMENT_VECTOR = 1  # sum_n r (x - a) * (x - a)       (diag)
MOMENT_MATRIX = 2  # sum_n r (x - a)(x - a)^T        (tied, full)
