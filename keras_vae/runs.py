"""Training runs: data in, a run directory out.

A run directory holds everything a finished run leaves:

    RUN_DIR/model.keras      the trained model (keras.models.load_model)
    RUN_DIR/config.json      the settings the run was started with
    RUN_DIR/history.json     per-epoch metrics (train and test)
    RUN_DIR/metrics.json     test ELBO and its parts, with the data protocol
    RUN_DIR/figures/*.png    reconstructions, prior samples, loss curves and,
                             for a 2-D latent space, the label scatter and
                             the decoded manifold

Files are written to a temporary name and renamed, so an interrupted run
never leaves a half-written file where a finished one stood.
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from keras_vae import callbacks as callbacks_lib
from keras_vae import datasets
from keras_vae import distribute
from keras_vae import likelihoods as likelihoods_lib
from keras_vae import optimizers
from keras_vae import plotting
from keras_vae import resume
from keras_vae import threads
from keras_vae import vae as vae_lib

ARCHITECTURES = ("mlp", "conv")


@dataclasses.dataclass
class TrainConfig:
    """Settings of a training run (every field has a CLI flag)."""

    run_dir: str
    dataset: str = "mnist"
    arch: str = "mlp"
    latent_dim: int = 50
    hidden_units: tuple = (200, 200)
    likelihood: str = "bernoulli"
    binarize: str = "dynamic"
    epochs: int = 10
    batch_size: int = 100
    learning_rate: float = 1e-3
    num_samples: int = 1
    beta: float = 1.0
    seed: int = 0
    max_train_examples: int = 0
    overwrite: bool = False
    verbose: str = "auto"
    # Objective, stability, resumption and scale; checked by
    # keras_vae.callbacks.check_train_options.
    objective: str = "elbo"
    free_bits: float = 0.0
    warmup_steps: int = 0
    cycle_steps: int = 0
    clipnorm: float = 0.0
    strategy: str = "default"
    mixed_precision: str = "float32"
    jit_compile: str = "auto"
    # Train steps per call of the compiled function (Keras'
    # steps_per_execution); None = automatic, see _steps_per_execution.
    steps_per_execution: object = None
    save_freq: object = "epoch"
    nan_guard: str = "rollback"
    # TensorFlow's CPU thread pools: "auto", "tf" or (intra, inter); see
    # keras_vae.threads.
    cpu_threads: object = "auto"

    def validate(self):
        """Raises ValueError naming the first bad setting."""
        if self.arch not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {self.arch!r}. Expected one of "
                f"{list(ARCHITECTURES)}."
            )
        likelihoods_lib.get(self.likelihood)  # raises for unknown names
        names = ["latent_dim", "epochs", "batch_size", "num_samples"]
        if self.steps_per_execution is not None:
            names.append("steps_per_execution")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or (
                value < 1
            ):
                raise ValueError(
                    f"`{name}` must be a positive int. Received: "
                    f"{name}={value!r}"
                )
        if not self.learning_rate > 0:
            raise ValueError(
                "`learning_rate` must be > 0. Received: "
                f"learning_rate={self.learning_rate!r}"
            )
        if self.beta < 0:
            raise ValueError(f"`beta` must be >= 0. Received: {self.beta!r}")
        if self.max_train_examples < 0:
            raise ValueError(
                "`max_train_examples` must be >= 0 (0 = all). Received: "
                f"{self.max_train_examples!r}"
            )
        if os.path.exists(self.run_dir) and not os.path.isdir(self.run_dir):
            raise ValueError(
                f"The run directory {self.run_dir!r} exists and is a file. "
                "Choose another --out."
            )
        if os.path.exists(os.path.join(self.run_dir, "model.keras")) and (
            not self.overwrite
        ):
            raise ValueError(
                f"{self.run_dir!r} already holds a finished run "
                "(model.keras). Choose another --out, or pass --overwrite "
                "to replace it."
            )
        callbacks_lib.check_train_options(self)
        threads.parse(self.cpu_threads)


def _write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def build_model(config, input_shape):
    """The VAE a config describes, for examples of `input_shape`."""
    kwargs = dict(
        likelihood=config.likelihood,
        beta=config.beta,
        num_samples=config.num_samples,
        seed=config.seed,
        objective=config.objective,
        free_bits=config.free_bits,
    )
    if config.arch == "mlp":
        return vae_lib.build_mlp_vae(
            input_shape, config.latent_dim,
            hidden_units=tuple(config.hidden_units), **kwargs,
        )
    return vae_lib.build_conv_vae(input_shape, config.latent_dim, **kwargs)


def load_data(config):
    """Loads train and test data as the config's protocol says."""
    (x_train, y_train), (x_test, y_test) = datasets.load(
        config.dataset, binarize=config.binarize, seed=config.seed
    )
    if config.max_train_examples:
        x_train = x_train[: config.max_train_examples]
        y_train = None if y_train is None else y_train[
            : config.max_train_examples]
    return (x_train, y_train), (x_test, y_test)


