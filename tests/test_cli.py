"""`keras-vae train`: the run directory, its figures, and bad input."""

import json
import os

import numpy as np
import pytest
from matplotlib import image as mpimg

from keras_vae import cli


def _png_has_content(path):
    img = mpimg.imread(path)
    return img.ndim == 3 and min(img.shape[:2]) > 50 and img.std() > 0.05


@pytest.mark.slow
def test_train_writes_model_metrics_and_figures(tmp_path, data_dir):
    run = tmp_path / "run"
    status = cli.main([
        "train", "--dataset", "mnist", "--latent-dim", "2",
        "--hidden-units", "64", "--epochs", "2",
        "--max-train-examples", "2000", "--out", str(run), "--progress", "0",
    ])
    assert status == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["binarize"] == "dynamic"
    assert "dynamic binarization" in metrics["protocol"]
    # The thread pools the run trained with are on record (this test's
    # process had started TensorFlow already, so "auto" changed nothing).
    threads_used = metrics["cpu_threads"]
    assert threads_used["setting"] == "auto"
    assert threads_used["intra_op"] >= 0 and threads_used["inter_op"] >= 0
    test = metrics["test"]
    assert test["elbo"] == pytest.approx(
        -(test["reconstruction_loss"] + test["kl_loss"]), rel=1e-4)
    # Better than the untrained model's ~543 nats (784 * log 2), far from 0.
    assert -400 < test["elbo"] < -100
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_elbo" in history
    for name in ("reconstructions", "samples", "loss_curves",
                 "latent_scatter", "manifold"):
        assert _png_has_content(run / "figures" / f"{name}.png"), name
    import keras
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.latent_dim == 2
    # A finished run is not overwritten by accident.
    status = cli.main(["train", "--epochs", "1", "--out", str(run)])
    assert status == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--likelihood", "bernouli"], "Unknown likelihood 'bernouli'"),
        (["--dataset", "nosuch.npz"], "nosuch.npz"),
        (["--dataset", "mnist", "--likelihood", "bernoulli",
          "--binarize", "none", "--arch", "conv", "--latent-dim", "2",
          "--learning-rate", "-1"], "learning_rate"),
    ],
)
def test_bad_input_fails_before_writing(tmp_path, capsys, argv, message,
                                        data_dir):
    run = tmp_path / "run"
    status = cli.main(["train", "--out", str(run), *argv])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_data_outside_support_fails_before_writing(tmp_path, capsys):
    data = tmp_path / "grey.npy"
    np.save(data, np.full((20, 4, 4), 3.0, "float32"))
    run = tmp_path / "run"
    status = cli.main(["train", "--dataset", str(data), "--out", str(run),
                       "--binarize", "none", "--hidden-units", "8",
                       "--latent-dim", "2"])
    assert status == 2
    err = capsys.readouterr().err
    assert "binarize" in err and "continuous_bernoulli" in err
    assert not run.exists()


def test_nan_data_fails_before_writing(tmp_path, capsys):
    x = np.random.default_rng(0).random((20, 16)).astype("float32")
    x[3, 5] = np.nan
    data = tmp_path / "nan.npy"
    np.save(data, x)
    run = tmp_path / "run"
    status = cli.main(["train", "--dataset", str(data), "--out", str(run),
                       "--likelihood", "gaussian", "--latent-dim", "2"])
    assert status == 2
    assert "NaN" in capsys.readouterr().err
    assert not os.path.exists(run)


