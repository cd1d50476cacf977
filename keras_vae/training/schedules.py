"""KL schedules: the weight of the KL term as a function of the global step.

A schedule sets the non-trainable variable `model.sampler.kl_weight` at the
start of every batch from the optimizer's step count, so a resumed run
(whose optimizer state comes back from the backup) continues the schedule
where it stopped. Only the `loss` metric is weighted; `kl_loss` and `elbo`
stay the true, unweighted values.

    warm-up     (Bowman et al. 2016; Sonderby et al. 2016)   LinearKLWarmup
    cyclical    (Fu et al. 2019)                             CyclicalKLSchedule
    constant    (beta-VAE, Higgins et al. 2017)              ConstantKL
"""

import keras
import numpy as np
import tensorflow as tf

from keras_vae.data import checks
from keras_vae.training._checks import (
    _check_number,
    _check_steps,
)


def _kl_weight_variable(model):
    sampler = getattr(model, "sampler", None)
    weight = getattr(sampler, "kl_weight", None)
    if weight is None:
        raise ValueError(
            "KL schedules drive `model.sampler.kl_weight`, the KL weight of "
            "a keras_vae.VAE; the model being trained "
            f"({type(model).__name__}) has none."
        )
    if getattr(model, "objective", "elbo") != "elbo":
        raise ValueError(
            "KL schedules weight the KL term of the ELBO objective, but the "
            f"model uses objective={model.objective!r}, which has no "
            "separate KL term. Train with objective='elbo' or drop the "
            "schedule."
        )
    return weight


class KLSchedule(keras.callbacks.Callback):
    """Base class: sets `model.sampler.kl_weight` to `weight_at(step)`.

    Subclasses implement `weight_at(step) -> float`, a pure function of the
    global optimizer step (0 before the first update), and may implement
    `weight_tensor(step, beta)`, the same function as TensorFlow ops. With
    it (the three schedules here have it) `VAE.fit` sets the weight inside
    the train step, before every step, so any number of steps per execution
    works; without it the weight is set at the start of every training
    batch and `fit` runs one step per execution. Either way the weight is
    reported as `kl_weight` in the epoch logs, so History and TensorBoard
    record it when the schedule comes before them in the callback list.
    """

    def __init__(self):
        super().__init__()
        self._last = None

    def weight_at(self, step):
        raise NotImplementedError

    def weight_tensor(self, step, beta):
        """`weight_at(step)` as TensorFlow ops: step an int64 scalar
        tensor, beta the model's beta; returns a float64 scalar."""
        raise NotImplementedError

    @property
    def in_graph(self):
        """Whether the schedule has `weight_tensor` (set inside the step)."""
        return type(self).weight_tensor is not KLSchedule.weight_tensor

    def _set(self):
        variable = _kl_weight_variable(self.model)
        step = int(self.model.optimizer.iterations)
        weight = float(self.weight_at(step))
        if weight != self._last:
            variable.assign(weight)
            self._last = weight
        return weight

    def execution_period(self):
        """Any steps per execution when the train step sets the weight
        itself, else one (`keras_vae.training.fit`)."""
        return None if self.in_graph else 1

    def on_train_begin(self, logs=None):
        self._last = None
        self._set()

    def on_train_batch_begin(self, batch, logs=None):
        self._set()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = float(
                np.asarray(_kl_weight_variable(self.model))
            )


class LinearKLWarmup(KLSchedule):
    """KL weight rising linearly from `start` to `end` over `warmup_steps`.

    weight(step) = start + (end - start) * min(step / warmup_steps, 1),
    the deterministic warm-up of Bowman et al. (2016) and Sonderby et al.
    (2016): early on the decoder learns to use z before the KL term pulls
    q(z|x) onto the prior, which avoids posterior collapse.

    Args:
        warmup_steps: int >= 1, optimizer steps to reach `end`.
        start: float >= 0, default 0.0.
        end: float >= 0 or None (default): the model's `beta`.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> vae.compile(optimizer="adam")
        >>> history = vae.fit(x_train, epochs=3, batch_size=100, verbose=0,
        ...                   callbacks=[LinearKLWarmup(warmup_steps=20)])
        >>> # The weight of the last step of each epoch: 9/20, 19/20, 1.
        >>> [round(w, 4) for w in history.history["kl_weight"]]
        [0.45, 0.95, 1.0]
    """

    def __init__(self, warmup_steps, start=0.0, end=None):
        super().__init__()
        if warmup_steps == 0:
            raise ValueError(
                "A warm-up of zero steps is no warm-up: `warmup_steps` must "
                "be an int >= 1. Received: warmup_steps=0. For a constant KL "
                "weight use ConstantKL(beta) or VAE(beta=...)."
            )
        self.warmup_steps = _check_steps(warmup_steps, "warmup_steps")
        self.start = _check_number(start, "start")
        self.end = None if end is None else _check_number(end, "end")

    def _end(self):
        if self.end is not None:
            return self.end
        return float(getattr(self.model, "beta", 1.0))

    def weight_at(self, step):
        fraction = min(max(step, 0) / self.warmup_steps, 1.0)
        return self.start + (self._end() - self.start) * fraction

    def weight_tensor(self, step, beta):
        end = self.end if self.end is not None else float(beta)
        step = tf.cast(tf.maximum(step, 0), tf.float64)
        fraction = tf.minimum(step / self.warmup_steps, 1.0)
        return self.start + (end - self.start) * fraction

    def get_config(self):
        return {"warmup_steps": self.warmup_steps, "start": self.start,
                "end": self.end}


