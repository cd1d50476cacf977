"""Diagnostics of a trained VAE: the reconstruction term sampled against
decoded at the mean of q, Burda et al.'s active units, and whether a
likelihood head gives probabilities or densities.
"""

import numpy as np

from keras_vae import likelihoods as likelihoods_lib
from keras_vae.evaluation._common import (
    check_num_samples,
    _check_seed,
    _prepare_labelled,
    _encode,
    _log_px_at,
    _posterior_mean,
)
from keras_vae.evaluation.importance import (
    DEFAULT_MAX_VALUES,
    _importance_sample,
)


#: Burda et al. (2016, section 5.2): unit u is active when
#: Cov_x(E_{q(z|x)}[z_u]) exceeds this.
ACTIVE_UNIT_THRESHOLD = 0.01


def mean_vs_sample(model, x, num_samples=100, seed=0, batch_size=None,
                   labels=None):
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
        labels: int array (N,), a conditional model's labels.

    Returns:
        dict with numpy (N,) arrays "sampled" and "at_mean" (nats) and their
        means "sampled_mean", "at_mean_mean", and "difference_mean"
        (at_mean - sampled).
    """
    k = check_num_samples(num_samples)
    seed = _check_seed(seed)
    x, labels = _prepare_labelled(model, x, labels)
    proposal = _encode(model, x, labels)
    _, sampled, _, _ = _importance_sample(
        model, x, k, seed, batch_size, None, 0, proposal,
        DEFAULT_MAX_VALUES, labels,
    )
    at_mean = _log_px_at(model, x, _posterior_mean(model, proposal),
                         labels=labels)
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
