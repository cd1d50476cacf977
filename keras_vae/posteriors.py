"""Posterior heads q(z|x): from the encoder's output tensors to a distribution.

The encoder is a plain Keras model whose outputs are tensors; a posterior
head says how many it needs and what they mean, and owns every formula of
q(z|x) the package uses:

    head.params_size(latent_dim) -> sizes of the encoder's outputs (last axis)
    head.from_encoder(outputs)   -> params, the list of parameter tensors
    head.reparameterize(params, eps) -> z, a differentiable draw from standard
                                    normal noise eps (..., B, latent_dim)
    head.log_prob(params, z)     -> log q(z|x), (..., B)
    head.sample_and_log_prob(params, eps) -> (z, log q(z|x)) of that draw
    head.kl_divergence(params, prior) -> closed-form KL (B,), or None
    head.mean(params)            -> E_q[z], (B, latent_dim)
    head.distribution(params)    -> tfd.Distribution, event_shape (latent_dim,)

Every draw from q in training, evaluation, refinement and the SavedModel
export goes through `reparameterize`, so noise eps gives the same z
everywhere.

Example:
    >>> head = kv.posteriors.get("diagonal")
    >>> head.params_size(2)
    (2, 2)
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import _parts
from keras_vae import objectives
from keras_vae import priors as priors_lib

tfd = tfp.distributions


def _as_shape_list(output_shapes):
    """A model's `output_shape` as a list of tuples (one per output)."""
    if isinstance(output_shapes, (list, tuple)) and output_shapes and all(
        isinstance(s, (list, tuple)) for s in output_shapes
    ):
        return [tuple(s) for s in output_shapes]
    return [tuple(output_shapes)]


class Posterior(keras.layers.Layer):
    """Base class of posterior heads.

    Subclasses set `param_names` (one name per encoder output, also the
    names of the exported `encode` signature's outputs) and implement
    `params_size`, `reparameterize`, `log_prob`, `mean` and `distribution`;
    `from_encoder` and `kl_divergence` have defaults.
    """

    param_names = ()

    def params_size(self, latent_dim):
        """Sizes of the last axis of each encoder output, a tuple."""
        raise NotImplementedError

    def latent_dim_of(self, output_shapes):
        """The latent size implied by the encoder's output shapes (the last
        axis of the first output by default)."""
        return int(_as_shape_list(output_shapes)[0][-1])

    def check_encoder_outputs(self, output_shapes, latent_dim):
        """Raises ValueError unless the encoder's output shapes are the ones
        this head needs for a `latent_dim`-dimensional latent."""
        sizes = self.params_size(latent_dim)
        got = _as_shape_list(output_shapes)
        ok = len(got) == len(sizes) and all(
            len(s) == 2 and s[-1] == size for s, size in zip(got, sizes)
        )
        if not ok:
            names = ", ".join(self.param_names)
            raise ValueError(
                f"The {type(self).__name__} posterior needs the encoder to "
                f"output [{names}], {len(sizes)} tensors of shapes "
                + ", ".join(f"(batch, {n})" for n in sizes)
                + f" for latent_dim={latent_dim} (the decoder's input "
                f"size). Received encoder outputs: {got}. Size the encoder's "
                "outputs with posterior.params_size(latent_dim)."
            )

    def check_params(self, params, who=None):
        """Returns `params` as a list, or raises ValueError when it is not
        the head's parameter tensors (their number, and shapes where the
        head can tell)."""
        who = who or f"The {type(self).__name__} posterior"
        names = ", ".join(self.param_names)
        if not isinstance(params, (list, tuple)) or len(params) != len(
            self.param_names
        ):
            count = len(params) if isinstance(params, (list, tuple)) else 1
            raise ValueError(
                f"{who} takes {len(self.param_names)} parameter tensors "
                f"[{names}] of the {type(self).__name__} posterior. "
                f"Received {count}: {type(params).__name__}."
            )
        return list(params)

    def from_encoder(self, outputs):
        """The parameter list from the encoder's outputs (checked)."""
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return self.check_params(outputs)

    def reparameterize(self, params, eps):
        raise NotImplementedError

    def log_prob(self, params, z):
        raise NotImplementedError

    def log_prob_components(self, params, z):
        """log q(z | params[k]) of every z against each of K parameter sets
        (the rows of `params`, each (K, ...)): (..., K) for z (..., L). A
        VampPrior's mixture is scored with this. By default it broadcasts
        z against the K rows; heads override it where a cheaper form
        exists."""
        return self.log_prob(params, z[..., None, :])

    def sample_and_log_prob(self, params, eps):
        """(z, log q(z|x)) for the draw z = reparameterize(params, eps).

        Heads that can compute log q from the noise itself (the density of
        eps and the log-determinant of the map) override this: it stays
        exact where recomputing it from z loses the digits z - z_mean
        carries (a posterior far narrower than float32's spacing at z).
        """
        z = self.reparameterize(params, eps)
        return z, self.log_prob(params, z)

    def mean(self, params):
        raise NotImplementedError

    def distribution(self, params):
        raise NotImplementedError

    def kl_divergence(self, params, prior):
        """Closed-form KL(q || p) per example (B,), or None when TFP has no
        closed form for this pair (the caller then estimates it)."""
        try:
            return tfd.kl_divergence(self.distribution(params),
                                     prior.distribution())
        except NotImplementedError:
            return None

    def kl_per_dim(self, params, prior):
        """KL of each latent dimension (B, latent_dim), or None when it does
        not split by dimension (free bits then need a factorised pair)."""
        return None

    def call(self, outputs):
        return self.from_encoder(outputs)


