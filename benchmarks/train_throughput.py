"""Benchmark `train_throughput`: training examples/s of keras_vae against two baselines.

    .venv/bin/python benchmarks/train_throughput.py --arch mlp --steps 600 --repeats 2
    .venv/bin/python benchmarks/train_throughput.py --arch all --steps 600 --repeats 3 \
        --steps-per-execution 1 50
    # the issue's table (a separate env holds PyTorch and JAX):
    bash benchmarks/setup_frameworks_env.sh
    .venv/bin/python benchmarks/train_throughput.py --arch mlp --repeats 3 \
        --impls keras_vae,keras_vae_script,plain_keras,pytorch,pytorch_slices,jax_jit,jax_scan,matmul_floor \
        --steps-per-execution 50 --plain-steps-per-execution 1

Implementations, same architecture, data (MNIST train, grey values x / 255,
Bernoulli cross-entropy), batch 100, Adam(1e-3) and number of steps:

- keras_vae    `kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200))` or
               `kv.build_conv_vae((28, 28, 1), 2)`, `fit` on
               `kv.resume.GraphStream(x, batch_size=100, binarize=None)` (what
               `keras-vae train` trains from on one device).
               Like `keras-vae train`, the worker first sets TensorFlow's CPU
               thread pools with `kv.threads.configure("auto", arch)` (one
               thread per op for the MLP on a CPU with <= 4 cores; see
               keras_vae/threads.py); `--cpu-threads tf` turns that off.
- keras_vae_script  keras_vae as a script uses it: `kv.build_mlp_vae` /
               `kv.build_conv_vae`, `compile(optimizer=keras.optimizers.
               Adam(1e-3))` and `fit(x, batch_size=100)` on the numpy array,
               every other setting at its default (no thread-pool call, no
               stream, no FusedAdam; `--steps-per-execution` is ignored: the
               VAE's default "auto" applies).
- plain_keras  baseline (a), benchmarks/baselines/plain_keras_vae.py: the
               keras.io way (custom train_step with a GradientTape, fit on a
               numpy array), with TensorFlow's default thread pools.
- plain_keras_threads  (only with `--plain-threads I,J`) the same baseline
               run with TF_NUM_INTRAOP_THREADS=I, TF_NUM_INTEROP_THREADS=J:
               how much of keras_vae's lead is the thread setting alone.
- pythae       baseline (b), benchmarks/baselines/pythae_vae.py: Pythae 0.1.2
               on PyTorch 2.13 (CPU) through its BaseTrainer, run in
               benchmarks/_envs/pythae (bash benchmarks/setup_pythae_env.sh).
- pytorch      baseline (c), benchmarks/baselines/pytorch_vae.py: PyTorch 2.13
               (CPU), a plain eager loop the way pytorch/examples writes its
               VAE, batches from a DataLoader over a TensorDataset.
- pytorch_slices  the same loop fed by slicing a permuted tensor (no
               DataLoader): the fastest plain PyTorch loop.
- jax_jit      baseline (d), benchmarks/baselines/jax_vae.py: JAX + optax, the
               train step under `jax.jit`, called once per batch.
- jax_scan     the same, one jitted `lax.scan` per epoch.
               Rows (c) and (d) run in benchmarks/_envs/frameworks
               (bash benchmarks/setup_frameworks_env.sh).
- matmul_floor benchmarks/matmul_floor.py (MLP only): the step's 20 matrix
               products alone, and the profile of the same step written by
               hand in raw TensorFlow (forward, + backward, + update).

Each run is a fresh subprocess (no shared threads, memory or compiled state),
the implementations alternate within each repeat (the order rotates from
repeat to repeat), and each run times `--steps` steps after a warm-up that
holds tracing/compilation (see benchmarks/_keras_timing.py and pythae_vae.py).
Before each run the harness waits for the shared 2-core machine to be quiet,
and it records how much CPU other processes took during the run: runs above
`--max-others` are marked "contended" and left out of the medians.

Prints a table (median examples/s, seconds per 600-step MNIST epoch, ratios to
keras_vae) and writes everything to benchmarks/_out/train_throughput-<time>.json.
If keras_vae cannot be imported the baselines still run, with a note.
"""

import argparse
import datetime
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

BENCH_DIR = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _common  # noqa: E402

IMPLS = ("keras_vae", "keras_vae_script", "plain_keras", "pythae",
         "pytorch", "pytorch_slices", "jax_jit", "jax_scan", "matmul_floor")