class CyclicalKLSchedule(KLSchedule):
    """Cyclical KL annealing (Fu et al. 2019).

    Training is split into cycles of `cycle_steps`; within each cycle the
    weight rises linearly from `start` to `end` over the first `ratio` of
    the cycle and stays at `end` for the rest (the paper uses 4 cycles and
    ratio 0.5). Each restart lets the encoder escape a collapsed posterior
    with the help of the decoder learned in the previous cycle.

        tau(step)    = (step mod cycle_steps) / cycle_steps
        weight(step) = start + (end - start) * min(tau / ratio, 1)

    Args:
        cycle_steps: int >= 1, optimizer steps per cycle.
        ratio: float in (0, 1], default 0.5, share of a cycle spent rising.
        start: float >= 0, default 0.0.
        end: float >= 0 or None (default): the model's `beta`.
        num_cycles: int >= 1 or None (default: cycle until the end). After
            `num_cycles` cycles the weight stays at `end`.
    """

    def __init__(self, cycle_steps, ratio=0.5, start=0.0, end=None,
                 num_cycles=None):
        super().__init__()
        self.cycle_steps = _check_steps(cycle_steps, "cycle_steps")
        self.ratio = _check_number(ratio, "ratio", 0.0, allow_equal=False)
        if self.ratio > 1.0:
            raise ValueError(
                f"`ratio` must be in (0, 1]. Received: ratio={ratio!r}"
            )
        self.start = _check_number(start, "start")
        self.end = None if end is None else _check_number(end, "end")
        self.num_cycles = None if num_cycles is None else _check_steps(
            num_cycles, "num_cycles"
        )

    def weight_at(self, step):
        end = self.end if self.end is not None else float(
            getattr(self.model, "beta", 1.0)
        )
        step = max(step, 0)
        if self.num_cycles is not None and (
            step >= self.num_cycles * self.cycle_steps
        ):
            return end
        tau = (step % self.cycle_steps) / self.cycle_steps
        return self.start + (end - self.start) * min(tau / self.ratio, 1.0)

    def weight_tensor(self, step, beta):
        end = self.end if self.end is not None else float(beta)
        step = tf.maximum(step, 0)
        tau = tf.cast(step % self.cycle_steps, tf.float64) / self.cycle_steps
        rising = self.start + (end - self.start) * tf.minimum(
            tau / self.ratio, 1.0)
        if self.num_cycles is None:
            return rising
        return tf.where(step >= self.num_cycles * self.cycle_steps,
                        tf.constant(end, tf.float64), rising)

    def get_config(self):
        return {"cycle_steps": self.cycle_steps, "ratio": self.ratio,
                "start": self.start, "end": self.end,
                "num_cycles": self.num_cycles}


class ConstantKL(KLSchedule):
    """A constant KL weight beta at every step (the beta-VAE objective,
    Higgins et al. 2017). Equivalent to `VAE(beta=beta)`, but can be changed
    for one `fit` call without rebuilding the model.

    Args:
        beta: float >= 0.
    """

    def __init__(self, beta):
        super().__init__()
        self.beta = _check_number(beta, "beta")

    def weight_at(self, step):
        return self.beta

    def weight_tensor(self, step, beta):
        return tf.constant(self.beta, tf.float64)

    def get_config(self):
        return {"beta": self.beta}


def kl_schedule(warmup_steps=0, cycle_steps=0, cycle_ratio=0.5):
    """The schedule for CLI-style settings, or None (constant beta).

    Raises ValueError for negative step counts or both schedules at once.
    """
    for name, value in (("warmup_steps", warmup_steps),
                        ("cycle_steps", cycle_steps)):
        checks.check_int(value, name, minimum=0, what="0: off")
    if warmup_steps and cycle_steps:
        raise ValueError(
            "Choose one KL schedule: a linear warm-up (warmup_steps="
            f"{warmup_steps}) or cyclical annealing (cycle_steps="
            f"{cycle_steps}), not both."
        )
    if warmup_steps:
        return LinearKLWarmup(warmup_steps)
    if cycle_steps:
        return CyclicalKLSchedule(cycle_steps, ratio=cycle_ratio)
    return None
