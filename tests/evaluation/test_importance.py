"""Tests of keras_vae.evaluation.importance: log_likelihood and iwae_bound."""

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import evaluation
from keras_vae.evaluation import importance

# Oracles: Jensen's inequality draw by draw (the IWAE bound with K = 1 is the
# ELBO of that draw, and never below the ELBO of the same draws); the IWAE
# bound's expectation growing with K (Burda et al. 2016, theorem 1); the
# VAE's own test-step ELBO (a separate code path with the closed-form KL) as
# the expectation of the K = 1 bound. The linear-Gaussian closed forms are
# in test_ppca.py.


# -- the IWAE bound -----------------------------------------------------------


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


def test_proposal_shape_is_checked(binary_model):
    vae, x = binary_model
    with pytest.raises(ValueError, match="proposal.*shape"):
        evaluation.log_likelihood(
            vae, x, num_samples=2,
            proposal=(np.zeros((2, 3)), np.zeros((2, 3))))
