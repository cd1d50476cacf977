"""matmul_floor: the fastest an MNIST epoch of the 784-200-200-50 MLP VAE can be here.

    .venv/bin/python benchmarks/matmul_floor.py
    .venv/bin/python benchmarks/matmul_floor.py --no-stages   # the products only

One train step of the MLP VAE at batch 100 is, in arithmetic, a fixed list of
matrix products: the forward pass through the seven dense layers (encoder
784-200-200, two 200-50 heads, decoder 50-200-200-784), and for each layer
the weight gradient (in x B times B x out) and, except for the first layer,
the input gradient (B x out times out x in). About 0.22 GFLOP in all.

The floor runs exactly those products, 600 times (one epoch), inside one
`tf.function` with nothing else: no activations, no loss, no optimizer, no
data pipeline, no Keras. Its time is a lower bound for any implementation of
this model on this machine with TensorFlow's CPU kernels (oneDNN), and it
says how much room the training loop has left. (The first operand of each
product is scaled by a scalar that depends on the step and on the previous
step's result, so that nothing can be hoisted out of the loop and the steps
run one after another, as training steps do; that elementwise work is
counted in the floor.) It also times one large product (2048^3) for the
machine's peak matmul rate.

The stages (on by default) are the profile of the whole step: the same VAE
step written by hand in raw TensorFlow, the smallest TF program of this
arithmetic (no Keras, no TFP, batches gathered in the graph from a
variable, the Bernoulli cross-entropy as softplus(l) - x l, the closed-form
KL), timed for 600 serial steps at four depths:

- forward: the negative ELBO of the batch;
- forward_backward: plus its gradient with respect to the 14 variables;
- step_sgd: plus an in-place update `v -= lr * g` of every variable;
- step_adam: plus Adam's update (`ResourceApplyAdam`, one kernel per
  variable, what keras_vae's fused Adam runs).

The differences between consecutive stages say where an epoch's time goes
(products, element-wise work, backward pass, reading and writing the
optimizer's state), and step_adam is what the same step costs when nothing
of a framework is left. Prints a summary and one JSON line starting with
BENCHMARK_RESULT (benchmarks/train_throughput.py runs it as row
`matmul_floor`).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

import _common  # noqa: E402

STEPS = 600
BATCH = 100
# (fan_in, fan_out) of the dense layers of one step, encoder then decoder.
LAYERS = [(784, 200), (200, 200), (200, 50), (200, 50),
          (50, 200), (200, 200), (200, 784)]


def step_products(batch=BATCH):
    """(a_shape, b_shape, transpose_a, transpose_b) of every product."""
    products = []
    for i, (fan_in, fan_out) in enumerate(LAYERS):
        products.append(((batch, fan_in), (fan_in, fan_out), False, False))
        products.append(((batch, fan_in), (batch, fan_out), True, False))
        if i != 0:  # no gradient with respect to the data
            products.append(((batch, fan_out), (fan_in, fan_out), False, True))
    return products


def flops(products):
    total = 0
    for a, b, ta, tb in products:
        m, k = (a[1], a[0]) if ta else a
        n = b[0] if tb else b[1]
        total += 2 * m * n * k
    return total


def products_epoch(steps, batch):
    """Seconds (best of 3) of `steps` steps of the products alone; their GFLOP."""
    products = step_products(batch)
    tensors = [(tf.random.normal(a), tf.random.normal(b), ta, tb)
               for a, b, ta, tb in products]

    @tf.function
    def epoch():
        def body(i, acc):
            # The first operand (batch-shaped, like an activation) changes
            # every step and depends on the previous step's result.
            s = 1.0 + tf.cast(i, tf.float32) * 1e-7 + acc * 1e-30
            total = acc
            for a, b, ta, tb in tensors:
                total += tf.linalg.matmul(a * s, b, transpose_a=ta,
                                          transpose_b=tb)[0, 0]
            return i + 1, total
        return tf.while_loop(lambda i, _: i < steps, body,
                             (tf.constant(0), tf.constant(0.0)))[1]

    return _best_of(epoch), flops(products)


def _best_of(fn, runs=3):
    float(fn())  # trace
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        float(fn())
        times.append(time.perf_counter() - start)
    return min(times)


STAGES = ("forward", "forward_backward", "step_sgd", "step_adam")


def stage_epoch(stage, x, steps, batch, seed=1):
    """Seconds (best of 3) of `steps` serial steps of the raw-TF VAE at `stage`."""
    rng = tf.random.Generator.from_seed(seed)
    kernels = [tf.Variable(rng.uniform((a, b), -(6 / (a + b)) ** 0.5, (6 / (a + b)) ** 0.5))
               for a, b in LAYERS]
    biases = [tf.Variable(tf.zeros((b,))) for _, b in LAYERS]
    variables = kernels + biases
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v)))
               for v in variables]
    data = tf.Variable(x.reshape(len(x), -1), trainable=False)
    count = tf.Variable(0.0)
    n = len(x)

    def dense(h, i):
        return tf.linalg.matmul(h, kernels[i]) + biases[i]

    def negative_elbo(xb, seed):
        h = tf.tanh(dense(tf.tanh(dense(xb, 0)), 1))
        mu, log_var = dense(h, 2), dense(h, 3)
        z = mu + tf.exp(0.5 * log_var) * tf.random.stateless_normal(tf.shape(mu), seed)
        logits = dense(tf.tanh(dense(tf.tanh(dense(z, 4)), 5)), 6)
        rec = tf.reduce_sum(tf.nn.softplus(logits) - xb * logits, axis=1)
        kl = -0.5 * tf.reduce_sum(1.0 + log_var - mu ** 2 - tf.exp(log_var), axis=1)
        return tf.reduce_mean(rec + kl)

    def step(i, previous):
        start = (i * batch) % (n - batch + 1)
        # `previous * 0` ties the step to the one before: steps run serially.
        xb = tf.gather(data, tf.range(start, start + batch)) + previous * 0.0
        seed = tf.stack([i, 7])
        if stage == "forward":
            return negative_elbo(xb, seed)
        with tf.GradientTape() as tape:
            loss = negative_elbo(xb, seed)
        grads = tape.gradient(loss, variables)
        if stage == "forward_backward":
            return loss + tf.add_n([tf.reduce_sum(g[:1]) * 0.0 for g in grads])
        if stage == "step_sgd":
            deps = [v.assign_sub(1e-3 * g) for v, g in zip(variables, grads)]
        else:
            t = count.assign_add(1.0)
            deps = [tf.raw_ops.ResourceApplyAdam(
                var=v.handle, m=m.handle, v=s.handle, beta1_power=0.9 ** t,
                beta2_power=0.999 ** t, lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7,
                grad=g) for v, (m, s), g in zip(variables, moments, grads)]
        with tf.control_dependencies(deps):
            return tf.identity(loss)

    @tf.function
    def epoch():
        return tf.while_loop(lambda i, _: i < steps, lambda i, p: (i + 1, step(i, p)),
                             (tf.constant(0), tf.constant(0.0)))[1]

    return _best_of(epoch)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--no-stages", action="store_true",
                        help="time the products only, not the raw-TF step's stages")
    parser.add_argument("--data", default=None, help="path to mnist.npz (for the stages)")
    args = parser.parse_args(argv)
    steps, batch = args.steps, args.batch_size

    with _common.ContentionMeter() as meter:
        best, step_flop = products_epoch(steps, batch)
    big = tf.random.normal((2048, 2048))
    square = tf.function(lambda: tf.linalg.matmul(big, big)[0, 0])
    float(square())
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        float(square())
    peak = 2 * 2048 ** 3 * reps / (time.perf_counter() - start)

    result = _common.throughput(steps, batch, best)
    result.update({
        "benchmark": "matmul_floor",
        "impl": "matmul_floor",
        "machine": _common.machine_info(),
        "versions": {"tensorflow": tf.__version__},
        "others_cpu_fraction_timed": meter.others_cpu_fraction,
        "gflop_per_step": step_flop / 1e9,
        "floor_s_per_mnist_epoch": result["s_per_mnist_epoch"],
        "step_matmul_gflop_per_s": step_flop * steps / best / 1e9,
        "peak_matmul_gflop_per_s_2048": peak / 1e9,
    })
    print(f"one step: {len(step_products(batch))} products, {step_flop / 1e9:.3f} GFLOP")
    print(f"{steps} steps of products alone: {best:.3f} s "
          f"({steps * batch / best:,.0f} examples/s, "
          f"{step_flop * steps / best / 1e9:.0f} GFLOP/s; "
          f"{result['s_per_mnist_epoch']:.3f} s per MNIST epoch)")
    print(f"2048^3 matmul: {peak / 1e9:.0f} GFLOP/s")
    if not args.no_stages:
        x = _common.load_mnist_grey(args.data)
        stages = {}
        for stage in STAGES:
            seconds = stage_epoch(stage, x, steps, batch)
            stages[stage] = _common.throughput(steps, batch, seconds)["s_per_mnist_epoch"]
            print(f"raw-TF step, {stage:17}: {stages[stage]:.3f} s per MNIST epoch")
        result["stages_s_per_mnist_epoch"] = stages
    _common.emit(result)


if __name__ == "__main__":
    main()
