"""Tests of keras_vae.evaluation.amortization: refine and map_estimate."""

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import evaluation

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
