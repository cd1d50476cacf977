"""Tests of keras_vae.evaluation.report: the report and keras-vae evaluate."""

import json
import os

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import cli
from keras_vae import evaluation


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
    grey = (np.random.default_rng(1).integers(0, 256, size=(20, 4))
            / 255).astype("float32")
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


# -- keras-vae evaluate RUN_DIR -----------------------------------------------


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
                       "--max-examples", "30", "--progress", "0"])
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
