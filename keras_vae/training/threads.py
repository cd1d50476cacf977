"""TensorFlow's CPU thread pools: threads per op and ops at once.

TensorFlow runs a graph with two pools: *intra-op* threads split one op
(a matrix product, an element-wise op) into pieces, *inter-op* threads run
independent ops side by side. Its default gives every op all the cores.
For a small MLP at batch 100 that is the wrong trade on a small CPU: each
op is a few microseconds of work, splitting it costs more in hand-offs
than it saves, while the backward pass has plenty of independent ops (the
two products of each layer, one optimizer update per weight) to run at the
same time. On the 2-core CPU of benchmarks/RESULTS.md one thread per op and
two ops at once made the MNIST MLP's train step faster and the
convolutional VAE, whose ops are large, slower (figures in RESULTS.md).

`keras-vae train` therefore picks the pools itself (`cpu_threads="auto"`):

- one thread per op and as many ops at once as there are CPUs, for the MLP
  networks on a machine with no GPU and at most `AUTO_MAX_CPUS` CPUs (the
  case that was measured);
- TensorFlow's default everywhere else, and whenever the environment sets
  TF_NUM_INTRAOP_THREADS or TF_NUM_INTEROP_THREADS.

The pools are fixed once TensorFlow runs its first op, so this has to
happen at the start of a process; `configure` says clearly when it is too
late.
"""

import os

#: Largest CPU count on which "auto" changes TensorFlow's default (the
#: measurement was on 2 CPUs; beyond this, try it with
#: benchmarks/train_throughput.py before adopting it).
AUTO_MAX_CPUS = 4

_ENV_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def parse(setting):
    """Checks a `cpu_threads` setting; returns "auto", "tf" or (intra, inter).

    Accepted: "auto", "tf" (TensorFlow's default), a pair of ints >= 1
    (intra_op, inter_op), or the text "INTRA,INTER" such as "1,2".
    """
    if setting in ("auto", "tf"):
        return setting
    pair = setting
    if isinstance(setting, str):
        try:
            pair = tuple(int(p) for p in setting.split(","))
        except ValueError:
            pair = None
    ok = (
        isinstance(pair, (tuple, list)) and len(pair) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                for n in pair)
    )
    if not ok:
        raise ValueError(
            "`cpu_threads` must be 'auto', 'tf' (TensorFlow's default) or "
            "two positive ints INTRA,INTER (threads per op, ops at once), "
            f"e.g. '1,2'. Received: {setting!r}"
        )
    return tuple(pair)


def num_cpus():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_choice(arch, cpus, has_gpu, environ=None):
    """What "auto" picks: (intra, inter), or None for TensorFlow's default.

    Args:
        arch: "mlp" or "conv".
        cpus: number of CPUs.
        has_gpu: whether TensorFlow sees a GPU.
        environ: mapping of environment variables (default os.environ).
    """
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in _ENV_VARS):
        return None
    if has_gpu or arch != "mlp" or cpus > AUTO_MAX_CPUS:
        return None
    return (1, cpus)


def configure(setting="auto", arch="mlp"):
    """Sets TensorFlow's CPU pools for this process; returns what holds.

    Call it before TensorFlow runs any op (first thing in a script).

    Args:
        setting: "auto", "tf" or (intra, inter); see `parse`.
        arch: the network family trained, for "auto".

    Returns:
        dict with "setting" (as given), "intra_op" and "inter_op" (0 means
        TensorFlow's default, all cores) and "source": "auto", "explicit",
        "tensorflow default", or "unchanged: ..." when "auto" found the
        runtime already started.

    Raises:
        ValueError: a bad setting, or an explicit pair when TensorFlow's
            runtime has already started in this process.
    """
    import tensorflow as tf

    setting = parse(setting)
    if setting == "tf":
        pair, source = None, "tensorflow default"
    elif setting == "auto":
        has_gpu = bool(tf.config.list_physical_devices("GPU"))
        pair = auto_choice(arch, num_cpus(), has_gpu)
        source = "auto" if pair else "auto: tensorflow default"
    else:
        pair, source = setting, "explicit"
    if pair is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(pair[0])
            tf.config.threading.set_inter_op_parallelism_threads(pair[1])
        except RuntimeError:
            if setting != "auto":
                raise ValueError(
                    f"cpu_threads={setting!r} cannot be applied: TensorFlow "
                    "has already run an op in this process, and its thread "
                    "pools are fixed from then on. Set it at the start of "
                    "the process (before any model is built), or use "
                    "cpu_threads='tf'."
                ) from None
            source = "unchanged: TensorFlow had already started"
    return {
        "setting": list(setting) if isinstance(setting, tuple) else setting,
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "source": source,
    }
