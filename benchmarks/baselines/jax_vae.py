"""Baseline (d): the same VAE in JAX + optax, jitted step or one scanned epoch.

Runs in the frameworks environment, not the project's (create it with
`bash benchmarks/setup_frameworks_env.sh`):

    benchmarks/_envs/frameworks/bin/python benchmarks/baselines/jax_vae.py --arch mlp --mode jit
    benchmarks/_envs/frameworks/bin/python benchmarks/baselines/jax_vae.py --arch mlp --mode scan

Plain JAX (no Flax): parameters are a dict of arrays, the networks are
functions, the objective is the negative ELBO (Bernoulli cross-entropy from
logits summed over pixels plus the closed-form Gaussian KL, averaged over the
batch) and the optimizer is `optax.adam(1e-3)`. Same architectures, data,
initialisation (glorot uniform kernels, zero biases) and batch size as
benchmarks/baselines/plain_keras_vae.py.

Two ways to run an epoch (`--mode`):

- `jit`: the train step (forward, `jax.value_and_grad`, optax update) under
  `jax.jit`, called from a Python loop once per batch; the batch is gathered
  on the device from a per-epoch permutation, the way the Flax MNIST example
  does it. This is what most JAX users write.
- `scan`: the whole epoch as one jitted `jax.lax.scan` over the steps (the
  permutation, the gathers and every update inside one compiled program):
  the fastest a JAX user gets without writing kernels.

Timing: `jit` runs `warmup_steps` steps first (compilation), then times
`steps` steps; `scan` runs one whole epoch first (its compilation), then
times the second. Both end with `block_until_ready`, because JAX dispatches
asynchronously. Prints one JSON line starting with BENCHMARK_RESULT.
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import _common  # noqa: E402

ARCHS = ("mlp", "conv")
MODES = ("jit", "scan")
LATENT_DIM = {"mlp": 50, "conv": 2}
DN = ("NHWC", "HWIO", "NHWC")  # Keras' layout: channels last


def _glorot(key, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def init_params(arch, key):
    """Dense layers as (in, out) kernels; convolutions as HWIO kernels."""
    latent = LATENT_DIM[arch]
    params = {}
    keys = iter(jax.random.split(key, 16))

    def dense(name, fan_in, fan_out):
        params[name] = {"w": _glorot(next(keys), (fan_in, fan_out), fan_in, fan_out),
                        "b": jnp.zeros((fan_out,), jnp.float32)}

    def conv(name, c_in, c_out, transpose=False):
        # Keras' glorot for a transposed kernel swaps the roles of in and out
        # channels; with a square 3x3 kernel the limit depends on the sum only.
        params[name] = {"w": _glorot(next(keys), (3, 3, c_in, c_out), 9 * c_in, 9 * c_out),
                        "b": jnp.zeros((c_out,), jnp.float32)}

    if arch == "mlp":
        dense("enc1", 784, 200)
        dense("enc2", 200, 200)
        hidden = 200
        dense("dec1", latent, 200)
        dense("dec2", 200, 200)
        dense("dec3", 200, 784)
    else:
        conv("enc_conv1", 1, 32)
        conv("enc_conv2", 32, 64)
        dense("enc_dense", 7 * 7 * 64, 16)
        hidden = 16
        dense("dec_dense", latent, 7 * 7 * 64)
        conv("dec_convt1", 64, 64, transpose=True)
        conv("dec_convt2", 64, 32, transpose=True)
        conv("dec_convt3", 32, 1, transpose=True)
    dense("mu", hidden, latent)
    dense("logvar", hidden, latent)
    return params


def _dense(p, h):
    return h @ p["w"] + p["b"]


def _conv(p, h, stride):
    return jax.lax.conv_general_dilated(h, p["w"], (stride, stride), "SAME",
                                        dimension_numbers=DN) + p["b"]


def _conv_t(p, h, stride):
    return jax.lax.conv_transpose(h, p["w"], (stride, stride), "SAME",
                                  dimension_numbers=DN) + p["b"]


def encode(arch, params, x):
    if arch == "mlp":
        h = jnp.tanh(_dense(params["enc1"], x.reshape(x.shape[0], -1)))
        h = jnp.tanh(_dense(params["enc2"], h))
    else:
        h = jax.nn.relu(_conv(params["enc_conv1"], x, 2))
        h = jax.nn.relu(_conv(params["enc_conv2"], h, 2))
        h = jax.nn.relu(_dense(params["enc_dense"], h.reshape(h.shape[0], -1)))
    return _dense(params["mu"], h), _dense(params["logvar"], h)


def decode(arch, params, z):
    """Logits of shape (N, 28, 28, 1)."""
    if arch == "mlp":
        h = jnp.tanh(_dense(params["dec1"], z))
        h = jnp.tanh(_dense(params["dec2"], h))
        return _dense(params["dec3"], h).reshape(-1, 28, 28, 1)
    h = jax.nn.relu(_dense(params["dec_dense"], z)).reshape(-1, 7, 7, 64)
    h = jax.nn.relu(_conv_t(params["dec_convt1"], h, 2))
    h = jax.nn.relu(_conv_t(params["dec_convt2"], h, 2))
    return _conv_t(params["dec_convt3"], h, 1)


def negative_elbo(arch, params, x, key):
    mu, logvar = encode(arch, params, x)
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
    logits = decode(arch, params, z)
    # Bernoulli cross-entropy from logits: softplus(l) - x l, summed over pixels.
    rec = jnp.sum(jax.nn.softplus(logits) - x * logits, axis=(1, 2, 3))
    kl = -0.5 * jnp.sum(1.0 + logvar - mu ** 2 - jnp.exp(logvar), axis=1)
    return jnp.mean(rec + kl)


def make_functions(arch, optimizer, batch_size, steps):
    loss_and_grad = jax.value_and_grad(lambda p, x, k: negative_elbo(arch, p, x, k))

    def update(params, opt_state, batch, key):
        loss, grads = loss_and_grad(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def train_step(params, opt_state, batch, key):
        return update(params, opt_state, batch, key)

    @jax.jit
    def train_epoch(params, opt_state, x, key):
        perm_key, step_key = jax.random.split(key)
        idx = jax.random.permutation(perm_key, x.shape[0])[: steps * batch_size]
        idx = idx.reshape(steps, batch_size)

        def body(carry, inputs):
            params, opt_state = carry
            batch_idx, i = inputs
            params, opt_state, loss = update(params, opt_state, x[batch_idx],
                                             jax.random.fold_in(step_key, i))
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(
            body, (params, opt_state), (idx, jnp.arange(steps)))
        return params, opt_state, jnp.mean(losses)

    return train_step, train_epoch


def run_train(arch, steps=600, batch_size=100, warmup_steps=50, seed=1337, mode="jit", x=None):
    if arch not in ARCHS:
        raise ValueError(f"Unknown arch {arch!r}. Expected one of {list(ARCHS)}.")
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}. Expected one of {list(MODES)}.")
    if x is None:
        x = _common.load_mnist_grey()
    x = np.asarray(x, dtype="float32").reshape(-1, 28, 28, 1)[: steps * batch_size]
    if len(x) < steps * batch_size:
        raise ValueError(f"steps * batch_size = {steps * batch_size} exceeds the {len(x)} examples.")
    x = jnp.asarray(x)
    key = jax.random.PRNGKey(seed)
    key, init_key = jax.random.split(key)
    params = init_params(arch, init_key)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    train_step, train_epoch = make_functions(arch, optimizer, batch_size, steps)

    def run_steps(params, opt_state, num_steps, key):
        perm_key, step_key = jax.random.split(key)
        perm = jax.random.permutation(perm_key, x.shape[0])
        losses = []
        for i in range(num_steps):
            batch = x[perm[i * batch_size:(i + 1) * batch_size]]
            params, opt_state, loss = train_step(params, opt_state, batch,
                                                 jax.random.fold_in(step_key, i))
            losses.append(loss)
        jax.block_until_ready(params)
        return params, opt_state, float(jnp.mean(jnp.stack(losses)))

    if mode == "jit":
        t0 = time.perf_counter()
        params, opt_state, _ = run_steps(params, opt_state, warmup_steps, jax.random.fold_in(key, 0))
        warmup_s = time.perf_counter() - t0
        with _common.ContentionMeter() as meter:
            t0 = time.perf_counter()
            params, opt_state, mean_loss = run_steps(params, opt_state, steps,
                                                     jax.random.fold_in(key, 1))
            seconds = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        params, opt_state, loss = train_epoch(params, opt_state, x, jax.random.fold_in(key, 0))
        jax.block_until_ready(params)
        warmup_s = time.perf_counter() - t0
        warmup_steps = steps
        with _common.ContentionMeter() as meter:
            t0 = time.perf_counter()
            params, opt_state, loss = train_epoch(params, opt_state, x,
                                                  jax.random.fold_in(key, 1))
            jax.block_until_ready(params)
            seconds = time.perf_counter() - t0
        mean_loss = float(loss)
    result = _common.throughput(steps, batch_size, seconds)
    import optax as _optax
    result.update(
        impl=f"jax_{mode}", arch=arch, mode=mode, latent_dim=LATENT_DIM[arch],
        batch_size=batch_size, warmup_steps=warmup_steps, warmup_seconds=warmup_s,
        others_cpu_fraction_timed=meter.others_cpu_fraction,
        final_metrics={"loss": mean_loss},
        num_params=int(sum(np.prod(a.shape) for a in jax.tree_util.tree_leaves(params))),
        peak_rss_mib=_common.peak_rss_mib(),
        versions={"jax": jax.__version__, "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
                  "optax": _optax.__version__, "numpy": np.__version__},
        device=str(jax.devices()[0]),
    )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHS, default="mlp")
    parser.add_argument("--mode", choices=MODES, default="jit")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--data", default=None, help="path to mnist.npz")
    args = parser.parse_args(argv)
    _common.emit(run_train(args.arch, steps=args.steps, batch_size=args.batch_size,
                           warmup_steps=args.warmup_steps, seed=args.seed, mode=args.mode,
                           x=_common.load_mnist_grey(args.data)))


if __name__ == "__main__":
    main()
