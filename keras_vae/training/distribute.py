"""Distribution strategies, mixed precision and gradient clipping.

A VAE trains under `tf.distribute` with plain `model.fit` inside
`strategy.scope()`; this module picks the strategy by name, checks the
cluster description of multi-worker runs, sets the mixed-precision policy,
and fixes one detail Keras gets wrong for global-norm clipping across
replicas.

What makes the loss correct for the global batch (see `VAE.train_step`):
each replica computes the mean negative ELBO of its slice of the batch, with
the KL added by `Sampling` (`add_loss`) as the slice's batch mean; the step
divides that per-replica loss by the number of replicas and the optimizer
sums the replicas' gradients, which gives the gradient of the mean over the
global batch. The metrics (`keras.metrics.Mean`) are summed across replicas
(total and count) and so report the global mean.

Several machines (`MultiWorkerMirroredStrategy`): every worker runs the same
command with its own `TF_CONFIG`, e.g. for two workers

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        keras-vae train --strategy multi_worker --out runs/mw
    # and on the second machine the same with "index": 1

Worker 0 is the chief and writes RUN_DIR; the others write into
RUN_DIR/workers/<index>/ (`worker_run_dir`).
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def parse_tf_config(text=None):
    """Parses and checks a `TF_CONFIG` cluster description.

    Args:
        text: str, or None to read the `TF_CONFIG` environment variable.

    Returns:
        dict with "cluster" ({"worker": [host:port, ...], ...}) and "task"
        ({"type": ..., "index": ...}).

    Raises:
        ValueError: TF_CONFIG missing, not JSON, or without a worker list
            and a task that names one of its entries.
    """
    if text is None:
        text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "--strategy multi_worker needs the TF_CONFIG environment "
            "variable, which describes the cluster and this worker's place "
            "in it, e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
            "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": "
            "\"worker\", \"index\": 0}}'. It is not set."
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({error.msg} at character "
            f"{error.pos}). Received: {text!r}. Expected e.g. "
            "'{\"cluster\": {\"worker\": [\"host1:12345\", "
            "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", "
            "\"index\": 0}}'."
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            "TF_CONFIG must be a JSON object with keys 'cluster' and 'task'. "
            f"Received: {text!r}"
        )
    cluster = config.get("cluster")
    task = config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(
            "TF_CONFIG must have a 'cluster' object (job name -> list of "
            "host:port) and a 'task' object ({'type': ..., 'index': ...}). "
            f"Received: {text!r}"
        )
    workers = cluster.get("worker")
    if not isinstance(workers, list) or not workers or not all(
        isinstance(w, str) and ":" in w for w in workers
    ):
        raise ValueError(
            "TF_CONFIG['cluster']['worker'] must be a non-empty list of "
            f"'host:port' strings. Received: {workers!r}"
        )
    task_type, index = task.get("type"), task.get("index")
    jobs = [job for job in cluster if isinstance(cluster[job], list)]
    if task_type not in jobs or isinstance(index, bool) or not isinstance(
        index, int
    ) or not 0 <= index < len(cluster[task_type]):
        raise ValueError(
            "TF_CONFIG['task'] must name a job of the cluster and an index "
            f"into its list: jobs {jobs}, "
            f"{len(workers)} worker(s). Received: task={task!r}"
        )
    return config


def get_strategy(name="default"):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
        name: "default" (whatever TensorFlow uses without a scope: one
            device), "mirrored" (`MirroredStrategy`: every GPU of this
            machine, or the CPU when there is none; synchronous data
            parallelism with all-reduce) or "multi_worker"
            (`MultiWorkerMirroredStrategy`, the cluster in `TF_CONFIG`).

    Raises:
        ValueError: unknown name, or a missing or malformed TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {name!r}. Expected one of {list(STRATEGIES)}: "
            "'default' (one device), 'mirrored' (all GPUs of this machine) "
            "or 'multi_worker' (several machines, described by TF_CONFIG)."
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    parse_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy=None):
    """True on the worker that writes the run directory (worker 0, or the
    only process when not multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return (
        resolver.task_type == "worker" and resolver.task_id == 0
        and not has_chief
    )


def worker_run_dir(run_dir, strategy=None):
    """The directory this process writes: `run_dir` on the chief,
    `run_dir/workers/<index>` on the other workers (their files are copies
    that keep the collective saving and logging code identical everywhere).
    """
    if is_chief(strategy):
        return run_dir
    return os.path.join(
        run_dir, "workers", str(strategy.cluster_resolver.task_id)
    )


def check_dtype_policy(name):
    """Returns `name` if it is a supported policy, else raises ValueError."""
    if name not in DTYPE_POLICIES:
        raise ValueError(
            f"Unknown mixed-precision policy {name!r}. Expected one of "
            f"{list(DTYPE_POLICIES)}."
        )
    return name


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy inside the block, then restores it.

    Under "mixed_float16" / "mixed_bfloat16" layers compute in 16 bits and
    keep float32 weights; keras_vae computes the KL (`Sampling`) and the
    log-likelihood (the likelihood heads cast the decoder's output) in
    float32, and `compile` wraps the optimizer in a `LossScaleOptimizer` for
    float16 (Micikevicius et al. 2018). Build and compile the model inside
    the block.
    """
    check_dtype_policy(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def clip_global_norm_across_replicas(grads, optimizer):
    """Clips the *global* gradient by the optimizer's `global_clipnorm`.

    Keras 3 clips each replica's gradient before the all-reduce that sums
    them (`Optimizer.apply` clips, then the TF backend all-reduces), so with
    R replicas the threshold applies to R partial gradients instead of their
    sum, and the update differs from the single-device one. In a replica
    context with R > 1 and `global_clipnorm` set, this all-reduces the
    gradients, clips their sum as `tf.clip_by_global_norm` does, and returns
    1/R of it on every replica: the optimizer's own clipping then sees a
    norm below the threshold and leaves it unchanged, and its all-reduce
    sums the R equal shares back into the clipped global gradient.
    Otherwise `grads` is returned unchanged.

    Args:
        grads: list of gradient tensors (None allowed), possibly multiplied
            by a `LossScaleOptimizer`'s scale.
        optimizer: the model's optimizer.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    clipnorm = getattr(inner, "global_clipnorm", None)
    if not clipnorm:
        return grads
    replicas = context.num_replicas_in_sync
    scale = getattr(optimizer, "dynamic_scale", None)
    scale = 1.0 if scale is None else tf.cast(scale, "float32")
    present = [i for i, g in enumerate(grads) if g is not None]
    summed = context.all_reduce(
        tf.distribute.ReduceOp.SUM, [grads[i] for i in present]
    )
    unscaled = [tf.cast(g, "float32") / scale for g in summed]
    clipped, _ = tf.clip_by_global_norm(unscaled, clipnorm)
    out = list(grads)
    for i, g in zip(present, clipped):
        out[i] = tf.cast(g * (scale / replicas), grads[i].dtype)
    return out


def _is_multi_worker(strategy):
    if not isinstance(
        strategy, tf.distribute.experimental.MultiWorkerMirroredStrategy
    ) and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker()) if in_multi_worker else True


def step_logs(logs):
    """Makes a train or test step's scalar logs survive multi-worker fit.

    Keras 3 reduces a step's outputs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
    ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow/tensorflow#72388). Under a multi-worker strategy each scalar
    gets a leading axis of length 1, which that reduction removes again; the
    values are the same on every replica (the metrics are already summed
    across replicas), so the mean is the value itself. Elsewhere the logs are
    returned unchanged.
    """
    if not _is_multi_worker(tf.distribute.get_strategy()):
        return logs
    return {
        name: tf.reshape(value, [1]) if len(value.shape) == 0 else value
        for name, value in logs.items()
    }


JIT_COMPILE_CHOICES = ("auto", "on", "off")


def jit_compile_flag(choice):
    """Maps "auto" / "on" / "off" to the `jit_compile` value of `compile`.

    "auto" is Keras' default: XLA when a GPU or TPU is present, not on CPU.
    """
    if choice not in JIT_COMPILE_CHOICES:
        raise ValueError(
            f"Unknown jit_compile setting {choice!r}. Expected one of "
            f"{list(JIT_COMPILE_CHOICES)}."
        )
    return {"auto": "auto", "on": True, "off": False}[choice]
