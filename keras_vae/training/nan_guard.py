"""`NaNGuard`: stop, or roll back, training whose loss stops being finite."""

import keras
import numpy as np

from keras_vae.data import checks
from keras_vae.training._checks import (
    _check_steps,
)


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
        self.max_rollbacks = checks.check_int(max_rollbacks, "max_rollbacks",
                                              minimum=0)
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

    def execution_period(self):
        """Checks the logs of each execution: any steps per execution."""
        return None

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
