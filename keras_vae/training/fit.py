"""How `VAE.fit` trains: in-graph batches and several steps per execution.

`vae.fit(x_train, batch_size=100, epochs=10)` on an array trains the way
the fastest path of the package does, with no extra call:

- the batches come from a `keras_vae.data.TrainingStream` read inside the
  compiled train function (no `tf.data` iterator op per step). Batch g is
  a pure function of (seed, g). Each fit starts at the first data epoch
  at or after the optimizer's step count (so its epochs are whole passes
  over the array, as in Keras, and a second `fit` goes on with the next
  epochs of the stream); when a `BackupAndRestore` has restored a run, it
  starts at exactly the restored step, so a resumed run sees the batches
  the interrupted one would have seen. (Exact resume therefore needs the
  interrupted fit to have started at an epoch boundary of its data, which
  holds unless an earlier fit on the model ran a `steps_per_epoch` that is
  not a multiple of the data's.) The seed is derived from `VAE(seed=...)`
  when that is an int (then the whole run is reproducible, and exactly
  resumable), else drawn from numpy's global generator (which
  `keras.utils.set_random_seed` seeds);
- one call of the train function runs several steps
  (`compile(steps_per_execution="auto")`, the VAE's default): the largest
  divisor of the steps per epoch up to `AUTO_STEPS_PER_EXECUTION` that
  lets every callback still see each step it acts on (`callback_period`):
  a callback with per-batch hooks gets every batch, a backup or checkpoint
  saved every k steps gets an execution boundary every k steps; a KL
  schedule is computed by the train step itself, before every step.

Keras' contract holds: `batch_size` (default 32), `shuffle`,
`validation_split` (the last fraction of the array, as Keras takes it),
`validation_data`, `callbacks`, `initial_epoch`, `steps_per_epoch`, the
History and the progress bar. The Keras path (a `tf.data` iterator, Keras'
own batching) remains for datasets, generators, targets `y`, `run_eagerly`
and `tf.distribute` strategies, with the same choice of steps per
execution where the number of batches is known, except under a strategy
with several replicas, where Keras' loop of several steps fails
(keras-team/keras#19246) and each execution runs one step.
"""

import inspect
import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae import progress
from keras_vae.data import checks
from keras_vae.data import stream as stream_lib
from keras_vae.training import distribute

#: Most steps one call of the train function runs under "auto".
AUTO_STEPS_PER_EXECUTION = 50

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end",
                "on_batch_begin", "on_batch_end")
_FIT_SIGNATURE = inspect.signature(keras.Model.fit)
# Keras' own callbacks whose batch hooks only report (any step count works).
_REPORTING = (keras.callbacks.History, keras.callbacks.ProgbarLogger)


def check_steps_per_execution(value):
    """"auto" or an int >= 1, else a ValueError that says so."""
    if value == "auto":
        return value
    return checks.check_int(
        value, "steps_per_execution",
        alternative=("'auto' (the VAE's default: several steps per call, as "
                     "many as the callbacks allow)"))


def _save_period(freq):
    return None if freq == "epoch" else int(freq)


def callback_period(callback):
    """How often `callback` must see the training loop, in steps.

    Returns None when any number of steps per execution works (epoch-level
    callbacks, reporting), k when it acts every k steps (a backup or
    checkpoint with save_freq=k, TensorBoard with update_freq=k), and 1
    when it needs every batch (any other callback with per-batch hooks).
    A callback can say it itself with a method `execution_period()`.
    """
    own = getattr(callback, "execution_period", None)
    if callable(own):
        return own()
    if isinstance(callback, _REPORTING):
        return None
    if isinstance(callback, keras.callbacks.TensorBoard):
        return _save_period(callback.update_freq)
    if isinstance(callback, (keras.callbacks.ModelCheckpoint,
                             keras.callbacks.BackupAndRestore)):
        return _save_period(callback.save_freq)
    for hook in _BATCH_HOOKS:
        if hook in vars(callback):  # LambdaCallback sets its hooks
            return 1
        if getattr(type(callback), hook, None) is not getattr(
            keras.callbacks.Callback, hook
        ):
            return 1
    return None


