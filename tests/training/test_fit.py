"""Tests of keras_vae.training.fit: `VAE.fit` on arrays through the
in-graph training stream, and the choice of steps per execution.

Oracles: numpy slices of the array (which examples a step trains on), a
hand-written loop of `train_step` calls, Keras' documented semantics of
`batch_size`, `shuffle`, `validation_split`, `steps_per_epoch` and
`initial_epoch`, and an uninterrupted run for resumption.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import callbacks as kcb
from keras_vae.training import fit as fit_lib

SHAPE = (6,)


def _data(n=40, seed=0):
    return (np.random.RandomState(seed).rand(n, 6) < 0.4).astype("float32")


def _model(seed=3, cls=kv.VAE, **kwargs):
    keras.utils.set_random_seed(seed)  # the same initial weights
    base = kv.build_mlp_vae(SHAPE, 2, hidden_units=(8,), seed=seed)
    return cls(base.encoder, base.decoder, likelihood="bernoulli", seed=seed,
               **kwargs)


class _Counting(kv.VAE):
    """A VAE that adds up the examples each train step sees (in float64:
    exact for 0/1 data) and counts the steps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__["seen"] = tf.Variable(tf.zeros(SHAPE, tf.float64),
                                            trainable=False)
        self.__dict__["steps"] = tf.Variable(0, trainable=False)

    def train_step(self, data):
        x, _ = self._unpack(data)
        self.__dict__["seen"].assign_add(
            tf.reduce_sum(tf.cast(x, tf.float64), axis=0))
        self.__dict__["steps"].assign_add(1)
        return super().train_step(data)


def _weights(model):
    return [w.numpy() for w in model.weights]


def _assert_same_weights(a, b):
    for u, v in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(u, v)


def test_fit_trains_on_the_arrays_batches_in_order_without_shuffle():
    # Oracle: train_step called by hand on the numpy slices x[0:8], ...,
    # x[32:40], twice (two epochs), in one compiled loop.
    x = _data(40)
    keras.utils.set_random_seed(0)
    by_fit = _model()
    by_fit.compile(optimizer=keras.optimizers.Adam(1e-2))
    by_fit.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert int(by_fit.optimizer.iterations) == 10

    keras.utils.set_random_seed(0)
    by_hand = _model()
    by_hand.compile(optimizer=keras.optimizers.Adam(1e-2))
    by_hand.optimizer.build(by_hand.trainable_variables)
    batches = [tf.constant(x[i:i + 8]) for i in range(0, 40, 8)] * 2

    @tf.function
    def loop():
        for b in batches:
            by_hand.train_step(b)

    loop()
    _assert_same_weights(by_fit, by_hand)


@pytest.mark.parametrize("shuffle", [True, False])
def test_each_epoch_sees_every_example_once(shuffle):
    x = _data(50)  # 50 = 3 batches of 16 and one of 2
    model = _model(cls=_Counting)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=16, epochs=3, shuffle=shuffle, verbose=0)
    assert int(model.steps.numpy()) == 3 * 4
    np.testing.assert_array_equal(model.seen.numpy(),
                                  3 * x.astype(np.float64).sum(axis=0))


