"""Tests of keras_vae.networks: the encoder and decoder builders.

Oracles: the architectures as the papers state them (AEVB / IWAE MLPs,
the keras.io convolutional VAE), counted by hand.
"""

import numpy as np
import pytest

import keras_vae as kv
from keras_vae import likelihoods


def test_mlp_encoder_and_decoder_have_the_papers_shapes():
    # IWAE paper's one-layer model: 784-200-200-50; Dense weights + biases.
    enc = kv.build_mlp_encoder((28, 28, 1), 50, hidden_units=(200, 200))
    z_mean, z_log_var = enc(np.zeros((3, 28, 28, 1), "float32"))
    assert z_mean.shape == z_log_var.shape == (3, 50)
    assert enc.count_params() == (784 * 200 + 200) + (200 * 200 + 200) + 2 * (
        200 * 50 + 50)
    dec = kv.build_mlp_decoder(50, (28, 28, 1), hidden_units=(200, 200))
    assert dec.output_shape == (None, 784)
    assert dec.count_params() == (50 * 200 + 200) + (200 * 200 + 200) + (
        200 * 784 + 784)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "discretized_logistic"])
def test_decoders_are_sized_by_the_likelihood_head(name):
    head = likelihoods.get(name)
    mlp = kv.build_mlp_decoder(2, (28, 28, 1), hidden_units=(8,), likelihood=name)
    assert mlp.output_shape[-1] == head.params_size((28, 28, 1))
    conv = kv.build_conv_decoder(2, (28, 28, 1), likelihood=name)
    assert int(np.prod(conv.output_shape[1:])) == head.params_size((28, 28, 1))


def test_conv_networks_follow_keras_io():
    enc = kv.build_conv_encoder((28, 28, 1), 2)
    # conv 3x3x1x32 + conv 3x3x32x64 + dense 7*7*64 -> 16 + two heads 16 -> 2
    assert enc.count_params() == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (
        7 * 7 * 64 * 16 + 16) + 2 * (16 * 2 + 2)
    dec = kv.build_conv_decoder(2, (28, 28, 1))
    assert dec.output_shape == (None, 28, 28, 1)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: kv.build_mlp_encoder((28, 28, 1), 0), "latent_dim=0"),
        (lambda: kv.build_mlp_encoder((28, -1), 2), r"input_shape=\(28, -1\)"),
        (lambda: kv.build_mlp_encoder((4,), 2, hidden_units=(8, 0)),
         r"hidden_units=\(8, 0\)"),
        (lambda: kv.build_mlp_decoder(2, "abc"), "output_shape='abc'"),
        (lambda: kv.build_conv_encoder((30, 28, 1), 2), "divisible by 4"),
        (lambda: kv.build_conv_decoder(2, (28, 28)), r"\(height, width, channels\)"),
        (lambda: kv.build_conv_encoder((28, 28, 1), 2, filters=(32, True)),
         "filters"),
    ],
)
def test_bad_arguments_name_what_was_received(build, match):
    with pytest.raises(ValueError, match=match):
        build()
