"""KL schedules, free bits, the IWAE objective, the z_log_var clamp, the NaN
guard and the TensorBoard image summaries.

Oracles: hand-computed schedule values (the formulas of Bowman et al. 2016
and Fu et al. 2019), TFP's KL divergence and normal densities, the analytic
gradient of the Gaussian KL, numpy tiling.
"""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import callbacks as kcb
from keras_vae import objectives

tfd = tfp.distributions


def _tiny_vae(**kwargs):
    kwargs.setdefault("seed", 3)
    return kv.build_mlp_vae((6,), 3, hidden_units=(8,), **kwargs)


def _binary_data(n=40, seed=0):
    return (np.random.RandomState(seed).rand(n, 6) < 0.4).astype("float32")


def _tfd_kl(z_mean, z_log_var):
    """Per-dimension KL(q || N(0, 1)) from TFP, shape like z_mean."""
    q = tfd.Normal(z_mean.astype("float64"),
                   np.exp(0.5 * z_log_var.astype("float64")))
    prior = tfd.Normal(np.float64(0.0), np.float64(1.0))
    return tfd.kl_divergence(q, prior).numpy()


# -- schedules --------------------------------------------------------------


def test_linear_warmup_weights_at_given_steps():
    schedule = kcb.LinearKLWarmup(warmup_steps=200, start=0.0, end=1.0)
    # Hand values of start + (end - start) * min(step / 200, 1).
    expected = {0: 0.0, 1: 0.005, 50: 0.25, 100: 0.5, 199: 0.995, 200: 1.0,
                10_000: 1.0}
    for step, weight in expected.items():
        assert schedule.weight_at(step) == pytest.approx(weight, abs=1e-12)
    shifted = kcb.LinearKLWarmup(10, start=0.2, end=0.7)
    assert shifted.weight_at(5) == pytest.approx(0.45)


def test_cyclical_schedule_weights_at_given_steps():
    # Fu et al. (2019): cycles of 100 steps, rising over the first half.
    schedule = kcb.CyclicalKLSchedule(cycle_steps=100, ratio=0.5, end=1.0)
    expected = {0: 0.0, 25: 0.5, 49: 0.98, 50: 1.0, 99: 1.0, 100: 0.0,
                125: 0.5, 260: 1.0}
    for step, weight in expected.items():
        assert schedule.weight_at(step) == pytest.approx(weight, abs=1e-12)
    capped = kcb.CyclicalKLSchedule(100, ratio=0.5, end=2.0, num_cycles=2)
    assert capped.weight_at(150) == pytest.approx(2.0)
    assert capped.weight_at(210) == pytest.approx(2.0)  # after 2 cycles


def test_warmup_drives_kl_weight_during_fit_and_reaches_beta():
    model = _tiny_vae(beta=0.5)
    model.compile(keras.optimizers.Adam(1e-3))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(np.asarray(self.model.sampler.kl_weight)))

    history = model.fit(
        _binary_data(40), batch_size=10, epochs=2, verbose=0, shuffle=False,
        callbacks=[kcb.LinearKLWarmup(warmup_steps=4), Record()],
    )
    # end=None warms up to the model's beta = 0.5: 0.5 * min(step / 4, 1).
    assert seen == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.5,
                                  0.5])
    assert history.history["kl_weight"] == pytest.approx([0.375, 0.5])


