"""Priors p(z): the distribution the decoder's latent codes are drawn from.

A prior is a Keras layer (so that a learned prior keeps its weights in the
model's `.keras` file) with three jobs:

    prior.log_prob(z)            -> (...,) nats, z of shape (..., latent_dim)
    prior.sample(n, seed)        -> (n, latent_dim), stateless in `seed`
    prior.distribution()         -> tfd.Distribution, event_shape (latent_dim,)

The `VAE` binds its prior to the latent size of its decoder
(`set_latent_dim`); a prior built with another `latent_dim` is refused there.

Example:
    >>> prior = kv.priors.get("standard_normal")
    >>> prior.set_latent_dim(2)
    >>> prior.log_prob(tf.zeros((3, 2)))  # -log(2 pi) each
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import _parts
from keras_vae import objectives

tfd = tfp.distributions


def _check_latent_dim(latent_dim, who):
    if latent_dim is None:
        return None
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or (
        latent_dim < 1
    ):
        raise ValueError(
            f"{who}: `latent_dim` must be None or an int >= 1. Received: "
            f"latent_dim={latent_dim!r}"
        )
    return latent_dim


def seed_pair(seed):
    """A stateless seed (int32 (2,)) from None, an int or a pair."""
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int32)
    return tf.cast(seed, tf.int32)


class Prior(keras.layers.Layer):
    """Base class of priors p(z) over a `latent_dim`-dimensional latent.

    Subclasses implement `log_prob(z)`, `sample(num_samples, seed)` and
    `distribution()`, and may create weights in `_create_weights`.

    Args:
        latent_dim: int or None. None leaves it to the VAE to set from its
            decoder's input.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, latent_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = None
        latent_dim = _check_latent_dim(latent_dim, type(self).__name__)
        if latent_dim is not None:
            self.set_latent_dim(latent_dim)

    def set_latent_dim(self, latent_dim):
        """Binds the prior to `latent_dim` and creates its weights.

        Raises:
            ValueError: the prior is already bound to another size.
        """
        latent_dim = _check_latent_dim(latent_dim, type(self).__name__)
        if self.latent_dim is not None:
            if self.latent_dim != latent_dim:
                raise ValueError(
                    f"The {type(self).__name__} prior has latent_dim="
                    f"{self.latent_dim} but the model's latent space has "
                    f"{latent_dim} dimensions (the decoder's input). Build "
                    "the prior with the same latent_dim, or leave it None."
                )
            return
        self.latent_dim = latent_dim
        self._create_weights(latent_dim)
        self.built = True

    def _create_weights(self, latent_dim):
        pass

    def _require_latent_dim(self):
        if self.latent_dim is None:
            raise ValueError(
                f"The {type(self).__name__} prior has no latent_dim yet. "
                "Pass latent_dim=... or use it inside a keras_vae.VAE."
            )
        return self.latent_dim

    def log_prob(self, z):
        """log p(z) in nats, summed over the last axis: (...,)."""
        raise NotImplementedError

    def sample(self, num_samples, seed=None):
        """num_samples draws, (num_samples, latent_dim), stateless in
        `seed`: an int, a pair of ints (an int32 tensor of shape (2,) in a
        graph), or None for a fresh random seed."""
        raise NotImplementedError

    def distribution(self):
        """The prior as a `tfd.Distribution` with event shape
        (latent_dim,)."""
        raise NotImplementedError

    def call(self, z):
        return self.log_prob(z)

    def get_config(self):
        config = super().get_config()
        config["latent_dim"] = self.latent_dim
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class StandardNormal(Prior):
    """p(z) = N(0, I), the prior of Kingma & Welling (2014). The default.

    Has no weights. A diagonal-Gaussian posterior has a closed-form KL
    against it.

    Example:
        >>> vae = kv.build_mlp_vae((28, 28, 1), 2,
        ...                        prior=kv.priors.StandardNormal())
    """

    def log_prob(self, z):
        return objectives.log_standard_normal(z)

    def sample(self, num_samples, seed=None):
        return tf.random.stateless_normal(
            tf.stack([num_samples, self._require_latent_dim()]),
            seed=seed_pair(seed),
        )

    def distribution(self, dtype="float32"):
        latent_dim = self._require_latent_dim()
        return tfd.MultivariateNormalDiag(loc=tf.zeros([latent_dim], dtype))


_REGISTRY = {
    "standard_normal": StandardNormal,
}


def names():
    """The names `get` accepts."""
    return sorted(_REGISTRY)


def get(identifier):
    """Returns a prior from a name, a config dict, an instance or None.

    Args:
        identifier: None (the default `StandardNormal()`),
            "standard_normal", a `Prior` instance (returned as is), or a dict
            made by `keras.saving.serialize_keras_object`.

    Raises:
        ValueError: an unknown name, or an object that is not a prior.

    Example:
        >>> type(get(None)).__name__
        'StandardNormal'
    """
    return _parts.lookup(identifier, _REGISTRY, Prior, "prior",
                         StandardNormal)


__all__ = ["Prior", "StandardNormal", "get", "names"]
