"""The formulas of keras_vae.objectives against numpy, TFP and closed forms."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import objectives
from helpers import binary_data, tfd_kl, tiny_vae

tfd = tfp.distributions


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


# -- free bits ----------------------------------------------------------------


def _kl_batch():
    # Dimension 0 carries information (KL well above the floor), dimension
    # 1 is nearly the prior (KL below the floor), dimension 2 is in between.
    rng = np.random.RandomState(1)
    z_mean = np.stack([rng.normal(0, 2.0, 16), rng.normal(0, 0.05, 16),
                       rng.normal(0, 1.0, 16)], -1).astype("float32")
    z_log_var = np.stack([np.full(16, -2.0), np.full(16, -0.02),
                          np.full(16, -1.0)], -1).astype("float32")
    return z_mean, z_log_var


def test_free_bits_hold_an_unneeded_dimension_at_the_floor():
    z_mean, z_log_var = _kl_batch()
    per_dim = tfd_kl(z_mean, z_log_var).mean(0)  # batch mean, TFP oracle
    floor = 0.5
    assert per_dim[1] < floor < per_dim[0]
    value = float(objectives.free_bits_kl(z_mean, z_log_var, floor))
    assert value == pytest.approx(np.maximum(per_dim, floor).sum(), rel=1e-5)
    # The Sampling layer adds exactly that (times kl_weight) as its loss.
    layer = kv.Sampling(seed=0, free_bits=floor, kl_weight=0.5)
    layer([tf.constant(z_mean), tf.constant(z_log_var)])
    assert float(layer.losses[0]) == pytest.approx(0.5 * value, rel=1e-6)


def test_free_bits_do_not_change_the_gradient_above_the_floor():
    z_mean, z_log_var = (tf.Variable(a) for a in _kl_batch())
    floor = 0.5
    with tf.GradientTape() as tape:
        loss = objectives.free_bits_kl(z_mean, z_log_var, floor)
    g_mean, g_log_var = tape.gradient(loss, [z_mean, z_log_var])
    per_dim = tfd_kl(z_mean.numpy(), z_log_var.numpy()).mean(0)
    above = per_dim > floor
    batch = z_mean.shape[0]
    # Analytic gradient of the batch-mean KL: d/dmu = mu / B,
    # d/dlogvar = (exp(logvar) - 1) / (2 B).
    want_mean = z_mean.numpy() / batch
    want_log_var = (np.exp(z_log_var.numpy()) - 1.0) / (2 * batch)
    np.testing.assert_allclose(g_mean.numpy()[:, above],
                               want_mean[:, above], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g_log_var.numpy()[:, above],
                               want_log_var[:, above], rtol=1e-5, atol=1e-8)
    # Below the floor the term is the constant floor: no gradient at all.
    assert not above.all()
    np.testing.assert_array_equal(g_mean.numpy()[:, ~above], 0.0)
    np.testing.assert_array_equal(g_log_var.numpy()[:, ~above], 0.0)


def test_free_bits_groups_floor_each_group_sum():
    rng = np.random.RandomState(2)
    z_mean = rng.normal(0, [1.5, 0.05, 0.1, 0.02], (8, 4)).astype("float32")
    z_log_var = np.full((8, 4), -0.1, "float32")
    per_dim = tfd_kl(z_mean, z_log_var).mean(0)
    groups = per_dim.reshape(2, 2).sum(-1)
    value = float(objectives.free_bits_kl(z_mean, z_log_var, 0.3, groups=2))
    assert value == pytest.approx(np.maximum(groups, 0.3).sum(), rel=1e-5)
    model = tiny_vae(free_bits=0.3, free_bits_groups=3)
    assert model.sampler.free_bits_groups == 3
    clone = kv.VAE.from_config(model.get_config())
    assert clone.sampler.free_bits_groups == 3


# -- the IWAE objective -------------------------------------------------------


def _same_weights(a, b):
    b.set_weights(a.get_weights())
    return b


def test_iwae_with_one_sample_is_the_single_draw_elbo():
    x = tf.constant(binary_data(12))
    elbo_model = tiny_vae(seed=7)
    iwae_model = _same_weights(elbo_model,
                               tiny_vae(seed=7, objective="iwae"))
    elbo_terms = elbo_model.compute_terms(x, training=True)
    iwae_terms = iwae_model.compute_terms(x, training=True)
    # Same seed: both drew the same z. Rebuild it and score it with TFP.
    z_mean, z_log_var = (t.numpy() for t in elbo_model.encoder(x))
    eps = keras.random.normal(z_mean.shape, seed=keras.random.SeedGenerator(7))
    z = z_mean + np.exp(0.5 * z_log_var) * eps.numpy()
    log_q = tfd.Normal(z_mean, np.exp(0.5 * z_log_var)).log_prob(z)
    log_p = tfd.Normal(0.0, 1.0).log_prob(z)
    log_px_z = elbo_terms["log_px_z"].numpy()[0]
    np.testing.assert_allclose(iwae_terms["log_px_z"].numpy()[0], log_px_z,
                               rtol=1e-6)
    # L_1 = log p(x|z) + log p(z) - log q(z|x): the ELBO with the KL
    # estimated from the same draw (Burda et al. 2016, section 3).
    single_draw_elbo = log_px_z + np.sum(log_p - log_q, -1)
    assert float(iwae_terms["loss"]) == pytest.approx(
        -single_draw_elbo.mean(), rel=1e-5)
    # The ELBO objective differs only by using the closed-form KL.
    closed_kl = tfd_kl(z_mean, z_log_var).sum(-1)
    assert float(elbo_terms["loss"]) == pytest.approx(
        -(log_px_z - closed_kl).mean(), rel=1e-5)


def test_iwae_with_one_sample_equals_the_elbo_in_expectation():
    x = tf.constant(binary_data(20))
    elbo_model = tiny_vae(seed=1)
    iwae_model = _same_weights(elbo_model,
                               tiny_vae(seed=2, objective="iwae"))
    fn_e = tf.function(lambda: elbo_model.compute_terms(x, training=True)
                       ["loss"])
    fn_i = tf.function(lambda: iwae_model.compute_terms(x, training=True)
                       ["loss"])
    draws = 300
    le = np.array([float(fn_e()) for _ in range(draws)])
    li = np.array([float(fn_i()) for _ in range(draws)])
    stderr = np.sqrt(le.var() / draws + li.var() / draws)
    assert abs(le.mean() - li.mean()) < 4 * stderr


def test_iwae_training_runs_and_k_samples_tighten_the_bound():
    keras.utils.set_random_seed(0)  # independent of the tests run before
    x = binary_data(40)
    model = tiny_vae(objective="iwae", num_samples=5)
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=20, epochs=10, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < losses[0]
    # IWAE_k >= ELBO on average (Burda et al. 2016, theorem 1); averaged
    # over 20 draws each so that single-draw noise does not decide it.
    iwae = -np.mean([float(model.compute_terms(tf.constant(x))["loss"])
                     for _ in range(20)])
    elbo = float(np.mean([np.mean(model.elbo(x, num_samples=1))
                          for _ in range(20)]))
    assert iwae >= elbo - 0.1


# -- z_log_var clamp ----------------------------------------------------------


def test_soft_clamp_is_the_identity_inside_its_range():
    inside = np.linspace(-30.0, 10.0, 1001).astype("float32")
    out = objectives.soft_clamp_log_var(inside).numpy()
    np.testing.assert_array_equal(out, inside)


def test_soft_clamp_bounds_and_is_smooth_outside():
    far = np.array([-1e4, -100.0, -31.0, 11.0, 50.0, 1e4, np.inf], "float32")
    out = objectives.soft_clamp_log_var(far).numpy()
    assert np.all(out >= -35.0) and np.all(out <= 15.0)
    assert np.all(np.diff(out) >= 0)  # monotone
    # The slope is 1 at the edge of the range and fades beyond it.
    v = tf.Variable([10.0 + 1e-3, 12.0, 40.0])
    with tf.GradientTape() as tape:
        y = objectives.soft_clamp_log_var(v)
    slope = tape.gradient(y, v).numpy()
    # d/dv [10 + 5 tanh((v - 10) / 5)] = 1 - tanh((v - 10) / 5)^2
    want = 1.0 - np.tanh((v.numpy() - 10.0) / 5.0) ** 2
    np.testing.assert_allclose(slope, want, rtol=1e-5)


def test_diverged_log_variance_stays_finite():
    model = tiny_vae()
    weights = model.get_weights()
    for var, value in zip(model.weights, weights):
        if "z_log_var" in var.path and "bias" in var.path:
            value[...] = 300.0  # exp(150) overflows float32 without clamp
    model.set_weights(weights)
    terms = model.compute_terms(tf.constant(binary_data(8)), training=True)
    assert np.isfinite(float(terms["loss"]))
    assert np.all(np.isfinite(terms["kl"].numpy()))
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float32(150.0)))  # what the clamp prevents


def test_log_normal_diag_components_is_the_direct_form_even_when_narrow():
    # The expanded quadratic form against numpy's direct (z - m)^2 / v in
    # float64, with components as narrow as a trained posterior's
    # (variances down to e^-9) and z several units away from 0.
    from keras_vae import objectives

    rng = np.random.default_rng(4)
    means = rng.normal(0, 2, size=(7, 5))
    log_vars = rng.uniform(-9, 1, size=(7, 5))
    z = rng.normal(0, 3, size=(3, 4, 5))
    direct = -0.5 * np.sum(np.log(2 * np.pi) + log_vars
                           + (z[..., None, :] - means) ** 2
                           / np.exp(log_vars), axis=-1)
    for dtype in ("float32", "float64"):
        ours = objectives.log_normal_diag_components(
            tf.constant(z, dtype), tf.constant(means, dtype),
            tf.constant(log_vars, dtype)).numpy()
        assert ours.shape == (3, 4, 7) and ours.dtype == dtype
        # float32 inputs are rounded before the float64 arithmetic, so the
        # reference for them is the direct form of the rounded inputs.
        if dtype == "float32":
            zr, mr, vr = (a.astype("float32").astype("float64")
                          for a in (z, means, log_vars))
            ref = -0.5 * np.sum(np.log(2 * np.pi) + vr + (zr[..., None, :]
                                - mr) ** 2 / np.exp(vr), axis=-1)
            np.testing.assert_allclose(ours, ref, rtol=1e-6)
        else:
            np.testing.assert_allclose(ours, direct, rtol=1e-12)