# Rows that run in the frameworks environment (benchmarks/_envs/frameworks).
FRAMEWORK_IMPLS = ("pytorch", "pytorch_slices", "jax_jit", "jax_scan")
# Rows with no steps_per_execution of their own.
SINGLE_ROW_IMPLS = ("pythae", "keras_vae_script", "matmul_floor") + FRAMEWORK_IMPLS
OPTIONAL_IMPLS = ("plain_keras_threads",)
ARCHS = ("mlp", "conv")
LATENT_DIM = {"mlp": 50, "conv": 2}


# --------------------------------------------------------------------------
# Worker: keras_vae, run as `train_throughput.py --worker keras_vae ...` so
# that it gets a process of its own like the two baselines.


def keras_vae_worker(args):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(BENCH_DIR.parent))
    try:
        import keras_vae as kv
    except Exception as e:  # any import failure: the harness reports it and goes on
        _common.emit({"impl": "keras_vae", "arch": args.arch,
                      "error": f"import keras_vae failed: {type(e).__name__}: {e}"})
        return
    # Before any TensorFlow op, as `keras-vae train` does.
    cpu_threads = kv.threads.configure(args.cpu_threads, args.arch)
    import keras
    import numpy as np
    import tensorflow as tf

    from _keras_timing import build_keras_vae, timed_fit

    spe = args.steps_per_execution[0]  # one value per worker
    warmup_steps = args.warmup_steps or max(50, 2 * spe)
    bs = args.batch_size
    x = _common.load_mnist_grey(args.data).reshape(-1, 28, 28, 1)
    keras.utils.set_random_seed(args.seed)
    try:
        model = build_keras_vae(args.arch, args.seed)
        # The optimizer `keras-vae train` uses: Adam's update as one fused
        # kernel per variable (kv.optimizers.FusedAdam).
        model.compile(optimizer=kv.optimizers.FusedAdam(learning_rate=1e-3),
                      steps_per_execution=spe)
        # The stream `keras-vae train` trains from: batches computed inside
        # the train function (kv.resume.GraphStream). One stream for the
        # warm-up and the timed epoch, so the timed epoch reuses the traced
        # function.
        stream = kv.resume.GraphStream(x[: args.steps * bs], batch_size=bs,
                                       binarize=None, seed=args.seed)
        result = timed_fit(model,
                           warmup_fit=dict(x=stream, epochs=1,
                                           steps_per_epoch=warmup_steps),
                           timed_fit_kwargs=dict(x=stream, epochs=1),
                           steps=args.steps, batch_size=bs)
    except Exception as e:
        _common.emit({"impl": "keras_vae", "arch": args.arch,
                      "error": f"keras_vae run failed: {type(e).__name__}: {e}"})
        raise
    result.update(
        impl="keras_vae", arch=args.arch, latent_dim=LATENT_DIM[args.arch], batch_size=bs,
        steps_per_execution=spe, warmup_steps=warmup_steps,
        cpu_threads=cpu_threads,
        num_params=int(model.count_params()),
        peak_rss_mib=_common.peak_rss_mib(),
        versions={"keras_vae": getattr(kv, "__version__", "?"), "tensorflow": tf.__version__,
                  "keras": keras.__version__, "numpy": np.__version__},
    )
    _common.emit(result)


