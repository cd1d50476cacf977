"""Latency of each exported signature, loaded with tf.saved_model.load, on CPU.

    python benchmarks/serving_latency.py [--budget 4] [--out FILE.json]

Model: the IWAE paper's 784-200-200-50 MLP (tanh), Bernoulli decoder, with
untrained weights (latency does not depend on the weight values). It is
exported with keras_vae.export_saved_model and loaded back with
tf.saved_model.load; each signature is called through
`loaded.signatures[name]` with batch 1 and batch 256 (for `sample`: 1 and
256 draws), after 3 warm-up calls, until `--budget` seconds or 200 calls
(at least 10). Reported: p50 and p99 wall-clock latency per call (numpy
percentiles, linear interpolation; with few calls p99 is close to the
maximum), the number of timed calls, and the first call of each signature
after loading, batch 1 (what TF Serving's warm-up requests absorb).

Prints a markdown table and writes the numbers, machine, versions and load
as JSON (default benchmarks/_out/serving_latency.json).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_vae as kv  # noqa: E402

BATCHES = (1, 256)
CELLS = (
    ("encode", {}),
    ("decode", {}),
    ("reconstruct", {}),
    ("sample", {}),
    ("elbo", {}),
    ("log_likelihood", {"num_samples": 100}),
    ("log_likelihood", {"num_samples": 1000}),
)


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import keras
    import tensorflow_probability as tfp

    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_probability": tfp.__version__,
        "keras_vae": kv.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"),
    }


def cpu_busy():
    """(busy, total) jiffies of all CPUs, to measure load during the run."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def inputs_for(name, batch, extra, rng):
    x = (rng.uniform(size=(batch, 28, 28, 1)) < 0.13).astype("float32")
    if name == "decode":
        return {"z": tf.constant(rng.normal(size=(batch, 50)), tf.float32)}
    if name == "sample":
        return {"num_samples": tf.constant(batch, tf.int32),
                "seed": tf.constant(1, tf.int32)}
    inputs = {"x": tf.constant(x)}
    if name == "log_likelihood":
        inputs["num_samples"] = tf.constant(extra["num_samples"], tf.int32)
    return inputs


def time_calls(fn, inputs, budget, max_calls=200, min_calls=10):
    for _ in range(3):
        fn(**inputs)
    latencies = []
    start = time.perf_counter()
    while len(latencies) < max_calls and (
        len(latencies) < min_calls or time.perf_counter() - start < budget
    ):
        t0 = time.perf_counter()
        out = fn(**inputs)
        for value in out.values():
            value.numpy()
        latencies.append(time.perf_counter() - t0)
    return np.asarray(latencies)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=4.0,
                   help="seconds of timed calls per cell (default 4)")
    p.add_argument("--out", default=str(
        pathlib.Path(__file__).resolve().parent / "_out"
        / "serving_latency.json"))
    args = p.parse_args()

    model = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                             likelihood="bernoulli", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = kv.export_saved_model(model, os.path.join(tmp, "mnist_vae"))
        t0 = time.perf_counter()
        loaded = tf.saved_model.load(path)
        load_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        load_before = os.getloadavg()
        busy0 = cpu_busy()

        # The first call of each signature after loading (graph set-up).
        first = {}
        for name, extra in CELLS:
            if name in first:
                continue
            inputs = inputs_for(name, 1, extra, rng)
            t0 = time.perf_counter()
            loaded.signatures[name](**inputs)
            first[name] = time.perf_counter() - t0

        rows = []
        for name, extra in CELLS:
            key = name + (f"(K={extra['num_samples']})" if extra else "")
            for batch in BATCHES:
                lat = time_calls(loaded.signatures[name],
                                 inputs_for(name, batch, extra, rng),
                                 args.budget)
                rows.append({
                    "signature": key, "batch": batch, "calls": len(lat),
                    "p50_ms": 1000 * float(np.percentile(lat, 50)),
                    "p99_ms": 1000 * float(np.percentile(lat, 99)),
                    "first_call_ms": 1000 * first.pop(name)
                    if batch == 1 and name in first else None,
                })
                print(f"  {key:22s} batch {batch:3d}: p50 "
                      f"{rows[-1]['p50_ms']:8.2f} ms, p99 "
                      f"{rows[-1]['p99_ms']:8.2f} ms ({len(lat)} calls)",
                      file=sys.stderr)
        busy1 = cpu_busy()

    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "model": "784-200-200-50 MLP (tanh), Bernoulli decoder, untrained",
        "load_seconds": load_s,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpu_busy_fraction_during_run": (busy1[0] - busy0[0])
        / max(1, busy1[1] - busy0[1]),
        "rows": rows,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print("| signature | batch | p50 (ms) | p99 (ms) | calls | first call "
          "after load (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        first_ms = f"{r['first_call_ms']:.1f}" if r["first_call_ms"] else ""
        print(f"| {r['signature']} | {r['batch']} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['calls']} | {first_ms} |")
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
