"""Evaluation: log p(x), the gaps around the ELBO, and diagnostics.

The training loss is a bound. What papers report is log p(x), estimated by
importance sampling with the encoder's q(z|x) as proposal:

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x),

the IWAE bound with K samples (Burda et al. 2016), which approaches log p(x)
from below as K grows. K = 5000 is the usual reporting protocol.

With log p(x) measured, the identity log p(x) = ELBO + KL(q(z|x) || p(z|x))
can be read off a trained model, and the gap split further (Cremer et al.
2018) into

    log p(x) - ELBO(q_encoder) = [log p(x) - ELBO(q*)]          approximation
                               + [ELBO(q*) - ELBO(q_encoder)]   amortization

where q* is the best Gaussian for each example on its own, found here by
`refine` (gradient ascent on that example's ELBO, decoder fixed).

Functions:
    log_likelihood   importance-sampled log p(x), chunked, with a stderr
    iwae_bound       the IWAE bound and the ELBO from the same K draws
    mean_vs_sample   E_q[log p(x|z)] (sampled) against log p(x|z_mean)
    active_units     Burda et al.'s covariance criterion per latent unit
    report           all of the above in one dict; format_report, write_report
    evaluate_run     `keras-vae evaluate RUN_DIR`: reload, evaluate, write
    refine           per-example optimisation of q (semi-amortized inference)
    map_estimate     z* = argmax p(x|z) p(z), for comparison (not a bound)
    amortization_gap the decomposition above, with the time of each route

Data passed to `log_prob` is scored by a head whose parameters do not
depend on that data: the "optimal" Gaussian scale is the one it held at the
end of training (the training test step re-fits it to each batch).
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import _keras_internals
from keras_vae import likelihoods as likelihoods_lib
from keras_vae import objectives

#: Burda et al. (2016, section 5.2): unit u is active when
#: Cov_x(E_{q(z|x)}[z_u]) exceeds this.
ACTIVE_UNIT_THRESHOLD = 0.01
#: Floats of the decoder's widest layer held by one importance-sampling
#: step: about 64 MB of float32, a few times that with the other layers and
#: the log-probabilities.
DEFAULT_MAX_VALUES = 2**24
_LOG2 = math.log(2.0)


@dataclasses.dataclass
class LogLikelihoodResult:
    """Per-example log p(x) estimates (nats) and their summary.

    Attributes:
        values: numpy (N,) per-example estimates.
        num_samples: K importance samples per example.
        reconstruction: numpy (N,) E_q[log p(x|z)] averaged over the same K
            draws, or None.
        kl: numpy (N,) closed-form KL(q(z|x) || p(z)), or None.
        seconds: wall time of the estimate.
        mean: mean over examples.
        stderr: standard error of the mean across examples.
        elbo: reconstruction - kl per example (None without them).
    """

    values: np.ndarray
    num_samples: int
    reconstruction: np.ndarray = None
    kl: np.ndarray = None
    seconds: float = None

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def stderr(self):
        return _stderr(self.values)

    @property
    def elbo(self):
        if self.reconstruction is None or self.kl is None:
            return None
        return self.reconstruction - self.kl


@dataclasses.dataclass
class IWAEResult:
    """The IWAE bound and the ELBO computed from the same K draws.

    Attributes:
        iwae: (N,) L_K = log (1/K) sum_k w_k per example.
        elbo: (N,) (1/K) sum_k log w_k: the ELBO estimated from the same
            draws with a Monte-Carlo KL. Equal to `iwae` when K = 1, and
            never above it (Jensen's inequality holds draw by draw).
        elbo_analytic_kl: (N,) (1/K) sum_k log p(x|z_k) - KL(q || p(z)), the
            lower-variance estimator the train step reports.
        num_samples: K.
    """

    iwae: np.ndarray
    elbo: np.ndarray
    elbo_analytic_kl: np.ndarray
    num_samples: int

    @property
    def mean(self):
        return float(np.mean(self.iwae))


def _stderr(values):
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    return float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def _summary(values):
    return {"mean": float(np.mean(values)), "stderr": _stderr(values)}


# -- argument checks --------------------------------------------------------
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


def _check_positive_int(value, name, what):
    if isinstance(value, bool) or not isinstance(
        value, (int, np.integer)
    ) or value < 1:
        raise ValueError(
            f"`{name}` ({what}) must be an int >= 1. Received: "
            f"{name}={value!r}"
        )
    return int(value)


def _check_optional_int(value, name, what):
    return None if value is None else _check_positive_int(value, name, what)


def _check_learning_rate(learning_rate):
    if isinstance(learning_rate, bool) or not isinstance(
        learning_rate, (int, float)
    ) or not learning_rate > 0 or not math.isfinite(learning_rate):
        raise ValueError(
            "`learning_rate` must be a finite number > 0. Received: "
            f"learning_rate={learning_rate!r}"
        )
    return float(learning_rate)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    return int(seed)


def _check_model(model):
    missing = [a for a in ("encoder", "decoder", "likelihood", "check_data",
                           "posterior_params", "log_likelihood_graph")
               if not hasattr(model, a)]
    if missing:
        raise ValueError(
            "Evaluation needs a keras_vae.VAE (an encoder, a decoder and a "
            f"likelihood head). Received a {type(model).__name__}, which "
            f"lacks {missing}."
        )


def _prepare(model, x, what="x"):
    """Checks the model and the data; returns x as float32 numpy."""
    _check_model(model)
    try:
        return model.check_data(x, what)
    except ValueError as err:
        raise ValueError(
            f"The model cannot score this data: {err}"
        ) from None


def _encode(model, x):
    """q(z|x)'s parameters as a tuple of float32 numpy arrays (N, ...),
    computed by `VAE.encode` (the posterior head applied, as in training)."""
    return tuple(np.asarray(p, np.float32) for p in model.encode(x))


def _check_proposal(model, x, proposal):
    if proposal is None:
        return _encode(model, x)
    names = model.posterior.param_names
    sizes = model.posterior.params_size(model.latent_dim)
    if not isinstance(proposal, (list, tuple)) or len(proposal) != len(
        names
    ):
        raise ValueError(
            f"`proposal` must be a tuple ({', '.join(names)}) of the "
            f"{type(model.posterior).__name__} posterior's parameters. "
            f"Received: {type(proposal).__name__}"
        )
    arrays = tuple(np.asarray(p, dtype="float32") for p in proposal)
    wants = [(len(x), size) for size in sizes]
    if any(a.shape != want for a, want in zip(arrays, wants)):
        raise ValueError(
            f"`proposal` arrays must have shapes {wants} (one q per "
            f"example). Received: "
            + " and ".join(str(a.shape) for a in arrays)
        )
    return arrays


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


def _quiet(fn):
    # Each model gets its own functions, traced once each (fixed input
    # signatures). TensorFlow counts traces by code object across all of
    # them and would warn of "excessive retracing" after a few models.
    return _keras_internals.quiet_retracing(fn)


def _x_spec(model):
    return tf.TensorSpec([None, *model.event_shape], tf.float32)


def _param_specs(model):
    return [tf.TensorSpec([None, size], tf.float32)
            for size in model.posterior.params_size(model.latent_dim)]


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
            tf.TensorSpec([], tf.int64)])
        def fn(x, params, k, chunk, seed, offset):
            shape = tf.shape(model.posterior.mean(params))  # (B, L)

            def noise(c, kc):
                pair = tf.stack([seed, offset + tf.cast(c, tf.int64)])
                return tf.random.stateless_normal(
                    tf.concat([[kc], shape], 0), seed=pair)  # (kc, B, L)

            return model.log_likelihood_graph(x, params, k, chunk, noise)

        return _quiet(fn)

    return model._graph_fn("evaluation_importance", build)


def _log_px_at_fn(model):
    """tf.function (x, z) -> log p(x|z) (B,) for one z per example."""

    def build():
        @tf.function(input_signature=[
            _x_spec(model), tf.TensorSpec([None, model.latent_dim],
                                          tf.float32)])
        def fn(x, z):
            return model.log_px_z(x, z)

        return _quiet(fn)

    return model._graph_fn("evaluation_log_px_at", build)


def _kl_terms(model, proposal):
    """Closed-form KL (N,) and KL per dimension (N, latent_dim) of q against
    the prior in float64, each None where the parts have no closed form."""
    params64 = [tf.constant(p, tf.float64) for p in proposal]
    kl = model.posterior.kl_divergence(params64, model.prior)
    per_dim = model.posterior.kl_per_dim(params64, model.prior)
    return (None if kl is None else np.asarray(kl, np.float64),
            None if per_dim is None else np.asarray(per_dim, np.float64))


def _importance_sample(model, x, k, seed, batch_size, chunk_size, verbose,
                       proposal, max_values):
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
    bar = keras.utils.Progbar(steps, unit_name="batch") if show else None
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
                   max_values=DEFAULT_MAX_VALUES):
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

    Returns:
        `LogLikelihoodResult` with `.values` (N,), `.mean`, `.stderr`, and
        `.reconstruction`, `.kl`, `.elbo` from the same draws.

    Raises:
        ValueError: K < 1 or not an int; data that does not fit the model or
            that its likelihood cannot score.

    Example:
        >>> result = log_likelihood(vae, x_test, num_samples=5000)
        >>> print(f"{result.mean:.2f} +- {result.stderr:.2f} nats")

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
    x = _prepare(model, x)
    proposal = _check_proposal(model, x, proposal)
    start = time.perf_counter()
    log_px, reconstruction, _, kl = _importance_sample(
        model, x, k, seed, batch_size, chunk_size, verbose, proposal,
        max_values,
    )
    return LogLikelihoodResult(
        values=log_px, num_samples=k, reconstruction=reconstruction, kl=kl,
        seconds=time.perf_counter() - start,
    )


def iwae_bound(model, x, k, seed=0, batch_size=None, verbose=0):
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

    Returns:
        `IWAEResult` with `.iwae`, `.elbo` (Monte-Carlo KL, same draws) and
        `.elbo_analytic_kl`, each (N,) float64 nats.

    Example:
        >>> r = iwae_bound(vae, x_test[:100], k=50)
        >>> r.iwae.mean() >= r.elbo.mean()
        True
    """
    k = check_num_samples(k, "k")
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x = _prepare(model, x)
    proposal = _encode(model, x)
    log_px, reconstruction, mean_log_w, kl = _importance_sample(
        model, x, k, seed, batch_size, None, verbose, proposal,
        DEFAULT_MAX_VALUES,
    )
    elbo_analytic = objectives.elbo(
        tf.constant(reconstruction), tf.constant(kl)
    ).numpy()
    return IWAEResult(iwae=log_px, elbo=mean_log_w,
                      elbo_analytic_kl=elbo_analytic, num_samples=k)


def _log_px_at(model, x, z, batch_size=1000):
    fn = _log_px_at_fn(model)
    return np.concatenate([
        fn(tf.constant(x[s:s + batch_size]),
           tf.constant(z[s:s + batch_size])).numpy().astype(np.float64)
        for s in range(0, len(x), batch_size)
    ])


def _posterior_mean(model, proposal):
    """E_q[z] (N, latent_dim) float32 numpy for the posterior's params."""
    return np.asarray(model.posterior.mean(
        [tf.constant(p) for p in proposal]), np.float32)


def mean_vs_sample(model, x, num_samples=100, seed=0, batch_size=None):
    """E_q[log p(x|z)] estimated with samples, against log p(x|z_mean).

    The ELBO's reconstruction term is an expectation over q(z|x). Plugging
    in z = z_mean instead evaluates log p(x|E_q[z]), which differs from
    E_q[log p(x|z)] (Jensen's gap of a non-linear decoder) and ignores how
    much the decoder's output moves across the posterior's spread: a model
    trained on it is not trained to decode the z it will be given.

    Args:
        model: a `keras_vae.VAE`.
        x: array (N, *event_shape).
        num_samples: draws per example for the sampled estimate.
        seed: int.
        batch_size: at most this many examples per step.

    Returns:
        dict with numpy (N,) arrays "sampled" and "at_mean" (nats) and their
        means "sampled_mean", "at_mean_mean", and "difference_mean"
        (at_mean - sampled).
    """
    k = check_num_samples(num_samples)
    seed = _check_seed(seed)
    x = _prepare(model, x)
    proposal = _encode(model, x)
    _, sampled, _, _ = _importance_sample(
        model, x, k, seed, batch_size, None, 0, proposal,
        DEFAULT_MAX_VALUES,
    )
    at_mean = _log_px_at(model, x, _posterior_mean(model, proposal))
    return {
        "sampled": sampled,
        "at_mean": at_mean,
        "sampled_mean": float(np.mean(sampled)),
        "at_mean_mean": float(np.mean(at_mean)),
        "difference_mean": float(np.mean(at_mean - sampled)),
        "num_samples": k,
    }


def active_units(z_mean, threshold=ACTIVE_UNIT_THRESHOLD):
    """Burda et al.'s activity A_u = Cov_x(E_q[z_u]) per latent unit.

    Args:
        z_mean: array (N, latent_dim), E_q[z] for each example (the
            encoder's z_mean).
        threshold: float, default 0.01.

    Returns:
        (activity (latent_dim,), active mask (latent_dim,) of bools).

    Reference: Burda et al. 2016, section 5.2: units with A_u <= 0.01 carry
    (almost) no information about x.
    """
    z_mean = np.asarray(z_mean, dtype=np.float64)
    if z_mean.ndim != 2 or len(z_mean) < 2:
        raise ValueError(
            "active_units needs z_mean of shape (N, latent_dim) with N >= 2 "
            f"examples. Received shape {z_mean.shape}."
        )
    activity = np.var(z_mean, axis=0)
    return activity, activity > threshold


_MASS_FUNCTIONS = (
    likelihoods_lib.Bernoulli,
    getattr(likelihoods_lib, "DiscretizedLogistic", ()),
    getattr(likelihoods_lib, "Categorical", ()),
    getattr(likelihoods_lib, "Poisson", ()),
    getattr(likelihoods_lib, "NegativeBinomial", ()),
)


def is_mass_function(likelihood):
    """True when the head gives probabilities (discrete data), False when it
    gives densities (continuous data)."""
    return isinstance(likelihood, tuple(t for t in _MASS_FUNCTIONS if t))


def _is_eight_bit(x):
    return bool(np.all(np.abs(x * 255.0 - np.round(x * 255.0)) < 1e-2)) and (
        float(x.min()) >= 0.0 and float(x.max()) <= 1.0)


# -- the report ---------------------------------------------------------------
def report(model, x, num_samples=5000, protocol=None, seed=0,
           batch_size=None, verbose="auto",
           active_threshold=ACTIVE_UNIT_THRESHOLD):
    """Everything a trained VAE's test set says about it, as a dict.

    ELBO and its two terms, log p(x) with K importance samples and its
    standard error, the gap log p(x) - ELBO (an estimate of the mean
    KL(q(z|x) || p(z|x)); it is itself a lower estimate, since log p(x) is
    estimated from below), nats and bits per dimension, the reconstruction
    term at z = z_mean, active units and the KL of each latent dimension,
    with a warning when units are inactive (posterior collapse).

    All expectations over q come from the same K draws per example.

    Args:
        model: a `keras_vae.VAE`.
        x: test data (N, *event_shape).
        num_samples: K, default 5000.
        protocol: str, the data protocol (printed with every number).
        seed: int.
        batch_size: at most this many examples per step.
        verbose: progress bar: "auto", 0 or 1.
        active_threshold: float, default 0.01.

    Returns:
        A JSON-serialisable dict; `format_report` turns it into a table.
    """
    k = check_num_samples(num_samples)
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x = _prepare(model, x)
    start = time.perf_counter()
    proposal = _encode(model, x)
    log_px, reconstruction, _, kl = _importance_sample(
        model, x, k, seed, batch_size, None, verbose, proposal,
        DEFAULT_MAX_VALUES,
    )
    elbo = reconstruction - kl
    z_mean = _posterior_mean(model, proposal)
    at_mean = _log_px_at(model, x, z_mean)
    dims = _event_size(model)
    _, kl_per_dim = _kl_terms(model, proposal)
    if kl_per_dim is not None:
        kl_per_dim = np.mean(kl_per_dim, axis=0)
    if len(x) >= 2:
        activity, active = active_units(z_mean, active_threshold)
    else:
        activity, active = np.zeros(model.latent_dim), None
    nats_per_dim = -float(np.mean(log_px)) / dims
    mass = is_mass_function(model.likelihood)
    result = {
        "protocol": protocol or "not stated",
        "likelihood": type(model.likelihood).__name__,
        "likelihood_config": _plain(model.likelihood.get_config()),
        "discrete_likelihood": mass,
        "num_examples": int(len(x)),
        "event_shape": list(model.event_shape),
        "dimensions": dims,
        "latent_dim": int(model.latent_dim),
        "num_samples": k,
        "seed": seed,
        "units": "nats per example, summed over the data dimensions",
        "log_likelihood": _summary(log_px),
        "elbo": _summary(elbo),
        "reconstruction_loss": _summary(-reconstruction),
        "kl_loss": _summary(kl),
        "gap": _summary(log_px - elbo),
        "reconstruction_at_mean": _summary(at_mean),
        "reconstruction_sampled": _summary(reconstruction),
        "nats_per_dim": nats_per_dim,
        "bits_per_dim": nats_per_dim / _LOG2,
        "bits_per_dim_8bit": None,
        "active_units": {
            "count": None if active is None else int(active.sum()),
            "latent_dim": int(model.latent_dim),
            "threshold": float(active_threshold),
            "activity": [float(a) for a in activity],
        },
        "kl_per_dim": (None if kl_per_dim is None
                       else [float(v) for v in kl_per_dim]),
        "warnings": [],
    }
    if not mass and _is_eight_bit(x):
        # A density on [0, 1] scored at 8-bit levels: the mass of a bin of
        # width 1/256 is about density / 256 per dimension.
        result["bits_per_dim_8bit"] = (
            nats_per_dim + math.log(256.0)) / _LOG2
        result["warnings"].append(
            "The likelihood is a density on continuous values; bits_per_dim"
            "_8bit converts it to 8-bit data as log p - D log 256 "
            "(approximate; a valid bound needs uniformly dequantized data)."
        )
    if isinstance(model.likelihood, likelihoods_lib.Bernoulli) and not (
        np.all((x == 0) | (x == 1))
    ):
        result["warnings"].append(
            "Bernoulli log-likelihood on non-binary data is minus the BCE, "
            "not a normalised likelihood: its log p(x) cannot be compared "
            "with other models."
        )
    if active is not None and not active.all():
        inactive = int((~active).sum())
        result["warnings"].append(
            f"Posterior collapse: {inactive} of {model.latent_dim} latent "
            f"units are inactive (Cov_x(E_q[z_u]) <= {active_threshold}); "
            "they carry no information about x. KL warm-up or free bits "
            "can revive them; a smaller latent_dim loses nothing."
        )
    result["seconds"] = time.perf_counter() - start
    return result


def _plain(obj):
    """A config made JSON-safe (tuples to lists, numpy to Python)."""
    return json.loads(json.dumps(obj, default=lambda o: (
        o.tolist() if hasattr(o, "tolist") else str(o))))


def format_report(result):
    """The report dict as a readable table (a str)."""
    k = result["num_samples"]
    au = result["active_units"]
    lines = [
        "keras_vae evaluation",
        f"data:      {result['protocol']}",
        f"model:     {result['likelihood']} likelihood, latent_dim "
        f"{result['latent_dim']}, data shape {tuple(result['event_shape'])}",
        f"examples:  {result['num_examples']}; importance samples K = {k} "
        f"(seed {result['seed']})",
        "",
        f"{'quantity (nats per example)':<46}{'mean':>11}{'std. err.':>11}",
        "-" * 68,
    ]

    def row(label, item, sign=1.0):
        lines.append(f"{label:<46}{sign * item['mean']:>11.3f}"
                     f"{item['stderr']:>11.3f}")

    row(f"log p(x)  (IWAE estimate, K = {k})", result["log_likelihood"])
    row("ELBO = E_q[log p(x|z)] - KL", result["elbo"])
    row("  reconstruction loss  -E_q[log p(x|z)]",
        result["reconstruction_loss"])
    row("  KL(q(z|x) || p(z))", result["kl_loss"])
    row("gap log p(x) - ELBO  (~ KL(q(z|x) || p(z|x)))", result["gap"])
    row("log p(x|z_mean)  (decoding the mean of q)",
        result["reconstruction_at_mean"])
    lines.append("-" * 68)
    lines.append(
        f"-log p(x) per dimension: {result['nats_per_dim']:.4f} nats = "
        f"{result['bits_per_dim']:.4f} bits ({result['dimensions']} dims)")
    if result.get("bits_per_dim_8bit") is not None:
        lines.append(
            "  as 8-bit data (density - D log 256): "
            f"{result['bits_per_dim_8bit']:.4f} bits/dim")
    if au["count"] is not None:
        lines.append(
            f"active units (Cov_x E_q[z_u] > {au['threshold']}): "
            f"{au['count']} of {au['latent_dim']}")
    kl = result["kl_per_dim"]
    if kl is not None:
        order = np.argsort(kl)[::-1]
        shown = ", ".join(f"z{i}: {kl[i]:.2f}" for i in order[:10])
        more = f" ... ({len(kl) - 10} more)" if len(kl) > 10 else ""
        lines.append(
            f"KL per latent dimension, largest first: {shown}{more}")
    for warning in result["warnings"]:
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines) + "\n"


