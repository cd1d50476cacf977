"""Test log p(x) on MNIST of the same VAE with each prior and posterior, at
equal budget.

    .venv/bin/python benchmarks/models_mnist.py --epochs 10 --warmup-epochs 5 --test-examples 1000
    .venv/bin/python benchmarks/models_mnist.py --epochs 100        # the full test set

Protocol: MNIST with dynamic binarization (each training batch is drawn
anew as x ~ Bernoulli(pixel / 255); the test set is binarized once, seed
0); the IWAE paper's 784-200-200-50 tanh MLP with a Bernoulli decoder for
every model; the single-sample ELBO objective with the KL weight warmed
up linearly from 0 to 1 over the first `--warmup-epochs` epochs
(`kv.callbacks.LinearKLWarmup`; Tomczak & Welling warm up every model, and
without it the VampPrior model's KL fell to 0 in its first epoch here:
every input encoded to the same q, which the prior then matches); Adam(1e-3),
batch 100, `--epochs` epochs each, trained through `vae.fit` on a
`kv.data.TrainingStream` (the same batches for every model: same seed);
test log p(x) with K = `--num-samples` (default 5000) importance samples
from q(z|x) on the first `--test-examples` test images, with its standard
error over the examples (`kv.evaluation.report`).

Models (`--models`, default all):

- standard: N(0, I) prior, diagonal-Gaussian posterior (the baseline);
- mog: `kv.priors.MixtureOfGaussians(--mog-components)`, default 10;
- vamp: `kv.priors.VampPrior(--vamp-components)`, default 500 (Tomczak &
  Welling 2018's MNIST setting), pseudo-inputs started at that many
  training images (grey values);
- full: `kv.posteriors.FullCovarianceGaussian()`, N(0, I) prior;
- iaf: `kv.posteriors.InverseAutoregressiveFlow(--flows)` (default 2
  flows of 200-200 MADE networks, context 100; Kingma et al. 2016),
  N(0, I) prior;
- two_layer: `kv.build_hierarchical_vae((28, 28, 1))`, Burda et al.
  (2016)'s second architecture: q(z1|x) q(z2|z1) and p(z2) p(z1|z2)
  p(x|z1) with 100 and 50 Gaussian units, 784-200-200-100 and 100-100-100-50
  tanh MLPs each way (so it is larger than the one-layer models).

Tomczak & Welling (2018, table 2) report, for a one-layer VAE on dynamically
binarized MNIST with 40 latent units and their own architecture, fully
trained with KL warm-up, K = 5000: -88.56 nats with N(0, I), -86.55 with a
mixture of Gaussians and -85.57 with the VampPrior. Burda et al. (2016,
table 1), after 3,280 epochs of the single-sample ELBO: -86.76 for the
one-layer 784-200-200-50 model and -85.33 for the two-layer one (k = 1,
log p(x) with K = 5000). Kingma et al. (2016)
measure their posteriors in a convolutional ResNet VAE, so no number of
theirs matches this MLP. A short run here is far from fully trained; it
shows where each model stands at equal, small budget.

Each model's result is written to benchmarks/_out/<name>_<model>.json
as soon as it is finished; a rerun with the same settings keeps finished
models (`--fresh` redoes them), so a long run that is cut off resumes at
the first unfinished model. The table goes into the "## <name>" section of
benchmarks/RESULTS.md (unless `--no-write`), the samples of each model
into benchmarks/figures/<name>.png; `--name` (default models_mnist) keeps
a comparison of its own apart from the others, e.g. the VampPrior against
the standard prior at a longer budget (issue 13):

    .venv/bin/python benchmarks/models_mnist.py --name vampprior_mnist --models standard,vamp --epochs 200 --warmup-epochs 100 --learning-rate 5e-4

When both the standard and the VampPrior model are in a run, the table is
followed by their difference in test log p(x) beside Tomczak & Welling's
(-85.57 - (-88.56) = +2.99 nats).
"""

import argparse
import json
import os
import pathlib
import shlex
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

MODELS = ("standard", "mog", "vamp", "full", "iaf", "two_layer")
# Tomczak & Welling 2018, table 2 (one stochastic layer, dynamic MNIST,
# their architecture); Burda et al. 2016, table 1 (the two-layer model, VAE
# k = 1, this architecture).
PAPER = {"standard": -88.56, "mog": -86.55, "vamp": -85.57,
         "two_layer": -85.33}


def make_prior(name, args):
    if name == "mog":
        return kv.priors.MixtureOfGaussians(args.mog_components,
                                            seed=args.seed)
    if name == "vamp":
        return kv.priors.VampPrior(args.vamp_components, seed=args.seed)
    return kv.priors.StandardNormal()


def make_posterior(name, args):
    if name == "full":
        return kv.posteriors.FullCovarianceGaussian()
    if name == "iaf":
        return kv.posteriors.InverseAutoregressiveFlow(num_flows=args.flows)
    return kv.posteriors.DiagonalGaussian()


