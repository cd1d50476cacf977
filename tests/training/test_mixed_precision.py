"""Mixed precision and XLA: same training, 16-bit compute.

Oracle: the float32 run from the same weights on the same data stream.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import distribute
from keras_vae import resume

STEPS = 10


@pytest.fixture(scope="module")
def x(mnist_slice):
    return mnist_slice[0][:256]


@pytest.fixture(scope="module")
def init():
    keras.utils.set_random_seed(0)  # the same start whatever ran before
    return kv.build_mlp_vae((28, 28, 1), 8, hidden_units=(64,),
                            seed=1).get_weights()


def _train(policy, init, x, jit_compile=False, initial_scale=None):
    with distribute.dtype_policy(policy):
        model = kv.build_mlp_vae((28, 28, 1), 8, hidden_units=(64,), seed=1)
        model.set_weights(init)
        optimizer = keras.optimizers.Adam(1e-3)
        if initial_scale:
            # The VAE's loss is summed over 784 pixels and its gradients are
            # large: Keras' default first scale (2**15) overflows float16 and
            # skips the first steps. A smaller start keeps every step.
            optimizer = keras.optimizers.LossScaleOptimizer(
                optimizer, initial_scale=initial_scale)
        model.compile(optimizer, jit_compile=jit_compile)
    history = model.fit(
        resume.make_step_dataset(x, 64, binarize="dynamic", seed=0),
        epochs=2, steps_per_epoch=STEPS // 2, verbose=0,
    )
    return model, history.history


@pytest.fixture(scope="module")
def float32_run(init, x):
    return _train("float32", init, x)


@pytest.mark.parametrize(
    "policy, scale, rel",
    # About twice the unit round-off of each 16-bit format: 2**-11 for
    # float16, 2**-8 for bfloat16 (8 significand bits).
    [("mixed_float16", 2**8, 1e-3), ("mixed_bfloat16", None, 8e-3)],
)
def test_mixed_precision_trains_like_float32(float32_run, init, x, policy,
                                             scale, rel):
    _, want = float32_run
    model, got = _train(policy, init, x, initial_scale=scale)
    assert model.dtype_policy.name == policy
    assert model.encoder.layers[1].compute_dtype != "float32"
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert int(model.optimizer.iterations) == STEPS  # no step skipped
    for name in ("loss", "kl_loss", "elbo"):
        assert np.all(np.isfinite(got[name]))
        assert got[name][-1] == pytest.approx(want[name][-1], rel=rel), name


def test_kl_and_likelihood_are_float32_under_mixed_precision(init, x):
    with distribute.dtype_policy("mixed_float16"):
        model = kv.build_mlp_vae((28, 28, 1), 8, hidden_units=(64,), seed=1)
    model.set_weights(init)
    terms = model.compute_terms(tf.constant(x[:16]), training=True)
    for name in ("loss", "kl", "reconstruction", "elbo", "log_px_z"):
        assert terms[name].dtype == tf.float32, name
    assert model.sampler.losses[0].dtype == tf.float32


def test_keras_default_loss_scale_skips_steps_but_stays_finite(init, x):
    model, got = _train("mixed_float16", init, x)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.all(np.isfinite(got["loss"]))
    assert int(model.optimizer.iterations) <= STEPS


def test_xla_step_matches_the_plain_step():
    # q(z|x) with variance exp(-30): XLA draws different noise than the
    # plain step, and this makes the noise irrelevant to the comparison.
    data = (np.random.RandomState(0).rand(32, 6) < 0.5).astype("float32")
    ref = kv.build_mlp_vae((6,), 2, hidden_units=(8,), seed=3)
    weights = ref.get_weights()
    for var, value in zip(ref.weights, weights):
        if "z_log_var" in var.path:
            value[...] = 0.0 if "kernel" in var.path else -30.0
    results = []
    for jit in (False, True):
        model = kv.build_mlp_vae((6,), 2, hidden_units=(8,), seed=3)
        model.set_weights(weights)
        model.compile(keras.optimizers.SGD(0.1), jit_compile=jit)
        logs = model.fit(resume.make_step_dataset(data, 32, shuffle=False),
                         epochs=1, steps_per_epoch=3, verbose=0)
        results.append((logs.history["loss"][0], model.get_weights()))
    (loss_a, w_a), (loss_b, w_b) = results
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("part", ["iaf", "hierarchical"])
def test_flow_and_hierarchy_score_like_float32_under_mixed_precision(part):
    # Their networks compute in float32 whatever the policy (densities and
    # log-determinants sum many terms); the model trained under
    # mixed_float16 scores draws like the same weights in a float32 model,
    # up to the float16 encoder and decoder.
    def build():
        if part == "iaf":
            return kv.build_mlp_vae(
                (6,), 3, hidden_units=(8,), seed=1,
                posterior=kv.posteriors.InverseAutoregressiveFlow(
                    hidden_units=(8,), context_units=3))
        return kv.build_hierarchical_vae((6,), (3, 2), ((8,), (4,)), seed=1)

    x = (np.random.RandomState(0).rand(64, 6) < 0.4).astype("float32")
    with distribute.dtype_policy("mixed_float16"):
        mixed = build()
        mixed.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = mixed.fit(x, batch_size=16, epochs=2, verbose=0)
        nets = list(mixed.posterior._flatten_layers(include_self=False))
        if part == "hierarchical":
            nets += list(mixed.prior._flatten_layers(include_self=False))
        assert nets and {n.compute_dtype for n in nets} == {"float32"}
        log_w_mixed = mixed.log_weights(x, 8, seed=1)
    assert np.all(np.isfinite(history.history["loss"]))
    plain = build()
    plain.set_weights(mixed.get_weights())
    np.testing.assert_allclose(log_w_mixed, plain.log_weights(x, 8, seed=1),
                               rtol=2e-2, atol=0.05)
