"""Kill `keras-vae train` mid-epoch, run the same command again, compare.

Runs the same `keras-vae train` command twice into two run directories: one
uninterrupted, one killed with SIGKILL once its backup has passed a step in
the middle of an epoch and then started again with the identical command.
Prints the largest absolute difference between the two final models'
weights (RUN_DIR/model.keras), and writes benchmarks/_out/
resume_equality.json.

Data protocol: MNIST, dynamic binarization (first --examples training
images), MLP 784-200-200-50, Bernoulli decoder, linear KL warm-up.

    python benchmarks/resume_equality.py
"""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def _command(run_dir, args):
    return [
        sys.executable, "-m", "keras_vae.cli", "train",
        "--max-train-examples", str(args.examples), "--epochs",
        str(args.epochs), "--batch-size", "100", "--latent-dim", "50",
        "--hidden-units", "200,200", "--warmup-steps", str(args.warmup_steps),
        "--save-freq", str(args.save_freq), "--seed", "0", "--progress", "0",
        "--out", str(run_dir),
    ] + (["--steps-per-execution", str(args.steps_per_execution)]
         if args.steps_per_execution else [])


def _backup_step(run_dir):
    path = os.path.join(run_dir, "backup", "training_metadata.json")
    try:
        with open(path) as f:
            return json.load(f)["step"]
    except (OSError, ValueError, KeyError):
        return -1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--save-freq", type=int, default=25)
    parser.add_argument("--kill-after-step", type=int, default=90)
    parser.add_argument("--warmup-steps", type=int, default=100,
                        help="KL warm-up steps; 0 = none (then keras-vae "
                             "train runs several steps per execution)")
    parser.add_argument("--steps-per-execution", type=int, default=None,
                        help="passed to keras-vae train (default: its own)")
    args = parser.parse_args(argv)
    steps_per_epoch = -(-args.examples // 100)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

    import keras

    import keras_vae  # noqa: F401  (registers the classes for loading)

    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "uninterrupted"), os.path.join(tmp, "killed")
        subprocess.run(_command(a, args), env=env, check=True,
                       stdout=subprocess.DEVNULL)
        proc = subprocess.Popen(_command(b, args), env=env,
                                stdout=subprocess.DEVNULL)
        while _backup_step(b) < args.kill_after_step:
            if proc.poll() is not None:
                raise RuntimeError("the run finished before it was killed")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = _backup_step(b)
        subprocess.run(_command(b, args), env=env, check=True,
                       stdout=subprocess.DEVNULL)
        wa = keras.models.load_model(os.path.join(a, "model.keras"))
        wb = keras.models.load_model(os.path.join(b, "model.keras"))
        diffs = [float(np.max(np.abs(u - v)))
                 for u, v in zip(wa.get_weights(), wb.get_weights())]
        metrics = [json.load(open(os.path.join(d, "metrics.json")))["test"]
                   for d in (a, b)]
    report = {
        "steps_per_epoch": steps_per_epoch,
        "backup_step_at_kill": killed_at,
        "epoch_of_kill": killed_at // steps_per_epoch,
        "batch_in_epoch_at_backup": killed_at % steps_per_epoch,
        "max_abs_weight_difference": max(diffs),
        "test_elbo": [m["elbo"] for m in metrics],
        "command": " ".join(_command("RUN_DIR", args)[2:]),
    }
    out = HERE / "_out" / "resume_equality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