def test_argument_types_are_checked(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", "x", "--latent-dim", "0"])
    assert "positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("prior, components, words, posterior", [
    ("vamp", 20, "VampPrior, 20 pseudo-inputs", "diagonal"),
    ("mog", 4, "learned mixture of 4 diagonal Gaussians", "full"),
    ("mog", 3, "learned mixture of 3 diagonal Gaussians", "iaf"),
])
def test_train_with_a_learned_prior(tmp_path, data_dir, prior, components,
                                    words, posterior):
    import keras

    import keras_vae as kv

    run = tmp_path / "run"
    argv = [
        "train", "--dataset", "mnist", "--latent-dim", "2",
        "--hidden-units", "32", "--epochs", "1", "--prior", prior,
        "--prior-components", str(components), "--posterior", posterior,
        "--max-train-examples", "400", "--out", str(run), "--progress", "0",
    ]
    if posterior == "iaf":
        argv += ["--flows", "3"]
    if prior == "vamp":
        # Without warm-up the run warns (VampPrior runs often collapse).
        with pytest.warns(UserWarning, match="--warmup-steps"):
            cli.main(argv + ["--out", str(tmp_path / "no_warmup")])
        argv += ["--warmup-steps", "4"]
    status = cli.main(argv)
    assert status == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["prior"], config["prior_components"],
            config["posterior"]) == (prior, components, posterior)
    assert config["flows"] == (3 if posterior == "iaf" else 0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["prior"] == words
    assert metrics["posterior"] == {
        "diagonal": "diagonal Gaussian", "full": "full-covariance Gaussian",
        "iaf": "inverse autoregressive flow: diagonal Gaussian through 3 "
               "affine MADE flows (200-200 hidden, context 100)"}[posterior]
    assert np.isfinite(metrics["test"]["elbo"])
    for name in ("reconstructions", "samples", "loss_curves",
                 "latent_scatter", "manifold"):
        assert _png_has_content(run / "figures" / f"{name}.png"), name
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    cls = {"vamp": kv.priors.VampPrior, "mog": kv.priors.MixtureOfGaussians}
    assert isinstance(model.prior, cls[prior])
    assert type(model.posterior) is type(kv.posteriors.get(posterior))
    if posterior == "iaf":
        assert model.posterior.num_flows == 3
    if prior == "vamp":
        # The pseudo-inputs started at training examples and were trained.
        u = model.prior.pseudo_inputs.numpy()
        assert u.shape == (20, 28, 28, 1)
        assert np.isfinite(u).all()


def test_train_with_two_stochastic_layers(tmp_path, data_dir):
    import keras

    import keras_vae as kv

    run = tmp_path / "run"
    status = cli.main([
        "train", "--dataset", "mnist", "--stochastic-layers", "2",
        "--latent-dims", "6,3", "--hidden-units", "32", "--epochs", "1",
        "--objective", "iwae", "--num-samples", "2",
        "--max-train-examples", "300", "--out", str(run), "--progress", "0",
    ])
    assert status == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["stochastic_layers"], config["latent_dims"]) == (2, [6, 3])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["architecture"].startswith(
        "2 stochastic layers (6, 3): MLP 784-32-6, then 100-100")
    assert metrics["prior"] == "hierarchy p(z2) = N(0, I), Gaussian p(z1|z2)"
    assert metrics["posterior"].startswith("diagonal Gaussians q(z1|x) "
                                           "q(z2|z1)")
    assert np.isfinite(metrics["test"]["elbo"])
    for name in ("reconstructions", "samples", "loss_curves"):
        assert _png_has_content(run / "figures" / f"{name}.png"), name
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert isinstance(model.prior, kv.priors.HierarchicalPrior)
    assert model.posterior.latent_dims == (6, 3) and model.latent_dim == 9
    # The report of `keras-vae evaluate` splits the KL by layer.
    assert cli.main(["evaluate", str(run), "--num-samples", "20",
                     "--max-examples", "50"]) == 0
    report = json.loads((run / "evaluation.json").read_text())
    assert [l["latent_dim"] for l in report["stochastic_layers"]["layers"]
            ] == [6, 3]