def test_loss_is_weighted_but_kl_loss_and_elbo_are_not():
    model = _tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    x = _binary_data(30)
    model.sampler.kl_weight.assign(0.25)
    logs = model.evaluate(x, batch_size=30, verbose=0, return_dict=True)
    z_mean, z_log_var = model.encode(x)
    kl = _tfd_kl(z_mean, z_log_var).sum(-1).mean()
    assert logs["kl_loss"] == pytest.approx(kl, rel=1e-5)
    assert logs["elbo"] == pytest.approx(
        -(logs["reconstruction_loss"] + logs["kl_loss"]), rel=1e-6)
    assert logs["loss"] == pytest.approx(
        logs["reconstruction_loss"] + 0.25 * logs["kl_loss"], rel=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: kcb.LinearKLWarmup(0), "zero steps"),
        (lambda: kcb.LinearKLWarmup(-5), "warmup_steps"),
        (lambda: kcb.LinearKLWarmup(10, start=-0.1), "start"),
        (lambda: kcb.LinearKLWarmup(10, end=-1.0), "end"),
        (lambda: kcb.LinearKLWarmup(10, end=float("nan")), "end"),
        (lambda: kcb.CyclicalKLSchedule(0), "cycle_steps"),
        (lambda: kcb.CyclicalKLSchedule(100, ratio=0.0), "ratio"),
        (lambda: kcb.CyclicalKLSchedule(100, ratio=1.5), "ratio"),
        (lambda: kcb.CyclicalKLSchedule(100, start=-2.0), "start"),
        (lambda: kcb.ConstantKL(-1.0), "beta"),
        (lambda: kcb.kl_schedule(warmup_steps=-3), "warmup_steps"),
        (lambda: kcb.kl_schedule(warmup_steps=10, cycle_steps=10),
         "one KL schedule"),
        (lambda: kcb.NaNGuard(mode="panic"), "NaNGuard mode"),
        (lambda: kv.Sampling(free_bits=-0.5), "free_bits"),
        (lambda: _tiny_vae(free_bits=-0.1), "free_bits"),
        (lambda: _tiny_vae(free_bits=0.5, free_bits_groups=2),
         "does not divide"),
        (lambda: _tiny_vae(objective="iwae", free_bits=0.5), "IWAE"),
    ],
)
def test_bad_settings_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedule_refuses_the_iwae_objective():
    model = _tiny_vae(objective="iwae", num_samples=2)
    model.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="objective='iwae'"):
        model.fit(_binary_data(10), batch_size=10, epochs=1, verbose=0,
                  callbacks=[kcb.LinearKLWarmup(5)])


# -- free bits --------------------------------------------------------------


def _kl_batch():
    # Dimension 0 carries information (KL well above the floor), dimension
    # 1 is nearly the prior (KL below the floor), dimension 2 is in between.
    rng = np.random.RandomState(1)
    z_mean = np.stack([rng.normal(0, 2.0, 16), rng.normal(0, 0.05, 16),
                       rng.normal(0, 1.0, 16)], -1).astype("float32")
    z_log_var = np.stack([np.full(16, -2.0), np.full(16, -0.02),
                          np.full(16, -1.0)], -1).astype("float32")
    return z_mean, z_log_var


def test_free_bits_hold_an_unneeded_dimension_at_the_floor():
    z_mean, z_log_var = _kl_batch()
    per_dim = _tfd_kl(z_mean, z_log_var).mean(0)  # batch mean, TFP oracle
    floor = 0.5
    assert per_dim[1] < floor < per_dim[0]
    value = float(objectives.free_bits_kl(z_mean, z_log_var, floor))
    assert value == pytest.approx(np.maximum(per_dim, floor).sum(), rel=1e-5)
    # The Sampling layer adds exactly that (times kl_weight) as its loss.
    layer = kv.Sampling(seed=0, free_bits=floor, kl_weight=0.5)
    layer([tf.constant(z_mean), tf.constant(z_log_var)])
    assert float(layer.losses[0]) == pytest.approx(0.5 * value, rel=1e-6)


def test_free_bits_do_not_change_the_gradient_above_the_floor():
    z_mean, z_log_var = (tf.Variable(a) for a in _kl_batch())
    floor = 0.5
    with tf.GradientTape() as tape:
        loss = objectives.free_bits_kl(z_mean, z_log_var, floor)
    g_mean, g_log_var = tape.gradient(loss, [z_mean, z_log_var])
    per_dim = _tfd_kl(z_mean.numpy(), z_log_var.numpy()).mean(0)
    above = per_dim > floor
    batch = z_mean.shape[0]
    # Analytic gradient of the batch-mean KL: d/dmu = mu / B,
    # d/dlogvar = (exp(logvar) - 1) / (2 B).
    want_mean = z_mean.numpy() / batch
    want_log_var = (np.exp(z_log_var.numpy()) - 1.0) / (2 * batch)
    np.testing.assert_allclose(g_mean.numpy()[:, above],
                               want_mean[:, above], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g_log_var.numpy()[:, above],
                               want_log_var[:, above], rtol=1e-5, atol=1e-8)
    # Below the floor the term is the constant floor: no gradient at all.
    assert not above.all()
    np.testing.assert_array_equal(g_mean.numpy()[:, ~above], 0.0)
    np.testing.assert_array_equal(g_log_var.numpy()[:, ~above], 0.0)


