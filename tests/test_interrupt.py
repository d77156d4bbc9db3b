"""Nothing lost: Ctrl-C keeps the last completed M-step; every file is written atomically."""

import json
import os
import pty
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import truncmix
from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.exceptions import FitInterruptedWarning
from truncmix.io import write_array

from .test_cli import read_pty

RNG = np.random.default_rng(11)
X = np.concatenate([RNG.normal(c, 1.0, size=(100, 2)) for c in ([0, 0], [4, 1], [1, 5])])
ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _interrupting_progress(at):
    def progress(record):
        if record.iteration == at:
            raise KeyboardInterrupt
        return False
    return progress


# ------------------------------------------------------------ in-process
@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_ctrl_c_keeps_the_last_m_step(cls):
    est = cls(3, random_state=0, max_iter=50, tol=0)
    est._progress = _interrupting_progress(3)
    with pytest.warns(FitInterruptedWarning, match="after 3 iterations"):
        est.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cls(3, random_state=0, max_iter=3, tol=0).fit(X)
    assert est.n_iter_ == 3 and not est.converged_
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    assert est.lower_bound_ == ref.lower_bound_
    np.testing.assert_array_equal(est.free_energy_history_, ref.free_energy_history_)


def _interrupt_call(monkeypatch, est, method, n):
    """Make the ``n``-th call of ``est.method`` raise KeyboardInterrupt; return the call log."""
    real = getattr(est, method)
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(est, method, wrapper)
    return calls


def test_ctrl_c_during_the_final_e_step_finishes_it(monkeypatch):
    est = TruncatedGaussianMixture(3, random_state=0)
    calls = _interrupt_call(monkeypatch, est, "_final_pass", 1)
    with pytest.warns(FitInterruptedWarning, match="finishing its E-step"):
        est.fit(X)
    ref = TruncatedGaussianMixture(3, random_state=0).fit(X)
    assert len(calls) == 2
    np.testing.assert_array_equal(est.means_, ref.means_)
    np.testing.assert_array_equal(est.free_energy_history_, ref.free_energy_history_)


def test_ctrl_c_while_seeding_a_later_run_keeps_the_first(monkeypatch):
    est = TruncatedGaussianMixture(3, n_init=3, random_state=0)
    _interrupt_call(monkeypatch, est, "_start", 2)
    with pytest.warns(FitInterruptedWarning, match="keeping the best run so far"):
        est.fit(X)
    ref = TruncatedGaussianMixture(3, n_init=1, random_state=0).fit(X)
    np.testing.assert_array_equal(est.means_, ref.means_)
    # nothing to keep yet: the interrupt goes through
    first = TruncatedGaussianMixture(3)
    _interrupt_call(monkeypatch, first, "_start", 1)
    with pytest.raises(KeyboardInterrupt):
        first.fit(X)


# ------------------------------------------------- real SIGINT, subprocesses
def _big(tmp_path):
    rng = np.random.default_rng(0)
    big = np.concatenate([rng.normal(c, 1.0, size=(4000, 4)) for c in range(8)])
    path = tmp_path / "big.npy"
    np.save(path, big)
    return path, big


