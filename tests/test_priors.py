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


# -- the mixture priors ---------------------------------------------------------
from helpers import Interrupt, binary_data, tiny_vae  # noqa: E402


def _logsumexp(a, axis=-1):
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _np_log_normal(z, mean, log_var):
    return -0.5 * np.sum(np.log(2 * np.pi) + log_var
                         + (z - mean) ** 2 / np.exp(log_var), axis=-1)


def _set_mog(prior, logits, means, log_vars):
    prior.logits.assign(np.asarray(logits, "float32"))
    prior.means.assign(np.asarray(means, "float32"))
    prior.log_vars.assign(np.asarray(log_vars, "float32"))


def test_mog_log_prob_is_the_numpy_mixture_and_tfp():
    rng = np.random.default_rng(1)
    prior = kv.priors.MixtureOfGaussians(num_components=3, latent_dim=2,
                                         seed=0)
    logits, means = rng.normal(size=3), rng.normal(size=(3, 2))
    log_vars = rng.uniform(-1.5, 1.0, size=(3, 2))
    _set_mog(prior, logits, means, log_vars)
    z = rng.normal(size=(4, 5, 2)).astype("float32")
    ours = prior.log_prob(tf.constant(z)).numpy()
    assert ours.shape == (4, 5)
    log_pi = logits - _logsumexp(logits[None])  # log softmax
    by_hand = _logsumexp(log_pi + _np_log_normal(
        z.astype("float64")[..., None, :], means, log_vars))
    np.testing.assert_allclose(ours, by_hand, rtol=1e-5)
    independent = tfd.MixtureSameFamily(
        tfd.Categorical(logits=logits.astype("float32")),
        tfd.MultivariateNormalDiag(
            loc=means.astype("float32"),
            scale_diag=np.exp(0.5 * log_vars).astype("float32")))
    np.testing.assert_allclose(ours, independent.log_prob(z), rtol=1e-5)
    np.testing.assert_allclose(prior.distribution().log_prob(z), by_hand,
                               rtol=1e-5)
    # float64 z (the evaluation's refinement scores in float64) works too.
    np.testing.assert_allclose(
        prior.log_prob(tf.constant(z, tf.float64)).numpy(), by_hand,
        rtol=1e-6)


def test_mog_draws_are_stateless_and_follow_the_mixture():
    prior = kv.priors.MixtureOfGaussians(num_components=2, latent_dim=1)
    # Weights 0.25 / 0.75 at -3 and +3, unit variances.
    _set_mog(prior, np.log([0.25, 0.75]), [[-3.0], [3.0]], [[0.0], [0.0]])
    a = prior.sample(20000, 5).numpy()
    np.testing.assert_array_equal(a, prior.sample(20000, 5).numpy())
    assert not np.allclose(a[:10], prior.sample(10, 6).numpy())
    assert a.shape == (20000, 1)
    share = np.mean(a[:, 0] > 0)  # the two modes barely overlap
    assert abs(share - 0.75) < 6 * np.sqrt(0.75 * 0.25 / 20000) + 0.002
    np.testing.assert_allclose(a.mean(), 0.25 * -3 + 0.75 * 3, atol=0.06)


def test_monte_carlo_kl_through_the_sampling_layer_averages_to_tfp():
    # A one-component mixture at N(0, I) has no closed-form KL in TFP, so
    # the layer takes the Monte-Carlo path; its average over many draws
    # must be the closed form KL(q || N(0, I)) within Monte-Carlo error.
    prior = kv.priors.MixtureOfGaussians(num_components=1, latent_dim=3)
    _set_mog(prior, [0.0], np.zeros((1, 3)), np.zeros((1, 3)))
    layer = kv.Sampling(seed=2, prior=prior)
    rng = np.random.default_rng(3)
    z_mean = rng.normal(size=(4, 3)).astype("float32")
    z_log_var = rng.uniform(-2, 0.5, size=(4, 3)).astype("float32")
    params = [tf.constant(z_mean), tf.constant(z_log_var)]
    s = 20000
    z = layer(params, num_samples=s)
    added = float(layer.losses[-1])
    exact = tfd.kl_divergence(
        tfd.MultivariateNormalDiag(z_mean, np.exp(0.5 * z_log_var)),
        tfd.MultivariateNormalDiag(tf.zeros(3))).numpy()
    log_ratio = (_np_log_normal(np.asarray(z, "float64"), z_mean, z_log_var)
                 - _np_log_normal(np.asarray(z, "float64"), 0.0, 0.0))
    se = log_ratio.mean(1).std() / np.sqrt(s)  # of the batch mean
    assert abs(added - exact.mean()) < 5 * se, (added, exact.mean(), se)
    np.testing.assert_allclose(added, log_ratio.mean(), rtol=1e-4)


