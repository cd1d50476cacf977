"""Tests of keras_vae.data.stream: make_dataset, step streams, GraphStream."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import datasets
from keras_vae import resume
from helpers import assert_same, binomial_tolerance, is_binary


def _epoch(dataset):
    return np.concatenate([batch.numpy() for batch in dataset])


def _take(dataset, n):
    return [b.numpy() for b in dataset.take(n)]


# -- make_dataset -------------------------------------------------------------


def test_make_dataset_dynamic_fresh_draw_each_epoch(mnist_grey):
    grey = mnist_grey[0][0][:2000]
    dataset = datasets.make_dataset(
        grey, batch_size=500, binarize="dynamic", shuffle=False, seed=7
    )
    assert dataset.element_spec == tf.TensorSpec(
        (None, 28, 28, 1), tf.float32
    )
    first, second = _epoch(dataset), _epoch(dataset)
    assert first.shape == second.shape == grey.shape
    tolerance = binomial_tolerance(grey)
    for epoch in (first, second):
        assert is_binary(epoch)
        assert abs(epoch.mean() - grey.mean()) < tolerance
        # shuffle=False keeps the order: certain pixels stay certain.
        assert np.all(epoch[grey == 0.0] == 0.0)
        assert np.all(epoch[grey == 1.0] == 1.0)
    # Independent draws disagree on a pixel with probability 2 p (1 - p).
    expected_flips = float(np.mean(2 * grey * (1 - grey)))
    assert abs(np.mean(first != second) - expected_flips) < 0.1 * expected_flips

    # The sequence of epochs is reproducible from the seed.
    again = datasets.make_dataset(
        grey, batch_size=500, binarize="dynamic", shuffle=False, seed=7
    )
    assert_same(_epoch(again), first)


def test_make_dataset_dynamic_repeat_keeps_drawing():
    grey = np.full((6, 4, 4, 1), 0.5, dtype=np.float32)
    dataset = datasets.make_dataset(
        grey, batch_size=3, binarize="dynamic", shuffle=False, seed=1, repeat=True
    )
    batches = [batch.numpy() for batch in dataset.take(6)]
    epochs = [np.concatenate(batches[i : i + 2]) for i in (0, 2, 4)]
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])


def test_make_dataset_dynamic_fresh_draw_in_keras_fit():
    grey = np.full((4, 3, 3, 1), 0.5, dtype=np.float32)
    seen = []

    class Recorder(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 9)))

        def train_step(self, data):
            seen.append(data.numpy())
            return {"loss": tf.reduce_sum(data)}

    model = Recorder()
    model.compile(optimizer="sgd", run_eagerly=True)
    dataset = datasets.make_dataset(
        grey, batch_size=4, binarize="dynamic", shuffle=False, seed=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(dataset, epochs=3, verbose=0)
    # The dataset has a known length, so Keras ends each epoch cleanly.
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert len(seen) == 3
    assert all(set(np.unique(s).tolist()) <= {0.0, 1.0} for s in seen)
    assert not np.array_equal(seen[0], seen[1])
    assert not np.array_equal(seen[1], seen[2])


def test_make_dataset_shuffle_and_batching():
    # Example i is filled with the value i, so order is visible.
    x = np.repeat(np.arange(10, dtype=np.float32), 4).reshape(10, 2, 2, 1)
    dataset = datasets.make_dataset(x, batch_size=4, shuffle=True, seed=0)
    first = _epoch(dataset)[:, 0, 0, 0]
    second = _epoch(dataset)[:, 0, 0, 0]
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert first.tolist() != second.tolist()

    plain = datasets.make_dataset(x, batch_size=4, shuffle=False)
    assert [len(b) for b in plain] == [4, 4, 2]
    assert len(plain) == 3 and len(dataset) == 3
    assert_same(_epoch(plain), x)
    dropped = datasets.make_dataset(
        x, batch_size=4, shuffle=False, drop_remainder=True
    )
    assert [len(b) for b in dropped] == [4, 4]
    assert len(dropped) == 2


def test_make_dataset_scales_uint8_like_load():
    pixels = np.array([[0, 51, 255], [255, 102, 0]], dtype=np.uint8)
    batch = next(iter(datasets.make_dataset(pixels, batch_size=2, shuffle=False)))
    np.testing.assert_allclose(batch.numpy(), pixels / 255.0, rtol=1e-6)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "100"])
def test_make_dataset_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        datasets.make_dataset(np.zeros((4, 2)), batch_size=batch_size)


def test_make_dataset_bad_input():
    with pytest.raises(ValueError, match="at least one example"):
        datasets.make_dataset(np.zeros((0, 28, 28, 1)))
    with pytest.raises(ValueError, match="pass x_train, not"):
        datasets.make_dataset((np.zeros((4, 2)), np.zeros(4)))
    with pytest.raises(ValueError, match="1 NaN"):
        datasets.make_dataset(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        datasets.make_dataset(np.full((4, 2), 3.0), binarize="dynamic")
    with pytest.raises(ValueError, match=r"Unknown binarize mode 'static'"):
        datasets.make_dataset(np.zeros((4, 2)), binarize="static")


# -- the step-indexed stream (make_step_dataset) ------------------------------


def test_stream_batch_depends_only_on_seed_and_step():
    x = np.random.RandomState(0).rand(23, 5).astype("float32")
    full = _take(resume.make_step_dataset(
        x, 5, binarize="dynamic", seed=4), 14)  # 5 steps/epoch, ~3 epochs
    for start in (3, 5, 7, 12):
        late = _take(resume.make_step_dataset(
            x, 5, binarize="dynamic", seed=4, start_step=start), 14 - start)
        for a, b in zip(full[start:], late):
            np.testing.assert_array_equal(a, b)
    other = _take(resume.make_step_dataset(x, 5, binarize="dynamic", seed=5),
                  3)
    assert any(not np.array_equal(a, b) for a, b in zip(full, other))


def test_each_epoch_is_a_fresh_permutation_of_all_examples():
    n, batch = 23, 5
    x = np.arange(n, dtype="float32")[:, None]
    steps = resume.steps_per_epoch(n, batch)
    assert steps == 5  # ceil(23 / 5); the last batch has 3 examples
    batches = _take(resume.make_step_dataset(x, batch, seed=0), 3 * steps)
    orders = [np.concatenate(batches[e * steps:(e + 1) * steps])[:, 0]
              for e in range(3)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert not np.array_equal(orders[0], orders[1])
    unshuffled = _take(resume.make_step_dataset(x, batch, shuffle=False), 1)
    np.testing.assert_array_equal(unshuffled[0][:, 0], np.arange(5))


def test_dynamic_binarization_draws_bernoulli_of_the_pixel():
    x = np.tile(np.array([[0.0, 1.0, 0.3]], "float32"), (100, 1))
    draws = np.concatenate(_take(resume.make_step_dataset(
        x, 100, binarize="dynamic", seed=1), 40))
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert np.all(draws[:, 0] == 0.0) and np.all(draws[:, 1] == 1.0)
    # 4000 Bernoulli(0.3) draws: standard error 0.0072.
    assert abs(draws[:, 2].mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start_step": -1}, "start_step"),
        ({"binarize": "static"}, "binarize"),
        ({"seed": -3}, "seed"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_stream_bad_arguments(kwargs, match):
    x = np.random.RandomState(0).rand(10, 3).astype("float32")
    with pytest.raises(ValueError, match=match):
        resume.make_step_dataset(x, **{"batch_size": 5, **kwargs})


def test_stream_refuses_grey_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resume.make_step_dataset(np.full((4, 2), 2.0, "float32"), 2,
                                 binarize="dynamic")


# -- GraphStream: the same stream, read inside the train function -------------


@pytest.mark.parametrize("kwargs", [
    dict(binarize="dynamic", seed=3),
    dict(binarize=None, shuffle=False),
    dict(binarize="dynamic", seed=1, start_step=7),
    dict(binarize=None, seed=2, drop_remainder=True),
])
def test_graph_stream_yields_the_tf_data_streams_batches(kwargs):
    # Oracle: make_step_dataset, whose batches the tests above pin down.
    x = np.random.default_rng(0).random((23, 2, 3)).astype("float32")
    stream = resume.GraphStream(x, 5, **kwargs)
    expected = _take(resume.make_step_dataset(x, 5, **kwargs), 16)
    start = kwargs.get("start_step", 0)
    assert stream.step == start
    for i, want in enumerate(expected):  # more than three epochs
        got = stream.next_batch().numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"batch {i}")
    assert stream.step == start + 16
    assert stream.steps_per_epoch == (4 if kwargs.get("drop_remainder")
                                      else 5)


@pytest.mark.parametrize("spe", [1, 5])
def test_fit_on_a_graph_stream_trains_like_fit_on_tf_data(spe):
    x = np.random.default_rng(1).random((230, 12)).astype("float32")

    def train(kind):
        keras.utils.set_random_seed(0)
        model = kv.build_mlp_vae((12,), 3, hidden_units=(16,), seed=0)
        model.compile(optimizer=kv.optimizers.FusedAdam(1e-2),
                      steps_per_execution=spe)
        if kind == "graph":
            stream = resume.GraphStream(x, 23, binarize="dynamic", seed=4)
            history = model.fit(stream, epochs=3, verbose=0)
            # A second fit goes on where the first stopped.
            history = model.fit(stream, epochs=1, verbose=0)
            assert stream.step == 40
        else:
            stream = resume.make_step_dataset(x, 23, binarize="dynamic",
                                              seed=4)
            history = model.fit(stream, epochs=4, steps_per_epoch=10,
                                verbose=0, shuffle=False)
        return model, history.history

    graph, graph_logs = train("graph")
    keras_loop, keras_logs = train("tfdata")
    assert int(graph.optimizer.iterations) == 40
    for a, b in zip(graph.get_weights(), keras_loop.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert graph_logs["loss"][-1] == pytest.approx(keras_logs["loss"][-1],
                                                   rel=1e-5)
    # Keras' own train function is back for data of other kinds.
    graph.fit(x[:46], batch_size=23, epochs=1, verbose=0)
    assert int(graph.optimizer.iterations) == 42


def _stream_model(**compile_kwargs):
    model = kv.build_mlp_vae((4,), 2, hidden_units=(8,), seed=0)
    model.compile(optimizer="adam", **compile_kwargs)
    return model


@pytest.mark.parametrize("compile_kwargs, fit_kwargs, match", [
    (dict(steps_per_execution=3), {}, "not a multiple"),
    ({}, dict(batch_size=5), "batch size"),
])
def test_graph_stream_refuses_what_it_cannot_do(compile_kwargs, fit_kwargs,
                                                 match):
    x = np.random.default_rng(0).random((20, 4)).astype("float32")
    stream = resume.GraphStream(x, 5)
    model = _stream_model(**compile_kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(stream, epochs=1, verbose=0, **fit_kwargs)
    assert stream.step == 0 and int(model.optimizer.iterations) == 0


def test_graph_stream_refuses_other_shapes_targets_and_strategies():
    stream = resume.GraphStream(np.zeros((20, 3), "float32"), 5)
    with pytest.raises(ValueError, match=r"shape \(3,\).*expects \(4,\)"):
        _stream_model().fit(stream, epochs=1, verbose=0)
    good = resume.GraphStream(np.zeros((20, 4), "float32"), 5)
    with pytest.raises(ValueError, match="no targets"):
        _stream_model().fit(good, np.zeros(20), epochs=1, verbose=0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _stream_model()
    with pytest.raises(ValueError, match=r"stream\.dataset\(\)"):
        model.fit(good, epochs=1, verbose=0)


def test_graph_stream_checks_its_data_like_the_tf_data_stream():
    with pytest.raises(ValueError, match="NaN or infinite"):
        resume.GraphStream(np.full((4, 2), np.nan, "float32"), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resume.GraphStream(np.full((4, 2), 2.0, "float32"), 2,
                           binarize="dynamic")
    with pytest.raises(ValueError, match="TrainingStream needs at least one"):
        resume.GraphStream(np.zeros((0, 2), "float32"), 2)


def test_graph_stream_batch_shape_is_static_when_every_batch_is_full():
    def traced_shape(n, **kwargs):
        stream = resume.GraphStream(np.zeros((n, 3), "float32"), 5, **kwargs)
        fn = tf.function(stream.next_batch).get_concrete_function()
        return tuple(fn.output_shapes)

    assert traced_shape(20) == (5, 3)
    assert traced_shape(23, drop_remainder=True) == (5, 3)
    assert traced_shape(23) == (None, 3)  # the last batch holds 3


def test_graph_stream_under_xla_trains_like_keras_xla_loop():
    # jit_compile=True: XLA compiles the step, the batch is read outside.
    # Oracle: Keras' own XLA train function on make_step_dataset.
    x = np.random.default_rng(3).random((40, 6)).astype("float32")

    def train(kind):
        keras.utils.set_random_seed(0)
        model = kv.build_mlp_vae((6,), 2, hidden_units=(8,), seed=1)
        model.compile(optimizer=kv.optimizers.FusedAdam(1e-2),
                      jit_compile=True, steps_per_execution=2)
        if kind == "graph":
            model.fit(resume.GraphStream(x, 10, binarize="dynamic", seed=2),
                      epochs=2, verbose=0)
        else:
            model.fit(resume.make_step_dataset(x, 10, binarize="dynamic",
                                               seed=2),
                      epochs=2, steps_per_epoch=4, verbose=0, shuffle=False)
        return model.get_weights()

    for a, b in zip(train("graph"), train("tfdata")):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_training_stream_picks_graph_stream_on_one_device_only():
    x = np.zeros((20, 4), "float32")
    assert isinstance(resume.training_stream(_stream_model(), x,
                                             batch_size=5),
                      resume.GraphStream)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _stream_model()
    stream = resume.training_stream(model, x, batch_size=5)
    assert isinstance(stream, tf.data.Dataset)
