"""The ELBO and IWAE maths: the one place in keras_vae where they live.

Every quantity is per example, in nats, summed over event (data or latent)
dimensions. Shapes: a leading `num_samples` axis S for Monte-Carlo draws,
then the batch axis B.

    log p(x) = ELBO(x) + KL(q(z|x) || p(z|x))
    ELBO(x)  = E_q[log p(x|z)] - KL(q(z|x) || p(z))

References:
    Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (AEVB).
    Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders".
    Kingma et al. 2016, "Improved Variational Inference with Inverse
    Autoregressive Flow" (free bits).
"""

import math

import numpy as np
import tensorflow as tf

from keras_vae.data import checks

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(z_mean, z_log_var):
    """Closed-form KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example.

    Args:
        z_mean: tensor (..., latent_dim).
        z_log_var: tensor of the same shape.

    Returns:
        Tensor (...,): the KL summed over latent dimensions, in nats.
    """
    return tf.reduce_sum(gaussian_kl_per_dim(z_mean, z_log_var), axis=-1)


def full_gaussian_kl(z_mean, scale_tril):
    """Closed-form KL(N(z_mean, S S^T) || N(0, I)) per example, S lower
    triangular with a positive diagonal:

        0.5 * (||S||_F^2 + ||z_mean||^2 - L) - sum_i log S_ii

    Args:
        z_mean: tensor (..., L).
        scale_tril: tensor (..., L, L).

    Returns:
        Tensor (...,), nats.
    """
    latent_dim = tf.cast(tf.shape(z_mean)[-1], z_mean.dtype)
    return (0.5 * (tf.reduce_sum(tf.square(scale_tril), axis=[-2, -1])
                   + tf.reduce_sum(tf.square(z_mean), axis=-1) - latent_dim)
            - tf.reduce_sum(tf.math.log(tf.linalg.diag_part(scale_tril)),
                            axis=-1))


def gaussian_kl_per_dim(z_mean, z_log_var):
    """KL of each latent dimension, shape (..., latent_dim), in nats."""
    z_mean = tf.convert_to_tensor(z_mean)
    z_log_var = tf.cast(z_log_var, z_mean.dtype)
    return 0.5 * (tf.exp(z_log_var) + tf.square(z_mean) - 1.0 - z_log_var)


def free_bits_kl(z_mean, z_log_var, free_bits, groups=None):
    """The free-bits KL penalty of a diagonal Gaussian against N(0, I).

    `floor_kl` applied to `gaussian_kl_per_dim(z_mean, z_log_var)`; returns
    a scalar.
    """
    return floor_kl(gaussian_kl_per_dim(z_mean, z_log_var), free_bits,
                    groups=groups)


