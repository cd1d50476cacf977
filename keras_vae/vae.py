"""The VAE model: encoder, `Sampling`, decoder and a likelihood head."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_vae import likelihoods as likelihoods_lib
from keras_vae import networks
from keras_vae import objectives
from keras_vae import posteriors as posteriors_lib
from keras_vae import priors as priors_lib
from keras_vae import progress
from keras_vae.data import checks as data_checks
from keras_vae.sampling import Sampling
from keras_vae.training import distribute
from keras_vae.training import fit as fit_lib
from keras_vae.training import optimizers as optimizers_lib

OBJECTIVES = ("elbo", "iwae")


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
    """A Variational Autoencoder trained by maximising the ELBO with `fit`.

    The model is assembled from parts: the encoder's outputs go through a
    posterior head (`keras_vae.posteriors`, default the diagonal Gaussian)
    to give q(z|x); the `Sampling` layer draws z from it by
    reparameterization and adds KL(q(z|x) || p(z)) against the prior
    (`keras_vae.priors`, default N(0, I)) with `add_loss`; the decoder and
    the likelihood head turn each draw into a TFP distribution p(x|z). The
    train step maximises the Monte-Carlo
    ELBO, log p(x|z) averaged over `num_samples` draws minus the KL
    (Kingma & Welling 2014). With `objective="iwae"` it maximises the
    importance-weighted bound with `num_samples` draws (Burda et al. 2016).

    Metrics (per example, nats, summed over data dimensions):
        loss: the objective minimised (weighted by beta, floored by free bits).
        reconstruction_loss: -E_q[log p(x|z)].
        kl_loss: KL(q(z|x) || p(z)), unweighted.
        elbo: -(reconstruction_loss + kl_loss), a lower bound on log p(x).

    Args:
        encoder: `keras.Model` x -> the posterior's parameters
            ([z_mean, z_log_var] for the default diagonal Gaussian), sized
            by `posterior.params_size(latent_dim)`.
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
        prior: a `keras_vae.priors.Prior`, its name, or None (default,
            `StandardNormal()`).
        posterior: a `keras_vae.posteriors.Posterior`, its name, or None
            (default, `DiagonalGaussian()`, whose z_log_var passes through
            `objectives.soft_clamp_log_var`: the identity on [-30, 10] that
            saturates smoothly beyond, so a diverging encoder cannot overflow
            exp(z_log_var)).
        num_classes: None (default, an unconditional model) or an int >= 2:
            a conditional VAE (Sohn et al. 2015; Kingma et al. 2014's M2
            generative model with the label always observed). The encoder takes
            [x, one-hot label] and gives q(z | x, y), the decoder takes
            [z, one-hot label] and gives p(x | z, y); the prior p(z) stays
            unconditional. `fit(x, y)` trains it on integer labels y, and
            `encode`, `elbo`, `log_weights`, `log_likelihood` (then an
            estimate of log p(x | y)), `reconstruct`, `decode` and `sample`
            take `labels=`. The `kv.build_*_vae(..., num_classes=C)`
            builders make such networks.

    Every number the model reports (train and test steps, `elbo`,
    `log_weights`, `keras_vae.evaluation`, the SavedModel's signatures) is
    computed by the same methods from these parts: `posterior_params`,
    `posterior.reparameterize`, `log_px_z`, `log_weights_at` and the
    functions of `keras_vae.objectives`.

    Examples:
        >>> vae = build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> history = vae.fit(x_train, epochs=2, batch_size=100, verbose=0)
        >>> sorted(history.history)
        ['elbo', 'kl_loss', 'loss', 'reconstruction_loss']
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
        prior=None,
        posterior=None,
        num_classes=None,
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
        num_samples = _check_num_samples(num_samples)
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
        posterior = posteriors_lib.get(posterior)
        prior = priors_lib.get(prior)
        self.num_classes = networks.check_num_classes(num_classes)
        self.encoder = encoder
        self.decoder = decoder
        self.event_shape = self._check_conditioning(prior)
        self.likelihood = likelihoods_lib.get(likelihood)
        self.likelihood.set_event_shape(self.event_shape)
        self.latent_dim = self._check_parts(posterior, prior)
        self.beta = float(beta)
        self.num_samples = num_samples
        self.seed = seed
        self.objective = objective
        self.free_bits = float(free_bits)
        self.free_bits_groups = free_bits_groups
        # The sampler owns the posterior head and the prior (one owner, so
        # each is saved once); `self.posterior` and `self.prior` read them.
        self.sampler = Sampling(
            seed=seed, kl_weight=beta, free_bits=free_bits,
            free_bits_groups=free_bits_groups, posterior=posterior,
            prior=prior, name="sampling",
        )
        objectives.check_free_bits_groups(free_bits_groups, self.latent_dim)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.built = True

    @property
    def posterior(self):
        """The posterior head (`keras_vae.posteriors.Posterior`)."""
        return self.sampler.posterior

    @property
    def prior(self):
        """The prior (`keras_vae.priors.Prior`)."""
        return self.sampler.prior

    def _functions(self):
        # Traced tf.functions of this model, in a plain dict kept out of
        # Keras' attribute tracking: a tracked dict of functions (with tuple
        # keys) makes the model unsaveable as a SavedModel.
        return self.__dict__.setdefault("_keras_vae_functions", {})

    def _check_conditioning(self, prior):
        """Checks that the networks take labels exactly when the model is
        conditional; returns the example shape (the encoder's x input)."""
        c = self.num_classes
        enc_in, dec_in = self.encoder.input_shape, self.decoder.input_shape
        multi = [isinstance(shape, list) and len(shape) == 2
                 for shape in (enc_in, dec_in)]
        if c is None:
            if any(multi) or isinstance(enc_in, list):
                raise ValueError(
                    "The encoder or decoder takes two inputs (a label?) but "
                    f"the VAE is unconditional. Received: encoder inputs "
                    f"{enc_in}, decoder inputs {dec_in}. Pass "
                    "num_classes=C to VAE for a conditional model."
                )
            return tuple(int(d) for d in enc_in[1:])
        want = (None, c)
        if not all(multi) or tuple(enc_in[1]) != want or tuple(
                dec_in[1]) != want:
            raise ValueError(
                f"A conditional VAE (num_classes={c}) needs an encoder "
                f"[x, label] and a decoder [z, label], each label input of "
                f"shape (None, {c}) (one-hot). Received: encoder inputs "
                f"{enc_in}, decoder inputs {dec_in}. Build them with "
                f"num_classes={c} (kv.networks.build_mlp_encoder(..., "
                f"num_classes={c}) and so on)."
            )
        if isinstance(prior, priors_lib.VampPrior):
            raise ValueError(
                "The VampPrior is a mixture of the encoder's q(z | u_k) at "
                "learned pseudo-inputs, but a conditional encoder also needs "
                f"a label (num_classes={c}). Use prior='standard_normal' or "
                "'mog' with a conditional VAE."
            )
        return tuple(int(d) for d in enc_in[0][1:])

    def _check_parts(self, posterior, prior):
        """Checks that encoder, posterior, prior, decoder and likelihood fit
        together; returns latent_dim."""
        enc_out = self.encoder.output_shape
        names = ", ".join(posterior.param_names)
        count = len(posterior.param_names)
        shapes = posteriors_lib._as_shape_list(enc_out)
        if len(shapes) != count:
            raise ValueError(
                f"The encoder must output [{names}], {count} tensors for the "
                f"{type(posterior).__name__} posterior. Received outputs: "
                f"{enc_out}"
            )
        latent_dim = posterior.latent_dim_of(shapes)
        dec_in = self.decoder.input_shape
        if self.num_classes is not None:
            dec_in = dec_in[0]
        if dec_in[-1] != latent_dim:
            raise ValueError(
                f"The decoder takes inputs of shape {dec_in} but the encoder "
                f"has latent_dim={latent_dim}. Build both with the same "
                "latent_dim."
            )
        posterior.check_encoder_outputs(shapes, latent_dim)
        posterior.set_latent_dim(latent_dim)
        prior.set_latent_dim(latent_dim)
        prior.attach(self.encoder, posterior, self.event_shape)
        produced = math.prod(int(d) for d in self.decoder.output_shape[1:])
        needed = self.likelihood.params_size(self.event_shape)
        if produced != needed:
            raise ValueError(
                f"The decoder outputs {produced} numbers per example but the "
                f"{type(self.likelihood).__name__} likelihood needs {needed} "
                f"for data of shape {self.event_shape}. Build the decoder "
                "with the same likelihood (its params_size sets the output)."
            )
        return latent_dim

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
    def one_hot(self, labels):
        """The networks' label input for integer labels (B,): one-hot
        float32 (B, num_classes); None for an unconditional model (which
        refuses labels). A conditional model refuses labels=None."""
        if not self._labels_present(labels):
            return None
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return tf.one_hot(labels, self.num_classes, dtype="float32")

    def _net_input(self, inputs, label):
        return inputs if label is None else [inputs, label]

    def _decode_params(self, z, training=False, labels=None):
        """Decodes z of shape (..., latent_dim) into (..., *params_shape);
        a conditional model's labels (B,) condition every draw of z."""
        label = self.one_hot(labels)
        if len(z.shape) == 2:
            return self.decoder(self._net_input(z, label), training=training)
        lead = tf.shape(z)[:-1]
        flat = tf.reshape(z, [-1, self.latent_dim])  # (S * B, latent_dim)
        if label is not None:
            # Row s * B + b of the flat draws belongs to example b.
            label = tf.tile(label, [tf.reduce_prod(lead[:-1]), 1])
        params = self.decoder(self._net_input(flat, label),
                              training=training)
        return tf.reshape(
            params, tf.concat([lead, tf.shape(params)[1:]], axis=0)
        )  # (S, B, *params_shape)

    def posterior_params(self, x, training=False, labels=None):
        """q(z|x)'s parameter tensors for a batch (q(z|x, y) for a
        conditional model's labels): the encoder, then the posterior head
        (for the default head, [z_mean, z_log_var] with the soft clamp
        applied). Every feature encodes through this method."""
        inputs = self._net_input(x, self.one_hot(labels))
        return self.posterior.from_encoder(
            self.encoder(inputs, training=training))

    def log_px_z(self, x, z, training=False, fit_to=None, labels=None):
        """log p(x|z) (nats, summed over data dimensions) for draws z of
        shape (..., batch, latent_dim); returns (..., batch).

        `fit_to` is passed to the likelihood head: data-dependent heads (the
        "optimal" Gaussian) fit their scale to it; None scores with the
        stored scale, so one example's score does not depend on its batch.
        """
        params = self._decode_params(z, training=training, labels=labels)
        return self.likelihood.log_prob(params, x, fit_to=fit_to)

    def log_weights_at(self, params, z, log_px_z, log_qz=None):
        """log w = log p(x|z) + log p(z) - log q(z|x) for draws z (S, B, L)
        of q with parameters `params`; float32 (S, B). `log_qz`, when the
        caller has it from the draw itself, is used instead of recomputing
        it from z."""
        z32 = tf.cast(z, "float32")
        if log_qz is None:
            log_qz = self.posterior.log_prob(
                [tf.cast(p, "float32") for p in params], z32)
        return objectives.log_importance_weights(
            tf.cast(log_px_z, "float32"), self.prior.log_prob(z32),
            tf.cast(log_qz, "float32"),
        )

    def kl_at(self, params, z=None, log_qz=None):
        """KL(q(z|x) || p(z)) per example (B,), float32: closed form where
        the parts have one, else the Monte-Carlo estimate from draws z and
        their log q(z|x) `log_qz` when the caller has it
        (`Sampling.kl_per_example`, the one the training loss uses)."""
        return self.sampler.kl_per_example(params, z, log_qz)

    def score_draws(self, x, params, eps, labels=None):
        """(log w, log p(x|z)) for standard-normal noise eps (S, B or 1,
        latent_dim) pushed through q: each (S, B). The evaluation's
        importance sampling and the exported `log_likelihood` call this."""
        z, log_qz = self.posterior.sample_and_log_prob(params, eps)
        log_px_z = self.log_px_z(x, z, labels=labels)
        return self.log_weights_at(params, z, log_px_z, log_qz), log_px_z

    def elbo_terms_at(self, x, params, z, fit_to=None, log_qz=None,
                      labels=None):
        """The ELBO and its terms for draws z (S, B, latent_dim): dict of
        (B,) "elbo", "reconstruction", "kl" and (S, B) "log_px_z".
        `log_qz` (S, B), log q of the draws when the caller has it from
        `posterior.sample_and_log_prob`, saves recomputing it from z."""
        log_px_z = self.log_px_z(x, z, fit_to=fit_to, labels=labels)
        kl = self.kl_at(params, z, log_qz)
        return {
            "elbo": objectives.elbo(log_px_z, kl),
            "reconstruction": objectives.expected_log_likelihood(log_px_z),
            "kl": kl,
            "log_px_z": log_px_z,
        }

    def compute_terms(self, x, training=False, num_samples=None,
                      labels=None):
        """All ELBO terms for a batch, from one forward pass.

        Args:
            x: tensor (batch, *event_shape).
            training: bool.
            num_samples: draws of z per example; `self.num_samples` if None.
            labels: int tensor (batch,), a conditional model's labels.

        Returns:
            dict of tensors: "loss" (scalar objective, with `self.losses`),
            "reconstruction" (B,) E_q[log p(x|z)], "kl" (B,),
            "elbo" (B,), and "log_px_z" (S, B).
        """
        num_samples = num_samples or self.num_samples
        x = tf.cast(x, "float32")
        params = self.posterior_params(x, training=training, labels=labels)
        use_iwae = self.objective == "iwae"
        z, kl, log_qz = self.sampler(
            params, num_samples=num_samples, add_kl=not use_iwae,
            return_kl=True, return_log_q=True, training=training,
        )
        if num_samples == 1:
            z, log_qz = z[None], log_qz[None]  # (1, B, latent_dim), (1, B)
        decoded = self._decode_params(z, training=training, labels=labels)
        if training:
            self.likelihood.observe(decoded, x)
        log_px_z = self.likelihood.log_prob(decoded, x, fit_to=x)
        reconstruction = objectives.expected_log_likelihood(log_px_z)
        elbo = objectives.elbo(log_px_z, kl)
        # self.losses holds the (weighted) KL from Sampling unless the IWAE
        # objective is used, plus any weight regularisers.
        if use_iwae:
            log_w = self.log_weights_at(params, z, log_px_z, log_qz)
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
        z = E_q[z] otherwise. Adds the KL term to `self.losses`. A
        conditional model takes (x, labels)."""
        labels = None
        if self.num_classes is not None and isinstance(inputs, (list, tuple)):
            inputs, labels = inputs
        params = self.posterior_params(inputs, training=training,
                                       labels=labels)
        z = self.sampler(params, training=training)
        if not training:
            z = self.posterior.mean(params)
        return self.likelihood.mean(
            self._decode_params(z, training=training, labels=labels))

    # -- graph functions shared by the Python methods and the export ------
    def encode_graph(self, x, labels=None):
        """dict of the posterior's parameters (float32) for a batch x."""
        params = self.posterior_params(tf.cast(x, "float32"), labels=labels)
        return {
            name: tf.cast(p, tf.float32)
            for name, p in zip(self.posterior.param_names, params)
        }

    def reconstruct_graph(self, x, labels=None):
        """The mean of p(x|z) at z = E_q[z], float32 (B, *event_shape)."""
        params = self.posterior_params(tf.cast(x, "float32"), labels=labels)
        decoded = self._decode_params(self.posterior.mean(params),
                                      labels=labels)
        return tf.cast(self.likelihood.mean(decoded), tf.float32)

    def sample_graph(self, num_samples, seed, labels=None):
        """z ~ p(z) with the stateless seed pair `seed` (int32 (2,)), the
        mean of p(x|z) and a draw x ~ p(x|z) with seed + 1 (p(x|z, y) for
        a conditional model's labels, (num_samples,))."""
        z = self.prior.sample(num_samples, seed)
        decoded = self._decode_params(z, labels=labels)
        x_sample = self.likelihood.distribution(decoded).sample(
            seed=seed + 1
        )
        return {
            "z": tf.cast(z, tf.float32),
            "x_mean": tf.cast(self.likelihood.mean(decoded), tf.float32),
            "x_sample": tf.cast(x_sample, tf.float32),
        }

    def log_likelihood_graph(self, x, params, num_samples, chunk_size,
                             noise_fn, labels=None):
        """The K-sample importance estimate of log p(x), chunked, in graph.

        Args:
            x: (B, *event_shape) float32.
            params: q's parameters for x (the proposal).
            num_samples: K, int or int32 scalar tensor.
            chunk_size: draws per chunk, int or int32 scalar tensor.
            noise_fn: (c, kc) -> standard-normal noise (kc, B or 1,
                latent_dim) of chunk c.
            labels: int (B,), a conditional model's labels.

        Returns:
            (log p(x) estimate (B,), mean log w (B,), mean log p(x|z) (B,)),
            float64, all from the same K draws.
        """
        def chunk_fn(c, kc):
            log_w, log_px_z = self.score_draws(x, params, noise_fn(c, kc),
                                               labels)
            return log_w, (log_px_z,)

        log_px, mean_log_w, (mean_log_px_z,) = (
            objectives.chunked_log_mean_exp(
                chunk_fn, num_samples, chunk_size, tf.shape(x)[0],
                num_extras=1,
            )
        )
        return log_px, mean_log_w, mean_log_px_z

    # -- Keras train / test steps ----------------------------------------
    def _unpack(self, data):
        """(x, labels) of a batch; labels is None for an unconditional
        model, whose targets are ignored as in Keras' unsupervised use."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError(
                "VAE does not support sample_weight: the KL term is a batch "
                "mean added by the Sampling layer. Repeat or subsample "
                "examples instead."
            )
        if self.num_classes is None:
            return x, None
        if y is None:
            raise ValueError(
                f"This VAE is conditional (num_classes={self.num_classes}) "
                "and trains on (x, labels) batches: vae.fit(x, y), or a "
                "dataset of (x, y) pairs."
            )
        return x, y

    def _update_metrics(self, terms, loss):
        self.loss_tracker.update_state(loss)
        self.reconstruction_loss_tracker.update_state(
            -tf.reduce_mean(terms["reconstruction"])
        )
        self.kl_loss_tracker.update_state(tf.reduce_mean(terms["kl"]))
        self.elbo_tracker.update_state(tf.reduce_mean(terms["elbo"]))
        return distribute.step_logs({m.name: m.result() for m in self.metrics})

    def train_step(self, data):
        x, labels = self._unpack(data)
        schedule = self.__dict__.get("_keras_vae_kl_schedule")
        if schedule is not None:
            # The KL schedule of this fit, at this step (set here so that
            # it holds at every step of an execution).
            step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations),
                           tf.int64)
            self.sampler.kl_weight.assign(tf.cast(
                schedule.weight_tensor(step, self.beta),
                self.sampler.kl_weight.dtype,
            ))
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, training=True, labels=labels)
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
        x, labels = self._unpack(data)
        terms = self.compute_terms(x, training=False, labels=labels)
        return self._update_metrics(terms, terms["loss"])

    def compile(self, optimizer="adam", steps_per_execution="auto",
                fused_adam=True, **kwargs):
        """Configures training. `loss` and `metrics` are not accepted: the
        VAE's loss is its negative ELBO and its metrics are fixed.

        Args:
            optimizer: as in Keras, default "adam".
            steps_per_execution: "auto" (default) or an int >= 1. "auto"
                lets each `fit` run as many steps per call of the train
                function as its callbacks allow (up to 50, a divisor of the
                steps per epoch; see `keras_vae.training.fit`); an int is
                used as given, as in Keras.
            fused_adam: bool, default True. When the optimizer is exactly
                `keras.optimizers.Adam` (given as an instance or as "adam"),
                it becomes a `keras_vae.optimizers.FusedAdam` in place: the
                same object, hyperparameters and slots, with the update as
                one fused TensorFlow kernel per variable (the same
                arithmetic up to rounding). False keeps Keras' Adam.
            **kwargs: the other arguments of `keras.Model.compile`.
        """
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"VAE.compile() does not take `{key}`: the loss is the "
                    "negative ELBO (or IWAE bound) computed by the model. "
                    f"Received: {key}={kwargs[key]!r}. Choose the likelihood "
                    "with VAE(likelihood=...) instead."
                )
        setting = fit_lib.check_steps_per_execution(steps_per_execution)
        super().compile(
            optimizer=optimizer,
            steps_per_execution=1 if setting == "auto" else setting,
            **kwargs,
        )
        self.__dict__["_keras_vae_steps_per_execution"] = setting
        if not isinstance(fused_adam, bool):
            raise ValueError(
                f"`fused_adam` must be True or False. Received: "
                f"fused_adam={fused_adam!r}"
            )
        self.__dict__["_keras_vae_fused_adam"] = fused_adam
        if fused_adam:
            optimizers_lib.fuse_adam(self.optimizer)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None:
            config["steps_per_execution"] = self.__dict__.get(
                "_keras_vae_steps_per_execution", 1
            )
            config["fused_adam"] = self.__dict__.get(
                "_keras_vae_fused_adam", True)
        return config

    def compile_from_config(self, config):
        # Keras skips this for models that override compile(); the VAE's
        # compile only adds argument checks, so restore the optimizer here.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    # -- data checks -----------------------------------------------------
    def check_data(self, x, what="x"):
        """Validates an array of examples against the model.

        x goes through the one input rule of `keras_vae.data.checks`
        (uint8 pixels are divided by 255, other numbers cast to float32;
        empty, non-numeric or non-finite input is refused), then its
        example shape must be the encoder's input shape and its values lie
        in the likelihood's support. Every method that takes x calls this.

        Returns:
            x as float32 numpy.

        Raises:
            ValueError: saying what was received and how to fix it.
        """
        x = data_checks.to_float32(x, what)
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"`{what}` has examples of shape {tuple(x.shape[1:])} but the "
                f"model expects {self.event_shape}. Reshape the data, e.g. "
                f"x.reshape((-1, {', '.join(map(str, self.event_shape))})), "
                "or build the model with input_shape matching the data."
            )
        self.likelihood.check_support(x)
        return x

    def _labels_present(self, labels, what="labels"):
        """True when `labels` are given to a conditional model, False when
        none are given to an unconditional one; the other two cases raise
        a ValueError that says what to do."""
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    f"This VAE is unconditional and takes no `{what}`. "
                    "Build it with num_classes=C (e.g. kv.build_mlp_vae(..., "
                    "num_classes=10)) to condition on a label, or leave "
                    f"`{what}` out."
                )
            return False
        if labels is None:
            raise ValueError(
                f"This VAE is conditional (num_classes={self.num_classes}): "
                f"pass `{what}`, one integer class label per example (and "
                "vae.fit(x, y) to train)."
            )
        return True

    def check_labels(self, labels, num_examples, what="labels"):
        """Validates the labels of `num_examples` examples: int32 numpy
        (N,) for a conditional model, None for an unconditional one (which
        refuses labels). Every method that takes labels calls this.

        Raises:
            ValueError: labels missing for a conditional model or given to
                an unconditional one, of the wrong length, shape or dtype,
                or out of [0, num_classes).
        """
        if not self._labels_present(labels, what):
            return None
        return data_checks.check_labels(labels, self.num_classes,
                                        num_examples, what)

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
            if self.num_classes is not None and not isinstance(
                    x.element_spec, (tuple, list)):
                raise ValueError(
                    f"This VAE is conditional (num_classes="
                    f"{self.num_classes}): the dataset must yield (x, labels) "
                    "pairs, e.g. tf.data.Dataset.from_tensor_slices((x, y))."
                )
            return x
        if isinstance(x, (np.ndarray, tf.Tensor, list)):
            return self.check_data(x, what)
        return x

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with batches of an array read inside the
        compiled train function and several steps per execution (see
        `keras_vae.training.fit`). Takes an array, a `tf.data.Dataset` or
        a `keras_vae.data.TrainingStream` as x; no targets, except for a
        conditional model (`num_classes`), which takes its integer labels
        as y (`fit(x, y)`; a dataset of (x, y) pairs; a stream built with
        `labels=`)."""
        return fit_lib.fit(self, super().fit, *args, **kwargs)

    def make_train_function(self, force=False):
        """Keras' hook for the function `fit` runs each execution: Keras'
        own, or, while `fit` trains on a `TrainingStream`, one that reads
        the batches from the stream inside the graph."""
        active = self.__dict__.get("_keras_vae_active_stream")
        if active is not None:
            self.train_function = fit_lib.stream_train_function(
                self, *active
            )
            return self.train_function
        return super().make_train_function(force=force)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        x = self._check_input(x)
        if isinstance(x, np.ndarray):
            y = self.check_labels(y, len(x), "y")
        if len(args) < 2:  # verbose not given by position
            # A live bar on a terminal, one line where stdout is a log.
            kwargs["verbose"] = progress.fit_verbose(
                kwargs.get("verbose", "auto"))
        return super().evaluate(x, y, *args, **kwargs)

    # -- user-facing methods ---------------------------------------------
    def _batches(self, x, batch_size):
        n = x.shape[0]
        step = batch_size or n
        for start in range(0, n, step):
            yield x[start:start + step]

    def _pairs(self, x, labels, batch_size):
        """(x batch, labels batch or None) tensors, in order."""
        step = batch_size or x.shape[0]
        for start in range(0, x.shape[0], step):
            yield (tf.constant(x[start:start + step]),
                   None if labels is None
                   else tf.constant(labels[start:start + step]))

    def _checked(self, x, labels):
        x = self.check_data(x)
        return x, self.check_labels(labels, len(x))

    def _graph_fn(self, name, builder):
        fns = self._functions()
        if name not in fns:
            fns[name] = builder()
        return fns[name]

    def _x_spec(self):
        return tf.TensorSpec((None,) + tuple(self.event_shape), tf.float32)

    def label_specs(self):
        """The labels' input signature of a graph function: [] for an
        unconditional model, [int32 (None,)] for a conditional one."""
        if self.num_classes is None:
            return []
        return [tf.TensorSpec((None,), tf.int32)]

    def encode(self, x, batch_size=1000, labels=None):
        """Returns q(z|x)'s parameters as numpy arrays, each
        (batch, ...): (z_mean, z_log_var) for the default posterior.
        A conditional model encodes q(z | x, y) for `labels` (N,)."""
        x, labels = self._checked(x, labels)
        # Eager: a trace would cost more than it saves on the small inputs
        # this is mostly called with (the export traces the same method).
        outs = [self.encode_graph(b, lb)
                for b, lb in self._pairs(x, labels, batch_size)]
        return tuple(
            np.concatenate([o[name].numpy() for o in outs])
            for name in self.posterior.param_names
        )

    def decode(self, z, labels=None):
        """Returns the distribution p(x|z) (a `tfd.Distribution`) for z of
        shape (batch, latent_dim); p(x | z, y) for a conditional model's
        `labels` (batch,)."""
        z = tf.convert_to_tensor(np.asarray(z, dtype="float32"))
        if len(z.shape) != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"`z` must have shape (batch, {self.latent_dim}). "
                f"Received: {tuple(z.shape)}"
            )
        labels = self.check_labels(labels, int(z.shape[0]))
        return self.likelihood.distribution(
            self._decode_params(z, labels=labels))

    def reconstruct(self, x, mode="mean", seed=None, labels=None):
        """Reconstructs x.

        Args:
            x: array (batch, *event_shape).
            mode: "mean": the mean of p(x|z) at z = E_q[z] (z_mean;
                deterministic); "sample": z ~ q(z|x), then x ~ p(x|z).
            seed: int, for mode="sample".
            labels: int array (batch,), a conditional model's labels (both
                q(z | x, y) and p(x | z, y) take them).
        """
        if mode not in ("mean", "sample"):
            raise ValueError(
                f"Unknown mode {mode!r}. Expected 'mean' or 'sample'."
            )
        if mode == "mean":
            x, labels = self._checked(x, labels)
            return np.concatenate([
                self.reconstruct_graph(b, lb).numpy()
                for b, lb in self._pairs(x, labels, 1000)
            ])
        params = [tf.constant(p) for p in self.encode(x, labels=labels)]
        seed = _seed_pair(seed)
        eps = tf.random.stateless_normal(
            self.posterior.noise_shape(params), seed=seed
        )
        z = self.posterior.reparameterize(params, eps)
        return np.asarray(self.decode(z, labels=labels).sample(seed=seed + 1))

    def sample(self, num_samples, seed=None, mode="mean", labels=None):
        """Generates data from the prior: z ~ p(z), then p(x|z).

        Args:
            num_samples: int >= 1.
            seed: int or None; the same seed gives the same samples.
            mode: "mean" returns the mean of p(x|z) (what image VAEs show);
                "sample" draws x ~ p(x|z).
            labels: a conditional model's classes to generate: one int for
                all samples, or an int array (num_samples,); the samples
                come from p(x | z, y).

        Returns:
            numpy array (num_samples, *event_shape).

        Examples:
            >>> cvae = build_mlp_vae((28, 28, 1), 16, num_classes=10)
            >>> cvae.sample(8, seed=0, labels=3).shape  # eight 3s
            (8, 28, 28, 1)
        """
        num_samples = _check_num_samples(num_samples)
        if mode not in ("mean", "sample"):
            raise ValueError(
                f"Unknown mode {mode!r}. Expected 'mean' or 'sample'."
            )
        if self.num_classes is not None and isinstance(
                labels, (int, np.integer)) and not isinstance(labels, bool):
            labels = np.full(num_samples, labels)
        labels = self.check_labels(labels, num_samples)
        out = self.sample_graph(
            tf.constant(num_samples, tf.int32), _seed_pair(seed),
            None if labels is None else tf.constant(labels))
        return out["x_mean" if mode == "mean" else "x_sample"].numpy()

    def elbo(self, x, num_samples=1, batch_size=500, labels=None):
        """Per-example ELBO estimate (nats) with `num_samples` draws, (batch,).

        The draws come from the sampling layer's generator; the KL is the
        closed form where the parts have one. Data-dependent likelihood
        heads score with their stored parameters (as the evaluation and the
        export do), so an example's ELBO does not depend on its batch. A
        conditional model gives the ELBO of log p(x | y) for `labels`.
        """
        num_samples = _check_num_samples(num_samples)
        x, labels = self._checked(x, labels)

        def build():
            def fn(x, *labels):
                labels = labels[0] if labels else None
                params = self.posterior_params(x, labels=labels)
                z, log_qz = self.sampler(params, num_samples=num_samples,
                                         add_kl=False, return_log_q=True)
                if num_samples == 1:
                    z, log_qz = z[None], log_qz[None]
                return self.elbo_terms_at(x, params, z, log_qz=log_qz,
                                          labels=labels)["elbo"]

            return tf.function(fn, input_signature=[self._x_spec()]
                               + self.label_specs())

        fn = self._graph_fn(f"elbo_{num_samples}", build)
        return np.concatenate([
            fn(b, *([] if lb is None else [lb])).numpy()
            for b, lb in self._pairs(x, labels, batch_size)])

    def log_weights(self, x, num_samples=1, seed=0, batch_size=500,
                    labels=None):
        """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x) for
        `num_samples` draws z_s ~ q(z|x) per example, numpy (S, batch).

        Their mean over s is an ELBO estimate; their log-mean-exp the IWAE
        bound. The draws are stateless in `seed`. A conditional model takes
        `labels` (both q and p(x|z) are conditioned on them).
        """
        num_samples = _check_num_samples(num_samples)
        x, labels = self._checked(x, labels)
        seed = _seed_pair(seed)

        def build():
            def fn(x, k, seed, *labels):
                labels = labels[0] if labels else None
                params = self.posterior_params(x, labels=labels)
                eps = tf.random.stateless_normal(
                    tf.concat([[k], self.posterior.noise_shape(params)], 0),
                    seed=seed)
                return self.score_draws(x, params, eps, labels)[0]

            return tf.function(fn, input_signature=[
                self._x_spec(), tf.TensorSpec((), tf.int32),
                tf.TensorSpec((2,), tf.int32)] + self.label_specs())

        fn = self._graph_fn("log_weights", build)
        return np.concatenate([
            fn(b, tf.constant(num_samples, tf.int32), seed + [0, i],
               *([] if lb is None else [lb])).numpy()
            for i, (b, lb) in enumerate(self._pairs(x, labels, batch_size))
        ], axis=1)

    def log_likelihood(self, x, num_samples=5000, batch_size=None,
                       verbose="auto", labels=None):
        """Importance-sampled estimate of log p(x) per example (nats).

        The IWAE bound with K = `num_samples` draws from q(z|x) (Burda et al.
        2016), computed in chunks so memory stays bounded. See
        `keras_vae.evaluation.log_likelihood` for details. A conditional
        model estimates log p(x | y) for `labels`.
        """
        from keras_vae import evaluation

        return evaluation.log_likelihood(
            self, x, num_samples=num_samples, batch_size=batch_size,
            verbose=verbose, labels=labels,
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
                "prior": keras.saving.serialize_keras_object(self.prior),
                "posterior": keras.saving.serialize_keras_object(
                    self.posterior
                ),
                "num_classes": self.num_classes,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "likelihood", "prior",
                    "posterior"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)

    def build(self, input_shape=None):
        self.built = True


