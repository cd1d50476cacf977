"""The VAE model: encoder, `Sampling`, decoder and a likelihood head."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_vae import distribute
from keras_vae import likelihoods as likelihoods_lib
from keras_vae import networks
from keras_vae import objectives
from keras_vae import resume as resume_lib
from keras_vae.sampling import Sampling

OBJECTIVES = ("elbo", "iwae")


def _to_numpy_float(x, what="x"):
    if isinstance(x, (tf.Tensor, tf.Variable)):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        raise ValueError(
            f"`{what}` is uint8 (raw pixels 0..255). Scale it to [0, 1] "
            "first, e.g. x.astype('float32') / 255, or load it with "
            "keras_vae.datasets.load()."
        )
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(
            f"`{what}` must hold numbers. Received dtype {x.dtype}."
        )
    return x.astype("float32", copy=False)


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
    """A Variational Autoencoder trained by maximising the ELBO with `fit`.

    The train step draws z = z_mean + exp(z_log_var / 2) * eps with the
    `Sampling` layer (which adds the closed-form KL with `add_loss`), decodes
    each draw into a TFP distribution p(x|z), and maximises the Monte-Carlo
    ELBO, log p(x|z) averaged over `num_samples` draws minus the KL
    (Kingma & Welling 2014). With `objective="iwae"` it maximises the
    importance-weighted bound with `num_samples` draws (Burda et al. 2016).

    Metrics (per example, nats, summed over data dimensions):
        loss: the objective minimised (weighted by beta, floored by free bits).
        reconstruction_loss: -E_q[log p(x|z)].
        kl_loss: KL(q(z|x) || p(z)), unweighted.
        elbo: -(reconstruction_loss + kl_loss), a lower bound on log p(x).

    Args:
        encoder: `keras.Model` x -> [z_mean, z_log_var].
        decoder: `keras.Model` z -> parameters of p(x|z).
        likelihood: name or `keras_vae.likelihoods.Likelihood`, default
            "bernoulli".
        beta: float >= 0, default 1.0. Weight of the KL term (beta-VAE,
            Higgins et al. 2017). Stored in `sampler.kl_weight`, which KL
            schedules change during training.
        num_samples: int >= 1, default 1. Draws of z per example in the
            train step (L in AEVB, k for IWAE).
        seed: int or None. Seed of the sampling noise.
        objective: "elbo" (default) or "iwae".
        free_bits: float >= 0, default 0. KL floor per latent dimension.
        free_bits_groups: int or None. Apply the floor to this many equal
            groups of latent dimensions instead (Kingma et al. 2016).

    z_log_var passes through `objectives.soft_clamp_log_var`, the identity
    on [-30, 10] that saturates smoothly beyond, so a diverging encoder
    cannot overflow exp(z_log_var); inside that range nothing changes.

    Example:
        >>> vae = build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> vae.fit(x_train, epochs=10, batch_size=100)
    """

    def __init__(
        self,
        encoder,
        decoder,
        likelihood="bernoulli",
        beta=1.0,
        num_samples=1,
        seed=None,
        objective="elbo",
        free_bits=0.0,
        free_bits_groups=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.Model) or not isinstance(
            decoder, keras.Model
        ):
            raise ValueError(
                "`encoder` and `decoder` must be keras.Model instances. "
                f"Received: {type(encoder).__name__}, "
                f"{type(decoder).__name__}"
            )
        if isinstance(num_samples, bool) or not isinstance(
            num_samples, int
        ) or num_samples < 1:
            raise ValueError(
                "`num_samples` must be an int >= 1. "
                f"Received: num_samples={num_samples!r}"
            )
        if objective not in OBJECTIVES:
            raise ValueError(
                f"Unknown objective {objective!r}. Expected one of "
                f"{list(OBJECTIVES)}."
            )
        if not isinstance(beta, (int, float)) or isinstance(beta, bool) or (
            beta < 0
        ):
            raise ValueError(f"`beta` must be a number >= 0. Received: {beta!r}")
        if objective == "iwae" and (beta != 1.0 or free_bits):
            raise ValueError(
                "beta and free bits weight and floor the KL term of the ELBO, "
                "but the IWAE bound has no separate KL term. Received: "
                f"objective='iwae', beta={beta!r}, free_bits={free_bits!r}. "
                "Use objective='elbo' with them, or leave them at 1 and 0."
            )
        self.encoder = encoder
        self.decoder = decoder
        self.event_shape = tuple(int(d) for d in encoder.input_shape[1:])
        self.latent_dim = int(encoder.output_shape[0][-1])
        self.likelihood = likelihoods_lib.get(likelihood)
        self.likelihood.set_event_shape(self.event_shape)
        self._check_parts()
        self.beta = float(beta)
        self.num_samples = num_samples
        self.seed = seed
        self.objective = objective
        self.free_bits = float(free_bits)
        self.free_bits_groups = free_bits_groups
        self.sampler = Sampling(
            seed=seed, kl_weight=beta, free_bits=free_bits,
            free_bits_groups=free_bits_groups, name="sampling",
        )
        objectives.check_free_bits_groups(free_bits_groups, self.latent_dim)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self._eval_fns = {}
        self.built = True

    def _check_parts(self):
        enc_out = self.encoder.output_shape
        if not isinstance(enc_out, (list, tuple)) or len(enc_out) != 2 or (
            tuple(enc_out[0]) != tuple(enc_out[1])
        ):
            raise ValueError(
                "The encoder must output [z_mean, z_log_var], two tensors of "
                f"shape (batch, latent_dim). Received outputs: {enc_out}"
            )
        dec_in = self.decoder.input_shape
        if dec_in[-1] != self.latent_dim:
            raise ValueError(
                f"The decoder takes inputs of shape {dec_in} but the encoder "
                f"has latent_dim={self.latent_dim}. Build both with the same "
                "latent_dim."
            )
        produced = math.prod(int(d) for d in self.decoder.output_shape[1:])
        needed = self.likelihood.params_size(self.event_shape)
        if produced != needed:
            raise ValueError(
                f"The decoder outputs {produced} numbers per example but the "
                f"{type(self.likelihood).__name__} likelihood needs {needed} "
                f"for data of shape {self.event_shape}. Build the decoder "
                "with the same likelihood (its params_size sets the output)."
            )

    # -- metrics --------------------------------------------------------
    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
            self.elbo_tracker,
        ]

    # -- the forward pass -----------------------------------------------
    def _decode_params(self, z, training=False):
        """Decodes z of shape (..., latent_dim) into (..., *params_shape)."""
        if len(z.shape) == 2:
            return self.decoder(z, training=training)
        lead = tf.shape(z)[:-1]
        flat = tf.reshape(z, [-1, self.latent_dim])  # (S * B, latent_dim)
        params = self.decoder(flat, training=training)
        return tf.reshape(
            params, tf.concat([lead, tf.shape(params)[1:]], axis=0)
        )  # (S, B, *params_shape)

    def compute_terms(self, x, training=False, num_samples=None):
        """All ELBO terms for a batch, from one forward pass.

        Args:
            x: tensor (batch, *event_shape).
            training: bool.
            num_samples: draws of z per example; `self.num_samples` if None.

        Returns:
            dict of tensors: "loss" (scalar objective, with `self.losses`),
            "reconstruction" (B,) E_q[log p(x|z)], "kl" (B,),
            "elbo" (B,), and "log_px_z" (S, B).
        """
        num_samples = num_samples or self.num_samples
        x = tf.cast(x, "float32")
        z_mean, z_log_var = self.encoder(x, training=training)
        z_log_var = objectives.soft_clamp_log_var(z_log_var)
        use_iwae = self.objective == "iwae"
        z = self.sampler(
            [z_mean, z_log_var], num_samples=num_samples,
            add_kl=not use_iwae, training=training,
        )
        if num_samples == 1:
            z = z[None]  # (1, B, latent_dim)
        params = self._decode_params(z, training=training)
        if training:
            self.likelihood.observe(params, x)
        log_px_z = self.likelihood.log_prob(params, x, fit_to=x)
        z_mean32 = tf.cast(z_mean, "float32")
        z_log_var32 = tf.cast(z_log_var, "float32")
        kl = objectives.gaussian_kl(z_mean32, z_log_var32)
        reconstruction = objectives.expected_log_likelihood(log_px_z)
        elbo = objectives.elbo(log_px_z, kl)
        # self.losses holds the (weighted) KL from Sampling unless the IWAE
        # objective is used, plus any weight regularisers.
        if use_iwae:
            log_w = objectives.log_importance_weights(
                log_px_z, tf.cast(z, "float32"), z_mean32, z_log_var32
            )
            bound = objectives.iwae_bound(log_w)
            loss = objectives.weighted_loss(bound, 0.0, self.losses)
        else:
            loss = objectives.weighted_loss(
                reconstruction, 0.0, self.losses
            )
        return {
            "loss": loss,
            "reconstruction": reconstruction,
            "kl": kl,
            "elbo": elbo,
            "log_px_z": log_px_z,
        }

    def call(self, inputs, training=False):
        """Reconstructions: the mean of p(x|z), z sampled when training and
        z = z_mean otherwise. Adds the KL term to `self.losses`."""
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z_log_var = objectives.soft_clamp_log_var(z_log_var)
        z = self.sampler([z_mean, z_log_var], training=training)
        if not training:
            z = z_mean
        return self.likelihood.mean(self.decoder(z, training=training))

    # -- Keras train / test steps ----------------------------------------
    def _unpack(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError(
                "VAE does not support sample_weight: the KL term is a batch "
                "mean added by the Sampling layer. Repeat or subsample "
                "examples instead."
            )
        return x

    def _update_metrics(self, terms, loss):
        self.loss_tracker.update_state(loss)
        self.reconstruction_loss_tracker.update_state(
            -tf.reduce_mean(terms["reconstruction"])
        )
        self.kl_loss_tracker.update_state(tf.reduce_mean(terms["kl"]))
        self.elbo_tracker.update_state(tf.reduce_mean(terms["elbo"]))
        return distribute.step_logs({m.name: m.result() for m in self.metrics})

    def train_step(self, data):
        x = self._unpack(data)
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, training=True)
            loss = terms["loss"]
            # Under tf.distribute each replica's gradient is summed, so the
            # per-replica batch mean is divided by the number of replicas to
            # give the mean over the global batch.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = loss / replicas if replicas > 1 else loss
            if hasattr(self.optimizer, "scale_loss"):
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, self.trainable_weights)
        # Keras clips each replica's share before summing; clip the global
        # gradient instead (a no-op with one replica or no global_clipnorm).
        grads = distribute.clip_global_norm_across_replicas(
            grads, self.optimizer
        )
        self.optimizer.apply(grads, self.trainable_weights)
        return self._update_metrics(terms, loss)

    def test_step(self, data):
        x = self._unpack(data)
        terms = self.compute_terms(x, training=False)
        return self._update_metrics(terms, terms["loss"])

    def compile(self, optimizer="adam", **kwargs):
        """Configures training. `loss` and `metrics` are not accepted: the
        VAE's loss is its negative ELBO and its metrics are fixed."""
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"VAE.compile() does not take `{key}`: the loss is the "
                    "negative ELBO (or IWAE bound) computed by the model. "
                    f"Received: {key}={kwargs[key]!r}. Choose the likelihood "
                    "with VAE(likelihood=...) instead."
                )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models that override compile(); the VAE's
        # compile only adds argument checks, so restore the optimizer here.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    # -- data checks -----------------------------------------------------
    def check_data(self, x, what="x"):
        """Validates a numpy batch against the model before training.

        Raises ValueError for an empty array, a shape that does not match the
        encoder's input, NaN or infinite values, or values outside the
        likelihood's support. Returns x as float32.
        """
        x = _to_numpy_float(x, what)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"`{what}` is empty (shape {x.shape}). Pass at least one "
                "example."
            )
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"`{what}` has examples of shape {tuple(x.shape[1:])} but the "
                f"model expects {self.event_shape}. Reshape the data, e.g. "
                f"x.reshape((-1, {', '.join(map(str, self.event_shape))})), "
                "or build the model with input_shape matching the data."
            )
        finite = np.isfinite(x)
        if not finite.all():
            bad = int(x.size - finite.sum())
            rows = np.unique(np.nonzero(~finite)[0])[:5].tolist()
            raise ValueError(
                f"`{what}` holds {bad} NaN or infinite values (first examples "
                f"affected: {rows}). Clean or drop them before training."
            )
        self.likelihood.check_support(x)
        return x

    def _check_input(self, x, what="x"):
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if isinstance(spec, (tuple, list)):
                spec = spec[0]
            shape = tuple(spec.shape[1:]) if spec.shape.rank else ()
            if shape and None not in shape and shape != self.event_shape:
                raise ValueError(
                    f"The dataset yields examples of shape {shape} but the "
                    f"model expects {self.event_shape}."
                )
            return x
        if isinstance(x, (np.ndarray, tf.Tensor, list)):
            return self.check_data(x, what)
        return x

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        if kwargs.get("sample_weight") is not None:
            self._unpack((x, None, kwargs["sample_weight"]))
        if isinstance(validation_data, (np.ndarray, tf.Tensor)):
            validation_data = self._check_input(
                validation_data, "validation_data"
            )
        if isinstance(x, resume_lib.GraphStream):
            return self._fit_graph_stream(
                x, y, *args, validation_data=validation_data, **kwargs
            )
        x = self._check_input(x)
        return super().fit(
            x, y, *args, validation_data=validation_data, **kwargs
        )

    def _fit_graph_stream(self, stream, y=None, *args, **kwargs):
        """`fit` with batches read by the train function from a
        `keras_vae.resume.GraphStream` (no iterator op per step)."""
        if y is not None or args:
            raise ValueError(
                "With a GraphStream pass the other fit arguments by name "
                "(epochs=..., callbacks=...); a VAE takes no targets y."
            )
        if kwargs.get("batch_size") is not None:
            raise ValueError(
                "The GraphStream sets the batch size "
                f"({stream.batch_size}); do not pass batch_size to fit."
            )
        if stream.element_shape != tuple(self.event_shape):
            raise ValueError(
                f"The GraphStream holds examples of shape "
                f"{stream.element_shape} but the model expects "
                f"{tuple(self.event_shape)}."
            )
        default = tf.distribute.get_strategy()
        if (self.distribute_strategy is not default
                or tf.distribute.has_strategy()):
            raise ValueError(
                "GraphStream trains on one device. Under a tf.distribute "
                "strategy pass keras_vae.resume.make_step_dataset(...) "
                "(the same batches, through tf.data) instead."
            )
        steps = kwargs.pop("steps_per_epoch", None) or stream.steps_per_epoch
        spe = int(self.steps_per_execution)
        if steps % spe:
            raise ValueError(
                f"steps_per_epoch={steps} is not a multiple of the model's "
                f"steps_per_execution={spe}; with a GraphStream every call "
                "of the train function runs exactly steps_per_execution "
                "steps. Compile with a divisor of the steps per epoch."
            )
        kwargs.setdefault("shuffle", False)
        keras_function = self.train_function
        self.train_function = self._graph_stream_function(stream, spe)
        try:
            return super().fit(
                stream.placeholder_dataset(), steps_per_epoch=steps,
                **kwargs,
            )
        finally:
            self.train_function = keras_function

    def _graph_stream_function(self, stream, spe):
        # One traced function per (stream, steps_per_execution), kept so
        # that a second fit on the same stream does not trace again.
        cache = self.__dict__.setdefault("_keras_vae_stream_fns", {})
        jit = bool(self.jit_compile)
        key = (id(stream), spe, id(self.optimizer), jit)
        if key in cache and cache[key][0] is stream:
            return cache[key][1]
        step = self.train_step
        if jit:
            # As Keras does: XLA compiles the step; the batch is read
            # outside it (a stateless shuffle has no XLA kernel).
            step = tf.function(step, jit_compile=True, autograph=False)

        @tf.function(autograph=False)
        def run_steps():
            logs = step(stream.next_batch())
            if spe > 1:
                _, logs = tf.while_loop(
                    lambda i, _: i < spe - 1,
                    lambda i, _: (i + 1, step(stream.next_batch())),
                    (tf.constant(0), logs),
                )
            return logs

        def function(iterator):
            # Keras hands over its iterator; the batches come from the
            # stream instead.
            del iterator
            return run_steps()

        cache.clear()
        cache[key] = (stream, function)
        return function

    def evaluate(self, x=None, y=None, *args, **kwargs):
        x = self._check_input(x)
        return super().evaluate(x, y, *args, **kwargs)

    # -- user-facing methods ---------------------------------------------
    def _batches(self, x, batch_size):
        n = x.shape[0]
        step = batch_size or n
        for start in range(0, n, step):
            yield x[start:start + step]

    def encode(self, x, batch_size=1000):
        """Returns (z_mean, z_log_var), each (batch, latent_dim) numpy."""
        x = self.check_data(x)
        outs = [self.encoder(b, training=False) for b in
                self._batches(x, batch_size)]
        return (
            np.concatenate([np.asarray(o[0]) for o in outs]),
            np.concatenate([
                np.asarray(objectives.soft_clamp_log_var(o[1])) for o in outs
            ]),
        )

    def decode(self, z):
        """Returns the distribution p(x|z) (a `tfd.Distribution`) for z of
        shape (batch, latent_dim)."""
        z = tf.convert_to_tensor(np.asarray(z, dtype="float32"))
        if len(z.shape) != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"`z` must have shape (batch, {self.latent_dim}). "
                f"Received: {tuple(z.shape)}"
            )
        return self.likelihood.distribution(self.decoder(z, training=False))

    def reconstruct(self, x, mode="mean", seed=None):
        """Reconstructs x.

        Args:
            x: array (batch, *event_shape).
            mode: "mean": the mean of p(x|z) at z = z_mean (deterministic);
                "sample": z ~ q(z|x), then x ~ p(x|z).
            seed: int, for mode="sample".
        """
        if mode not in ("mean", "sample"):
            raise ValueError(
                f"Unknown mode {mode!r}. Expected 'mean' or 'sample'."
            )
        z_mean, z_log_var = self.encode(x)
        if mode == "mean":
            params = self.decoder(z_mean, training=False)
            return np.asarray(self.likelihood.mean(params))
        seed = _seed_pair(seed)
        eps = tf.random.stateless_normal(z_mean.shape, seed=seed)
        z = z_mean + np.exp(0.5 * z_log_var) * eps
        return np.asarray(self.decode(z).sample(seed=seed + 1))

    def sample(self, num_samples, seed=None, mode="mean"):
        """Generates data from the prior: z ~ N(0, I), then p(x|z).

        Args:
            num_samples: int >= 1.
            seed: int or None; the same seed gives the same samples.
            mode: "mean" returns the mean of p(x|z) (what image VAEs show);
                "sample" draws x ~ p(x|z).

        Returns:
            numpy array (num_samples, *event_shape).
        """
        if isinstance(num_samples, bool) or not isinstance(
            num_samples, int
        ) or num_samples < 1:
            raise ValueError(
                "`num_samples` must be an int >= 1. "
                f"Received: num_samples={num_samples!r}"
            )
        if mode not in ("mean", "sample"):
            raise ValueError(
                f"Unknown mode {mode!r}. Expected 'mean' or 'sample'."
            )
        seed = _seed_pair(seed)
        z = tf.random.stateless_normal((num_samples, self.latent_dim),
                                       seed=seed)
        params = self.decoder(z, training=False)
        if mode == "mean":
            return np.asarray(self.likelihood.mean(params))
        return np.asarray(
            self.likelihood.distribution(params).sample(seed=seed + 1)
        )

    def elbo(self, x, num_samples=1, batch_size=500):
        """Per-example ELBO estimate (nats) with `num_samples` draws, (batch,)."""
        if isinstance(num_samples, bool) or not isinstance(
            num_samples, int
        ) or num_samples < 1:
            raise ValueError(
                "`num_samples` must be an int >= 1. "
                f"Received: num_samples={num_samples!r}"
            )
        x = self.check_data(x)
        fn = self._eval_fn("elbo", num_samples)
        return np.concatenate(
            [fn(tf.constant(b)).numpy() for b in self._batches(x, batch_size)]
        )

    def _eval_fn(self, kind, num_samples):
        key = (kind, num_samples)
        if key not in self._eval_fns:

            @tf.function(reduce_retracing=True)
            def fn(x):
                return self.compute_terms(
                    x, training=False, num_samples=num_samples
                )[kind]

            self._eval_fns[key] = fn
        return self._eval_fns[key]

    def log_likelihood(self, x, num_samples=5000, batch_size=None,
                       verbose="auto"):
        """Importance-sampled estimate of log p(x) per example (nats).

        The IWAE bound with K = `num_samples` draws from q(z|x) (Burda et al.
        2016), computed in chunks so memory stays bounded. See
        `keras_vae.evaluation.log_likelihood` for details.
        """
        from keras_vae import evaluation

        return evaluation.log_likelihood(
            self, x, num_samples=num_samples, batch_size=batch_size,
            verbose=verbose,
        ).values

    # -- serialisation ----------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "likelihood": keras.saving.serialize_keras_object(
                    self.likelihood
                ),
                "beta": self.beta,
                "num_samples": self.num_samples,
                "seed": self.seed,
                "objective": self.objective,
                "free_bits": self.free_bits,
                "free_bits_groups": self.free_bits_groups,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "likelihood"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)

    def build(self, input_shape=None):
        self.built = True