def steps_per_execution_for(model, steps, callbacks):
    """The steps per execution this fit runs with (see the module doc)."""
    setting = model.__dict__.get("_keras_vae_steps_per_execution", 1)
    strategy = model.distribute_strategy
    several_replicas = distribute._is_multi_worker(strategy) or (
        strategy.num_replicas_in_sync > 1)
    if setting != "auto":
        if several_replicas and int(setting) > 1:
            warnings.warn(
                f"steps_per_execution={setting} under a tf.distribute "
                f"strategy with {strategy.num_replicas_in_sync} replicas "
                "runs one step per execution: Keras' loop of several steps "
                "fails there (an unfed placeholder in its while-loop, "
                "keras-team/keras#19246).", stacklevel=3)
            return 1
        return int(setting)
    if not steps or several_replicas:
        # Keras' loop of several steps fails to run under
        # MultiWorkerMirroredStrategy and under MirroredStrategy with two
        # or more replicas (an unfed placeholder in its while-loop,
        # keras-team/keras#19246, Keras 3.15): one step per execution.
        return 1
    # Executions end at every epoch end and at every step a callback acts
    # on: the steps per execution divide all of those periods.
    common = int(steps)
    for callback in callbacks or ():
        period = callback_period(callback)
        if period is not None:
            common = math.gcd(common, int(period))
    return max(d for d in range(1, min(common, AUTO_STEPS_PER_EXECUTION) + 1)
               if common % d == 0)


def use_steps_per_execution(model, spe):
    """Sets the model's steps per execution; the compiled functions read it
    when they are traced, so they are traced again when it changes."""
    if model.steps_per_execution != spe:
        model.steps_per_execution = spe
        model.train_function = None
        model.test_function = None
        model.predict_function = None


def _one_device(model):
    default = tf.distribute.get_strategy()
    return (model.distribute_strategy is default
            and not tf.distribute.has_strategy())


def _is_array(x):
    return isinstance(x, (np.ndarray, tf.Tensor, list))


def _stream_seed(model):
    """The stream's seed: from VAE(seed=int), else numpy's global RNG."""
    seed = getattr(model, "seed", None)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        # Another use of the model's seed than the sampler's draws.
        return int((int(seed) * 2654435761 + 97) % (2**31 - 1))
    return int(np.random.randint(0, 2**31 - 1))


def _array_stream(model, x, batch_size, shuffle, labels=None):
    """The stream of an array (and of its labels, for a conditional
    model). The last one is kept: a fit on an array of the same shape
    copies its examples into it, so the train function is not traced
    again."""
    kept = model.__dict__.get("_keras_vae_array_stream")
    if (kept is not None and kept.batch_size == batch_size
            and kept.shuffle == shuffle and kept.n == len(x)
            and kept.element_shape == tuple(x.shape[1:])
            and kept.has_labels == (labels is not None)):
        kept.assign_examples(x, labels)
        return kept
    stream = stream_lib.TrainingStream(
        x, batch_size=batch_size, shuffle=shuffle, seed=_stream_seed(model),
        labels=labels,
    )
    model.__dict__["_keras_vae_array_stream"] = stream
    return stream


def _split_validation(model, x, args, labels=None):
    """Keras' validation_split: the last fraction of the examples (and of
    their labels), taken before any shuffling; returns (x, labels) of the
    training part."""
    fraction = args["validation_split"]
    args["validation_split"] = 0.0
    if not fraction or args["validation_data"] is not None:
        return x, labels
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            "`validation_split` must be a float in (0, 1). Received: "
            f"validation_split={fraction!r}"
        )
    split_at = int(math.floor(len(x) * (1.0 - fraction)))
    if split_at == 0 or split_at == len(x):
        raise ValueError(
            f"validation_split={fraction} of {len(x)} examples leaves an "
            "empty training or validation set. Pass more examples or "
            "another fraction."
        )
    if labels is None:
        args["validation_data"] = x[split_at:]
        return x[:split_at], None
    args["validation_data"] = (x[split_at:], labels[split_at:])
    return x[:split_at], labels[:split_at]


def _cardinality(dataset):
    if isinstance(dataset, tf.data.Dataset):
        n = int(dataset.cardinality())
        return n if n > 0 else None
    return None


def _attach_schedule(model, callbacks):
    """Hands the fit's KL schedule to the train step, which sets the
    weight before every step (the compiled functions are made again when
    the schedule changes)."""
    from keras_vae.training import schedules

    found = [c for c in callbacks or () if isinstance(c, schedules.KLSchedule)]
    if len(found) > 1:
        raise ValueError(
            "Pass at most one KL schedule to fit; received "
            f"{[type(c).__name__ for c in found]}."
        )
    schedule = found[0] if found and found[0].in_graph else None
    if schedule is not None:
        schedules._kl_weight_variable(model)  # refuses IWAE, other models
    if model.__dict__.get("_keras_vae_kl_schedule") is not schedule:
        model.__dict__["_keras_vae_kl_schedule"] = schedule
        model.train_function = None


