"""The ``truncmix`` command, run in subprocesses (``python -m truncmix``)."""

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

import truncmix
from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.io import read_data, write_array

ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}


def run(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, "-m", "truncmix", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def mixture_data(n_per, centres, seed):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, [0.8, 1.2], size=(n_per, 2)) for c in centres])
    return X[rng.permutation(len(X))]


def ring(k, radius=8.0):
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return np.c_[radius * np.cos(a), radius * np.sin(a)]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    X = mixture_data(200, ring(3), 0)
    write_array(d / "data.csv", X, columns=["height", "width"])
    write_array(d / "six.npy", mixture_data(200, ring(6), 1))
    return d, X


@pytest.fixture(scope="module")
def fitted(work):
    d, X = work
    proc = run("fit", "data.csv", "-k", 3, "--covariance", "full", "--seed", 0, "-o", "model.tmx",
               "--json", cwd=d)
    return d, X, json.loads(proc.stdout)


def test_fit_writes_a_model_that_matches_the_library(fitted):
    d, X, result = fitted
    assert result["n_components"] == 3 and result["n_samples"] == 600 and result["n_features"] == 2
    model = truncmix.load(d / "model.tmx")
    ref = TruncatedGaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    np.testing.assert_array_equal(model.means_, ref.means_)
    assert result["mean_log_likelihood"] == pytest.approx(ref.score(X), rel=1e-12)
    assert np.all(np.diff(result["free_energy_history"]) >= -1e-9)
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]


def test_fit_kmeans_and_human_output(work):
    d, X = work
    proc = run("fit", "data.csv", "--kmeans", "-k", 3, "-o", "km.tmx", cwd=d)
    assert "KMeans, 3 clusters" in proc.stdout and "wrote km.tmx" in proc.stdout
    km = truncmix.load(d / "km.tmx")
    assert isinstance(km, KMeans)
    ref = KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(km.predict(X), ref.labels_)
    assert km.sigma2_ == pytest.approx(ref.sigma2_, rel=1e-12)


def test_fit_kmeans_algorithm_option(work):
    d, X = work
    run("fit", "data.csv", "--kmeans", "-k", 3, "--algorithm", "lloyd", "-o", "ll.tmx", cwd=d)
    km = truncmix.load(d / "ll.tmx")
    assert km.get_params()["algorithm"] == "lloyd"
    ref = KMeans(3, random_state=0, algorithm="yinyang").fit(X)
    np.testing.assert_array_equal(km.predict(X), ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    _one_line_error(run("fit", "data.csv", "-k", 3, "--algorithm", "lloyd", cwd=d, check=False),
                    2, "--algorithm")


def test_fit_with_neighbourhood_search_matches_the_library(work):
    d, X = work
    args = ["--search", "neighbourhood", "--neighbors", 2, "--random", 1, "--init", "afk-mc2",
            "--coreset", 300]
    run("fit", "data.csv", "--kmeans", "-k", 3, *args, "-o", "nb.tmx", cwd=d)
    km = truncmix.load(d / "nb.tmx")
    ref = KMeans(3, random_state=0, search="neighbourhood", n_neighbors=2, n_random=1,
                 init="afk-mc2", coreset_size=300).fit(X)
    assert km.get_params()["search"] == "neighbourhood"
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    run("fit", "data.csv", "-k", 3, "--active", 2, *args, "-o", "nbg.tmx", cwd=d)
    gm = truncmix.load(d / "nbg.tmx")
    ref = TruncatedGaussianMixture(3, n_active=2, random_state=0, search="neighbourhood",
                                   n_neighbors=2, n_random=1, init="afk-mc2",
                                   coreset_size=300).fit(X)
    np.testing.assert_array_equal(gm.means_, ref.means_)


def test_predict_labels_and_probabilities(fitted):
    d, X, _ = fitted
    run("predict", "model.tmx", "data.csv", "-o", "labels.csv", cwd=d)
    labels, names = read_data(d / "labels.csv")
    assert names == ["label"] and labels.shape == (600, 1)
    expected = truncmix.load(d / "model.tmx").predict(X)
    np.testing.assert_array_equal(labels[:, 0].astype(int), expected)
    run("predict", "model.tmx", "data.csv", "--proba", "-o", "proba.npy", cwd=d)
    proba = np.load(d / "proba.npy")
    assert proba.shape == (600, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), expected)
    out = run("predict", "model.tmx", "data.csv", cwd=d).stdout.split()
    assert out[0] == "label" and len(out) == 601


