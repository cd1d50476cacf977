"""VAE model: ELBO against a hand computation, training, save/load, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import likelihoods

SHAPE = (2, 3, 1)


def _tiny(likelihood="bernoulli", **kwargs):
    return kv.build_mlp_vae(SHAPE, 2, hidden_units=(4,),
                            likelihood=likelihood, seed=3, **kwargs)


def _binary(n=8, seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return (rng.random((n,) + shape) < 0.4).astype("float32")


def test_elbo_equals_its_parts_computed_by_hand():
    vae = _tiny()
    x = _binary()
    state = vae.sampler.seed_generator.state.numpy().copy()
    terms = vae.compute_terms(tf.constant(x), num_samples=3)
    # Replay the same noise, then redo the maths in numpy.
    vae.sampler.seed_generator.state.assign(state)
    z_mean, z_log_var = [np.asarray(t, "float64") for t in vae.encoder(x)]
    z = np.asarray(vae.sampler([z_mean.astype("float32"),
                                z_log_var.astype("float32")],
                               num_samples=3), "float64")  # (3, 8, 2)
    w = {v.path: np.asarray(v, "float64") for v in vae.decoder.weights}
    kernel_h = [w[k] for k in w if "hidden_0/kernel" in k][0]
    bias_h = [w[k] for k in w if "hidden_0/bias" in k][0]
    kernel_o = [w[k] for k in w if "params/kernel" in k][0]
    bias_o = [w[k] for k in w if "params/bias" in k][0]
    logits = np.tanh(z @ kernel_h + bias_h) @ kernel_o + bias_o  # (3, 8, 6)
    xf = x.reshape(1, 8, 6)
    log_px_z = np.sum(xf * -np.logaddexp(0, -logits)
                      + (1 - xf) * -np.logaddexp(0, logits), -1)
    kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var, -1)
    np.testing.assert_allclose(terms["log_px_z"], log_px_z, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], log_px_z.mean(0) - kl,
                               rtol=1e-5)
    # The training loss is -mean(reconstruction) + the KL from add_loss.
    assert float(terms["loss"]) == pytest.approx(
        -log_px_z.mean() + kl.mean(), rel=1e-5)


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_reported_metrics_are_unweighted_and_loss_is_weighted(beta):
    vae = _tiny(beta=beta)
    vae.compile()
    x = _binary(16)
    m = vae.evaluate(x, batch_size=16, return_dict=True, verbose=0)
    assert m["elbo"] == pytest.approx(
        -(m["reconstruction_loss"] + m["kl_loss"]), rel=1e-5)
    assert m["loss"] == pytest.approx(
        m["reconstruction_loss"] + beta * m["kl_loss"], rel=1e-5)


def test_fit_lowers_the_loss_on_real_mnist(mnist_slice):
    x_train, _, x_test = mnist_slice
    rng = np.random.default_rng(0)
    xb = (rng.random(x_train.shape) < x_train).astype("float32")
    xt = (rng.random(x_test.shape) < x_test).astype("float32")
    vae = kv.build_mlp_vae((28, 28, 1), 10, hidden_units=(200, 200), seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = vae.evaluate(xt, batch_size=500, return_dict=True, verbose=0)
    history = vae.fit(xb, epochs=3, batch_size=100, verbose=0)
    after = vae.evaluate(xt, batch_size=500, return_dict=True, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 20
    # An untrained decoder scores about 784 * log 2 = 543 nats per digit.
    assert before["elbo"] < -450
    assert after["elbo"] > before["elbo"] + 200
    assert np.isfinite(after["kl_loss"]) and after["kl_loss"] > 0


def test_several_samples_per_example():
    vae = _tiny(num_samples=5)
    terms = vae.compute_terms(tf.constant(_binary()))
    assert tuple(terms["log_px_z"].shape) == (5, 8)
    vae.compile()
    vae.fit(_binary(32), epochs=1, batch_size=8, verbose=0)


def test_reconstruct_sample_encode_decode():
    vae = _tiny()
    x = _binary()
    np.testing.assert_array_equal(vae.reconstruct(x), vae.reconstruct(x))
    assert vae.reconstruct(x).shape == (8,) + SHAPE
    a = vae.reconstruct(x, mode="sample", seed=1)
    assert set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a, vae.reconstruct(x, mode="sample",
                                                     seed=1))
    np.testing.assert_array_equal(vae.sample(4, seed=2),
                                  vae.sample(4, seed=2))
    assert not np.allclose(vae.sample(4, seed=2), vae.sample(4, seed=3))
    z_mean, z_log_var = vae.encode(x)
    assert z_mean.shape == z_log_var.shape == (8, 2)
    dist = vae.decode(z_mean)
    assert tuple(dist.event_shape) == SHAPE
    np.testing.assert_allclose(dist.mean(), vae.reconstruct(x), rtol=1e-6)
    assert vae.elbo(x).shape == (8,)
    with pytest.raises(ValueError, match="Expected 'mean' or 'sample'"):
        vae.reconstruct(x, mode="median")
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        vae.decode(np.zeros((3, 5)))


HEADS = {
    "bernoulli": lambda: "bernoulli",
    "continuous_bernoulli": lambda: "continuous_bernoulli",
    "gaussian_fixed": lambda: likelihoods.Gaussian(0.1),
    "gaussian_learned": lambda: likelihoods.Gaussian("learned"),
    "gaussian_per_dimension": lambda: likelihoods.Gaussian("per_dimension"),
    "gaussian_heteroscedastic": lambda: likelihoods.Gaussian(
        "heteroscedastic"),
    "gaussian_optimal": lambda: likelihoods.Gaussian("optimal"),
}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_keras_file_round_trip(tmp_path, arch, head):
    shape = (8, 8, 1)
    if arch == "mlp":
        vae = kv.build_mlp_vae(shape, 3, hidden_units=(16,),
                               likelihood=HEADS[head](), seed=4)
    else:
        vae = kv.build_conv_vae(shape, 3, likelihood=HEADS[head](),
                                filters=(4, 8), dense_units=8, seed=4)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.default_rng(1).random((16,) + shape).astype("float32")
    vae.fit(x, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.likelihood) is type(vae.likelihood)
    for a, b in zip(vae.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(loaded.reconstruct(x), vae.reconstruct(x),
                               atol=1e-6)
    np.testing.assert_allclose(loaded.sample(5, seed=9),
                               vae.sample(5, seed=9), atol=1e-6)
    # The sampler's RNG state travels too: the same noise, the same ELBO.
    np.testing.assert_allclose(loaded.elbo(x), vae.elbo(x), rtol=1e-5)
    # The loaded model keeps training where it stopped.
    loaded.fit(x, epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize("latent_dim", [0, -3, 2.5, True, "2"])
def test_bad_latent_dim(latent_dim):
    with pytest.raises(ValueError, match="latent_dim"):
        kv.build_mlp_vae(SHAPE, latent_dim)


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="Unknown likelihood 'gausian'"):
        kv.build_conv_vae((28, 28, 1), 2, likelihood="gausian")


def test_fit_on_uint8_trains_on_pixels_over_255():
    # The one input rule (keras_vae.data.checks): uint8 k -> k / 255, in
    # fit as in every other entry point. Oracle: the same fit on the
    # scaled floats, from the same weights and seeds.
    grey = np.random.RandomState(0).randint(0, 256, (16, 2, 3, 1))
    x8 = grey.astype(np.uint8)
    weights = []
    for x in (x8, (grey / 255.0).astype(np.float32)):
        keras.utils.set_random_seed(0)
        vae = kv.build_mlp_vae(SHAPE, 2, hidden_units=(4,),
                               likelihood="continuous_bernoulli", seed=0)
        vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        vae.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights.append([w.numpy() for w in vae.weights])
    for a, b in zip(*weights):  # k / 255 rounds either way in float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_data_is_rejected_before_training():
    vae = _tiny()
    vae.compile()
    x = _binary()
    with pytest.raises(ValueError, match=r"examples of shape \(6,\).*"
                                         r"expects \(2, 3, 1\)"):
        vae.fit(x.reshape(8, 6), epochs=1, verbose=0)
    bad = x.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite.*\[2\]"):
        vae.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="binarize.*continuous_bernoulli"):
        vae.fit(x * 255.0, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        vae.fit(x[:0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"dtype <U"):
        vae.fit(x.astype(str), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        vae.fit(x, sample_weight=np.ones(8), epochs=1, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices(x.reshape(8, 6)).batch(4)
    with pytest.raises(ValueError, match="dataset yields examples"):
        vae.fit(ds, epochs=1, verbose=0)


def test_compile_refuses_a_loss():
    with pytest.raises(ValueError, match="does not take `loss`"):
        _tiny().compile(loss="mse")


def test_mismatched_parts():
    enc = kv.build_mlp_encoder(SHAPE, 2, hidden_units=(4,))
    dec = kv.build_mlp_decoder(3, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match="latent_dim=2"):
        kv.VAE(enc, dec)
    dec = kv.build_mlp_decoder(2, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match="needs 12"):
        kv.VAE(enc, dec, likelihood=likelihoods.Gaussian("heteroscedastic"))
    with pytest.raises(ValueError, match="Unknown objective"):
        kv.VAE(enc, dec, objective="elbow")
    with pytest.raises(ValueError, match="num_samples"):
        kv.VAE(enc, dec, num_samples=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        kv.build_conv_vae((30, 30, 1), 2)
