"""The private Keras and TensorFlow names keras_vae uses, checked against the
installed versions: each test fails with a message that says which name
changed, so a Keras release that breaks one is found here first."""

import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import _keras_internals

PACKAGE = pathlib.Path(kv.__file__).parent


def test_the_installed_keras_is_a_tested_one_and_setup_says_so():
    version = _keras_internals.keras_version()
    assert version in _keras_internals.TESTED_KERAS, (
        f"Keras {keras.__version__} is not among the tested versions "
        f"{_keras_internals.TESTED_KERAS}: run the suite, then add it there "
        "and to setup.py's keras range.")
    setup = (PACKAGE.parent / "setup.py").read_text()
    low, high = re.search(r'"keras>=([\d.]+),<([\d.]+)"', setup).groups()
    for tested in _keras_internals.TESTED_KERAS:
        major, minor = map(int, tested.split("."))
        assert tuple(map(int, low.split("."))) <= (major, minor) < tuple(
            map(int, high.split("."))), (tested, low, high)


class _StartAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.seen = []

    def on_train_begin(self, logs=None):
        _keras_internals.set_initial_epoch(self.model, self.epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


def test_fit_starts_at_the_epoch_a_callback_sets_in_on_train_begin():
    vae = kv.build_mlp_vae((6,), 2, hidden_units=(4,), seed=0)
    vae.compile(optimizer="adam")
    x = np.random.default_rng(0).uniform(size=(20, 6)).astype("float32")
    start = _StartAt(2)
    history = vae.fit(x, epochs=4, batch_size=10, verbose=0,
                      callbacks=[start])
    assert start.seen == [2, 3], (
        f"Keras {keras.__version__} no longer starts fit at "
        "Trainer._initial_epoch set in on_train_begin (epochs seen: "
        f"{start.seen}); keras_vae.callbacks.BackupAndRestore relies on it.")
    assert len(history.history["loss"]) == 2


def test_set_initial_epoch_explains_a_keras_without_the_attribute():
    with pytest.raises(RuntimeError, match="_initial_epoch"):
        _keras_internals.set_initial_epoch(object(), 1)


def test_adam_moments_are_the_slots_keras_updates():
    variable = keras.Variable(np.ones((3,), "float32"))
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build([variable])
    optimizer.apply([tf.constant([1.0, 2.0, 3.0])], [variable])
    m, v = _keras_internals.adam_moments(optimizer, variable)
    # After one step: m = (1 - beta_1) g, v = (1 - beta_2) g^2.
    np.testing.assert_allclose(m.numpy(), 0.1 * np.array([1, 2, 3]),
                               rtol=1e-6)
    np.testing.assert_allclose(v.numpy(), 0.001 * np.array([1, 4, 9]),
                               rtol=1e-5)
    with pytest.raises(RuntimeError, match="_momentums"):
        _keras_internals.adam_moments(object(), variable)


def test_quiet_retracing_marks_the_function():
    fn = _keras_internals.quiet_retracing(tf.function(lambda x: x))
    assert fn._omit_frequent_tracing_warning is True


def test_no_other_module_touches_the_private_names():
    # The names this module wraps, and those keras_vae used before it had
    # public replacements, appear nowhere else in the package.
    names = ("_initial_epoch", "_momentums", "_velocities",
             "_get_variable_index", "_omit_frequent_tracing_warning",
             "_distributed_tf_update_step", "_should_save_on_batch",
             "_load_model", "_save_model", "_trainable_variables",
             "_non_trainable_variables", "_training_metadata_path")
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_keras_internals.py":
            continue
        text = path.read_text()
        used = [n for n in names if re.search(rf"\.{n}\b", text)]
        assert not used, f"{path.name} uses private Keras names {used}"
