"""Sampling layer: reparameterization, KL via add_loss, serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv

tfd = tfp.distributions


def _params(batch=6, latent=4, seed=0):
    rng = np.random.default_rng(seed)
    z_mean = rng.normal(size=(batch, latent)).astype("float32")
    z_log_var = rng.normal(scale=0.7, size=(batch, latent)).astype("float32")
    return z_mean, z_log_var


def test_kl_added_with_add_loss_equals_tfp_kl_divergence():
    z_mean, z_log_var = _params()
    layer = kv.Sampling(seed=1)
    layer([z_mean, z_log_var])
    assert len(layer.losses) == 1
    q = tfd.MultivariateNormalDiag(z_mean, np.exp(0.5 * z_log_var))
    p = tfd.MultivariateNormalDiag(np.zeros_like(z_mean),
                                   np.ones_like(z_mean))
    expected = float(tf.reduce_mean(tfd.kl_divergence(q, p)))
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-5)
    # A scalar batch mean, not a per-example vector (Keras sums losses).
    assert layer.losses[0].shape == ()


def test_kl_weight_scales_the_added_loss_and_losses_are_not_accumulated():
    z_mean, z_log_var = _params()
    layer = kv.Sampling(seed=1, kl_weight=0.25)
    layer([z_mean, z_log_var])
    layer([z_mean, z_log_var])
    assert len(layer.losses) == 1
    kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var, -1)
    assert float(layer.losses[0]) == pytest.approx(0.25 * kl.mean(), rel=1e-5)


def test_draws_have_the_mean_and_spread_of_q():
    z_mean = np.array([[0.5, -2.0]], "float32")
    z_log_var = np.array([[np.log(0.25), np.log(4.0)]], "float32")
    z = kv.Sampling(seed=3)([z_mean, z_log_var], num_samples=40000)
    z = np.asarray(z)
    assert z.shape == (40000, 1, 2)
    # Standard error of the mean is sd / 200; 5 standard errors.
    assert np.all(np.abs(z.mean(0)[0] - [0.5, -2.0])
                  < 5 * np.array([0.5, 2.0]) / 200)
    np.testing.assert_allclose(z.std(0)[0], [0.5, 2.0], rtol=0.03)


def test_gradient_flows_through_mean_and_log_var():
    z_mean = tf.Variable([[0.3, -0.1]])
    z_log_var = tf.Variable([[0.2, -0.4]])
    layer = kv.Sampling(seed=5)
    state = layer.seed_generator.state.numpy().copy()
    with tf.GradientTape() as tape:
        z = layer([z_mean, z_log_var])
        total = tf.reduce_sum(z)
    d_mean, d_log_var = tape.gradient(total, [z_mean, z_log_var])
    eps = (z.numpy() - z_mean.numpy()) / np.exp(0.5 * z_log_var.numpy())
    np.testing.assert_allclose(d_mean.numpy(), np.ones((1, 2)))
    np.testing.assert_allclose(
        d_log_var.numpy(), 0.5 * np.exp(0.5 * z_log_var.numpy()) * eps,
        rtol=1e-5,
    )
    # The same seed generator state reproduces the same draw.
    layer.seed_generator.state.assign(state)
    np.testing.assert_array_equal(layer([z_mean, z_log_var]).numpy(),
                                  z.numpy())


def test_seeded_layers_repeat_and_differ():
    z_mean, z_log_var = _params()
    a = kv.Sampling(seed=7)([z_mean, z_log_var])
    b = kv.Sampling(seed=7)([z_mean, z_log_var])
    c = kv.Sampling(seed=8)([z_mean, z_log_var])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_free_bits_floor_each_dimension():
    z_mean = np.zeros((3, 2), "float32")
    z_mean[:, 1] = 2.0  # KL of dim 1 = 2 nats, dim 0 = 0 nats
    z_log_var = np.zeros((3, 2), "float32")
    layer = kv.Sampling(seed=0, free_bits=0.5)
    layer([z_mean, z_log_var])
    assert float(layer.losses[0]) == pytest.approx(0.5 + 2.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seed": 1.5}, "seed"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"free_bits": -0.1}, "free_bits"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kv.Sampling(**kwargs)


def test_bad_call_arguments():
    z_mean, z_log_var = _params()
    layer = kv.Sampling()
    with pytest.raises(ValueError, match="same shape"):
        layer([z_mean, z_log_var[:, :2]])
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        layer(z_mean)
    with pytest.raises(ValueError, match="num_samples"):
        layer([z_mean, z_log_var], num_samples=0)


def test_config_round_trip_and_keras_file(tmp_path):
    layer = kv.Sampling(seed=11, kl_weight=0.5, free_bits=0.1)
    clone = kv.Sampling.from_config(layer.get_config())
    assert (clone.seed, clone.initial_kl_weight, clone.free_bits) == (
        11, 0.5, 0.1)
    z_mean = keras.Input((3,))
    z_log_var = keras.Input((3,))
    z = kv.Sampling(seed=11)([z_mean, z_log_var])
    model = keras.Model([z_mean, z_log_var], z)
    path = tmp_path / "sampling.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    inputs = list(_params(latent=3))
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)
