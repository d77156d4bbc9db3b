"""Bad data files through the ``truncmix`` command: one-line errors, or ``--missing drop``."""

import json

import numpy as np

import truncmix
from truncmix.io import read_header

from .test_cli import _one_line_error, run


def _csv_with_gaps(path):
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(c, 0.5, size=(40, 2)) for c in ([0, 0], [5, 5])])
    lines = ["height,width"] + [f"{a!r},{b!r}" for a, b in X.tolist()]
    lines[4] = lines[4].split(",")[0] + ","  # an empty field: row 3 (0-based, after the header)
    lines[8] = "nan," + lines[8].split(",")[1]  # row 7
    lines[9] = lines[9].split(",")[0] + ",inf"  # row 8
    path.write_text("\n".join(lines) + "\n")
    return np.delete(X, [3, 7, 8], axis=0)


def test_missing_values_refused_or_dropped(tmp_path):
    clean = _csv_with_gaps(tmp_path / "gaps.csv")
    _one_line_error(run("fit", "gaps.csv", "-k", 2, cwd=tmp_path, check=False), 2,
                    "gaps.csv", "empty field", "--missing drop")
    proc = run("fit", "gaps.csv", "-k", 2, "--missing", "drop", "-o", "m.tmx", "--json", cwd=tmp_path)
    assert "truncmix: warning: gaps.csv: dropped the rows with 3 missing, NaN or infinite value(s) " \
           "in 3 of 80 rows, first at row 3, column width" in proc.stderr
    result = json.loads(proc.stdout)
    assert result["n_samples"] == 77 and result["n_dropped"] == 3 and result["interrupted"] is False
    model = truncmix.load(tmp_path / "m.tmx")
    ref = truncmix.TruncatedGaussianMixture(2, random_state=0).fit(clean)
    np.testing.assert_array_equal(model.means_, ref.means_)
    assert read_header(tmp_path / "m.tmx")["metadata"]["n_dropped"] == 3
    # NaN (not empty) fields without --missing: named by row and column
    (tmp_path / "nan.csv").write_text("a,b\n1,2\n3,4\n5,nan\n")
    _one_line_error(run("fit", "nan.csv", "-k", 1, cwd=tmp_path, check=False), 2,
                    "nan.csv", "row 2, column b", "--missing drop")
    proc = run("select", "gaps.csv", "-k", "1:2", "--missing", "drop", "--json", cwd=tmp_path)
    assert json.loads(proc.stdout)["best"] == 2
