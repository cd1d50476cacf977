"""Priors p(z): the distribution the decoder's latent codes are drawn from.

A prior is a Keras layer (so that a learned prior keeps its weights in the
model's `.keras` file) with three jobs:

    prior.log_prob(z)            -> (...,) nats, z of shape (..., latent_dim)
    prior.sample(n, seed)        -> (n, latent_dim), stateless in `seed`
    prior.distribution()         -> tfd.Distribution, event_shape (latent_dim,)

The `VAE` binds its prior to the latent size of its decoder
(`set_latent_dim`); a prior built with another `latent_dim` is refused there.
It then calls `attach(encoder, posterior, event_shape)`, which a prior that
is defined through the encoder (the VampPrior) uses; the others ignore it.

Four priors:

- `StandardNormal()`: N(0, I), the default (Kingma & Welling 2014).
- `MixtureOfGaussians(num_components=K)`: a learned mixture of K diagonal
  Gaussians (weights, means and scales are weights of the model).
- `VampPrior(num_pseudo_inputs=K)`: the mixture of the encoder's
  posteriors at K learned pseudo-inputs (Tomczak & Welling 2018).
- `HierarchicalPrior(latent_dims)`: p(z_n) p(z_{n-1} | z_n) ... p(z_1 | z_2)
  over the joint latent of a hierarchy (Burda et al. 2016), with
  `kv.posteriors.HierarchicalGaussian`; `kv.build_hierarchical_vae` builds
  the pair.

A diagonal-Gaussian posterior has a closed-form KL only against the
standard normal; with the two mixtures the `Sampling` layer adds the
single-draw Monte-Carlo KL, log q(z|x) - log p(z) of the z it returns.

Examples:
    >>> prior = kv.priors.get("standard_normal")
    >>> prior.set_latent_dim(2)
    >>> prior.log_prob(tf.zeros((3, 2))).numpy().round(4)  # -log(2 pi)
    array([-1.8379, -1.8379, -1.8379], dtype=float32)
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import _parts
from keras_vae import networks
from keras_vae import objectives
from keras_vae.data import checks

tfd = tfp.distributions


def _check_latent_dim(latent_dim, who):
    if latent_dim is None:
        return None
    if not checks.is_int(latent_dim):
        raise ValueError(
            f"{who}: `latent_dim` must be None or an int >= 1. Received: "
            f"latent_dim={latent_dim!r}"
        )
    return int(latent_dim)


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

    def attach(self, encoder, posterior, event_shape):
        """Called by the `VAE` once its parts fit together: the encoder
        (a keras.Model), the posterior head and the data's shape. Priors
        that do not depend on the encoder ignore it."""
        del encoder, posterior, event_shape

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

    Examples:
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


def _log_mean_components(log_weights, log_components):
    """log sum_k w_k p_k(z) from log w (K,) and log p_k(z) (..., K)."""
    return tf.reduce_logsumexp(log_components + log_weights, axis=-1)


@keras.saving.register_keras_serializable(package="keras_vae")
class MixtureOfGaussians(Prior):
    """p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2)), all of it learned.

    The mixture weights pi = softmax(logits), the means mu_k and the log
    variances log sigma_k^2 are weights of the model, trained with the rest
    by the ELBO. The log variances pass through the same soft clamp as the
    posterior's (`objectives.soft_clamp_log_var`), so a component cannot
    shrink to a point. Means start at N(0, 1) draws (so components differ),
    log variances at 0 and weights equal. As a `tfd.Distribution` it is a
    `tfd.MixtureSameFamily` of `tfd.MultivariateNormalDiag`.

    There is no closed-form KL between a Gaussian posterior and a mixture:
    training uses the single-draw Monte-Carlo KL, and free bits (a floor on
    each dimension's KL) are refused, because that KL is not a sum over
    latent dimensions.

    Args:
        num_components: int >= 1, default 10. K, the number of Gaussians.
        latent_dim: int or None (set by the VAE).
        seed: int or None. Seed of the means' initialiser.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), 2,
        ...                        prior=kv.priors.MixtureOfGaussians(10))
    """

    def __init__(self, num_components=10, latent_dim=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_components = checks.check_int(num_components,
                                               "num_components")
        self.seed = None if seed is None else checks.check_seed(seed)
        latent_dim = _check_latent_dim(latent_dim, "MixtureOfGaussians")
        if latent_dim is not None:
            self.set_latent_dim(latent_dim)

    def _create_weights(self, latent_dim):
        k = self.num_components
        self.logits = self.add_weight(
            shape=(k,), initializer="zeros", name="logits")
        self.means = self.add_weight(
            shape=(k, latent_dim), name="means",
            initializer=keras.initializers.RandomNormal(stddev=1.0,
                                                        seed=self.seed))
        self.log_vars = self.add_weight(
            shape=(k, latent_dim), initializer="zeros", name="log_vars")

    def _params(self, dtype):
        self._require_latent_dim()
        log_weights = tf.nn.log_softmax(tf.cast(self.logits, dtype))
        log_vars = objectives.soft_clamp_log_var(tf.cast(self.log_vars,
                                                         dtype))
        return log_weights, tf.cast(self.means, dtype), log_vars

    def log_prob(self, z):
        z = tf.convert_to_tensor(z)
        log_weights, means, log_vars = self._params(z.dtype)
        log_components = objectives.log_normal_diag_components(
            z, means, log_vars)  # (..., K)
        return _log_mean_components(log_weights, log_components)

    def sample(self, num_samples, seed=None):
        return self.distribution().sample(num_samples, seed=seed_pair(seed))

    def distribution(self, dtype="float32"):
        log_weights, means, log_vars = self._params(dtype)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=log_weights),
            components_distribution=tfd.MultivariateNormalDiag(
                loc=means, scale_diag=tf.exp(0.5 * log_vars)),
        )

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components, seed=self.seed)
        return config


class _Attached:
    """The encoder and posterior head a VampPrior is defined through, out of
    Keras' attribute tracking."""

    __slots__ = ("encoder", "posterior")

    def __init__(self, encoder, posterior):
        self.encoder = encoder
        self.posterior = posterior