def test_free_bits_groups_floor_each_group_sum():
    rng = np.random.RandomState(2)
    z_mean = rng.normal(0, [1.5, 0.05, 0.1, 0.02], (8, 4)).astype("float32")
    z_log_var = np.full((8, 4), -0.1, "float32")
    per_dim = _tfd_kl(z_mean, z_log_var).mean(0)
    groups = per_dim.reshape(2, 2).sum(-1)
    value = float(objectives.free_bits_kl(z_mean, z_log_var, 0.3, groups=2))
    assert value == pytest.approx(np.maximum(groups, 0.3).sum(), rel=1e-5)
    model = _tiny_vae(free_bits=0.3, free_bits_groups=3)
    assert model.sampler.free_bits_groups == 3
    clone = kv.VAE.from_config(model.get_config())
    assert clone.sampler.free_bits_groups == 3


# -- IWAE -------------------------------------------------------------------


def _same_weights(a, b):
    b.set_weights(a.get_weights())
    return b


def test_iwae_with_one_sample_is_the_single_draw_elbo():
    x = tf.constant(_binary_data(12))
    elbo_model = _tiny_vae(seed=7)
    iwae_model = _same_weights(elbo_model,
                               _tiny_vae(seed=7, objective="iwae"))
    elbo_terms = elbo_model.compute_terms(x, training=True)
    iwae_terms = iwae_model.compute_terms(x, training=True)
    # Same seed: both drew the same z. Rebuild it and score it with TFP.
    z_mean, z_log_var = (t.numpy() for t in elbo_model.encoder(x))
    eps = keras.random.normal(z_mean.shape, seed=keras.random.SeedGenerator(7))
    z = z_mean + np.exp(0.5 * z_log_var) * eps.numpy()
    log_q = tfd.Normal(z_mean, np.exp(0.5 * z_log_var)).log_prob(z)
    log_p = tfd.Normal(0.0, 1.0).log_prob(z)
    log_px_z = elbo_terms["log_px_z"].numpy()[0]
    np.testing.assert_allclose(iwae_terms["log_px_z"].numpy()[0], log_px_z,
                               rtol=1e-6)
    # L_1 = log p(x|z) + log p(z) - log q(z|x): the ELBO with the KL
    # estimated from the same draw (Burda et al. 2016, section 3).
    single_draw_elbo = log_px_z + np.sum(log_p - log_q, -1)
    assert float(iwae_terms["loss"]) == pytest.approx(
        -single_draw_elbo.mean(), rel=1e-5)
    # The ELBO objective differs only by using the closed-form KL.
    closed_kl = _tfd_kl(z_mean, z_log_var).sum(-1)
    assert float(elbo_terms["loss"]) == pytest.approx(
        -(log_px_z - closed_kl).mean(), rel=1e-5)


def test_iwae_with_one_sample_equals_the_elbo_in_expectation():
    x = tf.constant(_binary_data(20))
    elbo_model = _tiny_vae(seed=1)
    iwae_model = _same_weights(elbo_model,
                               _tiny_vae(seed=2, objective="iwae"))
    fn_e = tf.function(lambda: elbo_model.compute_terms(x, training=True)
                       ["loss"])
    fn_i = tf.function(lambda: iwae_model.compute_terms(x, training=True)
                       ["loss"])
    draws = 300
    le = np.array([float(fn_e()) for _ in range(draws)])
    li = np.array([float(fn_i()) for _ in range(draws)])
    stderr = np.sqrt(le.var() / draws + li.var() / draws)
    assert abs(le.mean() - li.mean()) < 4 * stderr


def test_iwae_training_runs_and_k_samples_tighten_the_bound():
    keras.utils.set_random_seed(0)  # independent of the tests run before
    x = _binary_data(40)
    model = _tiny_vae(objective="iwae", num_samples=5)
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=20, epochs=10, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < losses[0]
    # IWAE_k >= ELBO on average (Burda et al. 2016, theorem 1); averaged
    # over 20 draws each so that single-draw noise does not decide it.
    iwae = -np.mean([float(model.compute_terms(tf.constant(x))["loss"])
                     for _ in range(20)])
    elbo = float(np.mean([np.mean(model.elbo(x, num_samples=1))
                          for _ in range(20)]))
    assert iwae >= elbo - 0.1


# -- z_log_var clamp ---------------------------------------------------------


def test_soft_clamp_is_the_identity_inside_its_range():
    inside = np.linspace(-30.0, 10.0, 1001).astype("float32")
    out = objectives.soft_clamp_log_var(inside).numpy()
    np.testing.assert_array_equal(out, inside)


