"""The evaluation report of a trained VAE (`report`, `format_report`,
`write_report`) and `keras-vae evaluate RUN_DIR` (`evaluate_run`).
"""

import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from keras_vae import likelihoods as likelihoods_lib
from keras_vae.evaluation.results import (
    _summary,
)
from keras_vae.evaluation._common import (
    check_num_samples,
    _check_optional_int,
    _check_seed,
    _prepare_labelled,
    _encode,
    _kl_terms,
    _log_px_at,
    _posterior_mean,
)
from keras_vae.evaluation.importance import (
    DEFAULT_MAX_VALUES,
    _event_size,
    _importance_sample,
)
from keras_vae.evaluation.diagnostics import (
    ACTIVE_UNIT_THRESHOLD,
    active_units,
    is_mass_function,
    _is_eight_bit,
)


_LOG2 = math.log(2.0)
# Draws per example for the KL of each stochastic layer of a hierarchy.
LAYER_KL_SAMPLES = 100


def layer_terms(model, x, proposal, active=None, num_samples=LAYER_KL_SAMPLES,
                seed=0, batch_size=500):
    """The KL of each stochastic layer of a hierarchical model, or None for
    a model with one.

    With q(z|x) = q(z_1|x) q(z_2|z_1) ... and p(z) = p(z_1|z_2) ... p(z_n),
    the KL splits into per-layer terms E_q[log q(z_l | z_{l-1}) -
    log p(z_l | z_{l+1})] (the top layer against N(0, I)), estimated here
    from `num_samples` draws per example; they sum to the model's KL.

    Returns:
        dict: "num_samples" and "layers", a list of {"layer", "latent_dim",
        "kl" (mean and standard error over examples), "active_units"}.
    """
    posterior, prior = model.posterior, model.prior
    dims = getattr(posterior, "latent_dims", None)
    if dims is None or len(dims) < 2 or not hasattr(
            prior, "log_prob_layers"):
        return None
    per_layer = [[] for _ in dims]
    for b, start in enumerate(range(0, len(x), batch_size)):
        params = [tf.constant(p[start:start + batch_size])
                  for p in proposal]
        eps = tf.random.stateless_normal(
            tf.concat([[num_samples], posterior.noise_shape(params)], 0),
            seed=[seed, 7919 + b])
        z, log_qs = posterior.sample_and_log_prob_layers(params, eps)
        for l, (log_q, log_p) in enumerate(zip(log_qs,
                                               prior.log_prob_layers(z))):
            per_layer[l].append(np.mean(np.asarray(log_q - log_p,
                                                   np.float64), axis=0))
    layers, offset = [], 0
    for l, dim in enumerate(dims):
        count = None if active is None else int(
            np.sum(active[offset:offset + dim]))
        layers.append({"layer": l + 1, "latent_dim": int(dim),
                       "kl": _summary(np.concatenate(per_layer[l])),
                       "active_units": count})
        offset += dim
    return {"num_samples": int(num_samples), "layers": layers}