def write_report(result, out_dir, stem="evaluation"):
    """Writes OUT_DIR/<stem>.json and <stem>.txt, each through a temporary
    file and a rename, so a failure leaves earlier results intact.

    Returns:
        (json_path, txt_path).
    """
    from keras_vae import runs

    out = runs.RunDirectory(out_dir)
    # Both texts are made before either file is replaced.
    text_table = format_report(result)
    json_path = out.write_json(f"{stem}.json", result)
    txt_path = out.write_text(f"{stem}.txt", text_table)
    return json_path, txt_path


def evaluate_run(run_dir, num_samples=5000, max_examples=None, seed=0,
                 batch_size=None, verbose="auto"):
    """`keras-vae evaluate RUN_DIR`: reload a run, evaluate, write results.

    Reads RUN_DIR/model.keras and RUN_DIR/metrics.json ("dataset" and
    "binarize", written by `keras-vae train`), reloads the same test set
    with the same protocol (and RUN_DIR/config.json's seed for the one-off
    test binarization), runs `report` and writes RUN_DIR/evaluation.json and
    evaluation.txt. Every argument and file is checked before the model is
    evaluated; nothing is written unless the evaluation succeeds.

    Args:
        run_dir: str, a directory written by `keras-vae train`.
        num_samples: K, default 5000.
        max_examples: int or None: evaluate the first N test examples only.
        seed: int, seed of the importance samples.
        batch_size: at most this many examples per step.
        verbose: progress bar.

    Returns:
        (report dict, (json_path, txt_path)).

    Raises:
        FileNotFoundError: no run directory, model.keras or metrics.json.
        ValueError: bad K or max_examples, metrics.json without the data
            protocol, or data the model cannot score.
    """
    from keras_vae import datasets
    from keras_vae import runs

    k = check_num_samples(num_samples)
    max_examples = _check_optional_int(max_examples, "max_examples",
                                       "test examples to evaluate")
    seed = _check_seed(seed)
    run = runs.RunDirectory(run_dir)
    run.require_finished()
    metrics = run.read_metrics()
    missing = [key for key in ("dataset", "binarize") if key not in metrics]
    if missing:
        raise ValueError(
            f"{run.file(run.METRICS)!r} lacks {missing}: the data protocol of "
            "the run is unknown, so the test set cannot be reloaded the same "
            "way. Re-train with `keras-vae train`, or evaluate in Python with "
            "keras_vae.evaluation.report(model, x_test, protocol=...)."
        )
    data_seed = int(run.read_config().get("seed", 0))
    model = run.load_model(safe_mode=True)
    _, (x_test, _) = datasets.load(
        metrics["dataset"], binarize=metrics["binarize"], seed=data_seed
    )
    if max_examples:
        x_test = x_test[:max_examples]
    protocol = metrics.get("protocol") or datasets.describe_protocol(
        metrics["dataset"], metrics["binarize"], seed=data_seed
    )
    if max_examples:
        protocol += f"; first {len(x_test)} test examples"
    result = report(model, x_test, num_samples=k, protocol=protocol,
                    seed=seed, batch_size=batch_size, verbose=verbose)
    result["run_dir"] = os.path.abspath(run_dir)
    result["train_metrics"] = metrics.get("test")
    paths = write_report(result, run.path)
    return result, paths