@pytest.mark.parametrize("argv, message", [
    (["--stochastic-layers", "2", "--prior", "mog"],
     "do not combine with --stochastic-layers > 1"),
    (["--stochastic-layers", "2", "--posterior", "iaf"],
     "do not combine with --stochastic-layers > 1"),
    (["--stochastic-layers", "3"], "needs --latent-dims with 3 sizes"),
    (["--stochastic-layers", "2", "--latent-dims", "3,6"], "must decrease"),
    (["--stochastic-layers", "2", "--latent-dims", "6,3,2"],
     "must give 2 sizes"),
    (["--latent-dims", "6,3"], "with one layer use --latent-dim"),
    (["--stochastic-layers", "2", "--free-bits", "0.5"],
     "Use --free-bits 0 with --stochastic-layers > 1"),
    (["--stochastic-layers", "2", "--arch", "conv"], "use --arch mlp"),
])
def test_bad_layer_settings_fail_before_writing(tmp_path, capsys, argv,
                                                message, data_dir):
    run = tmp_path / "run"
    status = cli.main(["train", "--out", str(run), "--hidden-units", "8",
                       *argv])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.parametrize("argv, message", [
    (["--prior", "standard", "--prior-components", "3"],
     "the standard normal has none"),
    (["--prior", "mog", "--free-bits", "0.5"],
     "--free-bits 0 with it, or --prior standard"),
    (["--prior", "vamp", "--prior-components", "50",
      "--max-train-examples", "20"], "Pass --prior-components 20 or fewer"),
    (["--posterior", "full", "--free-bits", "0.5"],
     "--free-bits 0 with it, or --posterior diagonal"),
    (["--posterior", "iaf", "--free-bits", "0.5"],
     "--free-bits 0 with it, or --posterior diagonal"),
    (["--posterior", "iaf", "--prior", "vamp"],
     "Use --prior vamp with --posterior diagonal or full"),
    (["--flows", "3"], "the 'diagonal' posterior has none"),
])
def test_bad_prior_settings_fail_before_writing(tmp_path, capsys, argv,
                                                message, data_dir):
    run = tmp_path / "run"
    status = cli.main(["train", "--out", str(run), "--hidden-units", "8",
                       "--latent-dim", "2", *argv])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.parametrize("argv, message", [
    (["--prior", "vampprior"], "invalid choice: 'vampprior'"),
    (["--posterior", "flow"], "invalid choice: 'flow'"),
    (["--posterior", "iaf", "--flows", "0"],
     "--flows: expected a positive integer"),
    (["--prior", "mog", "--prior-components", "0"],
     "--prior-components: expected a positive integer"),
])
def test_prior_flags_are_parsed_strictly(tmp_path, capsys, argv, message):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--out", str(run), *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_train_conditional_writes_samples_per_class(tmp_path, data_dir):
    import keras

    import keras_vae as kv

    run = tmp_path / "run"
    status = cli.main([
        "train", "--dataset", "mnist", "--conditional",
        "--latent-dim", "2", "--hidden-units", "32", "--epochs", "1",
        "--max-train-examples", "1000", "--out", str(run), "--progress", "0",
    ])
    assert status == 0
    assert json.loads((run / "config.json").read_text())["conditional"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["conditional"]["num_classes"] == 10
    assert metrics["conditional"]["class_names"] == [str(d) for d in
                                                     range(10)]
    assert metrics["architecture"].endswith(
        "conditional on the label (10 classes)")
    for name in ("reconstructions", "samples", "samples_per_class",
                 "loss_curves", "latent_scatter"):
        assert _png_has_content(run / "figures" / f"{name}.png"), name
    assert not (run / "figures" / "manifold.png").exists()
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.num_classes == 10
    # `keras-vae evaluate` scores log p(x | y) at the test set's labels.
    assert cli.main(["evaluate", str(run), "--num-samples", "30",
                     "--max-examples", "40"]) == 0
    report = json.loads((run / "evaluation.json").read_text())
    assert report["num_classes"] == 10
    assert "log p(x | y)" in report["protocol"]
    _, (x_test, y_test) = kv.data.load("mnist", binarize="dynamic", seed=0)
    expected = kv.evaluation.log_likelihood(
        model, x_test[:40], num_samples=30, verbose=0, labels=y_test[:40])
    assert report["log_likelihood"]["mean"] == pytest.approx(
        expected.mean, rel=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--stochastic-layers", "2"], "Use --stochastic-layers 1 with"),
    (["--prior", "vamp"], "does not combine with --conditional"),
    (["--dataset", "frey_face", "--binarize", "none",
      "--likelihood", "gaussian"], "'frey_face' has none"),
])
def test_bad_conditional_settings_fail_before_writing(tmp_path, capsys, argv,
                                                      message, data_dir):
    run = tmp_path / "run"
    status = cli.main(["train", "--out", str(run), "--hidden-units", "8",
                       "--conditional", *argv])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not run.exists()
