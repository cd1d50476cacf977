"""The training stream: batches of examples, in-graph or through tf.data.

One definition of the batches (below), three ways to read them:

- `TrainingStream` (`GraphStream`): batch g as a pure function of
  (seed, g), computed inside the train function (no iterator op per
  step), so that a run killed and restarted resumes exactly;
- `make_step_dataset` / `TrainingStream.dataset()`: the same batches
  through `tf.data`, which a `tf.distribute` strategy splits over
  replicas. `training_stream` picks one of the two for a model;
- `make_dataset`: a finite `tf.data` pipeline for scripts and evaluation:
  each new iterator (each epoch of `fit`) draws a fresh stream seed and
  yields that stream's first epoch, so every epoch is reshuffled and, with
  dynamic binarization, redrawn.

Every stream converts and checks its array by the one rule of
`keras_vae.data.checks` and draws dynamic binarization with
`keras_vae.data.protocols.bernoulli_draw`.

Exact resume. For a run killed and restarted to end with the same weights
as one that was not, every random choice must be a function of where
training is, not of how it got there. The model side is covered by the
backup (weights, optimizer state with the step counter, the `Sampling`
layer's seed state; see `keras_vae.callbacks.BackupAndRestore`). The data
side is the step-indexed streams: the batch of global step g is

    epoch e = g // steps_per_epoch,  batch b = g % steps_per_epoch
    order of epoch e     = a permutation drawn from (seed, e)
    batch g              = x[order[b * batch_size : (b + 1) * batch_size]]
    dynamic binarization = Bernoulli(batch g) drawn from (seed, g)

(stateless TensorFlow random ops), so a stream started at step g yields
exactly what an uninterrupted stream yields from step g on. By contrast a
`tf.data` shuffle with `reshuffle_each_iteration` draws the order of its
k-th pass from how many passes came before, which a restarted process does
not know.

    backup = keras_vae.callbacks.BackupAndRestore(f"{run_dir}/backup")
    stream = make_step_dataset(x_train, 100, binarize="dynamic", seed=0,
                               start_step=backup.resume_step())
    vae.fit(stream, epochs=10, callbacks=[backup],
            steps_per_epoch=steps_per_epoch(len(x_train), 100))
"""

import tensorflow as tf

from keras_vae.data import checks
from keras_vae.data import protocols

def steps_per_epoch(num_examples, batch_size, drop_remainder=False):
    """Number of batches in one pass over `num_examples` examples."""
    checks.check_int(num_examples, "num_examples")
    checks.check_int(batch_size, "batch_size")
    if drop_remainder:
        if num_examples < batch_size:
            raise ValueError(
                f"drop_remainder=True with {num_examples} examples and "
                f"batch_size={batch_size} leaves no batch at all."
            )
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def index_batches(n, batch_size, drop_remainder):
    """Returns a function: an index order (n,) -> a dataset of its batches.

    Each batch is a slice of the order, cut by one reshape rather than by
    `Dataset.batch` over n scalar elements. Shared by `make_dataset` and
    `make_step_dataset`.
    """
    full = n // batch_size

    def split(perm):
        head = tf.data.Dataset.from_tensor_slices(
            tf.reshape(perm[: full * batch_size], (full, batch_size))
        )
        if drop_remainder or n % batch_size == 0:
            return head
        return head.concatenate(
            tf.data.Dataset.from_tensors(perm[full * batch_size:])
        )

    return split


