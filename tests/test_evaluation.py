"""keras_vae.evaluation: IWAE estimates, the report, the CLI, refinement.

Oracles: Jensen's inequality draw by draw (the IWAE bound with K = 1 is the
ELBO of that draw, and never below the ELBO of the same draws); the IWAE
bound's expectation growing with K (Burda et al. 2016, theorem 1); the
VAE's own test-step ELBO (a separate code path with the closed-form KL) as
the expectation of the K = 1 bound; numpy formulas for the activity and
per-dimension KL. The linear-Gaussian closed forms are in test_ppca.py.
"""

import json
import os

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import cli
from keras_vae import evaluation
from keras_vae.evaluation import importance

rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def binary_model():
    """A small Bernoulli VAE fitted briefly to 12-pixel binary data."""
    x = (rng.random((400, 12)) < np.linspace(0.1, 0.9, 12)).astype("float32")
    keras.utils.set_random_seed(0)
    vae = kv.build_mlp_vae((12,), 3, hidden_units=(16,), seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x, epochs=5, batch_size=50, verbose=0)
    return vae, x[:60]


# -- the IWAE bound ----------------------------------------------------------
def test_k1_bound_is_the_elbo_of_the_same_draw(binary_model):
    vae, x = binary_model
    result = evaluation.iwae_bound(vae, x, 1, seed=5)
    np.testing.assert_allclose(result.iwae, result.elbo, atol=1e-9)


def test_bound_is_never_below_the_elbo_of_the_same_draws(binary_model):
    vae, x = binary_model
    for k in (2, 7, 50):
        result = evaluation.iwae_bound(vae, x, k, seed=k)
        assert np.all(result.iwae >= result.elbo - 1e-9)


def test_k1_bound_averages_to_the_test_step_elbo(binary_model):
    # E[L_1] = ELBO; the VAE's test step estimates it with the closed-form
    # KL, a separate code path.
    vae, x = binary_model
    draws = np.stack([evaluation.iwae_bound(vae, x, 1, seed=s).iwae
                      for s in range(40)])
    reference = vae.elbo(x, num_samples=2000)
    diff = draws.mean(axis=0) - reference
    stderr = draws.std(axis=0).mean() / np.sqrt(40 * len(x))
    assert abs(diff.mean()) < 4 * stderr + 0.01


def test_bound_grows_with_k_in_expectation(binary_model):
    vae, x = binary_model
    # Shift the encoder's means so that q is a poor proposal and the gap
    # between the ELBO and log p(x) is wide enough to watch it close.
    layer = vae.encoder.get_layer("z_mean")
    saved = layer.get_weights()
    layer.set_weights([saved[0], saved[1] + 1.5])
    try:
        means = [np.mean([
            evaluation.iwae_bound(vae, x, k, seed=s).iwae.mean()
            for s in range(4)]) for k in (1, 5, 50, 500)]
        estimate = evaluation.log_likelihood(vae, x, num_samples=3000,
                                             verbose=0)
    finally:
        layer.set_weights(saved)
    assert all(b > a + 0.01 for a, b in zip(means, means[1:])), means
    assert estimate.mean >= means[-1] - 0.01
    # the ELBO from the same draws sits below, by the gap
    assert estimate.elbo.mean() < estimate.mean - 0.5


def test_memory_budget_splits_large_batches(binary_model):
    # A batch far larger than the budget allows is split, not refused, and
    # the estimate agrees with the default plan within Monte-Carlo error.
    vae, x = binary_model
    default = evaluation.log_likelihood(vae, x, num_samples=300, verbose=0)
    tiny = evaluation.log_likelihood(vae, x, num_samples=300,
                                     batch_size=10**9, max_values=500,
                                     verbose=0)
    # The decoder 3 -> 16 -> 12: its widest layer (16 floats per draw)
    # sets the budget, so 500 values hold 31 draws.
    assert importance._plan(vae, len(x), 300, 10**9, None, 500) == (1, 31)
    assert abs(default.mean - tiny.mean) < 0.05
    np.testing.assert_allclose(default.values, tiny.values, atol=0.3)


