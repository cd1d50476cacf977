"""Test log p(x) of the IWAE paper's one-stochastic-layer VAE on MNIST.

Protocol (Burda, Grosse & Salakhutdinov 2016, section 5):
- MNIST, dynamic binarization: every epoch draws x ~ Bernoulli(pixel / 255);
  the test set is binarized once (seed 0);
- 784-200-200-50 MLP encoder and decoder, tanh, Bernoulli decoder,
  single-sample ELBO objective (their "VAE, k = 1" row);
- Adam (beta1 0.9, beta2 0.999, epsilon 1e-4), batch 20, learning rate
  1e-3 * 10^(-i/7) for 3^i epochs, i = 0..7 (3,280 epochs in all); `--epochs`
  truncates that schedule;
- test log p(x) estimated with K = 5000 importance samples from q(z|x).

The paper reports -86.76 nats for this model after the full 3,280 epochs.
This script runs as many epochs as asked, records the test ELBO and the
K = 100 IWAE estimate at the end of each learning-rate stage, then the
K = 5000 estimate on the test set (all 10,000 examples unless
--test-examples says otherwise), and writes the numbers, the command and the
machine into the "## likelihood_mnist" section of benchmarks/RESULTS.md
and a figure into benchmarks/figures/likelihood_mnist.png.

    python benchmarks/likelihood_mnist.py --epochs 40
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_VAE_DATA_DIR",
                      str(HERE.parent.parent / "shared" / "data"))

import _common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import evaluation  # noqa: E402
from reproduce_iwae import FULL_EPOCHS, learning_rate  # noqa: E402
from keras_vae import plotting  # noqa: E402

SECTION = "## likelihood_mnist"
PAPER_NATS = -86.76


def stage_ends(epochs):
    """Epoch numbers where the IWAE schedule's stages end, up to `epochs`."""
    ends, total = [], 0
    for i in range(8):
        total += 3**i
        if total >= epochs:
            break
        ends.append(total)
    return ends + [epochs]


def this_command():
    return "python benchmarks/likelihood_mnist.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--num-samples", type=int, default=5000,
                        help="K for the final test log p(x)")
    parser.add_argument("--test-examples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave RESULTS.md alone")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="skip training: load the model and the "
                             "checkpoints a previous run saved in "
                             "benchmarks/_out/")
    args = parser.parse_args()
    for name in ("epochs", "batch_size", "num_samples", "test_examples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.epochs > FULL_EPOCHS:
        parser.error(f"--epochs must be at most {FULL_EPOCHS}, the "
                     "schedule's length")

    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = kv.datasets.load(
        "mnist", binarize="dynamic", seed=args.seed)
    x_eval = x_test[: args.test_examples]
    protocol = kv.datasets.describe_protocol("mnist", "dynamic",
                                             seed=args.seed)
    vae = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                           likelihood="bernoulli", seed=args.seed)
    optimizer = keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.999,
                                      epsilon=1e-4)
    vae.compile(optimizer=optimizer)
    train = kv.datasets.make_dataset(
        x_train, batch_size=args.batch_size, binarize="dynamic",
        shuffle=True, seed=args.seed)

    out_dir = HERE / "_out"
    out_dir.mkdir(exist_ok=True)
    model_path = out_dir / "likelihood_mnist.keras"
    state_path = out_dir / "likelihood_mnist_training.json"
    checkpoints = []
    done, train_seconds = 0, 0.0
    if args.evaluate_only:
        if not (model_path.exists() and state_path.exists()):
            parser.error(f"--evaluate-only needs {model_path} and "
                         f"{state_path} from an earlier run")
        vae = keras.models.load_model(model_path, safe_mode=True)
        state = json.loads(state_path.read_text())
        checkpoints, train_seconds = state["checkpoints"], state["seconds"]
        args.epochs, args.batch_size = state["epochs"], state["batch_size"]
    for end in [] if args.evaluate_only else stage_ends(args.epochs):
        lr = learning_rate(done)
        optimizer.learning_rate.assign(lr)
        start = time.perf_counter()
        vae.fit(train, initial_epoch=done, epochs=end, verbose=2)
        train_seconds += time.perf_counter() - start
        done = end
        quick = evaluation.log_likelihood(vae, x_test, num_samples=100,
                                          seed=1, verbose=0)
        checkpoints.append({
            "epoch": end, "learning_rate": lr,
            "test_elbo": float(np.mean(quick.elbo)),
            "test_log_likelihood_k100": quick.mean,
            "train_seconds": train_seconds,
        })
        print(f"epoch {end}: test ELBO {checkpoints[-1]['test_elbo']:.2f}, "
              f"log p(x) (K=100) {quick.mean:.2f} nats", flush=True)
    if not args.evaluate_only:
        vae.save(model_path)
        state_path.write_text(json.dumps({
            "command": this_command(), "checkpoints": checkpoints,
            "seconds": train_seconds,
            "epochs": args.epochs, "batch_size": args.batch_size}))

    start = time.perf_counter()
    final = evaluation.report(vae, x_eval, num_samples=args.num_samples,
                              protocol=protocol, seed=0, verbose=1)
    eval_seconds = time.perf_counter() - start
    command = this_command()
    if args.evaluate_only:
        command = f"{state['command']}` then `{command}"
    machine = _common.machine_info()
    result = {
        "command": command, "machine": machine, "protocol": protocol,
        "epochs": args.epochs, "batch_size": args.batch_size,
        "checkpoints": checkpoints, "train_seconds": train_seconds,
        "eval_seconds": eval_seconds, "report": final,
    }
    print(evaluation.format_report(final))

    fig_dir = HERE / "figures"
    fig_dir.mkdir(exist_ok=True)
    figure = plot(checkpoints, final, vae, fig_dir / "likelihood_mnist.png",
                  args.num_samples)
    (out_dir / "likelihood_mnist.json").write_text(
        json.dumps(result, indent=2, sort_keys=True) + "\n")
    text = render(result, figure)
    print(text)
    if not args.no_write:
        _common.update_results(HERE / "RESULTS.md", text, SECTION)


