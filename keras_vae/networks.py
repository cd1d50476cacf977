"""Encoder and decoder builders: MLP (AEVB / IWAE papers) and convolutional
(the keras.io VAE example).

Encoders map x (batch, *input_shape) to the posterior head's parameters:
[z_mean, z_log_var], each (batch, latent_dim), for the default diagonal
Gaussian, and in general one output per `posterior.param_names`, sized by
`posterior.params_size(latent_dim)`. Decoders map z (batch, latent_dim) to the parameters of
p(x|z), (batch, params_size) for MLPs and (batch, H, W, C * k) for conv
nets, where the likelihood head says how many numbers it needs.
"""

import math
import numbers

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import likelihoods as likelihoods_lib
from keras_vae import objectives
from keras_vae.data import checks


def check_latent_dim(latent_dim):
    """`latent_dim` as an int >= 1, else a ValueError."""
    return checks.check_int(latent_dim, "latent_dim",
                            what="the number of latent dimensions")


def _check_shape(shape, name):
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a tuple of positive ints such as (28, 28, 1). "
            f"Received: {name}={shape!r}"
        ) from None
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(
            f"`{name}` must be a non-empty tuple of positive ints. "
            f"Received: {name}={shape!r}"
        )
    return shape


def _check_units(units, name="hidden_units"):
    if isinstance(units, numbers.Integral):
        units = (units,)
    try:
        units = tuple(units)
    except TypeError:
        raise ValueError(
            f"`{name}` must be a sequence of positive ints. "
            f"Received: {name}={units!r}"
        ) from None
    if not all(checks.is_int(u) for u in units):
        raise ValueError(
            f"`{name}` must hold positive ints. Received: {name}={units!r}"
        )
    return tuple(int(u) for u in units)


def check_num_classes(num_classes):
    """None (an unconditional model) or an int >= 2, else a ValueError."""
    if num_classes is None:
        return None
    return checks.check_int(
        num_classes, "num_classes", minimum=2,
        what="the number of labels a conditional VAE takes",
        alternative="None for an unconditional model")


def label_input(num_classes):
    """The one-hot label input of a conditional network (None when
    unconditional); `VAE` turns integer labels into it."""
    if num_classes is None:
        return None
    return keras.Input(shape=(num_classes,), name="label")


def _with_label(h, label):
    """h with the one-hot label appended to its features."""
    if label is None:
        return h
    return keras.layers.Concatenate(name="with_label")([h, label])


def _model(inputs, label, outputs, name):
    return keras.Model(inputs if label is None else [inputs, label],
                       outputs, name=name)


def _posterior_outputs(h, latent_dim, posterior):
    """One Dense output per parameter of the posterior head, named by
    `param_names` and sized by `params_size(latent_dim)`."""
    from keras_vae import posteriors as posteriors_lib

    head = posteriors_lib.get(posterior)
    return [keras.layers.Dense(size, name=name)(h) for name, size in zip(
        head.param_names, head.params_size(latent_dim))]


def build_mlp_encoder(
    input_shape, latent_dim, hidden_units=(500,), activation="tanh",
    name="encoder", posterior=None, num_classes=None,
):
    """MLP encoder x -> [z_mean, z_log_var] (Kingma & Welling 2014).

    Args:
        input_shape: tuple, shape of one example, e.g. (28, 28, 1).
        latent_dim: int > 0.
        hidden_units: tuple of ints, default (500,) (AEVB); the IWAE paper's
            MNIST model uses (200, 200).
        activation: str, default "tanh".
        name: model name.
        posterior: the posterior head (or its name) whose parameters the
            encoder outputs; default the diagonal Gaussian.
        num_classes: None (default), or an int >= 2: a conditional
            encoder [x, one-hot label] -> q(z | x, y), the label appended
            to the flattened image.

    Returns:
        A built functional `keras.Model`.

    Examples:
        >>> enc = build_mlp_encoder((28, 28, 1), 50, hidden_units=(200, 200))
    """
    input_shape = _check_shape(input_shape, "input_shape")
    latent_dim = check_latent_dim(latent_dim)
    hidden_units = _check_units(hidden_units)
    label = label_input(check_num_classes(num_classes))
    x = keras.Input(shape=input_shape, name="x")
    h = keras.layers.Flatten()(x) if len(input_shape) > 1 else x
    h = _with_label(h, label)
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation=activation,
                               name=f"hidden_{i}")(h)
    return _model(x, label, _posterior_outputs(h, latent_dim, posterior),
                  name)