# -- the report ---------------------------------------------------------------
def report(model, x, num_samples=5000, protocol=None, seed=0,
           batch_size=None, verbose="auto",
           active_threshold=ACTIVE_UNIT_THRESHOLD, labels=None):
    """Everything a trained VAE's test set says about it, as a dict.

    ELBO and its two terms, log p(x) with K importance samples and its
    standard error, the gap log p(x) - ELBO (an estimate of the mean
    KL(q(z|x) || p(z|x)); it is itself a lower estimate, since log p(x) is
    estimated from below), nats and bits per dimension, the reconstruction
    term at z = z_mean, active units and the KL of each latent dimension
    (of each stochastic layer for a hierarchy, `layer_terms`), with a
    warning when units are inactive (posterior collapse).

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
        labels: int array (N,), a conditional model's labels: every
            number is then conditioned on them (log p(x | y), the ELBO of
            q(z | x, y), ...).

    Returns:
        A JSON-serialisable dict; `format_report` turns it into a table.
    """
    k = check_num_samples(num_samples)
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x, labels = _prepare_labelled(model, x, labels)
    start = time.perf_counter()
    proposal = _encode(model, x, labels)
    log_px, reconstruction, _, kl = _importance_sample(
        model, x, k, seed, batch_size, None, verbose, proposal,
        DEFAULT_MAX_VALUES, labels,
    )
    elbo = reconstruction - kl
    z_mean = _posterior_mean(model, proposal)
    at_mean = _log_px_at(model, x, z_mean, labels=labels)
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
        "num_classes": getattr(model, "num_classes", None),
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
        "stochastic_layers": layer_terms(model, x, proposal, active,
                                         seed=seed),
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
        f"{result['latent_dim']}, data shape {tuple(result['event_shape'])}"
        + ("" if not result.get("num_classes") else
           f"; conditional on the label ({result['num_classes']} classes): "
           "every term below is given y (log p(x|y), q(z|x,y), p(x|z,y))"),
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
    layers = result.get("stochastic_layers")
    if layers:
        for item in layers["layers"]:
            active = ("" if item["active_units"] is None
                      else f", active units {item['active_units']} of "
                      f"{item['latent_dim']}")
            lines.append(
                f"stochastic layer {item['layer']} ({item['latent_dim']} "
                f"units): KL {item['kl']['mean']:.3f} +- "
                f"{item['kl']['stderr']:.3f}{active} "
                f"({layers['num_samples']} draws per example)")
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
                 batch_size=None, verbose="auto", output_dir=None):
    """`keras-vae evaluate RUN_DIR`: reload a run, evaluate, write results.

    Reads RUN_DIR/model.keras and RUN_DIR/metrics.json ("dataset" and
    "binarize", written by `keras-vae train`), reloads the same test set
    with the same protocol (and RUN_DIR/config.json's seed for the one-off
    test binarization), runs `report` and writes evaluation.json and
    evaluation.txt to RUN_DIR (or `output_dir`). Every argument and file is
    checked before the model is evaluated; nothing is written unless the
    evaluation succeeds.

    Args:
        run_dir: str, a directory written by `keras-vae train`.
        num_samples: K, default 5000.
        max_examples: int or None: evaluate the first N test examples only.
        seed: int, seed of the importance samples.
        batch_size: at most this many examples per step.
        verbose: progress bar.
        output_dir: where to write the two files (default RUN_DIR), e.g. to
            re-score a shipped model (`keras_vae.pretrained`) without
            touching its recorded evaluation.

    Returns:
        (report dict, (json_path, txt_path)).

    Raises:
        FileNotFoundError: no run directory, model.keras or metrics.json.
        ValueError: bad K or max_examples, metrics.json without the data
            protocol, or data the model cannot score.
    """
    from keras_vae import data
    from keras_vae import runs

    k = check_num_samples(num_samples)
    max_examples = _check_optional_int(max_examples, "max_examples",
                                       "test examples to evaluate")
    seed = _check_seed(seed)
    run = runs.RunDirectory(run_dir)
    run.require_finished()
    if output_dir is not None and os.path.exists(output_dir) and (
            not os.path.isdir(output_dir)):
        raise ValueError(f"output_dir {output_dir!r} exists and is not a "
                         "directory. Pass a directory (it is created if "
                         "missing).")
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
    _, (x_test, y_test) = data.load(
        metrics["dataset"], binarize=metrics["binarize"], seed=data_seed
    )
    if max_examples:
        x_test, y_test = x_test[:max_examples], y_test[:max_examples]
    conditional = getattr(model, "num_classes", None) is not None
    protocol = metrics.get("protocol") or data.describe_protocol(
        metrics["dataset"], metrics["binarize"], seed=data_seed
    )
    if max_examples:
        protocol += f"; first {len(x_test)} test examples"
    if conditional:
        protocol += "; log p(x | y) at the true labels"
    result = report(model, x_test, num_samples=k, protocol=protocol,
                    seed=seed, batch_size=batch_size, verbose=verbose,
                    labels=y_test if conditional else None)
    result["run_dir"] = os.path.abspath(run_dir)
    result["train_metrics"] = metrics.get("test")
    paths = write_report(result, run.path if output_dir is None
                         else output_dir)
    return result, paths
