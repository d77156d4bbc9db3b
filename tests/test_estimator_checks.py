"""scikit-learn's own API conformance checks, for both estimators.

No check is marked as expected to fail. The array-API check needs
``SCIPY_ARRAY_API=1`` set before SciPy is imported, which would change SciPy for
the whole test session, so it runs in a subprocess of its own.
"""

import os
import subprocess
import sys
import textwrap

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from truncmix import KMeans, TruncatedGaussianMixture

ESTIMATORS = [
    KMeans(n_clusters=3, random_state=0),
    TruncatedGaussianMixture(n_components=2, random_state=0),
    TruncatedGaussianMixture(n_components=2, n_active=1, covariance_type="full", random_state=0),
    TruncatedGaussianMixture(n_components=3, n_active=2, covariance_type="spherical",
                             weights="equal", random_state=0),
]


def _check_name(check):
    return getattr(check, "func", check).__name__


def _cases(in_process):
    for estimator in ESTIMATORS:
        for est, check in estimator_checks_generator(estimator, legacy=True, mark=None):
            if (_check_name(check) == "check_array_api_input") != in_process:
                yield pytest.param(est, check, id=f"{est!r}-{_check_name(check)}")


@pytest.mark.parametrize("estimator, check", list(_cases(in_process=True)))
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("index", range(len(ESTIMATORS)))
def test_array_api_check_in_subprocess(index):
    code = textwrap.dedent(
        f"""
        from sklearn.utils.estimator_checks import estimator_checks_generator
        from tests.test_estimator_checks import ESTIMATORS, _check_name
        ran = 0
        for est, check in estimator_checks_generator(ESTIMATORS[{index}], legacy=True, mark=None):
            if _check_name(check) == "check_array_api_input":
                check(est)
                ran += 1
        assert ran > 0, "no array-API check was generated"
        print("ran", ran)
        """
    )
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ran "), proc.stdout
