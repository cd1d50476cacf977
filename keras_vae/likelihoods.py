"""Likelihood heads: the decoder's p(x|z) as a TensorFlow Probability law.

A head splits "how many numbers does the decoder output" (`params_size`)
from "which distribution do they define" (`distribution`), the split that
`tfp.layers` makes, without depending on `tfp.layers` (bound to Keras 2).
The reconstruction term of the ELBO is then `distribution(params).log_prob(x)`,
an honest log-likelihood in nats summed over the data dimensions:

- `Bernoulli` log-likelihood is minus the binary cross-entropy summed over
  pixels. It is a normalised density only for binary x.
- `Gaussian` with fixed sigma is -0.5 * squared error / sigma**2 minus a
  constant, so MSE is a Gaussian log-likelihood with the constant dropped.
- `ContinuousBernoulli` is the normalised version of BCE for x in [0, 1].

Heads are Keras layers so that learned scales are trainable weights, saved
with the model. Calling a head returns the mean of p(x|z) as a tensor
(Keras 3 layers cannot return distributions).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import _parts
from keras_vae.data import checks

tfd = tfp.distributions


def _as_event_shape(event_shape):
    if event_shape is None:
        return None
    try:
        shape = tuple(int(d) for d in event_shape)
    except (TypeError, ValueError):
        raise ValueError(
            "`event_shape` must be a tuple of positive ints, e.g. (28, 28, 1). "
            f"Received: event_shape={event_shape!r}"
        ) from None
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(
            "`event_shape` must be a non-empty tuple of positive ints, e.g. "
            f"(28, 28, 1). Received: event_shape={event_shape!r}"
        )
    return shape


def _softplus(logits):
    # log(1 + e^l) as max(l, 0) + log1p(e^-|l|): stable for any l, and on
    # CPU faster than TensorFlow's Softplus kernel (vectorised exp/log1p).
    return tf.maximum(logits, 0.0) + tf.math.log1p(tf.exp(-tf.abs(logits)))


def _unbroadcast(grad, shape):
    """Sums `grad` down to `shape` (the inverse of broadcasting)."""
    # The second output: the axes along which `shape` was broadcast.
    _, axes = tf.raw_ops.BroadcastGradientArgs(
        s0=tf.shape(grad, out_type=tf.int32), s1=tf.cast(shape, tf.int32)
    )
    return tf.reshape(tf.reduce_sum(grad, axis=axes), shape)


def bernoulli_log_prob(logits, x, event_ndims):
    """sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)], p = sigmoid(logits).

    The log-likelihood of TFP's `Bernoulli(logits=...)` summed over the last
    `event_ndims` axes, in its closed form x * l - softplus(l): with
    log p = -softplus(-l) and log(1 - p) = -softplus(l), the x terms combine
    through softplus(l) - softplus(-l) = l. Its gradient is written out,
    d/dl = x - sigmoid(l), so the backward pass is two element-wise ops
    instead of the chain TensorFlow would derive (a measurable part of the
    MNIST MLP's train step: benchmarks/RESULTS.md). Tested against
    TFP's log_prob and gradient (tests/test_likelihood_closed_forms.py).

    Args:
        logits: tensor (*batch, *event).
        x: data broadcastable to `logits`, e.g. (B, *event) against
            logits (S, B, *event).
        event_ndims: number of trailing axes summed over.
    """
    logits = tf.convert_to_tensor(logits)
    x = tf.cast(x, logits.dtype)
    axes = list(range(-event_ndims, 0))

    @tf.custom_gradient
    def log_prob(logits, x):
        value = tf.reduce_sum(x * logits - _softplus(logits), axis=axes)

        def grad(upstream):
            upstream = tf.reshape(
                upstream,
                tf.concat([tf.shape(upstream), [1] * event_ndims], axis=0),
            )
            d_logits = _unbroadcast(
                upstream * (x - tf.sigmoid(logits)), tf.shape(logits))
            d_x = _unbroadcast(upstream * logits, tf.shape(x))
            return d_logits, d_x

        return value, grad

    return log_prob(logits, x)


class Likelihood(keras.layers.Layer):
    """Base class of likelihood heads.

    Subclasses set `params_per_dim` (decoder outputs per data dimension) and
    implement `_base_distribution(params, x)` where `params` has shape
    (*batch, *event_shape, params_per_dim) (the last axis dropped when it is
    1) and the result has batch shape (*batch, *event_shape).

    Args:
        event_shape: tuple or None. The shape of one example; the VAE sets it
            from the encoder's input when it is None.
        validate_args: bool, default False. Passed to TFP (value checks).
    """

    params_per_dim = 1
    #: (low, high, closed) support of x checked by `check_support`, or None.
    support = None
    #: Whether x must hold integers (counts, 8-bit levels).
    discrete = False

    def __init__(self, event_shape=None, validate_args=False, **kwargs):
        super().__init__(**kwargs)
        self.validate_args = bool(validate_args)
        self.event_shape = None
        if event_shape is not None:
            self.set_event_shape(event_shape)

    # -- shapes ---------------------------------------------------------
    def set_event_shape(self, event_shape):
        """Binds the head to data of `event_shape` and creates its weights."""
        event_shape = _as_event_shape(event_shape)
        if self.event_shape is not None:
            if self.event_shape != event_shape:
                raise ValueError(
                    f"This {type(self).__name__} head is already bound to "
                    f"event_shape={self.event_shape}; it cannot be reused "
                    f"for data of shape {event_shape}. Create a new head."
                )
            return
        self.event_shape = event_shape
        self._create_weights(event_shape)
        self.built = True

    def _create_weights(self, event_shape):
        pass

    def params_size(self, event_shape=None):
        """Number of decoder outputs per example for data of `event_shape`."""
        event_shape = _as_event_shape(event_shape) or self._require_shape()
        return int(self.params_per_dim * np.prod(event_shape))

    def _require_shape(self):
        if self.event_shape is None:
            raise ValueError(
                f"The {type(self).__name__} head has no event_shape yet. Pass "
                "event_shape=... or build it through a VAE or decoder builder."
            )
        return self.event_shape

    def _reshape_params(self, params):
        # (*batch, params_size) or (*batch, *event_shape[:-1], C * k)
        #   -> (*batch, *event_shape, k), the k axis dropped when k == 1.
        event_shape = self._require_shape()
        params = tf.cast(params, "float32")
        size = self.params_size(event_shape)
        if params.shape[-1] == size:
            batch_shape = tf.shape(params)[:-1]
        else:
            rank = len(event_shape)
            batch_shape = tf.shape(params)[: tf.rank(params) - rank]
        tail = list(event_shape)
        if self.params_per_dim > 1:
            tail.append(self.params_per_dim)
        return tf.reshape(params, tf.concat([batch_shape, tail], axis=0))

    # -- distributions --------------------------------------------------
    def distribution(self, params, x=None):
        """The distribution p(x|z) defined by decoder outputs `params`.

        Args:
            params: tensor (*batch, params_size), the decoder output.
            x: optional data (*batch, *event_shape); only heads whose
                parameters depend on the data itself ("optimal" Gaussian
                scale) use it.

        Returns:
            `tfd.Independent` with batch shape `*batch` and event shape
            `event_shape`: `log_prob(x)` is summed over the data dimensions.
        """
        params = self._reshape_params(params)
        base = self._base_distribution(params, x)
        return tfd.Independent(
            base, reinterpreted_batch_ndims=len(self.event_shape)
        )

    def _base_distribution(self, params, x):
        raise NotImplementedError

    def log_prob(self, params, x, fit_to=None):
        """log p(x|z) in nats, summed over the data dimensions.

        The same number as `distribution(params, fit_to).log_prob(x)`; heads
        with a closed form cheaper than TFP's generic path (`Bernoulli`)
        override it, and every override is tested against TFP.

        Args:
            params: tensor (*batch, params_size), the decoder output.
            x: data (*batch, *event_shape) or broadcastable to it.
            fit_to: data that data-dependent heads fit their parameters to
                (the "optimal" Gaussian scale, in the train step); None
                uses their stored values.

        Returns:
            Tensor of shape `*batch`.
        """
        return self.distribution(params, fit_to).log_prob(x)

    def mean(self, params):
        """Mean of p(x|z) as a tensor (*batch, *event_shape)."""
        return self.distribution(params).mean()

    def call(self, params):
        return self.mean(params)

    def observe(self, params, x):
        """Hook the train step calls with each batch (stateful heads only)."""

    # -- data checks ----------------------------------------------------
    def check_support(self, x):
        """Raises ValueError if numpy data `x` lies outside the support."""
        x = np.asarray(x)
        if self.support is None:
            return
        low, high, closed = self.support
        if closed:
            bad = (x < low) | (x > high)
        else:
            bad = (x <= low) | (x >= high)
        if np.any(bad):
            interval = f"[{low}, {high}]" if closed else f"({low}, {high})"
            raise ValueError(
                f"The {self.name_for_errors()} likelihood needs data in "
                f"{interval}, but {int(bad.sum())} values lie outside "
                f"(min {float(x.min()):.4g}, max {float(x.max()):.4g}). "
                + self._support_hint()
            )
        if self.discrete and np.any(x != np.round(x)):
            raise ValueError(
                f"The {self.name_for_errors()} likelihood needs integer "
                "values, but the data holds non-integers. "
                + self._support_hint()
            )

    def _support_hint(self):
        return "Rescale the data or choose another likelihood."

    def name_for_errors(self):
        return type(self).__name__

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "event_shape": (
                    list(self.event_shape) if self.event_shape else None
                ),
                "validate_args": self.validate_args,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class Bernoulli(Likelihood):
    """p(x|z) = prod_i Bernoulli(x_i; sigmoid(logit_i)), from logits.

    log p(x|z) = sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)], minus the
    binary cross-entropy summed over pixels, computed from logits so that it
    stays finite for saturated outputs. A normalised likelihood for binary
    data; on grey values in [0, 1] (what the Keras blog does) it is not a
    density, see `ContinuousBernoulli`.
    """

    support = (0.0, 1.0, True)

    def _base_distribution(self, params, x):
        return tfd.Bernoulli(
            logits=params, dtype=tf.float32, validate_args=self.validate_args
        )

    def mean(self, params):
        return tf.sigmoid(self._reshape_params(params))

    def log_prob(self, params, x, fit_to=None):
        # With validate_args TFP's path checks x; otherwise the closed form.
        if self.validate_args:
            return super().log_prob(params, x, fit_to)
        logits = self._reshape_params(params)
        return bernoulli_log_prob(logits, x, len(self.event_shape))

    def _support_hint(self):
        return (
            "Scale pixels to [0, 1] (divide uint8 by 255), binarize them "
            "(datasets.load(..., binarize='dynamic')), or use "
            "likelihood='continuous_bernoulli' for grey values in [0, 1]."
        )


@keras.saving.register_keras_serializable(package="keras_vae")
class ContinuousBernoulli(Likelihood):
    """Continuous Bernoulli p(x|z) for x in [0, 1] (Loaiza-Ganem & Cunningham 2019).

    Density C(lambda) lambda^x (1 - lambda)^(1 - x): the Bernoulli kernel
    with the normalising constant C(lambda) that makes it integrate to 1 on
    [0, 1]. It is what BCE on grey pixels becomes once it is a real density.
    Its mean is not lambda: `mean` returns the distribution's mean.
    """

    support = (0.0, 1.0, True)

    def _base_distribution(self, params, x):
        return tfd.ContinuousBernoulli(
            logits=params, validate_args=self.validate_args
        )

    def _support_hint(self):
        return "Scale the data to [0, 1] (divide uint8 by 255)."


GAUSSIAN_SCALES = ("learned", "per_dimension", "heteroscedastic", "optimal")


@keras.saving.register_keras_serializable(package="keras_vae")
class Gaussian(Likelihood):
    """Diagonal Gaussian p(x|z) = N(x; mu(z), sigma^2).

    log p(x|z) = sum_i [-0.5 (x_i - mu_i)^2 / sigma_i^2 - log sigma_i
    - 0.5 log(2 pi)]: with a fixed sigma, the squared error scaled by
    1 / (2 sigma^2) plus a constant, which is why MSE is a log-likelihood.

    Args:
        scale: the standard deviation sigma:
            - a float > 0: fixed;
            - "learned": one trainable scalar (Lucas et al. 2019);
            - "per_dimension": one trainable value per data dimension;
            - "heteroscedastic": the decoder outputs it (2 outputs per
              dimension: mean and a softplus-transformed scale);
            - "optimal": the closed-form maximiser for the current batch,
              sigma^2 = mean squared error (sigma-VAE, Rybkin et al. 2021).
              When no data is at hand (sampling), the value seen in the last
              training batch is used.
        min_scale: float > 0, default 1e-3. Lower bound on learned, output and
            optimal scales, so the density cannot collapse to a spike.
    """

    def __init__(self, scale=1.0, min_scale=1e-3, **kwargs):
        if isinstance(scale, str):
            if scale not in GAUSSIAN_SCALES:
                raise ValueError(
                    f"Unknown Gaussian scale {scale!r}. Expected a float > 0 "
                    f"or one of {list(GAUSSIAN_SCALES)}."
                )
        elif isinstance(scale, bool) or not isinstance(
            scale, (int, float)
        ) or not scale > 0:
            raise ValueError(
                "Gaussian `scale` must be a float > 0 or one of "
                f"{list(GAUSSIAN_SCALES)}. Received: scale={scale!r}"
            )
        if not isinstance(min_scale, (int, float)) or not min_scale > 0:
            raise ValueError(
                f"`min_scale` must be > 0. Received: min_scale={min_scale!r}"
            )
        self.scale = scale if isinstance(scale, str) else float(scale)
        self.min_scale = float(min_scale)
        if self.scale == "heteroscedastic":
            self.params_per_dim = 2
        super().__init__(**kwargs)

    def _create_weights(self, event_shape):
        if self.scale == "learned":
            self.log_scale = self.add_weight(
                shape=(), initializer="zeros", name="log_scale"
            )
        elif self.scale == "per_dimension":
            self.log_scale = self.add_weight(
                shape=event_shape, initializer="zeros", name="log_scale"
            )
        elif self.scale == "optimal":
            self.last_scale = self.add_weight(
                shape=(),
                initializer="ones",
                trainable=False,
                name="last_scale",
            )

    def _scale(self, params, x):
        if isinstance(self.scale, float):
            return tf.constant(self.scale, tf.float32), params
        if self.scale in ("learned", "per_dimension"):
            return (
                tf.maximum(tf.exp(tf.cast(self.log_scale, "float32")),
                           self.min_scale),
                params,
            )
        if self.scale == "heteroscedastic":
            loc, raw = params[..., 0], params[..., 1]
            return tf.nn.softplus(raw) + self.min_scale, loc
        # "optimal"
        if x is None:
            return tf.cast(self.last_scale, "float32"), params
        return self._optimal_scale(params, x), params

    def _optimal_scale(self, loc, x):
        # sigma* = sqrt(mean squared error) over the batch and all dims; it
        # maximises the Gaussian log-likelihood for fixed loc, so its
        # gradient vanishes and stopping it changes nothing at the optimum.
        x = tf.cast(x, "float32")
        mse = tf.reduce_mean(tf.square(x - loc))
        return tf.stop_gradient(tf.maximum(tf.sqrt(mse), self.min_scale))

    def _base_distribution(self, params, x):
        scale, loc = self._scale(params, x)
        return tfd.Normal(
            loc=loc, scale=scale * tf.ones_like(loc),
            validate_args=self.validate_args,
        )

    def mean(self, params):
        params = self._reshape_params(params)
        if self.scale == "heteroscedastic":
            return params[..., 0]
        return params

    def observe(self, params, x):
        if self.scale == "optimal":
            self.last_scale.assign(
                self._optimal_scale(self._reshape_params(params), x)
            )

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "min_scale": self.min_scale})
        return config


# -- heads for more kinds of data (Laplace, Beta, 8-bit, counts) ----------


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(
        value, (int, float)
    ) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0. Received: "
                         f"{name}={value!r}")
    return float(value)


LAPLACE_SCALES = ("learned", "heteroscedastic")


@keras.saving.register_keras_serializable(package="keras_vae")
class Laplace(Likelihood):
    """Laplace p(x|z) = prod_i Laplace(x_i; mu_i, b): the L1 loss as a law.

    log p(x|z) = sum_i [-|x_i - mu_i| / b - log(2 b)]. With a fixed b it is
    the absolute error scaled by 1 / b plus a constant, as MSE is for the
    Gaussian; its heavier tails make outlying pixels cost less.

    Args:
        scale: the scale b (the mean absolute deviation):
            - a float > 0: fixed;
            - "learned" (default): one trainable scalar, saved with the model;
            - "heteroscedastic": the decoder outputs it (2 outputs per
              dimension: location, then a softplus-transformed scale).
        min_scale: float > 0, default 1e-3. Lower bound on b.
    """

    def __init__(self, scale="learned", min_scale=1e-3, **kwargs):
        if isinstance(scale, str):
            if scale not in LAPLACE_SCALES:
                raise ValueError(
                    f"Unknown Laplace scale {scale!r}. Expected a float > 0 "
                    f"or one of {list(LAPLACE_SCALES)}."
                )
            self.scale = scale
        else:
            self.scale = _check_positive("scale", scale)
        self.min_scale = _check_positive("min_scale", min_scale)
        if self.scale == "heteroscedastic":
            self.params_per_dim = 2
        super().__init__(**kwargs)

    def _create_weights(self, event_shape):
        if self.scale == "learned":
            self.log_scale = self.add_weight(
                shape=(), initializer="zeros", name="log_scale"
            )

    def _loc_scale(self, params):
        if self.scale == "heteroscedastic":
            return params[..., 0], tf.nn.softplus(params[..., 1]) + (
                self.min_scale)
        if self.scale == "learned":
            return params, tf.maximum(
                tf.exp(tf.cast(self.log_scale, "float32")), self.min_scale
            )
        return params, tf.constant(self.scale, tf.float32)

    def _base_distribution(self, params, x):
        loc, scale = self._loc_scale(params)
        return tfd.Laplace(loc=loc, scale=scale * tf.ones_like(loc),
                           validate_args=self.validate_args)

    def mean(self, params):
        return self._loc_scale(self._reshape_params(params))[0]

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "min_scale": self.min_scale})
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class Beta(Likelihood):
    """Beta p(x|z) for x in the open interval (0, 1).

    log p(x|z) = sum_i [(a_i - 1) log x_i + (b_i - 1) log(1 - x_i)
    - log B(a_i, b_i)], with both concentrations output by the decoder
    (2 outputs per dimension, softplus-transformed). The density is 0 or
    infinite at exactly 0 and 1, so 8-bit images must be moved inside the
    interval first, e.g. by uniform dequantization x = (255 x + u) / 256,
    u ~ U(0, 1) (Theis et al. 2016).

    Args:
        min_concentration: float > 0, default 1e-2. Added to both
            concentrations.
    """

    params_per_dim = 2
    support = (0.0, 1.0, False)

    def __init__(self, min_concentration=1e-2, **kwargs):
        self.min_concentration = _check_positive(
            "min_concentration", min_concentration
        )
        super().__init__(**kwargs)

    def _concentrations(self, params):
        a = tf.nn.softplus(params[..., 0]) + self.min_concentration
        b = tf.nn.softplus(params[..., 1]) + self.min_concentration
        return a, b

    def _base_distribution(self, params, x):
        a, b = self._concentrations(params)
        return tfd.Beta(concentration1=a, concentration0=b,
                        validate_args=self.validate_args)

    def mean(self, params):
        a, b = self._concentrations(self._reshape_params(params))
        return a / (a + b)

    def _support_hint(self):
        return (
            "The Beta density is 0 or infinite at exactly 0 and 1: move the "
            "data inside (0, 1), e.g. dequantize 8-bit images with "
            "x = (255 * x + u) / 256, u ~ U(0, 1), or use "
            "likelihood='continuous_bernoulli' for data in [0, 1]."
        )

    def get_config(self):
        config = super().get_config()
        config.update({"min_concentration": self.min_concentration})
        return config


class _EightBit(Likelihood):
    """Base of the heads that score 8-bit data: x in {0, 1/255, ..., 1}."""

    support = (0.0, 1.0, True)

    def check_support(self, x):
        super().check_support(x)
        x = np.asarray(x)
        off = np.abs(x * 255.0 - np.round(x * 255.0))
        if np.any(off > 1e-2):
            bad = int(np.sum(off > 1e-2))
            raise ValueError(
                f"The {self.name_for_errors()} likelihood scores 8-bit data "
                "(values k / 255, k = 0..255), but "
                f"{bad} values lie between levels. Quantize them with "
                "np.round(x * 255) / 255, or use a density such as "
                "likelihood='gaussian' for continuous data."
            )

    def _support_hint(self):
        return ("Scale 8-bit pixels to [0, 1] by dividing uint8 values by "
                "255.")


@keras.saving.register_keras_serializable(package="keras_vae")
class DiscretizedLogistic(_EightBit):
    """(Mixture of) discretized logistic p(x|z) on 8-bit data (PixelCNN++).

    Each pixel's mass is a logistic integrated over the bin of width 1/255
    around its level, the end bins reaching to -inf and +inf (Salimans et
    al. 2017). It is a probability, not a density, so -log p(x) / (D log 2)
    is the bits per dimension of the 8-bit data.

    Args:
        num_components: int >= 1, default 1. Logistics per pixel; the
            decoder outputs (logit, location, log-scale) for each, 3 per
            component, or (location, log-scale) when there is one.
        min_scale: float > 0, default 1e-4. Lower bound on the scales (in
            [0, 1] units; a bin is 1/255 wide).
    """

    def __init__(self, num_components=1, min_scale=1e-4, **kwargs):
        self.num_components = checks.check_int(num_components,
                                               "num_components")
        self.min_scale = _check_positive("min_scale", min_scale)
        self.params_per_dim = 2 if num_components == 1 else 3 * num_components
        super().__init__(**kwargs)

    def _mixture_params(self, params):
        # (..., params_per_dim) -> three (..., num_components) tensors.
        n = self.num_components
        if n == 1:
            loc, raw_scale = params[..., :1], params[..., 1:]
            logits = tf.zeros_like(loc)
        else:
            logits = params[..., :n]
            loc = params[..., n:2 * n]
            raw_scale = params[..., 2 * n:]
        log_scale = tf.maximum(raw_scale, float(np.log(self.min_scale)))
        return logits, loc, tf.exp(log_scale)

    def _base_distribution(self, params, x):
        from keras_vae import distributions as distributions_lib

        logits, loc, scale = self._mixture_params(params)
        return distributions_lib.DiscretizedLogisticMixture(
            logits, loc, scale, validate_args=self.validate_args
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_components": self.num_components,
                       "min_scale": self.min_scale})
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class Categorical(_EightBit):
    """A free 256-way softmax p(x|z) per pixel on 8-bit data (PixelRNN).

    The decoder outputs 256 logits per data dimension (van den Oord et al.
    2016); log p(x|z) is minus the sparse categorical cross-entropy of the
    level round(255 x). Expressive but large: 256 outputs per pixel.
    """

    params_per_dim = 256

    def _base_distribution(self, params, x):
        from keras_vae import distributions as distributions_lib

        return distributions_lib.EightBitCategorical(
            params, validate_args=self.validate_args
        )

    def mean(self, params):
        from keras_vae import distributions as distributions_lib

        probs = tf.nn.softmax(self._reshape_params(params), axis=-1)
        return tf.reduce_sum(probs * distributions_lib.levels(), axis=-1)


class _Counts(Likelihood):
    support = (0.0, np.inf, True)
    discrete = True

    def _support_hint(self):
        return (
            "Count likelihoods take non-negative integers. uint8 arrays are "
            "read as 8-bit pixels and divided by 255 (as everywhere in "
            "keras_vae): pass counts as an int32 or int64 array, e.g. "
            "x.astype('int64'). For 8-bit images in [0, 1] use "
            "np.round(x * 255) to get counts, or choose "
            "likelihood='discretized_logistic' or 'categorical'."
        )


@keras.saving.register_keras_serializable(package="keras_vae")
class Poisson(_Counts):
    """Poisson p(x|z) for non-negative integer counts, from log-rates.

    log p(x|z) = sum_i [x_i log(lambda_i) - lambda_i - log(x_i!)], with the
    decoder outputting log(lambda_i). Its variance equals its mean; use
    `NegativeBinomial` for over-dispersed counts.
    """

    def _base_distribution(self, params, x):
        return tfd.Poisson(log_rate=params, validate_args=self.validate_args)

    def mean(self, params):
        return tf.exp(self._reshape_params(params))


@keras.saving.register_keras_serializable(package="keras_vae")
class NegativeBinomial(_Counts):
    """Negative binomial p(x|z) for over-dispersed counts.

    p(x) = Gamma(x + r) / (Gamma(r) x!) p^x (1 - p)^r, the number of
    successes before r failures with success probability p. The decoder
    outputs two numbers per dimension: r through a softplus (plus
    `min_total_count`) and logit(p). Mean r p / (1 - p), variance
    mean / (1 - p) >= mean.

    Args:
        min_total_count: float > 0, default 1e-3. Added to r.
    """

    params_per_dim = 2

    def __init__(self, min_total_count=1e-3, **kwargs):
        self.min_total_count = _check_positive(
            "min_total_count", min_total_count
        )
        super().__init__(**kwargs)

    def _count_logits(self, params):
        total_count = tf.nn.softplus(params[..., 0]) + self.min_total_count
        return total_count, params[..., 1]

    def _base_distribution(self, params, x):
        total_count, logits = self._count_logits(params)
        return tfd.NegativeBinomial(
            total_count=total_count, logits=logits,
            validate_args=self.validate_args,
        )

    def mean(self, params):
        total_count, logits = self._count_logits(self._reshape_params(params))
        return total_count * tf.exp(logits)

    def get_config(self):
        config = super().get_config()
        config.update({"min_total_count": self.min_total_count})
        return config


_REGISTRY = {
    "bernoulli": Bernoulli,
    "continuous_bernoulli": ContinuousBernoulli,
    "gaussian": Gaussian,
    "laplace": Laplace,
    "beta": Beta,
    "discretized_logistic": DiscretizedLogistic,
    "categorical": Categorical,
    "poisson": Poisson,
    "negative_binomial": NegativeBinomial,
}


def register(name, cls):
    """Adds a likelihood class to the names `get` knows."""
    _REGISTRY[name] = cls
    return cls


def names():
    """The names `get` accepts."""
    return sorted(_REGISTRY)


def get(identifier):
    """Returns a likelihood head from a name, a config dict or an instance.

    Args:
        identifier: "bernoulli", "continuous_bernoulli", "gaussian", ...,
            a `Likelihood` instance (returned as is), or a dict made by
            `keras.saving.serialize_keras_object`.

    Raises:
        ValueError: for an unknown name, listing the valid ones.

    Examples:
        >>> get("gaussian").scale
        1.0
    """
    return _parts.lookup(identifier, _REGISTRY, Likelihood, "likelihood",
                         default=None)


__all__ = [
    "Bernoulli",
    "Beta",
    "Categorical",
    "ContinuousBernoulli",
    "DiscretizedLogistic",
    "Gaussian",
    "Laplace",
    "Likelihood",
    "NegativeBinomial",
    "Poisson",
    "get",
    "names",
    "register",
]