#: steps_per_execution when none is given: 50 measured 16 % faster than 1
#: for the MNIST MLP on a 2-core CPU (benchmarks/RESULTS.md).
DEFAULT_STEPS_PER_EXECUTION = 50


def _steps_per_execution(config, steps_per_epoch):
    """The steps_per_execution a run compiles with.

    None (automatic) means 50, or 1 when a KL schedule is on: Keras calls
    batch callbacks once per execution, so a schedule would hold its weight
    for the whole execution. Whatever was asked for is then cut to
    gcd(value, steps_per_epoch[, save_freq]): executions never straddle an
    epoch or a backup, so a resumed run, which starts at a backup, sees the
    same execution boundaries (and schedule values) as an uninterrupted one.
    """
    spe = config.steps_per_execution
    if spe is None:
        scheduled = config.warmup_steps or config.cycle_steps
        spe = 1 if scheduled else DEFAULT_STEPS_PER_EXECUTION
    spe = math.gcd(int(spe), int(steps_per_epoch))
    if config.save_freq != "epoch":
        spe = math.gcd(spe, int(config.save_freq))
    return spe


def train(config, callbacks=()):
    """Trains a VAE as `config` says and fills its run directory.

    Everything that can be checked is checked before the first file is
    written: settings, data (shape, finite values, the likelihood's
    support) and the run directory.

    Returns:
        (model, metrics dict).
    """
    config.validate()
    # Before anything runs a TensorFlow op: the pools are fixed from then on.
    cpu_threads = threads.configure(config.cpu_threads, config.arch)
    strategy = distribute.get_strategy(config.strategy)
    # Workers other than the chief write their copies elsewhere.
    config = dataclasses.replace(
        config, run_dir=distribute.worker_run_dir(config.run_dir, strategy)
    )
    keras.utils.set_random_seed(config.seed)
    (x_train, y_train), (x_test, y_test) = load_data(config)
    steps_per_epoch = resume.steps_per_epoch(len(x_train), config.batch_size)
    with strategy.scope(), distribute.dtype_policy(config.mixed_precision):
        model = build_model(config, x_train.shape[1:])
        model.compile(
            optimizer=optimizers.FusedAdam(
                config.learning_rate, global_clipnorm=config.clipnorm or None
            ),
            jit_compile=distribute.jit_compile_flag(config.jit_compile),
            steps_per_execution=_steps_per_execution(
                config, steps_per_epoch
            ),
        )
    # The grey training images are binarized on the fly under "dynamic";
    # the model checks the values it will actually see.
    model.check_data(x_train, "training data")
    x_test = model.check_data(x_test, "test data")
    # Schedule, NaN guard, exact resumption from RUN_DIR/backup, TensorBoard.
    run_callbacks, backup = callbacks_lib.standard_callbacks(
        config.run_dir, model=model, steps_per_epoch=steps_per_epoch,
        warmup_steps=config.warmup_steps, cycle_steps=config.cycle_steps,
        nan_guard=None if config.nan_guard == "off" else config.nan_guard,
        save_freq=config.save_freq, images=x_test[:32],
    )

    os.makedirs(os.path.join(config.run_dir, "figures"), exist_ok=True)
    protocol = datasets.describe_protocol(config.dataset, config.binarize)
    config_dict = dataclasses.asdict(config)
    config_dict["hidden_units"] = list(config.hidden_units)
    _write_json(os.path.join(config.run_dir, "config.json"), config_dict)

    # Batch g of this stream depends only on (seed, g), so a resumed run
    # sees the same data as an uninterrupted one (keras_vae.resume). On one
    # device the train function computes the batches itself (GraphStream);
    # under a strategy tf.data delivers the same batches.
    train_ds = resume.training_stream(
        model, x_train, batch_size=config.batch_size,
        binarize="dynamic" if config.binarize == "dynamic" else None,
        shuffle=True, seed=config.seed, start_step=backup.resume_step(),
    )
    test_ds = datasets.make_dataset(
        x_test, batch_size=max(config.batch_size, 500), shuffle=False
    )
    start = time.perf_counter()
    history = model.fit(
        train_ds, epochs=config.epochs, validation_data=test_ds,
        steps_per_epoch=steps_per_epoch,
        callbacks=run_callbacks + list(callbacks), verbose=config.verbose,
        shuffle=False,
    )
    seconds = time.perf_counter() - start

    model_path = os.path.join(config.run_dir, "model.keras")
    tmp_path = os.path.join(config.run_dir, "model.tmp.keras")
    model.save(tmp_path)
    os.replace(tmp_path, model_path)
    history_dict = {k: [float(v) for v in vs]
                    for k, vs in history.history.items()}
    _write_json(os.path.join(config.run_dir, "history.json"), history_dict)

    test = model.evaluate(test_ds, return_dict=True, verbose=0)
    metrics = {
        "dataset": config.dataset,
        "binarize": config.binarize,
        "protocol": protocol,
        "likelihood": config.likelihood,
        "architecture": _describe_arch(config, x_train.shape[1:]),
        "epochs": len(history_dict.get("loss", [])),
        "train_examples": int(len(x_train)),
        "test_examples": int(len(x_test)),
        "seconds": seconds,
        "seconds_per_epoch": seconds / max(1, config.epochs),
        "cpu_threads": cpu_threads,
        "test": {
            "elbo": float(test["elbo"]),
            "reconstruction_loss": float(test["reconstruction_loss"]),
            "kl_loss": float(test["kl_loss"]),
            "loss": float(test["loss"]),
            "num_samples": 1,
            "units": "nats per example (single-sample ELBO estimate)",
        },
    }
    _write_json(os.path.join(config.run_dir, "metrics.json"), metrics)
    write_figures(model, x_test, y_test, config.run_dir, history_dict,
                  title=protocol)
    return model, metrics