@keras.saving.register_keras_serializable(package="keras_vae")
class VampPrior(Prior):
    """The VampPrior: p(z) = (1/K) sum_k q(z | u_k) (Tomczak & Welling 2018).

    A mixture of the model's own posteriors at K pseudo-inputs u_k, which
    are weights of the model of the data's shape, learned with the rest by
    the ELBO. The prior therefore changes with the encoder: `log_prob`
    encodes the pseudo-inputs each time it is called (K encoder passes, one
    batch), and gradients reach both the pseudo-inputs and the encoder.
    It needs a `VAE` (which calls `attach`) before it can be used.

    The pseudo-inputs start as uniform draws in [0, 1], the range of
    image data; `initialize_from(x)` sets them to K examples instead. The
    paper clamps them to [0, 1] with a hard tanh; here they are left
    unconstrained (the clamp has no gradient outside the range).

    As with the mixture of Gaussians, the KL is the single-draw
    Monte-Carlo estimate and free bits are refused.

    Train it with KL warm-up (`kv.callbacks.LinearKLWarmup`), as the paper
    does: the prior can match any posterior that does not depend on x, and
    without warm-up an MNIST MLP's KL fell to 0 in its first epoch here
    (every input encoded alike; benchmarks/models_mnist.py).

    Args:
        num_pseudo_inputs: int >= 1, default 500 (the paper's MNIST value).
        latent_dim: int or None (set by the VAE).
        seed: int or None. Seed of the pseudo-inputs' initialiser.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), 40,
        ...                        prior=kv.priors.VampPrior(500))
        >>> vae.prior.initialize_from(x_train[:500])
    """

    def __init__(self, num_pseudo_inputs=500, latent_dim=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_pseudo_inputs = checks.check_int(num_pseudo_inputs,
                                                  "num_pseudo_inputs")
        self.seed = None if seed is None else checks.check_seed(seed)
        self.event_shape = None
        # A plain holder, not the encoder and head themselves: the VAE owns
        # them, and a second reference here would make Keras track (and
        # save) them twice.
        self._attached = None
        latent_dim = _check_latent_dim(latent_dim, "VampPrior")
        if latent_dim is not None:
            self.set_latent_dim(latent_dim)

    def set_latent_dim(self, latent_dim):
        # Weights come with `attach` (they need the data's shape).
        super().set_latent_dim(latent_dim)
        self.built = self.event_shape is not None

    def attach(self, encoder, posterior, event_shape):
        event_shape = tuple(int(d) for d in event_shape)
        if not posterior.scores_any_z:
            raise ValueError(
                "The VampPrior scores every z under the posterior of each "
                f"pseudo-input, which the {type(posterior).__name__} "
                "posterior cannot do at training cost (its density at a z it did not "
                "draw needs an inversion, latent_dim sequential network "
                "passes). Use the VampPrior with posterior='diagonal' or "
                "'full', or this posterior with prior='standard_normal' or "
                "'mog'."
            )
        if self.event_shape is not None and self.event_shape != event_shape:
            raise ValueError(
                f"This VampPrior's pseudo-inputs have shape {self.event_shape}"
                f" but the model's data have shape {event_shape}. A prior "
                "belongs to one model; build a new VampPrior."
            )

        self._attached = _Attached(encoder, posterior)
        if self.event_shape is None:
            self.event_shape = event_shape
            self.pseudo_inputs = self.add_weight(
                shape=(self.num_pseudo_inputs, *event_shape),
                name="pseudo_inputs",
                initializer=keras.initializers.RandomUniform(
                    0.0, 1.0, seed=self.seed),
            )
        self.built = True

    def _require_attached(self):
        self._require_latent_dim()
        if self._attached is None:
            raise ValueError(
                "The VampPrior is defined through a model's encoder and has "
                "none yet. Pass it to a keras_vae.VAE (prior=...) first."
            )

    def initialize_from(self, x, seed=0):
        """Sets the pseudo-inputs to K examples of `x` (drawn without
        replacement with `seed` when x has more than K), a common start that
        puts the mixture where the data's posteriors are.

        Raises:
            ValueError: x has fewer than K examples or another shape.
        """
        self._require_attached()
        x = checks.to_float32(x, "x")
        k = self.num_pseudo_inputs
        if tuple(x.shape[1:]) != self.event_shape or len(x) < k:
            raise ValueError(
                f"initialize_from needs at least {k} examples of shape "
                f"{self.event_shape}. Received x of shape {tuple(x.shape)}."
            )
        if len(x) > k:
            x = x[np.random.default_rng(seed).choice(len(x), k,
                                                      replace=False)]
        self.pseudo_inputs.assign(x)

    def components(self, dtype="float32"):
        """q(z | u_k)'s parameter tensors for the K pseudo-inputs, each
        (K, ...), cast to `dtype`."""
        self._require_attached()
        outputs = self._attached.encoder(
            tf.convert_to_tensor(self.pseudo_inputs), training=False)
        return [tf.cast(p, dtype)
                for p in self._attached.posterior.from_encoder(outputs)]

    def log_prob(self, z):
        z = tf.convert_to_tensor(z)
        params = self.components(z.dtype)
        log_components = self._attached.posterior.log_prob_components(
            params, z)  # (..., K)
        log_weights = -tf.math.log(tf.cast(self.num_pseudo_inputs, z.dtype))
        return _log_mean_components(log_weights, log_components)

    def sample(self, num_samples, seed=None):
        params = self.components()
        seed = seed_pair(seed)
        which = tf.random.stateless_uniform(
            tf.reshape(num_samples, [1]), seed, minval=0,
            maxval=self.num_pseudo_inputs, dtype=tf.int32)
        eps = tf.random.stateless_normal(
            tf.stack([num_samples, self.latent_dim]), seed + 1)
        return self._attached.posterior.reparameterize(
            [tf.gather(p, which) for p in params], eps)

    def distribution(self, dtype="float32"):
        k = self.num_pseudo_inputs
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=tf.zeros([k], dtype)),
            components_distribution=self._attached.posterior.distribution(
                self.components(dtype)),
        )

    def get_config(self):
        config = super().get_config()
        config.update(num_pseudo_inputs=self.num_pseudo_inputs,
                      seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalPrior(Prior):
    """p(z_1, ..., z_n) = p(z_n) p(z_{n-1} | z_n) ... p(z_1 | z_2): the
    generative model's stochastic layers above the data (Burda et al. 2016).

    The top layer is N(0, I); each layer below is a diagonal Gaussian whose
    mean and log variance come from a `kv.networks.GaussianMLP` of the
    layer above, weights of the model. It scores and draws the joint latent
    z = [z_1, ..., z_n] of `kv.posteriors.HierarchicalGaussian` (z_1 first):

        log p(z) = log N(z_n; 0, I)
                   + sum_{l<n} log N(z_l; mu_l(z_{l+1}), sigma_l(z_{l+1})^2).

    `sample` draws top-down (ancestral sampling). The decoder p(x | z_1)
    reads z_1 only. No posterior has a closed-form KL against it.

    Args:
        latent_dims: tuple of ints, decreasing, default (100, 50).
        hidden_units: the hidden widths of each p(z_l | z_{l+1}) network,
            a tuple per layer below the top (or one tuple for all), default
            ((100, 100),).
        activation: str, default "tanh".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, latent_dims=(100, 50), hidden_units=((100, 100),),
                 activation="tanh", **kwargs):
        kwargs.pop("latent_dim", None)  # from a config: sum(latent_dims)
        super().__init__(**kwargs)
        (self.latent_dims, self.hidden_units,
         self.activation_name) = networks.hierarchy_settings(
            latent_dims, hidden_units, activation, type(self).__name__)
        self.set_latent_dim(sum(self.latent_dims))

    def _create_weights(self, latent_dim):
        dims = self.latent_dims
        # downward[l]: p(z_{l+1} | z_{l+2}) in 0-based layers, l = 0 .. n-2.
        self.downward = [
            networks.GaussianMLP(above, below, units,
                                       self.activation_name, dtype="float32",
                                       name=f"p_z{l + 1}")
            for l, (below, above, units) in enumerate(zip(
                dims, dims[1:], self.hidden_units))
        ]

    def log_prob_layers(self, z):
        """[log p(z_l | z_{l+1}) for each layer, then log p(z_n)], each
        (...,), for the joint z (..., sum(latent_dims)). Computed in float32
        (the networks' dtype), returned in z's dtype."""
        z = tf.convert_to_tensor(z)
        layers = networks.split_layers(tf.cast(z, "float32"),
                                       self.latent_dims)
        out = []
        for l, z_l in enumerate(layers[:-1]):
            mean, log_var = self.downward[l](layers[l + 1])
            out.append(objectives.log_normal_diag(z_l, mean, log_var))
        out.append(objectives.log_standard_normal(layers[-1]))
        return [tf.cast(o, z.dtype) for o in out]

    def log_prob(self, z):
        return networks.add_broadcast(self.log_prob_layers(z))

    def push(self, eps):
        """The joint z from standard-normal noise eps (..., sum(dims)) laid
        out like z: z_n = eps_n, then z_l = mu_l(z_{l+1}) + sigma_l eps_l
        down to z_1 (ancestral sampling)."""
        noise = networks.split_layers(tf.cast(eps, "float32"),
                                      self.latent_dims)
        layers = [noise[-1]]
        for l in reversed(range(len(self.latent_dims) - 1)):
            mean, log_var = self.downward[l](layers[0])
            layers.insert(0, mean + tf.exp(0.5 * log_var) * noise[l])
        return tf.concat(layers, axis=-1)

    def sample(self, num_samples, seed=None):
        eps = tf.random.stateless_normal(
            tf.stack([num_samples, self.latent_dim]), seed=seed_pair(seed))
        return self.push(eps)

    def distribution(self, dtype="float32"):
        """N(0, I) noise through the top-down map (`push`), a
        `tfd.TransformedDistribution` with event shape (sum(dims),)."""
        return tfd.TransformedDistribution(
            tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim],
                                                    dtype)),
            _TopDown(self))

    def get_config(self):
        return {**super().get_config(), **networks.hierarchy_config(self)}


class _TopDown(networks.LayerwiseGaussianMap):
    """eps -> z of a `HierarchicalPrior`: forward draws top-down; the
    inverse recovers each eps_l from z_l and z_{l+1}."""

    def __init__(self, prior):
        self._prior = prior
        super().__init__(name="top_down")

    def _forward(self, eps):
        return self._prior.push(eps)

    def _conditionals(self, z):
        layers = networks.split_layers(tf.cast(z, "float32"),
                                       self._prior.latent_dims)
        out = [(z_l, *self._prior.downward[l](layers[l + 1]))
               for l, z_l in enumerate(layers[:-1])]
        top = layers[-1]  # N(0, I)
        return out + [(top, tf.zeros_like(top), tf.zeros_like(top))]


_REGISTRY = {
    "standard_normal": StandardNormal,
    "mog": MixtureOfGaussians,
    "vamp": VampPrior,
}


def names():
    """The names `get` accepts."""
    return sorted(_REGISTRY)


def get(identifier):
    """Returns a prior from a name, a config dict, an instance or None.

    Args:
        identifier: None (the default `StandardNormal()`),
            "standard_normal", "mog" (`MixtureOfGaussians()`), "vamp"
            (`VampPrior()`), a `Prior` instance (returned as is), or a dict
            made by `keras.saving.serialize_keras_object`.

    Raises:
        ValueError: an unknown name, or an object that is not a prior.

    Examples:
        >>> type(get(None)).__name__
        'StandardNormal'
    """
    return _parts.lookup(identifier, _REGISTRY, Prior, "prior",
                         StandardNormal)


__all__ = ["HierarchicalPrior", "MixtureOfGaussians", "Prior",
           "StandardNormal", "VampPrior", "get", "names"]
