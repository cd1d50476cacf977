"""The formulas of keras_vae.objectives against numpy and closed forms."""

import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import objectives


def _numpy_log_mean_exp(a, axis=0):
    a = np.asarray(a, np.float64)
    m = a.max(axis=axis)
    return m + np.log(np.mean(np.exp(a - m), axis=axis))


def test_log_mean_exp_is_exact_far_from_zero():
    # Log-weights of -800 nats underflow exp() in float32 and float64; the
    # log-mean-exp must still be exact.
    a = np.array([[-800.0, -900.0], [-801.0, -899.5], [-805.0, -2000.0]])
    out = objectives.log_mean_exp(tf.constant(a, tf.float32)).numpy()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _numpy_log_mean_exp(a.astype("float32")),
                               rtol=1e-12)
    bound = objectives.iwae_bound(tf.constant(a, tf.float32)).numpy()
    assert bound.dtype == np.float32
    np.testing.assert_allclose(bound, _numpy_log_mean_exp(a), rtol=1e-6)


@pytest.mark.parametrize("k, chunk", [(1, 4), (7, 3), (12, 4), (300, 128),
                                      (5, 50)])
def test_chunked_log_mean_exp_equals_the_one_shot_value(k, chunk):
    rng = np.random.default_rng(k)
    values = rng.normal(loc=-500.0, scale=30.0, size=(k, 6))
    extra = rng.normal(size=(k, 6))

    def chunk_fn(c, kc):
        start = c * chunk
        return (tf.constant(values)[start:start + kc],
                (tf.constant(extra)[start:start + kc],))

    lme, mean, (mean_extra,) = objectives.chunked_log_mean_exp(
        chunk_fn, k, chunk, 6, num_extras=1)
    np.testing.assert_allclose(lme, _numpy_log_mean_exp(values), rtol=1e-12)
    np.testing.assert_allclose(mean, values.mean(0), rtol=1e-12)
    np.testing.assert_allclose(mean_extra, extra.mean(0), atol=1e-12)


def test_chunked_log_mean_exp_in_a_graph_with_tensor_k():
    values = tf.reshape(tf.range(10, dtype=tf.float32), (10, 1))

    @tf.function
    def run(k):
        return objectives.chunked_log_mean_exp(
            lambda c, kc: (values[c * 3:c * 3 + kc], ()), k, 3, 1)[0]

    for k in (1, 4, 10):
        np.testing.assert_allclose(
            run(tf.constant(k)).numpy(),
            _numpy_log_mean_exp(np.arange(k, dtype=np.float64)[:, None]),
            rtol=1e-12)


def test_log_importance_weights_and_elbo():
    log_px_z = tf.constant([[-3.0, -4.0], [-5.0, -2.0]])
    log_pz = tf.constant([[-1.0, -1.5], [-2.0, -0.5]])
    log_qz = tf.constant([[0.5, 0.1], [0.2, -0.3]])
    log_w = objectives.log_importance_weights(log_px_z, log_pz, log_qz)
    np.testing.assert_allclose(log_w, [[-4.5, -5.6], [-7.2, -2.2]],
                               rtol=1e-6)
    np.testing.assert_allclose(objectives.elbo(log_px_z, tf.constant(
        [1.0, 2.0])), [-5.0, -5.0])


def test_kl_divergence_without_closed_form_needs_draws():
    class NoClosedForm(kv.posteriors.DiagonalGaussian):
        def kl_divergence(self, params, prior):
            return None

    params = [tf.zeros((2, 3)), tf.zeros((2, 3))]
    prior = kv.priors.StandardNormal(latent_dim=3)
    with pytest.raises(ValueError, match="Monte-Carlo"):
        objectives.kl_divergence(NoClosedForm(), params, prior)
    # q = p: every draw gives log q - log p = 0.
    z = tf.random.stateless_normal((4, 2, 3), seed=[1, 1])
    np.testing.assert_allclose(
        objectives.kl_divergence(NoClosedForm(), params, prior, z),
        np.zeros(2), atol=1e-6)


def test_floor_kl_floors_the_batch_mean_of_each_dimension():
    kl_per_dim = tf.constant([[0.1, 2.0, 0.0], [0.3, 4.0, 0.0]])
    # batch means 0.2, 3.0, 0.0; floored at 0.5 each.
    np.testing.assert_allclose(objectives.floor_kl(kl_per_dim, 0.5),
                               0.5 + 3.0 + 0.5, rtol=1e-6)
