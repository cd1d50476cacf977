"""Binarization protocols: which binary data a likelihood is measured on.

A log-likelihood on MNIST means nothing without the protocol that produced
the data: grey pixels, a binarization drawn once, or a fresh binarization
every epoch give numbers that cannot be compared (Burda et al. 2016 discuss
the gap). The protocol is an argument (`binarize`) of the loaders and the
training streams, and a string (`keras_vae.data.describe_protocol`) printed
next to every number.

    "none"       grey values as they are
    "dynamic"    train: a fresh x ~ Bernoulli(pixel) for every batch, drawn
                 by the training stream (`bernoulli_draw`); test: drawn once
    "static"     train and test each drawn once with a fixed seed
                 (`binarize_once`)
    "threshold"  pixel > 0.5
"""

import numpy as np
import tensorflow as tf

from keras_vae.data import checks

BINARIZE_MODES = ("none", "dynamic", "static", "threshold")
# Values per chunk of uniform draws in `binarize_once`: bounds the float64
# temporary to ~25 MB whatever the dataset size.
_BINARIZE_CHUNK_VALUES = 1 << 22

_BINARIZE_HELP = (
    "None/'none' keeps grey values in [0, 1], 'dynamic' re-draws "
    "x ~ Bernoulli(pixel) every epoch, 'static' draws once with a fixed "
    "seed, 'threshold' sets pixel > 0.5."
)


def check_binarize(binarize, valid=BINARIZE_MODES, hint=_BINARIZE_HELP):
    """Returns the canonical binarize mode ("none" for None)."""
    if binarize is None:
        return "none"
    mode = binarize.lower() if isinstance(binarize, str) else binarize
    if mode not in valid:
        raise ValueError(
            f"Unknown binarize mode {binarize!r}. Expected one of "
            f"{[None, *valid]}: {hint}"
        )
    return mode


def binarize_once(x, seed):
    """Draws one fixed binarization x_bin ~ Bernoulli(x) with numpy.

    The draw uses `numpy.random.RandomState(seed)`, whose stream numpy keeps
    frozen across versions (NEP 19), so the same seed gives the same binary
    data on every machine: the test set of the dynamic protocol and both
    sets of the static protocol are reproducible.

    Args:
        x: array-like of probabilities in [0, 1], examples on axis 0 (grey
            pixels; uint8 is divided by 255 as everywhere, see
            `keras_vae.data.checks`).
        seed: int in [0, 2**32 - 2].

    Returns:
        float32 array of 0.0 and 1.0, the shape of `x`.

    Raises:
        ValueError: if `seed` is not a valid int, or `x` is empty, not
            finite, or outside [0, 1].

    Examples:
        >>> binarize_once(np.array([0.0, 1.0]), seed=0).tolist()
        [0.0, 1.0]
        >>> x_test_bin = binarize_once(x_test, seed=0)  # same seed, same draw
    """
    seed = checks.check_seed(seed)
    x = checks.to_float32(x, "x", consumer="binarize_once")
    checks.check_probabilities(x, "x", "binarize_once")
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    rng = np.random.RandomState(seed)
    # Chunked draws give the same stream as one big draw, without a
    # float64 temporary the size of the whole dataset.
    for start in range(0, flat.size, _BINARIZE_CHUNK_VALUES):
        chunk = flat[start : start + _BINARIZE_CHUNK_VALUES]
        out[start : start + chunk.size] = rng.random_sample(chunk.size) < chunk
    return out.reshape(x.shape)


def bernoulli_draw(probs, seed):
    """x ~ Bernoulli(probs), one stateless uniform per value.

    The one draw of dynamic binarization: the training streams call it on
    every batch with a seed that is a function of where training is, so
    the same (seed, step) gives the same binary batch in any process.

    Args:
        probs: float tensor of probabilities in [0, 1], any shape.
        seed: shape (2,) int tensor, the stateless seed of this draw.

    Returns:
        tensor of 0.0 and 1.0, the shape and dtype of `probs`.
    """
    uniform = tf.random.stateless_uniform(
        tf.shape(probs), seed=seed, dtype=probs.dtype
    )
    return tf.cast(uniform < probs, probs.dtype)


def apply_protocol(x_train, x_test, mode, seed, source):
    """The one-off part of a protocol, applied to loaded splits.

    "dynamic" binarizes the test set once (seed) and leaves the training
    set grey for the stream; "static" binarizes both once (test: seed,
    train: seed + 1); "threshold" sets pixel > 0.5; "none" changes nothing.

    Returns:
        (x_train, x_test), float32.
    """
    if mode != "none":
        checks.check_probabilities(x_train, f"x_train from {source}", mode)
        checks.check_probabilities(x_test, f"x_test from {source}", mode)
    if mode == "dynamic":
        x_test = binarize_once(x_test, seed)
    elif mode == "static":
        x_test = binarize_once(x_test, seed)
        x_train = binarize_once(x_train, seed + 1)
    elif mode == "threshold":
        x_train = (x_train > 0.5).astype(np.float32)
        x_test = (x_test > 0.5).astype(np.float32)
    return x_train, x_test
