"""Clustering quality on the public data sets of ``../shared/data``, beside scikit-learn.

For each data set of the manifest: C = number of reference clusters, 20% of the
rows held out (fixed seed), every model fitted on the other 80% with
``n_init=3`` and the same ``random_state`` in both libraries, each library with
its own defaults otherwise (as a user would run them). Reported per model:
adjusted Rand index of the training labels against the reference (noise rows,
label -1, left out), held-out mean log-likelihood, free energy (per point, as
``lower_bound_``) and fit time.

Pairs (truncmix model -> the scikit-learn model it is judged against):

- ``KMeans`` -> ``sklearn.cluster.KMeans``;
- k-means-C' (``TruncatedGaussianMixture(n_active=3, "isotropic", weights="equal")``)
  -> ``sklearn.cluster.KMeans`` (scikit-learn has no soft k-means);
- ``TruncatedGaussianMixture("diag")`` / ``("full")`` -> ``GaussianMixture`` of the same type.

scikit-learn's ``KMeans`` has no likelihood; its held-out log-likelihood and
free energy are those of the k-means model truncmix uses (equal weights, one
isotropic variance ``inertia / (N D)``), computed here. Target (issue 3): on every
data set, truncmix's ARI >= scikit-learn's - 0.01 for the matching model.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.special import logsumexp
from sklearn.cluster import KMeans as SkKMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from truncmix import KMeans, TruncatedGaussianMixture

from .. import data

ARI_SLACK = 0.01
LOG_2PI = np.log(2 * np.pi)


def kmeans_model_scores(centres, inertia, X_train, X_test):
    """Held-out log-likelihood and free energy per point of the k-means model of fitted centres.

    The model: equal weights 1/C, one isotropic variance ``inertia / (N D)``.

    Returns
    -------
    heldout : float
        Mean ``log p(x)`` over ``X_test``.
    free_energy : float
        ``-log C - (D/2) log(2 pi e sigma2)``, the hard-assignment free energy per
        training point.
    """
    N, D = X_train.shape
    C = centres.shape[0]
    sigma2 = inertia / (N * D)
    d2 = ((X_test[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    lj = -np.log(C) - 0.5 * D * (LOG_2PI + np.log(sigma2)) - d2 / (2 * sigma2)
    heldout = float(logsumexp(lj, axis=1).mean())
    free_energy = float(-np.log(C) - 0.5 * D * (LOG_2PI + 1 + np.log(sigma2)))
    return heldout, free_energy


def models(C, n_init, seed):
    """``(pair name, library, fit function)`` triples; a fit returns the metric dict.

    Each fit function takes ``(X_train, X_test)`` and returns
    ``{"labels", "heldout_ll", "free_energy", "n_iter"}``.
    """
    def t_kmeans(Xtr, Xte):
        est = KMeans(C, n_init=n_init, random_state=seed).fit(Xtr)
        return {"labels": est.labels_, "heldout_ll": est.score(Xte),
                "free_energy": est.lower_bound_, "n_iter": est.n_iter_}

    def t_kmeans_c3(Xtr, Xte):
        est = TruncatedGaussianMixture(C, n_active=min(3, C), covariance_type="isotropic",
                                       weights="equal", n_init=n_init, random_state=seed)
        labels = est.fit_predict(Xtr)
        return {"labels": labels, "heldout_ll": est.score(Xte),
                "free_energy": est.lower_bound_, "n_iter": est.n_iter_}

    def t_gmm(ct):
        def fit(Xtr, Xte):
            # init="k-means" matches GaussianMixture's default start (a k-means fit)
            est = TruncatedGaussianMixture(C, covariance_type=ct, n_init=n_init,
                                           init="k-means", random_state=seed)
            labels = est.fit_predict(Xtr)
            return {"labels": labels, "heldout_ll": est.score(Xte),
                    "free_energy": est.lower_bound_, "n_iter": est.n_iter_}
        return fit

    def s_kmeans(Xtr, Xte):
        est = SkKMeans(C, n_init=n_init, random_state=seed).fit(Xtr)
        ll, fe = kmeans_model_scores(est.cluster_centers_, est.inertia_, Xtr, Xte)
        return {"labels": est.labels_, "heldout_ll": ll, "free_energy": fe,
                "n_iter": est.n_iter_}

    def s_gmm(ct):
        def fit(Xtr, Xte):
            est = GaussianMixture(C, covariance_type=ct, n_init=n_init, random_state=seed)
            labels = est.fit_predict(Xtr)
            return {"labels": labels, "heldout_ll": est.score(Xte),
                    "free_energy": est.lower_bound_, "n_iter": est.n_iter_}
        return fit

    return [
        ("kmeans", "truncmix KMeans", t_kmeans),
        ("kmeans", "sklearn KMeans", s_kmeans),
        ("kmeans-C'3", "truncmix k-means-C'3 (isotropic, equal weights)", t_kmeans_c3),
        ("kmeans-C'3", "sklearn KMeans", None),  # same fit as above, reused
        ("gmm-diag", "truncmix GMM diag", t_gmm("diag")),
        ("gmm-diag", "sklearn GaussianMixture diag", s_gmm("diag")),
        ("gmm-full", "truncmix GMM full", t_gmm("full")),
        ("gmm-full", "sklearn GaussianMixture full", s_gmm("full")),
    ]


def run(params, ctx):
    """Run the quality benchmark over the manifest's data sets.

    Parameters
    ----------
    params : dict
        ``max_n`` (skip larger data sets; None keeps all), ``n_init``, ``seed``,
        ``test_fraction``.
    ctx : benchmarks.suites.Context
        ``ctx.data_dir`` is the data folder.

    Returns
    -------
    dict
        With ``skipped`` set (and nothing measured) when the folder or its
        manifest is absent.
    """
    data_dir = ctx.data_dir or data.default_data_dir()
    manifest = data.load_manifest(data_dir)
    if manifest is None:
        msg = f"no data folder with a manifest.json at {data_dir}; quality suite skipped"
        ctx.log("  " + msg)
        return {"name": "quality", "params": params, "skipped": msg, "cases": [],
                "targets": [], "tables": []}
    cases, targets, rows, skipped, seed_rows = [], [], [], [], []
    for entry in manifest["datasets"]:
        name = entry["name"]
        if params["max_n"] is not None and entry["N"] > params["max_n"]:
            skipped.append(f"{name} (N={entry['N']:,} > {params['max_n']:,} in this suite)")
            continue
        try:
            X, y = data.load_dataset(data_dir, entry)
        except (OSError, ValueError, StopIteration) as exc:
            skipped.append(f"{name} (could not load: {exc})")
            continue
        C = int(np.unique(y[y >= 0]).size)
        rng = np.random.default_rng(params["seed"])
        perm = rng.permutation(X.shape[0])
        n_test = int(round(params["test_fraction"] * X.shape[0]))
        test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        Xtr, Xte, ytr = X[train], X[test], y[train]
        keep = ytr >= 0
        ctx.log(f"  quality {name}: N={X.shape[0]:,} D={X.shape[1]} C={C}")
        results = {}
        for pair, lib, fit in models(C, params["n_init"], params["seed"]):
            if fit is None:  # the same scikit-learn fit as the "kmeans" pair
                res = dict(results[("kmeans", lib)])
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    res = fit(Xtr, Xte)
                    res["seconds"] = time.perf_counter() - t0
                res["ari"] = float(adjusted_rand_score(ytr[keep], np.asarray(res["labels"])[keep]))
                res.pop("labels")
                res = {k: (float(v) if isinstance(v, (np.floating, float)) else v)
                       for k, v in res.items()}
                res["n_iter"] = int(res["n_iter"])
            results[(pair, lib)] = res
            ctx.log(f"    {lib:<48s} ARI {res['ari']:.4f}  held-out LL {res['heldout_ll']:.4f}  "
                    f"F {res['free_energy']:.4f}  {res['seconds']:.2f} s")
        for pair in dict.fromkeys(p for p, _ in results):
            (t_lib, t), (s_lib, s) = [(lib, r) for (p, lib), r in results.items() if p == pair]
            ok = t["ari"] >= s["ari"] - ARI_SLACK
            targets.append({"benchmark": "quality", "case": f"{name} {pair}",
                            "target": f"ARI truncmix >= ARI sklearn - {ARI_SLACK}",
                            "measured": t["ari"] - s["ari"], "limit": -ARI_SLACK, "pass": bool(ok)})
            rows.append([name, pair, f"{t['ari']:.4f}", f"{s['ari']:.4f}",
                         f"{t['heldout_ll']:.4f}", f"{s['heldout_ll']:.4f}",
                         f"{t['free_energy']:.4f}", f"{s['free_energy']:.4f}",
                         f"{t['seconds']:.2f}", f"{s['seconds']:.2f}" + (" (shared)" if pair == "kmeans-C'3" else ""),
                         "PASS" if ok else "FAIL"])
        # the seed decides which local optimum each library's seeding finds; the
        # same comparison averaged over several seeds measures the methods
        seeds = params.get("mean_over_seeds") or []
        per_seed = {}
        for seed in seeds:
            for pair, lib, fit in models(C, params["n_init"], seed):
                if fit is None:
                    per_seed.setdefault((pair, lib), []).append(per_seed[("kmeans", lib)][-1])
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    labels = np.asarray(fit(Xtr, Xte)["labels"])
                per_seed.setdefault((pair, lib), []).append(
                    float(adjusted_rand_score(ytr[keep], labels[keep])))
        if seeds:
            for pair in dict.fromkeys(p for p, _ in per_seed):
                (t_lib, t_aris), (s_lib, s_aris) = [(lib, a) for (p, lib), a in per_seed.items()
                                                    if p == pair]
                diff = float(np.mean(t_aris) - np.mean(s_aris))
                targets.append({"benchmark": "quality",
                                "case": f"{name} {pair} (mean of seeds {seeds[0]}-{seeds[-1]})",
                                "target": f"mean ARI truncmix >= mean ARI sklearn - {ARI_SLACK}",
                                "measured": diff, "limit": -ARI_SLACK,
                                "pass": bool(diff >= -ARI_SLACK)})
                seed_rows.append([name, pair, f"{np.mean(t_aris):.4f}", f"{np.mean(s_aris):.4f}",
                                  f"{diff:+.4f}", " ".join(f"{a:.3f}" for a in t_aris),
                                  " ".join(f"{a:.3f}" for a in s_aris),
                                  "PASS" if diff >= -ARI_SLACK else "FAIL"])
        cases.append({"dataset": name, "N": int(X.shape[0]), "D": int(X.shape[1]), "C": C,
                      "ari_per_seed": {f"{p} | {lib}": a for (p, lib), a in per_seed.items()},
                      "n_train": int(train.size), "n_test": int(test.size),
                      "n_noise_train": int((~keep).sum()),
                      "results": [{"pair": p, "library": lib, **r} for (p, lib), r in results.items()]})
    table = {
        "title": f"Quality on the public data sets (n_init={params['n_init']}, random_state={params['seed']}, "
                 f"{int(params['test_fraction'] * 100)}% held out; per-point log-likelihood and free energy)",
        "columns": ["data set", "model", "ARI truncmix", "ARI sklearn", "held-out LL truncmix",
                    "held-out LL sklearn", "F truncmix", "F sklearn", "s truncmix", "s sklearn",
                    "ARI >= sk - 0.01"],
        "rows": rows,
    }
    tables = [table]
    if seed_rows:
        seeds = params["mean_over_seeds"]
        tables.append({
            "title": f"ARI averaged over random_state = {', '.join(map(str, seeds))} "
                     f"(n_init={params['n_init']} each; same seeds in both libraries)",
            "columns": ["data set", "model", "mean ARI truncmix", "mean ARI sklearn", "difference",
                        "truncmix per seed", "sklearn per seed", "mean >= sk - 0.01"],
            "rows": seed_rows,
        })
    out = {"name": "quality", "params": params, "data_dir": str(data_dir), "cases": cases,
           "targets": targets, "tables": tables}
    if skipped:
        out["skipped_datasets"] = skipped
        table["note"] = "Skipped: " + "; ".join(skipped)
    return out