def make_dataset(
    x,
    batch_size=100,
    binarize=None,
    shuffle=True,
    seed=None,
    drop_remainder=False,
    repeat=False,
):
    """Builds the tf.data pipeline of images that `VAE.fit` consumes.

    Elements are float32 batches of x only (a VAE needs no targets). Each
    new pass over the dataset (each epoch of `fit`) draws a stream seed
    from `tf.data.Dataset.random(..., rerandomize_each_iteration=True)` and
    yields the first epoch of the `TrainingStream` of that seed: the same
    example order and, with `binarize="dynamic"`, the same
    x ~ Bernoulli(pixel) draws (Burda et al. 2016's dynamic binarization),
    computed by the same functions. So every pass is reshuffled and
    redrawn, and with an int `seed` the sequence of passes is
    reproducible. (A stateful random op with a fixed seed inside `map`
    would repeat the same draws at every epoch.) With `repeat=True` the
    pass continues into the stream's next epochs.

    Args:
        x: array-like (N, ...) of images, e.g. `x_train` from `load`.
            Converted by the one rule of `keras_vae.data.checks` (uint8
            / 255, as `load` does). With binarize="dynamic" the values must
            lie in [0, 1].
        batch_size: int > 0, default 100.
        binarize: None or "none" (batches as given), or "dynamic". Static
            and threshold binarization are one-off transforms: use `load`
            or `binarize_once` for them.
        shuffle: bool, default True. Shuffles the whole set, anew each epoch.
        seed: int or None. Seed of the shuffle and of the binarization
            draws; with an int the sequence of epochs is reproducible.
        drop_remainder: bool, default False. Drop the last smaller batch.
        repeat: bool, default False. Repeat forever (then pass
            `steps_per_epoch` to fit).

    Returns:
        `tf.data.Dataset` of float32 tensors (batch, ...), prefetched.

    Raises:
        ValueError: bad batch_size, binarize or seed, empty x, x given as an
            (x, y) tuple, non-finite x, or values outside [0, 1] with
            binarize="dynamic".

    Examples:
        >>> (x_train, _), _ = kv.datasets.load("mnist", binarize="dynamic")
        >>> ds = make_dataset(x_train[:1000], batch_size=100,
        ...                   binarize="dynamic")
        >>> {float(v) for v in np.unique(next(iter(ds)))}  # binary pixels
        {0.0, 1.0}
        >>> vae = kv.build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> vae.compile(optimizer="adam")
        >>> history = vae.fit(ds, epochs=2, verbose=0)  # fresh draws each epoch
        >>> len(history.history["loss"])
        2
    """
    batch_size = checks.check_int(batch_size, "batch_size")
    mode = protocols.check_binarize(
        binarize,
        valid=("none", "dynamic"),
        hint=(
            "make_dataset only re-binarizes on the fly ('dynamic'); static "
            "and threshold binarization are one-off transforms done by "
            "load(..., binarize=...) or binarize_once."
        ),
    )
    if seed is not None:
        checks.check_seed(seed, high=2**63, why="tf.data's int64 seeds")
    checks.check_examples_only(x, "make_dataset")
    x = checks.to_float32(x, "x", consumer="make_dataset")
    if mode == "dynamic":
        checks.check_probabilities(x, "x", mode)

    n = len(x)
    steps = steps_per_epoch(n, batch_size, drop_remainder)
    data = tf.constant(x)
    binarize = mode if mode == "dynamic" else None

    def one_pass(stream_seed):
        # The training stream of seed `stream_seed`: its first epoch, or
        # all its epochs with repeat=True.
        shuffle_key, binarize_key = _stream_keys(stream_seed)
        epochs = (tf.data.Dataset.counter() if repeat
                  else tf.data.Dataset.range(1))
        return tf.data.Dataset.zip((
            _step_indices(epochs, n, batch_size, shuffle, shuffle_key,
                          drop_remainder),
            tf.data.Dataset.from_tensors(binarize_key).repeat()))

    def load(step_idx, binarize_key):
        step, idx = step_idx
        # A free batch dimension, as Dataset.batch gives: one trace of the
        # train step serves the last, smaller batch too.
        idx = tf.compat.v1.placeholder_with_default(idx, shape=[None])
        return _load(data, None, binarize, binarize_key, step, idx)

    # A new iterator (each epoch of `fit`) draws a new stream seed; with an
    # int seed the sequence of those draws is reproducible.
    dataset = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).take(1).flat_map(one_pass).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not repeat:
        # flat_map hides the length; Keras needs it to end an epoch cleanly.
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(steps))
    options = tf.data.Options()
    # The images are one constant of the input graph: tf.data's default
    # graph rewrites would serialize it (the whole data set) again for every
    # new iterator, i.e. every epoch. Keras turns them off for numpy input
    # for the same reason.
    options.experimental_optimization.apply_default_optimizations = False
    # Under tf.distribute, each worker takes its share of every batch.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


_SHUFFLE_STREAM = 1  # fold-in tags keep the two uses of the seed apart
_BINARIZE_STREAM = 2


