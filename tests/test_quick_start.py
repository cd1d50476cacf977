"""The README's "Quick start in Python", run as a user pastes it: on a
slice of MNIST and one epoch (the only changes), then checked against
what its comments promise: dynamic binarization of the training batches,
importance-sampled log p(x) above the ELBO, a `.keras` file that reloads
to the same model, and a SavedModel on disk."""

import os
import pathlib
import re

import keras
import numpy as np

import keras_vae as kv
from helpers import is_binary

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _quick_start():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start in Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_readme_quick_start_runs_and_keeps_its_promises(
        tmp_path, monkeypatch):
    code = _quick_start()
    assert "epochs=10" in code
    code = code.replace("epochs=10", "epochs=1")
    real_load = kv.datasets.load

    def small_load(name, **kwargs):
        (x_train, y_train), (x_test, y_test) = real_load(name, **kwargs)
        return (x_train[:2000], y_train[:2000]), (x_test[:200], y_test[:200])

    monkeypatch.setattr(kv.datasets, "load", small_load)
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(code, "README.md quick start", "exec"), ns)

    # Trained on binary draws of the grey training images, fresh per batch.
    x_train, train = ns["x_train"], ns["train"]
    assert not is_binary(x_train)
    first, next_epoch = (train.batch(0).numpy(),
                         train.batch(train.steps_per_epoch).numpy())
    assert is_binary(first) and is_binary(next_epoch)
    assert not np.array_equal(first, next_epoch)
    # log p(x) by importance sampling (K = 5000) lies above the ELBO.
    x_test, vae, log_px = ns["x_test"], ns["vae"], ns["log_px"]
    assert is_binary(x_test)
    assert log_px.shape == (100,) and np.all(np.isfinite(log_px))
    assert log_px.mean() > vae.elbo(x_test[:100]).mean()
    assert ns["digits"].shape == (16, 28, 28, 1)
    # The saved model reloads to the same weights; the export is on disk.
    restored = keras.models.load_model(tmp_path / "mnist_vae.keras",
                                       safe_mode=True)
    for a, b in zip(vae.weights, restored.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    exported = [p for p, _, files in os.walk(tmp_path / "saved_models")
                if "saved_model.pb" in files]
    assert len(exported) == 1
