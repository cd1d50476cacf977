"""Baseline (a): a plain Keras 3 VAE, written the way the keras.io example writes it.

The reference is the keras.io code example "Variational AutoEncoder"
(fchollet; examples/generative/vae.py): a `Sampling` layer that owns a
`keras.random.SeedGenerator`, functional encoder and decoder models, and a
`VAE(keras.Model)` whose `train_step` computes the loss under a
`tf.GradientTape`, with `keras.metrics.Mean` trackers, trained by
`model.fit` on a numpy array. Nothing of keras_vae is used.

Two architectures, the same layers and default initialisers (glorot_uniform
kernels, zero biases) as keras_vae builds:

- "mlp": 784-200-200-50, tanh, Bernoulli decoder (the IWAE-paper MLP),
  latent_dim 50.
- "conv": the keras.io architecture (Conv2D 32 and 64, 3x3, stride 2, relu,
  "same"; Dense 16 relu; decoder Dense 7*7*64, two Conv2DTranspose stride 2,
  one Conv2DTranspose to 1 channel), latent_dim 2 as keras.io uses.

Departures from keras.io, both deliberate:

- The decoder outputs logits and the loss is
  `binary_crossentropy(x, logits, from_logits=True)`, where keras.io puts a
  sigmoid on the last layer and takes the cross-entropy of probabilities. The
  objective is the same (Bernoulli log-likelihood summed over pixels); the
  logit form is the numerically stable one and what keras_vae's Bernoulli
  head computes, so the two Keras implementations do the same arithmetic.
- Training data are the 60,000 MNIST training images (keras.io concatenates
  train and test), as grey values x / 255 with cross-entropy, like keras.io
  (no binarization), batch 100.

Run (prints one JSON line starting with BENCHMARK_RESULT):

    .venv/bin/python benchmarks/baselines/plain_keras_vae.py --arch mlp --steps 600
    .venv/bin/python benchmarks/baselines/plain_keras_vae.py --arch conv --steps 600 \
        --steps-per-execution 50
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from keras import ops  # noqa: E402

import _common  # noqa: E402
from _keras_timing import timed_fit  # noqa: E402

ARCHS = ("mlp", "conv")
LATENT_DIM = {"mlp": 50, "conv": 2}


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, seed=1337, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build_encoder(arch, latent_dim, seed):
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    if arch == "mlp":
        x = layers.Flatten()(encoder_inputs)
        x = layers.Dense(200, activation="tanh")(x)
        x = layers.Dense(200, activation="tanh")(x)
    else:
        x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
        x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling(seed=seed)([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(arch, latent_dim):
    latent_inputs = keras.Input(shape=(latent_dim,))
    if arch == "mlp":
        x = layers.Dense(200, activation="tanh")(latent_inputs)
        x = layers.Dense(200, activation="tanh")(x)
        x = layers.Dense(28 * 28)(x)
        # (batch, 784) -> (batch, 28, 28, 1): the same loss line serves both archs.
        decoder_outputs = layers.Reshape((28, 28, 1))(x)
    else:
        x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
        x = layers.Reshape((7, 7, 64))(x)
        x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
        x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
        decoder_outputs = layers.Conv2DTranspose(1, 3, padding="same")(x)  # logits
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [
            self.total_loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
        ]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(
                    keras.losses.binary_crossentropy(data, reconstruction, from_logits=True),
                    axis=(1, 2),
                )
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build(arch, seed=1337, steps_per_execution=1):
    """A compiled keras.io-style VAE for `arch` ("mlp" or "conv"), Adam(1e-3)."""
    if arch not in ARCHS:
        raise ValueError(f"Unknown arch {arch!r}. Expected one of {list(ARCHS)}.")
    keras.utils.set_random_seed(seed)
    latent_dim = LATENT_DIM[arch]
    vae = VAE(build_encoder(arch, latent_dim, seed), build_decoder(arch, latent_dim))
    vae.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        steps_per_execution=steps_per_execution,
    )
    return vae


def run(arch, steps=600, batch_size=100, steps_per_execution=1, warmup_steps=None,
        seed=1337, x=None, verbose=0):
    """Train for `steps` timed steps after a warm-up; return the timing dict.

    x: float32 images in [0, 1], shape (n, 28, 28) or (n, 28, 28, 1); MNIST
    train by default. Needs n >= steps * batch_size.
    """
    if x is None:
        x = _common.load_mnist_grey()
    x = np.asarray(x, dtype="float32").reshape(-1, 28, 28, 1)
    if warmup_steps is None:
        warmup_steps = max(50, 2 * steps_per_execution)
    if steps * batch_size > len(x):
        raise ValueError(
            f"steps * batch_size = {steps * batch_size} exceeds the {len(x)} examples."
        )
    vae = build(arch, seed=seed, steps_per_execution=steps_per_execution)
    x_timed = x[: steps * batch_size]
    result = timed_fit(
        vae,
        warmup_fit=dict(x=x[: warmup_steps * batch_size], batch_size=batch_size, epochs=1),
        timed_fit_kwargs=dict(x=x_timed, batch_size=batch_size, epochs=1, shuffle=True),
        steps=steps,
        batch_size=batch_size,
        verbose=verbose,
    )
    result.update(
        impl="plain_keras",
        arch=arch,
        latent_dim=LATENT_DIM[arch],
        batch_size=batch_size,
        steps_per_execution=steps_per_execution,
        warmup_steps=warmup_steps,
        verbose=verbose,
        num_params=int(vae.encoder.count_params() + vae.decoder.count_params()),
        peak_rss_mib=_common.peak_rss_mib(),
        versions={
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        threads={
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
    )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHS, default="mlp")
    parser.add_argument("--steps", type=int, default=600, help="timed training steps")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--data", default=None, help="path to mnist.npz")
    parser.add_argument("--verbose", type=int, default=0, help="fit's verbose for the timed epoch")
    args = parser.parse_args(argv)
    result = run(
        args.arch,
        steps=args.steps,
        batch_size=args.batch_size,
        steps_per_execution=args.steps_per_execution,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        x=_common.load_mnist_grey(args.data),
        verbose=args.verbose,
    )
    _common.emit(result)


if __name__ == "__main__":
    main()