def _check_num_samples(num_samples):
    return data_checks.check_int(num_samples, "num_samples")


def _seed_pair(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(
            seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an int or None. Received: {seed!r}")
    return priors_lib.seed_pair(seed)


def build_mlp_vae(
    input_shape, latent_dim, hidden_units=(500,), likelihood="bernoulli",
    activation="tanh", num_classes=None, **vae_kwargs,
):
    """An MLP VAE (AEVB / IWAE-paper style), ready to compile and fit.

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dim: int > 0.
        hidden_units: tuple of ints, default (500,); (200, 200) is the IWAE
            paper's 784-200-200-50 model with latent_dim=50.
        likelihood: name or `Likelihood`, default "bernoulli".
        activation: str, default "tanh".
        num_classes: None (default), or an int >= 2 for a conditional VAE:
            the one-hot label is appended to the encoder's input and to the
            decoder's z (see `VAE`).
        **vae_kwargs: beta, num_samples, seed, objective, free_bits,
            prior, posterior (the encoder's outputs are sized by the
            posterior's `params_size`).

    Examples:
        >>> vae = build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200))
        >>> cvae = build_mlp_vae((28, 28, 1), 16, num_classes=10)
    """
    latent_dim = networks.check_latent_dim(latent_dim)
    hidden_units = networks._check_units(hidden_units)
    head = likelihoods_lib.get(likelihood)
    posterior = vae_kwargs["posterior"] = posteriors_lib.get(
        vae_kwargs.get("posterior"))
    encoder = networks.build_mlp_encoder(
        input_shape, latent_dim, hidden_units, activation,
        posterior=posterior, num_classes=num_classes,
    )
    decoder = networks.build_mlp_decoder(
        latent_dim, input_shape, tuple(reversed(hidden_units)),
        activation, head, num_classes=num_classes,
    )
    return VAE(encoder, decoder, likelihood=head, num_classes=num_classes,
               **vae_kwargs)


def build_conv_vae(
    input_shape, latent_dim, likelihood="bernoulli", filters=(32, 64),
    dense_units=16, num_classes=None, **vae_kwargs,
):
    """The keras.io convolutional VAE, with a chosen likelihood.

    Args:
        input_shape: (height, width, channels), sides divisible by 4 with the
            default two stride-2 layers.
        latent_dim: int > 0 (keras.io uses 2).
        likelihood: name or `Likelihood`, default "bernoulli".
        filters: encoder filters; the decoder mirrors them.
        dense_units: width of the encoder's dense layer.
        num_classes: None (default), or an int >= 2 for a conditional VAE:
            the one-hot label is appended to the encoder's flattened
            feature maps and to the decoder's z (see `VAE`).
        **vae_kwargs: beta, num_samples, seed, objective, free_bits,
            prior, posterior (the encoder's outputs are sized by the
            posterior's `params_size`).
    """
    latent_dim = networks.check_latent_dim(latent_dim)
    head = likelihoods_lib.get(likelihood)
    posterior = vae_kwargs["posterior"] = posteriors_lib.get(
        vae_kwargs.get("posterior"))
    encoder = networks.build_conv_encoder(
        input_shape, latent_dim, filters, dense_units, posterior=posterior,
        num_classes=num_classes,
    )
    decoder = networks.build_conv_decoder(
        latent_dim, input_shape, tuple(reversed(tuple(filters))),
        likelihood=head, num_classes=num_classes,
    )
    return VAE(encoder, decoder, likelihood=head, num_classes=num_classes,
               **vae_kwargs)


def build_hierarchical_vae(
    input_shape, latent_dims=(100, 50),
    hidden_units=((200, 200), (100, 100)), likelihood="bernoulli",
    activation="tanh", **vae_kwargs,
):
    """A VAE with several stochastic layers: Burda et al. (2016)'s second
    MNIST architecture by default.

    Recognition model q(z_1 | x) q(z_2 | z_1) ... and generative model
    p(z_n) ... p(z_1 | z_2) p(x | z_1), every conditional a diagonal Gaussian
    from an MLP (p(x | z_1) from the likelihood head). The model's latent is
    the joint z = [z_1, ..., z_n]; its posterior is a
    `kv.posteriors.HierarchicalGaussian`, its prior a
    `kv.priors.HierarchicalPrior`, and the decoder reads z_1. With the
    defaults: x - 200 - 200 - z_1 (100) - 100 - 100 - z_2 (50), mirrored
    in the generative model, tanh.

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dims: tuple of ints, one per stochastic layer from the data
            upwards, decreasing; default (100, 50).
        hidden_units: one tuple of hidden widths per stochastic layer:
            hidden_units[0] between x and z_1 (encoder, and the decoder in
            reverse), hidden_units[l] between z_l and z_{l+1} (both ways).
            Default ((200, 200), (100, 100)).
        likelihood: name or `Likelihood`, default "bernoulli".
        activation: str, default "tanh".
        **vae_kwargs: beta, num_samples, seed, objective (the IWAE bound
            trains every layer), passed to `VAE`. `prior` and `posterior`
            are set by the builder.

    Examples:
        >>> vae = build_hierarchical_vae((28, 28, 1))
        >>> vae.latent_dim
        150
    """
    if vae_kwargs.get("num_classes") is not None:
        raise ValueError(
            "build_hierarchical_vae builds unconditional hierarchies; "
            "conditional models come from build_mlp_vae or build_conv_vae "
            f"(num_classes=C). Received num_classes="
            f"{vae_kwargs['num_classes']!r}."
        )
    for key in ("prior", "posterior"):
        if vae_kwargs.get(key) is not None:
            raise ValueError(
                f"build_hierarchical_vae sets the {key} (the hierarchy's "
                f"conditionals). Received {key}={vae_kwargs[key]!r}; build "
                "the parts yourself and call kv.VAE to combine others."
            )
    latent_dims = networks.check_latent_dims(latent_dims)
    hidden_units = networks.check_layer_units(
        hidden_units, len(latent_dims), "build_hierarchical_vae")
    head = likelihoods_lib.get(likelihood)
    posterior = posteriors_lib.HierarchicalGaussian(
        latent_dims, hidden_units[1:] or (), activation)
    prior = priors_lib.HierarchicalPrior(
        latent_dims, tuple(tuple(reversed(u)) for u in hidden_units[1:]),
        activation)
    latent_dim = sum(latent_dims)
    encoder = networks.build_mlp_encoder(
        input_shape, latent_dim, hidden_units[0], activation,
        posterior=posterior,
    )
    decoder = networks.build_layer_decoder(
        latent_dim, latent_dims[0], input_shape,
        tuple(reversed(hidden_units[0])), activation, head,
    )
    return VAE(encoder, decoder, likelihood=head, prior=prior,
               posterior=posterior, **vae_kwargs)