def _twin_models():
    """The same tiny VAE (weights and sampler seed) with the standard-normal
    prior and with a one-component mixture fixed at N(0, I)."""
    standard = tiny_vae()
    mog = tiny_vae(prior=kv.priors.MixtureOfGaussians(num_components=1))
    for a, b in zip(standard.encoder.weights + standard.decoder.weights,
                    mog.encoder.weights + mog.decoder.weights):
        b.assign(a)
    _set_mog(mog.prior, [0.0], np.zeros((1, 3)), np.zeros((1, 3)))
    return standard, mog


def test_one_component_mog_at_the_standard_normal_gives_its_scores():
    standard, mog = _twin_models()
    x = binary_data(12)
    np.testing.assert_allclose(mog.log_weights(x, 50, seed=4),
                               standard.log_weights(x, 50, seed=4),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mog.log_likelihood(x, 300, verbose=0),
                               standard.log_likelihood(x, 300, verbose=0),
                               rtol=1e-5, atol=1e-5)
    # For the same draws the mixture's ELBO (Monte-Carlo KL) is the mean of
    # the standard model's log weights, and the closed-form ELBO agrees with
    # it within Monte-Carlo error.
    params = standard.posterior_params(tf.constant(x))
    eps = tf.random.stateless_normal((400, 12, 3), seed=[9, 9])
    z = standard.posterior.reparameterize(params, eps)
    log_w = standard.log_weights_at(params, z, standard.log_px_z(x, z))
    elbo_mog = mog.elbo_terms_at(x, params, z)["elbo"].numpy()
    np.testing.assert_allclose(elbo_mog, np.mean(log_w, 0), rtol=1e-5,
                               atol=1e-4)
    elbo_closed = standard.elbo_terms_at(x, params, z)["elbo"].numpy()
    se = np.std(log_w, 0) / np.sqrt(400)
    assert np.all(np.abs(elbo_mog - elbo_closed) < 5 * se + 1e-4)


def _vamp_vae(k=4, seed=5):
    return tiny_vae(prior=kv.priors.VampPrior(num_pseudo_inputs=k,
                                              seed=seed))


def test_vamp_log_prob_is_the_mixture_of_encoded_pseudo_inputs():
    vae = _vamp_vae()
    u = vae.prior.pseudo_inputs.numpy()
    assert u.shape == (4, 6) and 0.0 <= u.min() and u.max() <= 1.0
    z_mean, z_log_var = (np.asarray(a, "float64") for a in vae.encode(u))
    z = np.random.default_rng(2).normal(size=(3, 7, 3))
    by_hand = _logsumexp(_np_log_normal(z[..., None, :], z_mean, z_log_var)) \
        - np.log(4)
    ours = vae.prior.log_prob(tf.constant(z, tf.float32)).numpy()
    np.testing.assert_allclose(ours, by_hand, rtol=1e-5)
    np.testing.assert_allclose(vae.prior.distribution().log_prob(
        z.astype("float32")), by_hand, rtol=1e-5)
    # The model scores with it: log w = log p(x|z) + log p_vamp(z) - log q.
    x = binary_data(5)
    params = vae.posterior_params(tf.constant(x))
    zz = vae.posterior.reparameterize(
        params, tf.random.stateless_normal((2, 5, 3), seed=[1, 2]))
    log_w = vae.log_weights_at(params, zz, vae.log_px_z(x, zz)).numpy()
    expected = (vae.log_px_z(x, zz).numpy()
                + _logsumexp(_np_log_normal(np.asarray(zz, "float64")[
                    ..., None, :], z_mean, z_log_var)) - np.log(4)
                - _np_log_normal(np.asarray(zz, "float64"),
                                 params[0].numpy(), params[1].numpy()))
    np.testing.assert_allclose(log_w, expected, rtol=1e-5, atol=1e-4)