def _describe_arch(config, input_shape):
    dims = int(np.prod(input_shape))
    if config.arch == "mlp":
        widths = "-".join(str(u) for u in
                          (dims, *config.hidden_units, config.latent_dim))
        return f"MLP {widths} (tanh), {config.likelihood} decoder"
    return (f"keras.io conv VAE, latent_dim={config.latent_dim}, "
            f"{config.likelihood} decoder")


def write_figures(model, x_test, y_test, run_dir, history=None, title=None,
                  seed=0):
    """Writes the standard figures of a run into RUN_DIR/figures."""
    fig_dir = os.path.join(run_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    paths = {}
    x = x_test[:30]
    paths["reconstructions"] = plotting.plot_reconstructions(
        x, model.reconstruct(x, mode="mean"),
        os.path.join(fig_dir, "reconstructions.png"),
        title="test inputs (odd rows) and mean reconstructions (even rows)",
    )
    paths["samples"] = plotting.plot_image_grid(
        model.sample(100, seed=seed),
        os.path.join(fig_dir, "samples.png"),
        title="mean of p(x|z) for z ~ N(0, I)",
    )
    if history:
        paths["loss_curves"] = plotting.plot_history(
            history, os.path.join(fig_dir, "loss_curves.png"), title=title
        )
    if model.latent_dim == 2:
        z_mean, _ = model.encode(x_test[:5000])
        labels = None if y_test is None else y_test[:5000]
        paths["latent_scatter"] = plotting.plot_latent_scatter(
            z_mean, labels, os.path.join(fig_dir, "latent_scatter.png")
        )
        n = 15
        grid = plotting.manifold_grid(n)
        paths["manifold"] = plotting.plot_manifold(
            np.asarray(model.likelihood.mean(model.decoder(grid))),
            os.path.join(fig_dir, "manifold.png"), n=n,
        )
    return paths
