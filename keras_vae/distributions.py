"""Distributions on 8-bit data that TensorFlow Probability lacks.

Both laws live on the 256 levels {0, 1/255, ..., 1}: the values an 8-bit
image takes once divided by 255. Scoring these levels with a probability
mass (not a density) is what makes likelihoods of 8-bit images comparable in
bits per dimension across models (Salimans et al. 2017; Theis et al. 2016).

- `DiscretizedLogisticMixture`: a mixture of logistics integrated over bins
  of width 1/255 centred on each level, with the two end bins stretched to
  -inf and +inf (PixelCNN++, Salimans et al. 2017, section 2.1).
- `EightBitCategorical`: a free 256-way softmax over the levels (PixelRNN,
  van den Oord et al. 2016).

They have scalar events: the likelihood heads wrap them in `tfd.Independent`.
Data passed to `log_prob` are mapped to the nearest level with
round(255 * x), so float32 round-off in x = k / 255 does no harm.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
ParameterProperties = tfp.util.ParameterProperties

NUM_LEVELS = 256
_HALF_BIN = 0.5 / (NUM_LEVELS - 1)


def levels(dtype=tf.float32):
    """The 256 values k / 255, k = 0..255, as a tensor (256,)."""
    return tf.cast(tf.range(NUM_LEVELS), dtype) / (NUM_LEVELS - 1)


def to_level_index(x):
    """Maps x in [0, 1] to the integer level round(255 x), clipped to 0..255."""
    x = tf.convert_to_tensor(x)
    k = tf.round(tf.cast(x, tf.float32) * (NUM_LEVELS - 1))
    return tf.cast(tf.clip_by_value(k, 0.0, NUM_LEVELS - 1.0), tf.int32)


def discretized_logistic_log_prob(x, loc, scale):
    """log P(x) of one discretized logistic, for x on the 256 levels.

    P(x) = sigmoid((x + h - loc) / scale) - sigmoid((x - h - loc) / scale)
    with h = 0.5 / 255, the lowest bin extending to -inf and the highest to
    +inf. The difference of sigmoids is evaluated as

        log(sigmoid(a) - sigmoid(b)) = -softplus(-a) - softplus(b)
                                       + log(1 - exp(b - a)),

    an identity that stays finite however small the scale is or however far
    the bin lies in the tail, so no branch on the bin's mass is needed.

    Args:
        x: tensor of values on the levels, broadcastable against loc.
        loc: tensor, the logistic's location (in [0, 1] units).
        scale: tensor > 0, the logistic's scale (in [0, 1] units).

    Returns:
        Tensor, the broadcast shape of x, loc and scale.
    """
    k = tf.cast(to_level_index(x), loc.dtype)
    x = k / (NUM_LEVELS - 1)
    inv_scale = 1.0 / scale
    plus = (x + _HALF_BIN - loc) * inv_scale  # a: upper edge, standardised
    minus = (x - _HALF_BIN - loc) * inv_scale  # b: lower edge, standardised
    is_low = k <= 0.0
    is_high = k >= NUM_LEVELS - 1.0
    # log F(upper edge) is 0 for the top bin (edge at +inf).
    log_cdf_plus = tf.where(is_high, tf.zeros_like(plus), -tf.nn.softplus(-plus))
    # log(1 - F(lower edge)) is 0 for the bottom bin (edge at -inf).
    log_sf_minus = tf.where(is_low, tf.zeros_like(minus),
                            -tf.nn.softplus(minus))
    # log(1 - exp(b - a)), with b - a = -2h / scale for interior bins and
    # -inf (a term of 0) for the end bins.
    width = tf.broadcast_to(2.0 * _HALF_BIN * inv_scale, tf.shape(plus))
    log_width = tf.math.log(-tf.math.expm1(-width))
    log_width = tf.where(is_low | is_high, tf.zeros_like(log_width), log_width)
    return log_cdf_plus + log_sf_minus + log_width


class DiscretizedLogisticMixture(tfd.Distribution):
    """A mixture of discretized logistics on the levels {0, 1/255, ..., 1}.

    Args:
        logits: tensor (..., num_components), mixture weights (unnormalised).
        loc: tensor (..., num_components), component locations in [0, 1]
            units.
        scale: tensor (..., num_components) > 0, component scales.
        validate_args, allow_nan_stats, name: as for any TFP distribution.

    The batch shape is the shape of the parameters without their last axis;
    events are scalars.

    Examples:
        >>> d = DiscretizedLogisticMixture([0.0], [0.5], [0.1])
        >>> float(tf.reduce_sum(d.prob(levels())))  # sums to 1 over levels
        1.0
    """

    def __init__(self, logits, loc, scale, validate_args=False,
                 allow_nan_stats=True, name="DiscretizedLogisticMixture"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._logits = tf.convert_to_tensor(logits, tf.float32)
            self._loc = tf.convert_to_tensor(loc, tf.float32)
            self._scale = tf.convert_to_tensor(scale, tf.float32)
            super().__init__(
                dtype=tf.float32,
                reparameterization_type=tfd.NOT_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            logits=ParameterProperties(event_ndims=1),
            loc=ParameterProperties(event_ndims=1),
            scale=ParameterProperties(event_ndims=1),
        )

    @property
    def logits(self):
        return self._logits

    @property
    def loc(self):
        return self._loc

    @property
    def scale(self):
        return self._scale

    def _event_shape(self):
        return tf.TensorShape([])

    def _event_shape_tensor(self):
        return tf.constant([], dtype=tf.int32)

    def _log_prob(self, x):
        # x (...) -> (..., 1) against the component axis.
        per_component = discretized_logistic_log_prob(
            tf.cast(x, tf.float32)[..., None], self._loc, self._scale
        )
        log_weights = tf.nn.log_softmax(self._logits, axis=-1)
        return tf.reduce_logsumexp(per_component + log_weights, axis=-1)

    def _level_log_probs(self):
        # (256, *batch): log P of every level, for the mean.
        grid = tf.reshape(
            levels(), [NUM_LEVELS] + [1] * len(self._loc.shape)
        )
        per_component = discretized_logistic_log_prob(
            grid, self._loc[None], self._scale[None]
        )
        log_weights = tf.nn.log_softmax(self._logits, axis=-1)[None]
        return tf.reduce_logsumexp(per_component + log_weights, axis=-1)

    def _mean(self):
        probs = tf.exp(self._level_log_probs())  # (256, *batch)
        grid = tf.reshape(levels(), [NUM_LEVELS] + [1] * (len(probs.shape) - 1))
        return tf.reduce_sum(probs * grid, axis=0)

    def _sample_n(self, n, seed=None):
        seed = tfp.random.sanitize_seed(seed)
        comp_seed, noise_seed = tfp.random.split_seed(seed, n=2)
        shape = tf.concat([[n], tf.shape(self._loc)], axis=0)
        # Gumbel-max picks a component per draw: (n, *batch).
        gumbel = -tf.math.log(-tf.math.log(tf.random.stateless_uniform(
            shape, seed=comp_seed, minval=1e-7, maxval=1.0 - 1e-7)))
        pick = tf.one_hot(tf.argmax(self._logits + gumbel, axis=-1),
                          tf.shape(self._loc)[-1], dtype=tf.float32)
        loc = tf.reduce_sum(pick * self._loc, axis=-1)
        scale = tf.reduce_sum(pick * self._scale, axis=-1)
        u = tf.random.stateless_uniform(
            tf.shape(loc), seed=noise_seed, minval=1e-7, maxval=1.0 - 1e-7
        )
        value = loc + scale * (tf.math.log(u) - tf.math.log1p(-u))
        return tf.cast(to_level_index(value), tf.float32) / (NUM_LEVELS - 1)


class EightBitCategorical(tfd.Distribution):
    """A 256-way categorical whose outcomes are the levels k / 255.

    Args:
        logits: tensor (..., 256), unnormalised log-probabilities of the
            levels 0, 1/255, ..., 1.

    Examples:
        >>> d = EightBitCategorical(tf.zeros((256,)))
        >>> float(d.log_prob(0.5)) == -np.log(256)  # doctest: +SKIP
    """

    def __init__(self, logits, validate_args=False, allow_nan_stats=True,
                 name="EightBitCategorical"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._logits = tf.convert_to_tensor(logits, tf.float32)
            if self._logits.shape[-1] not in (None, NUM_LEVELS):
                raise ValueError(
                    f"EightBitCategorical needs logits with a last axis of "
                    f"{NUM_LEVELS}. Received shape {self._logits.shape}."
                )
            super().__init__(
                dtype=tf.float32,
                reparameterization_type=tfd.NOT_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(logits=ParameterProperties(event_ndims=1))

    @property
    def logits(self):
        return self._logits

    def _event_shape(self):
        return tf.TensorShape([])

    def _event_shape_tensor(self):
        return tf.constant([], dtype=tf.int32)

    def _log_prob(self, x):
        logits = self._logits
        k = to_level_index(x)
        batch = tf.broadcast_dynamic_shape(tf.shape(k), tf.shape(logits)[:-1])
        logits = tf.broadcast_to(logits, tf.concat([batch, [NUM_LEVELS]], 0))
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.broadcast_to(k, batch), logits=logits
        )

    def _mean(self):
        return tf.reduce_sum(tf.nn.softmax(self._logits, axis=-1) * levels(),
                             axis=-1)

    def _sample_n(self, n, seed=None):
        seed = tfp.random.sanitize_seed(seed)
        shape = tf.concat([[n], tf.shape(self._logits)], axis=0)
        gumbel = -tf.math.log(-tf.math.log(tf.random.stateless_uniform(
            shape, seed=seed, minval=1e-7, maxval=1.0 - 1e-7)))
        k = tf.argmax(self._logits + gumbel, axis=-1)
        return tf.cast(k, tf.float32) / (NUM_LEVELS - 1)


__all__ = [
    "DiscretizedLogisticMixture",
    "EightBitCategorical",
    "discretized_logistic_log_prob",
    "levels",
    "to_level_index",
]
