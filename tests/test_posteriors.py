"""Posterior heads: draws, densities and KLs against TFP and numpy; the
Monte-Carlo KL path; construction errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv

tfd = tfp.distributions
SHAPE = (4, 4, 1)


def _params(batch=3, latent=4, seed=0):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(size=(batch, latent)), tf.float32),
            tf.constant(rng.normal(scale=0.5, size=(batch, latent)),
                        tf.float32)]


class _NoClosedForm(kv.posteriors.DiagonalGaussian):
    """The diagonal Gaussian with its closed-form KL hidden, so that the
    sampling layer must estimate the KL from its draw."""

    def kl_divergence(self, params, prior):
        return None

    def kl_per_dim(self, params, prior):
        return None


def test_params_size_and_names():
    head = kv.posteriors.DiagonalGaussian()
    assert head.params_size(7) == (7, 7)
    assert head.param_names == ("z_mean", "z_log_var")


def test_from_encoder_applies_the_soft_clamp_only_outside_its_range():
    head = kv.posteriors.DiagonalGaussian()
    inside = tf.constant([[-29.0, 0.0, 9.5]])
    far = tf.constant([[-60.0, 12.0, 40.0]])
    z_mean, z_log_var = head.from_encoder([inside, inside])
    np.testing.assert_array_equal(z_log_var.numpy(), inside.numpy())
    np.testing.assert_array_equal(z_mean.numpy(), inside.numpy())
    _, clamped = head.from_encoder([far, far])
    v = far.numpy().astype("float64")
    expected = np.where(v > 10, 10 + 5 * np.tanh((v - 10) / 5),
                        -30 + 5 * np.tanh((v + 30) / 5))
    np.testing.assert_allclose(clamped.numpy(), expected, rtol=1e-6)


def test_draws_have_the_mean_and_variance_of_q():
    head = kv.posteriors.DiagonalGaussian()
    params = _params(batch=2, latent=3)
    eps = tf.random.stateless_normal((40000, 2, 3), seed=[1, 2])
    z = head.reparameterize(params, eps).numpy()
    assert z.shape == (40000, 2, 3)
    mean = params[0].numpy()
    var = np.exp(params[1].numpy())
    assert np.all(np.abs(z.mean(0) - mean) < 5 * np.sqrt(var / 40000))
    np.testing.assert_allclose(z.var(0), var, rtol=0.05)
    np.testing.assert_allclose(head.mean(params), mean)


def test_log_prob_and_kl_are_tfp_values():
    head = kv.posteriors.DiagonalGaussian()
    prior = kv.priors.StandardNormal(latent_dim=4)
    params = _params()
    q = tfd.MultivariateNormalDiag(loc=params[0],
                                   scale_diag=tf.exp(0.5 * params[1]))
    z = q.sample(5, seed=[3, 4])
    np.testing.assert_allclose(head.log_prob(params, z), q.log_prob(z),
                               rtol=1e-5)
    p = tfd.MultivariateNormalDiag(loc=tf.zeros(4))
    np.testing.assert_allclose(head.kl_divergence(params, prior),
                               tfd.kl_divergence(q, p), rtol=1e-5)
    np.testing.assert_allclose(
        np.sum(head.kl_per_dim(params, prior), -1),
        tfd.kl_divergence(q, p), rtol=1e-5)
    np.testing.assert_allclose(
        kv.objectives.kl_divergence(head, params, prior),
        tfd.kl_divergence(q, p), rtol=1e-5)


def test_monte_carlo_kl_through_the_sampling_layer_averages_to_tfp():
    # Forced through the sampling path: one draw per row, the added loss is
    # the batch mean of log q(z|x) - log p(z) over 20000 copies of q.
    rows = 20000
    z_mean = tf.constant(np.tile([[0.7, -1.2, 0.1]], (rows, 1)), tf.float32)
    z_log_var = tf.constant(np.tile([[-0.4, 0.3, -1.5]], (rows, 1)),
                            tf.float32)
    layer = kv.Sampling(seed=5, posterior=_NoClosedForm(),
                        prior=kv.priors.StandardNormal(latent_dim=3))
    z = layer([z_mean, z_log_var])
    added = float(layer.losses[0])
    q = tfd.MultivariateNormalDiag(loc=z_mean[0],
                                   scale_diag=tf.exp(0.5 * z_log_var[0]))
    exact = float(tfd.kl_divergence(
        q, tfd.MultivariateNormalDiag(loc=tf.zeros(3))))
    per_row = (q.log_prob(z) - tfd.MultivariateNormalDiag(
        loc=tf.zeros(3)).log_prob(z)).numpy()
    np.testing.assert_allclose(added, per_row.mean(), rtol=1e-4)
    assert abs(added - exact) < 4 * per_row.std() / np.sqrt(rows)


def test_a_posterior_without_closed_form_trains_with_the_monte_carlo_kl():
    enc = kv.build_mlp_encoder(SHAPE, 2, hidden_units=(8,))
    dec = kv.build_mlp_decoder(2, SHAPE, hidden_units=(8,))
    vae = kv.VAE(enc, dec, posterior=_NoClosedForm(), seed=1)
    x = (np.random.default_rng(0).uniform(size=(64,) + SHAPE) > 0.5).astype(
        "float32")
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.copy() for w in enc.get_weights()]
    history = vae.fit(x, epochs=2, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["kl_loss"]))
    assert any(not np.array_equal(a, b)
               for a, b in zip(before, enc.get_weights()))
    # The evaluation's KL is then the Monte-Carlo one from its own draws,
    # which averages to the closed form of the same q.
    result = kv.evaluation.log_likelihood(vae, x[:8], num_samples=4000,
                                          verbose=0)
    z_mean, z_log_var = vae.encode(x[:8])
    closed = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var, -1)
    np.testing.assert_allclose(result.kl, closed, atol=0.1)


def test_wrong_number_of_parameter_tensors():
    head = kv.posteriors.DiagonalGaussian()
    with pytest.raises(ValueError, match="takes 2 parameter tensors"):
        head.from_encoder([tf.zeros((1, 2))])
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        kv.Sampling()([tf.zeros((1, 2))] * 3)


def test_encoder_outputs_that_do_not_fit_the_posterior():
    x = keras.Input(SHAPE)
    h = keras.layers.Flatten()(x)
    enc = keras.Model(x, [keras.layers.Dense(2)(h), keras.layers.Dense(3)(h)])
    dec = kv.build_mlp_decoder(2, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match=r"params_size\(latent_dim\)"):
        kv.VAE(enc, dec)
    one = keras.Model(x, keras.layers.Dense(2)(h))
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        kv.VAE(one, dec)


@pytest.mark.parametrize("bad", ["diag", 1.0, kv.priors.StandardNormal()])
def test_objects_that_are_not_posteriors_are_refused(bad):
    with pytest.raises(ValueError, match="posterior"):
        kv.posteriors.get(bad)
    enc = kv.build_mlp_encoder(SHAPE, 2, hidden_units=(4,))
    dec = kv.build_mlp_decoder(2, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match="posterior"):
        kv.VAE(enc, dec, posterior=bad)


def test_free_bits_need_a_kl_that_splits_by_dimension():
    enc = kv.build_mlp_encoder(SHAPE, 2, hidden_units=(4,))
    dec = kv.build_mlp_decoder(2, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match="free_bits"):
        kv.VAE(enc, dec, posterior=_NoClosedForm(), free_bits=0.1)


def test_keras_file_round_trip_keeps_the_parts(tmp_path):
    vae = kv.build_mlp_vae(SHAPE, 2, hidden_units=(4,), posterior="diagonal")
    x = np.random.default_rng(1).uniform(size=(5,) + SHAPE).astype("float32")
    vae.save(tmp_path / "v.keras")
    loaded = keras.models.load_model(tmp_path / "v.keras", safe_mode=True)
    assert isinstance(loaded.posterior, kv.posteriors.DiagonalGaussian)
    for a, b in zip(loaded.encode(x), vae.encode(x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_log_prob_of_a_draw_is_exact_even_for_a_very_narrow_q():
    head = kv.posteriors.DiagonalGaussian()
    eps = tf.random.stateless_normal((6, 3, 4), seed=[7, 7])
    params = _params()
    z, log_q = head.sample_and_log_prob(params, eps)
    np.testing.assert_allclose(log_q, head.log_prob(params, z), rtol=1e-5)
    # sigma = exp(-17.5) ~ 2.5e-8, below float32's spacing near z_mean:
    # recomputing log q from z loses it, the draw's own density does not.
    narrow = [params[0], tf.fill(params[0].shape, -35.0)]
    _, log_q = head.sample_and_log_prob(narrow, eps)
    e = eps.numpy().astype("float64")
    exact = -0.5 * np.sum(np.log(2 * np.pi) - 35.0 + e**2, -1)
    np.testing.assert_allclose(log_q, exact, rtol=1e-6)


# -- the full-covariance Gaussian -----------------------------------------------
def _tril_params(rng, batch, latent_dim, off_scale=0.5):
    z_mean = rng.normal(size=(batch, latent_dim))
    entries = rng.normal(scale=off_scale,
                         size=(batch, latent_dim * (latent_dim + 1) // 2))
    return z_mean.astype("float32"), entries.astype("float32")


def _numpy_tril(entries, latent_dim):
    """fill_triangular's row order, written out: the rows of the lower
    triangle, then log-variance diagonal -> standard deviations."""
    head = kv.posteriors.FullCovarianceGaussian()
    filled = tfp.math.fill_triangular(entries).numpy().astype("float64")
    diag = np.exp(0.5 * np.diagonal(filled, axis1=-2, axis2=-1))
    out = np.tril(filled, -1)
    idx = np.arange(latent_dim)
    out[..., idx, idx] = diag
    assert head.params_size(latent_dim)[1] == entries.shape[-1]
    return out


def test_full_covariance_log_prob_is_the_numpy_density():
    rng = np.random.default_rng(0)
    head = kv.posteriors.FullCovarianceGaussian()
    assert head.params_size(4) == (4, 10)
    z_mean, entries = _tril_params(rng, 3, 4)
    scale = _numpy_tril(entries, 4)
    np.testing.assert_allclose(head.scale_tril([z_mean, entries]), scale,
                               rtol=1e-6)
    z = rng.normal(size=(5, 3, 4))
    cov = scale @ np.swapaxes(scale, -1, -2)
    diff = z - z_mean
    maha = np.einsum("sbi,bij,sbj->sb", diff, np.linalg.inv(cov), diff)
    by_hand = -0.5 * (4 * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1]
                      + maha)
    ours = head.log_prob([tf.constant(z_mean), tf.constant(entries)],
                         tf.constant(z, tf.float32)).numpy()
    np.testing.assert_allclose(ours, by_hand, rtol=1e-4, atol=1e-4)
    # The draw's log q (from the noise and the log-determinant) is the same.
    eps = tf.random.stateless_normal((5, 3, 4), seed=[1, 2])
    zz, log_q = head.sample_and_log_prob([z_mean, entries], eps)
    np.testing.assert_allclose(zz, z_mean + np.einsum("bij,sbj->sbi", scale,
                                                      eps.numpy()),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_q, head.log_prob([z_mean, entries], zz),
                               rtol=1e-4, atol=1e-4)
    # Closed-form KL against N(0, I) is TFP's and numpy's.
    kl = head.kl_divergence([z_mean, entries], kv.priors.StandardNormal(
        latent_dim=4)).numpy()
    np.testing.assert_allclose(kl, tfd.kl_divergence(
        head.distribution([z_mean, entries]),
        tfd.MultivariateNormalDiag(tf.zeros(4))), rtol=1e-5)
    np.testing.assert_allclose(kl, 0.5 * (np.trace(cov, axis1=-2, axis2=-1)
                                          + np.sum(z_mean ** 2, -1) - 4
                                          - np.linalg.slogdet(cov)[1]),
                               rtol=1e-5)


def test_full_covariance_with_a_diagonal_factor_is_the_diagonal_gaussian():
    rng = np.random.default_rng(1)
    z_mean = rng.normal(size=(3, 4)).astype("float32")
    z_log_var = rng.uniform(-3, 1, size=(3, 4)).astype("float32")
    entries = np.zeros((3, 10), "float32")
    # Which of the 10 entries fill_triangular puts at (i, i), for each i:
    # place the log variances there, zeros elsewhere.
    where = np.diagonal(tfp.math.fill_triangular(
        np.arange(10.0)).numpy()).astype(int)
    entries[:, where] = z_log_var
    full = kv.posteriors.FullCovarianceGaussian()
    diag = kv.posteriors.DiagonalGaussian()
    np.testing.assert_allclose(
        np.diagonal(full.scale_tril([z_mean, entries]), axis1=1, axis2=2),
        np.exp(0.5 * z_log_var), rtol=1e-6)
    eps = tf.random.stateless_normal((6, 3, 4), seed=[3, 4])
    z_f, lq_f = full.sample_and_log_prob([z_mean, entries], eps)
    z_d, lq_d = diag.sample_and_log_prob([z_mean, z_log_var], eps)
    np.testing.assert_allclose(z_f, z_d, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lq_f, lq_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(full.log_prob([z_mean, entries], z_d),
                               diag.log_prob([z_mean, z_log_var], z_d),
                               rtol=1e-5, atol=1e-5)
    prior = kv.priors.StandardNormal(latent_dim=4)
    np.testing.assert_allclose(full.kl_divergence([z_mean, entries], prior),
                               diag.kl_divergence([z_mean, z_log_var], prior),
                               rtol=1e-5)


def test_full_covariance_model_trains_saves_and_refuses_free_bits(tmp_path):
    vae = kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior="full",
                           seed=2)
    assert [int(o.shape[-1]) for o in vae.encoder.outputs] == [3, 6]
    x = (np.random.default_rng(0).uniform(size=(40,) + SHAPE) > 0.5).astype(
        "float32")
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vae.fit(x, batch_size=10, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    vae.save(tmp_path / "f.keras")
    loaded = keras.models.load_model(tmp_path / "f.keras", safe_mode=True)
    assert isinstance(loaded.posterior, kv.posteriors.FullCovarianceGaussian)
    np.testing.assert_array_equal(loaded.log_weights(x, 10, seed=1),
                                  vae.log_weights(x, 10, seed=1))
    # A VampPrior over full-covariance components: log p(z) is the numpy
    # mixture of the pseudo-inputs' densities (the broadcast path).
    vamp = kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior="full",
                            prior=kv.priors.VampPrior(4, seed=0), seed=2)
    u = vamp.prior.pseudo_inputs.numpy()
    params = vamp.posterior_params(tf.constant(u))
    cov = np.asarray(vamp.posterior.scale_tril(params), "float64")
    cov = cov @ np.swapaxes(cov, -1, -2)
    z = np.random.default_rng(3).normal(size=(7, 3))
    diff = z[:, None] - params[0].numpy()[None]
    maha = np.einsum("nki,kij,nkj->nk", diff, np.linalg.inv(cov), diff)
    comp = -0.5 * (3 * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + maha)
    expected = np.log(np.mean(np.exp(comp), axis=1))
    np.testing.assert_allclose(vamp.prior.log_prob(z.astype("float32")),
                               expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="does not split by dimension"):
        kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior="full",
                         free_bits=0.5)
    with pytest.raises(ValueError, match=r"\['diagonal', 'full', 'iaf'\]"):
        kv.posteriors.get("iaf_typo")


# -- inverse autoregressive flows ------------------------------------------


def _randomised(layer, seed=0, scale=0.5):
    """Sets every weight of `layer` to N(0, scale^2) draws, so that a flow
    (whose output layers start at zero) is far from the identity."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.normal(scale=scale, size=w.shape).astype("float32"))
    return layer


