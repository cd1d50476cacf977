"""Shared test set-up: quiet TensorFlow, real data location, seeds."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA_DIR = pathlib.Path(
    os.environ.get("KERAS_VAE_DATA_DIR", REPO.parent / "shared" / "data")
).resolve()
os.environ["KERAS_VAE_DATA_DIR"] = str(DATA_DIR)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir():
    """Directory holding mnist.npz, binarized_mnist.npz, frey_face.npz."""
    if not (DATA_DIR / "mnist.npz").exists():
        pytest.fail(
            f"Real data not found in {DATA_DIR}. Set KERAS_VAE_DATA_DIR to "
            "the folder with mnist.npz (../shared/data beside the repo)."
        )
    return DATA_DIR


@pytest.fixture(scope="session")
def mnist_slice(data_dir):
    """2000 real MNIST training digits and 500 test digits in [0, 1]."""
    with np.load(data_dir / "mnist.npz") as d:
        x_train = d["x_train"][:2000].astype("float32")[..., None] / 255.0
        x_test = d["x_test"][:500].astype("float32")[..., None] / 255.0
        y_train = d["y_train"][:2000]
    return x_train, y_train, x_test


@pytest.fixture(scope="module")
def mnist_grey(data_dir):
    """MNIST as `load` gives it: grey float32 pixels in [0, 1]."""
    import keras_vae as kv

    return kv.datasets.load("mnist", data_dir=data_dir)


@pytest.fixture(scope="session")
def binary_model():
    """A small Bernoulli VAE fitted briefly to 12-pixel binary data, and 60
    of its training examples (the tests only score it)."""
    import keras

    import keras_vae as kv

    rng = np.random.default_rng(0)
    x = (rng.random((400, 12)) < np.linspace(0.1, 0.9, 12)).astype("float32")
    keras.utils.set_random_seed(0)
    vae = kv.build_mlp_vae((12,), 3, hidden_units=(16,), seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x, epochs=5, batch_size=50, verbose=0)
    return vae, x[:60]
