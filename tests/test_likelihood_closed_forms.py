"""Closed-form `log_prob` overrides against TFP's distributions (the oracle).

A head may compute log p(x|z) by a cheaper formula than TFP's generic path
(`Bernoulli`: x * logit - softplus(logit)); the number must be TFP's.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv

tfd = tfp.distributions


def _oracle(logits, x, event_ndims):
    return tfd.Independent(
        tfd.Bernoulli(logits=logits, dtype=tf.float32),
        reinterpreted_batch_ndims=event_ndims,
    ).log_prob(x).numpy()


@pytest.mark.parametrize("event_shape", [(6,), (4, 3, 1)])
@pytest.mark.parametrize("data", ["binary", "grey"])
def test_bernoulli_log_prob_is_tfps(event_shape, data):
    rng = np.random.default_rng(0)
    size = int(np.prod(event_shape))
    head = kv.likelihoods.Bernoulli(event_shape=event_shape)
    # (S, B, params_size) decoder output, extreme logits included.
    params = rng.normal(0.0, 4.0, (3, 5, size)).astype("float32")
    params[0, 0, :3] = [60.0, -60.0, 0.0]
    x = rng.random((5,) + event_shape).astype("float32")
    if data == "binary":
        x = (x < 0.5).astype("float32")
    got = head.log_prob(tf.constant(params), tf.constant(x)).numpy()
    logits = params.reshape((3, 5) + event_shape)
    expected = _oracle(logits, x, len(event_shape))
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)
    # A confident wrong logit costs its size in nats, exactly.
    one = kv.likelihoods.Bernoulli(event_shape=(1,))
    assert float(one.log_prob(tf.constant([[60.0]]), tf.constant([[0.0]]))[0]) \
        == pytest.approx(-60.0, rel=1e-6)


def test_bernoulli_log_prob_gradient_is_tfps():
    rng = np.random.default_rng(1)
    head = kv.likelihoods.Bernoulli(event_shape=(8,))
    params = tf.Variable(rng.normal(0.0, 3.0, (4, 8)).astype("float32"))
    x = tf.constant((rng.random((4, 8)) < 0.4).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        ours = tf.reduce_sum(head.log_prob(params, x))
        theirs = tf.reduce_sum(
            tfd.Independent(tfd.Bernoulli(logits=params, dtype=tf.float32),
                            1).log_prob(x))
    # d/dl [x l - softplus(l)] = x - sigmoid(l)
    expected = x.numpy() - 1.0 / (1.0 + np.exp(-params.numpy()))
    np.testing.assert_allclose(tape.gradient(ours, params), expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, params),
                               tape.gradient(theirs, params), atol=1e-6)


def test_validate_args_keeps_tfps_checks():
    head = kv.likelihoods.Bernoulli(event_shape=(2,), validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError):
        head.log_prob(tf.zeros((1, 2)), tf.constant([[0.5, 1.0]]))


def test_other_heads_use_tfps_distribution():
    head = kv.likelihoods.Gaussian(event_shape=(3,), scale=0.5)
    params = tf.constant([[0.1, -0.2, 0.3]])
    x = tf.constant([[0.0, 0.0, 1.0]])
    expected = tfd.Independent(tfd.Normal(params, 0.5), 1).log_prob(x)
    np.testing.assert_allclose(head.log_prob(params, x), expected, rtol=1e-6)


def test_bernoulli_gradients_with_broadcast_draws_are_tfps():
    # (S, B, *event) logits against (B, *event) data, as in the train step
    # with several draws: both gradients, including the one for x summed
    # over the draws, match TFP's.
    rng = np.random.default_rng(2)
    head = kv.likelihoods.Bernoulli(event_shape=(2, 3))
    logits = tf.Variable(rng.normal(0.0, 5.0, (4, 3, 2, 3)).astype("float32"))
    x = tf.Variable(rng.random((3, 2, 3)).astype("float32"))
    weights = tf.constant(rng.random((4, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        ours = tf.reduce_sum(weights * head.log_prob(
            tf.reshape(logits, (4, 3, 6)), x))
        theirs = tf.reduce_sum(weights * tfd.Independent(
            tfd.Bernoulli(logits=logits, dtype=tf.float32), 2).log_prob(x))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    for var in (logits, x):
        got, want = tape.gradient(ours, var), tape.gradient(theirs, var)
        assert got.shape == var.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
