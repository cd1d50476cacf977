"""A linear-Gaussian VAE is probabilistic PCA (Tipping & Bishop 1999).

With a linear decoder x = W z + mu + eps, eps ~ N(0, sigma^2 I) and
z ~ N(0, I), the marginal is x ~ N(mu, W W^T + sigma^2 I), the posterior is
N(M^-1 W^T (x - mu), sigma^2 M^-1) with M = W^T W + sigma^2 I, and the
maximum of the average log-likelihood over (W, mu, sigma) has a closed form
in the eigenvalues of the sample covariance. All oracles below are those
formulas, written with numpy linear algebra; none calls keras_vae.

Orthogonal columns of W make M, hence the posterior covariance, diagonal,
so a linear encoder with a constant z_log_var can represent the exact
posterior.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import evaluation

D, Q = 5, 2
SIGMA = 0.5
LOG_2PI = math.log(2 * math.pi)


def linear_vae(seed=0):
    x_in = keras.Input((D,))
    z_mean = keras.layers.Dense(Q, name="z_mean")(x_in)
    z_log_var = keras.layers.Dense(Q, name="z_log_var")(x_in)
    encoder = keras.Model(x_in, [z_mean, z_log_var])
    z_in = keras.Input((Q,))
    decoder = keras.Model(z_in, keras.layers.Dense(D, name="params")(z_in))
    return kv.VAE(encoder, decoder,
                  likelihood=kv.likelihoods.Gaussian("learned"), seed=seed)


class PPCA:
    """A known PPCA model with orthogonal columns and its closed forms."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        u, _ = np.linalg.qr(rng.normal(size=(D, Q)))
        self.w = u * np.array([2.0, 1.0])  # (D, Q), orthogonal columns
        self.mu = rng.normal(size=D)
        self.m_diag = np.sum(self.w**2, axis=0) + SIGMA**2  # diag of M
        self.rng = rng

    def sample(self, n):
        z = self.rng.normal(size=(n, Q))
        return (z @ self.w.T + self.mu
                + SIGMA * self.rng.normal(size=(n, D))).astype("float32")

    def log_px(self, x):
        cov = self.w @ self.w.T + SIGMA**2 * np.eye(D)
        diff = x.astype(np.float64) - self.mu
        _, logdet = np.linalg.slogdet(cov)
        maha = np.einsum("nd,nd->n", diff, np.linalg.solve(cov, diff.T).T)
        return -0.5 * (D * LOG_2PI + logdet + maha)

    def posterior(self, x):
        mean = (x.astype(np.float64) - self.mu) @ self.w / self.m_diag
        var = np.broadcast_to(SIGMA**2 / self.m_diag, mean.shape)
        return mean, var

    def set_weights(self, vae, mean_scale=1.0, mean_shift=0.0,
                    log_var_shift=0.0):
        """Decoder = this model; encoder = its exact posterior, optionally
        perturbed."""
        kernel = self.w / self.m_diag * mean_scale
        vae.encoder.get_layer("z_mean").set_weights(
            [kernel, -self.mu @ kernel + mean_shift])
        vae.encoder.get_layer("z_log_var").set_weights(
            [np.zeros((D, Q)),
             np.log(SIGMA**2 / self.m_diag) + log_var_shift])
        vae.decoder.get_layer("params").set_weights([self.w.T, self.mu])
        vae.likelihood.log_scale.assign(math.log(SIGMA))


def gaussian_kl(m_q, v_q, m_p, v_p):
    return 0.5 * np.sum(v_q / v_p + (m_p - m_q) ** 2 / v_p - 1.0
                        + np.log(v_p) - np.log(v_q), axis=-1)


@pytest.fixture(scope="module")
def fixed():
    model = PPCA(seed=1)
    x = model.sample(40)
    return model, x


def test_exact_posterior_makes_every_weight_equal_log_px(fixed):
    # With q = p(z|x), w = p(x, z) / p(z|x) = p(x) for every z: the IWAE
    # bound with K = 1, the ELBO and log p(x) coincide draw by draw.
    model, x = fixed
    vae = linear_vae()
    model.set_weights(vae)
    exact = model.log_px(x)
    bound = evaluation.iwae_bound(vae, x, 1, seed=3)
    np.testing.assert_allclose(bound.iwae, exact, atol=2e-4)
    np.testing.assert_allclose(bound.elbo, exact, atol=2e-4)
    # The report's ELBO uses the closed-form KL, so it equals log p(x) in
    # expectation only: its Monte-Carlo error shrinks with K.
    result = evaluation.report(vae, x, num_samples=2000, verbose=0)
    assert abs(result["gap"]["mean"]) < 0.01
    assert result["log_likelihood"]["mean"] == pytest.approx(
        exact.mean(), abs=2e-4)


def test_large_k_log_likelihood_matches_exact_log_px(fixed):
    model, x = fixed
    vae = linear_vae()
    model.set_weights(vae, mean_scale=0.8, mean_shift=0.3, log_var_shift=0.7)
    exact = model.log_px(x)
    result = evaluation.log_likelihood(vae, x, num_samples=5000, verbose=0)
    # Per example the importance-sampling error is about
    # sqrt(Var(w) / (K E[w]^2)), a few hundredths of a nat for this
    # proposal (one posterior std off, twice as wide); the mean over 40
    # examples is tighter.
    np.testing.assert_allclose(result.values, exact, atol=0.1)
    assert abs(result.mean - exact.mean()) < 0.015
    # The ELBO of the same draws is log p(x) - KL(q || p(z|x)).
    post_mean, post_var = model.posterior(x)
    z_mean, z_log_var = vae.encode(x)
    kl_post = gaussian_kl(z_mean, np.exp(z_log_var), post_mean, post_var)
    assert kl_post.mean() > 0.3  # the perturbation is not negligible
    # (Monte-Carlo error of 5000 draws: a few hundredths per example.)
    np.testing.assert_allclose(result.elbo, exact - kl_post, atol=0.2)
    assert abs(np.mean(result.elbo - (exact - kl_post))) < 0.02


