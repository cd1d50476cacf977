"""optimizer_step: the MLP VAE's train step with Keras' Adam and with FusedAdam.

    .venv/bin/python benchmarks/optimizer_step.py

Runs `model.train_step` on one fixed MNIST batch (100 grey images, as the
train_throughput benchmark feeds them) 600 times inside one `tf.function`
loop, so that neither the input pipeline nor `fit`'s per-step Python takes
part: only the step itself, with `keras.optimizers.Adam` and with
`kv.optimizers.FusedAdam`. Also runs the same loop with the cheapest possible
update (TensorFlow's fused plain gradient step), which bounds what any
optimizer could save. Each variant 3 times, best kept. Reports the largest
weight difference between the two Adams after 5 steps from the same start.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, os.path.dirname(BENCH_DIR))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import _common  # noqa: E402
import keras_vae as kv  # noqa: E402

tf.get_logger().setLevel("ERROR")  # one function per variant, on purpose

STEPS = 600


def _model(optimizer):
    keras.utils.set_random_seed(0)
    model = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                             likelihood="bernoulli", seed=0)
    model.compile(optimizer=optimizer)
    model.optimizer.build(model.trainable_variables)
    return model


def _loop(model, x, update):
    @tf.function(autograph=False)
    def run(n):
        def body(i, acc):
            if update == "train_step":
                logs = model.train_step(x)
                return i + 1, acc + logs["loss"]
            with tf.GradientTape() as tape:
                loss = model.compute_terms(x, training=True)["loss"]
            grads = tape.gradient(loss, model.trainable_weights)
            for g, w in zip(grads, model.trainable_weights):
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=w.handle, alpha=tf.constant(1e-3), delta=g)
            return i + 1, acc + loss

        return tf.while_loop(lambda i, acc: i < n, body,
                             (tf.constant(0), tf.constant(0.0)))[1]

    return run


def _best_seconds(fn, repeats=3):
    fn(tf.constant(5))  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(fn(tf.constant(STEPS)))
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    x = tf.constant(_common.load_mnist_grey()[:100, :, :, None])
    rows = []
    weights = {}
    for name, make, update in [
        ("keras.optimizers.Adam", lambda: keras.optimizers.Adam(1e-3),
         "train_step"),
        ("kv.optimizers.FusedAdam", lambda: kv.optimizers.FusedAdam(1e-3),
         "train_step"),
        ("plain gradient step (lower bound)",
         lambda: keras.optimizers.SGD(1e-3), "sgd"),
    ]:
        model = _model(make())
        if update == "train_step":
            _loop(model, x, update)(tf.constant(5))
            weights[name] = [w.copy() for w in model.get_weights()]
        seconds = _best_seconds(_loop(model, x, update))
        rows.append((name, seconds))
        print(f"{name:36s} {seconds:.3f} s per {STEPS} steps", flush=True)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(
        weights["keras.optimizers.Adam"], weights["kv.optimizers.FusedAdam"]))
    print(f"largest weight difference after 5 steps, Adam vs FusedAdam: "
          f"{diff:.1e}")
    machine = _common.machine_info()
    print(f"{machine['cpu_model']} ({machine['cpu_cores']} cores), "
          f"{machine['date']}, TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main()
