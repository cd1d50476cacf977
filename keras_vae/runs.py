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
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae import callbacks as callbacks_lib
from keras_vae import data
from keras_vae import likelihoods as likelihoods_lib
from keras_vae import networks as networks_lib
from keras_vae import plotting
from keras_vae import posteriors as posteriors_lib
from keras_vae import priors as priors_lib
from keras_vae import vae as vae_lib
from keras_vae.training import distribute
from keras_vae.training import optimizers
from keras_vae.training import threads

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
    # The prior p(z): "standard", "mog" or "vamp" (keras_vae.priors), and
    # its number of components (0 = the prior's default: 10 Gaussians,
    # 500 pseudo-inputs).
    prior: str = "standard"
    prior_components: int = 0
    # The posterior q(z|x): "diagonal", "full" or "iaf"
    # (keras_vae.posteriors), and the IAF's number of flows (0 = its
    # default, 2).
    posterior: str = "diagonal"
    flows: int = 0
    # Stochastic layers: 1, or n >= 2 for kv.build_hierarchical_vae with
    # `latent_dims` (one size per layer from the data up; () = (100, 50)
    # for two layers, the IWAE paper's); the layers above the first have
    # 100-100 hidden units each way.
    stochastic_layers: int = 1
    latent_dims: tuple = ()
    # A conditional VAE on the dataset's labels (num_classes = its number
    # of classes): q(z|x, y), p(x|z, y).
    conditional: bool = False
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
    # keras_vae.training.threads.
    cpu_threads: object = "auto"

    def _validate_layers(self):
        # Stored back as Python ints: config.json is written from them.
        layers = self.stochastic_layers = data.checks.check_int(
            self.stochastic_layers, "stochastic_layers")
        if layers == 1:
            if self.latent_dims:
                raise ValueError(
                    "--latent-dims gives one size per stochastic layer; with "
                    "one layer use --latent-dim. Received: latent_dims="
                    f"{tuple(self.latent_dims)}, stochastic_layers=1."
                )
            return
        if self.arch != "mlp":
            raise ValueError(
                "--stochastic-layers > 1 builds the IWAE paper's MLP "
                f"hierarchy; use --arch mlp. Received: arch={self.arch!r}."
            )
        if self.prior != "standard" or self.posterior != "diagonal" or (
                self.flows):
            raise ValueError(
                "A hierarchy has its own prior p(z_n) p(z_{n-1}|z_n) ... and "
                "posterior q(z_1|x) q(z_2|z_1) ...; --prior, --posterior and "
                "--flows do not combine with --stochastic-layers > 1. "
                f"Received: prior={self.prior!r}, posterior="
                f"{self.posterior!r}, flows={self.flows}."
            )
        if self.free_bits:
            raise ValueError(
                "free bits floor the KL of each latent dimension, and the "
                "KL of a hierarchy does not split by dimension (each "
                "layer's prior depends on the layer above). Use --free-bits "
                "0 with --stochastic-layers > 1."
            )
        if not self.latent_dims and layers != 2:
            raise ValueError(
                f"--stochastic-layers {layers} needs --latent-dims with "
                f"{layers} sizes (the default (100, 50) is for two layers)."
            )
        dims = layer_dims(self)
        if len(dims) != layers:
            raise ValueError(
                f"--latent-dims must give {layers} sizes, one per "
                f"stochastic layer. Received: {tuple(dims)}."
            )
        networks_lib.check_latent_dims(dims)

    def validate(self):
        """Raises ValueError naming the first bad setting."""
        if self.arch not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {self.arch!r}. Expected one of "
                f"{list(ARCHITECTURES)}."
            )
        likelihoods_lib.get(self.likelihood)  # raises for unknown names
        if self.prior not in PRIORS:
            raise ValueError(
                f"Unknown prior {self.prior!r}. Expected one of "
                f"{list(PRIORS)}."
            )
        if isinstance(self.prior_components, bool) or not isinstance(
                self.prior_components, int) or self.prior_components < 0:
            raise ValueError(
                "`prior_components` must be an int >= 1 (0 = the prior's "
                f"default). Received: {self.prior_components!r}"
            )
        if self.prior_components and self.prior == "standard":
            raise ValueError(
                "--prior-components sets the number of components of the "
                "'mog' or 'vamp' prior; the standard normal has none. "
                f"Received: prior='standard', prior_components="
                f"{self.prior_components}."
            )
        make_prior(self)  # the prior's own checks
        if self.posterior not in POSTERIORS:
            raise ValueError(
                f"Unknown posterior {self.posterior!r}. Expected one of "
                f"{list(POSTERIORS)}."
            )
        if isinstance(self.flows, bool) or not isinstance(
                self.flows, int) or self.flows < 0:
            raise ValueError(
                "`flows` must be an int >= 1 (0 = the IAF's default). "
                f"Received: {self.flows!r}"
            )
        if self.flows and self.posterior != "iaf":
            raise ValueError(
                "--flows sets the number of flows of the 'iaf' posterior; "
                f"the {self.posterior!r} posterior has none. Received: "
                f"posterior={self.posterior!r}, flows={self.flows}."
            )
        if self.prior == "vamp" and self.posterior == "iaf":
            raise ValueError(
                "The VampPrior scores every z under each pseudo-input's "
                "posterior, and an IAF posterior can only score its own "
                "draws at training cost. Use --prior vamp with --posterior "
                "diagonal or full, or --posterior iaf with --prior standard "
                "or mog."
            )
        self._validate_layers()
        if not isinstance(self.conditional, bool):
            raise ValueError(
                f"`conditional` must be True or False. Received: "
                f"{self.conditional!r}"
            )
        if self.conditional and self.stochastic_layers > 1:
            raise ValueError(
                "--conditional builds a conditional one-layer model (MLP or "
                "conv); hierarchies are unconditional. Use "
                "--stochastic-layers 1 with --conditional."
            )
        if self.conditional and self.prior == "vamp":
            raise ValueError(
                "The VampPrior encodes pseudo-inputs without labels, so it "
                "does not combine with --conditional. Use --prior standard "
                "or mog."
            )
        if self.free_bits and self.posterior != "diagonal":
            raise ValueError(
                "free bits floor the KL of each latent dimension, and the "
                f"KL of the {self.posterior!r} posterior does not split by "
                "dimension (its dimensions are correlated). Use --free-bits "
                "0 with it, or --posterior diagonal."
            )
        if self.free_bits and self.prior != "standard":
            raise ValueError(
                "free bits floor the KL of each latent dimension, which "
                f"does not exist against the {self.prior!r} prior (a "
                "mixture's log p(z) is not a sum over dimensions). Use "
                "--free-bits 0 with it, or --prior standard."
            )
        names = ["latent_dim", "epochs", "batch_size", "num_samples"]
        if self.steps_per_execution is not None:
            names.append("steps_per_execution")
        for name in names:
            setattr(self, name, data.checks.check_int(getattr(self, name),
                                                      name))
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
        if os.path.exists(RunDirectory(self.run_dir).model_path) and (
            not self.overwrite
        ):
            raise ValueError(
                f"{self.run_dir!r} already holds a finished run "
                "(model.keras). Choose another --out, or pass --overwrite "
                "to replace it."
            )
        callbacks_lib.check_train_options(self)
        threads.parse(self.cpu_threads)


