"""Tests of keras_vae.data.protocols: binarization, describe_protocol."""

import numpy as np
import pytest

from keras_vae import datasets
from keras_vae.data import protocols
from helpers import assert_same, binomial_tolerance, is_binary

# The published MNIST class counts (LeCun et al.).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_dynamic_protocol_train_grey_test_fixed(data_dir, mnist_grey):
    (grey_train, _), (grey_test, _) = mnist_grey
    (x_train, _), (x_test, _) = datasets.load(
        "mnist", binarize="dynamic", data_dir=data_dir, seed=0
    )
    assert_same(x_train, grey_train)
    assert is_binary(x_test)
    assert abs(x_test.mean() - grey_test.mean()) < binomial_tolerance(grey_test)
    # Pixels with probability 0 or 1 cannot flip: the draw is per pixel.
    assert np.all(x_test[grey_test == 0.0] == 0.0)
    assert np.all(x_test[grey_test == 1.0] == 1.0)

    # The test set is a pure function of the grey images and the seed.
    assert_same(x_test, datasets.binarize_once(grey_test, 0))
    (_, _), (x_test_other, _) = datasets.load(
        "mnist", binarize="dynamic", data_dir=data_dir, seed=1
    )
    assert np.mean(x_test != x_test_other) > 0.01


def test_static_protocol_is_deterministic(data_dir, mnist_grey):
    (grey_train, _), (grey_test, _) = mnist_grey
    (x_train, y_train), (x_test, _) = datasets.load(
        "mnist", binarize="static", data_dir=data_dir, seed=3
    )
    assert is_binary(x_train) and is_binary(x_test)
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert abs(x_train.mean() - grey_train.mean()) < binomial_tolerance(
        grey_train
    )
    # Both sets are pure functions of the grey images and the seed: the
    # test set uses `seed` (the same test set as the dynamic protocol), the
    # training set `seed + 1`. Draws are sequential in example order, so a
    # prefix of the training set is the draw of the prefix.
    assert_same(x_test, datasets.binarize_once(grey_test, 3))
    assert_same(
        x_train[:3000], datasets.binarize_once(grey_train[:3000], 4)
    )


def test_threshold_protocol(data_dir, mnist_grey):
    (grey_train, _), (grey_test, _) = mnist_grey
    (x_train, _), (x_test, _) = datasets.load(
        "mnist", binarize="threshold", data_dir=data_dir
    )
    assert_same(x_train, (grey_train > 0.5).astype(np.float32))
    assert_same(x_test, (grey_test > 0.5).astype(np.float32))


@pytest.mark.parametrize("mode", ["dynamic", "threshold"])
def test_binarized_mnist_refuses_rebinarization(data_dir, mode):
    with pytest.raises(ValueError, match="already binarized"):
        datasets.load("binarized_mnist", binarize=mode, data_dir=data_dir)


def test_unknown_binarize_mode_lists_valid_modes():
    with pytest.raises(ValueError, match=r"'dynamc'.*'dynamic'.*'static'.*'threshold'"):
        datasets.load("mnist", binarize="dynamc")


def test_binarize_once():
    probs = np.concatenate(
        [np.zeros(1000), np.ones(1000), np.full(100000, 0.3)]
    ).astype(np.float32)
    draw = datasets.binarize_once(probs, seed=4)
    assert draw.dtype == np.float32 and draw.shape == probs.shape
    assert np.all(draw[:1000] == 0.0) and np.all(draw[1000:2000] == 1.0)
    middle = probs[2000:]
    assert abs(draw[2000:].mean() - 0.3) < binomial_tolerance(middle)
    assert_same(draw, datasets.binarize_once(probs, seed=4))
    assert not np.array_equal(draw, datasets.binarize_once(probs, seed=5))


def test_binarize_once_chunking_does_not_change_the_draw(monkeypatch):
    probs = np.random.RandomState(0).uniform(size=(7, 5, 3)).astype(np.float32)
    whole = datasets.binarize_once(probs, seed=9)
    monkeypatch.setattr(protocols, "_BINARIZE_CHUNK_VALUES", 4)
    assert_same(datasets.binarize_once(probs, seed=9), whole)


def test_describe_protocol():
    assert datasets.describe_protocol("mnist", "dynamic") == (
        "MNIST, dynamic binarization (train: fresh Bernoulli(pixel/255) "
        "draw each epoch; test: binarized once, seed 0)"
    )
    assert datasets.describe_protocol("binarized_mnist", "static") == (
        "binarized MNIST (Larochelle & Murray 2011 fixed binarization), static"
    )
    assert datasets.describe_protocol("binarized_mnist", None) == (
        datasets.describe_protocol("binarized_mnist", "static")
    )
    assert datasets.describe_protocol("mnist", None) == (
        "MNIST, continuous pixels in [0, 1]"
    )
    assert "seed 2" in datasets.describe_protocol("fashion_mnist", "dynamic", 2)
    assert "threshold" in datasets.describe_protocol("mnist", "threshold")
    assert "static" in datasets.describe_protocol("/tmp/my.npz", "static")
    with pytest.raises(ValueError, match="already binarized"):
        datasets.describe_protocol("binarized_mnist", "dynamic")
    with pytest.raises(ValueError, match="Unknown binarize mode"):
        datasets.describe_protocol("mnist", "bernoulli")