def build_mlp_decoder(
    latent_dim, output_shape, hidden_units=(500,), activation="tanh",
    likelihood="bernoulli", name="decoder", num_classes=None,
):
    """MLP decoder z -> parameters of p(x|z), shape (batch, params_size).

    Args:
        latent_dim: int > 0.
        output_shape: tuple, shape of one example.
        hidden_units: tuple of ints, default (500,).
        activation: str, default "tanh".
        likelihood: name or `Likelihood`; sets the output size through
            `params_size(output_shape)`.
        name: model name.
        num_classes: None (default), or an int >= 2: a conditional decoder
            [z, one-hot label] -> p(x | z, y).
    """
    latent_dim = check_latent_dim(latent_dim)
    output_shape = _check_shape(output_shape, "output_shape")
    hidden_units = _check_units(hidden_units)
    head = likelihoods_lib.get(likelihood)
    label = label_input(check_num_classes(num_classes))
    z = keras.Input(shape=(latent_dim,), name="z")
    h = _with_label(z, label)
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation=activation,
                               name=f"hidden_{i}")(h)
    params = keras.layers.Dense(head.params_size(output_shape),
                                name="params")(h)
    return _model(z, label, params, name)


def _conv_grid(input_shape, num_layers):
    factor = 2 ** num_layers
    if len(input_shape) != 3:
        raise ValueError(
            "Convolutional networks need images of shape (height, width, "
            f"channels). Received: input_shape={input_shape}"
        )
    height, width, _ = input_shape
    if height % factor or width % factor:
        raise ValueError(
            f"Convolutional networks with {num_layers} stride-2 layers need "
            f"height and width divisible by {factor}. Received: "
            f"input_shape={input_shape}. Pad or crop the images, or use the "
            "MLP networks."
        )
    return height // factor, width // factor


def build_conv_encoder(
    input_shape, latent_dim, filters=(32, 64), dense_units=16,
    activation="relu", name="encoder", posterior=None, num_classes=None,
):
    """Convolutional encoder of the keras.io VAE example.

    Conv2D(32, 3, stride 2) -> Conv2D(64, 3, stride 2) -> Dense(16) ->
    [z_mean, z_log_var].

    Args:
        input_shape: (height, width, channels), height and width divisible
            by 2 ** len(filters).
        latent_dim: int > 0 (keras.io uses 2).
        filters: tuple of ints, default (32, 64).
        dense_units: int, default 16.
        activation: str, default "relu".
        posterior: the posterior head (or its name) whose parameters the
            encoder outputs; default the diagonal Gaussian.
        num_classes: None (default), or an int >= 2: a conditional
            encoder [x, one-hot label], the label appended to the flattened
            feature maps before the dense layer.
    """
    input_shape = _check_shape(input_shape, "input_shape")
    latent_dim = check_latent_dim(latent_dim)
    filters = _check_units(filters, "filters")
    _conv_grid(input_shape, len(filters))
    label = label_input(check_num_classes(num_classes))
    x = keras.Input(shape=input_shape, name="x")
    h = x
    for i, f in enumerate(filters):
        h = keras.layers.Conv2D(f, 3, strides=2, padding="same",
                                activation=activation, name=f"conv_{i}")(h)
    h = _with_label(keras.layers.Flatten()(h), label)
    if dense_units:
        h = keras.layers.Dense(dense_units, activation=activation,
                               name="dense")(h)
    return _model(x, label, _posterior_outputs(h, latent_dim, posterior),
                  name)