def test_sigint_in_a_library_fit_returns_the_model(tmp_path):
    path, _ = _big(tmp_path)
    code = textwrap.dedent(f"""
        import json, warnings, numpy as np
        from truncmix import TruncatedGaussianMixture
        X = np.load({str(path)!r})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = TruncatedGaussianMixture(8, covariance_type="full", max_iter=100000, tol=0,
                                         verbose=1, random_state=0).fit(X)
        print(json.dumps({{"n_iter": m.n_iter_, "warnings": [w.category.__name__ for w in caught],
                          "finite": bool(np.isfinite(m.means_).all() and np.isfinite(m.covariances_).all()),
                          "labels": int(np.unique(m.predict(X)).size),
                          "monotone": bool((np.diff(m.free_energy_history_) >= -1e-9).all())}}))
    """)
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:  # wait until a few iterations have run
        seen.append(line)
        if line.startswith("Iteration 3:"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["warnings"] == ["FitInterruptedWarning"]
    assert 3 <= result["n_iter"] < 100000
    assert result["finite"] and result["monotone"] and result["labels"] == 8


def test_sigint_in_the_cli_saves_the_last_model(tmp_path):
    path, big = _big(tmp_path)
    master, slave = pty.openpty()  # progress is shown on a terminal only: wait for it
    proc = subprocess.Popen([sys.executable, "-m", "truncmix", "fit", str(path), "-k", "8",
                             "--covariance", "full", "--tol", "0", "--max-iter", "100000",
                             "-o", "model.tmx", "--json"],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    # the tqdm bar, or plain progress lines without tqdm
    shown = read_pty(master, until=("F/N=", "free energy per sample"))
    assert "F/N=" in shown or "free energy per sample" in shown, shown
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    shown += read_pty(master)
    os.close(master)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, shown
    assert "fit interrupted after" in shown and "saved the model of iteration" in shown
    assert "Traceback" not in shown
    result = json.loads(out)
    assert result["interrupted"] is True and result["n_iter"] >= 1
    model = truncmix.load(tmp_path / "model.tmx")
    assert model.n_iter_ == result["n_iter"] < 100000
    assert np.unique(model.predict(big)).size == 8 and np.isfinite(model.score(big))
    header = truncmix.io.read_header(tmp_path / "model.tmx")
    assert header["metadata"]["interrupted"] is True
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


# ------------------------------------------------------------ atomic writes
def _writers(tmp_path):
    model = KMeans(3, random_state=0).fit(X)
    from truncmix.plot import plot_fit

    yield "model.tmx", lambda p: truncmix.save(model, p)
    for ext in ("npy", "csv", "tsv.gz", "parquet"):
        yield f"table.{ext}", lambda p: write_array(p, X, columns=["a", "b"])
    yield "fit.png", lambda p: plot_fit(model, X, p, max_points=200)


def test_every_writer_replaces_its_target_atomically(tmp_path, monkeypatch):
    """Interrupted at the last moment (the rename), each writer leaves the old file whole."""
    import matplotlib

    matplotlib.use("Agg")
    replaced = []
    real_replace = os.replace

    def interrupted_replace(src, dst):
        replaced.append((os.path.dirname(os.path.abspath(src)), os.path.basename(src), dst))
        raise KeyboardInterrupt

    for name, write in _writers(tmp_path):
        target = tmp_path / name
        target.write_bytes(b"old contents")
        monkeypatch.setattr(os, "replace", interrupted_replace)
        with pytest.raises(KeyboardInterrupt):
            write(target)
        monkeypatch.setattr(os, "replace", real_replace)
        assert target.read_bytes() == b"old contents", name
        directory, tmp_name, dst = replaced[-1]
        assert os.fspath(dst) == os.fspath(target) and directory == str(tmp_path)
        assert tmp_name.startswith(f".{name}.") and tmp_name.endswith(".tmp")
        assert sorted(os.listdir(tmp_path)) == sorted(
            n for n, _ in list(_writers(tmp_path)) if (tmp_path / n).exists()), os.listdir(tmp_path)
        write(target)  # and without the interruption it is replaced
        assert target.read_bytes() != b"old contents"


def test_ctrl_c_stops_a_whole_selection(monkeypatch):
    from truncmix.estimators._base import TruncatedMixtureMixin
    from truncmix.selection import select_n_components

    fitted = []

    def progress(self, record):
        fitted.append(self.n_components)
        if self.n_components == 3 and record.iteration == 2:
            raise KeyboardInterrupt
        return False

    monkeypatch.setattr(TruncatedMixtureMixin, "_progress", progress)
    with pytest.raises(KeyboardInterrupt):
        select_n_components(X, [2, 3, 4, 5], random_state=0)
    assert 2 in fitted and 3 in fitted and 4 not in fitted
