"""What a first run shows: a quiet `keras-vae`, progress that suits a log
file, a resumed run that says so, and class names in the latent scatter."""

import io
import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import _startup
from keras_vae import plotting
from keras_vae import progress
from keras_vae import runs

from helpers import Interrupt, binary_data, tiny_vae

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = "fast-1layer-vae-k1-b100-e820-loglinear-w10"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


# -- progress ----------------------------------------------------------------


def test_auto_verbosity_follows_stdout(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert progress.fit_verbose("auto") == 2
    assert progress.fit_verbose(1) == 1 and progress.fit_verbose(0) == 0
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert progress.fit_verbose("auto") == 1
    assert progress.fit_verbose(2) == 2


def test_progress_in_a_log_is_plain_lines_at_the_interval(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    bar = progress.Progress(10, "scoring", interval=3600)
    for done in range(1, 11):
        bar.update(done)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\b" not in out.getvalue()
    # The first update and the last; the others fall inside the interval.
    assert len(lines) == 2, lines
    assert lines[0].startswith("scoring: 1/10 batches (10%)")
    assert "s left" in lines[0]
    assert lines[1].startswith("scoring: 10/10 batches (100%)")

    out.seek(0)
    out.truncate()
    every = progress.Progress(3, "k", unit="draw", interval=0)
    for done in (1, 2, 3):
        every.update(done)
    assert len(out.getvalue().splitlines()) == 3


def test_progress_refuses_a_total_it_cannot_report():
    """Nothing to do, or a count that is not one, is refused when the report
    is made, not with a ZeroDivisionError at its first line."""
    for total in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match=(
                rf"whole number >= 1; received {re.escape(repr(total))}")):
            progress.Progress(total, "scoring")
    with pytest.raises(ValueError, match=r"interval.*>= 0; received -1"):
        progress.Progress(3, "scoring", interval=-1)
    assert progress.Progress(np.int64(4), "scoring").total == 4


def test_progress_on_a_terminal_is_a_live_bar(monkeypatch):
    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    bar = progress.Progress(5, "scoring", interval=0)
    for done in range(1, 6):
        bar.update(done)
    assert "\r" in out.getvalue()  # Keras' Progbar redraws its line


def test_fit_evaluate_and_scoring_in_a_log_write_no_carriage_returns(
        capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    x = binary_data(n=40)
    vae = tiny_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    capsys.readouterr()
    vae.fit(x, batch_size=10, epochs=3)  # verbose left at "auto"
    out = capsys.readouterr().out
    assert "\r" not in out
    # Keras' verbose=2: one summary line per epoch.
    assert len(re.findall(r"^4/4 - ", out, flags=re.M)) == 3, out
    vae.evaluate(x, batch_size=10)
    out = capsys.readouterr().out
    assert "\r" not in out and re.search(r"^4/4 - ", out, flags=re.M), out
    kv.evaluation.log_likelihood(vae, x, 8, batch_size=10)
    out = capsys.readouterr().out
    assert "\r" not in out
    assert re.search(r"importance sampling, K = 8: 4/4 batches \(100%\)",
                     out), out


# -- a quiet command ----------------------------------------------------------


def test_the_quiet_start_is_for_the_command_only():
    assert _startup.is_quiet_cli(["/venv/bin/keras-vae", "train"], [])
    assert not _startup.is_quiet_cli(
        ["/venv/bin/keras-vae", "train", "--verbose"], [])
    assert _startup.is_quiet_cli(
        ["-m"], ["python", "-m", "keras_vae.cli", "evaluate", "x"])
    assert not _startup.is_quiet_cli(
        ["-m"], ["python", "-m", "keras_vae.cli", "evaluate", "--verbose"])
    # A script or a test that imports keras_vae is left alone.
    assert not _startup.is_quiet_cli(["train.py", "--verbose"],
                                     ["python", "train.py"])
    assert not _startup.is_quiet_cli(["-c"], ["python", "-c", "import x"])


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a new user has
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _messages(stderr):
    """TensorFlow's log lines without their time stamp and process id."""
    return {re.sub(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ", "", line).strip()
            for line in stderr.splitlines() if line.strip()}


@pytest.mark.slow
def test_keras_vae_hides_tensorflow_start_up_noise_unless_verbose(tmp_path):
    # What TensorFlow itself prints on this machine is the oracle.
    plain = subprocess.run(
        [sys.executable, "-c",
         "import tensorflow as tf; print(float(tf.constant(1.0) + 1))"],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    noise = _messages(plain.stderr)
    if not noise:
        pytest.skip("TensorFlow prints nothing at start-up on this machine")
    command = [sys.executable, "-m", "keras_vae.cli", "evaluate", SHIPPED,
               "--num-samples", "2", "--max-examples", "5", "--progress",
               "0", "--out"]
    quiet = subprocess.run(command + [str(tmp_path / "q")], env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "log p(x)" in quiet.stdout
    assert not noise & _messages(quiet.stderr), quiet.stderr
    loud = subprocess.run(command + [str(tmp_path / "v"), "--verbose"],
                          env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert noise <= _messages(loud.stderr), (noise, loud.stderr)


def test_a_failed_quiet_import_shows_what_was_held(tmp_path):
    (tmp_path / "noisy_ok.py").write_text(
        "import os\nos.write(2, b'held-notice\\n')\n")
    (tmp_path / "noisy_bad.py").write_text(
        "import os\nos.write(2, b'why-it-failed\\n')\nraise ImportError('x')\n")
    # _startup imports nothing of keras_vae: run it on its own.
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(tmp_path)!r},
                        {os.path.join(REPO, "keras_vae")!r}]
        import _startup
        _startup.quiet_import(["noisy_ok"])
        print("after", file=sys.stderr)
        _startup.quiet_import(["noisy_bad"])
    """)
    done = subprocess.run([sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "held-notice" not in done.stderr  # held, and the import worked
    assert "after" in done.stderr  # stderr is back after the import
    assert "why-it-failed" in done.stderr  # replayed before the error
    assert "ImportError" in done.stderr
    assert done.stderr.index("why-it-failed") < done.stderr.index(
        "ImportError")


# -- a resumed run ------------------------------------------------------------


@pytest.mark.slow
def test_a_resumed_run_says_so_and_keeps_its_whole_history(
        tmp_path, data_dir, capsys):
    def config(name):
        return runs.TrainConfig(
            run_dir=str(tmp_path / name), latent_dim=2, hidden_units=(16,),
            epochs=3, batch_size=50, max_train_examples=200, save_freq=1,
            verbose=0)

    _, reference = runs.train(config("a"))
    ref_history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert reference["resumed_from_step"] == 0
    assert reference["epochs_this_process"] == 3
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 2, at step 6
        runs.train(config("b"), callbacks=[Interrupt(6)])
    capsys.readouterr()
    _, metrics = runs.train(config("b"))  # the same command again
    out = capsys.readouterr().out
    run_dir = str(tmp_path / "b")
    assert (f"Resuming {run_dir} from the backup at epoch 2, step 6 (2 of "
            "its 4 steps); training to epoch 3.") in out
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert len(history["loss"]) == 3 and metrics["epochs"] == 3
    # Epoch 1 ran before the kill: its logs come from the backup. The
    # validation of every epoch sees the same weights as the reference's.
    np.testing.assert_allclose(history["loss"][0], ref_history["loss"][0],
                               rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"], ref_history["val_loss"],
                               rtol=1e-4)
    # Seconds per epoch over the 1.5 epochs this process trained.
    assert metrics["resumed_from_step"] == 6
    assert metrics["epochs_this_process"] == pytest.approx(1.5)
    assert metrics["seconds_per_epoch"] == pytest.approx(
        metrics["seconds"] / 1.5)


def test_resume_message_names_the_epoch_and_step():
    assert runs.resume_message("r", 8, 4, 5) == (
        "Resuming r from the backup at epoch 2, step 8 (its end); training "
        "to epoch 5.")
    assert runs.resume_message("r", 1, 4, 5).startswith(
        "Resuming r from the backup at epoch 1, step 1 (1 of its 4 steps)")


# -- class names in the latent scatter -----------------------------------------


def _colour_bar_labels(monkeypatch):
    seen = {}
    real = plotting.save_figure

    def capture(fig, path):
        if os.path.basename(path) == "latent_scatter.png":
            seen["labels"] = [t.get_text()
                              for t in fig.axes[-1].get_yticklabels()]
        return real(fig, path)

    monkeypatch.setattr(plotting, "save_figure", capture)
    return seen


def test_latent_scatter_names_the_classes(tmp_path, monkeypatch):
    seen = _colour_bar_labels(monkeypatch)
    names = kv.data.class_names("fashion_mnist")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 2))
    labels = np.arange(50) % 10
    plotting.plot_latent_scatter(z, labels, str(tmp_path / "latent_scatter.png"),
                                 class_names=names)
    assert seen["labels"] == list(names)
    with pytest.raises(ValueError, match="labels run from 0 to 9.*3 class"):
        plotting.plot_latent_scatter(z, labels, str(tmp_path / "x.png"),
                                     class_names=names[:3])


@pytest.mark.slow
def test_a_run_labels_its_scatter_with_the_dataset_class_names(
        tmp_path, data_dir, monkeypatch):
    from keras_vae.data import loaders

    names = ("zero", "one", "two", "three", "four", "five", "six", "seven",
             "eight", "nine")
    monkeypatch.setitem(loaders.CLASS_NAMES, "mnist", names)
    seen = _colour_bar_labels(monkeypatch)
    runs.train(runs.TrainConfig(
        run_dir=str(tmp_path / "run"), latent_dim=2, hidden_units=(16,),
        epochs=1, batch_size=100, max_train_examples=200, verbose=0))
    assert seen["labels"] == list(names)