def test_memory_budget_counts_the_widest_decoder_layer():
    # keras.io conv decoder: its last transposed convolution's 28 x 28 x 32
    # feature map, not the 784 Bernoulli logits, is what fills memory.
    vae = kv.build_conv_vae((28, 28, 1), 2, likelihood="bernoulli", seed=0)
    assert importance._values_per_draw(vae) == 28 * 28 * 32
    assert importance._plan(vae, 10000, 5000, None, None, 2**24) == (
        1, 2**24 // (28 * 28 * 32))


def test_stderr_is_the_standard_error_across_examples(binary_model):
    vae, x = binary_model
    result = evaluation.log_likelihood(vae, x, num_samples=10, verbose=0)
    v = result.values
    manual = np.sqrt(np.sum((v - v.mean()) ** 2) / (len(v) - 1) / len(v))
    assert result.stderr == pytest.approx(manual, rel=1e-9)


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize("k", [0, -3, 2.5, "10", True, None])
def test_bad_num_samples(binary_model, k):
    vae, x = binary_model
    with pytest.raises(ValueError, match="num_samples.*int >= 1"):
        evaluation.log_likelihood(vae, x, num_samples=k)
    with pytest.raises(ValueError, match="`k`"):
        evaluation.iwae_bound(vae, x, k)


def test_data_the_model_cannot_score(binary_model):
    vae, x = binary_model
    with pytest.raises(ValueError, match="cannot score.*Bernoulli.*\\[0"):
        evaluation.log_likelihood(vae, x * 3.0, num_samples=2)
    with pytest.raises(ValueError, match="cannot score.*shape"):
        evaluation.report(vae, x[:, :5], num_samples=2)
    with pytest.raises(ValueError, match="keras_vae.VAE"):
        evaluation.log_likelihood(keras.Sequential(), x, num_samples=2)


def test_non_finite_log_probabilities_are_reported():
    vae = kv.build_mlp_vae((4,), 2, hidden_units=(4,),
                           likelihood=kv.likelihoods.Gaussian(1.0))
    layer = vae.decoder.get_layer("params")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, np.nan)])
    with pytest.raises(ValueError, match="non-finite.*cannot score"):
        evaluation.log_likelihood(vae, np.zeros((3, 4), "float32"),
                                  num_samples=2, verbose=0)


@pytest.mark.parametrize("steps", [0, -1, 2.5, None])
def test_refine_and_map_need_positive_steps(binary_model, steps):
    vae, x = binary_model
    with pytest.raises(ValueError, match="steps.*int > 0"):
        evaluation.refine(vae, x, steps=steps)
    with pytest.raises(ValueError, match="steps.*int > 0"):
        evaluation.map_estimate(vae, x, steps=steps)


def test_refine_needs_a_positive_learning_rate(binary_model):
    vae, x = binary_model
    with pytest.raises(ValueError, match="learning_rate"):
        evaluation.refine(vae, x, steps=3, learning_rate=0.0)


def test_proposal_shape_is_checked(binary_model):
    vae, x = binary_model
    with pytest.raises(ValueError, match="proposal.*shape"):
        evaluation.log_likelihood(
            vae, x, num_samples=2,
            proposal=(np.zeros((2, 3)), np.zeros((2, 3))))


# -- refinement ---------------------------------------------------------------
def test_refine_raises_the_elbo_and_keeps_the_decoder(binary_model):
    vae, x = binary_model
    before = [w.copy() for w in vae.decoder.get_weights()]
    result = evaluation.refine(vae, x[:20], steps=100, learning_rate=3e-2,
                               num_samples=4, eval_samples=500)
    assert result.elbo_refined.mean() > result.elbo_initial.mean()
    # never above log p(x) (up to Monte-Carlo error)
    log_px = evaluation.log_likelihood(vae, x[:20], num_samples=3000,
                                       verbose=0)
    assert result.elbo_refined.mean() <= log_px.mean + 0.02
    for a, b in zip(before, vae.decoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert result.seconds_per_example > 0


# -- the report ----------------------------------------------------------------
def _collapsed_model():
    """Units 1 and 2 of the encoder's z_mean are constant: inactive."""
    vae = kv.build_mlp_vae((12,), 3, hidden_units=(16,), seed=0)
    layer = vae.encoder.get_layer("z_mean")
    kernel, bias = layer.get_weights()
    kernel[:, 1:] = 0.0
    kernel[:, 0] *= 20.0
    bias[1:] = [0.3, -0.2]
    layer.set_weights([kernel, bias])
    return vae


def test_report_active_units_and_kl_per_dim(binary_model):
    _, x = binary_model
    vae = _collapsed_model()
    result = evaluation.report(vae, x, num_samples=50, protocol="toy",
                               verbose=0)
    z_mean, z_log_var = vae.encoder(x)
    z_mean, z_log_var = np.asarray(z_mean), np.asarray(z_log_var)
    activity = np.mean((z_mean - z_mean.mean(0)) ** 2, axis=0)
    np.testing.assert_allclose(result["active_units"]["activity"], activity,
                               rtol=1e-5, atol=1e-12)
    assert result["active_units"]["count"] == 1
    kl = 0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var)
    np.testing.assert_allclose(result["kl_per_dim"], kl.mean(0), rtol=1e-5)
    assert result["kl_loss"]["mean"] == pytest.approx(kl.sum(1).mean(),
                                                      rel=1e-5)
    assert any("Posterior collapse: 2 of 3" in w for w in result["warnings"])
    # the parts add up, and per-dimension units follow from the total
    assert result["elbo"]["mean"] == pytest.approx(
        -result["reconstruction_loss"]["mean"] - result["kl_loss"]["mean"])
    assert result["gap"]["mean"] == pytest.approx(
        result["log_likelihood"]["mean"] - result["elbo"]["mean"])
    assert result["bits_per_dim"] == pytest.approx(
        -result["log_likelihood"]["mean"] / 12 / np.log(2))
    text = evaluation.format_report(result)
    for needle in ("log p(x)", "K = 50", "toy", "active units",
                   "1 of 3", "WARNING: Posterior collapse", "bits"):
        assert needle in text
    json.dumps(result)  # serialisable