def _check_stream_args(x, binarize, seed, start_step, what):
    """The checks `make_step_dataset` and `GraphStream` share; returns x as
    a float32 numpy array and the binarize mode ("none" or "dynamic")."""
    mode = protocols.check_binarize(
        binarize, valid=("none", "dynamic"),
        hint=("static and threshold binarization are done once, by "
              "keras_vae.datasets.load."),
    )
    checks.check_seed(seed, high=2**31, why="TensorFlow's int32 seeds")
    checks.check_int(start_step, "start_step", minimum=0)
    checks.check_examples_only(x, what)
    x = checks.to_float32(x, "x", consumer=what)
    if mode == "dynamic":
        checks.check_probabilities(x, "x", mode)
    return x, mode


def _check_stream_labels(labels, n):
    """None, or labels (n,) as int32 numpy: whole numbers >= 0 (the model
    checks the number of classes)."""
    if labels is None:
        return None
    return checks.check_labels(labels, None, n, "labels")


def _stream_keys(seed):
    """The (shuffle, binarize) keys both streams derive from the seed."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return (tf.random.experimental.stateless_fold_in(key, _SHUFFLE_STREAM),
            tf.random.experimental.stateless_fold_in(key, _BINARIZE_STREAM))


def _epoch_order(n, shuffle, shuffle_key, epoch):
    """The example order of `epoch`: a permutation drawn from (seed, epoch)."""
    if not shuffle:
        return tf.range(n, dtype=tf.int64)
    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64),
        seed=tf.random.experimental.stateless_fold_in(shuffle_key, epoch),
    )


def _binarized(batch, binarize_key, step):
    """x ~ Bernoulli(batch), drawn from (seed, global step)."""
    return protocols.bernoulli_draw(
        batch, tf.random.experimental.stateless_fold_in(binarize_key, step)
    )


def _step_indices(epochs, n, batch_size, shuffle, shuffle_key,
                  drop_remainder):
    """(global step, example indices) of every batch of `epochs` (a dataset
    of int64 epoch numbers), in the stream's order."""
    steps = steps_per_epoch(n, batch_size, drop_remainder)
    split = index_batches(n, batch_size, drop_remainder)

    def epoch_indices(epoch):
        order = _epoch_order(n, shuffle, shuffle_key, epoch)
        # zip, not enumerate + map: no function call per batch.
        return tf.data.Dataset.zip((
            tf.data.Dataset.range(epoch * steps, (epoch + 1) * steps),
            split(order)))

    return epochs.flat_map(epoch_indices)


def _load(data, labels, binarize, binarize_key, step, idx):
    """The batch of global step `step`: the examples `idx`, binarized from
    (seed, step) when dynamic, with their labels when there are any."""
    batch = tf.gather(data, idx)
    if binarize == "dynamic":
        batch = _binarized(batch, binarize_key, step)
    if labels is not None:
        return batch, tf.gather(labels, idx)
    return batch


def make_step_dataset(x, batch_size=100, binarize=None, shuffle=True, seed=0,
                      start_step=0, drop_remainder=False, labels=None):
    """An infinite `tf.data` stream whose batch g depends only on (seed, g):
    `TrainingStream(x, ...).dataset()`, the form a `tf.distribute` strategy
    splits over its replicas.

    Args and raises: as `TrainingStream`.

    Returns:
        `tf.data.Dataset` of float32 batches (b, ...) ((batch, labels)
        pairs with `labels`), infinite: give `fit`
        `steps_per_epoch=steps_per_epoch(len(x), batch_size)`.
    """
    return TrainingStream(
        x, batch_size=batch_size, binarize=binarize, shuffle=shuffle,
        seed=seed, start_step=start_step, drop_remainder=drop_remainder,
        labels=labels,
    ).dataset()