def keras_vae_script_worker(args):
    """keras_vae the way a user's script calls it: defaults only."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(BENCH_DIR.parent))
    try:
        import keras_vae as kv
    except Exception as e:  # the harness reports it and goes on
        _common.emit({"impl": "keras_vae_script", "arch": args.arch,
                      "error": f"import keras_vae failed: {type(e).__name__}: {e}"})
        return
    import keras
    import numpy as np
    import tensorflow as tf

    from _keras_timing import build_keras_vae, timed_fit

    bs = args.batch_size
    x = _common.load_mnist_grey(args.data).reshape(-1, 28, 28, 1)
    x = x[: args.steps * bs]
    keras.utils.set_random_seed(args.seed)
    model = build_keras_vae(args.arch, args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    # The warm-up is a first epoch on the same array (a user's first
    # epoch holds the trace); the timed epoch is the second.
    result = timed_fit(model,
                       warmup_fit=dict(x=x, batch_size=bs, epochs=1),
                       timed_fit_kwargs=dict(x=x, batch_size=bs, epochs=1),
                       steps=args.steps, batch_size=bs)
    result.update(
        impl="keras_vae_script", arch=args.arch,
        latent_dim=LATENT_DIM[args.arch], batch_size=bs,
        steps_per_execution=int(model.steps_per_execution),
        cpu_threads={
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        num_params=int(model.count_params()),
        peak_rss_mib=_common.peak_rss_mib(),
        versions={"keras_vae": getattr(kv, "__version__", "?"),
                  "tensorflow": tf.__version__, "keras": keras.__version__,
                  "numpy": np.__version__},
    )
    _common.emit(result)


# --------------------------------------------------------------------------
# Harness.


def command_for(impl, arch, args, spe):
    common = ["--arch", arch, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    if args.data:
        common += ["--data", args.data]
    common += ["--seed", str(args.seed)]
    if impl == "keras_vae":
        cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", "keras_vae",
               *common, "--steps-per-execution", str(spe), "--cpu-threads", args.cpu_threads]
    elif impl == "keras_vae_script":
        cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker",
               "keras_vae_script", *common]
    elif impl in ("plain_keras", "plain_keras_threads"):
        cmd = [sys.executable, str(BENCH_DIR / "baselines" / "plain_keras_vae.py"),
               *common, "--steps-per-execution", str(spe)]
    elif impl == "pythae":
        cmd = [str(args.pythae_python), str(BENCH_DIR / "baselines" / "pythae_vae.py"),
               "train", *common]
    elif impl in ("pytorch", "pytorch_slices"):
        loader = "dataloader" if impl == "pytorch" else "slices"
        cmd = [str(args.frameworks_python), str(BENCH_DIR / "baselines" / "pytorch_vae.py"),
               *common, "--loader", loader]
    elif impl in ("jax_jit", "jax_scan"):
        cmd = [str(args.frameworks_python), str(BENCH_DIR / "baselines" / "jax_vae.py"),
               *common, "--mode", impl.split("_")[1]]
    elif impl == "matmul_floor":
        cmd = [sys.executable, str(BENCH_DIR / "matmul_floor.py"), "--steps", str(args.steps),
               "--batch-size", str(args.batch_size)]
        return cmd
    else:
        raise ValueError(f"Unknown impl {impl!r}. Expected one of {list(IMPLS)}.")
    if impl == "keras_vae_script":
        pass  # its warm-up is a first epoch on the same array
    elif args.warmup_steps and impl != "pythae":
        cmd += ["--warmup-steps", str(args.warmup_steps)]
    elif impl == "pythae" or impl in FRAMEWORK_IMPLS:
        cmd += ["--warmup-steps", str(args.warmup_steps or 50)]
    return cmd


def env_for(impl, args):
    """The worker's environment: plain_keras_threads gets the thread pools."""
    env = dict(os.environ)
    if impl == "plain_keras_threads":
        intra, inter = args.plain_threads.split(",")
        env.update(TF_NUM_INTRAOP_THREADS=intra, TF_NUM_INTEROP_THREADS=inter)
    return env