def build_conv_decoder(
    latent_dim, output_shape, filters=(64, 32), activation="relu",
    likelihood="bernoulli", name="decoder", num_classes=None,
):
    """Transposed-convolution decoder of the keras.io VAE example.

    Dense(h/4 * w/4 * 64) -> Conv2DTranspose(64, stride 2) ->
    Conv2DTranspose(32, stride 2) -> Conv2DTranspose(channels * k), where k
    is the number of parameters per pixel of the likelihood.

    With `num_classes` (an int >= 2) the decoder is conditional:
    [z, one-hot label], the label appended to z.

    Returns:
        A model z -> params of shape (batch, height, width, channels * k).
    """
    latent_dim = check_latent_dim(latent_dim)
    output_shape = _check_shape(output_shape, "output_shape")
    filters = _check_units(filters, "filters")
    grid_h, grid_w = _conv_grid(output_shape, len(filters))
    head = likelihoods_lib.get(likelihood)
    per_pixel = head.params_size(output_shape) // math.prod(output_shape[:-1])
    label = label_input(check_num_classes(num_classes))
    z = keras.Input(shape=(latent_dim,), name="z")
    h = keras.layers.Dense(grid_h * grid_w * filters[0],
                           activation=activation,
                           name="dense")(_with_label(z, label))
    h = keras.layers.Reshape((grid_h, grid_w, filters[0]))(h)
    for i, f in enumerate(filters):
        h = keras.layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation=activation,
            name=f"deconv_{i}",
        )(h)
    params = keras.layers.Conv2DTranspose(per_pixel, 3, padding="same",
                                          name="params")(h)
    return _model(z, label, params, name)


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianMLP(keras.layers.Layer):
    """An MLP from one stochastic layer to the Gaussian of the next:
    z (..., n_in) -> (mean, log_var), each (..., n_out), the log variance
    through `objectives.soft_clamp_log_var` (as the encoder's). The
    conditional Gaussians of a hierarchy, q(z_{l+1} | z_l) and
    p(z_l | z_{l+1}), are these.

    Args:
        input_dim, output_dim: ints >= 1.
        hidden_units: tuple of positive ints (may be empty: linear maps).
        activation: str, default "tanh".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, input_dim, output_dim, hidden_units=(100, 100),
                 activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = checks.check_int(input_dim, "input_dim")
        self.output_dim = checks.check_int(output_dim, "output_dim")
        self.hidden_units = _check_units(hidden_units)
        self.activation_name = activation
        policy = self.dtype_policy
        self.hidden = [keras.layers.Dense(u, activation=activation,
                                          dtype=policy,
                                          name=f"hidden_{i}")
                       for i, u in enumerate(self.hidden_units)]
        self.mean_layer = keras.layers.Dense(self.output_dim, name="mean",
                                             dtype=policy)
        self.log_var_layer = keras.layers.Dense(self.output_dim, dtype=policy,
                                                name="log_var")
        shape = (None, self.input_dim)
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)
        self.mean_layer.build(shape)
        self.log_var_layer.build(shape)
        self.built = True

    def call(self, z):
        h = z
        for layer in self.hidden:
            h = layer(h)
        return (self.mean_layer(h),
                objectives.soft_clamp_log_var(self.log_var_layer(h)))

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      hidden_units=list(self.hidden_units),
                      activation=self.activation_name)
        return config


def check_latent_dims(latent_dims):
    """`latent_dims` as a tuple of ints, bottom (next to x) first, strictly
    decreasing, at least one; or a ValueError."""
    try:
        dims = tuple(latent_dims)
    except TypeError:
        dims = None
    if not dims or not all(checks.is_int(d) for d in dims):
        raise ValueError(
            "`latent_dims` must be a non-empty sequence of positive ints, "
            "one per stochastic layer from the data upwards, such as "
            f"(100, 50). Received: latent_dims={latent_dims!r}"
        )
    if any(a <= b for a, b in zip(dims, dims[1:])):
        raise ValueError(
            "`latent_dims` must decrease from the data upwards (each "
            "stochastic layer smaller than the one below, as in Burda et "
            f"al. 2016's (100, 50)). Received: latent_dims={dims!r}"
        )
    return dims


def check_layer_units(hidden_units, count, who):
    """`hidden_units` for `count` conditional networks: a tuple of
    tuples."""
    try:
        units = tuple(hidden_units)
    except TypeError:
        units = None
    if units is not None and all(isinstance(u, int) for u in units):
        units = (units,) * count  # one tuple shared by every layer
    if units is None or len(units) != count:
        raise ValueError(
            f"{who}: `hidden_units` must give one tuple of widths per "
            f"conditional network ({count} here). Received: "
            f"hidden_units={hidden_units!r}"
        )
    return tuple(_check_units(u) for u in units)


def add_broadcast(terms):
    """The sum of a list of tensors that broadcast against each other (per
    layer terms of a hierarchy: (B,) and (S, B) mix)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class LayerwiseGaussianMap(tfp.bijectors.Bijector):
    """Standard-normal noise eps -> the joint latent z of a hierarchy, layer
    by layer z_l = mean_l + exp(log_var_l / 2) eps_l, where mean_l and
    log_var_l depend on other layers of z only (a triangular map).

    Subclasses give `_forward(eps)` (the draw) and `_conditionals(z)`, the
    list of (z_l, mean_l, log_var_l) of every layer at a given z; the
    inverse and its log-determinant follow in one pass.
    """

    def __init__(self, name):
        super().__init__(forward_min_event_ndims=1, validate_args=False,
                         name=name)

    def _conditionals(self, z):
        raise NotImplementedError

    def _inverse(self, z):
        return tf.concat([(z_l - m) * tf.exp(-0.5 * v)
                          for z_l, m, v in self._conditionals(z)], axis=-1)

    def _inverse_log_det_jacobian(self, z):
        return -0.5 * add_broadcast([tf.reduce_sum(v, axis=-1)
                                     for _, _, v in self._conditionals(z)])