def test_score_reports_likelihood_and_free_energy(work):
    d, _ = work
    X = mixture_data(200, ring(3, radius=1.5), 2)  # overlapping: posteriors are not 0/1
    np.save(d / "overlap.npy", X)
    run("fit", "overlap.npy", "-k", 3, "--active", 1, "-o", "hard.tmx", cwd=d)
    res = json.loads(run("score", "hard.tmx", "overlap.npy", "--json", cwd=d).stdout)
    model = truncmix.load(d / "hard.tmx")
    assert res["n_samples"] == 600 and res["n_active"] == 1
    assert res["mean_log_likelihood"] == pytest.approx(model.score(X), rel=1e-12)
    # with C' = 1 the free energy is below the likelihood, and on the training
    # data it is the fit's own final free energy
    assert res["free_energy_per_sample"] < res["mean_log_likelihood"]
    assert res["free_energy_per_sample"] == pytest.approx(model.lower_bound_, rel=1e-9)


def test_sample_shape_and_stdout(fitted):
    d, _, _ = fitted
    run("sample", "model.tmx", "-n", 250, "-o", "samples.npy", "--seed", 3, cwd=d)
    S = np.load(d / "samples.npy")
    assert S.shape == (250, 2) and np.isfinite(S).all()
    text = run("sample", "model.tmx", "-n", 7, "--labels", cwd=d).stdout.strip().splitlines()
    assert text[0] == "height,width,component" and len(text) == 8


def test_info_is_readable(fitted):
    d, _, _ = fitted
    out = run("info", "model.tmx", cwd=d).stdout
    assert "format version 1" in out and "3 components, full covariances" in out
    assert "height, width" in out
    info = json.loads(run("info", "model.tmx", "--json", cwd=d).stdout)
    assert info["class"] == "TruncatedGaussianMixture" and info["n_features"] == 2


def test_select_chooses_six_and_writes_curve(work):
    d, _ = work
    proc = run("select", "six.npy", "-k", "3:8", "--plot", "bic.png", "-o", "best.tmx", cwd=d)
    assert "best by bic: k = 6" in proc.stdout
    star = [line for line in proc.stdout.splitlines() if line.rstrip().endswith("*")]
    assert len(star) == 1 and star[0].split()[0] == "6"
    assert os.path.getsize(d / "bic.png") > 5000
    assert truncmix.load(d / "best.tmx").n_components == 6