def test_iwae_bound_grows_with_k_towards_exact(fixed):
    model, x = fixed
    vae = linear_vae()
    model.set_weights(vae, mean_scale=0.8, mean_shift=0.3, log_var_shift=0.7)
    exact = model.log_px(x).mean()
    means = [np.mean([evaluation.iwae_bound(vae, x, k, seed=s).iwae.mean()
                      for s in range(3)]) for k in (1, 10, 100, 1000)]
    assert all(b > a for a, b in zip(means, means[1:])), means
    assert means[-1] <= exact + 0.01
    assert exact - means[-1] < 0.02
    assert exact - means[0] > 0.3


def test_mean_vs_sample_matches_the_trace_term(fixed):
    # E_q[log N(x; W z + mu, s^2 I)] = log N(x; W m + mu, s^2 I)
    #                                  - sum_j |W_j|^2 v_j / (2 s^2).
    model, x = fixed
    vae = linear_vae()
    model.set_weights(vae, log_var_shift=0.5)
    _, z_log_var = vae.encode(x)
    trace = np.sum(np.sum(model.w**2, axis=0) * np.exp(z_log_var), axis=-1)
    out = evaluation.mean_vs_sample(vae, x, num_samples=4000)
    np.testing.assert_allclose(out["at_mean"] - out["sampled"],
                               trace / (2 * SIGMA**2), rtol=0.05, atol=0.02)


def test_refine_finds_the_exact_posterior(fixed):
    model, x = fixed
    vae = linear_vae()
    model.set_weights(vae, mean_scale=0.8, mean_shift=0.3, log_var_shift=0.7)
    refined = evaluation.refine(vae, x[:20], steps=600, learning_rate=2e-2,
                                num_samples=8, eval_samples=2000)
    post_mean, post_var = model.posterior(x[:20])
    np.testing.assert_allclose(refined.z_mean, post_mean, atol=0.06)
    np.testing.assert_allclose(refined.z_log_var, np.log(post_var),
                               atol=0.15)
    exact = model.log_px(x[:20])
    assert abs(refined.elbo_refined.mean() - exact.mean()) < 0.02
    # the decoder was not touched
    np.testing.assert_allclose(
        vae.decoder.get_layer("params").get_weights()[0], model.w.T,
        rtol=1e-6)


def test_amortization_gap_decomposition(fixed):
    model, x = fixed
    vae = linear_vae()
    model.set_weights(vae, mean_scale=0.8, mean_shift=0.3, log_var_shift=0.7)
    out = evaluation.amortization_gap(vae, x[:20], num_samples=2000,
                                      steps=600, learning_rate=2e-2,
                                      verbose=0)
    exact = model.log_px(x[:20])
    post_mean, post_var = model.posterior(x[:20])
    z_mean, z_log_var = vae.encode(x[:20])
    kl_post = gaussian_kl(z_mean, np.exp(z_log_var), post_mean, post_var)
    # The family holds the posterior: no approximation gap, and the whole
    # inference gap is amortization, equal to KL(q_encoder || p(z|x)).
    assert abs(out["approximation_gap"]["mean"]) < 0.03
    assert out["amortization_gap"]["mean"] == pytest.approx(
        kl_post.mean(), abs=0.05)
    assert out["log_likelihood"]["mean"] == pytest.approx(exact.mean(),
                                                          abs=0.01)
    # MAP: z* is the posterior mean and log p(x, z*) = log p(x) + log
    # p(z*|x) = log p(x) - 0.5 sum log(2 pi v): above log p(x) here, since
    # the posterior is narrower than 1 / sqrt(2 pi).
    want = exact - 0.5 * np.sum(np.log(2 * np.pi * post_var), axis=-1)
    assert out["map_log_joint"]["mean"] == pytest.approx(want.mean(),
                                                         abs=0.01)
    assert out["map_above_log_likelihood_fraction"] == 1.0
    text = evaluation.format_amortization(out)
    assert "amortization gap" in text and "not a bound" in text


def test_trained_linear_vae_reaches_the_ppca_maximum():
    model = PPCA(seed=0)
    n = 1000
    x = model.sample(n)
    centred = x - x.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(centred.T @ centred / n))[::-1]
    sigma2_ml = eig[Q:].mean()
    max_log_lik = -0.5 * (D * LOG_2PI + np.sum(np.log(eig[:Q]))
                          + (D - Q) * math.log(sigma2_ml) + D)

    keras.utils.set_random_seed(0)
    vae = linear_vae(seed=0)
    vae.num_samples = 4
    steps = 1500
    vae.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(3e-2, steps, alpha=0.01)))
    data = tf.data.Dataset.from_tensor_slices(x).batch(n).repeat()
    vae.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)

    elbo = vae.elbo(x, num_samples=200).mean()
    log_lik = evaluation.log_likelihood(vae, x, num_samples=1000, verbose=0)
    assert elbo <= max_log_lik + 0.005
    assert max_log_lik - elbo < 0.01, (elbo, max_log_lik)
    assert abs(log_lik.mean - max_log_lik) < 0.003, (log_lik.mean,
                                                     max_log_lik)
    learned_sigma = math.exp(float(vae.likelihood.log_scale.numpy()))
    assert learned_sigma == pytest.approx(math.sqrt(sigma2_ml), rel=0.01)