def fit(model, keras_fit, *args, **kwargs):
    """`VAE.fit`: the arguments of `keras.Model.fit`, trained as the module
    docstring says. `keras_fit` is Keras' own `fit` of the model."""
    bound = _FIT_SIGNATURE.bind(model, *args, **kwargs)
    bound.apply_defaults()
    a = dict(bound.arguments)
    del a["self"]
    # One line per epoch where stdout is a log, not a terminal.
    a["verbose"] = progress.fit_verbose(a["verbose"])
    _attach_schedule(model, a["callbacks"])
    x = a["x"]
    if a["sample_weight"] is not None:
        model._unpack((x, None, a["sample_weight"]))  # raises
    conditional = getattr(model, "num_classes", None) is not None
    _check_validation_data(model, a, conditional)
    if isinstance(x, stream_lib.TrainingStream):
        return _fit_stream(model, keras_fit, x, a, from_array=False)
    labels = None
    if _is_array(x):
        x = model.check_data(x)
        if conditional or a["y"] is not None:
            labels = model.check_labels(a["y"], len(x), "y")
            a["y"] = None
    if (_is_array(x) and a["class_weight"] is None
            and _one_device(model) and not model.run_eagerly):
        x, labels = _split_validation(model, x, a, labels)
        batch_size = a["batch_size"] or 32
        stream = _array_stream(model, x, int(batch_size), bool(a["shuffle"]),
                               labels)
        # As Keras: validation batches default to the training batch size.
        a["validation_batch_size"] = a["validation_batch_size"] or batch_size
        a["batch_size"] = None
        return _fit_stream(model, keras_fit, stream, a, from_array=True)
    if _is_array(x):
        a["y"] = labels
        rows = len(x) * (1.0 - (a["validation_split"] or 0.0))
        steps = a["steps_per_epoch"] or math.ceil(rows / (a["batch_size"] or 32))
    else:
        x = model._check_input(x)
        steps = a["steps_per_epoch"] or _cardinality(x)
    a["x"] = x
    use_steps_per_execution(
        model, steps_per_execution_for(model, steps, a["callbacks"])
    )
    return keras_fit(**a)


def _check_validation_data(model, a, conditional):
    """Checks array validation data before training: x_valid, or
    (x_valid, y_valid) for a conditional model."""
    data = a["validation_data"]
    if conditional and isinstance(data, (np.ndarray, tf.Tensor, list)):
        raise ValueError(
            f"This VAE is conditional (num_classes={model.num_classes}): "
            "pass validation_data=(x_valid, y_valid) with the labels."
        )
    if isinstance(data, (np.ndarray, tf.Tensor)):
        a["validation_data"] = model.check_data(data, "validation_data")
    elif conditional and isinstance(data, tuple) and len(data) == 2 and (
            _is_array(data[0])):
        x_valid = model.check_data(data[0], "validation_data x")
        a["validation_data"] = (x_valid, model.check_labels(
            data[1], len(x_valid), "validation_data labels"))