# -- amortization: per-example refinement and MAP ---------------------------
@dataclasses.dataclass
class RefineResult:
    """q(z|x) optimised per example, starting from the encoder.

    Attributes:
        params: tuple of numpy arrays (N, ...), the refined parameters of
            the model's posterior ((z_mean, z_log_var) for the diagonal
            Gaussian); pass it as `proposal=` to `log_likelihood`.
        elbo_initial: (N,) ELBO of the encoder's q (nats, `eval_samples`
            draws, closed-form KL).
        elbo_refined: (N,) ELBO of the refined q, same estimator.
        steps, learning_rate: the optimisation settings.
        seconds: wall time of the optimisation (excluding the evaluation of
            the ELBOs and the one-off tracing).
        z_mean, z_log_var: the two parameters of a diagonal Gaussian.
    """

    params: tuple
    elbo_initial: np.ndarray
    elbo_refined: np.ndarray
    steps: int
    learning_rate: float
    seconds: float

    @property
    def z_mean(self):
        return self.params[0]

    @property
    def z_log_var(self):
        return self.params[1]

    @property
    def seconds_per_example(self):
        return self.seconds / len(self.params[0])


@dataclasses.dataclass
class MAPResult:
    """z* = argmax_z log p(x|z) + log p(z) per example.

    Attributes:
        z: numpy (N, latent_dim).
        log_joint: (N,) log p(x, z*) = log p(x|z*) + log p(z*), nats.
        log_px_z: (N,) log p(x|z*).
        log_pz: (N,) log p(z*).
        seconds: wall time of the optimisation.
    """

    z: np.ndarray
    log_joint: np.ndarray
    log_px_z: np.ndarray
    log_pz: np.ndarray
    steps: int
    learning_rate: float
    seconds: float

    @property
    def seconds_per_example(self):
        return self.seconds / len(self.z)


