"""Importance sampling: log p(x) and the IWAE bound, memory-bounded.

The draws are streamed a batch of examples and a chunk of samples at a time
through `VAE.log_likelihood_graph`, the chunked float64 log-mean-exp the
SavedModel export runs too (Burda, Grosse & Salakhutdinov 2016).
"""

import time

import numpy as np
import tensorflow as tf

from keras_vae import objectives
from keras_vae import progress
from keras_vae.evaluation.results import (
    LogLikelihoodResult,
    IWAEResult,
)
from keras_vae.evaluation._common import (
    check_num_samples,
    _check_positive_int,
    _check_optional_int,
    _check_seed,
    _prepare_labelled,
    _label_args,
    _label_specs,
    _encode,
    _check_proposal,
    _quiet,
    _x_spec,
    _param_specs,
    _kl_terms,
)


#: Floats of the decoder's widest layer held by one importance-sampling
#: step: about 64 MB of float32, a few times that with the other layers and
#: the log-probabilities.
DEFAULT_MAX_VALUES = 2**24


def _event_size(model):
    return int(np.prod(model.event_shape))


def _values_per_draw(model):
    """Floats one latent draw occupies in the widest layer of the decoder.

    For an MLP that is the output (the likelihood's parameters); for a
    convolutional decoder an inner feature map can be many times larger
    (28 x 28 x 32 against 784 for the keras.io decoder), and it is what
    fills memory.
    """
    sizes = [model.likelihood.params_size(model.event_shape),
             _event_size(model)]
    for layer in getattr(model.decoder, "layers", ()):
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError, RuntimeError):
            continue  # a subclassed decoder or a shared layer: no one shape
        if len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
            sizes.append(int(np.prod(shape[1:])))
    return max(sizes)


