"""What the evaluation modules share: argument checks, the model check,
encoding through the model's posterior head, and small graph functions
(log p(x|z) at one z per example, E_q[z], the closed-form KL terms).
"""

import math

import numpy as np
import tensorflow as tf

from keras_vae import _keras_internals
from keras_vae.data import checks


# -- argument checks --------------------------------------------------------
def check_num_samples(num_samples, name="num_samples"):
    """Raises ValueError unless `num_samples` is an int >= 1."""
    return checks.check_int(num_samples, name,
                            what="K, the number of importance samples")


def _check_positive_int(value, name, what):
    return checks.check_int(value, name, what=what)


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


def _prepare_labelled(model, x, labels):
    """`_prepare`, and a conditional model's labels (int32 (N,) numpy;
    None for an unconditional model, which refuses labels)."""
    x = _prepare(model, x)
    return x, model.check_labels(labels, len(x))


def _label_args(labels, start=None, stop=None):
    """The trailing label argument of a graph function built with
    `VAE.label_specs()`: [] without labels, else [int32 tensor]."""
    if labels is None:
        return []
    return [tf.constant(labels[start:stop])]


def _encode(model, x, labels=None):
    """q(z|x)'s parameters as a tuple of float32 numpy arrays (N, ...),
    computed by `VAE.encode` (the posterior head applied, as in training);
    q(z | x, y) for a conditional model's labels."""
    kwargs = {} if labels is None else {"labels": labels}
    return tuple(np.asarray(p, np.float32)
                 for p in model.encode(x, **kwargs))


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


def _log_px_at_fn(model):
    """tf.function (x, z) -> log p(x|z) (B,) for one z per example."""

    def build():
        @tf.function(input_signature=[
            _x_spec(model), tf.TensorSpec([None, model.latent_dim],
                                          tf.float32)]
            + _label_specs(model))
        def fn(x, z, *labels):
            return model.log_px_z(x, z, labels=labels[0] if labels else None)

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


def _label_specs(model):
    specs = getattr(model, "label_specs", None)
    return specs() if specs is not None else []


def _log_px_at(model, x, z, batch_size=1000, labels=None):
    fn = _log_px_at_fn(model)
    return np.concatenate([
        fn(tf.constant(x[s:s + batch_size]),
           tf.constant(z[s:s + batch_size]),
           *_label_args(labels, s, s + batch_size)).numpy().astype(np.float64)
        for s in range(0, len(x), batch_size)
    ])


def _posterior_mean(model, proposal):
    """E_q[z] (N, latent_dim) float32 numpy for the posterior's params."""
    return np.asarray(model.posterior.mean(
        [tf.constant(p) for p in proposal]), np.float32)
