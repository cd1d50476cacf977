"""Argument checks shared by the training callbacks."""

import math

import numpy as np

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
    if isinstance(value, bool) or not isinstance(
        value, (int, np.integer)
    ) or value < 1:
        raise ValueError(
            f"`{name}` must be an int >= 1 (optimizer steps). Received: "
            f"{name}={value!r}"
        )
    return int(value)
