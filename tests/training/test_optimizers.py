"""FusedAdam against Keras' own Adam (the oracle): same trajectory, same
slots, same serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae.optimizers import FusedAdam


def _model():
    return kv.build_mlp_vae((12,), 3, hidden_units=(16,), seed=0)


def _train(optimizer, steps=30, seed=0):
    keras.utils.set_random_seed(seed)
    model = _model()
    # Keras' own Adam stays itself (the oracle), not fused by compile.
    model.compile(optimizer=optimizer, fused_adam=False)
    x = (np.random.default_rng(0).random((200, 12)) < 0.3).astype("float32")
    model.fit(x, batch_size=20, epochs=steps // 10, verbose=0)
    return model


@pytest.mark.parametrize("kwargs", [
    {}, {"beta_1": 0.5, "beta_2": 0.99, "epsilon": 1e-4},
])
def test_fused_adam_follows_keras_adam(kwargs):
    reference = _train(keras.optimizers.Adam(3e-3, **kwargs))
    fused = _train(FusedAdam(3e-3, **kwargs))
    for a, b in zip(reference.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    # The slots hold the same moments, so either can resume the other.
    ref_slots = [v.numpy() for v in reference.optimizer.variables]
    fused_slots = [v.numpy() for v in fused.optimizer.variables]
    assert len(ref_slots) == len(fused_slots)
    for a, b in zip(ref_slots, fused_slots):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_one_step_matches_the_adam_formula():
    w = keras.Variable(np.array([1.0, -2.0, 0.5], "float32"))
    g = tf.constant([0.3, -0.1, 2.0])
    opt = FusedAdam(0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    opt.apply([g], [w])
    opt.apply([g], [w])
    m = v = np.zeros(3)
    expected = np.array([1.0, -2.0, 0.5])
    for t in (1, 2):
        gn = g.numpy().astype("float64")
        m = 0.9 * m + 0.1 * gn
        v = 0.999 * v + 0.001 * gn ** 2
        lr_t = 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        expected = expected - lr_t * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)


def test_amsgrad_falls_back_to_keras():
    reference = _train(keras.optimizers.Adam(3e-3, amsgrad=True))
    fused = _train(FusedAdam(3e-3, amsgrad=True))
    for a, b in zip(reference.get_weights(), fused.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_with_fused_adam_round_trips(tmp_path):
    model = _train(FusedAdam(1e-3), steps=10)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.optimizer).__name__ == "FusedAdam"
    assert loaded.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations)


def test_compile_fuses_a_plain_adam_in_place(tmp_path):
    # What a script does: compile(optimizer=keras.optimizers.Adam(...)).
    # The optimizer stays the object the user holds, with its settings;
    # its trajectory is Keras' Adam's (the oracle, fused_adam=False).
    adam = keras.optimizers.Adam(3e-3, beta_1=0.8)
    keras.utils.set_random_seed(0)
    fused = _model()
    fused.compile(optimizer=adam)
    assert fused.optimizer is adam and type(adam) is FusedAdam
    assert adam.get_config()["beta_1"] == 0.8
    x = (np.random.default_rng(0).random((200, 12)) < 0.3).astype("float32")
    fused.fit(x, batch_size=20, epochs=3, verbose=0)
    reference = _train(keras.optimizers.Adam(3e-3, beta_1=0.8))
    for a, b in zip(reference.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    # "adam" by name too; other optimizers and subclasses are left alone.
    named = _model()
    named.compile()
    assert type(named.optimizer) is FusedAdam
    sgd = keras.optimizers.SGD(0.1)
    other = _model()
    other.compile(optimizer=sgd)
    assert type(other.optimizer) is keras.optimizers.SGD
    # The opt-out is kept when the model is saved and loaded.
    kept = _model()
    kept.compile(optimizer=keras.optimizers.Adam(1e-3), fused_adam=False)
    kept.fit(x[:40], batch_size=20, verbose=0)
    kept.save(tmp_path / "kept.keras")
    loaded = keras.models.load_model(tmp_path / "kept.keras")
    assert type(loaded.optimizer) is keras.optimizers.Adam
    with pytest.raises(ValueError, match="fused_adam"):
        kept.compile(fused_adam="yes")