def test_soft_clamp_bounds_and_is_smooth_outside():
    far = np.array([-1e4, -100.0, -31.0, 11.0, 50.0, 1e4, np.inf], "float32")
    out = objectives.soft_clamp_log_var(far).numpy()
    assert np.all(out >= -35.0) and np.all(out <= 15.0)
    assert np.all(np.diff(out) >= 0)  # monotone
    # The slope is 1 at the edge of the range and fades beyond it.
    v = tf.Variable([10.0 + 1e-3, 12.0, 40.0])
    with tf.GradientTape() as tape:
        y = objectives.soft_clamp_log_var(v)
    slope = tape.gradient(y, v).numpy()
    # d/dv [10 + 5 tanh((v - 10) / 5)] = 1 - tanh((v - 10) / 5)^2
    want = 1.0 - np.tanh((v.numpy() - 10.0) / 5.0) ** 2
    np.testing.assert_allclose(slope, want, rtol=1e-5)


def test_diverged_log_variance_stays_finite():
    model = _tiny_vae()
    weights = model.get_weights()
    for var, value in zip(model.weights, weights):
        if "z_log_var" in var.path and "bias" in var.path:
            value[...] = 300.0  # exp(150) overflows float32 without clamp
    model.set_weights(weights)
    terms = model.compute_terms(tf.constant(_binary_data(8)), training=True)
    assert np.isfinite(float(terms["loss"]))
    assert np.all(np.isfinite(terms["kl"].numpy()))
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float32(150.0)))  # what the clamp prevents


# -- NaN guard ---------------------------------------------------------------


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
    model = _tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    guard = kcb.NaNGuard(mode="stop", snapshot_every=2)
    snapshots = {}

    class Keep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations)
            snapshots[step] = [w.copy() for w in self.model.get_weights()]

    model.fit(_binary_data(80), batch_size=10, epochs=3, verbose=0,
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
    model = _tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    guard = kcb.NaNGuard(mode="rollback", snapshot_every=1, verbose=False)
    history = model.fit(_binary_data(80), batch_size=10, epochs=2, verbose=0,
                        callbacks=[_PoisonAt(3), guard])
    assert [e["action"] for e in guard.events] == ["rollback"]
    assert int(model.optimizer.iterations) == 16  # the step count goes on
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert np.isfinite(history.history["loss"][-1])


# -- TensorBoard images and the standard set ---------------------------------


def test_image_grid_tiles_row_major():
    images = np.arange(5 * 2 * 3, dtype="float32").reshape(5, 2, 3, 1)
    grid = kcb.image_grid(images, columns=3)
    assert grid.shape == (1, 4, 9, 1)
    np.testing.assert_array_equal(grid[0, 0:2, 3:6, 0], images[1, :, :, 0])
    np.testing.assert_array_equal(grid[0, 2:4, 3:6, 0], images[4, :, :, 0])
    np.testing.assert_array_equal(grid[0, 2:4, 6:9, 0], 0.0)  # padding


def _summary_tags(directory):
    tags = set()
    for path in glob.glob(os.path.join(directory, "**", "events.*"),
                          recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_standard_callbacks_write_tensorboard_scalars_and_images(tmp_path):
    model = kv.build_mlp_vae((4, 4, 1), 2, hidden_units=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    x = (np.random.RandomState(0).rand(20, 4, 4, 1) < 0.5).astype("float32")
    cbs, backup = kcb.standard_callbacks(
        str(tmp_path), model=model, steps_per_epoch=2, warmup_steps=3,
        images=x[:8],
    )
    kinds = [type(c).__name__ for c in cbs]
    assert kinds == ["LinearKLWarmup", "NaNGuard", "BackupAndRestore",
                     "TensorBoard", "ImageSummaries"]
    assert backup is cbs[2]
    model.fit(x, batch_size=10, epochs=2, verbose=0, callbacks=cbs)
    tags = _summary_tags(str(tmp_path / "tensorboard"))
    assert {"reconstructions", "samples"} <= tags
    assert any("kl_loss" in t for t in tags)
    assert any("kl_weight" in t for t in tags)
    assert not (tmp_path / "backup").exists()  # removed after a finished run


def test_standard_callbacks_check_schedule_before_writing(tmp_path):
    model = _tiny_vae(objective="iwae")
    with pytest.raises(ValueError, match="objective='iwae'"):
        kcb.standard_callbacks(str(tmp_path / "run"), model=model,
                               warmup_steps=10)
    assert not (tmp_path / "run").exists()
