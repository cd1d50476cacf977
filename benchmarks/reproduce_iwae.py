"""Burda, Grosse & Salakhutdinov (2016), table 1, one row per command, to
the paper's protocol, resumable across processes.

    python benchmarks/reproduce_iwae.py --layers 1 --objective vae --k 1 --max-minutes 120
    python benchmarks/reproduce_iwae.py --layers 2 --objective vae --k 1 --max-minutes 120

Each command trains (or goes on training) one row and stops cleanly at the
end of an epoch once `--max-minutes` have passed; run it again, in this
process or a later one, and it resumes exactly where it stopped
(`kv.callbacks.BackupAndRestore`, the step-indexed
`kv.data.TrainingStream`; the resumed run ends with the weights an
uninterrupted one would have). The unfinished row's state lives in
benchmarks/checkpoints/<row>/ (the backup, and state.json with the epochs
done and the training seconds of every process), which is committed so
that a later session can continue it; it is removed when the row is
finished. A finished row writes the run directory
benchmarks/pretrained/<row>/ (model.keras, config.json, metrics.json,
history.json, result.json with the wall time, and evaluation.json/.txt:
the K = 5000 evaluation and the active units, made by the code of
`keras-vae evaluate` from the saved file) and records the file's SHA-256
in keras_vae/pretrained.json, so that

    kv.pretrained.load("iwae-1layer-vae-k1")
    keras-vae evaluate iwae-1layer-vae-k1 --out /tmp/rescore

load it (hash checked) and re-score it to the recorded value.

    python benchmarks/reproduce_iwae.py --card

writes the card of every row (finished, in progress or not started, the
paper's value beside ours) into the "## reproduce_iwae" section of
benchmarks/RESULTS.md.

The protocol (section 5 and appendix of the paper; their released code):

- MNIST, dynamic binarization: every batch drawn anew as x ~ Bernoulli(
  pixel / 255); the test set binarized once (seed 0);
- one stochastic layer: 784-200-200-50, tanh; two: latents 100 and 50,
  hidden (200, 200) and (100, 100) (`kv.build_hierarchical_vae`); Gaussian
  units, Bernoulli output; Glorot-uniform weights and zero biases (Keras'
  defaults), except the output bias: logit of the training-set pixel mean,
  clipped to [0.001, 0.999];
- objective: the k-sample ELBO (`--objective vae`, `num_samples=k`) or the
  IWAE bound (`--objective iwae`), k = `--k`;
- batch 20; Adam with epsilon 1e-4, beta2 = 0.999 and beta1 = 0.9 (the
  paper's text; `--adam released` takes the released code's beta1 = 0.99
  and second moments started at one); 8 stages, stage i = 0..7 runs 3^i
  epochs at learning rate 1e-3 * 10^(-i/7): 3,280 epochs (`--epochs`
  shortens the schedule for a trial);
- test log p(x) with K = 5000 on the 10,000 test images; active units:
  Cov_x(E_q[z_u]) > 0.01 (`kv.evaluation.report`).

The paper's table (test NLL, nats): one layer VAE k = 1 / 5 / 50: 86.76 /
86.47 / 86.35, IWAE 86.76 / 85.54 / 84.78; two layers VAE 85.33 / 85.01 /
84.78, IWAE 85.33 / 83.89 / 82.90.
"""

import argparse
import functools
import json
import os
import pathlib
import shlex
import shutil
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_VAE_DATA_DIR",
                      str(HERE.parent.parent / "shared" / "data"))

import _common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import runs  # noqa: E402

#: Burda et al. (2016), table 1: test negative log-likelihood in nats.
PAPER_NLL = {
    (1, "vae", 1): 86.76, (1, "vae", 5): 86.47, (1, "vae", 50): 86.35,
    (1, "iwae", 1): 86.76, (1, "iwae", 5): 85.54, (1, "iwae", 50): 84.78,
    (2, "vae", 1): 85.33, (2, "vae", 5): 85.01, (2, "vae", 50): 84.78,
    (2, "iwae", 1): 85.33, (2, "iwae", 5): 83.89, (2, "iwae", 50): 82.90,
}
FULL_EPOCHS = sum(3**i for i in range(8))  # 3,280
SECTION = "## reproduce_iwae"


