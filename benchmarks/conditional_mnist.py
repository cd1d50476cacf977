"""What conditioning on the label buys on MNIST: a conditional VAE against
the same unconditional one, at equal budget.

    .venv/bin/python benchmarks/conditional_mnist.py --epochs 10 --test-examples 1000

Protocol: MNIST with dynamic binarization (each training batch drawn anew
as x ~ Bernoulli(pixel / 255); the test set binarized once, seed 0);
784-200-200-L tanh MLPs with a Bernoulli decoder, L = `--latent-dims`
(default 4 and 50), each trained unconditionally and conditionally
(`kv.build_mlp_vae(..., num_classes=10)`: q(z | x, y), p(x | z, y), p(z) =
N(0, I)); single-sample ELBO, Adam(1e-3), batch 100, `--epochs` epochs,
`vae.fit(x, y)` on arrays (the same seed for every model). On the first
`--test-examples` test images:

- log p(x) (unconditional) and log p(x | y) at the true labels
  (conditional), K = `--num-samples` (default 5000) importance samples;
- log p(x | y') at a wrong label, y' = y + 1 mod 10, same K;
- the conditional model's log p(x) = log (1/10) sum_c p(x | c) (a uniform
  p(y), each p(x | c) with K = `--class-samples`, default 500): comparable
  with the unconditional model's log p(x). Bayes' rule bounds what the
  label can add: log p(x | y) - log p(x) = log p(y | x) - log p(y) <=
  log 10 = 2.30 nats;
- the generative classifier argmax_c log p(x | c) (same K), its test
  accuracy;
- 100 samples per class, read by a 784-256-10 classifier trained here on
  the real (grey) training images for 3 epochs: the fraction read as the
  class asked for.

Each model's result goes to benchmarks/_out/conditional_mnist_<name>.json
when it is finished; a rerun with the same settings keeps finished models
(`--fresh` redoes them). The table goes into the "## conditional_mnist"
section of benchmarks/RESULTS.md (unless `--no-write`), the conditional
models' samples per class into benchmarks/figures/conditional_mnist.png.
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

SECTION = "## conditional_mnist"


def settings(name, args):
    return {"model": name, "epochs": args.epochs,
            "batch_size": args.batch_size, "seed": args.seed,
            "num_samples": args.num_samples,
            "class_samples": args.class_samples,
            "test_examples": args.test_examples}


def train_classifier(x, y, seed):
    keras.utils.set_random_seed(seed)
    classifier = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.fit(x, y, batch_size=128, epochs=3, verbose=0)
    return classifier


def run_one(name, args, data, classifier):
    (x_train, y_train), (x_test, y_test) = data
    latent_dim = int(name.split("_L")[1])
    conditional = name.startswith("conditional")
    keras.utils.set_random_seed(args.seed)
    vae = kv.build_mlp_vae((28, 28, 1), latent_dim, hidden_units=(200, 200),
                           num_classes=10 if conditional else None,
                           seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    # Dynamic binarization through the labelled training stream.
    stream = kv.data.TrainingStream(
        x_train, batch_size=args.batch_size, binarize="dynamic",
        seed=args.seed, labels=y_train if conditional else None)
    start = time.perf_counter()
    vae.fit(stream, epochs=args.epochs, verbose=2)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    given = {"labels": y_test} if conditional else {}
    main = kv.evaluation.log_likelihood(vae, x_test, args.num_samples,
                                        verbose=0, **given)
    result = {**settings(name, args), "latent_dim": latent_dim,
              "conditional": conditional, "train_seconds": train_seconds,
              "seconds_per_epoch": train_seconds / args.epochs,
              "log_likelihood": {"mean": main.mean, "stderr": main.stderr},
              "elbo": float(np.mean(main.elbo))}
    if conditional:
        wrong = kv.evaluation.log_likelihood(
            vae, x_test, args.num_samples, verbose=0,
            labels=(y_test + 1) % 10)
        per_class = np.stack([
            kv.evaluation.log_likelihood(
                vae, x_test, args.class_samples, seed=1 + c, verbose=0,
                labels=np.full(len(x_test), c)).values
            for c in range(10)], axis=1)  # (N, 10)
        marginal = np.logaddexp.reduce(per_class, axis=1) - np.log(10.0)
        asked = np.repeat(np.arange(10), 100)
        samples = vae.sample(len(asked), seed=0, labels=asked)
        read = np.argmax(classifier.predict(samples, verbose=0), axis=1)
        result.update(
            wrong_label=float(wrong.mean),
            marginal={"mean": float(marginal.mean()),
                      "stderr": float(marginal.std(ddof=1)
                                      / np.sqrt(len(marginal)))},
            label_gain=float(np.mean(
                per_class[np.arange(len(y_test)), y_test] - marginal)),
            generative_accuracy=float(np.mean(
                np.argmax(per_class, axis=1) == y_test)),
            sample_accuracy=float(np.mean(read == asked)),
            samples=samples.reshape(10, 100, 28, 28)[:, :10].tolist())
    result["eval_seconds"] = time.perf_counter() - start
    return result


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cond = [r for r in results if r["conditional"]]
    fig, axes = plt.subplots(1, len(cond), figsize=(4.2 * len(cond), 4.4))
    for ax, r in zip(np.atleast_1d(axes), cond):
        s = np.asarray(r["samples"])  # (10 classes, 10, 28, 28)
        ax.imshow(s.transpose(0, 2, 1, 3).reshape(280, 280), cmap="gray",
                  vmin=0, vmax=1)
        ax.set_title(f"L = {r['latent_dim']}: row c = samples of class c\n"
                     f"{100 * r['sample_accuracy']:.0f} % read as asked",
                     fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def render(results, args, command, machine, protocol, figure, clf_acc):
    lines = [
        SECTION, "",
        f"{machine['date']}, {machine['cpu_model']} ({machine['cpu_cores']} "
        f"cores), CPU only; Python {machine['python']}, git "
        f"{machine['git_commit']}.", "",
        f"    {command}", "",
        f"Protocol: {protocol}; 784-200-200-L tanh MLPs, Bernoulli decoder, "
        f"single-sample ELBO, Adam(1e-3), batch {args.batch_size}, "
        f"{args.epochs} epochs each; the first {args.test_examples} test "
        f"images. log p(x) and log p(x | y) with K = {args.num_samples}; "
        f"the conditional model's log p(x) = log (1/10) sum_c p(x | c) and "
        f"its classifier argmax_c log p(x | c) with K = {args.class_samples} "
        f"per class. Samples read by a 784-256-10 classifier trained on the "
        f"real training images ({100 * clf_acc:.1f} % on the real test "
        "images).", "",
        "| model | L | log p(x) (uncond.) or log p(x \\| y) | log p(x \\| "
        "wrong y) | log p(x) = log mean_c p(x \\| c) | log p(x \\| y) - "
        "log p(x) | generative classifier | samples read as asked | "
        "s / epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ll = r["log_likelihood"]
        if r["conditional"]:
            m = r["marginal"]
            extra = (f"{r['wrong_label']:.2f} | {m['mean']:.2f} +- "
                     f"{m['stderr']:.2f} | {r['label_gain']:.2f} | "
                     f"{100 * r['generative_accuracy']:.1f} % | "
                     f"{100 * r['sample_accuracy']:.1f} %")
        else:
            extra = f"- | {ll['mean']:.2f} +- {ll['stderr']:.2f} | - | - | -"
        lines.append(
            f"| {'conditional' if r['conditional'] else 'unconditional'} | "
            f"{r['latent_dim']} | {ll['mean']:.2f} +- {ll['stderr']:.2f} | "
            f"{extra} | {r['seconds_per_epoch']:.1f} |")
    lines += [
        "",
        "The label can add at most log 10 = 2.30 nats to log p(x) (Bayes' "
        "rule: log p(x | y) - log p(x) = log p(y | x) - log p(y) = "
        "log p(y | x) + log 10 with a uniform p(y)), so the column "
        "log p(x | y) - log p(x) reads as how sure the model is of the "
        "label. How many of the samples are read "
        "as the asked class depends on how much of the class the latent "
        "code takes over: with a large L, z carries the digit's identity "
        "as well and samples of one label drift towards others.", "",
        f"![samples per class]({pathlib.Path(figure).relative_to(HERE)})",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-dims", default="4,50")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--class-samples", type=int, default=500)
    parser.add_argument("--test-examples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    try:
        dims = [int(d) for d in args.latent_dims.split(",") if d.strip()]
    except ValueError:
        parser.error(f"--latent-dims must be integers, e.g. 4,50; received "
                     f"{args.latent_dims!r}")
    for name in ("epochs", "batch_size", "num_samples", "class_samples",
                 "test_examples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not dims or min(dims) < 1:
        parser.error("--latent-dims must be positive integers")
    (x_train, y_train), (x_test, y_test) = kv.data.load(
        "mnist", binarize="dynamic", seed=args.seed)
    (x_grey, y_grey), (x_grey_test, y_grey_test) = kv.data.load("mnist")
    data = ((x_train, y_train),
            (x_test[:args.test_examples], y_test[:args.test_examples]))
    protocol = kv.data.describe_protocol("mnist", "dynamic", seed=args.seed)
    classifier = train_classifier(x_grey, y_grey, args.seed)
    clf_acc = float(classifier.evaluate(x_grey_test, y_grey_test,
                                        verbose=0)[1])
    out_dir = HERE / "_out"
    out_dir.mkdir(exist_ok=True)
    results = []
    for latent_dim in dims:
        for kind in ("unconditional", "conditional"):
            name = f"{kind}_L{latent_dim}"
            path = out_dir / f"conditional_mnist_{name}.json"
            if path.exists() and not args.fresh:
                kept = json.loads(path.read_text())
                if all(kept.get(k) == v
                       for k, v in settings(name, args).items()):
                    print(f"{name}: kept the finished result in {path}")
                    results.append(kept)
                    continue
            print(f"--- {name} ---", flush=True)
            result = run_one(name, args, data, classifier)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result) + "\n")
            os.replace(tmp, path)
            results.append(result)
            print(f"{name}: {result['log_likelihood']['mean']:.2f} nats",
                  flush=True)
    fig_dir = HERE / "figures"
    fig_dir.mkdir(exist_ok=True)
    figure = plot(results, fig_dir / "conditional_mnist.png")
    command = "python benchmarks/conditional_mnist.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:] if argv is None)
    text = render(results, args, command.strip(), _common.machine_info(),
                  protocol, figure, clf_acc)
    print(text)
    if not args.no_write:
        _common.update_results(HERE / "RESULTS.md", text, section=SECTION)


if __name__ == "__main__":
    main()
