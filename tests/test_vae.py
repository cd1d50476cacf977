"""VAE model: ELBO against a hand computation, training, save/load, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import likelihoods

SHAPE = (2, 3, 1)


def _tiny(likelihood="bernoulli", **kwargs):
    return kv.build_mlp_vae(SHAPE, 2, hidden_units=(4,),
                            likelihood=likelihood, seed=3, **kwargs)


def _binary(n=8, seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return (rng.random((n,) + shape) < 0.4).astype("float32")


def test_elbo_equals_its_parts_computed_by_hand():
    vae = _tiny()
    x = _binary()
    state = vae.sampler.seed_generator.state.numpy().copy()
    terms = vae.compute_terms(tf.constant(x), num_samples=3)
    # Replay the same noise, then redo the maths in numpy.
    vae.sampler.seed_generator.state.assign(state)
    z_mean, z_log_var = [np.asarray(t, "float64") for t in vae.encoder(x)]
    z = np.asarray(vae.sampler([z_mean.astype("float32"),
                                z_log_var.astype("float32")],
                               num_samples=3), "float64")  # (3, 8, 2)
    w = {v.path: np.asarray(v, "float64") for v in vae.decoder.weights}
    kernel_h = [w[k] for k in w if "hidden_0/kernel" in k][0]
    bias_h = [w[k] for k in w if "hidden_0/bias" in k][0]
    kernel_o = [w[k] for k in w if "params/kernel" in k][0]
    bias_o = [w[k] for k in w if "params/bias" in k][0]
    logits = np.tanh(z @ kernel_h + bias_h) @ kernel_o + bias_o  # (3, 8, 6)
    xf = x.reshape(1, 8, 6)
    log_px_z = np.sum(xf * -np.logaddexp(0, -logits)
                      + (1 - xf) * -np.logaddexp(0, logits), -1)
    kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1 - z_log_var, -1)
    np.testing.assert_allclose(terms["log_px_z"], log_px_z, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], log_px_z.mean(0) - kl,
                               rtol=1e-5)
    # The training loss is -mean(reconstruction) + the KL from add_loss.
    assert float(terms["loss"]) == pytest.approx(
        -log_px_z.mean() + kl.mean(), rel=1e-5)


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_reported_metrics_are_unweighted_and_loss_is_weighted(beta):
    vae = _tiny(beta=beta)
    vae.compile()
    x = _binary(16)
    m = vae.evaluate(x, batch_size=16, return_dict=True, verbose=0)
    assert m["elbo"] == pytest.approx(
        -(m["reconstruction_loss"] + m["kl_loss"]), rel=1e-5)
    assert m["loss"] == pytest.approx(
        m["reconstruction_loss"] + beta * m["kl_loss"], rel=1e-5)


def test_fit_lowers_the_loss_on_real_mnist(mnist_slice):
    x_train, _, x_test = mnist_slice
    rng = np.random.default_rng(0)
    xb = (rng.random(x_train.shape) < x_train).astype("float32")
    xt = (rng.random(x_test.shape) < x_test).astype("float32")
    vae = kv.build_mlp_vae((28, 28, 1), 10, hidden_units=(200, 200), seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = vae.evaluate(xt, batch_size=500, return_dict=True, verbose=0)
    history = vae.fit(xb, epochs=3, batch_size=100, verbose=0)
    after = vae.evaluate(xt, batch_size=500, return_dict=True, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 20
    # An untrained decoder scores about 784 * log 2 = 543 nats per digit.
    assert before["elbo"] < -450
    assert after["elbo"] > before["elbo"] + 200
    assert np.isfinite(after["kl_loss"]) and after["kl_loss"] > 0


def test_several_samples_per_example():
    vae = _tiny(num_samples=5)
    terms = vae.compute_terms(tf.constant(_binary()))
    assert tuple(terms["log_px_z"].shape) == (5, 8)
    vae.compile()
    vae.fit(_binary(32), epochs=1, batch_size=8, verbose=0)


def test_reconstruct_sample_encode_decode():
    vae = _tiny()
    x = _binary()
    np.testing.assert_array_equal(vae.reconstruct(x), vae.reconstruct(x))
    assert vae.reconstruct(x).shape == (8,) + SHAPE
    a = vae.reconstruct(x, mode="sample", seed=1)
    assert set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a, vae.reconstruct(x, mode="sample",
                                                     seed=1))
    np.testing.assert_array_equal(vae.sample(4, seed=2),
                                  vae.sample(4, seed=2))
    assert not np.allclose(vae.sample(4, seed=2), vae.sample(4, seed=3))
    z_mean, z_log_var = vae.encode(x)
    assert z_mean.shape == z_log_var.shape == (8, 2)
    dist = vae.decode(z_mean)
    assert tuple(dist.event_shape) == SHAPE
    np.testing.assert_allclose(dist.mean(), vae.reconstruct(x), rtol=1e-6)
    assert vae.elbo(x).shape == (8,)
    with pytest.raises(ValueError, match="Expected 'mean' or 'sample'"):
        vae.reconstruct(x, mode="median")
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        vae.decode(np.zeros((3, 5)))


HEADS = {
    "bernoulli": lambda: "bernoulli",
    "continuous_bernoulli": lambda: "continuous_bernoulli",
    "gaussian_fixed": lambda: likelihoods.Gaussian(0.1),
    "gaussian_learned": lambda: likelihoods.Gaussian("learned"),
    "gaussian_per_dimension": lambda: likelihoods.Gaussian("per_dimension"),
    "gaussian_heteroscedastic": lambda: likelihoods.Gaussian(
        "heteroscedastic"),
    "gaussian_optimal": lambda: likelihoods.Gaussian("optimal"),
}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_keras_file_round_trip(tmp_path, arch, head):
    shape = (8, 8, 1)
    if arch == "mlp":
        vae = kv.build_mlp_vae(shape, 3, hidden_units=(16,),
                               likelihood=HEADS[head](), seed=4)
    else:
        vae = kv.build_conv_vae(shape, 3, likelihood=HEADS[head](),
                                filters=(4, 8), dense_units=8, seed=4)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.default_rng(1).random((16,) + shape).astype("float32")
    vae.fit(x, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.likelihood) is type(vae.likelihood)
    for a, b in zip(vae.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(loaded.reconstruct(x), vae.reconstruct(x),
                               atol=1e-6)
    np.testing.assert_allclose(loaded.sample(5, seed=9),
                               vae.sample(5, seed=9), atol=1e-6)
    # The sampler's RNG state travels too: the same noise, the same ELBO.
    np.testing.assert_allclose(loaded.elbo(x), vae.elbo(x), rtol=1e-5)
    # The loaded model keeps training where it stopped.
    loaded.fit(x, epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize("latent_dim", [0, -3, 2.5, True, "2"])
def test_bad_latent_dim(latent_dim):
    with pytest.raises(ValueError, match="latent_dim"):
        kv.build_mlp_vae(SHAPE, latent_dim)


def test_numpy_integers_are_counts_like_python_ints(tmp_path):
    # Sizes read from a numpy array or a config (np.int64) build, train,
    # score and save the same model as Python ints do.
    shape = (8, 8, 1)
    x = np.random.default_rng(2).random((16,) + shape).astype("float32")
    models = []
    for to_int in (int, np.int64):
        keras.utils.set_random_seed(4)
        vae = kv.build_mlp_vae(shape, to_int(3),
                               hidden_units=np.array([16, 8])
                               if to_int is np.int64 else (16, 8),
                               seed=4)
        vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        vae.fit(x, epochs=1, batch_size=to_int(8), verbose=0)
        models.append(vae)
    plain, numpy_built = models
    for a, b in zip(plain.weights, numpy_built.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(numpy_built.elbo(x, num_samples=np.int64(3)),
                               plain.elbo(x, num_samples=3), rtol=1e-6)
    path = tmp_path / "numpy_ints.keras"
    numpy_built.save(path)  # the config holds Python ints (JSON)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.reconstruct(x), plain.reconstruct(x),
                               atol=1e-6)


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="Unknown likelihood 'gausian'"):
        kv.build_conv_vae((28, 28, 1), 2, likelihood="gausian")


def test_fit_on_uint8_trains_on_pixels_over_255():
    # The one input rule (keras_vae.data.checks): uint8 k -> k / 255, in
    # fit as in every other entry point. Oracle: the same fit on the
    # scaled floats, from the same weights and seeds.
    grey = np.random.RandomState(0).randint(0, 256, (16, 2, 3, 1))
    x8 = grey.astype(np.uint8)
    weights = []
    for x in (x8, (grey / 255.0).astype(np.float32)):
        keras.utils.set_random_seed(0)
        vae = kv.build_mlp_vae(SHAPE, 2, hidden_units=(4,),
                               likelihood="continuous_bernoulli", seed=0)
        vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        vae.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights.append([w.numpy() for w in vae.weights])
    for a, b in zip(*weights):  # k / 255 rounds either way in float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_data_is_rejected_before_training():
    vae = _tiny()
    vae.compile()
    x = _binary()
    with pytest.raises(ValueError, match=r"examples of shape \(6,\).*"
                                         r"expects \(2, 3, 1\)"):
        vae.fit(x.reshape(8, 6), epochs=1, verbose=0)
    bad = x.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite.*\[2\]"):
        vae.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="binarize.*continuous_bernoulli"):
        vae.fit(x * 255.0, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        vae.fit(x[:0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"dtype <U"):
        vae.fit(x.astype(str), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        vae.fit(x, sample_weight=np.ones(8), epochs=1, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices(x.reshape(8, 6)).batch(4)
    with pytest.raises(ValueError, match="dataset yields examples"):
        vae.fit(ds, epochs=1, verbose=0)


def test_compile_refuses_a_loss():
    with pytest.raises(ValueError, match="does not take `loss`"):
        _tiny().compile(loss="mse")


def test_mismatched_parts():
    enc = kv.build_mlp_encoder(SHAPE, 2, hidden_units=(4,))
    dec = kv.build_mlp_decoder(3, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match="latent_dim=2"):
        kv.VAE(enc, dec)
    dec = kv.build_mlp_decoder(2, SHAPE, hidden_units=(4,))
    with pytest.raises(ValueError, match="needs 12"):
        kv.VAE(enc, dec, likelihood=likelihoods.Gaussian("heteroscedastic"))
    with pytest.raises(ValueError, match="Unknown objective"):
        kv.VAE(enc, dec, objective="elbow")
    with pytest.raises(ValueError, match="num_samples"):
        kv.VAE(enc, dec, num_samples=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        kv.build_conv_vae((30, 30, 1), 2)


# -- two or more stochastic layers (kv.build_hierarchical_vae) ---------------


def _hierarchy(latent_dims=(4, 2), hidden_units=((8,), (6,)), **kwargs):
    kwargs.setdefault("seed", 1)
    return kv.build_hierarchical_vae((6,), latent_dims, hidden_units,
                                     **kwargs)


def _assign(layer, kernel, bias):
    layer.kernel.assign(np.asarray(kernel, "float32"))
    layer.bias.assign(np.asarray(bias, "float32"))


def _linear_gaussian_model(rng):
    """A linear-Gaussian hierarchy, z2 ~ N(0, 1), z1 | z2 ~ N(W_p z2 + b_p,
    D1), x | z1 ~ N(W_d z1 + b_d, 0.25 I), with q set to the exact
    p(z2 | z1) and to the exact mean and marginal variances of p(z1 | x)
    (diagonal, so q differs from the true posterior). Returns the model and
    the closed-form marginal N(x; mu_x, Sigma_x)."""
    d, l1, l2 = 4, 2, 1
    vae = kv.build_hierarchical_vae(
        (d,), latent_dims=(l1, l2), hidden_units=((), ()),
        likelihood=kv.likelihoods.Gaussian(scale=0.5), seed=0)
    w_p = rng.normal(size=(l1, l2))
    b_p = rng.normal(size=l1)
    log_d1 = rng.uniform(-1.0, 0.5, size=l1)
    w_d = rng.normal(size=(d, l1))
    b_d = rng.normal(size=d)
    d1 = np.diag(np.exp(log_d1))
    # Generative model: p(z1 | z2) with a constant variance, p(x | z1).
    net = vae.prior.downward[0]
    _assign(net.mean_layer, w_p.T, b_p)
    _assign(net.log_var_layer, np.zeros((l2, l1)), log_d1)
    _assign(vae.decoder.get_layer("decoder_z1").get_layer("params"),
            w_d.T, b_d)
    c1 = w_p @ w_p.T + d1
    mu_x = w_d @ b_p + b_d
    sigma_x = w_d @ c1 @ w_d.T + 0.25 * np.eye(d)
    # q(z1 | x): the exact conditional mean, the diagonal of its covariance.
    gain = c1 @ w_d.T @ np.linalg.inv(sigma_x)  # (l1, d)
    cov_z1 = c1 - gain @ w_d @ c1
    _assign(vae.encoder.get_layer("z_mean"), gain.T, b_p - gain @ mu_x)
    _assign(vae.encoder.get_layer("z_log_var"), np.zeros((d, l1)),
            np.log(np.diag(cov_z1)))
    # q(z2 | z1) = p(z2 | z1): x adds nothing about z2 once z1 is known.
    s = np.linalg.inv(np.eye(l2) + w_p.T @ np.linalg.inv(d1) @ w_p)
    k = s @ w_p.T @ np.linalg.inv(d1)  # (l2, l1)
    up = vae.posterior.upward[0]
    _assign(up.mean_layer, k.T, -k @ b_p)
    _assign(up.log_var_layer, np.zeros((l1, l2)), np.log(np.diag(s)))
    return vae, mu_x, sigma_x, (w_p, b_p, c1)


def test_linear_gaussian_hierarchy_matches_the_closed_form_marginal():
    rng = np.random.default_rng(0)
    vae, mu_x, sigma_x, (_, b_p, c1) = _linear_gaussian_model(rng)
    x = rng.multivariate_normal(mu_x, sigma_x, size=25).astype("float32")
    diff = x - mu_x
    exact = -0.5 * (4 * np.log(2 * np.pi)
                    + np.linalg.slogdet(sigma_x)[1]
                    + np.einsum("ni,ij,nj->n", diff, np.linalg.inv(sigma_x),
                                diff))
    k = 4000
    log_w = vae.log_weights(x, num_samples=k, seed=3).astype("float64")
    w = np.exp(log_w - log_w.max(0))
    # Delta-method standard error of log mean w.
    stderr = w.std(0) / (np.sqrt(k) * w.mean(0))
    assert stderr.max() < 0.02
    log_px = vae.log_likelihood(x, num_samples=k)
    np.testing.assert_allclose(log_px, exact, atol=float(5 * stderr.max()
                                                          + 1e-3))
    # The ELBO is a lower bound of the exact log p(x), example by example.
    elbo_samples = log_w.mean(0)
    elbo_stderr = log_w.std(0) / np.sqrt(k)
    assert np.all(elbo_samples <= exact + 4 * elbo_stderr)
    assert np.mean(exact - elbo_samples) > 0
    assert np.all(vae.elbo(x, num_samples=500) <= exact + 0.1)
    # Ancestral samples of the prior: z1 ~ N(b_p, W_p W_p^T + D1).
    z = np.asarray(vae.prior.sample(40000, seed=5), "float64")
    np.testing.assert_allclose(z[:, :2].mean(0), b_p, atol=0.05)
    np.testing.assert_allclose(np.cov(z[:, :2].T), c1, atol=0.08)
    np.testing.assert_allclose(z[:, 2].var(), 1.0, atol=0.05)


def test_hierarchy_log_q_is_noise_density_minus_autodiff_log_determinant():
    vae = _hierarchy(latent_dims=(3, 2), hidden_units=((8,), (5,)))
    for w in vae.posterior.weights:  # away from the initial weights
        w.assign(np.random.default_rng(1).normal(
            scale=0.5, size=w.shape).astype("float32"))
    x = _binary(4, shape=(6,))
    params = vae.posterior_params(tf.constant(x))
    eps = tf.random.stateless_normal((4, 5), seed=[1, 2])
    with tf.GradientTape() as tape:
        tape.watch(eps)
        z, log_q = vae.posterior.sample_and_log_prob(params, eps)
    jac = tape.batch_jacobian(z, eps).numpy().astype("float64")
    assert np.abs(jac[:, 3:, :3]).max() > 1e-3  # z2 depends on z1's noise
    np.testing.assert_array_equal(jac[:, :3, 3:], 0.0)  # not the reverse
    log_noise = -0.5 * np.sum(np.log(2 * np.pi) + eps.numpy() ** 2, -1)
    np.testing.assert_allclose(
        log_q, log_noise - np.linalg.slogdet(jac)[1], rtol=1e-5, atol=1e-4)
    # The density at a given z (one pass) and TFP's TransformedDistribution
    # agree with the draw's.
    np.testing.assert_allclose(vae.posterior.log_prob(params, z), log_q,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(vae.posterior.distribution(params).log_prob(z),
                               log_q, rtol=1e-5, atol=1e-4)
    zp = vae.prior.sample(5, seed=2)
    np.testing.assert_allclose(vae.prior.distribution().log_prob(zp),
                               vae.prior.log_prob(zp), rtol=1e-5, atol=1e-4)


def test_hierarchy_trains_reports_each_layer_and_round_trips(tmp_path):
    vae = _hierarchy(objective="iwae", num_samples=3)
    assert vae.latent_dim == 6
    assert [int(o.shape[-1]) for o in vae.encoder.outputs] == [4, 4]
    x = _binary(64, shape=(6,))
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.numpy().copy() for w in vae.prior.weights
              + vae.posterior.weights]
    history = vae.fit(x, batch_size=16, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = vae.prior.weights + vae.posterior.weights
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(before,
                                                                 after))
    report = kv.evaluation.report(vae, x, num_samples=200, verbose=0)
    layers = report["stochastic_layers"]["layers"]
    assert [(l["layer"], l["latent_dim"]) for l in layers] == [(1, 4), (2, 2)]
    total = sum(l["kl"]["mean"] for l in layers)
    slack = 4 * np.hypot(*(l["kl"]["stderr"] for l in layers)) + 0.05
    assert abs(total - report["kl_loss"]["mean"]) < slack
    assert sum(l["active_units"] for l in layers) == report[
        "active_units"]["count"]
    assert "stochastic layer 2 (2 units)" in kv.evaluation.format_report(
        report)
    vae.save(tmp_path / "h.keras")
    loaded = keras.models.load_model(tmp_path / "h.keras", safe_mode=True)
    assert isinstance(loaded.prior, kv.priors.HierarchicalPrior)
    assert loaded.posterior.latent_dims == (4, 2)
    np.testing.assert_array_equal(loaded.log_weights(x, 5, seed=1),
                                  vae.log_weights(x, 5, seed=1))
    np.testing.assert_array_equal(loaded.sample(4, seed=2),
                                  vae.sample(4, seed=2))


@pytest.mark.parametrize("kwargs, message", [
    (dict(latent_dims=(2, 4)), "must decrease"),
    (dict(latent_dims=()), "non-empty sequence"),
    (dict(latent_dims=(4, 0)), "positive ints"),
    (dict(hidden_units=((8,),)), "one tuple of widths per"),
    (dict(prior="mog"), "sets the prior"),
    (dict(posterior="full"), "sets the posterior"),
    (dict(free_bits=0.5), "does not split by dimension"),
])
def test_hierarchy_bad_settings_fail_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _hierarchy(**kwargs)
