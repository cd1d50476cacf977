"""matmul_floor: the fastest an MNIST epoch of the 784-200-200-50 MLP VAE can be here.

    .venv/bin/python benchmarks/matmul_floor.py

One train step of the MLP VAE at batch 100 is, in arithmetic, a fixed list of
matrix products: the forward pass through the seven dense layers (encoder
784-200-200, two 200-50 heads, decoder 50-200-200-784), and for each layer
the weight gradient (in x B times B x out) and, except for the first layer,
the input gradient (B x out times out x in). About 0.25 GFLOP in all.

This script runs exactly those products, 600 times (one epoch), inside one
`tf.function` with nothing else: no activations, no loss, no optimizer, no
data pipeline, no Keras. Its time is a lower bound for any implementation of
this model on this machine with TensorFlow's CPU kernels (oneDNN), and it
says how much room the training loop has left. (The first operand of each
product is scaled by a step-dependent scalar so that nothing can be hoisted
out of the loop; that elementwise work is counted in the floor.) It also times one large
product (2048^3) for the machine's peak matmul rate.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

import _common  # noqa: E402

BATCH = 100
STEPS = 600
# (fan_in, fan_out) of the dense layers of one step, encoder then decoder.
LAYERS = [(784, 200), (200, 200), (200, 50), (200, 50),
          (50, 200), (200, 200), (200, 784)]


def step_products():
    """(a_shape, b_shape, transpose_a, transpose_b) of every product."""
    products = []
    for i, (fan_in, fan_out) in enumerate(LAYERS):
        products.append(((BATCH, fan_in), (fan_in, fan_out), False, False))
        products.append(((BATCH, fan_in), (BATCH, fan_out), True, False))
        if i != 0:  # no gradient with respect to the data
            products.append(((BATCH, fan_out), (fan_in, fan_out), False, True))
    return products


def flops(products):
    total = 0
    for a, b, ta, tb in products:
        m, k = (a[1], a[0]) if ta else a
        n = b[0] if tb else b[1]
        total += 2 * m * n * k
    return total


def main():
    products = step_products()
    tensors = [(tf.random.normal(a), tf.random.normal(b), ta, tb)
               for a, b, ta, tb in products]

    @tf.function
    def epoch():
        acc = tf.constant(0.0)
        for i in tf.range(STEPS):
            # The first operand (batch-shaped, like an activation) changes
            # every step, so that no product can be hoisted out of the loop.
            s = 1.0 + tf.cast(i, tf.float32) * 1e-7
            for a, b, ta, tb in tensors:
                acc += tf.linalg.matmul(a * s, b, transpose_a=ta,
                                        transpose_b=tb)[0, 0]
        return acc

    epoch()  # trace
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        float(epoch())
        runs.append(time.perf_counter() - start)
    best = min(runs)
    step_flop = flops(products)

    big = tf.random.normal((2048, 2048))
    square = tf.function(lambda: tf.linalg.matmul(big, big)[0, 0])
    float(square())
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        float(square())
    peak = 2 * 2048 ** 3 * reps / (time.perf_counter() - start)

    result = {
        "benchmark": "matmul_floor",
        "machine": _common.machine_info(),
        "tensorflow": tf.__version__,
        "gflop_per_step": step_flop / 1e9,
        "floor_s_per_mnist_epoch": best,
        "floor_examples_per_s": STEPS * BATCH / best,
        "step_matmul_gflop_per_s": step_flop * STEPS / best / 1e9,
        "peak_matmul_gflop_per_s_2048": peak / 1e9,
    }
    print(f"one step: {len(products)} products, {step_flop / 1e9:.3f} GFLOP")
    print(f"600 steps of products alone: {best:.3f} s "
          f"({STEPS * BATCH / best:,.0f} examples/s, "
          f"{step_flop * STEPS / best / 1e9:.0f} GFLOP/s)")
    print(f"2048^3 matmul: {peak / 1e9:.0f} GFLOP/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