def learning_rate(epoch):
    """The paper's schedule: 1e-3 * 10^(-i/7) in stage i, which runs 3^i
    epochs (epochs counted from 0)."""
    end = 0
    for i in range(8):
        end += 3**i
        if epoch < end:
            return 1e-3 * 10 ** (-i / 7)
    raise ValueError(f"epoch {epoch} is past the {FULL_EPOCHS}-epoch schedule")


def loglinear_rate(epoch, epochs):
    """A faster recipe's schedule: from 1e-3 at the first epoch down to
    1e-4 at the last, evenly in log scale (the paper's range of rates,
    spent over `epochs` instead of 3,280)."""
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is past the {epochs}-epoch "
                         "schedule")
    return 1e-3 * 10 ** (-epoch / max(epochs - 1, 1))


def row_name(layers, objective, k, recipe=None):
    """The paper's rows: iwae-<L>layer-<objective>-k<k>; a recipe of ours
    (a dict with batch_size, epochs, schedule, warmup_epochs) adds them to
    a name starting with "fast-"."""
    if recipe is None:
        return f"iwae-{layers}layer-{objective}-k{k}"
    name = (f"fast-{layers}layer-{objective}-k{k}-b{recipe['batch_size']}"
            f"-e{recipe['epochs']}-{recipe['schedule']}")
    if recipe.get("warmup_epochs"):
        name += f"-w{recipe['warmup_epochs']}"
    return name


def describe_schedule(args):
    """The learning-rate schedule (and warm-up) in words."""
    if args.schedule == "paper":
        text = "learning rate 1e-3 * 10^(-i/7) for 3^i epochs (Burda et al.)"
    else:
        text = (f"learning rate 1e-3 to 1e-4 log-linearly over "
                f"{args.epochs} epochs")
    if args.warmup_epochs:
        text += f", KL warm-up over {args.warmup_epochs} epochs"
    return text


def recipe(args):
    """None for the paper's protocol (batch 20, its schedule, no warm-up),
    else the settings that make the row a recipe of ours."""
    if (args.batch_size, args.schedule, args.warmup_epochs) == (
            20, "paper", 0):
        return None
    return {"batch_size": args.batch_size, "epochs": args.epochs,
            "schedule": args.schedule, "warmup_epochs": args.warmup_epochs}


def output_bias(x_train):
    """logit of the training-set pixel means, clipped to [0.001, 0.999]
    (the released code's initialisation of the output bias)."""
    mean = np.clip(np.mean(x_train, axis=0).reshape(-1), 0.001, 0.999)
    return np.log(mean) - np.log1p(-mean)


def build(args, x_train):
    seed = args.seed
    keras.utils.set_random_seed(seed)
    kwargs = dict(objective="elbo" if args.objective == "vae" else "iwae",
                  num_samples=args.k, seed=seed)
    if args.layers == 1:
        vae = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                               **kwargs)
    else:
        vae = kv.build_hierarchical_vae((28, 28, 1), **kwargs)
    heads = [layer for layer in vae.decoder._flatten_layers()
             if layer.name == "params"]
    if len(heads) != 1:
        raise RuntimeError("expected one decoder output layer named 'params'")
    heads[0].bias.assign(output_bias(x_train).astype("float32"))
    beta_1 = 0.99 if args.adam == "released" else 0.9
    optimizer = keras.optimizers.Adam(1e-3, beta_1=beta_1, beta_2=0.999,
                                      epsilon=1e-4)
    vae.compile(optimizer=optimizer)
    if args.adam == "released":
        # The released code starts the second-moment estimates at one (a
        # restored backup overwrites them with the saved ones).
        from keras_vae import _keras_internals

        optimizer.build(vae.trainable_variables)
        for variable in vae.trainable_variables:
            _, velocity = _keras_internals.adam_moments(optimizer, variable)
            velocity.assign(np.ones(velocity.shape, "float32"))
    return vae