def _objective(model, kind, x, variables, num_samples, seed, step):
    """Per-example objective (B,) to maximise over `variables`.

    kind "elbo": the ELBO of q with parameters `posterior.from_encoder(
    variables)` (reparameterized draws, closed-form KL where the parts have
    one), noise stateless in (seed, step). kind "map": log p(x|z) + log p(z)
    at z = variables[0].
    """
    if kind == "map":
        z = variables[0]
        return model.log_px_z(x, z) + model.prior.log_prob(z)
    params = model.posterior.from_encoder(list(variables))
    location = model.posterior.mean(params)
    eps = tf.random.stateless_normal(
        tf.concat([[num_samples], tf.shape(location)], 0),
        seed=tf.stack([seed, tf.cast(step, tf.int64)]),
    )
    z = model.posterior.reparameterize(params, eps)  # (S, B, latent_dim)
    return model.elbo_terms_at(x, params, z)["elbo"]


def _run_optimiser(model, kind, x, start_params, steps, learning_rate,
                   num_samples, seed, batch_size):
    """Runs `steps` steps of `keras.optimizers.Adam` on per-example
    variables, a batch of examples at a time.

    The loss is the sum of the examples' objectives, so each example's
    gradient is its own, and Adam's update is per coordinate: examples do
    not interact. Returns (final variables as numpy arrays, seconds).
    """
    batch_size = batch_size or 1000
    outputs = [[] for _ in start_params]
    seconds = 0.0
    for b, s in enumerate(range(0, len(x), batch_size)):
        xb = tf.constant(x[s:s + batch_size])
        variables = [tf.Variable(p[s:s + batch_size], dtype=tf.float32)
                     for p in start_params]
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        optimizer.build(variables)
        batch_seed = tf.constant(seed * 100003 + b, tf.int64)
        k = tf.constant(num_samples, tf.int32)

        def step(i):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_sum(_objective(
                    model, kind, xb, variables, k, batch_seed, i))
            grads = tape.gradient(loss, variables,
                                  unconnected_gradients="zero")
            optimizer.apply(grads, variables)
            return i + 1

        @tf.function(autograph=False)
        def run(num_steps):
            # All steps in one graph: no Python call per step.
            return tf.while_loop(lambda i: i < num_steps, step,
                                 [tf.constant(0, tf.int32)])

        _quiet(run)
        # Trace before timing: the timing below is the optimisation.
        run.get_concrete_function(tf.TensorSpec([], tf.int32))
        start = time.perf_counter()
        run(tf.constant(steps, tf.int32))
        seconds += time.perf_counter() - start
        for out, v in zip(outputs, variables):
            out.append(v.numpy())
    return [np.concatenate(o) for o in outputs], seconds