def settings(name, args):
    """What a finished result must match to be kept on a rerun."""
    return {"model": name, "epochs": args.epochs,
            "warmup_epochs": args.warmup_epochs,
            "batch_size": args.batch_size, "seed": args.seed,
            "learning_rate": args.learning_rate,
            "train_examples": args.train_examples,
            "num_samples": args.num_samples,
            "test_examples": args.test_examples,
            "components": {"mog": args.mog_components,
                           "vamp": args.vamp_components,
                           "iaf": args.flows}.get(name)}


def run_one(name, args, x_train, x_test, protocol):
    keras.utils.set_random_seed(args.seed)
    if name == "two_layer":
        vae = kv.build_hierarchical_vae((28, 28, 1), seed=args.seed)
    else:
        vae = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                               likelihood="bernoulli", seed=args.seed,
                               prior=make_prior(name, args),
                               posterior=make_posterior(name, args))
    if name == "vamp":
        vae.prior.initialize_from(x_train, seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    stream = kv.data.TrainingStream(x_train, batch_size=args.batch_size,
                                    binarize="dynamic", seed=args.seed)
    start = time.perf_counter()
    callbacks = []
    if args.warmup_epochs:
        callbacks.append(kv.callbacks.LinearKLWarmup(
            args.warmup_epochs * stream.steps_per_epoch))
    history = vae.fit(stream, epochs=args.epochs, verbose=2,
                      callbacks=callbacks)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = kv.evaluation.report(vae, x_test, num_samples=args.num_samples,
                                  protocol=protocol, seed=0, verbose=1)
    samples = vae.sample(36, seed=0)
    return {
        **settings(name, args),
        "prior_description": runs.describe_prior(vae.prior),
        "posterior_description": runs.describe_posterior(vae.posterior),
        "num_params": int(vae.count_params()),
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / args.epochs,
        "eval_seconds": time.perf_counter() - start,
        "final_train_elbo": float(history.history["elbo"][-1]),
        "log_likelihood": report["log_likelihood"],
        "elbo": report["elbo"],
        "kl_loss": report["kl_loss"],
        "active_units": report["active_units"]["count"],
        "latent_dim": int(vae.latent_dim),
        "stochastic_layers": report["stochastic_layers"],
        "samples": samples.tolist(),
    }


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 3.6))
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, results):
        s = np.asarray(r["samples"]).reshape(6, 6, 28, 28)
        ax.imshow(s.transpose(0, 2, 1, 3).reshape(6 * 28, 6 * 28), cmap="gray",
                  vmin=0, vmax=1)
        ax.set_title(f"{r['model']}: log p(x) {r['log_likelihood']['mean']:.2f}",
                     fontsize=9)
        ax.axis("off")
    fig.suptitle("mean of p(x|z) for z ~ p(z), each model", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _active(result):
    """'count / latent_dim', with each layer's count for a hierarchy."""
    text = f"{result['active_units']} / {result.get('latent_dim', 50)}"
    layers = result.get("stochastic_layers")
    if layers:
        text += " (" + ", ".join(
            f"z{l['layer']}: {l['active_units']} / {l['latent_dim']}, "
            f"KL {l['kl']['mean']:.1f}" for l in layers["layers"]) + ")"
    return text


def render(results, args, command, machine, protocol, figure):
    lines = [
        f"## {args.name}", "",
        f"{machine['date']}, {machine['cpu_model']} ({machine['cpu_cores']} cores), "
        f"CPU only; Python {machine['python']}, git {machine['git_commit']}.", "",
        f"    {command}", "",
        f"Protocol: {protocol}; the same 784-200-200-50 tanh MLP and Bernoulli "
        f"decoder for every one-layer model (the two-layer model: Burda et "
        f"al.'s 784-200-200-100-100-100-50), single-sample ELBO, KL warm-up "
        f"over "
        f"{args.warmup_epochs} epochs, Adam({args.learning_rate:g}), batch "
        f"{args.batch_size}, {args.epochs} epochs each (equal budget); test "
        f"log p(x) with K = {args.num_samples} on the first "
        f"{args.test_examples} test images, +- one standard error over the "
        "examples.", "",
        "| prior | posterior | test log p(x) (K = %d) | test ELBO | KL | "
        "active units | s / epoch | paper, fully trained |" % args.num_samples,
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ll, elbo = r["log_likelihood"], r["elbo"]
        lines.append(
            f"| {r['prior_description']} | {r['posterior_description']} | "
            f"{ll['mean']:.2f} +- {ll['stderr']:.2f} | "
            f"{elbo['mean']:.2f} | {r['kl_loss']['mean']:.2f} | "
            f"{_active(r)} | {r['seconds_per_epoch']:.1f} | "
            + (f"{PAPER[r['model']]:.2f} |" if r['model'] in PAPER
               else "- |"))
    by_model = {r["model"]: r for r in results}
    if "standard" in by_model and "vamp" in by_model:
        a, b = (by_model[m]["log_likelihood"] for m in ("standard", "vamp"))
        ours = b["mean"] - a["mean"]
        lines += [
            "",
            f"VampPrior minus standard prior, test log p(x): **{ours:+.2f} "
            f"+- {(a['stderr'] ** 2 + b['stderr'] ** 2) ** 0.5:.2f} nats** "
            f"at this budget ({args.epochs} epochs each; the error treats "
            "the two estimates as independent, though they share the test "
            "images, so it overstates the uncertainty); Tomczak & Welling "
            f"(2018): {PAPER['vamp'] - PAPER['standard']:+.2f} nats "
            f"({PAPER['vamp']:.2f} against {PAPER['standard']:.2f}).",
        ]
    lines += [
        "",
        "The paper's column is Tomczak & Welling (2018), table 2, for the "
        "priors (a one-layer VAE with 40 latent units and their own "
        "architecture, fully trained with KL warm-up) and Burda et al. "
        "(2016), table 1, for the two-layer model (this architecture, 3,280 "
        "epochs of the k = 1 ELBO). They give the ordering a long run should "
        "reach, not a number this short run can. Kingma et al. (2016) measured the "
        "full-covariance and IAF posteriors in a convolutional ResNet VAE, "
        "so no number of theirs fits this MLP. Active units: latent "
        "dimensions whose posterior mean varies over the test set (Burda et "
        "al. 2016's count, from E_q[z] as `posterior.mean` gives it).",
        "",
        f"![samples of each model]({figure})",
        "",
    ]
    return "\n".join(lines)


def this_command():
    return "python benchmarks/models_mnist.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup-epochs", type=int, default=5,
                        help="KL warm-up length, the same for every model "
                             "(0: none)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="Adam's learning rate, the same for every model")
    parser.add_argument("--train-examples", type=int, default=0,
                        help="train on the first N images only (0: all; "
                             "for trials)")
    parser.add_argument("--root", default=None,
                        help="directory for _out/, figures/ and RESULTS.md "
                             "(default: benchmarks/)")
    parser.add_argument("--name", default="models_mnist",
                        help="names the RESULTS.md section, the figure and "
                             "the kept results (default models_mnist)")
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--test-examples", type=int, default=10000)
    parser.add_argument("--mog-components", type=int, default=10)
    parser.add_argument("--vamp-components", type=int, default=500)
    parser.add_argument("--flows", type=int, default=2,
                        help="flows of the iaf model (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true",
                        help="redo models that a previous run finished")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.models.split(",") if p.strip()]
    for name in names:
        if name not in MODELS:
            parser.error(f"unknown model {name!r}; expected a subset of "
                         f"{','.join(MODELS)}")
    for name in ("epochs", "batch_size", "num_samples", "test_examples",
                 "mog_components", "vamp_components", "flows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    if not args.name.replace("_", "").isalnum():
        parser.error(f"--name must be letters, digits and '_'; received "
                     f"{args.name!r}")
    if not args.learning_rate > 0 or args.train_examples < 0:
        parser.error("--learning-rate must be > 0 and --train-examples >= "
                     f"0; received {args.learning_rate} and "
                     f"{args.train_examples}")
    if not 0 <= args.warmup_epochs <= args.epochs:
        parser.error("--warmup-epochs must be between 0 and --epochs")
    (x_train, _), (x_test, _) = kv.data.load("mnist", binarize="dynamic",
                                             seed=args.seed)
    if args.train_examples:
        x_train = x_train[: args.train_examples]
    if args.vamp_components > len(x_train):
        parser.error(f"--vamp-components must be at most {len(x_train)}")
    x_test = x_test[: args.test_examples]
    protocol = kv.data.describe_protocol("mnist", "dynamic", seed=args.seed)
    root = pathlib.Path(args.root) if args.root else HERE
    out_dir = root / "_out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        path = out_dir / f"{args.name}_{name}.json"
        if path.exists() and not args.fresh:
            kept = json.loads(path.read_text())
            if all(kept.get(k) == v for k, v in settings(name, args).items()):
                print(f"{name}: kept the finished result in {path}")
                results.append(kept)
                continue
        print(f"--- {name} ---", flush=True)
        result = run_one(name, args, x_train, x_test, protocol)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result) + "\n")
        os.replace(tmp, path)
        results.append(result)
        print(f"{name}: test log p(x) {result['log_likelihood']['mean']:.2f} "
              f"+- {result['log_likelihood']['stderr']:.2f} nats", flush=True)

    fig_dir = root / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figure = plot(results, fig_dir / f"{args.name}.png")
    text = render(results, args, this_command(), _common.machine_info(),
                  protocol, figure.relative_to(root).as_posix())
    print(text)
    if not args.no_write:
        _common.update_results(root / "RESULTS.md", text,
                               section=f"## {args.name}")
    return results


if __name__ == "__main__":
    main()
