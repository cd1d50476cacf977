"""DeterministicVAE: trained with z = z_mean, evaluated as a VAE.

Oracles: the plug-in loss -log p(x|z_mean) + KL written with numpy, and the
closed-form gradient of that loss with respect to z_log_var, which comes
from the KL alone: d/dv 0.5 (e^v + m^2 - 1 - v) = 0.5 (e^v - 1).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv

rng = np.random.default_rng(0)


def make(seed=0):
    encoder = kv.build_mlp_encoder((6,), 2, (8,))
    decoder = kv.build_mlp_decoder(2, (6,), (8,))
    return kv.DeterministicVAE(encoder, decoder, likelihood="bernoulli",
                               seed=seed)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_training_loss_is_the_plug_in_objective():
    model = make()
    x = (rng.random((5, 6)) < 0.5).astype("float32")
    terms = model.compute_terms(tf.constant(x), training=True)
    z_mean, z_log_var = (np.asarray(t, np.float64) for t in model.encoder(x))
    p = sigmoid(np.asarray(model.decoder(z_mean), np.float64))
    log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var, axis=1)
    assert float(terms["loss"]) == pytest.approx(
        -log_px.mean() + kl.mean(), rel=1e-5)
    np.testing.assert_allclose(terms["reconstruction_at_mean"], log_px,
                               rtol=1e-5)


def test_z_log_var_gradient_comes_from_the_kl_only():
    model = make()
    x = (rng.random((7, 6)) < 0.5).astype("float32")
    bias = model.encoder.get_layer("z_log_var").bias
    with tf.GradientTape() as tape:
        loss = model.compute_terms(tf.constant(x), training=True)["loss"]
    grad = tape.gradient(loss, bias).numpy()
    z_log_var = np.asarray(model.encoder(x)[1], np.float64)
    np.testing.assert_allclose(grad, np.mean(0.5 * (np.exp(z_log_var) - 1),
                                             axis=0), rtol=1e-4, atol=1e-7)
    # The sampled VAE's gradient also holds the reconstruction term.
    vae = kv.VAE(model.encoder, model.decoder, seed=0)
    with tf.GradientTape() as tape:
        loss = vae.compute_terms(tf.constant(x), training=True)["loss"]
    assert not np.allclose(tape.gradient(loss, bias).numpy(), grad,
                           atol=1e-4)


def test_fit_evaluate_and_round_trip(tmp_path):
    model = make()
    x = (rng.random((64, 6)) < 0.4).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, epochs=2, batch_size=16, verbose=0,
                        validation_data=x[:32])
    assert np.isfinite(history.history["val_elbo"][-1])
    model.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras", safe_mode=True)
    assert type(loaded) is kv.DeterministicVAE
    np.testing.assert_allclose(loaded.reconstruct(x[:4]),
                               model.reconstruct(x[:4]), rtol=1e-6)


def test_bad_arguments():
    encoder = kv.build_mlp_encoder((6,), 2, (8,))
    decoder = kv.build_mlp_decoder(2, (6,), (8,))
    with pytest.raises(ValueError, match="no IWAE form"):
        kv.DeterministicVAE(encoder, decoder, objective="iwae")
    with pytest.raises(ValueError, match="num_samples must be 1"):
        kv.DeterministicVAE(encoder, decoder, num_samples=3)