class RunDirectory:
    """A run directory: the one type that writes and reads it.

    `keras-vae train` writes it through this type, and `keras-vae evaluate`,
    `keras-vae export` and the examples read it through the same one, so
    the file names and the checks live in one place:

        run = RunDirectory("runs/mnist_mlp")
        model = run.load_model()          # RUN_DIR/model.keras
        metrics = run.read_metrics()      # RUN_DIR/metrics.json
        seed = run.read_config().get("seed", 0)

    Every file is written to a temporary name and renamed into place, so an
    interrupted write never leaves a half-written file where a finished one
    stood.

    Args:
        path: str or path-like, the directory.
    """

    MODEL = "model.keras"
    CONFIG = "config.json"
    HISTORY = "history.json"
    METRICS = "metrics.json"
    FIGURES = "figures"
    BACKUP = "backup"

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"RunDirectory({self.path!r})"

    def file(self, name):
        """The path of `name` inside the run directory."""
        return os.path.join(self.path, name)

    @property
    def model_path(self):
        return self.file(self.MODEL)

    @property
    def figures_dir(self):
        return self.file(self.FIGURES)

    @property
    def backup_dir(self):
        return self.file(self.BACKUP)

    # -- checks -----------------------------------------------------------
    def require_finished(self):
        """Raises FileNotFoundError unless the directory holds a finished
        `keras-vae train` run (model.keras and metrics.json)."""
        if not os.path.isdir(self.path):
            raise FileNotFoundError(
                f"Run directory {self.path!r} does not exist. Pass a "
                "directory written by `keras-vae train --out RUN_DIR`."
            )
        for name in (self.MODEL, self.METRICS):
            if not os.path.isfile(self.file(name)):
                raise FileNotFoundError(
                    f"{self.file(name)!r} is missing: {self.path!r} is not a "
                    "finished `keras-vae train` run (it writes model.keras "
                    "and metrics.json at the end)."
                )

    def require_model(self):
        """Raises FileNotFoundError unless RUN_DIR/model.keras exists."""
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(
                f"No model.keras in {self.path!r}. Pass a run directory "
                "written by `keras-vae train` (RUN_DIR/model.keras)."
            )

    # -- reading ------------------------------------------------------------
    def read_json(self, name, default=None):
        """The JSON file `name` as a dict; `default` when it is missing.

        Raises:
            ValueError: the file is not valid JSON.
        """
        path = self.file(name)
        if not os.path.isfile(path):
            return default
        with open(path) as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path!r} is not valid JSON: {err}") \
                    from None

    def read_config(self):
        """config.json (the run's settings), {} when missing."""
        return self.read_json(self.CONFIG, default={})

    def read_metrics(self):
        """metrics.json (test ELBO and the data protocol), {} when
        missing."""
        return self.read_json(self.METRICS, default={})

    def read_history(self):
        """history.json (per-epoch metrics), {} when missing."""
        return self.read_json(self.HISTORY, default={})

    def load_model(self, safe_mode=True):
        """RUN_DIR/model.keras, loaded with keras.models.load_model."""
        self.require_model()
        import keras_vae  # noqa: F401  (registers the serializable classes)

        return keras.models.load_model(self.model_path, safe_mode=safe_mode)

    # -- writing ------------------------------------------------------------
    def write_text(self, name, text):
        """Writes `text` to `name` through a temporary file and a rename."""
        os.makedirs(self.path, exist_ok=True)
        path = self.file(name)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return path

    def write_json(self, name, obj):
        """Writes `obj` as indented JSON to `name` (atomic)."""
        return self.write_text(
            name, json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def save_model(self, model):
        """Saves `model` to RUN_DIR/model.keras (atomic)."""
        os.makedirs(self.path, exist_ok=True)
        tmp = self.file("model.tmp.keras")
        model.save(tmp)
        os.replace(tmp, self.model_path)
        return self.model_path


#: The --prior choices and the keras_vae.priors names they stand for.
PRIORS = {"standard": "standard_normal", "mog": "mog", "vamp": "vamp"}
#: The --posterior choices (keras_vae.posteriors names).
POSTERIORS = ("diagonal", "full", "iaf")


def make_prior(config):
    """The prior a config describes (a new `keras_vae.priors.Prior`)."""
    if config.prior == "mog":
        kwargs = {"num_components": config.prior_components} if (
            config.prior_components) else {}
        return priors_lib.MixtureOfGaussians(seed=config.seed, **kwargs)
    if config.prior == "vamp":
        kwargs = {"num_pseudo_inputs": config.prior_components} if (
            config.prior_components) else {}
        return priors_lib.VampPrior(seed=config.seed, **kwargs)
    return priors_lib.get(PRIORS[config.prior])


def layer_dims(config):
    """The stochastic layers' sizes of a config: (latent_dim,) for one
    layer, else `latent_dims` or the IWAE paper's (100, 50)."""
    if config.stochastic_layers == 1:
        return (config.latent_dim,)
    return tuple(config.latent_dims) or HIERARCHY_DEFAULT_DIMS


#: The latent sizes of --stochastic-layers 2 without --latent-dims (Burda
#: et al. 2016's two-layer MNIST model), and the hidden widths between
#: stochastic layers.
HIERARCHY_DEFAULT_DIMS = (100, 50)
HIERARCHY_UPPER_UNITS = (100, 100)


def make_posterior(config):
    """The posterior head a config describes (a new
    `keras_vae.posteriors.Posterior`)."""
    if config.posterior == "iaf" and config.flows:
        return posteriors_lib.InverseAutoregressiveFlow(
            num_flows=config.flows)
    return posteriors_lib.get(config.posterior)


def build_model(config, input_shape, num_classes=None):
    """The VAE a config describes, for examples of `input_shape` (and
    `num_classes` classes when the config is conditional)."""
    kwargs = dict(
        prior=make_prior(config),
        posterior=make_posterior(config),
        likelihood=config.likelihood,
        beta=config.beta,
        num_samples=config.num_samples,
        seed=config.seed,
        objective=config.objective,
        free_bits=config.free_bits,
    )
    if config.stochastic_layers > 1:
        dims = layer_dims(config)
        for key in ("prior", "posterior", "free_bits"):
            kwargs.pop(key)
        return vae_lib.build_hierarchical_vae(
            input_shape, dims,
            hidden_units=(tuple(config.hidden_units),) + (
                HIERARCHY_UPPER_UNITS,) * (len(dims) - 1), **kwargs)
    if config.conditional:
        kwargs["num_classes"] = num_classes
    if config.arch == "mlp":
        return vae_lib.build_mlp_vae(
            input_shape, config.latent_dim,
            hidden_units=tuple(config.hidden_units), **kwargs,
        )
    return vae_lib.build_conv_vae(input_shape, config.latent_dim, **kwargs)


def _class_names(config, y_train, y_test):
    """The class names of a conditional run's dataset (None when the run
    is unconditional); refuses data without labels."""
    if not config.conditional:
        return None
    if y_train is None or y_test is None:
        raise ValueError(
            f"--conditional trains on labels, and the dataset "
            f"{config.dataset!r} has none. Use a labelled dataset (mnist, "
            "fashion_mnist, or a file with y_train / y_test), or leave out "
            "--conditional."
        )
    names = data.class_names(config.dataset,
                             np.concatenate([y_train, y_test]))
    if len(names) < 2:
        raise ValueError(
            f"--conditional needs at least two classes; the labels of "
            f"{config.dataset!r} hold {len(names)}."
        )
    return names


def load_data(config):
    """Loads train and test data as the config's protocol says."""
    (x_train, y_train), (x_test, y_test) = data.load(
        config.dataset, binarize=config.binarize, seed=config.seed
    )
    if config.max_train_examples:
        x_train = x_train[: config.max_train_examples]
        y_train = None if y_train is None else y_train[
            : config.max_train_examples]
    return (x_train, y_train), (x_test, y_test)


def _steps_per_execution(config, steps_per_epoch):
    """The steps_per_execution a run compiles with.

    None (automatic) is the VAE's "auto", resolved by each `fit`
    (keras_vae.training.fit): up to 50 steps per call, a divisor of the
    steps per epoch and of `save_freq`; the KL schedule is set inside the
    train step, so it holds at every step. An explicit value is cut to
    gcd(value, steps_per_epoch[, save_freq]): executions never straddle an
    epoch or a backup, so a resumed run, which starts at a backup, sees the
    same execution boundaries as an uninterrupted one.
    """
    spe = config.steps_per_execution
    if spe is None:
        return "auto"
    spe = math.gcd(int(spe), int(steps_per_epoch))
    if config.save_freq != "epoch":
        spe = math.gcd(spe, int(config.save_freq))
    return spe


def resume_message(run_dir, step, steps_per_epoch, epochs):
    """"Resuming RUN_DIR from the backup at epoch E, step S ..." for a run
    that restarts from its backup after `step` global steps."""
    epoch = -(-step // steps_per_epoch)  # the epoch the backup was taken in
    done = step - (epoch - 1) * steps_per_epoch
    where = ("its end" if done == steps_per_epoch
             else f"{done} of its {steps_per_epoch} steps")
    return (f"Resuming {run_dir} from the backup at epoch {epoch}, step "
            f"{step} ({where}); training to epoch {epochs}.")


def train(config, callbacks=()):
    """Trains a VAE as `config` says and fills its run directory.

    Everything that can be checked is checked before the first file is
    written: settings, data (shape, finite values, the likelihood's
    support) and the run directory.

    Returns:
        (model, metrics dict).
    """
    config.validate()
    if config.prior == "vamp" and not (config.warmup_steps
                                       or config.cycle_steps):
        warnings.warn(
            "--prior vamp without KL warm-up: the VampPrior matches any "
            "posterior that ignores x, and such runs often collapse (KL 0, "
            "no active units) in the first epoch. Consider --warmup-steps "
            "with a few epochs' steps, as Tomczak & Welling (2018) do.",
            stacklevel=2,
        )
    # Before anything runs a TensorFlow op: the pools are fixed from then on.
    cpu_threads = threads.configure(config.cpu_threads, config.arch)
    strategy = distribute.get_strategy(config.strategy)
    # Workers other than the chief write their copies elsewhere.
    config = dataclasses.replace(
        config, run_dir=distribute.worker_run_dir(config.run_dir, strategy)
    )
    keras.utils.set_random_seed(config.seed)
    (x_train, y_train), (x_test, y_test) = load_data(config)
    class_names = _class_names(config, y_train, y_test)
    num_classes = None if class_names is None else len(class_names)
    steps_per_epoch = data.steps_per_epoch(len(x_train), config.batch_size)
    with strategy.scope(), distribute.dtype_policy(config.mixed_precision):
        model = build_model(config, x_train.shape[1:], num_classes)
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
    if isinstance(model.prior, priors_lib.VampPrior):
        # Pseudo-inputs start at K training examples (before any file).
        k = model.prior.num_pseudo_inputs
        if len(x_train) < k:
            raise ValueError(
                f"The vamp prior's {k} pseudo-inputs start at {k} training "
                f"examples, but the run trains on {len(x_train)}. Pass "
                f"--prior-components {len(x_train)} or fewer, or more data."
            )
        model.prior.initialize_from(x_train, seed=config.seed)
    x_test = model.check_data(x_test, "test data")
    train_labels = model.check_labels(
        y_train if config.conditional else None, len(x_train),
        "training labels")
    test_labels = model.check_labels(
        y_test if config.conditional else None, len(x_test), "test labels")
    # Schedule, NaN guard, exact resumption from RUN_DIR/backup, TensorBoard.
    run_callbacks, backup = callbacks_lib.standard_callbacks(
        config.run_dir, model=model, steps_per_epoch=steps_per_epoch,
        warmup_steps=config.warmup_steps, cycle_steps=config.cycle_steps,
        nan_guard=None if config.nan_guard == "off" else config.nan_guard,
        save_freq=config.save_freq, images=x_test[:32],
        image_labels=None if test_labels is None else test_labels[:32],
    )

    run = RunDirectory(config.run_dir)
    os.makedirs(run.figures_dir, exist_ok=True)
    protocol = data.describe_protocol(config.dataset, config.binarize)
    config_dict = dataclasses.asdict(config)
    config_dict["hidden_units"] = list(config.hidden_units)
    run.write_json(RunDirectory.CONFIG, config_dict)

    # Batch g of this stream depends only on (seed, g), so a resumed run
    # sees the same data as an uninterrupted one (keras_vae.resume). On one
    # device the train function computes the batches itself (GraphStream);
    # under a strategy tf.data delivers the same batches.
    train_ds = data.training_stream(
        model, x_train, batch_size=config.batch_size,
        binarize="dynamic" if config.binarize == "dynamic" else None,
        shuffle=True, seed=config.seed, start_step=backup.resume_step(),
        labels=train_labels,
    )
    test_batch = max(config.batch_size, 500)
    if test_labels is None:
        test_ds = data.make_dataset(x_test, batch_size=test_batch,
                                    shuffle=False)
    else:  # (x, y) batches in order
        test_ds = tf.data.Dataset.from_tensor_slices(
            (x_test, test_labels)).batch(test_batch)
    start_step = backup.resume_step()
    if start_step:
        print(resume_message(config.run_dir, start_step, steps_per_epoch,
                             config.epochs), flush=True)
    start = time.perf_counter()
    history = model.fit(
        train_ds, epochs=config.epochs, validation_data=test_ds,
        steps_per_epoch=steps_per_epoch,
        callbacks=run_callbacks + list(callbacks), verbose=config.verbose,
        shuffle=False,
    )
    seconds = time.perf_counter() - start
    # The epochs this process trained (a fraction for a resumed epoch).
    epochs_run = (config.epochs * steps_per_epoch - start_step) / (
        steps_per_epoch)

    run.save_model(model)
    history_dict = {k: [float(v) for v in vs]
                    for k, vs in history.history.items()}
    earlier = backup.restored_history()
    if earlier:  # a resumed run: the epochs of the earlier processes first
        history_dict = {k: list(earlier.get(k, [])) + v
                        for k, v in history_dict.items()}
    run.write_json(RunDirectory.HISTORY, history_dict)

    test = model.evaluate(test_ds, return_dict=True, verbose=0)
    metrics = {
        "dataset": config.dataset,
        "binarize": config.binarize,
        "protocol": protocol,
        "likelihood": config.likelihood,
        "prior": describe_prior(model.prior),
        "posterior": describe_posterior(model.posterior),
        "architecture": _describe_arch(config, x_train.shape[1:]) + (
            "" if num_classes is None
            else f", conditional on the label ({num_classes} classes)"),
        "conditional": None if class_names is None else {
            "num_classes": num_classes, "class_names": list(class_names),
            "units": "log p(x | y) at the true labels",
        },
        "epochs": len(history_dict.get("loss", [])),
        "train_examples": int(len(x_train)),
        "test_examples": int(len(x_test)),
        "seconds": seconds,
        "seconds_per_epoch": seconds / max(epochs_run, 1e-9),
        "resumed_from_step": int(start_step),
        "epochs_this_process": epochs_run,
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
    run.write_json(RunDirectory.METRICS, metrics)
    write_figures(model, x_test, y_test, config.run_dir, history_dict,
                  title=protocol, class_names=class_names or (
                      None if y_test is None
                      else data.class_names(config.dataset, y_test)))
    return model, metrics


def describe_posterior(posterior):
    """A posterior head in words, for metrics.json."""
    if isinstance(posterior, posteriors_lib.HierarchicalGaussian):
        n = len(posterior.latent_dims)
        chain = " ".join(f"q(z{l + 1}|z{l})" for l in range(1, n))
        return (f"diagonal Gaussians q(z1|x) {chain}, sizes "
                f"{posterior.latent_dims}")
    if isinstance(posterior, posteriors_lib.InverseAutoregressiveFlow):
        units = "-".join(str(u) for u in posterior.hidden_units)
        return (f"inverse autoregressive flow: diagonal Gaussian through "
                f"{posterior.num_flows} affine MADE flows ({units} hidden, "
                f"context {posterior.context_units})")
    return {"DiagonalGaussian": "diagonal Gaussian",
            "FullCovarianceGaussian": "full-covariance Gaussian"}.get(
        type(posterior).__name__, type(posterior).__name__)


def describe_prior(prior):
    """A prior in words, for metrics.json and figure titles."""
    if isinstance(prior, priors_lib.MixtureOfGaussians):
        return (f"learned mixture of {prior.num_components} diagonal "
                "Gaussians")
    if isinstance(prior, priors_lib.HierarchicalPrior):
        n = len(prior.latent_dims)
        chain = " ".join(f"p(z{l}|z{l + 1})" for l in range(n - 1, 0, -1))
        return f"hierarchy p(z{n}) = N(0, I), Gaussian {chain}"
    if isinstance(prior, priors_lib.VampPrior):
        return f"VampPrior, {prior.num_pseudo_inputs} pseudo-inputs"
    if isinstance(prior, priors_lib.StandardNormal):
        return "N(0, I)"
    return type(prior).__name__


def _describe_arch(config, input_shape):
    dims = int(np.prod(input_shape))
    if config.stochastic_layers > 1:
        sizes = layer_dims(config)
        upper = "-".join(str(u) for u in HIERARCHY_UPPER_UNITS)
        widths = "-".join(str(u) for u in (dims, *config.hidden_units,
                                           sizes[0]))
        return (f"{len(sizes)} stochastic layers {sizes}: MLP {widths}, "
                f"then {upper} between layers (tanh), {config.likelihood} "
                "decoder")
    if config.arch == "mlp":
        widths = "-".join(str(u) for u in
                          (dims, *config.hidden_units, config.latent_dim))
        return f"MLP {widths} (tanh), {config.likelihood} decoder"
    return (f"keras.io conv VAE, latent_dim={config.latent_dim}, "
            f"{config.likelihood} decoder")


def write_figures(model, x_test, y_test, run_dir, history=None, title=None,
                  seed=0, class_names=None):
    """Writes the standard figures of a run into RUN_DIR/figures; for a
    conditional model also samples_per_class.png (one row per class of
    `class_names`, the same ten z in every row). `class_names` also label
    the colour bar of the latent scatter."""
    fig_dir = os.path.join(run_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    paths = {}
    x = x_test[:30]
    conditional = getattr(model, "num_classes", None) is not None
    given = {"labels": y_test[:30]} if conditional else {}
    paths["reconstructions"] = plotting.plot_reconstructions(
        x, model.reconstruct(x, mode="mean", **given),
        os.path.join(fig_dir, "reconstructions.png"),
        title="test inputs (odd rows) and mean reconstructions (even rows)",
    )
    prior = describe_prior(model.prior)
    if conditional:
        names = class_names or tuple(
            str(k) for k in range(model.num_classes))
        classes = np.repeat(np.arange(model.num_classes), 10)
        paths["samples"] = plotting.plot_image_grid(
            model.sample(100, seed=seed, labels=np.arange(100) % len(names)),
            os.path.join(fig_dir, "samples.png"),
            title=(f"mean of p(x|z, y), z ~ {prior}; y = 0, 1, ..., "
                   f"{len(names) - 1} in turn"),
        )
        # The same ten draws of z in every row: the rows differ by label.
        z = np.tile(np.asarray(model.prior.sample(10, [seed, 0])),
                    (model.num_classes, 1))
        paths["samples_per_class"] = plotting.plot_samples_per_class(
            np.asarray(model.decode(z, labels=classes).mean()), names,
            os.path.join(fig_dir, "samples_per_class.png"),
            title="mean of p(x | z, y): one row per class y, the same ten "
                  "z ~ p(z) in every row",
        )
    else:
        paths["samples"] = plotting.plot_image_grid(
            model.sample(100, seed=seed),
            os.path.join(fig_dir, "samples.png"),
            title=f"mean of p(x|z) for z ~ p(z) = {prior}",
        )
    if history:
        paths["loss_curves"] = plotting.plot_history(
            history, os.path.join(fig_dir, "loss_curves.png"), title=title
        )
    if model.latent_dim == 2:
        # The point each image is decoded from: z_mean, or its image under
        # the flows of an IAF posterior.
        given = {"labels": y_test[:5000]} if conditional else {}
        z_mean = np.asarray(model.posterior.mean(
            [tf.constant(p) for p in model.encode(x_test[:5000], **given)]))
        labels = None if y_test is None else y_test[:5000]
        paths["latent_scatter"] = plotting.plot_latent_scatter(
            z_mean, labels, os.path.join(fig_dir, "latent_scatter.png"),
            class_names=class_names,
            title=("test set in latent space (z_mean of q(z | x, y))"
                   if conditional else None),
        )
        if conditional:
            return paths  # the manifold of p(x | z) needs a label
        n = 15
        grid = plotting.manifold_grid(n)
        paths["manifold"] = plotting.plot_manifold(
            np.asarray(model.likelihood.mean(model.decoder(grid))),
            os.path.join(fig_dir, "manifold.png"), n=n,
        )
    return paths