@keras.saving.register_keras_serializable(package="keras_vae")
class DiagonalGaussian(Posterior):
    """q(z|x) = N(z_mean, diag(exp(z_log_var))), the default posterior.

    The encoder outputs [z_mean, z_log_var], each (batch, latent_dim)
    (Kingma & Welling 2014). `from_encoder` passes z_log_var through
    `objectives.soft_clamp_log_var`, the identity on [-30, 10] that
    saturates smoothly beyond, so a diverging encoder cannot overflow
    exp(z_log_var); inside that range nothing changes. Against the standard
    normal prior the KL has a closed form.

    Example:
        >>> head = DiagonalGaussian()
        >>> z_mean, z_log_var = head.from_encoder([tf.zeros((1, 2)),
        ...                                        tf.fill((1, 2), 40.0)])
        >>> float(z_log_var[0, 0]) < 15.0
        True
    """

    param_names = ("z_mean", "z_log_var")

    def params_size(self, latent_dim):
        return (int(latent_dim), int(latent_dim))

    def check_params(self, params, who=None):
        z_mean, z_log_var = super().check_params(params, who)
        if tuple(z_mean.shape) != tuple(z_log_var.shape):
            raise ValueError(
                "z_mean and z_log_var must have the same shape. Received: "
                f"z_mean.shape={tuple(z_mean.shape)}, "
                f"z_log_var.shape={tuple(z_log_var.shape)}"
            )
        return [z_mean, z_log_var]

    def from_encoder(self, outputs):
        z_mean, z_log_var = super().from_encoder(outputs)
        return [z_mean, objectives.soft_clamp_log_var(z_log_var)]

    def scale(self, params):
        """The standard deviations exp(z_log_var / 2), (B, latent_dim)."""
        return tf.exp(0.5 * params[1])

    def reparameterize(self, params, eps):
        """z = z_mean + exp(z_log_var / 2) * eps (the reparameterization
        trick); eps (..., B, latent_dim) broadcasts against the params."""
        return params[0] + self.scale(params) * eps

    def log_prob(self, params, z):
        z_mean, z_log_var = params
        return objectives.log_normal_diag(z, z_mean, z_log_var)

    def log_prob_components(self, params, z):
        # Two matrix products, K numbers per draw (not K * latent_dim).
        return objectives.log_normal_diag_components(z, params[0], params[1])

    def sample_and_log_prob(self, params, eps):
        # z = z_mean + sigma * eps has density N(eps; 0, I) / prod(sigma):
        # log q = log N(eps; 0, I) - sum(z_log_var) / 2, with no z - z_mean.
        z = self.reparameterize(params, eps)
        log_q = objectives.log_standard_normal(eps) - 0.5 * tf.reduce_sum(
            params[1], axis=-1)
        return z, log_q

    def mean(self, params):
        return params[0]

    def distribution(self, params):
        return tfd.MultivariateNormalDiag(
            loc=params[0], scale_diag=self.scale(params)
        )

    def kl_divergence(self, params, prior):
        if isinstance(prior, priors_lib.StandardNormal):
            return objectives.gaussian_kl(*params)
        return super().kl_divergence(params, prior)

    def kl_per_dim(self, params, prior):
        if isinstance(prior, priors_lib.StandardNormal):
            return objectives.gaussian_kl_per_dim(*params)
        return None