def test_plot_writes_png(fitted):
    d, _, _ = fitted
    proc = run("plot", "model.tmx", "data.csv", "-o", "fit.png", cwd=d)
    assert "wrote fit.png" in proc.stdout
    with open(d / "fit.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(d / "fit.png") > 20_000


def test_demo_runs_and_writes_its_files(tmp_path):
    proc = run("demo", "--quick", "--out-dir", "out", cwd=tmp_path)
    assert "truncmix full GMM, exact EM" in proc.stdout and "best k =" in proc.stdout
    assert "wrote to" in proc.stdout
    for name in ("digits-full.tmx", "digits-full.png", "digits-kmeans.png", "digits-bic.png",
                 "digits-pca20.npy"):
        assert (tmp_path / "out" / name).stat().st_size > 1000, name
    assert truncmix.load(tmp_path / "out" / "digits-full.tmx").n_features_in_ == 20


def test_readers_through_the_command(work):
    d, X = work
    write_array(d / "data.parquet", X, columns=["height", "width"])
    write_array(d / "extra.tsv.gz", np.c_[np.arange(600), X], columns=["id", "height", "width"])
    a = json.loads(run("fit", "data.parquet", "-k", 3, "-o", "pq.tmx", "--json", cwd=d).stdout)
    b = json.loads(run("fit", "extra.tsv.gz", "--columns", "height,width", "-k", 3, "-o", "tsv.tmx",
                       "--json", cwd=d).stdout)
    assert a["n_features"] == b["n_features"] == 2
    assert a["mean_log_likelihood"] == pytest.approx(b["mean_log_likelihood"], rel=1e-12)


def _one_line_error(proc, code, *words):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("truncmix: error:") and "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0]


def test_input_errors_exit_2_with_one_line(fitted):
    d, _, _ = fitted
    _one_line_error(run("fit", "missing.csv", "-k", 3, cwd=d, check=False), 2, "missing.csv")
    (d / "notmodel.tmx").write_text("hello")
    _one_line_error(run("info", "notmodel.tmx", cwd=d, check=False), 2, "notmodel.tmx")
    _one_line_error(run("fit", "data.csv", "-k", 3, "--search", "neighbourhood", "--neighbors",
                        0, cwd=d, check=False), 2, "--neighbors")
    _one_line_error(run("fit", "data.csv", "-k", 0, cwd=d, check=False), 2, "-k")
    _one_line_error(run("predict", "model.tmx", "six.npy", "--columns", "0", cwd=d, check=False),
                    2, "six.npy", "1 feature")
    _one_line_error(run("fit", "data.csv", "--kmeans", "--covariance", "full", "-k", 3, cwd=d,
                        check=False), 2, "--covariance")
    _one_line_error(run(cwd=d, check=False), 2, "choose a command")


def test_fit_failure_exits_1_and_debug_shows_traceback(tmp_path):
    np.save(tmp_path / "huge.npy", np.random.default_rng(0).normal(size=(60, 2)) * 1e200)
    _one_line_error(run("fit", "huge.npy", "-k", 3, cwd=tmp_path, check=False), 1, "huge.npy",
                    "fit failed")
    proc = run("fit", "huge.npy", "-k", 3, "--debug", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert not (tmp_path / "huge.tmx").exists()


def _run_on_tty(args, cwd):
    """Run with stderr on a pseudo-terminal; return (exit code, what the terminal showed)."""
    master, slave = pty.openpty()
    # a terminal 100 columns wide (a fresh pty has size 0 x 0)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "truncmix", *map(str, args)], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown = read_pty(master)
    os.close(master)
    return proc.wait(timeout=120), shown


def read_pty(master, until=(), timeout=120):
    """What a pseudo-terminal shows until one of the strings ``until`` appears, its writer
    exits, or ``timeout``."""
    text, deadline = b"", time.monotonic() + timeout
    while not any(u.encode() in text for u in until):
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        text += data
    return text.decode("utf-8", "replace")


def test_progress_on_a_terminal_only(work):
    d, _ = work
    code, shown = _run_on_tty(["fit", "data.csv", "-k", 3, "--tol", 0, "--max-iter", 5, "-o", "p.tmx"], d)
    assert code == 0 and "F/N=" in shown and "5/5" in shown
    code, shown = _run_on_tty(["fit", "data.csv", "-k", 3, "--max-iter", 5, "-q", "-o", "p.tmx"], d)
    assert code == 0 and "F/N=" not in shown
    # not a terminal: no progress on stderr
    proc = run("fit", "data.csv", "-k", 3, "--tol", 0, "--max-iter", 5, "-o", "p.tmx", cwd=d)
    assert "F/N=" not in proc.stderr and "iteration 1:" not in proc.stderr
    assert "did not converge" in proc.stderr  # warnings still shown, one line each


def test_help_lists_every_command(tmp_path):
    out = run("--help", cwd=tmp_path).stdout
    for cmd in ("fit", "predict", "score", "sample", "info", "select", "plot", "demo"):
        assert cmd in out