def _check_steps(steps):
    if isinstance(steps, bool) or not isinstance(
        steps, (int, np.integer)
    ) or steps <= 0:
        raise ValueError(
            "`steps` (gradient steps per example) must be an int > 0. "
            f"Received: steps={steps!r}"
        )
    return int(steps)


def refine(model, x, steps=500, learning_rate=1e-2, num_samples=1, seed=0,
           batch_size=None, eval_samples=100):
    """Optimises each example's q(z|x) against its own ELBO, decoder fixed.

    Starts from the encoder's posterior parameters and runs `steps` steps of
    `keras.optimizers.Adam` on them, with reparameterized draws and the
    model's own ELBO (`VAE.elbo_terms_at`): the semi-amortized inference of
    Kim et al. (2018) and the "optimal q in the family" of Cremer et al.
    (2018). The refined ELBO is (up to the optimiser's convergence) the best
    ELBO the posterior family reaches for that example, so ELBO(refined) -
    ELBO(encoder) measures the amortization gap. The decoder's weights are
    not touched.

    Args:
        model: a `keras_vae.VAE`.
        x: array (N, *event_shape).
        steps: int > 0, default 500.
        learning_rate: float > 0, default 1e-2 (Adam).
        num_samples: draws of z per step, default 1.
        seed: int.
        batch_size: examples optimised together (independently), default
            1000.
        eval_samples: draws used to evaluate the initial and refined ELBO.

    Returns:
        `RefineResult`.

    Raises:
        ValueError: steps <= 0, learning_rate <= 0, bad data.
    """
    steps = _check_steps(steps)
    learning_rate = _check_learning_rate(learning_rate)
    num_samples = check_num_samples(num_samples)
    eval_samples = check_num_samples(eval_samples, "eval_samples")
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x = _prepare(model, x)
    initial = _encode(model, x)
    raw, seconds = _run_optimiser(
        model, "elbo", x, initial, steps, learning_rate, num_samples, seed,
        batch_size,
    )
    refined = tuple(np.asarray(p, np.float32) for p in
                    model.posterior.from_encoder([tf.constant(r)
                                                  for r in raw]))

    def elbo_of(proposal):
        _, reconstruction, _, kl = _importance_sample(
            model, x, eval_samples, seed + 1, None, None, 0, proposal,
            DEFAULT_MAX_VALUES,
        )
        return reconstruction - kl

    return RefineResult(
        params=refined, elbo_initial=elbo_of(initial),
        elbo_refined=elbo_of(refined), steps=steps,
        learning_rate=learning_rate, seconds=seconds,
    )


