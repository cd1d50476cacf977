"""Laplace, Beta, DiscretizedLogistic, Categorical, Poisson, NegativeBinomial.

Every log-probability is checked against a closed form written here with
Python's `math` and `decimal` modules only (no numpy, scipy or TFP in the
oracle), evaluated element by element.
"""

import decimal
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import likelihoods

EVENT = (2, 3)
D = 6
BATCH = 2


# -- closed forms -------------------------------------------------------
def softplus(v):
    return math.log1p(math.exp(-abs(v))) + max(v, 0.0)


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def laplace_logpdf(x, loc, b):
    return -abs(x - loc) / b - math.log(2.0 * b)


def beta_logpdf(x, a, b):
    log_beta_fn = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return (a - 1) * math.log(x) + (b - 1) * math.log(1 - x) - log_beta_fn


def poisson_logpmf(k, log_rate):
    return k * log_rate - math.exp(log_rate) - math.lgamma(k + 1)


def negbin_logpmf(k, r, logit):
    # successes before r failures, success probability p = sigmoid(logit)
    p = sigmoid(logit)
    return (math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1)
            + k * math.log(p) + r * math.log(1 - p))


def disc_logistic_pmf(x, loc, scale, high_precision=False):
    """Mass of the bin around x (a multiple of 1/255), ends stretched."""
    k = round(x * 255)
    h = 0.5 / 255
    if high_precision:
        d = decimal.Decimal
        with decimal.localcontext(decimal.Context(prec=400)):
            def cdf(v):
                t = (d(v) - d(loc)) / d(scale)
                return d(1) / (d(1) + (-t).exp())
            upper = d(1) if k == 255 else cdf(k / 255 + h)
            lower = d(0) if k == 0 else cdf(k / 255 - h)
            return upper - lower
    upper = 1.0 if k == 255 else sigmoid((k / 255 + h - loc) / scale)
    lower = 0.0 if k == 0 else sigmoid((k / 255 - h - loc) / scale)
    return upper - lower


def log_softmax_at(logits, index):
    m = max(logits)
    return logits[index] - m - math.log(sum(math.exp(v - m) for v in logits))


# -- helpers ------------------------------------------------------------
def head_log_prob(head, params, x):
    return head.distribution(tf.constant(params, tf.float32)).log_prob(
        tf.constant(x, tf.float32)).numpy()


def per_dim(params, k):
    """(B, D * k) params -> list over b, i of the k numbers of dimension i."""
    return params.reshape(BATCH, D, k)


rng = np.random.default_rng(0)


# -- registry -------------------------------------------------------------
@pytest.mark.parametrize("name,cls", [
    ("laplace", likelihoods.Laplace),
    ("beta", likelihoods.Beta),
    ("discretized_logistic", likelihoods.DiscretizedLogistic),
    ("categorical", likelihoods.Categorical),
    ("poisson", likelihoods.Poisson),
    ("negative_binomial", likelihoods.NegativeBinomial),
])
def test_registered_names(name, cls):
    assert isinstance(likelihoods.get(name), cls)
    assert name in likelihoods.names()