def _fit_stream(model, keras_fit, stream, a, from_array):
    """`fit` with batches read by the train function from `stream`."""
    if a["y"] is not None:
        raise ValueError(
            "A VAE takes no targets y with a stream: pass the examples "
            "only, vae.fit(stream, epochs=...) (a conditional model's "
            "stream carries its labels: TrainingStream(x, labels=y))."
        )
    conditional = getattr(model, "num_classes", None) is not None
    if stream.has_labels != conditional:
        raise ValueError(
            f"This VAE is {'conditional' if conditional else 'unconditional'}"
            f" but the stream {'has' if stream.has_labels else 'has no'} "
            "labels. Build the stream with TrainingStream(x, labels=y) "
            "exactly for a conditional model (num_classes=C)."
        )
    if conditional:
        model.check_labels(stream.labels(), stream.n, "the stream's labels")
    if not from_array:
        if a["batch_size"] is not None:
            raise ValueError(
                f"The stream sets the batch size ({stream.batch_size}); do "
                "not pass batch_size to fit."
            )
        if a["validation_split"]:
            raise ValueError(
                "validation_split splits an array; with a stream pass "
                "validation_data=x_valid instead."
            )
    if stream.element_shape != tuple(model.event_shape):
        raise ValueError(
            f"The stream holds examples of shape {stream.element_shape} but "
            f"the model expects {tuple(model.event_shape)}."
        )
    if not _one_device(model):
        raise ValueError(
            "A TrainingStream is read inside the train function on one "
            "device. Under a tf.distribute strategy pass stream.dataset() "
            "(the same batches, through tf.data) with "
            "steps_per_epoch=stream.steps_per_epoch instead."
        )
    if not from_array:
        model.likelihood.check_support(stream.examples())
    steps = a["steps_per_epoch"] or stream.steps_per_epoch
    spe = steps_per_execution_for(model, steps, a["callbacks"])
    if steps % spe and from_array:
        # An int that does not divide the epoch: Keras' own loop runs the
        # shorter last execution.
        a.update(x=stream.examples(), y=stream.labels(),
                 batch_size=stream.batch_size, shuffle=stream.shuffle)
        use_steps_per_execution(model, spe)
        return keras_fit(**a)
    if steps % spe:
        raise ValueError(
            f"steps_per_epoch={steps} is not a multiple of the model's "
            f"steps_per_execution={spe}; with a stream every call of the "
            "train function runs exactly steps_per_execution steps. Compile "
            "with a divisor of the steps per epoch, or with "
            "steps_per_execution='auto'."
        )
    use_steps_per_execution(model, spe)
    a.update(x=stream.placeholder_dataset(), batch_size=None,
             steps_per_epoch=steps, shuffle=False, validation_split=0.0)
    # Keras asks `make_train_function` (its public hook) for the function
    # to run; while this fit lasts it is the stream's. Keras iterates the
    # placeholder dataset only to count steps.
    # Last in the list: runs after a backup has restored the step. A
    # stream of the caller's is moved only when a backup did restore one
    # (otherwise it stays where its owner put it).
    a["callbacks"] = list(a["callbacks"] or []) + [
        _StartAtOptimizerStep(stream, int(model.optimizer.iterations),
                              only_if_restored=not from_array)
    ]
    previous = model.train_function
    model.__dict__["_keras_vae_active_stream"] = (stream, spe)
    try:
        return keras_fit(**a)
    finally:
        model.__dict__["_keras_vae_active_stream"] = None
        if getattr(model.train_function, "keras_vae_stream", None):
            model.train_function = previous


class _StartAtOptimizerStep(keras.callbacks.Callback):
    """Positions the stream of an array when training begins.

    A fit starts at the first data epoch that begins at or after the
    optimizer's step count, so each of its epochs is a whole pass over the
    array, as in Keras. When a callback (a backup) has changed the step
    count at the start of training, the stream goes to exactly that step:
    a resumed run sees the batches the interrupted one would have seen.
    From then on the stream counts its own steps (a `NaNGuard` rollback
    rewinds the weights, not the data). With `only_if_restored` (a stream
    the caller passed to `fit`) only the second case moves it.
    """

    def __init__(self, stream, step_before, only_if_restored=False):
        super().__init__()
        self.stream = stream
        self.step_before = step_before
        self.only_if_restored = only_if_restored

    def execution_period(self):
        return None

    def on_train_begin(self, logs=None):
        step = int(self.model.optimizer.iterations)
        if step == self.step_before:
            if self.only_if_restored:
                return
            per_epoch = self.stream.steps_per_epoch
            step = -(-step // per_epoch) * per_epoch
        self.stream.seek(step)


def stream_train_function(model, stream, spe):
    """The train function that reads its batches from `stream`'s counter:
    one call runs `spe` steps."""
    cache = model.__dict__.setdefault("_keras_vae_stream_fns", {})
    jit = bool(model.jit_compile)
    key = (id(stream), spe, id(model.optimizer), jit,
           id(model.__dict__.get("_keras_vae_kl_schedule")))
    if key in cache and cache[key][0] is stream:
        return cache[key][1]
    step = model.train_step
    if jit:
        # As Keras does: XLA compiles the step; the batch is read outside
        # it (a stateless shuffle has no XLA kernel).
        step = tf.function(step, jit_compile=True, autograph=False)

    @tf.function(autograph=False)
    def run_steps():
        logs = step(stream.next_batch())
        if spe > 1:
            _, logs = tf.while_loop(
                lambda i, _: i < spe - 1,
                lambda i, _: (i + 1, step(stream.next_batch())),
                (tf.constant(0), logs),
            )
        return logs

    def function(iterator):
        # Keras hands over its iterator; the batches come from the stream.
        del iterator
        return run_steps()

    function.keras_vae_stream = stream
    cache.clear()
    cache[key] = (stream, function)
    return function
