"""The ``llm-truth`` environment (real features, labels from a known theta) and prompt groups.

Every check here was seen to fail on a mutant (noted at each assert): the recipe without the
1/beta of theta_true, theta_bar fitted to all-ones labels, labels drawn without b or beta, the
``file`` reference fitted without b, logit errors against theta_star instead of theta_true, and a
random instead of a prompt-disjoint holdout. No torch: features files are written by hand with
the sidecar keys of ``adpo features``.
"""

import json

import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import LogisticRegression

from sim import experiment
from sim.dpo import dpo_gradient, dpo_hessian, sigmoid
from sim.envs import gaussian_env, make_env
from sim.metrics import evaluate
from sim.textdata import file_sha256, meta_path, write_jsonl
from sim.validation import as_rng


def _features(tmp_path, N=120, d=4, seed=3, beta=0.5, prompts=20):
    """A labelled .npz (a gaussian draw standing in for LLM features) with an ``adpo
    features`` sidecar: row i comes from line i + 1 of a JSONL whose prompt is i % prompts."""
    g = gaussian_env(N, d, seed=seed, beta=beta)
    path = tmp_path / "f.npz"
    g.with_(theta_star=None, theta_true=None).save(str(path))
    src = tmp_path / "pairs.jsonl"
    write_jsonl([{"prompt": f"p{i % prompts}", "chosen": f"a{i}", "rejected": f"b{i}"}
                 for i in range(N)], src)
    meta_path(path).write_text(json.dumps({"source": str(src), "source_sha256": file_sha256(src),
                                           "row_lines": list(range(1, N + 1))}))
    return str(path), g


def test_recipe_matches_the_papers_steps_with_an_independent_logistic_fit(tmp_path):
    path, g = _features(tmp_path, beta=0.5)
    env = make_env("llm-truth", seed=7, features=path)          # scale "unit", ridge 1
    phi = g.phi / np.linalg.norm(g.phi, axis=1).max()
    np.testing.assert_allclose(env.phi, phi)
    assert np.linalg.norm(env.phi, axis=1).max() == pytest.approx(1.0)
    # Step 2 by scikit-learn: the ridge logistic fit of the file's REAL labels, no intercept
    # (sum loss + ridge/2 ||theta||^2 = C = 1 / ridge).
    lr = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-12, max_iter=10_000)
    theta_bar = lr.fit(phi, g.s).coef_[0]
    # beta (phi^T theta_true - b) = phi^T theta_bar exactly (theta_true = theta_0 + theta_bar /
    # beta). Mutants seen red: theta_true = theta_0 + theta_bar; theta_bar on all-ones labels.
    np.testing.assert_allclose(env.beta * (env.phi @ env.theta_true - env.b), phi @ theta_bar,
                               atol=1e-6)
    # Steps 3-4, literally: the generator after no row draw gives N uniforms, then d normals.
    rng = as_rng(7)
    s = (rng.random(g.N) < sigmoid(phi @ theta_bar)).astype(np.int8)
    assert np.array_equal(env.s, s)
    h = dpo_hessian(theta_bar, phi, np.zeros(g.N), 1.0, ridge=1.0)
    theta_0 = env.theta_true - theta_bar / env.beta
    np.testing.assert_allclose(env.b, phi @ theta_0, atol=1e-6)
    z = np.linalg.cholesky(h).T @ (theta_0 - theta_bar)
    np.testing.assert_allclose(z, rng.standard_normal(g.d), atol=1e-5)  # theta_0 ~ N(., H^-1)
    # Step 5: theta_star is the ridge MLE on the drawn labels.
    grad = dpo_gradient(env.theta_star, env.phi, env.b, env.beta, env.s) + 1e-3 * env.theta_star
    assert np.abs(grad).max() < 1e-8
    assert env.info["reference"] == "recipe" and env.info["n_groups"] == 20


def test_given_theta_draws_labels_from_it_consistency_at_one_in_a_million(tmp_path):
    """With a given theta, the MLE on N = 4000 drawn labels lies within the chi2_d quantile at
    1 - 1e-6 of the Fisher ellipsoid around it (false failure <= 1e-6, asymptotically; fixed
    seed). Mutants seen red (distance > 10^3): labels drawn without b, or without beta."""
    path, g = _features(tmp_path, N=4000, d=3, seed=1, beta=2.0, prompts=50)
    theta = np.array([1.0, -2.0, 0.5])
    np.save(tmp_path / "t.npy", theta)
    env = make_env("llm-truth", seed=2, features=path, theta=str(tmp_path / "t.npy"),
                   scale="none", fit_ridge=0.0)
    assert env.info["reference"] == "file"
    np.testing.assert_array_equal(env.b, g.b)                     # the file's reference kept
    np.testing.assert_array_equal(env.theta_true, theta)
    fisher = dpo_hessian(theta, env.phi, env.b, env.beta)
    delta = env.theta_star - theta
    assert delta @ fisher @ delta <= scipy.stats.chi2.ppf(1 - 1e-6, df=3)


