"""Tests of keras_vae.training.schedules: KL weight schedules."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import callbacks as kcb
from helpers import binary_data, tfd_kl, tiny_vae

tfd = tfp.distributions

# Oracles: hand-computed schedule values (the formulas of Bowman et al. 2016
# and Fu et al. 2019), TFP's KL divergence.


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
    model = tiny_vae(beta=0.5)
    model.compile(keras.optimizers.Adam(1e-3))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(np.asarray(self.model.sampler.kl_weight)))

    history = model.fit(
        binary_data(40), batch_size=10, epochs=2, verbose=0, shuffle=False,
        callbacks=[kcb.LinearKLWarmup(warmup_steps=4), Record()],
    )
    # end=None warms up to the model's beta = 0.5: 0.5 * min(step / 4, 1).
    assert seen == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.5,
                                  0.5])
    assert history.history["kl_weight"] == pytest.approx([0.375, 0.5])


def test_loss_is_weighted_but_kl_loss_and_elbo_are_not():
    model = tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    x = binary_data(30)
    model.sampler.kl_weight.assign(0.25)
    logs = model.evaluate(x, batch_size=30, verbose=0, return_dict=True)
    z_mean, z_log_var = model.encode(x)
    kl = tfd_kl(z_mean, z_log_var).sum(-1).mean()
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
        (lambda: tiny_vae(free_bits=-0.1), "free_bits"),
        (lambda: tiny_vae(free_bits=0.5, free_bits_groups=2),
         "does not divide"),
        (lambda: tiny_vae(objective="iwae", free_bits=0.5), "IWAE"),
    ],
)
def test_bad_settings_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedule_refuses_the_iwae_objective():
    model = tiny_vae(objective="iwae", num_samples=2)
    model.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="objective='iwae'"):
        model.fit(binary_data(10), batch_size=10, epochs=1, verbose=0,
                  callbacks=[kcb.LinearKLWarmup(5)])


@pytest.mark.parametrize(
    "schedule",
    [kcb.LinearKLWarmup(70, start=0.1, end=0.9),
     kcb.LinearKLWarmup(33),
     kcb.CyclicalKLSchedule(40, ratio=0.3, start=0.05, end=2.0),
     kcb.CyclicalKLSchedule(25, num_cycles=2),
     kcb.ConstantKL(0.25)],
)
def test_weight_tensor_is_weight_at_in_tensorflow(schedule):
    # The train step computes the weight with weight_tensor; the oracle is
    # the Python formula (itself checked by hand above), exactly, in the
    # float32 the weight variable holds.
    model = tiny_vae(beta=1.5)
    schedule.set_model(model)
    steps = np.arange(0, 200)
    graph = tf.function(lambda s: schedule.weight_tensor(s, model.beta))
    got = np.array([graph(tf.constant(s, tf.int64)).numpy() for s in steps])
    want = np.array([schedule.weight_at(int(s)) for s in steps])
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))


def test_a_schedule_holds_at_every_step_of_an_execution():
    # With 10 steps per execution the weight is still the schedule's at
    # each step: the loss of step g is recon + w(g) * kl. Oracle: the same
    # warm-up through its Python weight_at only, which the callback sets
    # before every batch, so fit runs one step per execution.
    class PythonWarmup(kcb.LinearKLWarmup):
        weight_tensor = kcb.KLSchedule.weight_tensor

    x = binary_data(40)
    runs = []
    for schedule in (kcb.LinearKLWarmup(15), PythonWarmup(15)):
        keras.utils.set_random_seed(0)
        model = tiny_vae()
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(x, batch_size=4, epochs=2, verbose=0, callbacks=[schedule])
        runs.append((model.steps_per_execution,
                     [w.numpy() for w in model.weights],
                     float(model.sampler.kl_weight.numpy())))
    (spe_auto, w_auto, k_auto), (spe_one, w_one, k_one) = runs
    assert (spe_auto, spe_one) == (10, 1)
    assert k_auto == k_one == 1.0
    for a, b in zip(w_auto, w_one):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
