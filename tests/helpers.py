"""Helpers shared by several test modules (tests/ is on sys.path through
tests/conftest.py, so `from helpers import ...` works from every folder)."""

import keras
import numpy as np
import tensorflow_probability as tfp

import keras_vae as kv

tfd = tfp.distributions


def tiny_vae(**kwargs):
    """A 6-pixel Bernoulli MLP VAE with 3 latents."""
    kwargs.setdefault("seed", 3)
    return kv.build_mlp_vae((6,), 3, hidden_units=(8,), **kwargs)


def binary_data(n=40, seed=0):
    """(n, 6) binary float32 data for `tiny_vae`."""
    return (np.random.RandomState(seed).rand(n, 6) < 0.4).astype("float32")


def tfd_kl(z_mean, z_log_var):
    """Per-dimension KL(q || N(0, 1)) from TFP, shape like z_mean."""
    q = tfd.Normal(z_mean.astype("float64"),
                   np.exp(0.5 * z_log_var.astype("float64")))
    prior = tfd.Normal(np.float64(0.0), np.float64(1.0))
    return tfd.kl_divergence(q, prior).numpy()


def binomial_tolerance(p, sigmas=6.0):
    """Tolerance on the mean of independent Bernoulli(p) draws."""
    p = np.asarray(p, dtype=np.float64)
    return sigmas * np.sqrt(np.sum(p * (1.0 - p))) / p.size


def is_binary(x):
    """True when x holds 0 and 1 and nothing else (np.unique is slow here)."""
    zeros, ones = x == 0.0, x == 1.0
    return bool(np.all(zeros | ones) and zeros.any() and ones.any())


def assert_same(actual, expected):
    """Exact equality; np.testing's version is slow on 47M-pixel arrays."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if not np.array_equal(actual, expected):
        raise AssertionError(
            f"{np.mean(actual != expected):.3%} of the values differ"
        )


class Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt after the given global step, like a kill."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            raise KeyboardInterrupt(f"interrupted after step {self.step}")
