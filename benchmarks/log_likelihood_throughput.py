"""log_likelihood_throughput: importance-sampled log p(x) over the MNIST test set.

    .venv/bin/python benchmarks/log_likelihood_throughput.py                  # MLP, K = 5000, all 10,000 test images
    .venv/bin/python benchmarks/log_likelihood_throughput.py --memory-sweep   # + peak memory at K = 50 ... 5000
    .venv/bin/python benchmarks/log_likelihood_throughput.py --arch conv --num-images 200

Times `keras_vae.evaluation.log_likelihood(model, x, num_samples=K)` (the
IWAE estimate with K samples from q(z|x); examples and samples batched
together, chunked so that one step decodes at most `max_values` numbers) and,
when the Pythae environment exists (`bash benchmarks/setup_pythae_env.sh`),
Pythae 0.1.2's `VAE.get_nll` on the same architecture, which loops over the
examples one at a time. Pythae is timed on `--pythae-images` images and
extrapolated to the full count (said so in the output).

Each measurement runs in a fresh process. A worker builds a freshly
initialised model (the cost does not depend on the weights), traces the
evaluation function on two images, reads its resident memory, then times the
call on `--num-images` test images (binarized once, seed 0) and reports the
seconds, importance samples per second, and the growth of the peak resident
set size over the memory held before the call (`ru_maxrss`, Linux).

With `--memory-sweep` the MLP is also run on 500 images at K = 50, 500,
5000: the peak memory should stop growing once K exceeds the chunk size
(memory bounded by the chunk, not by K).
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

BENCH_DIR = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _common  # noqa: E402

TEST_SIZE = 10000


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(BENCH_DIR.parent))
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_vae as kv
    from _keras_timing import build_keras_vae

    keras.utils.set_random_seed(args.seed)
    x = _common.load_mnist_grey(args.data, split="test")[: args.num_images]
    x = kv.datasets.binarize_once(x[..., None], seed=0)
    model = build_keras_vae(args.arch, args.seed)
    # Trace (and build the float64 accumulators) outside the timed call.
    kv.evaluation.log_likelihood(model, x[:2], num_samples=args.num_samples, verbose=0,
                                 max_values=args.max_values)
    rss_before = _rss_mib()
    with _common.ContentionMeter() as meter:
        start = time.perf_counter()
        result = kv.evaluation.log_likelihood(model, x, num_samples=args.num_samples,
                                              verbose=0, max_values=args.max_values)
        seconds = time.perf_counter() - start
    n, k = len(x), args.num_samples
    _common.emit({
        "impl": "keras_vae", "arch": args.arch, "num_images": n, "num_samples": k,
        "max_values": args.max_values, "seconds": seconds,
        "samples_per_s": n * k / seconds,
        "seconds_full_test_set": seconds * TEST_SIZE / n,
        "rss_before_mib": rss_before, "peak_rss_mib": _common.peak_rss_mib(),
        "peak_growth_mib": max(0.0, _common.peak_rss_mib() - rss_before),
        "log_likelihood_mean": float(result.mean),
        "others_cpu_fraction": meter.others_cpu_fraction,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "numpy": np.__version__},
    })


def _run(cmd, timeout):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    result = _common.parse_result(proc.stdout)
    if result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return result


def _keras_vae_cmd(args, arch, k, n):
    return [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker",
            "--arch", arch, "--num-samples", str(k), "--num-images", str(n),
            "--max-values", str(args.max_values), "--seed", str(args.seed)] + (
        ["--data", args.data] if args.data else [])


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--num-samples", type=_positive, default=5000, help="K")
    p.add_argument("--num-images", type=_positive, default=TEST_SIZE,
                   help="test images for keras_vae (at most 10000)")
    p.add_argument("--pythae-images", type=_positive, default=100,
                   help="test images for Pythae's get_nll (extrapolated)")
    p.add_argument("--max-values", type=_positive, default=2**24,
                   help="keras_vae's memory budget: decoder outputs per step")
    p.add_argument("--memory-sweep", action="store_true")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--data", default=None, help="path to mnist.npz")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--pythae-python", default=str(_common.PYTHAE_PYTHON))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.num_images > TEST_SIZE:
        p.error(f"--num-images is at most {TEST_SIZE}, received {args.num_images}")
    if args.worker:
        return worker(args)

    machine = _common.machine_info()
    print(f"log_likelihood_throughput: {machine['cpu_model']} ({machine['cpu_cores']} cores), "
          f"{machine['date']}", flush=True)
    rows = []
    plan = [("keras_vae", args.arch, args.num_samples, args.num_images)]
    if args.memory_sweep:
        plan += [("keras_vae", "mlp", k, 500) for k in (50, 500, 5000)]
    if pathlib.Path(args.pythae_python).exists():
        plan.append(("pythae", args.arch, args.num_samples, args.pythae_images))
    else:
        print(f"NOTE: {args.pythae_python} not found (bash benchmarks/setup_pythae_env.sh); "
              "skipping Pythae.")
    for impl, arch, k, n in plan:
        print(f"- {impl} {arch} K={k} on {n} images ...", flush=True)
        if impl == "keras_vae":
            r = _run(_keras_vae_cmd(args, arch, k, n), args.timeout)
        else:
            r = _run([args.pythae_python, str(BENCH_DIR / "baselines" / "pythae_vae.py"), "nll",
                      "--arch", arch, "--num-images", str(n), "--num-samples", str(k),
                      "--seed", str(args.seed), "--no-grad"]
                     + (["--data", args.data] if args.data else []), args.timeout)
        r.update(impl=r.get("impl", impl), arch=arch, num_samples=k, num_images=n)
        rows.append(r)
        if "error" in r:
            print(f"  ERROR: {r['error']}")
            continue
        sps = r.get("samples_per_s") or r.get("importance_samples_per_s")
        full = r.get("seconds_full_test_set") or r.get("extrapolated_seconds_full")
        secs = r.get("seconds") or r.get("seconds_measured")
        mem = r.get("peak_growth_mib")
        if mem is None and "peak_rss_mib_before" in r:
            r["peak_growth_mib"] = mem = r["peak_rss_mib"] - r["peak_rss_mib_before"]
            r["rss_before_mib"] = r["peak_rss_mib_before"]
        print(f"  {secs:8.1f} s measured  {sps:12,.0f} samples/s  "
              f"10,000 images: {full:8.0f} s" + ("" if n == TEST_SIZE else " (extrapolated)")
              + (f"  peak memory +{mem:.0f} MiB over {r['rss_before_mib']:.0f} MiB"
                 if mem is not None else ""), flush=True)
    kv_main = rows[0]
    py = [r for r in rows if r["impl"].startswith("pythae") and "error" not in r]
    if py and "error" not in kv_main:
        py_sps = py[0].get("importance_samples_per_s") or py[0].get("samples_per_s")
        print(f"\nkeras_vae / Pythae get_nll throughput: "
              f"{kv_main['samples_per_s'] / py_sps:.1f}x")
    _common.OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = _common.OUT_DIR / f"log_likelihood_throughput-{stamp}.json"
    out.write_text(json.dumps({"benchmark": "log_likelihood_throughput",
                               "command": " ".join(sys.argv), "machine": machine,
                               "rows": rows}, indent=1))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
