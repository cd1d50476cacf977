"""Workflow tests: the public surface in one process, in the orders users
call it.

Each feature has its own tests elsewhere; these run them one after another
on the same model, because state left by one feature (traced functions,
optimizer slots, RNG state, a loaded model's restored compile) is what
breaks the next. One workflow per likelihood for the MLP, and for the conv
model:

    fit, evaluate, elbo, log_likelihood, report, encode / reconstruct /
    sample, export, save, fit again, export a second version, load, score,
    export, refit, save (and load that file once more).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv

SHAPE = (4, 4, 1)
LATENT_DIM = 2
N = 48


def _head(lik_id):
    lik_id = lik_id.split("+")[0]
    if lik_id == "gaussian_learned":
        return kv.likelihoods.Gaussian("learned")
    if lik_id == "gaussian_optimal":
        return kv.likelihoods.Gaussian("optimal")
    return kv.likelihoods.get(lik_id)


def _build(arch, lik_id, seed=0):
    """`lik_id` may name a prior and a posterior after "+":
    "bernoulli+vamp", "bernoulli+full", "bernoulli+vamp+full",
    "bernoulli+iaf"."""
    keras.utils.set_random_seed(seed)
    lik_id, *parts = lik_id.split("+")
    prior = posterior = None
    for part in parts:
        if part == "full":
            posterior = kv.posteriors.FullCovarianceGaussian()
        elif part == "iaf":
            posterior = kv.posteriors.InverseAutoregressiveFlow(
                num_flows=2, hidden_units=(8,), context_units=4)
        else:
            prior = {"mog": kv.priors.MixtureOfGaussians(3, seed=seed),
                     "vamp": kv.priors.VampPrior(5, seed=seed)}[part]
    if arch == "hier":  # two stochastic layers, a 3-number joint latent
        return kv.build_hierarchical_vae(
            SHAPE, (LATENT_DIM, 1), hidden_units=((8,), (4,)),
            likelihood=_head(lik_id), seed=seed)
    if arch == "mlp":
        return kv.build_mlp_vae(SHAPE, LATENT_DIM, hidden_units=(8,),
                                likelihood=_head(lik_id), seed=seed,
                                prior=prior, posterior=posterior)
    return kv.build_conv_vae(SHAPE, LATENT_DIM, likelihood=_head(lik_id),
                             filters=(4, 8), dense_units=8, seed=seed,
                             prior=prior, posterior=posterior)


def _data(model, seed=0):
    """Data in the likelihood's support: draws from the untrained model."""
    z = np.random.default_rng(seed).normal(size=(N, model.latent_dim))
    x = np.asarray(model.decode(z.astype("float32")).sample(seed=[seed, 3]),
                   "float32")
    if isinstance(model.likelihood, kv.likelihoods.Beta):
        x = np.clip(x, 1e-3, 1 - 1e-3)  # the open interval (0, 1)
    return x


def _served(path):
    return tf.saved_model.load(path).signatures


def _assert_encode_matches(signatures, model, x):
    out = signatures["encode"](x=tf.constant(x))
    for name, value in zip(model.posterior.param_names, model.encode(x)):
        np.testing.assert_allclose(out[name].numpy(), value, rtol=1e-5,
                                   atol=1e-6)


def _weights_changed(before, model):
    after = model.get_weights()
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


WORKFLOWS = [("mlp", lik) for lik in
             kv.likelihoods.names() + ["gaussian_learned",
                                       "gaussian_optimal"]] + [
    ("conv", "bernoulli"), ("conv", "gaussian_learned"),
    # The learned priors (keras_vae.priors), through the same workflow.
    ("mlp", "bernoulli+mog"), ("mlp", "gaussian_learned+vamp"),
    ("conv", "bernoulli+vamp"),
    # The full-covariance posterior (keras_vae.posteriors).
    ("mlp", "bernoulli+full"), ("conv", "gaussian_learned+vamp+full"),
    # The flow posterior.
    ("mlp", "bernoulli+iaf"), ("conv", "gaussian_learned+mog+iaf"),
    # Two stochastic layers (kv.build_hierarchical_vae).
    ("hier", "bernoulli"),
]
FAST = {("mlp", "bernoulli"), ("mlp", "gaussian_optimal"),
        ("conv", "bernoulli"), ("mlp", "bernoulli+mog"),
        ("conv", "bernoulli+vamp"), ("mlp", "bernoulli+full"),
        ("mlp", "bernoulli+iaf"), ("hier", "bernoulli")}


