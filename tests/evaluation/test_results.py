"""Tests of keras_vae.evaluation.results: the result types."""

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


def test_stderr_is_the_standard_error_across_examples(binary_model):
    vae, x = binary_model
    result = evaluation.log_likelihood(vae, x, num_samples=10, verbose=0)
    v = result.values
    manual = np.sqrt(np.sum((v - v.mean()) ** 2) / (len(v) - 1) / len(v))
    assert result.stderr == pytest.approx(manual, rel=1e-9)
