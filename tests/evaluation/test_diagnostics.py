"""Tests of keras_vae.evaluation.diagnostics: active units and which heads
give probabilities. (mean_vs_sample is tested against the closed form of
probabilistic PCA in tests/test_ppca.py.)"""

import numpy as np
import pytest

from keras_vae import likelihoods
from keras_vae.evaluation import diagnostics


def test_active_units_is_burdas_covariance_criterion():
    rng = np.random.RandomState(0)
    # Columns with standard deviations 1, 0.3 (var 0.09), 0.05 (var
    # 0.0025) and 0: only the first two exceed Cov = 0.01.
    z_mean = rng.normal(size=(4000, 4)) * np.array([1.0, 0.3, 0.05, 0.0]) + 2.0
    activity, active = diagnostics.active_units(z_mean)
    np.testing.assert_allclose(activity, np.diag(np.cov(z_mean.T, bias=True)),
                               rtol=1e-12, atol=1e-15)
    assert active.tolist() == [True, True, False, False]
    _, strict = diagnostics.active_units(z_mean, threshold=0.5)
    assert strict.tolist() == [True, False, False, False]


def test_active_units_needs_two_examples():
    with pytest.raises(ValueError, match=r"N >= 2.*\(1, 3\)"):
        diagnostics.active_units(np.zeros((1, 3)))


def test_mass_functions_and_densities():
    assert diagnostics.is_mass_function(likelihoods.get("bernoulli"))
    assert diagnostics.is_mass_function(likelihoods.get("poisson"))
    assert diagnostics.is_mass_function(likelihoods.get("categorical"))
    assert not diagnostics.is_mass_function(likelihoods.get("gaussian"))
    assert not diagnostics.is_mass_function(likelihoods.get("continuous_bernoulli"))