def run_one(cmd, args, label, env=None):
    """Run one worker; return its result dict with contention figures added."""
    waited, busy, quiet = _common.wait_for_quiet(
        threshold=args.quiet_threshold, timeout=args.wait_quiet, log=print)
    ticks = _common.clock_ticks()
    ncpu = os.cpu_count() or 1
    cpu0 = _common.cpu_times()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                          cwd=BENCH_DIR.parent, env=env)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = _common.cpu_times()
    result = _common.parse_result(proc.stdout)
    if result is None:
        tail = (proc.stderr or "")[-2000:]
        result = {"error": f"{label}: exit {proc.returncode}, no result line.\n{tail}"}
    child_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if cpu0 and cpu1:
        all_busy = (cpu1[0] - cpu0[0]) / ticks
        others = max(0.0, all_busy - child_cpu)
        result["others_cpu_fraction"] = others / (wall * ncpu)
    result.update(
        process_wall_seconds=wall,
        process_cpu_seconds=child_cpu,
        quiet_wait_seconds=waited,
        busy_before=busy,
        quiet_before=quiet,
        command=" ".join(pathlib.Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
    )
    # The worker's own figure covers just the timed span; the harness's, the whole process.
    timed = result.get("others_cpu_fraction_timed")
    others = timed if timed is not None else result.get("others_cpu_fraction", 0.0)
    result["others_cpu_fraction_used"] = others
    result["contended"] = (not quiet) or others > args.max_others
    return result


def summarise(runs, key):
    good = [r for r in runs if "error" not in r and not r["contended"]
            and not r.get("discarded")]
    vals = [r[key] for r in good]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def versions_here():
    out = {"python": sys.version.split()[0]}
    for mod in ("tensorflow", "keras", "numpy", "tensorflow_probability"):
        try:
            from importlib.metadata import version

            out[mod] = version(mod.replace("_", "-"))
        except Exception:
            pass
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=(*ARCHS, "all"), default="all")
    parser.add_argument("--steps", type=int, default=600,
                        help="timed steps per run (600 = one MNIST epoch at batch 100)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps-per-execution", type=int, nargs="+", default=[1],
                        help="Keras steps_per_execution values; each is its own row")
    parser.add_argument("--plain-steps-per-execution", type=int, nargs="+", default=None,
                        help="the plain Keras rows' values, when they should differ from "
                             "--steps-per-execution (e.g. keras_vae at 50, plain Keras at "
                             "its default 1)")
    parser.add_argument("--impls", default=",".join(IMPLS),
                        help=f"comma-separated subset of {','.join(IMPLS)}")
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--data", default=None, help="path to mnist.npz")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--pythae-python", default=str(_common.PYTHAE_PYTHON))
    parser.add_argument("--frameworks-python", default=str(_common.FRAMEWORKS_PYTHON),
                        help="python of the PyTorch + JAX environment "
                             "(bash benchmarks/setup_frameworks_env.sh)")
    parser.add_argument("--quiet-threshold", type=float, default=0.15,
                        help="CPU busy fraction under which the machine counts as quiet")
    parser.add_argument("--wait-quiet", type=float, default=600,
                        help="longest wait for a quiet machine before each run, seconds")
    parser.add_argument("--max-others", type=float, default=0.10,
                        help="runs where other processes took more than this fraction "
                             "of the CPUs are marked contended and left out of medians")
    parser.add_argument("--retry-contended", type=int, default=2,
                        help="run a contended run again, at most this many times")
    parser.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/_out/...)")
    parser.add_argument("--cpu-threads", default="auto",
                        help="keras_vae's thread pools, as `keras-vae train --cpu-threads` "
                             "(auto, tf, or I,J; default auto)")
    parser.add_argument("--plain-threads", default=None, metavar="I,J",
                        help="also run the plain Keras baseline with I threads per op and "
                             "J ops at once (row plain_keras_threads)")
    parser.add_argument("--worker", choices=("keras_vae", "keras_vae_script"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "keras_vae_script":
        return keras_vae_script_worker(args)
    if args.worker:
        return keras_vae_worker(args)

    archs = ARCHS if args.arch == "all" else (args.arch,)
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    for impl in impls:
        if impl not in IMPLS + OPTIONAL_IMPLS:
            parser.error(f"unknown impl {impl!r}; expected a subset of {','.join(IMPLS)}")
    if args.plain_threads:
        try:
            ok = all(int(n) >= 1 for n in args.plain_threads.split(",")) and (
                len(args.plain_threads.split(",")) == 2)
        except ValueError:
            ok = False
        if not ok:
            parser.error(f"--plain-threads takes two positive ints I,J; got {args.plain_threads!r}")
        if "plain_keras" in impls and "plain_keras_threads" not in impls:
            impls.insert(impls.index("plain_keras") + 1, "plain_keras_threads")
    elif "plain_keras_threads" in impls:
        parser.error("plain_keras_threads needs --plain-threads I,J")
    if "pythae" in impls and not pathlib.Path(args.pythae_python).exists():
        print(f"NOTE: {args.pythae_python} not found; run `bash benchmarks/setup_pythae_env.sh`."
              " Skipping pythae.")
        impls.remove("pythae")
    missing = [i for i in impls if i in FRAMEWORK_IMPLS]
    if missing and not pathlib.Path(args.frameworks_python).exists():
        print(f"NOTE: {args.frameworks_python} not found; run "
              f"`bash benchmarks/setup_frameworks_env.sh`. Skipping {', '.join(missing)}.")
        impls = [i for i in impls if i not in FRAMEWORK_IMPLS]
    if args.steps * args.batch_size > _common.MNIST_TRAIN_SIZE:
        parser.error("steps * batch_size must be at most 60000 (one pass over MNIST train)")

    # Rows: (impl, spe); pythae, the script row, PyTorch, JAX and the floor
    # have no steps_per_execution.
    rows = []
    for impl in impls:
        if impl in SINGLE_ROW_IMPLS:  # matmul_floor: the MLP's step only
            rows.append((impl, None))
        elif impl in ("plain_keras", "plain_keras_threads"):
            rows += [(impl, spe) for spe in (args.plain_steps_per_execution
                                             or args.steps_per_execution)]
        else:
            rows += [(impl, spe) for spe in args.steps_per_execution]

    machine = _common.machine_info()
    print(f"train_throughput: {machine['cpu_model']} ({machine['cpu_cores']} cores), "
          f"{machine['date']}; steps={args.steps}, batch={args.batch_size}, "
          f"repeats={args.repeats}")
    runs = []
    keras_vae_broken = None
    for arch in archs:
        for rep in range(args.repeats):
            order = rows[rep % len(rows):] + rows[: rep % len(rows)]
            for impl, spe in order:
                if impl == "keras_vae" and keras_vae_broken:
                    continue
                if impl == "matmul_floor" and arch != "mlp":
                    continue
                label = f"{arch}/{impl}" + (f"/spe={spe}" if spe else "") + f"/rep{rep}"
                print(f"- {label} ...", flush=True)
                r = run_one(command_for(impl, arch, args, spe), args, label,
                            env=env_for(impl, args))
                for retry in range(args.retry_contended):
                    if "error" in r or not r["contended"]:
                        break
                    print(f"  contended ({r['examples_per_s']:.0f} examples/s, others used "
                          f"{r['others_cpu_fraction_used']:.0%} of CPU); running it again",
                          flush=True)
                    r["discarded"] = True
                    r.update(arch=arch, impl=impl, steps_per_execution=spe, repeat=rep)
                    runs.append(r)
                    r = run_one(command_for(impl, arch, args, spe), args, label,
                                env=env_for(impl, args))
                r.update(arch=arch, impl=impl, steps_per_execution=spe, repeat=rep)
                runs.append(r)
                if "error" in r:
                    print(f"  ERROR: {r['error'].strip().splitlines()[0]}")
                    if impl == "keras_vae" and r["error"].startswith("import keras_vae failed"):
                        keras_vae_broken = r["error"]
                        print("  NOTE: keras_vae cannot be imported; running the baselines only.")
                else:
                    flag = "  CONTENDED (left out)" if r["contended"] else ""
                    print(f"  {r['examples_per_s']:9.0f} examples/s  "
                          f"{r['s_per_mnist_epoch']:7.2f} s/epoch  "
                          f"others used {r['others_cpu_fraction_used']:.0%} of CPU{flag}",
                          flush=True)

    # Table. The ratios are to the row a user gets from a script
    # (keras_vae_script) when it ran, else to keras_vae at the same spe.
    summary = []
    reference = "keras_vae_script" if "keras_vae_script" in impls else "keras_vae"
    print()
    print(f"{'arch':5} {'implementation':22} {'examples/s (median [min-max], n)':36} "
          f"{'s/epoch':>8} {reference + ' ÷ this':>24}")
    for arch in archs:
        ref = {}
        for impl, spe in rows:
            sel = [r for r in runs if r["arch"] == arch and r["impl"] == impl
                   and r["steps_per_execution"] == spe]
            s = summarise(sel, "examples_per_s")
            summary.append({"arch": arch, "impl": impl, "steps_per_execution": spe,
                            "examples_per_s": s,
                            "s_per_mnist_epoch": (_common.MNIST_TRAIN_SIZE / s["median"]
                                                  if s else None)})
            if impl == reference and s:
                ref[spe] = s["median"]
        for row in [x for x in summary if x["arch"] == arch]:
            impl, spe, s = row["impl"], row["steps_per_execution"], row["examples_per_s"]
            name = impl + (f" (spe={spe})" if spe else "")
            if reference == "keras_vae_script":
                kv_ref = ref.get(None)
            else:  # keras_vae against the baseline at the same spe; others at spe=1
                kv_ref = ref.get(spe if spe else 1)
            ratio = kv_ref / s["median"] if (s and kv_ref) else None
            row["reference"] = reference
            row["reference_speedup"] = ratio
            if s:
                cell = f"{s['median']:8.0f} [{s['min']:.0f}-{s['max']:.0f}], {s['n']}"
                print(f"{arch:5} {name:22} {cell:36} {row['s_per_mnist_epoch']:8.2f} "
                      f"{(f'{ratio:.2f}x' if ratio else '-'):>24}")
            elif not (impl == "matmul_floor" and arch != "mlp"):
                print(f"{arch:5} {name:22} {'no valid run':36} {'-':>8} {'-':>24}")
    if keras_vae_broken:
        print(f"\nNOTE: keras_vae was not measured: {keras_vae_broken}")

    _common.OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path(args.out) if args.out else _common.OUT_DIR / f"train_throughput-{stamp}.json"
    out.write_text(json.dumps({
        "benchmark": "train_throughput",
        "command": " ".join([pathlib.Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "args": vars(args),
        "machine": machine,
        "versions": versions_here(),
        "summary": summary,
        "runs": runs,
    }, indent=2, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
