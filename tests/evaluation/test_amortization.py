"""Tests of keras_vae.evaluation.amortization: refine and map_estimate."""

import numpy as np
import pytest

from keras_vae import evaluation


@pytest.mark.parametrize("steps", [0, -1, 2.5, None])
def test_refine_and_map_need_positive_steps(binary_model, steps):
    vae, x = binary_model
    with pytest.raises(ValueError, match="steps.*int >= 1"):
        evaluation.refine(vae, x, steps=steps)
    with pytest.raises(ValueError, match="steps.*int >= 1"):
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