def map_estimate(model, x, steps=500, learning_rate=1e-2, seed=0,
                 batch_size=None):
    """z* = argmax_z p(x|z) p(z) per example, from the encoder's E_q[z].

    log p(x, z*) is the height of the joint at its peak, not its integral:
    log p(x) = log p(x, z*) - log p(z*|x), and the posterior density at its
    mode, p(z*|x), can be far above 1 (a narrow posterior) or below it, so
    log p(x, z*) is neither a lower nor an upper bound on log p(x). A
    decoder trained on it has no reason to keep p(z|x) broad.

    Args:
        model: a `keras_vae.VAE`.
        x: array (N, *event_shape).
        steps: int > 0, default 500.
        learning_rate: float > 0, default 1e-2 (`keras.optimizers.Adam`).
        seed: int.
        batch_size: examples per step, default 1000.

    Returns:
        `MAPResult`.
    """
    steps = _check_steps(steps)
    learning_rate = _check_learning_rate(learning_rate)
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x = _prepare(model, x)
    start = _posterior_mean(model, _encode(model, x))
    (z,), seconds = _run_optimiser(
        model, "map", x, (start,), steps, learning_rate, 1, seed, batch_size,
    )
    log_px_z = _log_px_at(model, x, z)
    log_pz = np.asarray(model.prior.log_prob(tf.constant(z, tf.float64)),
                        np.float64)
    return MAPResult(z=z, log_joint=log_px_z + log_pz, log_px_z=log_px_z,
                     log_pz=log_pz, steps=steps, learning_rate=learning_rate,
                     seconds=seconds)


