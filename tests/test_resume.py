"""Exact resumption: the step-indexed data stream and BackupAndRestore.

Oracle: the uninterrupted run. A run interrupted in the middle of an epoch
and started again must end with the same weights, optimizer state, KL
weight and noise state.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import callbacks as kcb
from keras_vae import resume


def _take(dataset, n):
    return [b.numpy() for b in dataset.take(n)]


# -- the data stream ----------------------------------------------------------


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


# -- interrupted and resumed == uninterrupted -------------------------------

N, BATCH, EPOCHS = 50, 10, 3
STEPS = resume.steps_per_epoch(N, BATCH)


def _data():
    return np.random.RandomState(0).rand(N, 6).astype("float32")


def _model(init=None, latent_dim=2):
    model = kv.build_mlp_vae((6,), latent_dim, hidden_units=(8,), seed=3)
    model.compile(keras.optimizers.Adam(1e-2))
    if init is not None:
        model.set_weights(init)
    return model


class _Interrupt(keras.callbacks.Callback):
    """Raises after the given global step, like a kill."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            raise KeyboardInterrupt(f"interrupted after step {self.step}")


def _train(backup_dir, init, extra=(), double_checkpoint=False):
    model = _model(init)
    backup = kcb.BackupAndRestore(backup_dir, save_freq=2,
                                  double_checkpoint=double_checkpoint)
    stream = resume.make_step_dataset(
        _data(), BATCH, binarize="dynamic", seed=11,
        start_step=backup.resume_step(),
    )
    model.fit(stream, epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0,
              callbacks=[kcb.LinearKLWarmup(7), backup, *extra])
    return model


def _max_abs_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


@pytest.mark.parametrize("interrupt_at", [7, 8])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, interrupt_at):
    init = _model().get_weights()
    reference = _train(str(tmp_path / "a"), init)

    with pytest.raises(KeyboardInterrupt):
        _train(str(tmp_path / "b"), init, [_Interrupt(interrupt_at)])
    with open(tmp_path / "b" / "training_metadata.json") as f:
        saved = json.load(f)
    assert saved["step"] == {7: 6, 8: 8}[interrupt_at]  # save_freq=2
    assert 0 < saved["step"] % STEPS  # in the middle of epoch 1
    resumed = _train(str(tmp_path / "b"), init)

    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS
    assert _max_abs_diff(reference.get_weights(),
                         resumed.get_weights()) <= 1e-6
    assert _max_abs_diff([np.array(v) for v in reference.optimizer.variables],
                         [np.array(v) for v in resumed.optimizer.variables]
                         ) <= 1e-6
    np.testing.assert_array_equal(
        np.array(reference.sampler.seed_generator.state),
        np.array(resumed.sampler.seed_generator.state))
    assert float(resumed.sampler.kl_weight) == 1.0
    assert not (tmp_path / "b").exists()  # finished: backup removed


def _corrupt(path):
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(b"not an HDF5 file" * 64)


def test_a_corrupt_latest_backup_resumes_exactly_from_the_previous(
        tmp_path, capsys):
    init = _model().get_weights()
    reference = _train(str(tmp_path / "a"), init)
    backup_dir = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        _train(str(backup_dir), init, [_Interrupt(7)],
               double_checkpoint=True)
    # Saved at steps 2, 4 and 6: the latest is step 6, the previous step 4.
    backup = kcb.BackupAndRestore(str(backup_dir), double_checkpoint=True)
    assert backup.resume_step() == 6
    _corrupt(backup_dir / "latest.weights.h5")
    assert backup.resume_step() == 4
    capsys.readouterr()
    resumed = _train(str(backup_dir), init, double_checkpoint=True)
    assert "resuming from the previous one, at step 4" in (
        capsys.readouterr().out)
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS
    assert _max_abs_diff(reference.get_weights(),
                         resumed.get_weights()) <= 1e-6
    np.testing.assert_array_equal(
        np.array(reference.sampler.seed_generator.state),
        np.array(resumed.sampler.seed_generator.state))


def test_a_corrupt_backup_without_a_previous_one_is_a_clear_error(tmp_path):
    backup_dir = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        _train(str(backup_dir), _model().get_weights(), [_Interrupt(5)])
    _corrupt(backup_dir / "latest.weights.h5")
    assert os.path.exists(backup_dir / "latest.weights.h5")
    with pytest.raises(ValueError, match="cannot be read.*Delete"):
        kcb.BackupAndRestore(str(backup_dir)).resume_step()
    with pytest.raises(ValueError, match="cannot be read"):
        _train(str(backup_dir), _model().get_weights())


def test_resume_refuses_a_backup_of_a_different_model(tmp_path):
    backup_dir = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        _train(backup_dir, _model().get_weights(), [_Interrupt(2)])
    other = _model(latent_dim=3)
    backup = kcb.BackupAndRestore(backup_dir)
    with pytest.raises(ValueError, match="different model.*latent_dim"):
        backup.check_model(other)
    with pytest.raises(ValueError, match="different model"):
        other.fit(resume.make_step_dataset(_data(), BATCH), epochs=1,
                  steps_per_epoch=STEPS, verbose=0, callbacks=[backup])
    with pytest.raises(ValueError, match="steps per epoch"):
        backup.check_model(_model(), steps_per_epoch=STEPS + 1)