@pytest.mark.parametrize("arch, lik_id", [
    w if w in FAST else pytest.param(*w, marks=pytest.mark.slow)
    for w in WORKFLOWS
])
def test_whole_public_surface_in_one_process(tmp_path, arch, lik_id):
    vae = _build(arch, lik_id)
    x = _data(vae)
    base = tmp_path / "saved_models" / "vae"

    # fit
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vae.fit(x, epochs=2, batch_size=16, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))

    # evaluate: the ELBO metric is minus the sum of its two terms
    logs = vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    assert set(logs) >= {"loss", "reconstruction_loss", "kl_loss", "elbo"}
    np.testing.assert_allclose(
        logs["elbo"], -(logs["reconstruction_loss"] + logs["kl_loss"]),
        rtol=1e-4, atol=1e-3)

    # elbo, then log_likelihood: log p(x) >= ELBO (Burda et al. 2016)
    elbo = vae.elbo(x, num_samples=200)
    assert elbo.shape == (N,) and np.all(np.isfinite(elbo))
    log_px = vae.log_likelihood(x, num_samples=200, verbose=0)
    assert log_px.shape == (N,)
    assert log_px.mean() >= elbo.mean() - 0.05 * abs(elbo.mean()) - 0.05

    # report: the same quantities with their standard errors
    report = kv.evaluation.report(vae, x, num_samples=100, verbose=0,
                                  protocol="test draws")
    gap = report["gap"]
    assert gap["mean"] >= -3 * gap["stderr"] - 1e-3
    assert report["active_units"]["latent_dim"] == vae.latent_dim

    # encode / reconstruct / sample
    encoded = vae.encode(x)  # z_mean, z_log_var | z_tril (full) [, context]
    sizes = vae.posterior.params_size(vae.latent_dim)
    assert [e.shape for e in encoded] == [(N, size) for size in sizes]
    # The decoded point: z_mean, or its image under the flows (iaf).
    z_point = vae.posterior.mean([tf.constant(e) for e in encoded])
    np.testing.assert_allclose(
        vae.reconstruct(x), np.asarray(vae.decode(z_point).mean()),
        rtol=1e-5, atol=1e-5)
    samples = vae.sample(5, seed=3)
    assert samples.shape == (5,) + SHAPE
    np.testing.assert_array_equal(samples, vae.sample(5, seed=3))

    # export (after elbo and log_likelihood traced their functions)
    path1 = kv.export_saved_model(vae, base)
    assert path1.endswith("/1")
    served1 = _served(path1)
    _assert_encode_matches(served1, vae, x)
    served_ll = served1["log_likelihood"](
        x=tf.constant(x), num_samples=tf.constant(200))["log_likelihood"]
    assert np.isfinite(served_ll.numpy()).all()
    encoded_at_save = vae.encode(x)

    # save
    vae.save(tmp_path / "vae.keras")

    # fit again: the weights move, and the second version shows it
    before = vae.get_weights()
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    assert _weights_changed(before, vae)
    path2 = kv.export_saved_model(vae, base)
    assert path2.endswith("/2")
    _assert_encode_matches(_served(path2), vae, x)
    assert not np.allclose(served1["encode"](x=tf.constant(x))["z_mean"],
                           vae.encode(x)[0])

    # load the file saved before the refit, score, export
    loaded = keras.models.load_model(tmp_path / "vae.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.encode(x)[0], encoded_at_save[0],
                               rtol=1e-6, atol=1e-6)
    assert np.all(np.isfinite(loaded.elbo(x)))
    loaded_ll = loaded.log_likelihood(x, num_samples=50, verbose=0)
    assert np.all(np.isfinite(loaded_ll))
    path3 = kv.export_saved_model(loaded, base)
    assert path3.endswith("/3")
    _assert_encode_matches(_served(path3), loaded, x)

    # refit the loaded model (its compile was restored) and save it
    before = loaded.get_weights()
    loaded.fit(x, epochs=1, batch_size=16, verbose=0)
    assert _weights_changed(before, loaded)
    loaded.save(tmp_path / "refit.keras")
    again = keras.models.load_model(tmp_path / "refit.keras",
                                    safe_mode=True)
    np.testing.assert_allclose(again.encode(x)[0], loaded.encode(x)[0],
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_fit_elbo_then_export_as_a_new_user_does(tmp_path, arch):
    # The order that used to fail: vae.elbo traced a function into a
    # tracked dict on the model, which SavedModel export cannot save.
    vae = _build(arch, "bernoulli")
    x = _data(vae)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    vae.elbo(x)
    vae.elbo(x, num_samples=3)
    vae.log_likelihood(x, num_samples=10, verbose=0)
    kv.evaluation.refine(vae, x[:4], steps=2, eval_samples=2)
    path = kv.export_saved_model(vae, tmp_path / "vae", warmup=False)
    _assert_encode_matches(_served(path), vae, x)
    vae.save(tmp_path / "vae.keras")
    loaded = keras.models.load_model(tmp_path / "vae.keras")
    loaded.elbo(x)
    path = kv.export_saved_model(loaded, tmp_path / "vae", warmup=False)
    _assert_encode_matches(_served(path), loaded, x)