def floor_kl(kl_per_dim, free_bits, groups=None):
    """The KL penalty with a floor of `free_bits` nats per latent dimension.

    The KL of each dimension is averaged over the batch first and the floor
    applied to that average (Kingma et al. 2016, eq. 15): below the floor the
    optimiser is not asked to shrink it further. Returns a scalar.

    Args:
        kl_per_dim: tensor (..., latent_dim), the KL of each latent
            dimension for each example.
        free_bits: float >= 0, nats per dimension (or per group).
        groups: None (default, one group per dimension) or an int G: the
            latent dimensions are split into G equal contiguous groups and
            the floor applies to each group's summed KL instead (the grouped
            form of the same equation).
    """
    kl_per_dim = tf.reduce_mean(
        kl_per_dim, axis=tuple(range(len(kl_per_dim.shape) - 1)),
    )  # (latent_dim,)
    if groups is not None:
        latent_dim = int(kl_per_dim.shape[-1])
        check_free_bits_groups(groups, latent_dim)
        # (latent_dim,) -> (groups, latent_dim // groups) -> (groups,)
        kl_per_dim = tf.reduce_sum(
            tf.reshape(kl_per_dim, [groups, latent_dim // groups]), axis=-1
        )
    return tf.reduce_sum(tf.maximum(kl_per_dim, free_bits))


def check_free_bits_groups(groups, latent_dim=None):
    """Raises ValueError unless `groups` is None or an int >= 1 dividing
    `latent_dim` (when given)."""
    if groups is None:
        return None
    groups = checks.check_int(
        groups, "free_bits_groups",
        alternative="None (one group per latent dimension)")
    if latent_dim is not None and latent_dim % groups:
        raise ValueError(
            f"`free_bits_groups`={groups} does not divide latent_dim="
            f"{latent_dim}: the latent dimensions are split into equal "
            "contiguous groups. Choose a divisor of latent_dim."
        )
    return groups


# Range of z_log_var inside which `soft_clamp_log_var` is the identity, and
# the margin over which it saturates beyond it. exp(z_log_var) spans
# [1e-13, 2.2e4] there, far wider than any useful posterior variance against
# an N(0, I) prior; beyond it the exp() in the sampler, the KL and the
# importance weights overflow (float16 overflows at exp(11), float32 at
# exp(88)).
Z_LOG_VAR_RANGE = (-30.0, 10.0)
Z_LOG_VAR_SOFTNESS = 5.0


def soft_clamp_log_var(z_log_var, low=Z_LOG_VAR_RANGE[0],
                       high=Z_LOG_VAR_RANGE[1], softness=Z_LOG_VAR_SOFTNESS):
    """Keeps z_log_var in (low - softness, high + softness), smoothly.

    The identity on [low, high]; outside, `high + softness * tanh((v - high)
    / softness)` (and the mirror image below `low`), whose value, slope (1)
    and curvature (0) match the identity at the boundary. A model whose
    z_log_var stays in [low, high] is unchanged, bit for bit; one that drifts
    out gets a bounded variance and a gradient that fades instead of an
    overflow.

    Args:
        z_log_var: tensor, any shape and float dtype.
        low, high: floats, low < high. Defaults `Z_LOG_VAR_RANGE`.
        softness: float > 0, width of the saturating margin.

    Returns:
        Tensor of the same shape and dtype.
    """
    z_log_var = tf.convert_to_tensor(z_log_var)
    dtype = z_log_var.dtype
    low = tf.constant(low, dtype)
    high = tf.constant(high, dtype)
    softness = tf.constant(softness, dtype)
    above = high + softness * tf.tanh((z_log_var - high) / softness)
    below = low + softness * tf.tanh((z_log_var - low) / softness)
    return tf.where(
        z_log_var > high, above, tf.where(z_log_var < low, below, z_log_var)
    )


def log_normal_diag(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var))), summed over the last axis."""
    return -0.5 * tf.reduce_sum(
        LOG_2PI + log_var + tf.square(z - mean) * tf.exp(-log_var), axis=-1
    )


def log_normal_diag_components(z, means, log_vars):
    """log N(z; means[k], diag(exp(log_vars[k]))) for K Gaussians at once.

    z: (..., L); means, log_vars: (K, L). Returns (..., K) in z's dtype.

    The quadratic form is expanded, sum_l (z_l - m_kl)^2 / v_kl =
    z^2 @ (1/v)^T - 2 z @ (m/v)^T + sum_l m_kl^2 / v_kl, so that it is two
    matrix products instead of a (..., K, L) tensor: the memory of a
    mixture prior's log density is then K numbers per draw, not K * L. The
    expansion subtracts large terms when a component is narrow, so it is
    computed in float64 (its error is then ~1e-16 of sum z^2 / v, against
    ~1e-7 in float32) and cast back.
    """
    z = tf.convert_to_tensor(z)
    z64 = tf.cast(z, tf.float64)
    means = tf.cast(means, tf.float64)
    log_vars = tf.cast(log_vars, tf.float64)
    precision = tf.exp(-log_vars)  # (K, L)
    flat = tf.reshape(z64, [-1, tf.shape(z64)[-1]])  # (N, L)
    quad = (tf.linalg.matmul(tf.square(flat), precision, transpose_b=True)
            - 2.0 * tf.linalg.matmul(flat, means * precision,
                                     transpose_b=True)
            + tf.reduce_sum(tf.square(means) * precision, axis=-1))
    const = tf.reduce_sum(LOG_2PI + log_vars, axis=-1)  # (K,)
    out = -0.5 * (const + quad)  # (N, K)
    out = tf.reshape(out, tf.concat([tf.shape(z64)[:-1], [-1]], axis=0))
    return tf.cast(out, z.dtype)


def log_standard_normal(z):
    """log N(z; 0, I), summed over the last axis."""
    return -0.5 * tf.reduce_sum(LOG_2PI + tf.square(z), axis=-1)


def kl_divergence(posterior, params, prior, z=None, log_qz=None):
    """KL(q(z|x) || p(z)) per example, (B,), in nats.

    The closed form when the posterior head has one against this prior
    (`posterior.kl_divergence(params, prior)`, e.g. a diagonal Gaussian
    against N(0, I)); otherwise the Monte-Carlo estimate
    log q(z|x) - log p(z) from the draws `z`, averaged over their leading
    sample axis. The estimate is unbiased and its gradient is the
    reparameterization gradient of the KL (Kingma & Welling 2014, eq. 6).

    Args:
        posterior: a `keras_vae.posteriors.Posterior`.
        params: the posterior's parameter tensors, each (B, ...).
        prior: a `keras_vae.priors.Prior`.
        z: draws from q, (B, latent_dim) or (S, B, latent_dim); needed only
            when there is no closed form.
        log_qz: log q(z|x) of those draws, (B,) or (S, B), when the caller
            has it from the draw itself (`posterior.sample_and_log_prob`);
            None recomputes it from z with `posterior.log_prob`. A flow
            posterior needs it: its density at a given z costs an inversion.

    Raises:
        ValueError: no closed form and no draws given.
    """
    kl = posterior.kl_divergence(params, prior)
    if kl is not None:
        return kl
    if z is None:
        raise ValueError(
            f"{type(posterior).__name__} has no closed-form KL against "
            f"{type(prior).__name__}; pass the draws z for the Monte-Carlo "
            "estimate."
        )
    if log_qz is None:
        log_qz = posterior.log_prob(params, z)
    log_ratio = log_qz - prior.log_prob(z)
    return expected_log_likelihood(log_ratio)


def elbo(log_px_z, kl):
    """Monte-Carlo ELBO per example.

    Args:
        log_px_z: (S, B) log p(x|z_s) for S draws z_s ~ q(z|x), or (B,).
        kl: (B,) KL(q(z|x) || p(z)) (`kl_divergence`).

    Returns:
        (B,) the average over draws of log p(x|z) minus the KL.
    """
    return expected_log_likelihood(log_px_z) - kl


def expected_log_likelihood(log_px_z):
    """E_q[log p(x|z)] estimated by the mean over the leading sample axis."""
    if len(log_px_z.shape) >= 2:
        return tf.reduce_mean(log_px_z, axis=0)
    return log_px_z


def log_importance_weights(log_px_z, log_pz, log_qz):
    """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x), shape (S, B).

    Its mean over s is the single-sample ELBO estimate with a Monte-Carlo
    KL; its log-mean-exp the IWAE bound (`iwae_bound`).
    """
    return log_px_z + log_pz - log_qz


def log_mean_exp(values, axis=0):
    """log (1/K) sum_k exp(values_k) along `axis`, computed in float64.

    A logsumexp in float64 keeps the sum exact when the values are
    hundreds of nats from zero, as log importance weights are. Returns
    float64.
    """
    values = tf.cast(values, tf.float64)
    k = tf.cast(tf.shape(values)[axis], tf.float64)
    return tf.reduce_logsumexp(values, axis=axis) - tf.math.log(k)


def iwae_bound(log_weights):
    """The importance-weighted bound L_K = log (1/K) sum_k w_k per example.

    Args:
        log_weights: (K, B) log importance weights.

    Returns:
        (B,) float32 (`log_mean_exp` in float64, then cast). With K = 1 it
        is the single-draw ELBO estimate; it grows with K towards log p(x)
        (Burda et al. 2016, theorem 1).
    """
    return tf.cast(log_mean_exp(log_weights, axis=0), tf.float32)


def chunked_log_mean_exp(chunk_fn, num_samples, chunk_size, batch_size,
                         num_extras=0):
    """`log_mean_exp` over K values produced a chunk at a time, in graph.

    The running log-sum-exp is kept in float64 across chunks, so memory
    grows with batch * chunk_size, not with K, and nothing is lost when the
    values are hundreds of nats from zero. The loop is a `tf.while_loop`:
    K and the chunk size may be tensors.

    Args:
        chunk_fn: callable (c, kc) -> (values, extras): for chunk index c
            (int32 scalar) and its kc draws, `values` (kc, B) and a tuple of
            `num_extras` further (kc, B) tensors whose means over the K
            draws are wanted too (e.g. log p(x|z)).
        num_samples: K >= 1, int or int32 scalar tensor.
        chunk_size: draws per chunk, int or int32 scalar tensor.
        batch_size: B, int or int32 scalar tensor.
        num_extras: int, the length of `extras`.

    Returns:
        (log_mean_exp (B,), mean of values (B,), [mean of each extra (B,)]),
        all float64.
    """
    k_total = tf.convert_to_tensor(num_samples, tf.int32)
    chunk = tf.convert_to_tensor(chunk_size, tf.int32)
    num_chunks = (k_total + chunk - 1) // chunk
    zeros = tf.zeros(tf.reshape(batch_size, [1]), tf.float64)

    def body(c, total, sums):
        kc = tf.minimum(chunk, k_total - c * chunk)
        values, extras = chunk_fn(c, kc)
        values = tf.cast(values, tf.float64)
        part = tf.reduce_logsumexp(values, axis=0)
        total = tf.reduce_logsumexp(tf.stack([total, part]), axis=0)
        new_sums = [sums[0] + tf.reduce_sum(values, axis=0)] + [
            s + tf.reduce_sum(tf.cast(e, tf.float64), axis=0)
            for s, e in zip(sums[1:], extras)
        ]
        return c + 1, total, new_sums

    _, total, sums = tf.while_loop(
        lambda c, *_: c < num_chunks,
        body,
        [tf.constant(0, tf.int32), zeros - np.inf,
         [zeros] * (1 + num_extras)],
        parallel_iterations=1,
    )
    k = tf.cast(k_total, tf.float64)
    return total - tf.math.log(k), sums[0] / k, [s / k for s in sums[1:]]


def weighted_loss(reconstruction, kl_penalty, extra_losses=()):
    """The training loss: -mean reconstruction term + weighted KL penalty.

    Args:
        reconstruction: (B,) the reconstruction term E_q[log p(x|z)].
        kl_penalty: scalar, the (possibly weighted, possibly floored) batch
            mean KL as added by `Sampling`.
        extra_losses: further scalar losses (weight regularisers).
    """
    loss = -tf.reduce_mean(reconstruction) + kl_penalty
    for extra in extra_losses:
        loss = loss + tf.cast(extra, loss.dtype)
    return loss
