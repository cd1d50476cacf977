"""Exact resumption: `BackupAndRestore` and the model fingerprint a backup
must match.
"""

import json
import os
import shutil

import h5py
import keras
import numpy as np

from keras_vae import _keras_internals
from keras_vae.training._checks import (
    _check_steps,
)


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
        self.history_path = os.path.join(self.backup_dir, "epoch_logs.json")
        self._epoch_logs = []
        self._restored_logs = None
        self._resumed = False
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
        self._epoch_logs = []
        self._restored_logs = None
        self._resumed = state is not None
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
        restored = self._read_epoch_logs(epoch)
        self._epoch_logs = list(restored or [])
        self._restored_logs = restored
        _keras_internals.set_initial_epoch(self.model, epoch)
        if done:
            self._partial_epoch = epoch
            self._partial_batches = steps - done

    def _read_epoch_logs(self, epochs):
        """The logs of the first `epochs` epochs from
        BACKUP_DIR/epoch_logs.json (written before the weights, so it holds
        at least as many), or None when the file is missing or short (a
        backup of an older version)."""
        try:
            with open(self.history_path) as f:
                logs = json.load(f)
        except (OSError, ValueError):
            return None
        return logs[:epochs] if len(logs) >= epochs else None

    def restored_history(self):
        """The per-epoch logs of the epochs a resumed `fit` did not run
        itself, as a Keras history dict ({"loss": [...], ...}); {} when
        this `fit` started from scratch, None when the backup predates
        the stored history. Read it after `fit`."""
        if not self._resumed:
            return {}
        if self._restored_logs is None:
            return None
        keys = []
        for logs in self._restored_logs:
            keys.extend(k for k in logs if k not in keys)
        return {k: [logs.get(k, float("nan")) for logs in self._restored_logs]
                for k in keys}

    def execution_period(self):
        """Steps between backups (None: at epoch ends), so that `fit`
        ends an execution at each (`keras_vae.training.fit`)."""
        return None if self.save_freq == "epoch" else int(self.save_freq)

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
        self._epoch_logs.append(
            {k: float(v) for k, v in (logs or {}).items()
             if np.ndim(v) == 0})
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
        # The history of the finished epochs goes first: it may run ahead
        # of the weights after a kill, never behind (restore cuts it).
        tmp = f"{self.history_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self._epoch_logs[:self._epoch], f)
        os.replace(tmp, self.history_path)
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
