"""Amortization: q(z|x) refined per example with `keras.optimizers.Adam`,
MAP latents, and the decomposition of the inference gap into approximation
and amortization parts (Cremer, Li & Duvenaud 2018).
"""

import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae.data import checks
from keras_vae.evaluation.results import (
    _summary,
    RefineResult,
    MAPResult,
)
from keras_vae.evaluation._common import (
    check_num_samples,
    _check_optional_int,
    _check_learning_rate,
    _check_seed,
    _prepare_labelled,
    _encode,
    _quiet,
    _log_px_at,
    _posterior_mean,
)
from keras_vae.evaluation.importance import (
    DEFAULT_MAX_VALUES,
    _importance_sample,
    log_likelihood,
)


def _objective(model, kind, x, variables, num_samples, seed, step,
               labels=None):
    """Per-example objective (B,) to maximise over `variables`.

    kind "elbo": the ELBO of q with parameters `posterior.from_encoder(
    variables)` (reparameterized draws, closed-form KL where the parts have
    one), noise stateless in (seed, step). kind "map": log p(x|z) + log p(z)
    at z = variables[0]. A conditional model's `labels` condition p(x|z).
    """
    if kind == "map":
        z = variables[0]
        return model.log_px_z(x, z, labels=labels) + model.prior.log_prob(z)
    params = model.posterior.from_encoder(list(variables))
    eps = tf.random.stateless_normal(
        tf.concat([[num_samples], model.posterior.noise_shape(params)], 0),
        seed=tf.stack([seed, tf.cast(step, tf.int64)]),
    )
    # (S, B, latent_dim) and (S, B)
    z, log_qz = model.posterior.sample_and_log_prob(params, eps)
    return model.elbo_terms_at(x, params, z, log_qz=log_qz,
                               labels=labels)["elbo"]


def _run_optimiser(model, kind, x, start_params, steps, learning_rate,
                   num_samples, seed, batch_size, labels=None):
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
        lb = None if labels is None else tf.constant(
            labels[s:s + batch_size])
        variables = [tf.Variable(p[s:s + batch_size], dtype=tf.float32)
                     for p in start_params]
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        optimizer.build(variables)
        batch_seed = tf.constant(seed * 100003 + b, tf.int64)
        k = tf.constant(num_samples, tf.int32)

        def step(i):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_sum(_objective(
                    model, kind, xb, variables, k, batch_seed, i, lb))
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
    return checks.check_int(steps, "steps",
                            what="gradient steps per example")


def refine(model, x, steps=500, learning_rate=1e-2, num_samples=1, seed=0,
           batch_size=None, eval_samples=100, labels=None):
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
        labels: int array (N,), a conditional model's labels (q starts at
            q(z | x, y) and the ELBO is that of log p(x | y)).

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
    x, labels = _prepare_labelled(model, x, labels)
    initial = _encode(model, x, labels)
    raw, seconds = _run_optimiser(
        model, "elbo", x, initial, steps, learning_rate, num_samples, seed,
        batch_size, labels,
    )
    refined = tuple(np.asarray(p, np.float32) for p in
                    model.posterior.from_encoder([tf.constant(r)
                                                  for r in raw]))

    def elbo_of(proposal):
        _, reconstruction, _, kl = _importance_sample(
            model, x, eval_samples, seed + 1, None, None, 0, proposal,
            DEFAULT_MAX_VALUES, labels,
        )
        return reconstruction - kl

    return RefineResult(
        params=refined, elbo_initial=elbo_of(initial),
        elbo_refined=elbo_of(refined), steps=steps,
        learning_rate=learning_rate, seconds=seconds,
    )


def map_estimate(model, x, steps=500, learning_rate=1e-2, seed=0,
                 batch_size=None, labels=None):
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
        labels: int array (N,), a conditional model's labels.

    Returns:
        `MAPResult`.
    """
    steps = _check_steps(steps)
    learning_rate = _check_learning_rate(learning_rate)
    seed = _check_seed(seed)
    batch_size = _check_optional_int(batch_size, "batch_size",
                                     "examples per step")
    x, labels = _prepare_labelled(model, x, labels)
    start = _posterior_mean(model, _encode(model, x, labels))
    (z,), seconds = _run_optimiser(
        model, "map", x, (start,), steps, learning_rate, 1, seed, batch_size,
        labels,
    )
    log_px_z = _log_px_at(model, x, z, labels=labels)
    log_pz = np.asarray(model.prior.log_prob(tf.constant(z, tf.float64)),
                        np.float64)
    return MAPResult(z=z, log_joint=log_px_z + log_pz, log_px_z=log_px_z,
                     log_pz=log_pz, steps=steps, learning_rate=learning_rate,
                     seconds=seconds)


def _time_encoder(model, x, batch_size=1000, labels=None):
    def encode(start, stop):
        lb = None if labels is None else labels[start:stop]
        return model.posterior_params(tf.constant(x[start:stop]),
                                      labels=lb)

    encode(0, 1)  # warm-up
    start = time.perf_counter()
    for s in range(0, len(x), batch_size):
        np.asarray(encode(s, s + batch_size)[0])
    return time.perf_counter() - start


def amortization_gap(model, x, num_samples=1000, steps=500,
                     learning_rate=1e-2, seed=0, map_steps=None,
                     verbose="auto", return_per_example=False, labels=None):
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
        labels: int array (N,), a conditional model's labels: every term
            is then given y (log p(x | y) and its gaps).

    Returns:
        dict: the gaps with standard errors, the per-route ELBOs, log p(x),
        the MAP log-joint, and the seconds per example of each route.
    """
    k = check_num_samples(num_samples)
    steps = _check_steps(steps)
    map_steps = steps if map_steps is None else _check_steps(map_steps)
    learning_rate = _check_learning_rate(learning_rate)
    seed = _check_seed(seed)
    x, labels = _prepare_labelled(model, x, labels)
    n = len(x)
    encoder_seconds = _time_encoder(model, x, labels=labels)
    amortized_q = _encode(model, x, labels)
    # Trace the sampling function before timing it.
    log_likelihood(model, x[:1], 1, verbose=0,
                   labels=None if labels is None else labels[:1])
    start = time.perf_counter()
    amortized = log_likelihood(model, x, k, seed=seed, verbose=verbose,
                               proposal=amortized_q, labels=labels)
    is_seconds = time.perf_counter() - start
    refined = refine(model, x, steps=steps, learning_rate=learning_rate,
                     seed=seed, eval_samples=1, labels=labels)
    refined_ll = log_likelihood(
        model, x, k, seed=seed + 7, verbose=verbose,
        proposal=refined.params, labels=labels,
    )
    best = refined_ll if refined_ll.mean > amortized.mean else amortized
    log_px = best.values
    elbo_amortized = amortized.elbo
    elbo_refined = refined_ll.elbo
    map_result = map_estimate(model, x, steps=map_steps,
                              learning_rate=learning_rate, seed=seed,
                              labels=labels)
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
