"""Likelihood heads against formulas written independently in numpy."""

import math

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import likelihoods

SHAPE = (3, 2, 1)
D = 6


def _softplus(a):
    return np.logaddexp(0.0, a)


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_bernoulli_is_minus_bce_summed_over_pixels():
    rng = _rng()
    logits = rng.normal(scale=3.0, size=(4, D)).astype("float32")
    x = (rng.random((4,) + SHAPE) < 0.5).astype("float32")
    head = likelihoods.Bernoulli(event_shape=SHAPE)
    got = np.asarray(head.distribution(logits).log_prob(x))
    p = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    xf = x.reshape(4, D)
    bce = -(xf * np.log(p) + (1 - xf) * np.log(1 - p))
    np.testing.assert_allclose(got, -bce.sum(-1), rtol=1e-5)
    assert got.shape == (4,)


def test_bernoulli_is_finite_for_saturated_logits_and_grey_values():
    head = likelihoods.Bernoulli(event_shape=(2,))
    logits = np.array([[80.0, -80.0]], "float32")
    x = np.array([[0.0, 1.0]], "float32")
    got = float(head.distribution(logits).log_prob(x)[0])
    assert got == pytest.approx(-160.0, rel=1e-4)
    # On grey values it is the (unnormalised) BCE the Keras blog uses.
    grey = np.array([[0.3, 0.8]], "float32")
    lg = np.array([[0.2, -1.0]], "float32")
    expected = np.sum(grey * -_softplus(-lg) + (1 - grey) * -_softplus(lg))
    assert float(head.distribution(lg).log_prob(grey)[0]) == pytest.approx(
        expected, rel=1e-5)


def test_gaussian_fixed_scale_is_scaled_squared_error_plus_constant():
    rng = _rng(1)
    loc = rng.normal(size=(5, D)).astype("float32")
    x = rng.normal(size=(5,) + SHAPE).astype("float32")
    sigma = 0.3
    head = likelihoods.Gaussian(scale=sigma, event_shape=SHAPE)
    got = np.asarray(head.distribution(loc).log_prob(x))
    sq = (x.reshape(5, D) - loc) ** 2
    expected = np.sum(-0.5 * sq / sigma**2 - math.log(sigma)
                      - 0.5 * math.log(2 * math.pi), -1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gaussian_learned_scale_uses_its_weight():
    head = likelihoods.Gaussian(scale="learned", event_shape=SHAPE)
    assert len(head.trainable_weights) == 1
    head.log_scale.assign(math.log(2.0))
    loc = np.zeros((1, D), "float32")
    x = np.ones((1,) + SHAPE, "float32")
    expected = D * (-0.5 / 4.0 - math.log(2.0) - 0.5 * math.log(2 * math.pi))
    assert float(head.distribution(loc).log_prob(x)[0]) == pytest.approx(
        expected, rel=1e-5)


def test_gaussian_per_dimension_has_one_scale_per_pixel():
    head = likelihoods.Gaussian(scale="per_dimension", event_shape=SHAPE)
    assert tuple(head.log_scale.shape) == SHAPE
    scales = np.linspace(0.5, 2.0, D).reshape(SHAPE)
    head.log_scale.assign(np.log(scales))
    loc = np.zeros((1, D), "float32")
    x = np.full((1,) + SHAPE, 0.7, "float32")
    s = scales.reshape(-1)
    expected = np.sum(-0.5 * 0.49 / s**2 - np.log(s)
                      - 0.5 * math.log(2 * math.pi))
    assert float(head.distribution(loc).log_prob(x)[0]) == pytest.approx(
        expected, rel=1e-5)


def test_gaussian_heteroscedastic_reads_scale_from_the_decoder():
    head = likelihoods.Gaussian(scale="heteroscedastic", event_shape=SHAPE)
    assert head.params_size() == 2 * D
    rng = _rng(2)
    params = rng.normal(size=(2, 2 * D)).astype("float32")
    x = rng.normal(size=(2,) + SHAPE).astype("float32")
    pairs = params.reshape(2, D, 2)
    loc, sigma = pairs[..., 0], _softplus(pairs[..., 1]) + 1e-3
    expected = np.sum(-0.5 * (x.reshape(2, D) - loc) ** 2 / sigma**2
                      - np.log(sigma) - 0.5 * math.log(2 * math.pi), -1)
    np.testing.assert_allclose(head.distribution(params).log_prob(x),
                               expected, rtol=1e-5)
    np.testing.assert_allclose(head.mean(params), loc.reshape((2,) + SHAPE))


def test_gaussian_optimal_scale_is_the_maximiser():
    rng = _rng(3)
    loc = rng.normal(size=(8, D)).astype("float32")
    x = (loc.reshape((8,) + SHAPE)
         + rng.normal(scale=0.4, size=(8,) + SHAPE)).astype("float32")
    head = likelihoods.Gaussian(scale="optimal", event_shape=SHAPE)
    best = float(np.mean(head.distribution(loc, x).log_prob(x)))
    sigma_star = math.sqrt(np.mean((x.reshape(8, D) - loc) ** 2))
    for factor in (0.9, 1.1):
        fixed = likelihoods.Gaussian(scale=sigma_star * factor,
                                     event_shape=SHAPE)
        assert float(np.mean(fixed.distribution(loc).log_prob(x))) < best
    closed = D * (-0.5 - math.log(sigma_star) - 0.5 * math.log(2 * math.pi))
    assert best == pytest.approx(closed, rel=1e-4)
    head.observe(loc, x)
    assert float(head.last_scale) == pytest.approx(sigma_star, rel=1e-4)


def test_continuous_bernoulli_integrates_to_one_and_matches_formula():
    head = likelihoods.ContinuousBernoulli(event_shape=(1,))
    grid = np.linspace(0.0, 1.0, 20001).astype("float32")
    for lam in (0.02, 0.3, 0.4999, 0.5, 0.7, 0.97):
        logit = np.full((grid.size, 1), math.log(lam / (1 - lam)), "float32")
        density = np.exp(np.asarray(
            head.distribution(logit).log_prob(grid[:, None]), "float64"))
        assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=2e-4)
        if abs(lam - 0.5) > 1e-3:
            norm = 2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam)
            x0 = 0.25
            expected = math.log(norm) + x0 * math.log(lam) + (
                1 - x0) * math.log(1 - lam)
            got = float(head.distribution(logit[:1]).log_prob([[x0]])[0])
            assert got == pytest.approx(expected, rel=1e-4)