def _plan(model, n, k, batch_size, chunk_size, max_values):
    """Examples per step and draws per step that keep memory bounded.

    One step decodes batch * chunk latent draws, each taking as many floats
    as the decoder's widest layer; both are cut until that fits in
    `max_values`, whatever
    the caller asked for, so a large batch is split instead of failing.
    """
    per_draw = _values_per_draw(model)
    max_draws = max(1, int(max_values) // per_draw)
    chunk = min(k, max_draws, chunk_size or k)
    batch = max(1, max_draws // chunk)
    if batch_size is not None:
        batch = min(batch, batch_size)
    return min(batch, n), chunk


def _importance_fn(model):
    """tf.function (x, params, k, chunk, seed, offset) -> float64 (B,)
    log p(x) estimate, mean log w and mean log p(x|z) over k draws.

    `VAE.log_likelihood_graph` (the chunked float64 log-mean-exp the export
    also runs) with the evaluation's noise: chunk c draws
    stateless_normal([kc, B, latent_dim], seed=[seed, offset + c]).
    """

    def build():
        @tf.function(input_signature=[
            _x_spec(model), _param_specs(model), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int64),
            tf.TensorSpec([], tf.int64)] + _label_specs(model))
        def fn(x, params, k, chunk, seed, offset, *labels):
            shape = model.posterior.noise_shape(params)  # (B, L)

            def noise(c, kc):
                pair = tf.stack([seed, offset + tf.cast(c, tf.int64)])
                return tf.random.stateless_normal(
                    tf.concat([[kc], shape], 0), seed=pair)  # (kc, B, L)

            return model.log_likelihood_graph(
                x, params, k, chunk, noise,
                labels=labels[0] if labels else None)

        return _quiet(fn)

    return model._graph_fn("evaluation_importance", build)


def _importance_sample(model, x, k, seed, batch_size, chunk_size, verbose,
                       proposal, max_values, labels=None):
    """Streams K draws per example through the decoder.

    Returns float64 arrays (N,): the IWAE estimate L_K, the mean of
    log p(x|z_k), the mean of log w_k, and the KL (closed form where the
    parts have one, else the Monte-Carlo estimate from the same draws). The
    log-sum-exp over K runs in float64 across chunks, so log-weights
    hundreds of nats from zero lose nothing.
    """
    n = len(x)
    batch, chunk = _plan(model, n, k, batch_size, chunk_size, max_values)
    num_chunks = -(-k // chunk)
    steps = -(-n // batch)
    show = (verbose == "auto" and steps > 1) or verbose in (1, True)
    bar = progress.Progress(
        steps, f"importance sampling, K = {k}") if show else None
    fn = _importance_fn(model)
    log_px = np.empty(n, np.float64)
    mean_log_px_z = np.empty(n, np.float64)
    mean_log_w = np.empty(n, np.float64)
    for b, start in enumerate(range(0, n, batch)):
        stop = min(start + batch, n)
        values = fn(
            tf.constant(x[start:stop]),
            [tf.constant(p[start:stop]) for p in proposal],
            tf.constant(k, tf.int32), tf.constant(chunk, tf.int32),
            tf.constant(seed, tf.int64),
            tf.constant(b * num_chunks, tf.int64),
            *_label_args(labels, start, stop),
        )
        log_px[start:stop], mean_log_w[start:stop], \
            mean_log_px_z[start:stop] = (v.numpy() for v in values)
        if bar is not None:
            bar.update(b + 1)
    kl, _ = _kl_terms(model, proposal)
    if kl is None:
        kl = mean_log_px_z - mean_log_w
    bad = ~np.isfinite(log_px) | ~np.isfinite(mean_log_px_z)
    if bad.any():
        rows = np.nonzero(bad)[0][:5].tolist()
        raise ValueError(
            f"The model's {type(model.likelihood).__name__} likelihood gives "
            f"a non-finite log-probability for {int(bad.sum())} examples "
            f"(first: {rows}): it cannot score this data. Check that the "
            "data lie in the likelihood's support and that the model's "
            "outputs are finite."
        )
    return log_px, mean_log_px_z, mean_log_w, kl


def log_likelihood(model, x, num_samples=5000, batch_size=None,
                   chunk_size=None, seed=0, verbose="auto", proposal=None,
                   max_values=DEFAULT_MAX_VALUES, labels=None):
    """Importance-sampled log p(x) per example, in nats.

    Memory is bounded: examples are taken a batch at a time and their K
    samples a chunk at a time, both cut so that one step decodes at most
    `max_values` numbers (a `batch_size` that would not fit is split, not
    refused), and the log-sum-exp over K is accumulated in float64 across
    chunks.

    Args:
        model: a `keras_vae.VAE`.
        x: array (N, *event_shape).
        num_samples: K >= 1, default 5000.
        batch_size: at most this many examples per step; chosen from the
            memory budget when None.
        chunk_size: importance samples per step; as many as fit when None.
        seed: int, seed of the importance samples.
        verbose: "auto" (a progress bar for more than one step), 0 or 1.
        proposal: optional tuple of the posterior's parameters, arrays
            (N, ...) ((z_mean, z_log_var) for the diagonal Gaussian): a
            proposal per example to use instead of the encoder's q(z|x),
            e.g. `refine(...).params`.
        max_values: int, decoder outputs per step (memory budget).
        labels: int array (N,), a conditional model's labels: the estimate
            is then of log p(x | y), with q(z | x, y) as the proposal.

    Returns:
        `LogLikelihoodResult` with `.values` (N,), `.mean`, `.stderr`, and
        `.reconstruction`, `.kl`, `.elbo` from the same draws.

    Raises:
        ValueError: K < 1 or not an int; data that does not fit the model or
            that its likelihood cannot score.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> result = log_likelihood(vae, x_test[:50], num_samples=500,
        ...                         verbose=0)
        >>> # Untrained, the decoder gives each of 784 pixels about 1/2:
        >>> # log p(x) is near 784 log(1/2) = -543.4 nats.
        >>> print(f"{result.mean:.2f} +- {result.stderr:.2f} nats")
        -54... +- 0... nats

    Reference: Burda, Grosse & Salakhutdinov 2016, "Importance Weighted
    Autoencoders", section 5 (K = 5000).
    """
    k = check_num_samples(num_samples)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    chunk_size = _check_optional_int(chunk_size, "chunk_size",
                                     "samples per step")
    seed = _check_seed(seed)
    max_values = _check_positive_int(max_values, "max_values",
                                     "decoder outputs per step")
    x, labels = _prepare_labelled(model, x, labels)
    proposal = (_encode(model, x, labels) if proposal is None
                else _check_proposal(model, x, proposal))
    start = time.perf_counter()
    log_px, reconstruction, _, kl = _importance_sample(
        model, x, k, seed, batch_size, chunk_size, verbose, proposal,
        max_values, labels,
    )
    return LogLikelihoodResult(
        values=log_px, num_samples=k, reconstruction=reconstruction, kl=kl,
        seconds=time.perf_counter() - start,
    )


def iwae_bound(model, x, k, seed=0, batch_size=None, verbose=0,
               labels=None):
    """The IWAE bound L_k and the ELBO, per example, from the same k draws.

    L_k = log (1/k) sum_j w_j with w_j = p(x|z_j) p(z_j) / q(z_j|x) and
    z_j ~ q(z|x) (`objectives.log_importance_weights`). By Jensen's
    inequality (1/k) sum_j log w_j <= L_k for every set of draws, with
    equality at k = 1; E[L_k] grows with k towards log p(x) (Burda et al.
    2016, theorem 1).

    Args:
        model: a `keras_vae.VAE`.
        x: array (N, *event_shape).
        k: int >= 1, any size (draws are streamed in chunks).
        seed: int.
        batch_size: at most this many examples per step.
        verbose: 0, 1 or "auto".
        labels: int array (N,), a conditional model's labels.

    Returns:
        `IWAEResult` with `.iwae`, `.elbo` (Monte-Carlo KL, same draws) and
        `.elbo_analytic_kl`, each (N,) float64 nats.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> r = iwae_bound(vae, x_test[:100], k=50)
        >>> bool(r.iwae.mean() >= r.elbo.mean())
        True
    """
    k = check_num_samples(k, "k")
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x, labels = _prepare_labelled(model, x, labels)
    proposal = _encode(model, x, labels)
    log_px, reconstruction, mean_log_w, kl = _importance_sample(
        model, x, k, seed, batch_size, None, verbose, proposal,
        DEFAULT_MAX_VALUES, labels,
    )
    elbo_analytic = objectives.elbo(
        tf.constant(reconstruction), tf.constant(kl)
    ).numpy()
    return IWAEResult(iwae=log_px, elbo=mean_log_w,
                      elbo_analytic_kl=elbo_analytic, num_samples=k)