def _iaf_params(batch=4, latent=3, context=5, seed=0):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(size=(batch, latent)), tf.float32),
            tf.constant(rng.normal(scale=0.4, size=(batch, latent)),
                        tf.float32),
            tf.constant(rng.normal(size=(batch, context)), tf.float32)]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("hidden_units", [(), (7,), (6, 5)])
def test_masked_network_output_i_depends_only_on_earlier_inputs(
        reverse, hidden_units):
    # Autodiff Jacobian of each output block: d out_i / d z_j is zero
    # unless j comes before i in the order, and dense below that.
    latent = 4
    net = _randomised(kv.posteriors.MaskedAutoregressiveNetwork(
        latent, hidden_units, num_outputs=2, context_size=3,
        reverse=reverse))
    z = tf.constant(np.random.default_rng(1).normal(size=(2, latent)),
                    tf.float32)
    h = tf.constant(np.random.default_rng(2).normal(size=(2, 3)), tf.float32)
    order = np.arange(latent)[::-1] if reverse else np.arange(latent)
    rank = np.argsort(order)  # rank[i]: position of coordinate i
    allowed = rank[None, :] < rank[:, None]  # [i, j]: j before i
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        outputs = net(z, h)
    for out in outputs:
        jac = tape.batch_jacobian(out, z).numpy()  # (B, L, L)
        assert np.all(jac[:, ~allowed] == 0.0)
        if hidden_units:  # wide enough layers connect every allowed pair
            assert np.all(np.abs(jac[:, allowed]) > 0)