def test_vamp_draws_come_from_the_components_and_are_stateless():
    vae = _vamp_vae(k=2)
    # Two well separated, narrow components: push the encoder's outputs.
    u = np.array([[0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], "float32")
    vae.prior.pseudo_inputs.assign(u)
    z_mean, z_log_var = vae.encode(u)
    a = vae.prior.sample(4000, 3).numpy()
    np.testing.assert_array_equal(a, vae.prior.sample(4000, 3).numpy())
    # Each draw is z_mean_k + sigma_k eps for a uniform k: the mean is the
    # components' average.
    sigma = np.exp(0.5 * z_log_var.astype("float64"))
    spread = np.sqrt(np.mean(sigma ** 2, 0) + np.var(z_mean, 0)) / np.sqrt(4000)
    assert np.all(np.abs(a.mean(0) - z_mean.mean(0)) < 6 * spread)
    assert vae.sample(3, seed=1).shape == (3, 6)


def test_vamp_learns_pseudo_inputs_and_initialises_from_data():
    vae = _vamp_vae(k=3)
    x = binary_data(60)
    with pytest.raises(ValueError, match="at least 3 examples of shape"):
        vae.prior.initialize_from(x[:2])
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        vae.prior.initialize_from(np.zeros((5, 7), "float32"))
    vae.prior.initialize_from(x, seed=1)
    start = vae.prior.pseudo_inputs.numpy()
    assert all(any(np.array_equal(row, xi) for xi in x) for row in start)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x, batch_size=20, epochs=1, verbose=0)
    assert any(w is vae.prior.pseudo_inputs for w in vae.trainable_weights)
    assert not np.allclose(vae.prior.pseudo_inputs.numpy(), start)


def test_mixture_prior_errors():
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="num_components"):
            kv.priors.MixtureOfGaussians(num_components=bad)
        with pytest.raises(ValueError, match="num_pseudo_inputs"):
            kv.priors.VampPrior(num_pseudo_inputs=bad)
    with pytest.raises(ValueError, match=r"\['mog', 'standard_normal', "
                                         r"'vamp'\]"):
        kv.priors.get("vampprior")
    for prior in ("mog", "vamp"):
        with pytest.raises(ValueError, match="does not split by dimension"):
            tiny_vae(prior=prior, free_bits=0.5)
    with pytest.raises(ValueError, match="Pass it to a keras_vae.VAE"):
        kv.priors.VampPrior(3, latent_dim=2).log_prob(tf.zeros((1, 2)))
    vamp = kv.priors.VampPrior(3)
    tiny_vae(prior=vamp)
    with pytest.raises(ValueError, match="pseudo-inputs have shape"):
        kv.build_mlp_vae((5,), 3, hidden_units=(4,), prior=vamp)


@pytest.mark.parametrize("name", ["mog", "vamp"])
def test_mixture_priors_survive_keras_files_with_safe_mode(tmp_path, name):
    vae = tiny_vae(prior=kv.priors.get(name))
    x = binary_data(30)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x, batch_size=10, epochs=1, verbose=0)
    vae.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.prior) is type(vae.prior)
    for a, b in zip(vae.prior.weights, loaded.prior.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(loaded.trainable_weights) == len(vae.trainable_weights)
    np.testing.assert_array_equal(loaded.log_weights(x, 20, seed=1),
                                  vae.log_weights(x, 20, seed=1))
    np.testing.assert_array_equal(loaded.sample(4, seed=2),
                                  vae.sample(4, seed=2))
    z = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.prior.log_prob(z),
                                  vae.prior.log_prob(z))


# The parts of keras_vae.priors and keras_vae.posteriors beyond the default
# pair, each in a model of its own.
_PART_CASES = {"mog": dict(prior="mog"), "vamp": dict(prior="vamp"),
               "full": dict(posterior="full"),
               "vamp+full": dict(prior="vamp", posterior="full"),
               "iaf": dict(posterior="iaf"),
               "mog+iaf": dict(prior="mog", posterior="iaf"),
               # Two stochastic layers of 2 and 1 units (a 3-number latent).
               "hierarchical": dict(latent_dims=(2, 1))}


def _part_model(parts):
    if "latent_dims" in parts:
        return kv.build_hierarchical_vae((6,), parts["latent_dims"],
                                         ((8,), (4,)), seed=3)
    return tiny_vae(**parts)