def _time_encoder(model, x, batch_size=1000):
    model.encoder(x[:1], training=False)  # warm-up
    start = time.perf_counter()
    for s in range(0, len(x), batch_size):
        out = model.encoder(x[s:s + batch_size], training=False)
        np.asarray(out[0])
    return time.perf_counter() - start


def amortization_gap(model, x, num_samples=1000, steps=500,
                     learning_rate=1e-2, seed=0, map_steps=None,
                     verbose="auto", return_per_example=False):
    """The inference gap split into approximation and amortization parts.

    Following Cremer, Li & Duvenaud (2018):

        log p(x) - ELBO(q_encoder) = approximation gap + amortization gap
        approximation gap = log p(x) - ELBO(q*)
        amortization gap  = ELBO(q*) - ELBO(q_encoder)

    with q* the refined Gaussian (`refine`) standing in for the best
    diagonal Gaussian for each example, and log p(x) the larger (on average)
    of two K-sample importance estimates, one with the encoder's q as
    proposal and one with the refined q. Since refinement stops after
    `steps`, the amortization gap is underestimated and the approximation
    gap overestimated by what the optimiser leaves on the table.

    Also runs `map_estimate` and reports log p(x, z*) beside log p(x), to
    show that the joint at its mode is not a bound on log p(x).

    Args:
        model: a `keras_vae.VAE`.
        x: held-out data (N, *event_shape).
        num_samples: K for the log p(x) estimates and the ELBOs, default
            1000.
        steps: refinement steps, default 500.
        learning_rate: float, default 1e-2.
        seed: int.
        map_steps: MAP steps, default `steps`.
        verbose: progress bars.
        return_per_example: bool, default False. Adds "per_example", a dict
            of numpy (N,) arrays (log_likelihood, elbo_amortized,
            elbo_refined, map_log_joint); the rest stays JSON-serialisable.

    Returns:
        dict: the gaps with standard errors, the per-route ELBOs, log p(x),
        the MAP log-joint, and the seconds per example of each route.
    """
    k = check_num_samples(num_samples)
    steps = _check_steps(steps)
    map_steps = steps if map_steps is None else _check_steps(map_steps)
    learning_rate = _check_learning_rate(learning_rate)
    seed = _check_seed(seed)
    x = _prepare(model, x)
    n = len(x)
    encoder_seconds = _time_encoder(model, x)
    amortized_q = _encode(model, x)
    # Trace the sampling function before timing it.
    log_likelihood(model, x[:1], 1, verbose=0)
    start = time.perf_counter()
    amortized = log_likelihood(model, x, k, seed=seed, verbose=verbose,
                               proposal=amortized_q)
    is_seconds = time.perf_counter() - start
    refined = refine(model, x, steps=steps, learning_rate=learning_rate,
                     seed=seed, eval_samples=1)
    refined_ll = log_likelihood(
        model, x, k, seed=seed + 7, verbose=verbose,
        proposal=refined.params,
    )
    best = refined_ll if refined_ll.mean > amortized.mean else amortized
    log_px = best.values
    elbo_amortized = amortized.elbo
    elbo_refined = refined_ll.elbo
    map_result = map_estimate(model, x, steps=map_steps,
                              learning_rate=learning_rate, seed=seed)
    result = {
        "num_examples": n,
        "num_samples": k,
        "refine_steps": steps,
        "learning_rate": learning_rate,
        "units": "nats per example",
        "log_likelihood": _summary(log_px),
        "log_likelihood_proposal": (
            "refined q" if best is refined_ll else "encoder q"),
        "log_likelihood_encoder_proposal": _summary(amortized.values),
        "log_likelihood_refined_proposal": _summary(refined_ll.values),
        "elbo_amortized": _summary(elbo_amortized),
        "elbo_refined": _summary(elbo_refined),
        "inference_gap": _summary(log_px - elbo_amortized),
        "approximation_gap": _summary(log_px - elbo_refined),
        "amortization_gap": _summary(elbo_refined - elbo_amortized),
        "map_log_joint": _summary(map_result.log_joint),
        "map_log_px_z": _summary(map_result.log_px_z),
        "map_above_log_likelihood_fraction": float(
            np.mean(map_result.log_joint > log_px)),
        "seconds_per_example": {
            "encoder": encoder_seconds / n,
            "refine": refined.seconds_per_example,
            "map": map_result.seconds_per_example,
            "importance_sampling": is_seconds / n,
        },
    }
    if return_per_example:
        result["per_example"] = {
            "log_likelihood": log_px, "elbo_amortized": elbo_amortized,
            "elbo_refined": elbo_refined,
            "map_log_joint": map_result.log_joint,
        }
    return result