def test_file_reference_fits_the_real_labels_with_the_real_b(tmp_path):
    path, g = _features(tmp_path)
    env = make_env("llm-truth", seed=0, features=path, reference="file", scale="none",
                   theta_bar_ridge=0.5)
    np.testing.assert_array_equal(env.b, g.b)
    # theta_true is the DPO MLE of the FILE's labels with its b (mutant seen red: b = 0).
    grad = dpo_gradient(env.theta_true, g.phi, g.b, g.beta, g.s) + 0.5 * env.theta_true
    assert np.abs(grad).max() < 1e-8
    assert 0 < env.info["real_label_agreement"] < 1


def test_logit_errors_against_theta_true(tmp_path):
    path, _ = _features(tmp_path)
    env = make_env("llm-truth", seed=0, features=path)
    theta = np.full(env.d, 0.3)
    m = evaluate(env, theta)
    e = np.abs(env.phi @ (theta - env.theta_true))     # mutant seen red: against theta_star
    assert m["max_logit_error_true"] == pytest.approx(e.max())
    assert m["mean_logit_error_true"] == pytest.approx(e.mean())
    assert m["max_logit_error"] != pytest.approx(e.max())


def test_runner_holdout_is_prompt_disjoint_for_features_files(tmp_path, monkeypatch):
    path, _ = _features(tmp_path, N=120, prompts=20)
    seen = []
    real = experiment.holdout_data
    monkeypatch.setattr(experiment, "holdout_data", lambda d, s: seen.append(s) or real(d, s))
    for kind, opt in (("file", "path"), ("llm-truth", "features")):
        env = {"kind": kind, opt: path, "rows": 100, "holdout": 0.25}
        rows = experiment.run_cell(env, {"name": "uniform"}, 4, [8, 16])
        data = experiment.build_env(env, 4)
        prompts = data.group
        split = seen[-1]
        # mutant seen red: random_split (a prompt on both sides)
        assert not set(prompts[split.train]) & set(prompts[split.test])
        assert split.test.size >= 25
        assert {r["metric"] for r in rows} >= {"heldout_accuracy", "heldout_max_logit_error"}
    assert any(r["metric"] == "heldout_max_logit_error_true" for r in rows)


def test_errors_name_the_option(tmp_path):
    path, _ = _features(tmp_path, N=20)
    np.save(tmp_path / "bad.npy", np.ones(7))
    np.save(tmp_path / "nan.npy", np.array([np.nan, 0, 0, 0]))
    unlabelled = tmp_path / "u.npz"
    gaussian_env(20, 4, seed=0).with_(s=None, theta_star=None, theta_true=None).save(str(unlabelled))
    for opts, key in [({"features": str(tmp_path / "none.npz")}, "features"),
                      ({"features": path, "theta": str(tmp_path / "bad.npy")}, "theta"),
                      ({"features": path, "theta": str(tmp_path / "nan.npy")}, "theta"),
                      ({"features": path, "theta": str(tmp_path / "t.txt")}, "theta"),
                      ({"features": path, "theta": str(tmp_path / "bad.npy"),
                        "reference": "recipe"}, "reference"),
                      ({"features": path, "rows": 21}, "rows"),
                      ({"features": path, "beta": -1.0}, "beta"),
                      ({"features": str(unlabelled)}, "features")]:
        with pytest.raises(ValueError, match=f"^{key}"):
            make_env("llm-truth", seed=0, **opts)
    # a changed source: the prompts of the rows are no longer known
    src = tmp_path / "pairs.jsonl"
    src.write_text(src.read_text().replace("p1", "q1"))
    with pytest.raises(ValueError, match="changed"):
        make_env("llm-truth", seed=0, features=path)


def test_cli_env_writes_the_known_theta(tmp_path, capsys):
    from adpo.cli import main

    path, _ = _features(tmp_path, N=40)
    out = tmp_path / "e.npz"
    assert main(["env", "--kind", "llm-truth", "--features", path, "--seed", "3",
                 "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "llm-truth" and info["n_groups"] == 20
    with np.load(out) as z:
        assert z["theta_true"].shape == (4,) and z["s"].shape == (40,)
        assert np.array_equal(z["group"], np.arange(40) % 20)  # the prompts, from the sidecar
    assert main(["env", "--kind", "llm-truth", "--features", path, "--seed", "3", "--out",
                 str(tmp_path / "x.npz"), "--theta", str(tmp_path / "missing.npy")]) != 0
    assert "theta" in capsys.readouterr().err