def test_masked_network_with_one_coordinate_sees_only_the_context():
    net = _randomised(kv.posteriors.MaskedAutoregressiveNetwork(
        1, (4,), context_size=2))
    h = tf.constant([[0.3, -1.0]])
    a = net(tf.constant([[5.0]]), h)
    b = net(tf.constant([[-2.0]]), h)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = net(tf.constant([[5.0]]), tf.constant([[1.0, 2.0]]))
    assert not np.allclose(a[0], c[0])


def test_new_flow_is_the_identity_so_q_is_its_base_gaussian():
    iaf = kv.posteriors.InverseAutoregressiveFlow(
        num_flows=3, hidden_units=(6,), context_units=5, latent_dim=3)
    diag = kv.posteriors.DiagonalGaussian()
    params = _iaf_params()
    eps = tf.random.stateless_normal((7, 4, 3), seed=[1, 1])
    z_i, lq_i = iaf.sample_and_log_prob(params, eps)
    z_d, lq_d = diag.sample_and_log_prob(params[:2], eps)
    np.testing.assert_array_equal(z_i, z_d)
    np.testing.assert_allclose(lq_i, lq_d, rtol=1e-6)
    np.testing.assert_array_equal(iaf.mean(params), params[0])
    np.testing.assert_allclose(iaf.log_prob(params, z_d),
                               diag.log_prob(params[:2], z_d), rtol=1e-5)