def hierarchy_settings(latent_dims, hidden_units, activation, who):
    """(latent_dims, hidden_units, activation) of a hierarchy's posterior
    or prior, checked: one tuple of hidden widths per pair of adjacent
    stochastic layers."""
    latent_dims = check_latent_dims(latent_dims)
    units = check_layer_units(hidden_units, len(latent_dims) - 1, who)
    keras.activations.get(activation)  # an unknown name fails here
    return latent_dims, units, activation


def float32(tensors):
    """The tensors cast to float32, a list. The flows' and hierarchies'
    networks compute in float32 under a mixed-precision policy: their
    log-determinants and densities sum many terms."""
    return [tf.cast(t, "float32") for t in tensors]


def hierarchy_config(part):
    """The config entries of a hierarchy's posterior or prior."""
    return {"latent_dims": list(part.latent_dims),
            "hidden_units": [list(u) for u in part.hidden_units],
            "activation": part.activation_name}


def split_layers(z, latent_dims):
    """The joint latent (..., sum(latent_dims)) as a list of its stochastic
    layers [z_1, z_2, ...], z_1 (next to the data) first."""
    return tf.split(z, list(latent_dims), axis=-1)


@keras.saving.register_keras_serializable(package="keras_vae")
class LatentSlice(keras.layers.Layer):
    """The first `size` numbers of the last axis: z_1 of a joint latent
    [z_1, z_2, ...], which the decoder of a hierarchical VAE reads."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, z):
        return z[..., :self.size]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.size)

    def get_config(self):
        config = super().get_config()
        config["size"] = self.size
        return config


def build_layer_decoder(
    latent_dim, layer_dim, output_shape, hidden_units=(500,),
    activation="tanh", likelihood="bernoulli", name="decoder",
):
    """MLP decoder of a hierarchical VAE: the joint latent
    (batch, latent_dim) -> its first `layer_dim` numbers z_1 -> the
    parameters of p(x | z_1), as `build_mlp_decoder`."""
    latent_dim = check_latent_dim(latent_dim)
    layer_dim = check_latent_dim(layer_dim)
    mlp = build_mlp_decoder(layer_dim, output_shape, hidden_units, activation,
                            likelihood, name=f"{name}_z1")
    z = keras.Input(shape=(latent_dim,), name="z")
    return keras.Model(z, mlp(LatentSlice(layer_dim, name="z1")(z)),
                       name=name)