class TrainingStream:
    """The training stream: batch g of the examples as a pure function of
    (seed, g), read in-graph on one device or through `tf.data`.

    One object, fed from an array, gives the same batches step for step
    in both forms (by the same stateless ops):

    - in-graph (`batch(step)`, `next_batch()`): the compiled train function
      reads its batch from a tensor in memory. Fetching from a `tf.data`
      iterator is an op that must wait for the previous step's updates and
      hand over to tf.data's threads; on the 2-core CPU that cost a large
      share of an MNIST MLP step (benchmarks/RESULTS.md, train_throughput).
      `VAE.fit` trains this way on arrays and on a stream given to it;
    - `dataset()`: the same batches through `tf.data`, which a
      `tf.distribute` strategy splits over its replicas.

    Give it to `VAE.fit` in place of a dataset:

        stream = TrainingStream(x_train, 100, binarize="dynamic", seed=0,
                                start_step=backup.resume_step())
        vae.fit(stream, epochs=10, callbacks=[backup])

    The stream keeps its position in a step counter (a variable, not saved
    with the model: pass `start_step` to resume; `VAE.fit` on arrays
    follows the optimizer's step count instead) and the current epoch's
    order, drawn once per epoch. The in-graph form needs the whole data set
    in memory and one device. The images are one tensor on TensorFlow's
    default device, the GPU when there is one, so that no step copies a
    batch from the host. With `jit_compile=True` XLA compiles each step and
    the batch is read outside it.

    Args:
        x: array (N, ...) of examples, converted by the one rule of
            `keras_vae.data.checks` (uint8 / 255); grey values in [0, 1]
            for binarize="dynamic".
        batch_size: int >= 1, default 100. The global batch size: under a
            `tf.distribute` strategy each global batch is split over the
            replicas.
        binarize: None (examples as given) or "dynamic": a fresh
            x ~ Bernoulli(pixel) draw for every batch (Burda et al. 2016's
            protocol), from (seed, g).
        shuffle: bool, default True. A new order every epoch, from
            (seed, epoch); False keeps the order of x.
        seed: int in [0, 2**31 - 1], default 0.
        start_step: int >= 0, default 0. The first global step the stream
            yields; pass `BackupAndRestore.resume_step()` to resume.
        drop_remainder: bool, default False. Drop the smaller last batch
            of every epoch.
        labels: None (default), or integer class labels (N,) for a
            conditional VAE: every batch is then the pair (x batch, labels
            of the same examples), int32.

    Raises:
        ValueError: bad batch_size, binarize, seed or start_step, empty or
            non-finite x, values outside [0, 1] with binarize="dynamic",
            labels that are not one non-negative integer per example.

    Examples:
        >>> stream = TrainingStream(np.zeros((10, 3)), batch_size=4,
        ...                         shuffle=False)
        >>> stream.steps_per_epoch, tuple(stream.batch(2).shape)
        (3, (2, 3))
    """

    def __init__(self, x, batch_size=100, binarize=None, shuffle=True,
                 seed=0, start_step=0, drop_remainder=False, labels=None):
        x, binarize = _check_stream_args(x, binarize, seed, start_step,
                                         type(self).__name__)
        self.n = int(x.shape[0])
        labels = _check_stream_labels(labels, self.n)
        self.has_labels = labels is not None
        self.batch_size = checks.check_int(batch_size, "batch_size")
        self.drop_remainder = bool(drop_remainder)
        self.steps_per_epoch = steps_per_epoch(
            self.n, self.batch_size, self.drop_remainder
        )
        self.binarize = binarize if binarize == "dynamic" else None
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.start_step = int(start_step)
        self.element_shape = tuple(x.shape[1:])
        with tf.init_scope():
            # A variable, so that `assign_examples` gives the same traced
            # train function new examples of the same shape.
            self._data = tf.Variable(x, trainable=False,
                                     name="stream_examples")
            self._shuffle_key, self._binarize_key = _stream_keys(self.seed)
            self._step = tf.Variable(self.start_step, dtype=tf.int64,
                                     trainable=False, name="stream_step")
            self._order = tf.Variable(tf.range(self.n, dtype=tf.int64),
                                      trainable=False, name="stream_order")
            self._order_epoch = tf.Variable(-1, dtype=tf.int64,
                                            trainable=False,
                                            name="stream_epoch")
            self._labels = None if labels is None else tf.Variable(
                labels, trainable=False, name="stream_labels")

    @property
    def step(self):
        """The global step of the next batch `next_batch` returns."""
        return int(self._step.numpy())

    def seek(self, step):
        """Moves the stream to global step `step` (an int >= 0)."""
        self._step.assign(checks.check_int(step, "step", minimum=0))

    def examples(self):
        """The examples (N, ...) as float32 numpy, for checks."""
        return self._data.numpy()

    def labels(self):
        """The labels (N,) as int32 numpy, or None."""
        return None if self._labels is None else self._labels.numpy()

    def assign_examples(self, x, labels=None):
        """Replaces the examples by `x`, an array of the same shape (and
        the labels of a labelled stream by `labels`), checked as in the
        constructor; the stream's seed and position stay."""
        x, _ = _check_stream_args(x, self.binarize, self.seed, 0,
                                  type(self).__name__)
        if x.shape != tuple(self._data.shape):
            raise ValueError(
                f"assign_examples needs examples of shape "
                f"{tuple(self._data.shape)}; received {x.shape}."
            )
        labels = _check_stream_labels(labels, self.n)
        if (labels is None) != (self._labels is None):
            raise ValueError(
                "assign_examples needs labels exactly when the stream was "
                f"built with them (this one {'was' if self.has_labels else 'was not'})."
            )
        self._data.assign(x)
        if labels is not None:
            self._labels.assign(labels)

    def _epoch_order(self, epoch):
        # The order is drawn once per epoch and kept in a variable.
        if not self.shuffle:
            return _epoch_order(self.n, False, None, epoch)

        def draw():
            order = _epoch_order(self.n, True, self._shuffle_key, epoch)
            with tf.control_dependencies([
                self._order.assign(order),
                self._order_epoch.assign(epoch),
            ]):
                return tf.identity(order)

        return tf.cond(tf.equal(epoch, self._order_epoch),
                       self._order.read_value, draw)

    def _full_batches(self):
        return self.n % self.batch_size == 0 or self.drop_remainder

    def batch(self, step):
        """Batch number `step` (int64 scalar tensor) of the stream."""
        step = tf.convert_to_tensor(step, tf.int64)
        epoch = step // self.steps_per_epoch
        b = step % self.steps_per_epoch
        order = self._epoch_order(epoch)
        start = b * self.batch_size
        size = tf.minimum(tf.cast(self.batch_size, tf.int64),
                          self.n - start)
        indices = order[start:start + size]
        if self._full_batches():
            # Every batch is full: a static batch size lets TensorFlow fold
            # the step's shape arithmetic into constants.
            indices = tf.ensure_shape(indices, (self.batch_size,))
        return _load(self._data, self._labels, self.binarize,
                     self._binarize_key, step, indices)

    def next_batch(self):
        """The next batch; advances the step counter (call in a function)."""
        step = self._step.assign_add(1, read_value=True) - 1
        return self.batch(step)

    def dataset(self, start_step=None):
        """The same stream through `tf.data`: infinite, from `start_step`
        (default: the stream's `start_step`); give `fit`
        `steps_per_epoch=stream.steps_per_epoch`."""
        start = self.start_step if start_step is None else checks.check_int(
            start_step, "start_step", minimum=0)
        start_epoch, start_batch = divmod(start, self.steps_per_epoch)
        # Constants: tf.data (and a strategy's copies of the pipeline)
        # should not capture the variables.
        data = tf.constant(self._data.numpy())
        labels = (None if self._labels is None
                  else tf.constant(self._labels.numpy()))
        binarize, binarize_key = self.binarize, self._binarize_key
        stream = _step_indices(
            tf.data.Dataset.counter(start_epoch), self.n, self.batch_size,
            self.shuffle, self._shuffle_key, self.drop_remainder,
        ).skip(start_batch).map(
            lambda step, idx: _load(data, labels, binarize, binarize_key,
                                    step, idx),
            num_parallel_calls=tf.data.AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = True
        # Every worker builds the same stream; each takes its share of
        # every global batch (no file sources to shard by).
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return stream.with_options(options).prefetch(tf.data.AUTOTUNE)

    def placeholder_dataset(self):
        """What `fit` iterates over while the train function reads the
        stream: one example batch, repeated, never fetched per step."""
        first = self._data[: self.batch_size]
        if self._labels is not None:
            first = (first, self._labels[: self.batch_size])
        return tf.data.Dataset.from_tensors(first).repeat()


#: The name earlier releases gave the in-graph use of the stream.
GraphStream = TrainingStream


def training_stream(model, x, **kwargs):
    """The step-indexed stream `keras-vae train` feeds `model.fit`.

    The `TrainingStream` itself when the model trains on one device (no
    `tf.distribute` strategy), else its `dataset()` (the same batches,
    through `tf.data`, which a strategy can split over its replicas).
    kwargs are those of `TrainingStream`. With the dataset, give `fit`
    `steps_per_epoch=steps_per_epoch(len(x), batch_size)`; a stream knows
    its own.
    """
    default = tf.distribute.get_strategy()
    one_device = (model.distribute_strategy is default
                  and not tf.distribute.has_strategy())
    stream = TrainingStream(x, **kwargs)
    return stream if one_device else stream.dataset()