def test_iaf_log_q_is_base_density_minus_autodiff_log_determinant():
    # Oracle: log N(z0; mu, sigma) from numpy, and log |det dz/dz0| from
    # the Jacobian of the whole flow computed by autodiff, for a flow far
    # from the identity. Also checks that the Jacobian is not diagonal.
    iaf = _randomised(kv.posteriors.InverseAutoregressiveFlow(
        num_flows=2, hidden_units=(8, 8), context_units=5, latent_dim=3),
        seed=4)
    params = _iaf_params(seed=2)
    eps = tf.random.stateless_normal((4, 3), seed=[5, 6])
    mu, log_var = (p.numpy().astype("float64") for p in params[:2])
    z0 = tf.constant(mu + np.exp(0.5 * log_var) * eps.numpy(), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z0)
        z, _ = iaf.push(params, z0)
    jac = tape.batch_jacobian(z, z0).numpy().astype("float64")
    assert np.abs(jac - np.diag(np.diagonal(jac[0]))[None]).max() > 1e-2
    sign, log_det = np.linalg.slogdet(jac)
    assert np.all(sign > 0)
    log_base = -0.5 * np.sum(np.log(2 * np.pi) + log_var
                             + (z0.numpy() - mu) ** 2 / np.exp(log_var), -1)
    z_head, log_q = iaf.sample_and_log_prob(params, eps)
    np.testing.assert_allclose(z_head, z, rtol=1e-6)
    np.testing.assert_allclose(log_q, log_base - log_det, rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(iaf.reparameterize(params, eps), z, rtol=1e-6)


def test_iaf_distribution_inverts_the_flow_through_tfp():
    # TFP's MaskedAutoregressiveFlow inverts each flow by its fixed-point
    # loop: its log_prob at the head's draws equals the draws' log q, and
    # its own draws are reparameterized and have the head's shapes.
    iaf = _randomised(kv.posteriors.InverseAutoregressiveFlow(
        num_flows=2, hidden_units=(8,), context_units=5, latent_dim=3),
        seed=7, scale=0.4)
    params = _iaf_params(seed=3)
    eps = tf.random.stateless_normal((6, 4, 3), seed=[2, 9])
    z, log_q = iaf.sample_and_log_prob(params, eps)
    dist = iaf.distribution(params)
    assert dist.event_shape == [3] and dist.batch_shape == [4]
    assert dist.reparameterization_type == tfd.FULLY_REPARAMETERIZED
    np.testing.assert_allclose(dist.log_prob(z), log_q, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(iaf.log_prob(params, z), log_q, rtol=1e-3,
                               atol=1e-3)
    assert dist.sample(5, seed=[1, 2]).shape == (5, 4, 3)


def test_iaf_monte_carlo_kl_matches_an_independent_estimate():
    # The sampling layer's KL for the IAF (no closed form) is the mean of
    # log q(z) - log p(z) over its draws; with many draws it matches the
    # KL estimated with TFP's densities (the flow inverted) on other draws.
    iaf = _randomised(kv.posteriors.InverseAutoregressiveFlow(
        num_flows=2, hidden_units=(8,), context_units=5, latent_dim=3),
        seed=8, scale=0.3)
    layer = kv.Sampling(seed=0, posterior=iaf, prior="standard_normal")
    layer.prior.set_latent_dim(3)
    params = _iaf_params(batch=2, seed=5)
    z, kl = layer(params, num_samples=4000, return_kl=True)
    dist = iaf.distribution(params)
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(3))
    draws = dist.sample(4000, seed=[4, 4])
    log_ratio = (dist.log_prob(draws) - prior.log_prob(draws)).numpy()
    standard_error = log_ratio.std(0) / np.sqrt(4000)
    np.testing.assert_allclose(kl, log_ratio.mean(0),
                               atol=float(5 * np.sqrt(2)
                                          * standard_error.max()))
    assert layer.losses and np.isclose(float(layer.losses[0]),
                                       float(np.mean(kl)), rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_flows=0), "num_flows"),
    (dict(context_units=0), "context_units"),
    (dict(hidden_units=(4, -1)), "hidden_units"),
    (dict(activation="no_such_activation"), "no_such_activation"),
    (dict(latent_dim=0), "latent_dim"),
])
def test_iaf_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kv.posteriors.InverseAutoregressiveFlow(**kwargs)