def test_exported_signatures_with_new_parts_match_the_model(tmp_path):
    """Each model (mixture priors, full-covariance and flow posteriors, a
    hierarchy) exported and served in a TensorFlow-only process: every
    signature equals the in-process model on the noise the export
    documents (eps_k, k = 0, 1, ...)."""
    from keras_vae import export as export_lib
    from test_export import Bundle

    bundle = Bundle(tmp_path)
    k = 300  # crosses two noise chunks
    for name, parts in _PART_CASES.items():
        vae = _part_model(parts)
        x = binary_data(30)
        vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        vae.fit(x, batch_size=10, epochs=1, verbose=0)
        bundle.models[name], bundle.x[name] = vae, x[:7]
        bundle.paths[name] = kv.export_saved_model(vae, tmp_path / name,
                                                   warmup=False)
        bundle.request(name, "encode", "x", x=x[:7])
        bundle.request(name, "sample", "s", num_samples=np.int32(5),
                       seed=np.int32(3))
        bundle.request(name, "elbo", "x", x=x[:7])
        bundle.request(name, "log_likelihood", "k", x=x[:7],
                       num_samples=np.int32(k))
    bundle.run()
    assert not [m for m in bundle.info["modules"]
                if m.split(".")[0] in ("keras_vae", "tensorflow_probability")]
    chunks = [tf.random.stateless_normal(
        [export_lib.CHUNK_SIZE, 3], seed=[export_lib.NOISE_SEED, c])
        for c in range(-(-k // export_lib.CHUNK_SIZE))]
    eps = tf.concat(chunks, 0)[:k, None]  # (K, 1, L), eps_0 first
    for name in _PART_CASES:
        vae, x = bundle.models[name], bundle.x[name]
        for key, value in zip(vae.posterior.param_names, vae.encode(x)):
            np.testing.assert_allclose(bundle.out(name, "encode", "x", key),
                                       value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bundle.out(name, "sample", "s", "z"),
                                   vae.prior.sample(5, [3, 0]), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(bundle.out(name, "sample", "s", "x_mean"),
                                   vae.sample(5, seed=3), rtol=1e-5,
                                   atol=1e-6)
        params = vae.posterior_params(tf.constant(x))
        log_w, log_px_z = (np.asarray(a, "float64") for a in vae.score_draws(
            tf.constant(x), params, eps))  # (K, B) each
        closed = vae.posterior.kl_divergence(params, vae.prior)
        if closed is None:
            # One draw and the Monte-Carlo KL: the ELBO is log w at eps_0.
            expected = log_w[0]
        else:  # the full-covariance q against N(0, I): the closed form
            expected = log_px_z[0] - np.asarray(closed, "float64")
        np.testing.assert_allclose(bundle.out(name, "elbo", "x", "elbo"),
                                   expected, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(
            bundle.out(name, "log_likelihood", "k", "log_likelihood"),
            _logsumexp(log_w.T) - np.log(k), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["standard_normal", "vamp", "iaf",
                                  "hierarchical"])
def test_a_run_interrupted_and_resumed_ends_with_the_same_weights(
        tmp_path, name):
    from keras_vae import callbacks as kcb

    x = binary_data(50)

    def build():
        if name == "vamp":
            return _vamp_vae(k=4)
        if name == "iaf":
            return tiny_vae(posterior=kv.posteriors.InverseAutoregressiveFlow(
                hidden_units=(6,), context_units=3))
        if name == "hierarchical":
            return _part_model(_PART_CASES["hierarchical"])
        return tiny_vae()

    init = build().get_weights()  # pseudo-inputs included

    def train(backup_dir, extra=()):
        vae = build()
        vae.set_weights(init)
        vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        backup = kcb.BackupAndRestore(backup_dir, save_freq=2)
        stream = kv.data.TrainingStream(x, batch_size=10, seed=11)
        vae.fit(stream, epochs=3, verbose=0,
                callbacks=[kcb.LinearKLWarmup(7), backup, *extra])
        return vae

    reference = train(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        train(str(tmp_path / "b"), [Interrupt(7)])
    resumed = train(str(tmp_path / "b"))
    assert int(resumed.optimizer.iterations) == 15
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    if name == "vamp":
        np.testing.assert_allclose(reference.prior.pseudo_inputs.numpy(),
                                   resumed.prior.pseudo_inputs.numpy(),
                                   atol=1e-6)


@pytest.mark.parametrize("name", ["mog", "vamp"])
def test_evaluation_features_run_on_mixture_priors(name):
    vae = tiny_vae(prior=kv.priors.get(name))
    x = binary_data(40)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x, batch_size=10, epochs=2, verbose=0)
    report = kv.evaluation.report(vae, x, num_samples=200, verbose=0,
                                  protocol="test draws")
    # No per-dimension KL against a mixture; the gap log p(x) - ELBO is
    # still >= 0 up to Monte-Carlo error, and log p(x) matches the method.
    assert report["kl_per_dim"] is None
    assert report["gap"]["mean"] >= -3 * report["gap"]["stderr"] - 1e-3
    np.testing.assert_allclose(
        report["log_likelihood"]["mean"],
        np.mean(kv.evaluation.log_likelihood(vae, x, num_samples=200,
                                             verbose=0).values),
        rtol=1e-6)
    refined = kv.evaluation.refine(vae, x[:8], steps=30, eval_samples=200)
    # The per-example optimum of the ELBO is no worse than the encoder's.
    assert np.mean(refined.elbo_refined) >= np.mean(refined.elbo_initial) - 0.5
    found = kv.evaluation.map_estimate(vae, x[:8], steps=30)
    z = found.z.astype("float64")
    np.testing.assert_allclose(found.log_pz,
                               vae.prior.log_prob(tf.constant(z)).numpy(),
                               rtol=1e-6)
