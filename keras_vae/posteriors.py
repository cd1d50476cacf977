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
export goes through `sample_and_log_prob` (whose z is `reparameterize`'s),
so noise eps gives the same z, and the same log q, everywhere.

The heads:

- `DiagonalGaussian()` ("diagonal"): N(z_mean, diag(exp(z_log_var))), the
  default (Kingma & Welling 2014);
- `FullCovarianceGaussian()` ("full"): N(z_mean, S S^T), S from the
  encoder;
- `InverseAutoregressiveFlow(num_flows=2)` ("iaf"): a diagonal Gaussian
  through affine autoregressive flows over `MaskedAutoregressiveNetwork`s
  (Kingma et al. 2016);
- `HierarchicalGaussian(latent_dims)`: q(z_1|x) q(z_2|z_1) ... over the
  joint latent of several stochastic layers (Burda et al. 2016), built
  with its prior by `kv.build_hierarchical_vae`.

Examples:
    >>> head = kv.posteriors.get("diagonal")
    >>> head.params_size(2)
    (2, 2)
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import _parts
from keras_vae import networks
from keras_vae import objectives
from keras_vae import priors as priors_lib
from keras_vae.data import checks

tfb = tfp.bijectors
tfd = tfp.distributions


def _check_same_shape(z_mean, z_log_var):
    if tuple(z_mean.shape) != tuple(z_log_var.shape):
        raise ValueError(
            "z_mean and z_log_var must have the same shape. Received: "
            f"z_mean.shape={tuple(z_mean.shape)}, "
            f"z_log_var.shape={tuple(z_log_var.shape)}"
        )


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
    # Whether log_prob(params, z) at a z the head did not draw costs one
    # pass (a VampPrior scores every z under each pseudo-input's q).
    scores_any_z = True

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

    def set_latent_dim(self, latent_dim):
        """Called by the `VAE` with its latent size once the parts fit
        together; heads with weights of their own (a flow's networks)
        create them here. The Gaussian heads have none: bound, they are
        built (so that Keras does not build the model by calling it on x
        alone, which a conditional model refuses)."""
        del latent_dim
        self.built = True

    def noise_shape(self, params):
        """The shape of one draw's standard-normal noise eps, (B,
        latent_dim), as a tensor (the shape of z_mean for every head)."""
        return tf.shape(params[0])

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


class _MeanAndLogVariance:
    """The encoder outputs [z_mean, z_log_var] of one diagonal Gaussian,
    checked, with the soft clamp on z_log_var (a mixin of the heads that
    read them)."""

    param_names = ("z_mean", "z_log_var")

    def check_params(self, params, who=None):
        z_mean, z_log_var = super().check_params(params, who)
        _check_same_shape(z_mean, z_log_var)
        return [z_mean, z_log_var]

    def from_encoder(self, outputs):
        z_mean, z_log_var = super().from_encoder(outputs)
        return [z_mean, objectives.soft_clamp_log_var(z_log_var)]


@keras.saving.register_keras_serializable(package="keras_vae")
class DiagonalGaussian(_MeanAndLogVariance, Posterior):
    """q(z|x) = N(z_mean, diag(exp(z_log_var))), the default posterior.

    The encoder outputs [z_mean, z_log_var], each (batch, latent_dim)
    (Kingma & Welling 2014). `from_encoder` passes z_log_var through
    `objectives.soft_clamp_log_var`, the identity on [-30, 10] that
    saturates smoothly beyond, so a diverging encoder cannot overflow
    exp(z_log_var); inside that range nothing changes. Against the standard
    normal prior the KL has a closed form.

    Examples:
        >>> head = DiagonalGaussian()
        >>> z_mean, z_log_var = head.from_encoder([tf.zeros((1, 2)),
        ...                                        tf.fill((1, 2), 40.0)])
        >>> float(z_log_var[0, 0]) < 15.0
        True
    """

    def params_size(self, latent_dim):
        return (int(latent_dim), int(latent_dim))


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

    Examples:
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


# Each flow step's log scale passes through the soft clamp of
# `objectives.soft_clamp_log_var` with these limits: the identity on
# [-5, 2], saturating within 1 beyond, so one step scales a coordinate by
# at most e^3 ~ 20 and at least e^-6 (the base Gaussian's own scale covers
# the rest) and two flows cannot blow a draw up.
FLOW_LOG_SCALE_RANGE = (-5.0, 2.0)
FLOW_LOG_SCALE_SOFTNESS = 1.0


def made_masks(event_size, hidden_units, num_outputs=1, reverse=False):
    """The connectivity masks of a MADE network (Germain et al. 2015).

    Input coordinate i gets degree d_i = i + 1 (or L - i with `reverse`),
    hidden units cycle through the degrees 1 .. L - 1, and each of the
    `num_outputs` blocks of L outputs repeats the input degrees. A hidden
    unit of degree m sees the inputs of degree <= m; an output of degree d
    sees the hidden units of degree < d. So output i depends only on the
    inputs that come before i in the order: the Jacobian is strictly
    triangular in it. With L = 1 the hidden units see no input (their
    degree is 0) and the outputs depend on the context alone.

    Returns:
        list of float32 numpy arrays, one (fan_in, fan_out) mask per layer.
    """
    d_in = np.arange(1, event_size + 1)
    if reverse:
        d_in = d_in[::-1].copy()
    masks, previous = [], d_in
    for units in hidden_units:
        if event_size > 1:
            degrees = np.arange(units) % (event_size - 1) + 1
        else:
            degrees = np.zeros(units, dtype=int)
        masks.append((previous[:, None] <= degrees[None, :]).astype(
            np.float32))
        previous = degrees
    d_out = np.tile(d_in, num_outputs)
    masks.append((previous[:, None] < d_out[None, :]).astype(np.float32))
    return masks


def _matmul_last(x, kernel):
    """x (..., n) @ kernel (n, m) -> (..., m) for any number of leading
    axes."""
    if len(x.shape) == 2:
        return tf.matmul(x, kernel)
    flat = tf.reshape(x, [-1, tf.shape(x)[-1]])
    out = tf.matmul(flat, kernel)
    return tf.reshape(out, tf.concat([tf.shape(x)[:-1], [-1]], 0))


@keras.saving.register_keras_serializable(package="keras_vae")
class MaskedAutoregressiveNetwork(keras.layers.Layer):
    """An autoregressive MLP (MADE, Germain et al. 2015) as a Keras 3 layer.

    Maps z (..., L) and an optional context h (..., C) to `num_outputs`
    tensors (..., L); output i of each is a function of h and of the
    coordinates of z that precede i in the layer's order (0, 1, ..., L - 1,
    or the reverse). The order is enforced by fixed binary masks on the
    kernels (`made_masks`); the context enters the first layer unmasked,
    as the extra input h of Kingma et al. (2016)'s IAF. The last layer
    starts at zero by default, so the outputs start at zero. This is the
    package's own layer: TFP's `AutoregressiveNetwork` is a Keras 2 layer.

    Args:
        event_size: int >= 1, L.
        hidden_units: tuple of positive ints, default (200, 200).
        num_outputs: int >= 1, default 2 (a shift and a log scale).
        context_size: int >= 0, default 0 (no context).
        activation: str, default "elu".
        reverse: bool, default False: the order L - 1, ..., 0.
        zero_output: bool, default True: the last layer (and the context
            kernel when it feeds the output directly) starts at zero.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> net = MaskedAutoregressiveNetwork(3, hidden_units=(8,))
        >>> shift, log_scale = net(tf.zeros((2, 3)))
    """

    def __init__(self, event_size, hidden_units=(200, 200), num_outputs=2,
                 context_size=0, activation="elu", reverse=False,
                 zero_output=True, **kwargs):
        super().__init__(**kwargs)
        self.event_size = checks.check_int(event_size, "event_size")
        self.hidden_units = networks._check_units(hidden_units)
        self.num_outputs = checks.check_int(num_outputs, "num_outputs")
        self.context_size = checks.check_int(context_size, "context_size",
                                             minimum=0)
        self.activation_name = activation
        self.activation = keras.activations.get(activation)
        self.reverse = bool(reverse)
        self.zero_output = bool(zero_output)
        self._masks = made_masks(self.event_size, self.hidden_units,
                                 self.num_outputs, self.reverse)
        sizes = ([self.event_size, *self.hidden_units,
                  self.num_outputs * self.event_size])
        last = len(sizes) - 2
        self.kernels, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            zero = self.zero_output and i == last
            self.kernels.append(self.add_weight(
                shape=(fan_in, fan_out), name=f"kernel_{i}",
                initializer="zeros" if zero else "glorot_uniform"))
            self.biases.append(self.add_weight(
                shape=(fan_out,), name=f"bias_{i}", initializer="zeros"))
        self.context_kernel = None
        if self.context_size:
            self.context_kernel = self.add_weight(
                shape=(self.context_size, sizes[1]), name="context_kernel",
                initializer="zeros" if (self.zero_output and last == 0)
                else "glorot_uniform")
        self.built = True

    def call(self, z, context=None):
        if self.context_size and context is None:
            raise ValueError(
                f"This MaskedAutoregressiveNetwork takes a context of size "
                f"{self.context_size}; call it as net(z, context)."
            )
        h = z
        last = len(self.kernels) - 1
        for i, (kernel, bias, mask) in enumerate(
                zip(self.kernels, self.biases, self._masks)):
            masked = kernel * tf.constant(mask, kernel.dtype)
            h = _matmul_last(h, masked) + bias
            if i == 0 and self.context_kernel is not None:
                h = h + _matmul_last(context, self.context_kernel)
            if i < last:
                h = self.activation(h)
        return tf.split(h, self.num_outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape)] * self.num_outputs

    def get_config(self):
        config = super().get_config()
        config.update(event_size=self.event_size,
                      hidden_units=list(self.hidden_units),
                      num_outputs=self.num_outputs,
                      context_size=self.context_size,
                      activation=self.activation_name, reverse=self.reverse,
                      zero_output=self.zero_output)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class InverseAutoregressiveFlow(Posterior):
    """q(z|x): a diagonal Gaussian pushed through inverse autoregressive
    flows (IAF, Kingma et al. 2016).

    The encoder outputs [z_mean, z_log_var, context]: the base Gaussian
    N(z_mean, diag(exp(z_log_var))) (clamped as in `DiagonalGaussian`) and
    a context vector h (batch, context_units). A draw is
    z_0 = z_mean + exp(z_log_var / 2) * eps, then for t = 1 .. T

        (mu_t, s_t) = MADE_t(z_{t-1}, h),    log sigma_t = clamp(s_t),
        z_t = mu_t + sigma_t * z_{t-1},

    the affine autoregressive step of Kingma et al. (2016, eq. 10) with
    `MaskedAutoregressiveNetwork`s, the order reversed from one flow to the
    next. Because mu_t and sigma_t of coordinate i see only the coordinates
    before i, the Jacobian of each step is triangular with diagonal sigma_t,
    and log q(z_T|x) = log N(eps; 0, I) - sum(z_log_var) / 2
    - sum_t sum_i log sigma_t,i: exact and one pass, from the noise. The
    networks' last layers start at zero, so a new flow is the identity and
    the model starts as the diagonal-Gaussian one. (The sigmoid-gated
    update of the paper's Algorithm 1 would start as a contraction instead;
    the clamp of log sigma, `FLOW_LOG_SCALE_RANGE`, gives the stability it
    was introduced for.)

    As a distribution it is `tfd.TransformedDistribution` of the base
    through a `tfb.Chain` of `tfb.Invert(tfb.MaskedAutoregressiveFlow)`
    bijectors over the same networks; its `log_prob` at a z the flow did
    not draw inverts each flow with L sequential network passes. Training,
    evaluation and export never need that: they score the draws. A
    VampPrior (which scores any z under each pseudo-input's q) is refused
    with this head for that reason. The KL has no closed form (the
    Monte-Carlo KL of the draw is used) and does not split by dimension,
    so free bits are refused.

    Args:
        num_flows: int >= 1, default 2. T.
        hidden_units: tuple of positive ints, default (200, 200): the
            hidden layers of each flow's network.
        context_units: int >= 1, default 100: the size of h.
        activation: str, default "elu": the networks' activation.
        latent_dim: int or None (set by the VAE from its decoder).
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), 10,
        ...     posterior=kv.posteriors.InverseAutoregressiveFlow(num_flows=2))
        >>> [o.shape[-1] for o in vae.encoder.outputs]
        [10, 10, 100]
    """

    param_names = ("z_mean", "z_log_var", "context")
    scores_any_z = False

    def __init__(self, num_flows=2, hidden_units=(200, 200),
                 context_units=100, activation="elu", latent_dim=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_flows = checks.check_int(num_flows, "num_flows")
        self.hidden_units = networks._check_units(hidden_units)
        self.context_units = checks.check_int(context_units, "context_units")
        keras.activations.get(activation)  # an unknown name fails here
        self.activation_name = activation
        self.latent_dim = None
        self.flows = []
        if latent_dim is not None:
            self.set_latent_dim(latent_dim)

    def set_latent_dim(self, latent_dim):
        """Binds the head to `latent_dim` and creates the flows' networks.

        Raises:
            ValueError: the head already belongs to another latent size.
        """
        latent_dim = checks.check_int(latent_dim, "latent_dim")
        if self.latent_dim is not None:
            if latent_dim != self.latent_dim:
                raise ValueError(
                    "This InverseAutoregressiveFlow posterior has "
                    f"latent_dim={self.latent_dim} but the model's latent "
                    f"space has {latent_dim} dimensions. A flow belongs to "
                    "one model; build a new one."
                )
            return
        self.latent_dim = latent_dim
        self.flows = [
            MaskedAutoregressiveNetwork(
                latent_dim, self.hidden_units, num_outputs=2,
                context_size=self.context_units,
                activation=self.activation_name, reverse=t % 2 == 1,
                dtype="float32", name=f"flow_{t}")
            for t in range(self.num_flows)
        ]
        self.built = True

    def params_size(self, latent_dim):
        latent_dim = int(latent_dim)
        return (latent_dim, latent_dim, self.context_units)

    def check_params(self, params, who=None):
        z_mean, z_log_var, context = super().check_params(params, who)
        if tuple(z_mean.shape) != tuple(z_log_var.shape) or (
            context.shape[-1] is not None
            and context.shape[-1] != self.context_units
        ):
            raise ValueError(
                "The InverseAutoregressiveFlow posterior takes z_mean and "
                "z_log_var of one shape and a context of size "
                f"{self.context_units}. Received: z_mean.shape="
                f"{tuple(z_mean.shape)}, z_log_var.shape="
                f"{tuple(z_log_var.shape)}, context.shape="
                f"{tuple(context.shape)}"
            )
        return [z_mean, z_log_var, context]

    def from_encoder(self, outputs):
        z_mean, z_log_var, context = super().from_encoder(outputs)
        return [z_mean, objectives.soft_clamp_log_var(z_log_var), context]

    def _require_flows(self):
        if self.latent_dim is None:
            raise ValueError(
                "The InverseAutoregressiveFlow posterior has no latent_dim "
                "yet (its networks are made for one). Pass latent_dim=... or "
                "use it inside a keras_vae.VAE."
            )

    def flow_step(self, t, z, context):
        """(mu_t, log sigma_t) of flow t at z (..., L): both (..., L)."""
        shift, raw = self.flows[t](z, context)
        log_scale = objectives.soft_clamp_log_var(
            raw, low=FLOW_LOG_SCALE_RANGE[0], high=FLOW_LOG_SCALE_RANGE[1],
            softness=FLOW_LOG_SCALE_SOFTNESS)
        return shift, log_scale

    def push(self, params, z0):
        """(z_T, sum_t log |det dz_t / dz_{t-1}|) for base points z0
        (..., B, L): the flows applied in order, one pass each."""
        self._require_flows()
        z, log_det = tf.cast(z0, "float32"), 0.0
        context = tf.cast(params[2], "float32")
        for t in range(self.num_flows):
            shift, log_scale = self.flow_step(t, z, context)
            z = shift + tf.exp(log_scale) * z
            log_det = log_det + tf.reduce_sum(log_scale, axis=-1)
        return z, log_det

    def _base_point(self, params, eps):
        # float32 from here on, whatever the encoder's dtype policy.
        z_mean, z_log_var = networks.float32(params[:2])
        return z_mean + tf.exp(0.5 * z_log_var) * tf.cast(eps, "float32")

    def reparameterize(self, params, eps):
        """z = flows(z_mean + exp(z_log_var / 2) * eps)."""
        return self.push(params, self._base_point(params, eps))[0]

    def sample_and_log_prob(self, params, eps):
        # The base's density from eps (as for the diagonal head), minus the
        # flows' log-determinants: exact, and no inversion.
        z, log_det = self.push(params, self._base_point(params, eps))
        eps, z_log_var = networks.float32([eps, params[1]])
        log_base = objectives.log_standard_normal(eps) - 0.5 * tf.reduce_sum(
            z_log_var, axis=-1)
        return z, log_base - log_det

    def mean(self, params):
        """The flows' image of the base mean (the draw at eps = 0). An
        IAF's E_q[z] has no closed form; this is the deterministic code that
        `reconstruct(mode="mean")` and `encode`-based features decode."""
        return self.push(params, params[0])[0]

    def log_prob(self, params, z):
        """log q(z|x) at any z, by inverting the flows (TFP's
        `MaskedAutoregressiveFlow`, L sequential passes per flow)."""
        return self.distribution(params).log_prob(z)

    def log_prob_components(self, params, z):
        raise ValueError(
            "An InverseAutoregressiveFlow posterior cannot score z under K "
            "pseudo-inputs' posteriors at training cost: its density at a z "
            "it did not draw needs latent_dim sequential network passes per "
            "flow. Use the VampPrior with posterior='diagonal' or 'full', or "
            "the IAF with prior='standard_normal' or 'mog'."
        )

    def _bijector(self, t, context):
        # Invert(MAF) runs the step forward in one pass and inverts it by
        # TFP's fixed-point loop. MAF calls fn at the step's *input* y:
        # fn(y).inverse(y) must be mu(y) + sigma(y) * y.
        def fn(y, **unused):
            shift, log_scale = self.flow_step(t, y, context)
            return tfb.Invert(tfb.Chain([tfb.Shift(shift),
                                         tfb.Scale(log_scale=log_scale)]))

        return tfb.Invert(tfb.MaskedAutoregressiveFlow(bijector_fn=fn))

    def distribution(self, params):
        self._require_flows()
        z_mean, z_log_var, context = networks.float32(params)
        base = tfd.MultivariateNormalDiag(loc=z_mean,
                                          scale_diag=tf.exp(0.5 * z_log_var))
        # tfb.Chain applies its last bijector first.
        chain = tfb.Chain([self._bijector(t, context)
                           for t in reversed(range(self.num_flows))])
        return tfd.TransformedDistribution(base, chain)

    def kl_divergence(self, params, prior):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(num_flows=self.num_flows,
                      hidden_units=list(self.hidden_units),
                      context_units=self.context_units,
                      activation=self.activation_name,
                      latent_dim=self.latent_dim)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalGaussian(_MeanAndLogVariance, Posterior):
    """q(z_1, ..., z_n | x) = q(z_1 | x) q(z_2 | z_1) ... q(z_n | z_{n-1}),
    each a diagonal Gaussian: the recognition model of Burda et al. (2016)'s
    two-stochastic-layer architecture.

    The encoder outputs [z_mean, z_log_var] of z_1 only; each further
    layer's Gaussian comes from a `kv.networks.GaussianMLP` of the layer
    below, a weight of this head. The latent of the model is the concatenation z = [z_1, ..., z_n]
    (sum(latent_dims) numbers, z_1 first), which the decoder and the prior
    (`kv.priors.HierarchicalPrior`) split again. A draw goes up the
    hierarchy from standard-normal noise eps = [eps_1, ..., eps_n]:

        z_1 = mu_1(x) + sigma_1(x) eps_1,
        z_l = mu_l(z_{l-1}) + sigma_l(z_{l-1}) eps_l,

    and log q(z|x) = sum_l [log N(eps_l; 0, I) - sum(log sigma_l)], exact
    from the noise; `log_prob` at a given z is one pass as well. No KL has a
    closed form (the Monte-Carlo KL of the draw is used) and the KL does not
    split by dimension, so free bits are refused. `mean(params)` is the
    chain of means (z_1 = mu_1, z_l = mu_l(z_{l-1})), the code `reconstruct`
    and the active-unit count use.

    Args:
        latent_dims: tuple of ints, decreasing, default (100, 50).
        hidden_units: the hidden widths of each q(z_{l+1} | z_l) network, a
            tuple per layer above the first (or one tuple for all); default
            ((100, 100),), Burda et al.'s.
        activation: str, default "tanh".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, latent_dims=(100, 50), hidden_units=((100, 100),),
                 activation="tanh", **kwargs):
        super().__init__(**kwargs)
        (self.latent_dims, self.hidden_units,
         self.activation_name) = networks.hierarchy_settings(
            latent_dims, hidden_units, activation, type(self).__name__)
        self.latent_dim = sum(self.latent_dims)
        self.upward = [
            networks.GaussianMLP(below, above, units, activation,
                                 dtype="float32", name=f"q_z{l + 2}")
            for l, (below, above, units) in enumerate(zip(
                self.latent_dims, self.latent_dims[1:], self.hidden_units))
        ]
        self.built = True

    def params_size(self, latent_dim):
        self._check_latent_dim(latent_dim)
        return (self.latent_dims[0], self.latent_dims[0])

    def _check_latent_dim(self, latent_dim):
        if int(latent_dim) != self.latent_dim:
            raise ValueError(
                f"This HierarchicalGaussian posterior has stochastic layers "
                f"{self.latent_dims}, a joint latent of {self.latent_dim} "
                f"numbers, but the model's latent space has {latent_dim} "
                "(the decoder's input). Build the decoder on the joint "
                "latent (kv.build_hierarchical_vae does)."
            )

    def latent_dim_of(self, output_shapes):
        return self.latent_dim

    def set_latent_dim(self, latent_dim):
        self._check_latent_dim(latent_dim)


    def noise_shape(self, params):
        return tf.concat([tf.shape(params[0])[:-1], [self.latent_dim]], 0)

    def sample_and_log_prob_layers(self, params, eps):
        """(z, [log q(z_l | z_{l-1}) for each layer]) of the draw from eps
        (..., B, sum(latent_dims)); each log q (..., B). In float32."""
        mean, log_var = networks.float32(params)
        eps = tf.cast(eps, "float32")
        draws, log_qs = [], []
        for l, eps_l in enumerate(networks.split_layers(eps, self.latent_dims)):
            if l:
                mean, log_var = self.upward[l - 1](draws[-1])
            draws.append(mean + tf.exp(0.5 * log_var) * eps_l)
            log_qs.append(objectives.log_standard_normal(eps_l)
                          - 0.5 * tf.reduce_sum(log_var, axis=-1))
        return tf.concat(draws, axis=-1), log_qs

    def sample_and_log_prob(self, params, eps):
        z, log_qs = self.sample_and_log_prob_layers(params, eps)
        return z, networks.add_broadcast(log_qs)

    def reparameterize(self, params, eps):
        return self.sample_and_log_prob_layers(params, eps)[0]

    def log_prob_layers(self, params, z):
        """[log q(z_l | z_{l-1}) for each layer] at a given joint z."""
        layers = networks.split_layers(tf.cast(z, "float32"),
                                       self.latent_dims)
        mean, log_var = networks.float32(params)
        out = []
        for l, z_l in enumerate(layers):
            if l:
                mean, log_var = self.upward[l - 1](layers[l - 1])
            out.append(objectives.log_normal_diag(z_l, mean, log_var))
        return out

    def log_prob(self, params, z):
        return networks.add_broadcast(self.log_prob_layers(params, z))

    def mean(self, params):
        means = [tf.cast(params[0], "float32")]
        for net in self.upward:
            means.append(net(means[-1])[0])
        return tf.concat(means, axis=-1)

    def distribution(self, params):
        return tfd.TransformedDistribution(
            tfd.MultivariateNormalDiag(
                loc=tf.zeros_like(self.mean(params))),
            _NoiseToLatent(self, params))

    def kl_divergence(self, params, prior):
        return None

    def get_config(self):
        return {**super().get_config(), **networks.hierarchy_config(self)}


class _NoiseToLatent(networks.LayerwiseGaussianMap):
    """eps -> z of a `HierarchicalGaussian`: forward is the upward draw;
    the inverse recovers each eps_l from z_l and z_{l-1}."""

    def __init__(self, head, params):
        self._head, self._params = head, params
        super().__init__(name="noise_to_latent")

    def _forward(self, eps):
        return self._head.sample_and_log_prob_layers(self._params, eps)[0]

    def _conditionals(self, z):
        layers = networks.split_layers(tf.cast(z, "float32"),
                                       self._head.latent_dims)
        mean, log_var = networks.float32(self._params)
        out = []
        for l, z_l in enumerate(layers):
            if l:
                mean, log_var = self._head.upward[l - 1](layers[l - 1])
            out.append((z_l, mean, log_var))
        return out


_REGISTRY = {
    "diagonal": DiagonalGaussian,
    "full": FullCovarianceGaussian,
    "iaf": InverseAutoregressiveFlow,
}


def names():
    """The names `get` accepts."""
    return sorted(_REGISTRY)


def get(identifier):
    """Returns a posterior head from a name, a config dict, an instance or
    None.

    Args:
        identifier: None (the default `DiagonalGaussian()`), "diagonal",
            "full" (`FullCovarianceGaussian()`), "iaf"
            (`InverseAutoregressiveFlow()`), a `Posterior` instance
            (returned as is), or a dict made by
            `keras.saving.serialize_keras_object`.

    Raises:
        ValueError: an unknown name, or an object that is not a posterior.

    Examples:
        >>> type(get(None)).__name__
        'DiagonalGaussian'
    """
    return _parts.lookup(identifier, _REGISTRY, Posterior, "posterior",
                         DiagonalGaussian)


__all__ = ["DiagonalGaussian", "FullCovarianceGaussian",
           "HierarchicalGaussian", "InverseAutoregressiveFlow",
           "MaskedAutoregressiveNetwork",
           "Posterior", "get", "made_masks", "names"]
