"""The input checks every array goes through, wherever it enters.

One rule for arrays of examples, used by the loaders, the training streams,
`binarize_once` and every `VAE` method that takes x (`VAE.check_data`):

- uint8 is 8-bit grey levels and is divided by 255 (k -> k / 255), unless
  it holds only 0 and 1, which is already binary data (Larochelle's
  binarized MNIST ships that way) and is kept as 0.0 / 1.0;
- other integer and bool arrays are kept as their values (counts for the
  Poisson and negative binomial heads), cast to float32;
- floats are cast to float32 as they are, even outside [0, 1] (continuous
  likelihoods score any real value);
- an empty array, a non-numeric dtype, or NaN / infinite values are a
  ValueError that says which examples are affected.

What a particular model also needs (the example shape, the likelihood's
support) is checked on top of this by `VAE.check_data`.
"""

import numbers

import numpy as np
import tensorflow as tf


def is_int(value, minimum=1):
    """True for a whole number >= minimum: a Python or numpy integer, not
    a bool (True is an int to Python, never a count to a user)."""
    return (not isinstance(value, bool)
            and isinstance(value, numbers.Integral)
            and value >= minimum)


def check_int(value, name, minimum=1, what=None, alternative=None):
    """`value` as an int >= minimum, or a ValueError naming it.

    The one integer-argument check of the package (counts, steps, sizes,
    versions). `what` says in a few words what the number counts,
    `alternative` what else the argument may be (e.g. "None for one group
    per dimension"); both go into the message.
    """
    if not is_int(value, minimum):
        about = f" ({what})" if what else ""
        other = f", or {alternative}" if alternative else ""
        raise ValueError(
            f"`{name}`{about} must be an int >= {minimum}{other}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_seed(seed, high=2**32 - 1, why="numpy's RandomState range"):
    """`seed` as an int in [0, high - 1], or a ValueError that says why."""
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed < high
    ):
        raise ValueError(
            f"`seed` must be an int in [0, {high - 1}] ({why}). "
            f"Received: seed={seed!r}"
        )
    return int(seed)


def check_examples_only(x, what):
    """Refuses an (x, y) tuple where only the examples are wanted."""
    if isinstance(x, tuple):
        raise ValueError(
            f"{what} takes the examples only (a VAE has no targets). "
            f"Received a tuple of length {len(x)}; pass x_train, not "
            "(x_train, y_train)."
        )


def uint8_to_float32(x):
    """8-bit grey levels -> [0, 1]; uint8 holding only 0 and 1 stays binary."""
    binary = x.size == 0 or x.max() <= 1
    x = x.astype(np.float32)
    if not binary:
        x *= np.float32(1.0 / 255.0)
    return x


def to_float32(x, what="x", source=None, consumer=None):
    """The one conversion of an array of examples to float32 numpy.

    Args:
        x: array-like, tf.Tensor or tf.Variable, examples on axis 0.
        what: str, the name used in error messages ("x", "x_test", ...).
        source: str or None, where the array came from (a file), for
            error messages.
        consumer: str or None, what needs the examples ("make_dataset",
            ...), for error messages.

    Returns:
        float32 numpy array of the same shape, converted by the rule in the
        module docstring.

    Raises:
        ValueError: non-numeric dtype, no examples, or NaN / infinite
            values (the message names the first examples affected).

    Examples:
        >>> to_float32(np.array([[0, 255]], np.uint8)).tolist()
        [[0.0, 1.0]]
    """
    name = f"`{what}`" + (f" from {source}" if source else "")
    if isinstance(x, (tf.Tensor, tf.Variable)):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.number) or x.dtype == bool
    ) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(
            f"{name} must hold real numbers (uint8 pixels 0..255, integer "
            f"counts or floats). Received dtype {x.dtype}."
        )
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise ValueError(
            f"{name} is empty (shape {x.shape}); {consumer or 'it'} needs "
            "at least one example, with examples on axis 0."
        )
    if x.dtype == np.uint8:
        return uint8_to_float32(x)
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - finite.sum())
        rows = np.unique(np.nonzero(~finite)[0])
        raise ValueError(
            f"{name} holds {bad} NaN or infinite values (after conversion to "
            f"float32) in {len(rows)} examples, the first is example "
            f"{rows[0]} (first affected: {rows[:5].tolist()}). Clean or "
            "drop those examples first."
        )
    return x


def check_probabilities(x, what, mode):
    """Values read as Bernoulli probabilities must lie in [0, 1]."""
    low, high = float(np.min(x)), float(np.max(x))
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"binarize={mode!r} treats values as probabilities, so they "
            f"must lie in [0, 1]; {what} has values in [{low:g}, {high:g}]. "
            "Use binarize=None for continuous data, or rescale it first."
        )


def check_labels(labels, num_classes, num_examples=None, what="labels"):
    """Class labels for a conditional model, as int32 numpy (N,).

    Integer labels in [0, num_classes) are taken as they are, of any
    integer dtype, shaped (N,) or (N, 1); floats are taken when every value
    is a whole number (labels read from a float array). Anything else is a
    ValueError that says what was received: one-hot rows, other shapes,
    values out of range, and a length that is not `num_examples`.
    `num_classes=None` checks only that the labels are >= 0 (a stream
    that does not know its model yet).
    """
    span = (f"[0, {num_classes})" if num_classes is not None
            else "0, 1, 2, ...")
    if isinstance(labels, tf.Tensor):
        labels = labels.numpy()
    array = np.asarray(labels)
    if array.dtype == object or array.dtype.kind not in "iuf":
        raise ValueError(
            f"`{what}` must be integer class labels in {span}. Received an "
            f"array of dtype {array.dtype}."
        )
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        hint = (" It looks one-hot: pass labels.argmax(axis=1)."
                if array.ndim == 2 and array.shape[1] > 1 else "")
        raise ValueError(
            f"`{what}` must be one integer label per example, shape (N,). "
            f"Received shape {array.shape}.{hint}"
        )
    if num_examples is not None and len(array) != num_examples:
        raise ValueError(
            f"`{what}` has {len(array)} labels for {num_examples} examples; "
            "pass one label per example."
        )
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array))
        if not np.all(whole):
            raise ValueError(
                f"`{what}` must be whole numbers (class labels in {span}). "
                f"Received non-integer values, e.g. "
                f"{array[np.argmin(whole)]!r}."
            )
    top = np.inf if num_classes is None else num_classes
    bad = np.nonzero((array < 0) | (array >= top))[0]
    if len(bad):
        raise ValueError(
            f"`{what}` must lie in {span}"
            + (f" for a model with num_classes={num_classes}"
               if num_classes is not None else "")
            + f". Received values from {array.min().item()!r} to "
            f"{array.max().item()!r} "
            f"({len(bad)} out of range, first at index {int(bad[0])})."
        )
    return array.astype(np.int32)