def test_params_size_and_reshaping_for_conv_outputs():
    head = likelihoods.Bernoulli(event_shape=(4, 4, 1))
    assert head.params_size() == 16
    assert head.params_size((28, 28, 1)) == 784
    flat = np.arange(16, dtype="float32").reshape(1, 16)
    conv = flat.reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(head.mean(flat), head.mean(conv))
    het = likelihoods.Gaussian("heteroscedastic", event_shape=(4, 4, 1))
    assert het.params_size() == 32


def test_get_names_instances_and_errors():
    assert isinstance(likelihoods.get("bernoulli"), likelihoods.Bernoulli)
    assert isinstance(likelihoods.get("Continuous_Bernoulli"),
                      likelihoods.ContinuousBernoulli)
    head = likelihoods.Gaussian(0.5)
    assert likelihoods.get(head) is head
    with pytest.raises(ValueError, match=r"Unknown likelihood 'bernouli'.*"
                                         r"'bernoulli'"):
        likelihoods.get("bernouli")
    with pytest.raises(ValueError, match="Received: 3"):
        likelihoods.get(3)
    # A config dict round-trips; one of another kind of part is refused.
    config = keras.saving.serialize_keras_object(likelihoods.Gaussian(0.5))
    assert likelihoods.get(config).scale == 0.5
    prior = keras.saving.serialize_keras_object(kv.priors.StandardNormal())
    with pytest.raises(ValueError, match=r"A likelihood must be a name.*"
                                         r"Received: <.*StandardNormal"):
        likelihoods.get(prior)
    with pytest.raises(ValueError, match=r"must be a name.*Received: None"):
        likelihoods.get(None)
    with pytest.raises(ValueError, match="Unknown Gaussian scale"):
        likelihoods.Gaussian("learnt")
    with pytest.raises(ValueError, match="scale` must be a float > 0.*Received: scale=-1.0"):
        likelihoods.Gaussian(-1.0)
    with pytest.raises(ValueError, match="event_shape"):
        likelihoods.Bernoulli(event_shape=(0, 3))


def test_support_errors_name_the_fix():
    head = likelihoods.Bernoulli(event_shape=(2,))
    with pytest.raises(ValueError, match="binarize.*continuous_bernoulli"):
        head.check_support(np.array([[0.0, 255.0]]))
    cb = likelihoods.ContinuousBernoulli(event_shape=(2,))
    with pytest.raises(ValueError, match=r"\[0.0, 1.0\]"):
        cb.check_support(np.array([[-0.5, 0.5]]))
    likelihoods.Gaussian(1.0, event_shape=(2,)).check_support(
        np.array([[-4.0, 300.0]]))


def test_head_bound_to_one_shape():
    head = likelihoods.Bernoulli(event_shape=(2,))
    with pytest.raises(ValueError, match="already bound"):
        head.set_event_shape((3,))


@pytest.mark.parametrize("name", ["bernoulli", "continuous_bernoulli",
                                  "gaussian"])
def test_config_round_trip(name):
    head = likelihoods.get(name)
    head.set_event_shape(SHAPE)
    config = keras.saving.serialize_keras_object(head)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(head)
    assert clone.event_shape == SHAPE
    params = _rng().normal(size=(2, head.params_size())).astype("float32")
    np.testing.assert_allclose(clone.mean(params), head.mean(params))


def test_learned_gaussian_config_keeps_scale_mode():
    head = kv.likelihoods.Gaussian("per_dimension", min_scale=0.01,
                                   event_shape=(3,))
    clone = kv.likelihoods.Gaussian.from_config(head.get_config())
    assert clone.scale == "per_dimension" and clone.min_scale == 0.01
    assert tuple(clone.log_scale.shape) == (3,)