def test_resume_refuses_a_backup_keras_vae_did_not_write(tmp_path):
    model = _model()
    plain = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=1,
                                             delete_checkpoint=False)
    model.fit(_data(), batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[plain])
    with pytest.raises(ValueError, match="did not write"):
        kcb.BackupAndRestore(str(tmp_path)).resume_step()


def test_backup_save_freq_must_be_positive():
    with pytest.raises(ValueError, match="save_freq"):
        kcb.BackupAndRestore("/tmp/unused", save_freq=0)


# -- the CLI's training function ---------------------------------------------


@pytest.mark.slow
def test_keras_vae_train_resumes_to_the_same_model(tmp_path, data_dir):
    from keras_vae import runs

    def config(name, **kwargs):
        return runs.TrainConfig(
            run_dir=str(tmp_path / name), latent_dim=2, hidden_units=(16,),
            epochs=2, batch_size=50, max_train_examples=200, save_freq=1,
            warmup_steps=5, verbose=0, **kwargs,
        )

    reference, _ = runs.train(config("a"))
    with pytest.raises(KeyboardInterrupt):
        runs.train(config("b"), callbacks=[_Interrupt(6)])
    assert os.path.exists(tmp_path / "b" / "backup" / "latest.weights.h5")
    assert not os.path.exists(tmp_path / "b" / "model.keras")
    # A different model cannot take over the backup; nothing is written.
    with pytest.raises(ValueError, match="different model"):
        runs.train(runs.TrainConfig(
            run_dir=str(tmp_path / "b"), latent_dim=3, hidden_units=(16,),
            epochs=2, batch_size=50, max_train_examples=200, verbose=0))
    resumed, _ = runs.train(config("b"))  # the same command again
    loaded = keras.models.load_model(tmp_path / "b" / "model.keras")
    diff = _max_abs_diff(reference.get_weights(), loaded.get_weights())
    assert diff <= 1e-6, diff
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert len(history["loss"]) == 1  # only epoch 2 ran after the resume


def test_steps_per_execution_default_and_alignment():
    from keras_vae import runs

    def spe(steps_per_epoch=600, **kwargs):
        config = runs.TrainConfig(run_dir="/tmp/unused", **kwargs)
        return runs._steps_per_execution(config, steps_per_epoch)

    assert spe() == 50  # automatic
    assert spe(warmup_steps=1000) == 1  # a schedule needs every step
    assert spe(cycle_steps=1000) == 1
    assert spe(steps_per_execution=8, warmup_steps=1000) == 8  # as asked
    assert spe(save_freq=25) == 25  # gcd(50, 600, 25)
    assert spe(save_freq=7) == 1
    assert spe(steps_per_epoch=60) == 10  # gcd(50, 60)
    with pytest.raises(ValueError, match="steps_per_execution"):
        runs.TrainConfig(run_dir="/tmp/unused",
                         steps_per_execution=0).validate()


@pytest.mark.slow
@pytest.mark.parametrize("spe, save_freq, stop", [(8, 8, 20), (1, 6, 14)])
def test_keras_vae_train_resumes_exactly_with_several_steps_per_execution(
        tmp_path, data_dir, spe, save_freq, stop):
    # 12 steps per epoch and a KL warm-up, whose weight is set once per
    # execution.
    # (8, 8, 20): executions of gcd(8, 12, 8) = 4 steps, which never
    #   straddle an epoch; backups at steps 8 and 16; interrupted after 20.
    # (1, 6, 14): the backup due at step 12 is the last step of an epoch and
    #   is taken after that epoch's validation pass (which draws from the
    #   model's RNG too); interrupted after 14, resumed from 12.
    from keras_vae import runs

    def config(name):
        return runs.TrainConfig(
            run_dir=str(tmp_path / name), latent_dim=2, hidden_units=(16,),
            epochs=3, batch_size=50, max_train_examples=600,
            save_freq=save_freq, steps_per_execution=spe, warmup_steps=30,
            verbose=0,
        )

    reference, _ = runs.train(config("a"))
    with pytest.raises(KeyboardInterrupt):
        runs.train(config("b"), callbacks=[_Interrupt(stop)])
    backup = kcb.BackupAndRestore(str(tmp_path / "b" / "backup"))
    assert backup.resume_step() == {20: 16, 14: 12}[stop]
    resumed, _ = runs.train(config("b"))
    loaded = keras.models.load_model(tmp_path / "b" / "model.keras")
    diff = _max_abs_diff(reference.get_weights(), loaded.get_weights())
    assert diff <= 1e-6, diff


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
    with pytest.raises(ValueError, match="make_step_dataset"):
        model.fit(good, epochs=1, verbose=0)


def test_graph_stream_checks_its_data_like_the_tf_data_stream():
    with pytest.raises(ValueError, match="NaN or infinite"):
        resume.GraphStream(np.full((4, 2), np.nan, "float32"), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resume.GraphStream(np.full((4, 2), 2.0, "float32"), 2,
                           binarize="dynamic")
    with pytest.raises(ValueError, match="GraphStream needs at least one"):
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
