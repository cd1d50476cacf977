"""The `Sampling` layer: reparameterized draws of z and the KL term."""

import keras
import tensorflow as tf

from keras_vae import objectives
from keras_vae import posteriors as posteriors_lib
from keras_vae import priors as priors_lib
from keras_vae.data import checks


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws z from q(z|x) by reparameterization and adds the KL as a loss.

    The draw is the reparameterization trick of Kingma & Welling (2014):
    standard-normal noise eps from the layer's own `SeedGenerator` is pushed
    through `posterior.sample_and_log_prob(params, eps)`, which returns the
    draw `reparameterize(params, eps)` and its log q (for the default
    diagonal Gaussian, z = z_mean + exp(z_log_var / 2) * eps), so the sample
    is a differentiable function of the encoder's outputs and the gradient
    of E_q[f(z)] can be estimated from one draw.

    On every call the layer adds, with `add_loss`, KL(q(z|x) || p(z)) as a
    *scalar batch mean* (Keras 3 sums every added loss, so a per-example
    vector would be counted as its sum): the closed form when the posterior
    has one against the prior (`objectives.kl_divergence`), otherwise the
    single-draw Monte-Carlo estimate log q(z|x) - log p(z) of the draw it
    returns. The KL is multiplied by the non-trainable weight `kl_weight`
    (beta, or the value a warm-up schedule sets) and optionally floored per
    latent dimension by `free_bits` nats (Kingma et al. 2016).

    Args:
        seed: int or None. Seed of the layer's `keras.random.SeedGenerator`.
        kl_weight: float >= 0, default 1.0. Initial weight of the KL loss.
        free_bits: float >= 0, default 0.0. KL floor per latent dimension
            (nats), applied to the batch-mean KL of that dimension. Needs a
            posterior / prior pair whose KL splits by dimension.
        free_bits_groups: int or None, default None. With an int G the floor
            applies to each of G equal contiguous groups of latent
            dimensions instead of to each dimension (Kingma et al. 2016).
        posterior: a `keras_vae.posteriors.Posterior` or its name; default
            the diagonal Gaussian.
        prior: a `keras_vae.priors.Prior` or its name; default N(0, I).
        **kwargs: passed to `keras.layers.Layer`.

    Call args:
        inputs: the posterior's parameter tensors, each (batch, ...):
            `[z_mean, z_log_var]` for the diagonal Gaussian.
        num_samples: int, default 1. With 1 the output is (batch, latent_dim);
            with S > 1 it is (S, batch, latent_dim).
        add_kl: bool, default True. False skips the KL loss (the IWAE
            objective accounts for the prior inside its weights).
        return_kl: bool, default False. True returns (z, kl) with kl the
            per-example KL of these draws (B,), float32, unweighted and not
            floored: the number the penalty is the batch mean of.
        return_log_q: bool, default False. True appends log q(z|x) of the
            draws ((B,) or (S, B)), computed from the draw itself
            (`posterior.sample_and_log_prob`): the output is (z, log_q), or
            (z, kl, log_q) with return_kl.

    Examples:
        >>> z_mean = keras.Input((2,)); z_log_var = keras.Input((2,))
        >>> z = Sampling(seed=1)([z_mean, z_log_var])
    """

    def __init__(self, seed=None, kl_weight=1.0, free_bits=0.0,
                 free_bits_groups=None, posterior=None, prior=None,
                 **kwargs):
        super().__init__(**kwargs)
        if seed is not None and not isinstance(seed, int):
            raise ValueError(
                f"`seed` must be an int or None. Received: seed={seed!r}"
            )
        if not isinstance(kl_weight, (int, float)) or kl_weight < 0:
            raise ValueError(
                "`kl_weight` must be a number >= 0. "
                f"Received: kl_weight={kl_weight!r}"
            )
        if not isinstance(free_bits, (int, float)) or not free_bits >= 0:
            raise ValueError(
                "`free_bits` must be a number >= 0 (nats per latent "
                f"dimension). Received: free_bits={free_bits!r}"
            )
        self.seed = seed
        self.initial_kl_weight = float(kl_weight)
        self.free_bits = float(free_bits)
        self.free_bits_groups = objectives.check_free_bits_groups(
            free_bits_groups
        )
        self.posterior = posteriors_lib.get(posterior)
        self.prior = priors_lib.get(prior)
        latent_dim = self.prior.latent_dim
        if self.free_bits > 0.0 and latent_dim is not None and (
            self.posterior.kl_per_dim(
                [tf.zeros((1, n))
                 for n in self.posterior.params_size(latent_dim)],
                self.prior,
            ) is None
        ):
            # Asked of a dummy q now, so the error comes at construction.
            self._refuse_free_bits()
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.kl_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_kl_weight),
            trainable=False,
            name="kl_weight",
            dtype="float32",
        )
        self.built = True

    def _refuse_free_bits(self):
        if isinstance(self.prior, priors_lib.StandardNormal):
            why = ("this posterior's coordinates are not independent, so "
                   "its KL is not a sum over dimensions")
        else:
            why = ("log p(z) of this prior is not a sum over dimensions, so "
                   "neither is the KL")
        raise ValueError(
            "free_bits floors the KL of each latent dimension, but the KL of "
            f"the {type(self.posterior).__name__} posterior against the "
            f"{type(self.prior).__name__} prior does not split by dimension "
            f"({why}). Use free_bits=0 with this pair, or the diagonal "
            "posterior with the standard-normal prior."
        )

    def noise(self, batch_shape, dtype, num_samples=1):
        """Standard-normal eps of shape (batch, latent_dim), or
        (num_samples, batch, latent_dim), from the layer's generator."""
        shape = batch_shape
        if num_samples > 1:
            shape = tf.concat([[num_samples], shape], axis=0)
        return _normal_noise(shape, dtype, self.seed_generator)

    def kl_per_example(self, params, z=None, log_qz=None):
        """KL(q(z|x) || p(z)) per example (B,), float32: the closed form
        where the parts have one, else the Monte-Carlo estimate from the
        draws z, with their log q(z|x) when given
        (`objectives.kl_divergence`)."""
        params32 = [tf.cast(p, "float32") for p in params]
        z32 = None if z is None else tf.cast(z, "float32")
        log_qz32 = None if log_qz is None else tf.cast(log_qz, "float32")
        return objectives.kl_divergence(self.posterior, params32, self.prior,
                                        z32, log_qz32)

    def kl_penalty(self, params, z=None, kl=None):
        """The scalar KL penalty the layer adds: the batch-mean KL (floored
        by free bits when set), before `kl_weight`. Computed in float32.
        `kl`, the per-example KL of these draws when the caller has it, is
        used instead of computing it again."""
        if self.free_bits > 0.0:
            params32 = [tf.cast(p, "float32") for p in params]
            kl_per_dim = self.posterior.kl_per_dim(params32, self.prior)
            if kl_per_dim is None:
                self._refuse_free_bits()
            return objectives.floor_kl(kl_per_dim, self.free_bits,
                                       groups=self.free_bits_groups)
        if kl is None:
            kl = self.kl_per_example(params, z)
        return tf.reduce_mean(kl)

    def call(self, inputs, num_samples=1, add_kl=True, return_kl=False,
             return_log_q=False):
        params = self.posterior.check_params(inputs, "Sampling")
        num_samples = checks.check_int(num_samples, "num_samples")
        eps = self.noise(self.posterior.noise_shape(params), params[0].dtype,
                         num_samples)
        # log q of the draw comes with it: a flow's density at a given z
        # would cost an inversion (unused values are pruned from the graph).
        z, log_qz = self.posterior.sample_and_log_prob(params, eps)
        # One KL per step: the penalty and the caller's metric share it (a
        # Monte-Carlo KL against a VampPrior costs an encoder pass).
        kl = (self.kl_per_example(params, z, log_qz)
              if (add_kl or return_kl) else None)
        if add_kl:
            self.add_loss(self.kl_weight * self.kl_penalty(params, z, kl=kl))
        outputs = (z,) + ((kl,) if return_kl else ()) + (
            (log_qz,) if return_log_q else ())
        return outputs if len(outputs) > 1 else z

    def _stored_variables(self):
        # The RNG state is saved beside kl_weight, so a reloaded model draws
        # the same noise next (exact resumption, reproducible evaluation).
        return [self.kl_weight, self.seed_generator.state]

    def save_own_variables(self, store):
        for i, variable in enumerate(self._stored_variables()):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        variables = self._stored_variables()
        for i, variable in enumerate(variables):
            if str(i) in store:
                variable.assign(store[str(i)])

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "seed": self.seed,
                "kl_weight": self.initial_kl_weight,
                "free_bits": self.free_bits,
                "free_bits_groups": self.free_bits_groups,
                "posterior": keras.saving.serialize_keras_object(
                    self.posterior
                ),
                "prior": keras.saving.serialize_keras_object(self.prior),
            }
        )
        return config


def _normal_noise(shape, dtype, seed_generator):
    """eps ~ N(0, I) from `seed_generator`, different on every replica.

    Under `tf.distribute` each replica holds its own copy of the generator's
    state, all equal, so a plain draw would give every replica the same eps
    for its slice of the global batch (correlated noise). Folding the replica
    id into the seed decorrelates them. With a single replica the draw is
    exactly `keras.random.normal`'s, so single-device runs are unchanged.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return keras.random.normal(shape, dtype=dtype, seed=seed_generator)
    seed = seed_generator.next()
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), "int32")
    seed = tf.random.experimental.stateless_fold_in(
        seed, context.replica_id_in_sync_group
    )
    return tf.random.stateless_normal(shape, seed=seed, dtype=dtype)
