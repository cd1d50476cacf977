"""Training callbacks: KL schedules, a NaN guard, exact resumption, images.

KL schedules set the weight of the KL term, the non-trainable variable
`model.sampler.kl_weight`, at the start of every batch from the optimizer's
step count. The weight is therefore a function of the global step only, and
a resumed run (whose optimizer state, step count included, comes back from
the backup) continues the schedule where it stopped. Only the `loss` metric
is weighted; `kl_loss` and `elbo` stay the true, unweighted values.

    warm-up     (Bowman et al. 2016; Sonderby et al. 2016)   LinearKLWarmup
    cyclical    (Fu et al. 2019)                             CyclicalKLSchedule
    constant    (beta-VAE, Higgins et al. 2017)              ConstantKL

Free bits (Kingma et al. 2016) are not a schedule: they are part of the
objective, `VAE(free_bits=...)`.

`standard_callbacks` assembles what `keras-vae train` uses for every run:
the schedule, `NaNGuard`, `BackupAndRestore` in RUN_DIR/backup and
TensorBoard logs (scalars, reconstructions and samples) in
RUN_DIR/tensorboard.
"""

import json
import math
import os
import shutil

import h5py
import keras
import numpy as np
import tensorflow as tf

from keras_vae import _keras_internals


def _check_number(value, name, minimum=0.0, allow_equal=True):
    ok = (
        isinstance(value, (int, float, np.floating, np.integer))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= minimum if allow_equal else value > minimum)
    )
    if not ok:
        bound = ">=" if allow_equal else ">"
        raise ValueError(
            f"`{name}` must be a finite number {bound} {minimum}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _check_steps(value, name):
    if isinstance(value, bool) or not isinstance(
        value, (int, np.integer)
    ) or value < 1:
        raise ValueError(
            f"`{name}` must be an int >= 1 (optimizer steps). Received: "
            f"{name}={value!r}"
        )
    return int(value)


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
    global optimizer step (0 before the first update). The weight is set at
    the start of every training batch (with `steps_per_execution` > 1, once
    per execution) and reported as `kl_weight` in the epoch logs, so History
    and TensorBoard record it when the schedule comes before them in the
    callback list.
    """

    def __init__(self):
        super().__init__()
        self._last = None

    def weight_at(self, step):
        raise NotImplementedError

    def _set(self):
        variable = _kl_weight_variable(self.model)
        step = int(self.model.optimizer.iterations)
        weight = float(self.weight_at(step))
        if weight != self._last:
            variable.assign(weight)
            self._last = weight
        return weight

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

    Example:
        >>> vae.fit(ds, epochs=10, steps_per_epoch=600,
        ...         callbacks=[LinearKLWarmup(warmup_steps=6000)])
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

    def get_config(self):
        return {"beta": self.beta}


def _is_rollback_skipped(variable):
    # The step counter keeps counting through a rollback, so the step stays
    # aligned with the data stream and with the schedules.
    return variable.path.split("/")[-1] == "iteration"


class NaNGuard(keras.callbacks.Callback):
    """Stops, or rolls back, training whose loss stops being finite.

    After every batch the guard checks the monitored logs. While they are
    finite it keeps a copy of the model's weights and the optimizer's state
    every `snapshot_every` steps. When one becomes NaN or infinite it
    restores the last copy and either stops training (`mode="stop"`) or
    goes on from there with the next batches (`mode="rollback"`, at most
    `max_rollbacks` times, then it stops). It prints what happened and at
    which step, and keeps the same information in `events`.

    The optimizer's step counter is not rolled back: it keeps counting the
    steps actually run, so KL schedules and the data stream stay aligned.
    The epoch's running metrics are reset after a rollback (they hold the
    non-finite value).

    Args:
        mode: "rollback" (default) or "stop".
        snapshot_every: int >= 1, default 100. Steps between copies.
        max_rollbacks: int >= 0, default 3.
        monitor: tuple of log names, default ("loss",).
        verbose: bool, default True. Print each event.
    """

    MODES = ("rollback", "stop")

    def __init__(self, mode="rollback", snapshot_every=100, max_rollbacks=3,
                 monitor=("loss",), verbose=True):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(
                f"Unknown NaNGuard mode {mode!r}. Expected one of "
                f"{list(self.MODES)}."
            )
        self.mode = mode
        self.snapshot_every = _check_steps(snapshot_every, "snapshot_every")
        if isinstance(max_rollbacks, bool) or not isinstance(
            max_rollbacks, int
        ) or max_rollbacks < 0:
            raise ValueError(
                "`max_rollbacks` must be an int >= 0. Received: "
                f"max_rollbacks={max_rollbacks!r}"
            )
        self.max_rollbacks = max_rollbacks
        self.monitor = tuple(monitor)
        self.verbose = verbose
        self.events = []
        self._epoch = 0

    def _variables(self):
        model = self.model
        variables = list(model.trainable_variables) + [
            v for v in model.non_trainable_variables
            if "seed_generator" not in v.path  # fresh noise after a rollback
        ]
        optimizer = model.optimizer
        if optimizer is not None and optimizer.built:
            variables += [
                v for v in optimizer.variables if not _is_rollback_skipped(v)
            ]
        return variables

    def _snapshot(self):
        self._saved = [np.array(v) for v in self._variables()]
        self._saved_step = int(self.model.optimizer.iterations)

    def _restore(self):
        for variable, value in zip(self._variables(), self._saved):
            variable.assign(value)

    def on_train_begin(self, logs=None):
        self.events = []
        self._rollbacks = 0
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._snapshot()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        step = int(self.model.optimizer.iterations)
        bad = {
            name: float(np.asarray(logs[name])) for name in self.monitor
            if name in logs and not np.all(np.isfinite(np.asarray(logs[name])))
        }
        if not bad:
            if step - self._saved_step >= self.snapshot_every:
                self._snapshot()
            return
        self._restore()
        self.model.reset_metrics()
        what = ", ".join(f"{k} = {v}" for k, v in bad.items())
        stop = self.mode == "stop" or self._rollbacks >= self.max_rollbacks
        if stop:
            self.model.stop_training = True
            action = "stop"
            text = (
                f"restored the weights of step {self._saved_step} and "
                "stopped training"
            )
            if self.mode == "rollback":
                text += f" (after {self._rollbacks} rollbacks)"
        else:
            self._rollbacks += 1
            action = "rollback"
            text = (
                f"rolled back to the weights of step {self._saved_step} and "
                f"continues with the next batches (rollback "
                f"{self._rollbacks} of at most {self.max_rollbacks})"
            )
        event = {
            "step": step, "epoch": self._epoch, "batch": int(batch),
            "values": bad, "action": action,
            "restored_step": self._saved_step,
        }
        self.events.append(event)
        if self.verbose:
            print(
                f"\nNaNGuard: {what} at step {step} (epoch {self._epoch + 1}, "
                f"batch {batch + 1}); {text}.", flush=True,
            )


# ---------------------------------------------------------------------------
# Exact resumption
# ---------------------------------------------------------------------------


def model_fingerprint(model):
    """What must match for a backup to be restored into `model`: the model
    class, its data and latent shapes, objective and likelihood, and the
    shape of every weight (names differ between processes, shapes do not).
    """
    likelihood = getattr(model, "likelihood", None)
    return {
        "class": type(model).__name__,
        "event_shape": list(getattr(model, "event_shape", ()) or ()),
        "latent_dim": getattr(model, "latent_dim", None),
        "objective": getattr(model, "objective", None),
        "likelihood": None if likelihood is None else type(
            likelihood
        ).__name__,
        "weight_shapes": [list(map(int, v.shape)) for v in model.weights],
    }


def _describe_difference(saved, current):
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if a != b:
            if key == "weight_shapes":
                a = f"{len(a or [])} weights" if a is not None else a
                b = f"{len(b or [])} weights" if b is not None else b
                if a == b:
                    a, b = "other shapes", "these shapes"
            diffs.append(f"{key}: backup {a}, this model {b}")
    return "; ".join(diffs)


class BackupAndRestore(keras.callbacks.Callback):
    """Backs a run up as it trains and resumes it exactly, mid-epoch too.

    The callback writes the weights (with the optimizer state, the
    `Sampling` layer's seed state and the KL weight, which are all model or
    optimizer variables) to BACKUP_DIR/latest.weights.h5 every `save_freq`
    steps or every epoch, and restores them at the start of the next `fit`
    with the same directory. It also records how many training steps (global
    batches) the run has taken and the number of steps per epoch, so that:

    - `resume_step()` tells, before `fit`, where the data stream must start
      (build it with `keras_vae.resume.make_step_dataset(...,
      start_step=backup.resume_step())`);
    - the interrupted epoch is finished with only its remaining batches, so
      the resumed run takes the same steps, on the same data, with the same
      noise, as an uninterrupted one and ends with the same weights;
    - a backup written by a different model (other shapes, objective,
      likelihood) or with another `steps_per_epoch` is refused with a clear
      error instead of being loaded half-way.

    With `double_checkpoint=True` the previous backup is kept beside the
    latest (`*.bkp`); when the latest cannot be read (a disk error, a file
    truncated by a full disk), the run resumes from the previous one, says
    so, and takes the same steps from there.

    Steps are counted by the callback, not read from `optimizer.iterations`,
    which does not count the steps a float16 `LossScaleOptimizer` skips.
    The step count is stored inside the weights file, which is written to a
    temporary name and renamed: a kill cannot leave them out of step.

    The file names are those of `keras.callbacks.BackupAndRestore`; the
    callback uses Keras' public `Callback` hooks only, and
    `keras_vae._keras_internals.set_initial_epoch` to start `fit` at the
    restored epoch.

    Args:
        backup_dir: str. Directory of the backup, owned by this callback.
        save_freq: "epoch" (default) or an int: save every that many steps.
        double_checkpoint: bool, default False. Keep the previous backup as
            a fallback.
        delete_checkpoint: bool, default True. Remove the backup directory
            when training ends normally.
    """

    _ATTR = "keras_vae_backup"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed.")
        if save_freq != "epoch":
            _check_steps(save_freq, "save_freq")
        self.backup_dir = str(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self.weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self.metadata_path = os.path.join(self.backup_dir,
                                          "training_metadata.json")
        self.previous_weights_path = f"{self.weights_path}.bkp"
        self.previous_metadata_path = f"{self.metadata_path}.bkp"
        self._step = 0
        self._last_saved_step = 0
        self._epoch = 0
        self._save_after_epoch = False
        self._batch_begin = 0
        self._epoch_now = None
        self._partial_epoch = None
        self._partial_batches = None
        self._claimed_stop = False

    # -- reading the backup, without a model ------------------------------
    def _read_state_of(self, path):
        try:
            with h5py.File(path, "r") as f:
                text = f.attrs.get(self._ATTR)
        except OSError as error:
            return None, error
        if text is None:
            raise ValueError(
                f"{self.backup_dir!r} holds a backup that keras_vae did not "
                "write (no step recorded in it), so it cannot be resumed "
                "exactly. Delete it to start over, or use another directory."
            )
        return json.loads(text), None

    def _usable_backup(self):
        """(path, state, error of the latest if it was unreadable) of the
        backup to resume from, or (None, None, None) when there is none."""
        if not os.path.exists(self.weights_path):
            return None, None, None
        state, error = self._read_state_of(self.weights_path)
        if error is None:
            return self.weights_path, state, None
        if os.path.exists(self.previous_weights_path):
            previous, previous_error = self._read_state_of(
                self.previous_weights_path)
            if previous_error is None:
                return self.previous_weights_path, previous, error
        raise ValueError(
            f"The backup {self.weights_path!r} cannot be read ({error})"
            + (" and there is no readable previous backup"
               if self.double_checkpoint else "")
            + f". Delete {self.backup_dir!r} to start the run over."
        )

    def read_state(self):
        """The recorded state of the backup a `fit` would resume from (dict
        with "step", "steps_per_epoch", "optimizer_iterations",
        "fingerprint"), or None when there is none. An unreadable latest
        backup falls back to the previous one (`double_checkpoint=True`)."""
        return self._usable_backup()[1]

    def resume_step(self):
        """The global step the next `fit` starts from: 0 without a backup."""
        state = self.read_state()
        return 0 if state is None else int(state["step"])

    def check_model(self, model, steps_per_epoch=None):
        """Raises ValueError if the backup cannot be restored into `model`
        (or was written with another `steps_per_epoch`). Does nothing when
        there is no backup."""
        state = self.read_state()
        if state is None:
            return
        current = model_fingerprint(model)
        if state["fingerprint"] != current:
            raise ValueError(
                f"The backup in {self.backup_dir!r} was written by a "
                "different model and cannot be resumed into this one ("
                f"{_describe_difference(state['fingerprint'], current)}). "
                "Use a new run directory, or delete the backup directory to "
                "start this run from scratch."
            )
        if steps_per_epoch and state["steps_per_epoch"] != steps_per_epoch:
            raise ValueError(
                f"The backup in {self.backup_dir!r} was written with "
                f"{state['steps_per_epoch']} steps per epoch but this run has "
                f"{steps_per_epoch}. Resume with the same data, batch size "
                "and steps per epoch, or delete the backup to start over."
            )

    # -- restoring ---------------------------------------------------------
    def _restore(self):
        path, state, latest_error = self._usable_backup()
        steps = (self.params or {}).get("steps")
        self._step = 0
        self._last_saved_step = 0
        self._epoch = 0
        self._save_after_epoch = False
        self._partial_epoch = None
        if state is None:
            return
        if not self.model.built:
            raise ValueError(
                "To use BackupAndRestore the model must be built before fit."
            )
        self.check_model(self.model, steps)
        if not steps:
            raise ValueError(
                "Exact resumption needs a known number of steps per epoch: "
                "pass `steps_per_epoch` to fit (the data stream of "
                "keras_vae.resume.make_step_dataset is infinite)."
            )
        if latest_error is not None:
            print(
                f"BackupAndRestore: the latest backup {self.weights_path!r} "
                f"cannot be read ({latest_error}); resuming from the "
                f"previous one, at step {state['step']}.", flush=True)
            # The previous backup becomes the latest (Keras reads weights
            # only from a *.weights.h5 name).
            shutil.copyfile(path, f"{self.weights_path}.tmp")
            os.replace(f"{self.weights_path}.tmp", self.weights_path)
            path = self.weights_path
            if os.path.exists(self.previous_metadata_path):
                shutil.copyfile(self.previous_metadata_path,
                                self.metadata_path)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(path)
        iterations = int(self.model.optimizer.iterations)
        if iterations != state["optimizer_iterations"]:
            raise ValueError(
                f"The backup in {self.backup_dir!r} is inconsistent: it "
                f"records optimizer step {state['optimizer_iterations']} but "
                f"holds {iterations}. Delete it to start over."
            )
        self._step = int(state["step"])
        self._last_saved_step = self._step
        epoch, done = divmod(self._step, steps)
        self._epoch = epoch
        _keras_internals.set_initial_epoch(self.model, epoch)
        if done:
            self._partial_epoch = epoch
            self._partial_batches = steps - done

    # -- Keras hooks -------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._claimed_stop = False
        self._restore()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_now = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_begin = batch

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last batch of the execution (steps_per_execution).
        self._step += batch - self._batch_begin + 1
        if self._partial_epoch is not None and self._epoch_now == (
            self._partial_epoch
        ) and batch + 1 >= self._partial_batches:
            # The restored epoch had some batches done before the
            # interruption: end it after the remaining ones (the flag is
            # cleared again in on_epoch_end, so training goes on).
            if not self.model.stop_training:
                self.model.stop_training = True
                self._claimed_stop = True
        if self._should_save_now():
            self._save(batch)

    def on_epoch_end(self, epoch, logs=None):
        if self._claimed_stop:
            self.model.stop_training = False
            self._claimed_stop = False
        if epoch == self._partial_epoch:
            self._partial_epoch = None
        self._epoch = epoch + 1
        if self.save_freq == "epoch" or self._save_after_epoch:
            self._save_after_epoch = False
            self._last_saved_step = self._step
            self._save(0)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    # -- saving ------------------------------------------------------------
    def _should_save_now(self):
        # Counts optimizer steps, not callback calls, so it is right with
        # several steps per execution.
        if self.save_freq == "epoch":
            return False
        if self._step - self._last_saved_step < self.save_freq:
            return False
        steps = (self.params or {}).get("steps")
        if steps and self._step % steps == 0:
            # The last step of an epoch: back up in on_epoch_end instead,
            # after validation, which draws from the model's RNG too. A
            # backup taken before it would resume with an RNG state the
            # uninterrupted run never had.
            self._save_after_epoch = True
            return False
        self._last_saved_step = self._step
        return True

    def _save(self, batch):
        os.makedirs(self.backup_dir, exist_ok=True)
        state = {
            "step": self._step,
            "steps_per_epoch": (self.params or {}).get("steps"),
            "optimizer_iterations": int(self.model.optimizer.iterations),
            "fingerprint": model_fingerprint(self.model),
        }
        partial = os.path.join(self.backup_dir, "partial.weights.h5")
        self.model.save_weights(partial, overwrite=True)
        # The step lives inside the weights file, so weights and step are
        # replaced together by one rename.
        with h5py.File(partial, "a") as f:
            f.attrs[self._ATTR] = json.dumps(state)
        if self.double_checkpoint and os.path.exists(self.weights_path):
            # Copied, not moved: a latest backup exists at every instant.
            for src, dst in ((self.weights_path, self.previous_weights_path),
                             (self.metadata_path,
                              self.previous_metadata_path)):
                if os.path.exists(src):
                    shutil.copyfile(src, f"{dst}.tmp")
                    os.replace(f"{dst}.tmp", dst)
        os.replace(partial, self.weights_path)
        metadata = {"epoch": self._epoch, "batch": batch, **state}
        tmp = f"{self.metadata_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(metadata, f)
        os.replace(tmp, self.metadata_path)


# ---------------------------------------------------------------------------
# TensorBoard images
# ---------------------------------------------------------------------------


def image_grid(images, columns):
    """Tiles (N, H, W, C) images into one (1, rows * H, columns * W, C)."""
    images = np.asarray(images, dtype="float32")
    n, h, w, c = images.shape
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, h, w, c), "float32")
    padded[:n] = images
    grid = padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4)
    return grid.reshape(1, rows * h, columns * w, c)


def _as_images(x):
    x = np.asarray(x, dtype="float32")
    if x.ndim == 3:
        x = x[..., None]
    return np.clip(x, 0.0, 1.0)


def is_image_shape(event_shape):
    """True for (H, W) or (H, W, C) with C in 1 or 3."""
    shape = tuple(event_shape)
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))


class ImageSummaries(keras.callbacks.Callback):
    """Writes reconstructions and prior samples to TensorBoard each epoch.

    Two image summaries per epoch, in `log_dir`: "reconstructions" (rows of
    inputs alternating with the mean of p(x|z) at z = z_mean) and "samples"
    (the mean of p(x|z) for z ~ N(0, I), fixed seed, so the same latent
    points are shown every epoch). Values are clipped to [0, 1] for display.

    Args:
        log_dir: str, e.g. RUN_DIR/tensorboard/images.
        images: array (N, H, W[, C]) of inputs to reconstruct (N <= 64).
        num_samples: int >= 1, default 16.
        seed: int, default 0.
        every_epochs: int >= 1, default 1.
    """

    def __init__(self, log_dir, images, num_samples=16, seed=0,
                 every_epochs=1):
        super().__init__()
        images = np.asarray(images, dtype="float32")
        if images.ndim < 3 or not is_image_shape(images.shape[1:]):
            raise ValueError(
                "ImageSummaries needs images of shape (N, H, W) or "
                f"(N, H, W, C) with C 1 or 3. Received: {images.shape}"
            )
        self.log_dir = log_dir
        self.images = images[:64]
        self.num_samples = _check_steps(num_samples, "num_samples")
        self.seed = seed
        self.every_epochs = _check_steps(every_epochs, "every_epochs")
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        x = self.images
        columns = 8
        recon = self.model.reconstruct(x, mode="mean").reshape(x.shape)
        pairs = []
        for start in range(0, len(x), columns):
            pairs.append(_as_images(x[start:start + columns]))
            pairs.append(_as_images(recon[start:start + columns]))
        pairs = [np.concatenate(
            [p, np.zeros((columns - len(p),) + p.shape[1:], "float32")]
        ) for p in pairs]
        samples = self.model.sample(self.num_samples, seed=self.seed)
        with self._writer.as_default():
            tf.summary.image(
                "reconstructions", image_grid(np.concatenate(pairs), columns),
                step=epoch,
                description="inputs (odd rows) and mean reconstructions "
                            "(even rows)",
            )
            tf.summary.image(
                "samples",
                image_grid(_as_images(samples.reshape(
                    (-1,) + x.shape[1:])), columns),
                step=epoch, description="mean of p(x|z), z ~ N(0, I)",
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# ---------------------------------------------------------------------------
# What `keras-vae train` uses
# ---------------------------------------------------------------------------


def kl_schedule(warmup_steps=0, cycle_steps=0, cycle_ratio=0.5):
    """The schedule for CLI-style settings, or None (constant beta).

    Raises ValueError for negative step counts or both schedules at once.
    """
    for name, value in (("warmup_steps", warmup_steps),
                        ("cycle_steps", cycle_steps)):
        if isinstance(value, bool) or not isinstance(
            value, (int, np.integer)
        ) or value < 0:
            raise ValueError(
                f"`{name}` must be an int >= 0 (0: off). Received: "
                f"{name}={value!r}"
            )
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


def standard_callbacks(run_dir, model=None, steps_per_epoch=None,
                       warmup_steps=0, cycle_steps=0, cycle_ratio=0.5,
                       nan_guard="rollback", save_freq="epoch", images=None,
                       tensorboard=True):
    """The callbacks of a `keras-vae train` run, in the order they must run.

    1. the KL schedule (so `kl_weight` reaches the logs),
    2. `NaNGuard` (before the backup, so a non-finite state is never saved),
    3. `BackupAndRestore` in RUN_DIR/backup,
    4. `keras.callbacks.TensorBoard` in RUN_DIR/tensorboard (scalars) and
       `ImageSummaries` in RUN_DIR/tensorboard/images.

    Everything is checked here, before training writes anything: the
    schedule settings, and, when `model` is given, that a backup left in
    RUN_DIR/backup belongs to this model and `steps_per_epoch`.

    Args:
        run_dir: str.
        model: the compiled model, or None to skip the backup check.
        steps_per_epoch: int or None.
        warmup_steps, cycle_steps, cycle_ratio: see `kl_schedule`.
        nan_guard: "rollback" (default), "stop" or None (off).
        save_freq: "epoch" or int, the backup frequency.
        images: array of a few inputs for the image summaries, or None.
        tensorboard: bool, default True.

    Returns:
        (callbacks list, the BackupAndRestore callback).
    """
    schedule = kl_schedule(warmup_steps, cycle_steps, cycle_ratio)
    if schedule is not None and model is not None:
        _kl_weight_variable(model)
    result = [] if schedule is None else [schedule]
    if nan_guard is not None:
        result.append(NaNGuard(mode=nan_guard))
    # The previous backup is kept as a fallback for an unreadable latest.
    backup = BackupAndRestore(os.path.join(run_dir, "backup"),
                              save_freq=save_freq, double_checkpoint=True)
    if model is not None:
        backup.check_model(model, steps_per_epoch)
    result.append(backup)
    if tensorboard:
        try:
            import tensorboard as _  # noqa: F401  (tf.summary needs it)
        except ImportError:
            raise ImportError(
                "TensorBoard logs need the tensorboard package: pip install "
                "'tensorboard>=2.21,<2.22' (or pass tensorboard=False)."
            ) from None
        log_dir = os.path.join(run_dir, "tensorboard")
        result.append(keras.callbacks.TensorBoard(log_dir=log_dir))
        if images is not None and is_image_shape(np.shape(images)[1:]):
            result.append(
                ImageSummaries(os.path.join(log_dir, "images"), images)
            )
    return result, backup


NAN_GUARD_MODES = ("rollback", "stop", "off")


def check_train_options(config):
    """Checks the training options of a `keras_vae.runs.TrainConfig`.

    Covers the objective, free bits, KL schedule, clipping, strategy (and
    TF_CONFIG for "multi_worker"), mixed precision, XLA, backup frequency and
    NaN guard settings; raises ValueError naming the first bad one, before
    any data is loaded or file written.
    """
    from keras_vae import distribute
    from keras_vae.vae import OBJECTIVES

    if config.objective not in OBJECTIVES:
        raise ValueError(
            f"Unknown objective {config.objective!r}. Expected one of "
            f"{list(OBJECTIVES)}."
        )
    _check_number(config.free_bits, "free_bits")
    schedule = kl_schedule(config.warmup_steps, config.cycle_steps)
    if config.objective == "iwae" and (
        schedule is not None or config.free_bits or config.beta != 1.0
    ):
        raise ValueError(
            "KL schedules, free bits and beta act on the KL term of the ELBO; "
            "the IWAE objective has none. Received objective='iwae' with "
            f"warmup_steps={config.warmup_steps}, cycle_steps="
            f"{config.cycle_steps}, free_bits={config.free_bits}, beta="
            f"{config.beta}. Use objective='elbo' for them."
        )
    _check_number(config.clipnorm, "clipnorm")
    if config.strategy not in distribute.STRATEGIES:
        distribute.get_strategy(config.strategy)  # raises with the list
    if config.strategy == "multi_worker":
        distribute.parse_tf_config()
    distribute.check_dtype_policy(config.mixed_precision)
    distribute.jit_compile_flag(config.jit_compile)
    if config.save_freq != "epoch":
        _check_steps(config.save_freq, "save_freq")
    if config.nan_guard not in NAN_GUARD_MODES:
        raise ValueError(
            f"Unknown nan_guard {config.nan_guard!r}. Expected one of "
            f"{list(NAN_GUARD_MODES)}."
        )