class _State(keras.callbacks.Callback):
    """Writes state.json at every epoch end (after the backup): epochs
    done and this process's training seconds, added to earlier ones; asks
    training to stop at an epoch end once the time budget is spent."""

    def __init__(self, path, state, budget_seconds):
        super().__init__()
        self.path, self.state = path, state
        self.budget = budget_seconds
        self.seconds_before = state["train_seconds"]

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.start
        self.state.update(epochs_done=epoch + 1,
                          train_seconds=self.seconds_before + elapsed,
                          last_logs={k: float(v) for k, v in
                                     (logs or {}).items()})
        self.state["history"].append({"epoch": epoch + 1, **self.state[
            "last_logs"]})
        write_json(self.path, self.state)
        if self.budget is not None and elapsed >= self.budget:
            self.model.stop_training = True


def recipe_command(argv):
    """The command that trains a row, as the registry and the card give
    it: the arguments it was started with, less `--max-minutes`, which
    only says where a process stops, not what it trains (a row run in
    several processes and one run in one end with the same weights)."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--max-minutes="):
            skip = False
        elif arg == "--max-minutes":
            skip = True
        else:
            kept.append(arg)
    return "python benchmarks/reproduce_iwae.py " + " ".join(
        shlex.quote(a) for a in kept)


def write_json(path, obj):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def settings(args):
    return {"layers": args.layers, "objective": args.objective, "k": args.k,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "adam": args.adam, "seed": args.seed,
            "train_examples": args.train_examples,
            # Only a recipe of ours has these keys (the paper's rows keep
            # the settings their checkpoints were started with).
            **({"schedule": args.schedule,
                "warmup_epochs": args.warmup_epochs}
               if recipe(args) else {})}


def row_names(root):
    """Every row with a record under ROOT: the paper's rows in table
    order, then the recipes of ours."""
    names = [row_name(*key) for key in PAPER_NLL]
    fast = sorted({path.parent.name for pattern in
                   ("pretrained/fast-*/result.json",
                    "checkpoints/fast-*/state.json")
                   for path in root.glob(pattern)})
    return [n for n in names + fast if _row_record(root, n) is not None]


def plot_curves(root, path):
    """Training ELBO per epoch of every row with a record (the IWAE bound
    for an IWAE row: the objective it trains; log epoch axis:
    the paper's stages are 3^i epochs long), with the paper's test log p(x)
    of each row drawn as a dashed line and a finished row's own test
    log p(x) as a dot. Returns the path, or None when no row has a record.
    """
    names = row_names(root)
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, name in enumerate(names):
        record = _row_record(root, name)
        history = record["history"]
        color = f"C{i % 10}"
        epochs = [h["epoch"] for h in history]
        settings = record["settings"]
        what = _training_bound(settings, history[0])[0]
        ax.plot(epochs, [_training_bound(settings, h)[1] for h in history],
                color=color, lw=1, label=f"{name}: {what}")
        paper = PAPER_NLL[(settings["layers"], settings["objective"],
                           settings["k"])]
        ax.axhline(-paper, color=color, ls="--", lw=0.8)
        done = root / "pretrained" / name / "evaluation.json"
        if done.exists():
            ll = json.loads(done.read_text())["log_likelihood"]["mean"]
            ax.plot([epochs[-1]], [ll], "o", color=color,
                    label=f"{name}: test log p(x) {ll:.2f}")
    ax.set_xscale("log")
    ax.set_xlim(1, FULL_EPOCHS * 1.25)  # room for the dots at the last epoch
    ax.set_ylim(-110, -80)
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("nats per image")
    ax.set_title("reproduce_iwae: training bound per epoch; dashed: the "
                 "paper's test log p(x)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_card(root, machine, figure=None):
    """The table of every row of Burda et al.'s table 1: ours (finished,
    or how far it is) beside the paper's."""
    lines = [
        SECTION, "",
        f"Card written {machine['date']}; machine: {machine['cpu_model']} "
        f"({machine['cpu_cores']} cores), CPU only, Python "
        f"{machine['python']}.", "",
        "Protocol (every row): MNIST, dynamic binarization (test set "
        "binarized once, seed 0); Burda et al. (2016)'s architectures, "
        "tanh, Bernoulli output with its bias at the logit of the training "
        "pixel means; batch 20; Adam (beta1 0.9 unless the row says "
        "'released': 0.99 and second moments started at one; beta2 0.999, "
        "epsilon 1e-4); learning rate 1e-3 * 10^(-i/7) for 3^i epochs, "
        "i = 0..7 (3,280 epochs); test log p(x) with K = 5000 on the 10,000 "
        "test images; active units Cov_x(E_q[z_u]) > 0.01.", "",
        "| row | paper | ours: test log p(x) (K = 5000) | active units | "
        "epochs | training time | status | command |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for (layers, objective, k), nll in PAPER_NLL.items():
        name = row_name(layers, objective, k)
        command = (f"`python benchmarks/reproduce_iwae.py --layers {layers} "
                   f"--objective {objective} --k {k}`")
        cells = _row_cells(root, name)
        if objective == "iwae" and k == 1 and cells[-1] == "not started":
            # One sample: log w is the single-sample ELBO, so the gradient
            # and the model are those of the VAE row (the paper's table
            # repeats the number too).
            cells = ("-", "-", "-", "-", "the same objective as "
                     f"{row_name(layers, 'vae', 1)} (with k = 1 the IWAE "
                     "bound is the ELBO)")
        lines.append(f"| {name} | -{nll:.2f} | " + " | ".join(cells)
                     + f" | {command} |")
    lines += [
        "",
        "Paper: Burda, Grosse & Salakhutdinov (2016), table 1 (test "
        "negative log-likelihood; shown here as log p(x)). The k = 50 rows "
        "wait for a GPU; the others run on this CPU a few hours per "
        "session, resuming from benchmarks/checkpoints/, two rows at a "
        "time, each on a core of its own with one thread per op "
        "(`bash benchmarks/run_rows.sh MINUTES \"--layers 1\" \"--layers "
        "2\"`). Epoch times that way (3,000 steps of batch 20): on the "
        "2-core Intel Xeon (2026-12-06) 7 s for the one-layer row, against "
        "6 s with TensorFlow's default threads on both cores, and 11 s for "
        "the two-layer row; on the 2-core AMD EPYC (2026-12-06 and 07) "
        "4.0-4.3 s for the one-layer row, 6 s for the two-layer row and "
        "8-10 s for the one-layer IWAE k = 5 row (which scores five samples "
        "per image; about 9 h a row). The one-layer k = 1 row took 4.37 h "
        "of one core in three processes (epochs 1-1157 on the Xeon, "
        "1158-3280 on the EPYC), the two-layer k = 1 row 7.15 h in five "
        "(epochs 1-55 on the Xeon, 56-3280 on the EPYC). A row's training "
        "time sums its processes, on whichever machine each ran; the card's "
        "header names the machine that wrote it.", "",
    ]
    fast = [name for name in row_names(root) if name.startswith("fast-")]
    if fast:
        lines += [
            "### Beyond the paper: faster recipes", "",
            "The one-stochastic-layer VAE (k = 1) with at most a quarter of "
            "the paper's 3,280 passes: the same architecture, output-bias "
            "initialisation, Adam and evaluation as above, with the batch "
            "size, the schedule (loglinear: 1e-3 down to 1e-4 evenly in log "
            "scale over the run) and a linear KL warm-up of the row's name "
            "(b<batch>-e<epochs>-<schedule>[-w<warm-up epochs>]).", "",
            "| row | paper's value at 3,280 epochs | ours: test log p(x) "
            "(K = 5000) | active units | epochs | training time | status | "
            "command |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for name in fast:
            state = _row_record(root, name)
            layers = state["settings"]["layers"]
            key = (layers, state["settings"]["objective"],
                   state["settings"]["k"])
            command = recipe_command(shlex.split(state["commands"][0])[2:])
            lines.append(f"| {name} | -{PAPER_NLL[key]:.2f} | "
                         + " | ".join(_row_cells(root, name))
                         + f" | `{command}` |")
        lines.append("")
    if figure is not None:
        lines += [
            "Training curves (per epoch, on the dynamically binarized "
            "training batches: the single-sample ELBO of a VAE row, the "
            "k-sample IWAE bound of an IWAE row; lower bounds, below the "
            "test log p(x) the dashed lines show for the paper and the dots "
            "for our finished rows):",
            "", f"![reproduce_iwae curves]({figure})", ""]
    return "\n".join(lines)


def _training_bound(settings, logs):
    """(what, value) of the bound a row trains, from one epoch's logs: the
    IWAE bound (-loss) of an IWAE row, the single-sample ELBO otherwise
    (value None when the logs lack it)."""
    if settings["objective"] == "iwae":
        loss = logs.get("loss")
        return (f"train IWAE bound (k = {settings['k']})",
                None if loss is None else -loss)
    return "train ELBO", logs.get("elbo")


def _row_record(root, name):
    """result.json of a finished row, else the state.json of a running one
    (None for neither)."""
    for path in (root / "pretrained" / name / "result.json",
                 root / "checkpoints" / name / "state.json"):
        if path.exists():
            return json.loads(path.read_text())
    return None


def _row_cells(root, name):
    """The card's cells of one row: log p(x), active units, epochs, time,
    status."""
    done = root / "pretrained" / name / "result.json"
    r = _row_record(root, name)
    if r is None:
        return ("-", "-", "-", "-", "not started")
    if done.exists():
        report = json.loads((done.parent / "evaluation.json").read_text())
        ll = report["log_likelihood"]
        au = report["active_units"]
        gap = ll["mean"] + r["paper_nll"]  # ours minus the paper's log p(x)
        processes = r["processes"]
        return (f"{ll['mean']:.2f} +- {ll['stderr']:.2f}",
                f"{au['count']} / {au['latent_dim']}",
                str(r["epochs_done"]),
                f"{r['train_seconds'] / 3600:.1f} h",
                f"finished, {abs(gap):.2f} nats "
                f"{'above' if gap >= 0 else 'below'} the paper "
                f"({processes} process{'es' if processes != 1 else ''}; "
                f"model `benchmarks/pretrained/{name}/`, adam "
                f"{r['settings']['adam']})")
    bound = _training_bound(r["settings"], r.get("last_logs", {}))
    return ("-", "-", f"{r['epochs_done']} of {r['settings']['epochs']}",
            f"{r['train_seconds'] / 3600:.1f} h so far",
            "in progress" + (f" ({bound[0]} {bound[1]:.2f} at the last "
                             "epoch)" if bound[1] is not None else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--objective", choices=("vae", "iwae"),
                        default="vae")
    parser.add_argument("--k", type=int, choices=(1, 5, 50), default=1)
    parser.add_argument("--epochs", type=int, default=FULL_EPOCHS,
                        help="the paper schedule's first EPOCHS epochs "
                             "(default all 3,280), or the length of the "
                             "loglinear one")
    recipe_group = parser.add_argument_group(
        "a faster recipe (beyond the paper; any of these makes the row "
        "fast-...)")
    recipe_group.add_argument("--batch-size", type=int, default=20)
    recipe_group.add_argument(
        "--schedule", choices=("paper", "loglinear"), default="paper",
        help="paper: 3^i epochs at 1e-3 * 10^(-i/7); loglinear: 1e-3 down "
             "to 1e-4 evenly in log scale over --epochs")
    recipe_group.add_argument(
        "--warmup-epochs", type=int, default=0,
        help="KL weight rising linearly from 0 to 1 over this many epochs")
    parser.add_argument("--adam", choices=("paper", "released"),
                        default="paper")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop at the first epoch end after this many "
                             "minutes of training (resume by running again)")
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--test-examples", type=int, default=10000)
    parser.add_argument("--train-examples", type=int, default=0,
                        help="train on the first N images only (0: all; "
                             "for trials, not the protocol)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None,
                        help="directory for checkpoints/ and pretrained/ "
                             "(default: benchmarks/)")
    parser.add_argument("--card", action="store_true",
                        help="write the card of every row into RESULTS.md "
                             "and stop (no training)")
    args = parser.parse_args(argv)
    if args.card:
        root = pathlib.Path(args.root) if args.root else HERE
        figure = plot_curves(root, root / "figures" / "reproduce_iwae.png")
        text = render_card(root, _common.machine_info(),
                           figure=None if figure is None else
                           figure.relative_to(root).as_posix())
        print(text)
        _common.update_results(root / "RESULTS.md", text, section=SECTION)
        return 0
    if not 1 <= args.epochs <= FULL_EPOCHS:
        parser.error(f"--epochs must be in [1, {FULL_EPOCHS}]; received "
                     f"{args.epochs}")
    if args.batch_size < 1 or args.warmup_epochs < 0 or (
            args.warmup_epochs >= args.epochs):
        parser.error("--batch-size must be >= 1 and --warmup-epochs in "
                     f"[0, --epochs); received {args.batch_size} and "
                     f"{args.warmup_epochs}")
    if args.objective == "iwae" and args.k == 1:
        parser.error("with --k 1 the IWAE bound is the single-sample ELBO, "
                     "so --objective iwae --k 1 trains the VAE k = 1 row: "
                     "run --objective vae --k 1 (received --objective iwae "
                     "--k 1)")
    if args.max_minutes is not None and not args.max_minutes > 0:
        parser.error("--max-minutes must be > 0")
    if args.num_samples < 1 or args.test_examples < 1 or (
            args.train_examples < 0):
        parser.error("--num-samples and --test-examples must be >= 1, "
                     "--train-examples >= 0")
    root = pathlib.Path(args.root) if args.root else HERE
    name = row_name(args.layers, args.objective, args.k, recipe(args))
    run_dir = root / "checkpoints" / name
    state_path = run_dir / "state.json"

    (x_train, _), _ = kv.data.load("mnist", binarize="dynamic",
                                             seed=args.seed)
    if args.train_examples:
        x_train = x_train[:args.train_examples]
    state = {"settings": settings(args), "epochs_done": 0,
             "train_seconds": 0.0, "processes": 0, "history": [],
             "commands": []}
    if state_path.exists():
        kept = json.loads(state_path.read_text())
        if kept["settings"] != state["settings"]:
            parser.error(
                f"{run_dir} holds a run with other settings "
                f"({kept['settings']}); finish it with those, or delete the "
                "directory to start over")
        state = kept
    run_dir.mkdir(parents=True, exist_ok=True)
    state["processes"] += 1
    state["commands"].append("python benchmarks/reproduce_iwae.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)))

    vae = build(args, x_train)
    backup = kv.callbacks.BackupAndRestore(
        str(run_dir / "backup"), delete_checkpoint=False)
    stream = kv.data.TrainingStream(x_train, batch_size=args.batch_size,
                                    binarize="dynamic", seed=args.seed,
                                    start_step=backup.resume_step())
    # The backup is the record of where training is (a process killed
    # between the backup and state.json leaves state.json an epoch behind).
    state["epochs_done"] = backup.resume_step() // stream.steps_per_epoch
    budget = None if args.max_minutes is None else 60 * args.max_minutes
    print(f"{name}: epoch {state['epochs_done']} of {args.epochs} "
          f"({state['train_seconds'] / 3600:.2f} h so far)", flush=True)
    # Also when every epoch is done: the backup restores the weights at the
    # start of fit, and no epoch runs.
    schedule = learning_rate if args.schedule == "paper" else \
        functools.partial(loglinear_rate, epochs=args.epochs)
    callbacks = [keras.callbacks.LearningRateScheduler(schedule)]
    if args.warmup_epochs:
        callbacks.append(kv.callbacks.LinearKLWarmup(
            warmup_steps=args.warmup_epochs * stream.steps_per_epoch))
    vae.fit(stream, epochs=args.epochs, verbose=2, callbacks=[
        *callbacks, backup, _State(state_path, state, budget)])
    if state["epochs_done"] < args.epochs:
        print(f"{name}: stopped at epoch {state['epochs_done']} of "
              f"{args.epochs}; run the same command again to go on.")
        return 0

    # Finished: the model as a run directory, its evaluation by the code
    # of `keras-vae evaluate` (reloaded from the file that ships), the
    # registry entry with the file's hash; then the checkpoint goes.
    out = finish(args, root, name, vae, state,
                 argv=sys.argv[1:] if argv is None else argv)
    shutil.rmtree(run_dir)
    print(kv.evaluation.format_report(out["report"]))
    print(f"{name}: test log p(x) {out['log_likelihood']['mean']:.2f} "
          f"nats (paper: -{PAPER_NLL[(args.layers, args.objective, args.k)]:.2f}); "
          f"{state['train_seconds'] / 3600:.2f} h of training in "
          f"{state['processes']} processes; model in {out['run_dir']}")
    return 0


def spot_check(run_dir, num_samples=5000, examples=100):
    """log p(x) of the first `examples` test images, K = `num_samples`,
    seed 0, by the code of `keras-vae evaluate RUN_DIR --max-examples N`:
    a number the test suite re-scores a shipped model to in seconds (the
    full evaluation takes minutes)."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        report, _ = kv.evaluation.evaluate_run(
            run_dir, num_samples=num_samples, max_examples=examples, seed=0,
            verbose=0, output_dir=out)
    return {"test_examples": examples, "num_samples": num_samples,
            "seed": 0, "mean": report["log_likelihood"]["mean"]}


def finish(args, root, name, vae, state, argv):
    """Writes benchmarks/pretrained/<name>/ (model.keras, config.json,
    metrics.json, history.json, evaluation.json/.txt, result.json) and
    registers the model's hash (the package's registry for the default
    root, ROOT/registry.json otherwise)."""
    run = runs.RunDirectory(root / "pretrained" / name)
    if os.path.isdir(run.path):
        shutil.rmtree(run.path)  # an earlier finish that did not complete
    protocol = kv.data.describe_protocol("mnist", "dynamic", seed=args.seed)
    run.save_model(vae)
    run.write_json(run.CONFIG, {**settings(args), "dataset": "mnist",
                                "binarize": "dynamic",
                                "learning_rate": describe_schedule(args)})
    run.write_json(run.HISTORY, {"epochs": state["history"]})
    run.write_json(run.METRICS, {"dataset": "mnist", "binarize": "dynamic",
                                 "protocol": protocol,
                                 "train": state.get("last_logs", {})})
    start = time.perf_counter()
    test_examples = args.test_examples if args.test_examples < 10000 \
        else None
    report, _ = kv.evaluation.evaluate_run(
        run.path, num_samples=args.num_samples, max_examples=test_examples,
        seed=0, verbose=1)
    eval_seconds = time.perf_counter() - start
    key = (args.layers, args.objective, args.k)
    result = {**state, "eval_seconds": eval_seconds,
              "paper_nll": PAPER_NLL[key],
              "machine": _common.machine_info()}
    run.write_json("result.json", result)
    ll = report["log_likelihood"]
    entry_ll = {"mean": ll["mean"], "stderr": ll["stderr"],
                "num_samples": args.num_samples,
                "test_examples": test_examples or 10000, "seed": 0}
    command = recipe_command(argv)
    registry = None if root == HERE else root / "registry.json"
    check = spot_check(run.path, num_samples=args.num_samples)
    kv.pretrained.register(
        name, run.path, registry=registry,
        description=(f"Burda et al. (2016)'s {args.layers}-stochastic-"
                     f"layer VAE, {args.objective} k = {args.k}, batch "
                     f"{args.batch_size}, {state['epochs_done']} epochs, "
                     f"{describe_schedule(args)}"),
        protocol=report["protocol"], log_likelihood=entry_ll, check=check,
        active_units=report["active_units"]["count"],
        paper_log_likelihood=-PAPER_NLL[key], command=command,
        train_hours=round(state["train_seconds"] / 3600, 2))
    return {"report": report, "log_likelihood": ll, "run_dir": run.path}


if __name__ == "__main__":
    sys.exit(main())
