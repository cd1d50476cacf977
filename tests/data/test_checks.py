"""Tests of keras_vae.data.checks: the one rule every array goes through.

The oracle is numpy: uint8 k -> k / 255 (0/1-only uint8 kept binary),
other numbers cast to float32. Every entry point (loader, streams,
binarize_once, the VAE's methods) must apply the same rule.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae.data import checks


def _grey_uint8(seed=0, n=6):
    return np.random.RandomState(seed).randint(0, 256, size=(n, 4, 4, 1)).astype(np.uint8)


def test_uint8_is_divided_by_255():
    x = _grey_uint8()
    out = checks.to_float32(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32) * np.float32(1 / 255))


def test_binary_uint8_stays_binary_and_counts_are_kept():
    binary = np.array([[0, 1, 1, 0]], np.uint8)
    np.testing.assert_array_equal(checks.to_float32(binary), [[0.0, 1.0, 1.0, 0.0]])
    counts = np.array([[0, 3, 250, 1000]], np.int64)
    np.testing.assert_array_equal(checks.to_float32(counts), [[0, 3, 250, 1000]])
    floats = np.array([[-2.5, 7.0]], np.float64)
    np.testing.assert_array_equal(checks.to_float32(floats), [[-2.5, 7.0]])
    tensor = tf.constant(_grey_uint8())
    np.testing.assert_array_equal(checks.to_float32(tensor),
                                  checks.to_float32(_grey_uint8()))


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((0, 3)), r"`x` is empty \(shape \(0, 3\)\)"),
        (np.array(["a", "b"]), r"real numbers.*dtype <U1"),
        (np.array([[1 + 2j]]), r"real numbers.*complex"),
        (np.array([[0.0, np.nan], [np.inf, 1.0], [0.5, 0.5]]),
         r"2 NaN or infinite values.*2 examples.*example 0.*\[0, 1\]"),
    ],
)
def test_bad_arrays_are_refused_with_what_was_received(x, match):
    with pytest.raises(ValueError, match=match):
        checks.to_float32(x)


def test_argument_checks_name_the_argument():
    with pytest.raises(ValueError, match=r"`batch_size` must be an int >= 1.*0"):
        checks.check_int(0, "batch_size")
    with pytest.raises(ValueError, match="True"):
        checks.check_int(True, "batch_size")
    with pytest.raises(ValueError, match=r"\[0, 2147483647\].*-1"):
        checks.check_seed(-1, high=2**31, why="int32")
    with pytest.raises(ValueError, match="no targets"):
        checks.check_examples_only((1, 2), "make_dataset")


@pytest.mark.parametrize("value", [1, 7, np.int64(7), np.int32(1), np.uint8(3)])
def test_check_int_takes_python_and_numpy_integers(value):
    out = checks.check_int(value, "n")
    assert type(out) is int and out == int(value)
    assert checks.is_int(value)


@pytest.mark.parametrize("value", [0, -2, True, False, 2.0, 2.5, "3", None,
                                   np.float32(3), np.array([3])])
def test_check_int_refuses_what_is_not_a_count(value):
    assert not checks.is_int(value)
    with pytest.raises(ValueError) as info:
        checks.check_int(value, "steps", what="optimizer steps",
                         alternative="None (no limit)")
    assert str(info.value) == (
        "`steps` (optimizer steps) must be an int >= 1, or None (no limit). "
        f"Received: steps={value!r}")


def test_check_int_minimum():
    assert checks.check_int(0, "max_rollbacks", minimum=0) == 0
    with pytest.raises(ValueError, match=r"`num_classes` must be an int >= 2"):
        checks.check_int(1, "num_classes", minimum=2)


def test_every_entry_point_reads_uint8_the_same_way():
    x8 = _grey_uint8(n=10)
    expected = x8.astype(np.float32) * np.float32(1 / 255)
    # The streams, unshuffled, yield the converted examples.
    ds = kv.datasets.make_dataset(x8, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(next(iter(ds)).numpy(), expected)
    step_ds = kv.resume.make_step_dataset(x8, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(next(iter(step_ds)).numpy(), expected)
    stream = kv.resume.GraphStream(x8, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(stream.batch(0).numpy(), expected)
    # binarize_once draws from the same probabilities.
    np.testing.assert_array_equal(kv.datasets.binarize_once(x8, seed=3),
                                  kv.datasets.binarize_once(expected, seed=3))
    # The model: the same numbers from uint8 as from the scaled floats.
    vae = kv.build_mlp_vae((4, 4, 1), latent_dim=2, hidden_units=(8,),
                           likelihood="gaussian", seed=0)
    np.testing.assert_array_equal(vae.check_data(x8), expected)
    for a, b in zip(vae.encode(x8), vae.encode(expected)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        np.asarray(vae.log_weights(x8, num_samples=3, seed=1)),
        np.asarray(vae.log_weights(expected, num_samples=3, seed=1)),
    )


def test_uint8_counts_for_a_count_likelihood_say_how_to_pass_counts():
    vae = kv.build_mlp_vae((4,), latent_dim=2, hidden_units=(8,),
                           likelihood="poisson", seed=0)
    counts = np.array([[0, 3, 7, 250]], np.uint8)
    with pytest.raises(ValueError, match=r"uint8 arrays are read as 8-bit.*int64"):
        vae.check_data(counts)
    np.testing.assert_array_equal(vae.check_data(counts.astype(np.int64)),
                                  counts.astype(np.float32))