def plot(checkpoints, final, vae, path, k):
    import matplotlib.pyplot as plt

    fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(11, 4.2),
                                     gridspec_kw={"width_ratios": [1.3, 1]})
    epochs = [c["epoch"] for c in checkpoints]
    ax.plot(epochs, [c["test_elbo"] for c in checkpoints], "o-",
            label="test ELBO")
    ax.plot(epochs, [c["test_log_likelihood_k100"] for c in checkpoints],
            "s-", label="test log p(x), K = 100")
    ax.plot([epochs[-1]], [final["log_likelihood"]["mean"]], "r*", ms=12,
            label=f"test log p(x), K = {k}")
    ax.axhline(PAPER_NATS, color="grey", ls="--",
               label="Burda et al., 3280 epochs")
    ax.set_xscale("log")
    ax.set_xlabel("epochs (batch 20, dynamic binarization)")
    ax.set_ylabel("nats per test image")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("784-200-200-50 VAE on MNIST")
    samples = vae.sample(64, seed=0)
    ax_img.imshow(plotting.tile(samples, 8), cmap="gray", vmin=0, vmax=1)
    ax_img.set_axis_off()
    ax_img.set_title("mean of p(x|z), z ~ N(0, I)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(result, figure):
    rep = result["report"]
    m = result["machine"]
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}`",
        f"Machine: {m['cpu_model']}, {m['cpu_affinity']} cores available, "
        f"{m['memory_gib']} GiB, {m['date']} (git {m['git_commit']}); "
        "the CPU was shared with other jobs, so times are upper bounds.",
        f"Data: {result['protocol']}.",
        "Model: IWAE paper's one-stochastic-layer VAE, 784-200-200-50 tanh, "
        "Bernoulli decoder, ELBO objective with one sample; Adam(1e-3, "
        f"eps 1e-4), batch {result['batch_size']}, the paper's learning-rate "
        f"schedule truncated at {result['epochs']} epochs.",
        "",
        "| epochs | learning rate | test ELBO | test log p(x), K = 100 "
        "| training time (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for c in result["checkpoints"]:
        lines.append(
            f"| {c['epoch']} | {c['learning_rate']:.2e} | "
            f"{c['test_elbo']:.2f} | {c['test_log_likelihood_k100']:.2f} | "
            f"{c['train_seconds']:.0f} |")
    ll = rep["log_likelihood"]
    lines += [
        "",
        f"Final model, first {rep['num_examples']} test images, K = "
        f"{rep['num_samples']}: **log p(x) = {ll['mean']:.2f} +- "
        f"{ll['stderr']:.2f} nats** (standard error across images); "
        f"ELBO {rep['elbo']['mean']:.2f}, gap log p(x) - ELBO "
        f"{rep['gap']['mean']:.2f}; KL {rep['kl_loss']['mean']:.2f}; "
        f"{rep['active_units']['count']} of 50 active units; "
        f"{rep['bits_per_dim']:.4f} bits/dim. The K = {rep['num_samples']} "
        f"evaluation took {result['eval_seconds']:.0f} s.",
        f"Burda et al. (2016) report {PAPER_NATS} nats for this model after "
        "3,280 epochs; compare the checkpoints above to see how far the "
        "estimate was still moving when this run stopped.",
        "",
        f"![likelihood_mnist](figures/{pathlib.Path(figure).name})",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