def test_iaf_belongs_to_one_latent_size_and_needs_one():
    iaf = kv.posteriors.InverseAutoregressiveFlow(hidden_units=(4,),
                                                  context_units=2)
    with pytest.raises(ValueError, match="no latent_dim yet"):
        iaf.reparameterize(_iaf_params(context=2), tf.zeros((4, 3)))
    kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior=iaf)
    with pytest.raises(ValueError, match="latent_dim=3 but"):
        kv.build_mlp_vae(SHAPE, 2, hidden_units=(8,), posterior=iaf)
    with pytest.raises(ValueError, match="context of size 2"):
        iaf.check_params(_iaf_params(context=5))


def test_iaf_refuses_the_vampprior_and_free_bits_before_training():
    with pytest.raises(ValueError, match="posterior='diagonal' or 'full'"):
        kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior="iaf",
                         prior=kv.priors.VampPrior(4))
    with pytest.raises(ValueError, match="does not split by dimension"):
        kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior="iaf",
                         free_bits=0.5)


def test_iaf_model_trains_its_flows_and_round_trips(tmp_path):
    posterior = kv.posteriors.InverseAutoregressiveFlow(
        num_flows=2, hidden_units=(8,), context_units=4)
    vae = kv.build_mlp_vae(SHAPE, 3, hidden_units=(8,), posterior=posterior,
                           prior=kv.priors.MixtureOfGaussians(2, seed=0),
                           seed=2)
    assert [int(o.shape[-1]) for o in vae.encoder.outputs] == [3, 3, 4]
    flow_weights = [w for w in vae.trainable_weights
                    if any(w is v for v in posterior.weights)]
    assert len(flow_weights) == len(posterior.weights) == 2 * 5
    x = (np.random.default_rng(0).uniform(size=(60,) + SHAPE) > 0.5).astype(
        "float32")
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vae.fit(x, batch_size=10, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # The output layers left zero: the flow is no longer the identity.
    params = vae.posterior_params(tf.constant(x[:5]))
    assert not np.allclose(vae.posterior.mean(params), params[0])
    # log p(x) >= ELBO on average (the IWAE bound with K = 200 vs K = 1).
    log_px = vae.log_likelihood(x, num_samples=200)
    elbo = vae.elbo(x, num_samples=50)
    assert log_px.mean() > elbo.mean()
    vae.save(tmp_path / "iaf.keras")
    loaded = keras.models.load_model(tmp_path / "iaf.keras", safe_mode=True)
    assert isinstance(loaded.posterior, kv.posteriors.InverseAutoregressiveFlow)
    assert loaded.posterior.num_flows == 2
    np.testing.assert_array_equal(loaded.log_weights(x, 10, seed=1),
                                  vae.log_weights(x, 10, seed=1))
    np.testing.assert_array_equal(loaded.reconstruct(x), vae.reconstruct(x))
    for a, b in zip(loaded.encode(x), vae.encode(x)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["iaf", "hierarchical"])
def test_refine_improves_the_elbo_of_flow_and_hierarchical_posteriors(name):
    # Semi-amortized inference on the heads' own parameters (the IAF's
    # base Gaussian and context; the hierarchy's q(z1|x)), then log p(x)
    # with the refined q as the proposal.
    keras.utils.set_random_seed(0)  # the same fit whatever ran before
    x = (np.random.default_rng(0).uniform(size=(30, 6)) > 0.5).astype(
        "float32")
    if name == "iaf":
        vae = kv.build_mlp_vae((6,), 3, hidden_units=(8,), seed=1,
                               posterior=kv.posteriors.
                               InverseAutoregressiveFlow(hidden_units=(8,),
                                                         context_units=3))
    else:
        vae = kv.build_hierarchical_vae((6,), (3, 2), ((8,), (4,)), seed=1)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x, batch_size=10, epochs=3, verbose=0)
    result = kv.evaluation.refine(vae, x[:8], steps=200, learning_rate=5e-2,
                                  eval_samples=200)
    assert len(result.params) == len(vae.posterior.param_names)
    gain = result.elbo_refined - result.elbo_initial
    assert gain.mean() > 0.05
    # Either proposal estimates the same log p(x) from below; the refined
    # q, closer to the posterior, gives the tighter (higher) estimate, and
    # both lie above the refined ELBO.
    refined = kv.evaluation.log_likelihood(
        vae, x[:8], num_samples=2000, proposal=result.params, verbose=0)
    amortized = kv.evaluation.log_likelihood(vae, x[:8], num_samples=2000,
                                             verbose=0)
    assert refined.values.mean() >= amortized.values.mean() - 0.05
    assert refined.values.mean() - amortized.values.mean() < 0.5
    assert np.all(refined.values >= result.elbo_refined - 0.1)