@keras.saving.register_keras_serializable(package="keras_vae")
class FullCovarianceGaussian(Posterior):
    """q(z|x) = N(z_mean, S S^T) with a full lower-triangular factor S.

    The encoder outputs [z_mean, z_tril]: z_mean (batch, L) and the
    L (L + 1) / 2 entries of S, row by row (`tfp.math.fill_triangular`'s
    order), (batch, L (L + 1) / 2). The diagonal entries are log variances:
    S_ii = exp(soft_clamp(d_i) / 2), the same map (and clamp) as the
    diagonal posterior's z_log_var, so with zero off-diagonal entries this
    head is `DiagonalGaussian` exactly. As a distribution it is
    `tfd.MultivariateNormalTriL`. Against the standard normal the KL has a
    closed form (`objectives.full_gaussian_kl`); it does not split by
    dimension, so free bits are refused with it.

    Example:
        >>> vae = kv.build_mlp_vae((28, 28, 1), 10, posterior="full")
        >>> [o.shape[-1] for o in vae.encoder.outputs]
        [10, 55]
    """

    param_names = ("z_mean", "z_tril")

    def params_size(self, latent_dim):
        latent_dim = int(latent_dim)
        return (latent_dim, latent_dim * (latent_dim + 1) // 2)

    def check_params(self, params, who=None):
        z_mean, z_tril = super().check_params(params, who)
        latent_dim = z_mean.shape[-1]
        if latent_dim is not None and z_tril.shape[-1] is not None and (
            z_tril.shape[-1] != latent_dim * (latent_dim + 1) // 2
        ):
            raise ValueError(
                "z_tril must hold the L (L + 1) / 2 entries of the Cholesky "
                f"factor for z_mean of size L = {latent_dim}. Received: "
                f"z_mean.shape={tuple(z_mean.shape)}, "
                f"z_tril.shape={tuple(z_tril.shape)}"
            )
        return [z_mean, z_tril]

    def scale_tril(self, params):
        """S, (..., L, L): lower triangular, diagonal exp(clamp(d) / 2)."""
        filled = tfp.math.fill_triangular(params[1])
        log_var = objectives.soft_clamp_log_var(tf.linalg.diag_part(filled))
        return tf.linalg.set_diag(filled, tf.exp(0.5 * log_var))

    def reparameterize(self, params, eps):
        """z = z_mean + S eps; eps (..., B, L) broadcasts against (B, ...)."""
        return params[0] + tf.linalg.matvec(self.scale_tril(params), eps)

    def log_prob(self, params, z):
        return self.distribution(params).log_prob(z)

    def sample_and_log_prob(self, params, eps):
        # z = z_mean + S eps has density N(eps; 0, I) / |det S|.
        scale = self.scale_tril(params)
        z = params[0] + tf.linalg.matvec(scale, eps)
        log_det = tf.reduce_sum(tf.math.log(tf.linalg.diag_part(scale)), -1)
        return z, objectives.log_standard_normal(eps) - log_det

    def mean(self, params):
        return params[0]

    def distribution(self, params):
        return tfd.MultivariateNormalTriL(loc=params[0],
                                          scale_tril=self.scale_tril(params))

    def kl_divergence(self, params, prior):
        if isinstance(prior, priors_lib.StandardNormal):
            return objectives.full_gaussian_kl(params[0],
                                               self.scale_tril(params))
        return super().kl_divergence(params, prior)


_REGISTRY = {
    "diagonal": DiagonalGaussian,
    "full": FullCovarianceGaussian,
}


def names():
    """The names `get` accepts."""
    return sorted(_REGISTRY)


def get(identifier):
    """Returns a posterior head from a name, a config dict, an instance or
    None.

    Args:
        identifier: None (the default `DiagonalGaussian()`), "diagonal",
            "full" (`FullCovarianceGaussian()`), a `Posterior` instance
            (returned as is), or a dict made by
            `keras.saving.serialize_keras_object`.

    Raises:
        ValueError: an unknown name, or an object that is not a posterior.

    Example:
        >>> type(get(None)).__name__
        'DiagonalGaussian'
    """
    return _parts.lookup(identifier, _REGISTRY, Posterior, "posterior",
                         DiagonalGaussian)


__all__ = ["DiagonalGaussian", "FullCovarianceGaussian", "Posterior", "get",
           "names"]
