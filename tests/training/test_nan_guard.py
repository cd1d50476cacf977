"""Tests of keras_vae.training.nan_guard: NaNGuard stops or rolls back."""

import keras
import numpy as np

from keras_vae import callbacks as kcb
from helpers import binary_data, tiny_vae


class _PoisonAt(keras.callbacks.Callback):
    """Sets the decoder's output bias to NaN just before the given step."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            bias = self.model.decoder.layers[-1].bias
            bias.assign(np.full(bias.shape, np.nan, "float32"))


def test_nan_guard_stops_and_restores_the_last_good_weights(capsys):
    model = tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    guard = kcb.NaNGuard(mode="stop", snapshot_every=2)
    snapshots = {}

    class Keep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations)
            snapshots[step] = [w.copy() for w in self.model.get_weights()]

    model.fit(binary_data(80), batch_size=10, epochs=3, verbose=0,
              shuffle=False, callbacks=[Keep(), _PoisonAt(5), guard])
    assert model.stop_training
    assert len(guard.events) == 1
    event = guard.events[0]
    assert event["step"] == 6 and event["action"] == "stop"
    assert event["restored_step"] == 4
    for a, b in zip(model.get_weights(), snapshots[4]):
        np.testing.assert_array_equal(a, b)
    assert "at step 6" in capsys.readouterr().out


def test_nan_guard_rolls_back_and_training_goes_on():
    model = tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    guard = kcb.NaNGuard(mode="rollback", snapshot_every=1, verbose=False)
    history = model.fit(binary_data(80), batch_size=10, epochs=2, verbose=0,
                        callbacks=[_PoisonAt(3), guard])
    assert [e["action"] for e in guard.events] == ["rollback"]
    assert int(model.optimizer.iterations) == 16  # the step count goes on
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert np.isfinite(history.history["loss"][-1])
