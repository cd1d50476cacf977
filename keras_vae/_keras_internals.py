"""The private Keras names keras_vae relies on, all in this module.

keras_vae uses Keras' public hooks wherever one exists (`train_step`,
`make_train_function`, `Callback` methods, `Optimizer.apply` and
`update_step`, `Layer.save_own_variables`). Three things have none:

- `Trainer._initial_epoch`: the epoch `fit` starts from. `fit` reads its
  `initial_epoch` argument before any callback runs, so a callback that
  restores a run in `on_train_begin` (Keras' own `BackupAndRestore`, and
  `keras_vae.callbacks.BackupAndRestore`) can only move the start through
  this attribute, which `fit` reads after `on_train_begin`.
- `Adam._momentums`, `Adam._velocities` and `Optimizer._get_variable_index`:
  the first and second moments of one variable, which
  `keras_vae.optimizers.FusedAdam` hands to TensorFlow's fused kernel
  (Keras lists them in `optimizer.variables` but says nowhere which is
  whose).
- TensorFlow's `tf.function` attribute `_omit_frequent_tracing_warning`:
  the evaluation traces a few functions per model, once each, and without
  it TensorFlow warns of "excessive retracing" after a few models.

`tests/test_keras_internals.py` checks that Keras and TensorFlow still
behave so; when a release changes one of them, that test, and the function
here that uses it, fail with a message that names the attribute and the
versions keras_vae was tested with (`TESTED_KERAS`, also the `keras` range
in setup.py).
"""

import keras

#: The Keras versions (major.minor) the test suite has been run with.
TESTED_KERAS = ("3.15",)


def keras_version():
    """The installed Keras version as "major.minor"."""
    return ".".join(keras.__version__.split(".")[:2])


def set_initial_epoch(model, epoch):
    """Makes the running `fit` of `model` start at `epoch` (0-based).

    Call it from a callback's `on_train_begin`.

    Raises:
        RuntimeError: this Keras has no `Trainer._initial_epoch`.
    """
    if not hasattr(model, "_initial_epoch"):
        raise RuntimeError(
            f"Keras {keras.__version__} has no `Trainer._initial_epoch`, "
            "which keras_vae uses to resume `fit` at the epoch of a backup "
            f"(tested with Keras {', '.join(TESTED_KERAS)}). Install a "
            "tested Keras (see setup.py) or report this to keras_vae."
        )
    model._initial_epoch = int(epoch)


def adam_moments(optimizer, variable):
    """(first moment, second moment) slot variables of `variable` in a
    built Keras `Adam`.

    Raises:
        RuntimeError: this Keras keeps Adam's moments elsewhere.
    """
    try:
        index = optimizer._get_variable_index(variable)
        return optimizer._momentums[index], optimizer._velocities[index]
    except AttributeError as error:
        raise RuntimeError(
            f"Keras {keras.__version__} no longer keeps Adam's moments in "
            f"`_momentums` / `_velocities` ({error}); FusedAdam needs them "
            f"(tested with Keras {', '.join(TESTED_KERAS)}). Use "
            "keras.optimizers.Adam, or install a tested Keras."
        ) from None


def quiet_retracing(function):
    """Marks a `tf.function` as traced on purpose once per model, so that
    TensorFlow does not warn of excessive retracing across models. Returns
    it. Harmless where TensorFlow ignores the mark."""
    function._omit_frequent_tracing_warning = True
    return function
