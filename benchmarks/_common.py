"""Helpers shared by the benchmark scripts: data, machine facts, JSON output.

Standard library and numpy only, because it is imported both by the Keras
scripts (the project's .venv) and by the Pythae baseline (benchmarks/_envs/pythae).
"""

import datetime
import json
import os
import pathlib
import platform
import re
import resource
import subprocess
import sys

import numpy as np

BENCH_DIR = pathlib.Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "_out"
PYTHAE_PYTHON = BENCH_DIR / "_envs" / "pythae" / "bin" / "python"
FRAMEWORKS_PYTHON = BENCH_DIR / "_envs" / "frameworks" / "bin" / "python"

# One MNIST training epoch at batch 100 is 600 steps; throughput numbers are
# also given as seconds for such an epoch so that they read like the issue's.
MNIST_TRAIN_SIZE = 60000
# Marks the one line of a worker's stdout that carries its result.
RESULT_PREFIX = "BENCHMARK_RESULT "


def mnist_path(path=None):
    """Where mnist.npz is: `path`, else $KERAS_VAE_DATA_DIR, else ../shared/data."""
    candidates = []
    if path:
        candidates.append(pathlib.Path(path))
    if os.environ.get("KERAS_VAE_DATA_DIR"):
        candidates.append(pathlib.Path(os.environ["KERAS_VAE_DATA_DIR"]) / "mnist.npz")
    candidates += [
        REPO_DIR.parent / "shared" / "data" / "mnist.npz",
        pathlib.Path.home() / ".keras" / "datasets" / "mnist.npz",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "mnist.npz not found. Looked in: "
        + ", ".join(str(c) for c in candidates)
        + ". Pass --data PATH or set KERAS_VAE_DATA_DIR."
    )


def load_mnist_grey(path=None, split="train"):
    """MNIST images as float32 grey values x / 255 in [0, 1], shape (n, 28, 28).

    The keras.io VAE example trains on these continuous values with binary
    cross-entropy (no binarization); every implementation benchmarked gets
    exactly these arrays.
    """
    with np.load(mnist_path(path)) as data:
        x = data[f"x_{split}"]
    return x.astype("float32") / 255.0


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info():
    """CPU model, cores, memory, OS, Python and date, for RESULTS.md."""
    cpu = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    continue
                key, value = (s.strip() for s in line.split(":", 1))
                if key in ("model name", "vendor_id", "cpu family", "model", "flags"):
                    cpu.setdefault(key, value)
    except OSError:
        pass
    flags = cpu.get("flags", "").split()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu_model": cpu.get("model name", platform.processor() or "unknown"),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "cpu_simd": simd,
        "cpu_cores": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _git_commit(),
    }


def update_results(path, text, section):
    """Replaces the section of RESULTS.md whose heading is `section` (a
    line "## NAME", or "## NAME (...)" with a date or note after it) by
    `text`, or appends `text` when there is none; the first such section
    when several are. One blank line is kept before the next section, and
    the file is replaced in one step (written beside it, then renamed), so
    a failure leaves the old file whole."""
    path = pathlib.Path(path)
    if not re.fullmatch(r"## \S.*", section):
        raise ValueError("section must be a level-2 heading such as "
                         f"'## likelihood_mnist'; received {section!r}")
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    heading = re.compile(rf"^{re.escape(section)}(?: \(.*)?$", re.MULTILINE)
    match = heading.search(old)
    if match is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        start = match.start()
        end = old.find("\n## ", match.end())
        if end < 0:
            new = old[:start] + text
        else:  # one blank line before the next section
            new = old[:start] + text.rstrip("\n") + "\n\n" + old[end + 1:]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def _git_commit():
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_DIR, capture_output=True, text=True, timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def throughput(num_steps, batch_size, seconds):
    """examples/s and seconds per 60,000-example MNIST epoch for a timed span."""
    examples_per_s = num_steps * batch_size / seconds
    return {
        "timed_steps": num_steps,
        "timed_seconds": seconds,
        "examples_per_s": examples_per_s,
        "s_per_mnist_epoch": MNIST_TRAIN_SIZE / examples_per_s,
    }


def emit(result):
    """Print the result as one JSON line that the harness can pick out of stdout."""
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True), flush=True)


def parse_result(stdout):
    """The result dict from a worker's stdout (the last RESULT_PREFIX line)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return None


# ---------------------------------------------------------------------------
# Contention. This machine has 2 cores and is shared: a test suite or another
# training run at the same time halves (or worse) any number measured here,
# and PyTorch's spinning OpenMP threads suffer most. The harness therefore
# waits for a quiet machine before each run and records how much CPU *other*
# processes used while the run was timed.


def cpu_times():
    """(busy, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_fraction(interval=1.0):
    """Fraction of all CPU time that was busy over the next `interval` seconds."""
    import time

    a = cpu_times()
    time.sleep(interval)
    b = cpu_times()
    if a is None or b is None or b[1] == a[1]:
        return 0.0
    return (b[0] - a[0]) / (b[1] - a[1])


def wait_for_quiet(threshold=0.15, quiet_seconds=3, timeout=600, log=print):
    """Wait until the machine's CPUs are < `threshold` busy for `quiet_seconds` in a row.

    Returns (waited_seconds, last_busy_fraction, quiet: bool). Gives up after
    `timeout` seconds (quiet=False) rather than hang; the caller records it.
    """
    import time

    start = time.monotonic()
    in_a_row = 0
    busy = busy_fraction(1.0)
    announced = False
    while True:
        in_a_row = in_a_row + 1 if busy < threshold else 0
        if in_a_row >= quiet_seconds:
            return time.monotonic() - start, busy, True
        waited = time.monotonic() - start
        if waited >= timeout:
            return waited, busy, False
        if not announced and waited > 5:
            log(f"  waiting for a quiet machine (other processes are using the CPUs; "
                f"up to {timeout:.0f} s)", flush=True)
            announced = True
        busy = busy_fraction(1.0)


def clock_ticks():
    return os.sysconf("SC_CLK_TCK")


class ContentionMeter:
    """Measures, over a `with` block, the CPU share that *other* processes took.

    others_cpu_fraction = (all CPUs' busy time - this process's CPU time)
                          / (wall time x number of CPUs)
    0 on a quiet machine; 0.5 means others held one of two cores throughout.
    """

    def __enter__(self):
        import time

        self._cpu0 = cpu_times()
        self._self0 = _self_cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import time

        wall = time.perf_counter() - self._t0
        cpu1 = cpu_times()
        own = _self_cpu_seconds() - self._self0
        if self._cpu0 is None or cpu1 is None or wall <= 0:
            self.others_cpu_fraction = None
        else:
            all_busy = (cpu1[0] - self._cpu0[0]) / clock_ticks()
            self.others_cpu_fraction = max(0.0, all_busy - own) / (wall * (os.cpu_count() or 1))
        return False


def _self_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