def test_report_flags_bce_on_grey_data_and_8bit_densities():
    grey = (rng.integers(0, 256, size=(20, 4)) / 255).astype("float32")
    bern = kv.build_mlp_vae((4,), 2, hidden_units=(4,))
    result = evaluation.report(bern, grey, num_samples=5, verbose=0)
    assert any("not a normalised likelihood" in w
               for w in result["warnings"])
    gauss = kv.build_mlp_vae((4,), 2, hidden_units=(4,),
                             likelihood=kv.likelihoods.Gaussian(0.1))
    result = evaluation.report(gauss, grey, num_samples=5, verbose=0)
    assert result["bits_per_dim_8bit"] == pytest.approx(
        result["bits_per_dim"] + 8.0)


def test_write_report_keeps_old_files_on_failure(binary_model, tmp_path):
    vae, x = binary_model
    result = evaluation.report(vae, x[:10], num_samples=5, verbose=0)
    json_path, txt_path = evaluation.write_report(result, str(tmp_path))
    before = open(json_path).read(), open(txt_path).read()
    broken = dict(result, extra=object())
    with pytest.raises(TypeError):
        evaluation.write_report(broken, str(tmp_path))
    assert (open(json_path).read(), open(txt_path).read()) == before
    assert sorted(os.listdir(tmp_path)) == ["evaluation.json",
                                            "evaluation.txt"]


# -- keras-vae evaluate RUN_DIR --------------------------------------------------
@pytest.fixture()
def run_dir(tmp_path, data_dir):
    keras.utils.set_random_seed(0)
    vae = kv.build_mlp_vae((28, 28, 1), 2, hidden_units=(8,), seed=0)
    path = tmp_path / "run"
    path.mkdir()
    vae.save(path / "model.keras")
    (path / "metrics.json").write_text(json.dumps({
        "dataset": "mnist", "binarize": "dynamic",
        "protocol": "MNIST, dynamic binarization (test: seed 0)",
    }))
    (path / "config.json").write_text(json.dumps({"seed": 0}))
    return path


def test_cli_evaluate_writes_results(run_dir, capsys):
    status = cli.main(["evaluate", str(run_dir), "--num-samples", "8",
                       "--max-examples", "30", "--verbose", "0"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "log p(x)" in out and "K = 8" in out
    saved = json.loads((run_dir / "evaluation.json").read_text())
    assert saved["num_examples"] == 30 and saved["num_samples"] == 8
    assert "dynamic binarization" in saved["protocol"]
    assert "first 30 test examples" in saved["protocol"]
    assert (run_dir / "evaluation.txt").read_text().startswith(
        "keras_vae evaluation")


def test_evaluate_run_errors_leave_results_intact(run_dir, capsys):
    evaluation.evaluate_run(str(run_dir), num_samples=2, max_examples=5,
                            verbose=0)
    before = (run_dir / "evaluation.json").read_text()
    # K checked first
    with pytest.raises(ValueError, match="num_samples"):
        evaluation.evaluate_run(str(run_dir), num_samples=0)
    # the data protocol now loads Frey Face (28 x 20): the model cannot
    # score it, and the earlier results stay
    (run_dir / "metrics.json").write_text(json.dumps(
        {"dataset": "frey_face", "binarize": None}))
    with pytest.raises(ValueError, match="cannot score.*shape"):
        evaluation.evaluate_run(str(run_dir), num_samples=2, verbose=0)
    assert (run_dir / "evaluation.json").read_text() == before
    # a metrics.json without the protocol
    (run_dir / "metrics.json").write_text(json.dumps({"test": {}}))
    assert cli.main(["evaluate", str(run_dir), "--num-samples", "2"]) == 2
    assert "lacks ['dataset', 'binarize']" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluation.evaluate_run(str(run_dir / "nope"))
    os.remove(run_dir / "model.keras")
    with pytest.raises(FileNotFoundError, match="model.keras"):
        evaluation.evaluate_run(str(run_dir))
    assert (run_dir / "evaluation.json").read_text() == before


def test_cli_rejects_bad_k_before_any_work(run_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(run_dir), "--num-samples", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer, received '0'" in (
        capsys.readouterr().err)
    assert not (run_dir / "evaluation.json").exists()
