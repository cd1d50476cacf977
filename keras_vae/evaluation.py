"""Evaluation: importance-sampled log-likelihood and diagnostics.

The training loss is a bound. What papers report is log p(x), estimated by
importance sampling with the encoder's q(z|x) as proposal:

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x),

the IWAE bound with K samples (Burda et al. 2016), which approaches log p(x)
from below as K grows. K = 5000 is the usual reporting protocol.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_vae import objectives


@dataclasses.dataclass
class LogLikelihoodResult:
    """Per-example log p(x) estimates (nats) and their summary.

    Attributes:
        values: numpy (N,) per-example estimates.
        num_samples: K importance samples per example.
        mean: mean over examples.
        stderr: standard error of the mean across examples.
    """

    values: np.ndarray
    num_samples: int

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def stderr(self):
        n = len(self.values)
        return float(np.std(self.values, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def check_num_samples(num_samples, name="num_samples"):
    """Raises ValueError unless `num_samples` is an int >= 1."""
    if isinstance(num_samples, bool) or not isinstance(
        num_samples, (int, np.integer)
    ) or num_samples < 1:
        raise ValueError(
            f"`{name}` (K, the number of importance samples) must be an int "
            f">= 1. Received: {name}={num_samples!r}"
        )
    return int(num_samples)


def _log_weights_fn(model):
    fn = getattr(model, "_log_weights_tf_fn", None)
    if fn is None:

        @tf.function(reduce_retracing=True)
        def fn(x, k, seed):
            # x: (B, *event_shape) -> log importance weights (k, B).
            z_mean, z_log_var = model.encoder(x, training=False)
            z_mean = tf.cast(z_mean, "float32")
            z_log_var = tf.cast(z_log_var, "float32")
            eps = tf.random.stateless_normal(
                tf.concat([[k], tf.shape(z_mean)], 0), seed=seed
            )
            z = z_mean + tf.exp(0.5 * z_log_var) * eps  # (k, B, latent_dim)
            params = model._decode_params(z, training=False)
            log_px_z = model.likelihood.distribution(params, x).log_prob(x)
            return objectives.log_importance_weights(
                log_px_z, z, z_mean, z_log_var
            )

        model._log_weights_tf_fn = fn
    return fn


def log_likelihood(model, x, num_samples=5000, batch_size=None,
                   chunk_size=None, seed=0, verbose="auto"):
    """Importance-sampled log p(x) per example, in nats.

    Memory is bounded: examples are taken `batch_size` at a time and their K
    samples `chunk_size` at a time, and the log-sum-exp over K is accumulated
    in float64 across chunks, so the peak does not grow with K beyond one
    chunk.

    Args:
        model: a `keras_vae.VAE`.
        x: array (N, *event_shape).
        num_samples: K >= 1, default 5000.
        batch_size: examples per step; chosen so that one step holds about
            2**20 latent samples when None.
        chunk_size: importance samples per step, default min(K, 1000).
        seed: int, seed of the importance samples.
        verbose: "auto" (a progress bar for more than one step), 0 or 1.

    Returns:
        `LogLikelihoodResult` with `.values` (N,), `.mean`, `.stderr`.

    Raises:
        ValueError: K < 1 or not an int; data that does not fit the model.
    """
    k = check_num_samples(num_samples)
    x = model.check_data(x)
    chunk = min(k, int(chunk_size or 1000))
    if batch_size is None:
        batch_size = max(1, min(len(x), (2**20) // chunk))
    batch_size = int(batch_size)
    fn = _log_weights_fn(model)
    n = len(x)
    steps = -(-n // batch_size) * -(-k // chunk)
    show = (verbose == "auto" and steps > 1) or verbose == 1
    bar = keras.utils.Progbar(steps, unit_name="step") if show else None
    values = np.empty(n, dtype=np.float64)
    done = 0
    for start in range(0, n, batch_size):
        xb = tf.constant(x[start:start + batch_size])
        total = None  # running log-sum-exp over samples, float64 (B,)
        for c, first in enumerate(range(0, k, chunk)):
            kc = min(chunk, k - first)
            seed_pair = tf.constant([seed, start * 7919 + c], tf.int32)
            log_w = tf.cast(fn(xb, tf.constant(kc), seed_pair), tf.float64)
            part = tf.reduce_logsumexp(log_w, axis=0)
            total = part if total is None else tf.reduce_logsumexp(
                tf.stack([total, part]), axis=0
            )
            done += 1
            if bar is not None:
                bar.update(done)
        values[start:start + len(xb)] = (total - np.log(k)).numpy()
    return LogLikelihoodResult(values=values, num_samples=k)
