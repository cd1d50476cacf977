"""Argument checks shared by the training callbacks."""

import math

import numpy as np

from keras_vae.data import checks

def _check_number(value, name, minimum=0.0, allow_equal=True):
    ok = (
        isinstance(value, (int, float, np.floating, np.integer))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= minimum if allow_equal else value > minimum)
    )
    if not ok:
        bound = ">=" if allow_equal else ">"
        raise ValueError(
            f"`{name}` must be a finite number {bound} {minimum}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _check_steps(value, name):
    return checks.check_int(value, name, what="optimizer steps")