def _seed_pair(seed):
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int or None. Received: {seed!r}")
    return tf.constant([int(seed), 0], dtype=tf.int32)


def build_mlp_vae(
    input_shape, latent_dim, hidden_units=(500,), likelihood="bernoulli",
    activation="tanh", **vae_kwargs,
):
    """An MLP VAE (AEVB / IWAE-paper style), ready to compile and fit.

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dim: int > 0.
        hidden_units: tuple of ints, default (500,); (200, 200) is the IWAE
            paper's 784-200-200-50 model with latent_dim=50.
        likelihood: name or `Likelihood`, default "bernoulli".
        activation: str, default "tanh".
        **vae_kwargs: beta, num_samples, seed, objective, free_bits.

    Example:
        >>> vae = build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200))
    """
    networks.check_latent_dim(latent_dim)
    head = likelihoods_lib.get(likelihood)
    encoder = networks.build_mlp_encoder(
        input_shape, latent_dim, hidden_units, activation
    )
    decoder = networks.build_mlp_decoder(
        latent_dim, input_shape, tuple(reversed(tuple(hidden_units)))
        if not isinstance(hidden_units, int) else hidden_units,
        activation, head,
    )
    return VAE(encoder, decoder, likelihood=head, **vae_kwargs)


def build_conv_vae(
    input_shape, latent_dim, likelihood="bernoulli", filters=(32, 64),
    dense_units=16, **vae_kwargs,
):
    """The keras.io convolutional VAE, with a chosen likelihood.

    Args:
        input_shape: (height, width, channels), sides divisible by 4 with the
            default two stride-2 layers.
        latent_dim: int > 0 (keras.io uses 2).
        likelihood: name or `Likelihood`, default "bernoulli".
        filters: encoder filters; the decoder mirrors them.
        dense_units: width of the encoder's dense layer.
        **vae_kwargs: beta, num_samples, seed, objective, free_bits.
    """
    networks.check_latent_dim(latent_dim)
    head = likelihoods_lib.get(likelihood)
    encoder = networks.build_conv_encoder(
        input_shape, latent_dim, filters, dense_units
    )
    decoder = networks.build_conv_decoder(
        latent_dim, input_shape, tuple(reversed(tuple(filters))),
        likelihood=head,
    )
    return VAE(encoder, decoder, likelihood=head, **vae_kwargs)