def test_keras_contract_on_arrays():
    x = _data(100)
    model = _model(cls=_Counting)
    model.compile()
    # batch_size defaults to 32, as in Keras: 4 steps per epoch.
    model.fit(x, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 4
    # validation_split holds out the last fraction before shuffling and
    # trains on the rest only; history gets the val_ metrics.
    model.seen.assign(tf.zeros(SHAPE, tf.float64))
    history = model.fit(x, batch_size=10, epochs=2, validation_split=0.3,
                        verbose=0)
    np.testing.assert_array_equal(model.seen.numpy(),
                                  2 * x[:70].astype(np.float64).sum(axis=0))
    assert len(history.history["val_loss"]) == 2
    # steps_per_epoch and initial_epoch as in Keras.
    before = int(model.optimizer.iterations)
    history = model.fit(x, batch_size=10, epochs=5, initial_epoch=2,
                        steps_per_epoch=4, verbose=0)
    assert history.epoch == [2, 3, 4]
    assert int(model.optimizer.iterations) == before + 3 * 4


def test_a_second_fit_continues_where_the_first_stopped():
    x = _data(40)
    once = _model()
    once.compile(optimizer=keras.optimizers.Adam(1e-2))
    once.fit(x, batch_size=8, epochs=4, verbose=0)
    twice = _model()
    twice.compile(optimizer=keras.optimizers.Adam(1e-2))
    twice.fit(x, batch_size=8, epochs=1, verbose=0)
    twice.fit(x, batch_size=8, epochs=3, verbose=0)
    _assert_same_weights(once, twice)


class _StopAt(keras.callbacks.Callback):
    """Kills the run at the end of epoch `epoch` (as a crash would)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_killed_fit_on_an_array_resumes_exactly(tmp_path):
    x = _data(60)
    reference = _model()
    reference.compile(optimizer=keras.optimizers.Adam(1e-2))
    reference.fit(x, batch_size=12, epochs=4, verbose=0)

    killed = _model()
    killed.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(KeyboardInterrupt):
        killed.fit(x, batch_size=12, epochs=4, verbose=0,
                   callbacks=[kcb.BackupAndRestore(str(tmp_path)),
                              _StopAt(1)])
    resumed = _model()
    resumed.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = resumed.fit(x, batch_size=12, epochs=4, verbose=0,
                          callbacks=[kcb.BackupAndRestore(str(tmp_path))])
    assert history.epoch == [2, 3]
    _assert_same_weights(reference, resumed)


class _EveryBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_callbacks_see_every_step_they_act_on(tmp_path):
    x = _data(60)
    model = _model()
    model.compile()
    model.fit(x, batch_size=2, epochs=1, verbose=0)  # 30 steps
    assert model.steps_per_execution == 30
    counter = _EveryBatch()
    model.fit(x, batch_size=2, epochs=1, verbose=0, callbacks=[counter])
    assert counter.batches == 30 and model.steps_per_execution == 1
    backup = kcb.BackupAndRestore(str(tmp_path), save_freq=6)
    model.fit(x, batch_size=2, epochs=1, verbose=0, callbacks=[backup])
    assert model.steps_per_execution == 6


class _PythonOnlySchedule(kcb.KLSchedule):
    def weight_at(self, step):
        return min(step / 10.0, 1.0)


@pytest.mark.parametrize(
    "steps, callbacks, expected",
    [
        (600, [], 50),
        (540, [], 45),  # the largest divisor up to 50
        (7, [], 7),
        (53, [], 1),
        (None, [], 1),
        (600, [keras.callbacks.History(), kcb.NaNGuard()], 50),
        # Schedules are set inside the train step...
        (600, [kcb.LinearKLWarmup(100)], 50),
        # ... unless they only have a Python weight_at.
        (600, [_PythonOnlySchedule()], 1),
        (600, [keras.callbacks.LambdaCallback(on_train_batch_end=print)], 1),
        (600, [keras.callbacks.LambdaCallback(on_epoch_end=print)], 50),
        (600, [keras.callbacks.TerminateOnNaN()], 1),
        (600, [keras.callbacks.EarlyStopping()], 50),
        (600, [keras.callbacks.TensorBoard("/tmp/unused", update_freq=40)], 40),
        (600, [keras.callbacks.TensorBoard("/tmp/unused", update_freq="batch")], 1),
        (600, [keras.callbacks.ModelCheckpoint("/tmp/x.keras", save_freq=75)], 25),
    ],
)
def test_auto_steps_per_execution(steps, callbacks, expected):
    model = _model()
    model.compile()
    assert fit_lib.steps_per_execution_for(model, steps, callbacks) == expected


def test_an_explicit_steps_per_execution_is_kept():
    x = _data(50)
    model = _model()
    model.compile(steps_per_execution=3)  # does not divide 5 steps
    model.fit(x, batch_size=10, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 10
    assert model.steps_per_execution == 3
    with pytest.raises(ValueError, match="'auto'.*Received: "
                                         "steps_per_execution=0"):
        model.compile(steps_per_execution=0)


def test_datasets_get_the_same_choice():
    x = _data(60)
    model = _model()
    model.compile()
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1,
              verbose=0)
    assert model.steps_per_execution == 15
    assert int(model.optimizer.iterations) == 15


def test_auto_is_saved_with_the_model(tmp_path):
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(_data(20), batch_size=10, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_compile_config()["steps_per_execution"] == "auto"
    loaded.fit(_data(40), batch_size=4, verbose=0)
    assert loaded.steps_per_execution == 10
