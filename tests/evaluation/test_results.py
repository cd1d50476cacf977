"""Tests of keras_vae.evaluation.results: the result types."""

import numpy as np
import pytest

from keras_vae import evaluation


def test_stderr_is_the_standard_error_across_examples(binary_model):
    vae, x = binary_model
    result = evaluation.log_likelihood(vae, x, num_samples=10, verbose=0)
    v = result.values
    manual = np.sqrt(np.sum((v - v.mean()) ** 2) / (len(v) - 1) / len(v))
    assert result.stderr == pytest.approx(manual, rel=1e-9)