# -- log-probabilities against closed forms -------------------------------
def test_laplace_fixed_and_heteroscedastic():
    x = rng.normal(size=(BATCH, *EVENT))
    head = likelihoods.Laplace(0.3, event_shape=EVENT)
    loc = rng.normal(size=(BATCH, D))
    got = head_log_prob(head, loc, x)
    want = [sum(laplace_logpdf(x.reshape(BATCH, D)[b, i], loc[b, i], 0.3)
                for i in range(D)) for b in range(BATCH)]
    np.testing.assert_allclose(got, want, rtol=1e-5)

    het = likelihoods.Laplace("heteroscedastic", event_shape=EVENT)
    params = rng.normal(size=(BATCH, D * 2))
    p = per_dim(params, 2)
    got = head_log_prob(het, params, x)
    want = [sum(laplace_logpdf(x.reshape(BATCH, D)[b, i], p[b, i, 0],
                               softplus(p[b, i, 1]) + 1e-3)
                for i in range(D)) for b in range(BATCH)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(het.mean(params).numpy(),
                               p[..., 0].reshape(BATCH, *EVENT), rtol=1e-6)


def test_laplace_learned_scale_is_a_saved_weight():
    head = likelihoods.Laplace(event_shape=EVENT)
    head.log_scale.assign(math.log(0.2))
    x = rng.normal(size=(BATCH, *EVENT))
    loc = rng.normal(size=(BATCH, D))
    want = [sum(laplace_logpdf(x.reshape(BATCH, D)[b, i], loc[b, i], 0.2)
                for i in range(D)) for b in range(BATCH)]
    np.testing.assert_allclose(head_log_prob(head, loc, x), want, rtol=1e-5)
    assert len(head.trainable_weights) == 1


def test_beta_log_prob_and_mean():
    head = likelihoods.Beta(event_shape=EVENT)
    params = rng.normal(size=(BATCH, D * 2))
    x = rng.uniform(0.02, 0.98, size=(BATCH, *EVENT))
    p = per_dim(params, 2)
    xs = x.reshape(BATCH, D)
    conc = lambda v: softplus(v) + 1e-2  # noqa: E731
    want = [sum(beta_logpdf(xs[b, i], conc(p[b, i, 0]), conc(p[b, i, 1]))
                for i in range(D)) for b in range(BATCH)]
    np.testing.assert_allclose(head_log_prob(head, params, x), want,
                               rtol=1e-4)
    mean = [[conc(p[b, i, 0]) / (conc(p[b, i, 0]) + conc(p[b, i, 1]))
             for i in range(D)] for b in range(BATCH)]
    np.testing.assert_allclose(head.mean(params).numpy().reshape(BATCH, D),
                               mean, rtol=1e-5)


@pytest.mark.parametrize("num_components", [1, 3])
def test_discretized_logistic_against_bin_masses(num_components):
    n = num_components
    head = likelihoods.DiscretizedLogistic(n, event_shape=EVENT)
    k = 2 if n == 1 else 3 * n
    params = rng.normal(size=(BATCH, D * k)) * 0.5
    params[:, ::k] = 0.0  # keep some locations near the middle
    # include both end levels, which own the tails
    x = rng.integers(0, 256, size=(BATCH, *EVENT)) / 255.0
    x[0, 0, 0], x[1, 1, 2] = 0.0, 1.0
    p = per_dim(params, k)
    xs = x.reshape(BATCH, D)
    want = []
    for b in range(BATCH):
        total = 0.0
        for i in range(D):
            if n == 1:
                mass = disc_logistic_pmf(
                    xs[b, i], p[b, i, 0], math.exp(max(p[b, i, 1],
                                                       math.log(1e-4))))
            else:
                logits = list(p[b, i, :n])
                mass = sum(
                    math.exp(log_softmax_at(logits, j))
                    * disc_logistic_pmf(
                        xs[b, i], p[b, i, n + j],
                        math.exp(max(p[b, i, 2 * n + j], math.log(1e-4))))
                    for j in range(n))
            total += math.log(mass)
        want.append(total)
    np.testing.assert_allclose(head_log_prob(head, params, x), want,
                               rtol=1e-4)


def test_discretized_logistic_far_tail_is_finite_and_exact():
    # A bin 500 scales from the location: the naive difference of sigmoids
    # underflows; the exact mass is about exp(-498).
    head = likelihoods.DiscretizedLogistic(event_shape=(1,))
    params = np.array([[0.0, math.log(1e-3)]])
    got = head_log_prob(head, params, np.array([[128 / 255]]))
    mass = disc_logistic_pmf(128 / 255, 0.0, 1e-3, high_precision=True)
    with decimal.localcontext(decimal.Context(prec=400)):
        want = float(mass.ln())
    assert math.isfinite(got[0])
    np.testing.assert_allclose(got, [want], rtol=1e-5)


def test_discretized_logistic_masses_sum_to_one():
    head = likelihoods.DiscretizedLogistic(2, event_shape=(1,))
    params = np.array([[0.3, -0.2, 0.1, 0.8, -3.0, -5.0]])
    grid = (np.arange(256) / 255.0).reshape(256, 1)
    dist = head.distribution(tf.constant(params, tf.float32))
    total = float(np.sum(np.exp(dist.log_prob(grid).numpy())))
    assert total == pytest.approx(1.0, abs=1e-4)
    # The mean is the mass-weighted average of the levels.
    masses = np.exp(dist.log_prob(grid).numpy())
    assert float(head.mean(params).numpy()[0, 0]) == pytest.approx(
        float(np.sum(masses * grid[:, 0])), rel=1e-4)


def test_categorical_log_prob_mean_and_sample():
    head = likelihoods.Categorical(event_shape=(3,))
    logits = rng.normal(size=(BATCH, 3 * 256)) * 2
    x = rng.integers(0, 256, size=(BATCH, 3)) / 255.0
    lg = logits.reshape(BATCH, 3, 256)
    want = [sum(log_softmax_at(list(lg[b, i]), round(x[b, i] * 255))
                for i in range(3)) for b in range(BATCH)]
    np.testing.assert_allclose(head_log_prob(head, logits, x), want,
                               rtol=1e-5)
    mean = [[sum(math.exp(log_softmax_at(list(lg[b, i]), j)) * j / 255
                 for j in range(256)) for i in range(3)]
            for b in range(BATCH)]
    np.testing.assert_allclose(head.mean(logits).numpy(), mean, rtol=1e-4)
    draws = head.distribution(tf.constant(logits, tf.float32)).sample(
        4, seed=1).numpy()
    assert draws.shape == (4, BATCH, 3)
    np.testing.assert_allclose(draws * 255, np.round(draws * 255), atol=1e-3)


def test_poisson_log_prob():
    head = likelihoods.Poisson(event_shape=EVENT)
    log_rate = rng.normal(size=(BATCH, D))
    k = rng.integers(0, 8, size=(BATCH, *EVENT)).astype(float)
    ks = k.reshape(BATCH, D)
    want = [sum(poisson_logpmf(ks[b, i], log_rate[b, i]) for i in range(D))
            for b in range(BATCH)]
    np.testing.assert_allclose(head_log_prob(head, log_rate, k), want,
                               rtol=1e-5)
    np.testing.assert_allclose(head.mean(log_rate).numpy().reshape(BATCH, D),
                               np.exp(log_rate), rtol=1e-5)


def test_negative_binomial_log_prob_and_mean():
    head = likelihoods.NegativeBinomial(event_shape=EVENT)
    params = rng.normal(size=(BATCH, D * 2))
    k = rng.integers(0, 10, size=(BATCH, *EVENT)).astype(float)
    p = per_dim(params, 2)
    ks = k.reshape(BATCH, D)
    r = lambda v: softplus(v) + 1e-3  # noqa: E731
    want = [sum(negbin_logpmf(ks[b, i], r(p[b, i, 0]), p[b, i, 1])
                for i in range(D)) for b in range(BATCH)]
    np.testing.assert_allclose(head_log_prob(head, params, k), want,
                               rtol=1e-4)
    mean = [[r(p[b, i, 0]) * math.exp(p[b, i, 1]) for i in range(D)]
            for b in range(BATCH)]
    np.testing.assert_allclose(head.mean(params).numpy().reshape(BATCH, D),
                               mean, rtol=1e-4)


def test_count_masses_sum_to_one():
    for head, params in (
        (likelihoods.Poisson(event_shape=(1,)), [[1.2]]),
        (likelihoods.NegativeBinomial(event_shape=(1,)), [[0.7, 0.4]]),
    ):
        k = np.arange(400.0).reshape(400, 1)
        dist = head.distribution(tf.constant(params, tf.float32))
        assert float(np.sum(np.exp(dist.log_prob(k).numpy()))) == (
            pytest.approx(1.0, abs=1e-4))


# -- data checks -----------------------------------------------------------
def test_support_errors_name_the_problem():
    with pytest.raises(ValueError, match="Beta.*\\(0.0, 1.0\\).*dequantize"):
        likelihoods.Beta(event_shape=(2,)).check_support(
            np.array([[0.0, 0.5]]))
    with pytest.raises(ValueError, match="8-bit.*between levels"):
        likelihoods.DiscretizedLogistic(event_shape=(2,)).check_support(
            np.array([[0.5 / 255, 0.5]]))
    with pytest.raises(ValueError, match="Categorical.*8-bit"):
        likelihoods.Categorical(event_shape=(2,)).check_support(
            np.array([[0.3, 0.5]]))
    with pytest.raises(ValueError, match="Poisson.*integer"):
        likelihoods.Poisson(event_shape=(2,)).check_support(
            np.array([[0.5, 2.0]]))
    with pytest.raises(ValueError, match="NegativeBinomial.*outside"):
        likelihoods.NegativeBinomial(event_shape=(2,)).check_support(
            np.array([[-1.0, 2.0]]))
    # 8-bit levels in float32 (uint8 / 255) pass.
    levels = (np.arange(256, dtype=np.uint8).astype("float32") / 255.0)
    likelihoods.DiscretizedLogistic(event_shape=(256,)).check_support(
        levels[None])


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_components"):
        likelihoods.DiscretizedLogistic(0)
    with pytest.raises(ValueError, match="Laplace scale"):
        likelihoods.Laplace("per_pixel")
    with pytest.raises(ValueError, match="scale"):
        likelihoods.Laplace(-1.0)
    with pytest.raises(ValueError, match="min_concentration"):
        likelihoods.Beta(min_concentration=0)


# -- inside a VAE: training step, config and .keras round trip -------------
HEADS = {
    "laplace": (lambda: likelihoods.Laplace(), "real"),
    "beta": (lambda: likelihoods.Beta(), "open"),
    "discretized_logistic": (
        lambda: likelihoods.DiscretizedLogistic(num_components=2), "8bit"),
    "categorical": (lambda: likelihoods.Categorical(), "8bit"),
    "poisson": (lambda: likelihoods.Poisson(), "counts"),
    "negative_binomial": (lambda: likelihoods.NegativeBinomial(), "counts"),
}


def _data(kind, n=16):
    if kind == "real":
        return rng.normal(size=(n, 4)).astype("float32")
    if kind == "open":
        return rng.uniform(0.05, 0.95, size=(n, 4)).astype("float32")
    if kind == "8bit":
        return (rng.integers(0, 256, size=(n, 4)) / 255).astype("float32")
    return rng.integers(0, 6, size=(n, 4)).astype("float32")


@pytest.mark.parametrize("name", sorted(HEADS))
def test_vae_trains_and_round_trips(name, tmp_path):
    make, kind = HEADS[name]
    x = _data(kind)
    vae = kv.build_mlp_vae((4,), 2, hidden_units=(8,), likelihood=make(),
                           seed=1)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = vae.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    path = tmp_path / "m.keras"
    vae.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.likelihood) is type(vae.likelihood)
    assert loaded.likelihood.get_config() == vae.likelihood.get_config()
    z = np.zeros((3, 2), "float32")
    np.testing.assert_allclose(
        loaded.decode(z).log_prob(x[:3]).numpy(),
        vae.decode(z).log_prob(x[:3]).numpy(), rtol=1e-6)
