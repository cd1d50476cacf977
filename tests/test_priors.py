"""Priors: log densities and draws against TFP and numpy, binding, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv

tfd = tfp.distributions


def test_standard_normal_log_prob_is_tfp_and_numpy():
    prior = kv.priors.StandardNormal(latent_dim=3)
    z = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    ours = prior.log_prob(tf.constant(z)).numpy()
    assert ours.shape == (2, 5)
    reference = tfd.MultivariateNormalDiag(loc=tf.zeros(3)).log_prob(z)
    np.testing.assert_allclose(ours, reference, rtol=1e-6)
    by_hand = -0.5 * np.sum(np.log(2 * np.pi) + z.astype("float64")**2, -1)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-6)
    np.testing.assert_allclose(prior.distribution().log_prob(z), by_hand,
                               rtol=1e-6)


def test_standard_normal_draws_are_stateless_and_standard():
    prior = kv.priors.StandardNormal(latent_dim=2)
    seed = tf.constant([4, 0], tf.int32)
    a = prior.sample(20000, seed).numpy()
    np.testing.assert_array_equal(a, prior.sample(20000, seed).numpy())
    assert a.shape == (20000, 2)
    # Mean 0 and covariance I within a few standard errors.
    assert np.all(np.abs(a.mean(0)) < 4 / np.sqrt(20000))
    np.testing.assert_allclose(np.cov(a.T), np.eye(2), atol=0.05)
    assert not np.allclose(a, prior.sample(20000, seed + 1).numpy())
    # An int seed s is the pair (s, 0); None draws a fresh one.
    np.testing.assert_array_equal(prior.sample(3, 4).numpy(),
                                  prior.sample(3, seed).numpy())
    assert prior.sample(3).shape == (3, 2)


def test_latent_dim_binding_and_mismatch():
    prior = kv.priors.StandardNormal()
    with pytest.raises(ValueError, match="no latent_dim"):
        prior.sample(1, tf.constant([0, 0]))
    prior.set_latent_dim(4)
    prior.set_latent_dim(4)  # same size: fine
    with pytest.raises(ValueError, match="latent_dim=4"):
        prior.set_latent_dim(3)
    with pytest.raises(ValueError, match="latent_dim"):
        kv.priors.StandardNormal(latent_dim=0)


def test_vae_refuses_a_prior_of_another_size():
    enc = kv.build_mlp_encoder((4, 4, 1), 2, hidden_units=(4,))
    dec = kv.build_mlp_decoder(2, (4, 4, 1), hidden_units=(4,))
    with pytest.raises(ValueError, match="latent_dim=5"):
        kv.VAE(enc, dec, prior=kv.priors.StandardNormal(latent_dim=5))


@pytest.mark.parametrize("bad", ["standard", 3, kv.likelihoods.Bernoulli()])
def test_get_refuses_what_is_not_a_prior(bad):
    with pytest.raises(ValueError, match="prior"):
        kv.priors.get(bad)
    enc = kv.build_mlp_encoder((4, 4, 1), 2, hidden_units=(4,))
    dec = kv.build_mlp_decoder(2, (4, 4, 1), hidden_units=(4,))
    with pytest.raises(ValueError, match="prior"):
        kv.VAE(enc, dec, prior=bad)


def test_names_and_config_round_trip(tmp_path):
    assert isinstance(kv.priors.get(None), kv.priors.StandardNormal)
    assert isinstance(kv.priors.get("standard_normal"),
                      kv.priors.StandardNormal)
    prior = kv.priors.StandardNormal(latent_dim=3)
    clone = kv.priors.get(keras.saving.serialize_keras_object(prior))
    assert isinstance(clone, kv.priors.StandardNormal)
    assert clone.latent_dim == 3
    vae = kv.build_mlp_vae((4, 4, 1), 3, hidden_units=(4,),
                           prior="standard_normal")
    vae.save(tmp_path / "v.keras")
    loaded = keras.models.load_model(tmp_path / "v.keras", safe_mode=True)
    assert isinstance(loaded.prior, kv.priors.StandardNormal)
    assert loaded.prior.latent_dim == 3