def format_amortization(result):
    """The `amortization_gap` dict as a readable table (a str)."""
    k = result["num_samples"]
    lines = [
        f"Inference gaps on {result['num_examples']} held-out examples "
        f"(K = {k}, {result['refine_steps']} refinement steps, Adam "
        f"lr {result['learning_rate']:g}); nats per example",
        f"{'quantity':<52}{'mean':>10}{'std. err.':>11}",
        "-" * 73,
    ]

    def row(label, item):
        lines.append(f"{label:<52}{item['mean']:>10.3f}{item['stderr']:>11.3f}")

    row(f"log p(x)  (IWAE, K = {k}, {result['log_likelihood_proposal']} "
        "proposal)", result["log_likelihood"])
    row("ELBO, refined q (stands in for the best q*)", result["elbo_refined"])
    row("ELBO, amortized q (the encoder)", result["elbo_amortized"])
    row("inference gap      log p(x) - ELBO(encoder)",
        result["inference_gap"])
    row("  approximation gap  log p(x) - ELBO(q*)",
        result["approximation_gap"])
    row("  amortization gap   ELBO(q*) - ELBO(encoder)",
        result["amortization_gap"])
    row("MAP log p(x, z*)  (not a bound on log p(x))",
        result["map_log_joint"])
    lines.append("-" * 73)
    lines.append(
        "MAP log p(x, z*) exceeds the log p(x) estimate for "
        f"{100 * result['map_above_log_likelihood_fraction']:.0f}% of "
        "examples")
    t = result["seconds_per_example"]
    lines.append(
        "time per example: encoder "
        f"{1e6 * t['encoder']:.1f} us; refinement {1e3 * t['refine']:.2f} ms;"
        f" MAP {1e3 * t['map']:.2f} ms; importance sampling (K = {k}) "
        f"{1e3 * t['importance_sampling']:.2f} ms")
    return "\n".join(lines) + "\n"
