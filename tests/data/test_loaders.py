"""Tests of keras_vae.data.loaders: real data, formats, lookup, bad input."""

import gzip
import os
import pathlib

import numpy as np
import pytest

from keras_vae import datasets
from keras_vae.data import loaders
from helpers import assert_same, is_binary

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA_FILES = ("mnist.npz", "binarized_mnist.npz", "frey_face.npz")


# Independent facts about the real files (shared/data/README.md, and the
# published MNIST class counts of LeCun et al.).
MNIST_TRAIN_PIXEL_MEAN = 33.318 / 255.0
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FREY_FACE_FRAMES = 1965


def _find_data_dir():
    env = os.environ.get(datasets.DATA_DIR_ENV)
    if env:
        # Relative values are taken from the working directory, then from
        # the repository root (where CI defines them).
        candidates = [pathlib.Path(env), REPO / env]
    else:
        candidates = [REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in DATA_FILES):
            return candidate.resolve()
    pytest.fail(
        f"The real datasets {list(DATA_FILES)} were not found in "
        f"{[str(c) for c in candidates]}. Set {datasets.DATA_DIR_ENV} to the "
        "directory that holds them (shared/data beside the repository)."
    )


@pytest.fixture(scope="module")
def data_dir():
    return _find_data_dir()


@pytest.fixture(scope="module")
def mnist_grey(data_dir):
    return datasets.load("mnist", data_dir=data_dir)


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No local data anywhere and no network: every lookup must fail."""
    empty = tmp_path / "empty"
    home = tmp_path / "home"
    work = tmp_path / "work"
    for directory in (empty, home, work):
        directory.mkdir()
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(empty))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setattr(
        datasets, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "no-system")
    )

    def offline(name):
        raise Exception(f"offline (test) for {name}")

    monkeypatch.setattr(loaders, "_download_with_keras", offline)
    return tmp_path


def _write_idx(path, array, compress):
    """Writes an IDX file by hand: 0, 0, type code, ndim, dims, big-endian data."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.float32): 0x0D}
    array = np.asarray(array)
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress:
        payload = gzip.compress(payload)
    pathlib.Path(path).write_bytes(payload)


# ---------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------


def test_mnist_shapes_scale_and_labels(mnist_grey):
    (x_train, y_train), (x_test, y_test) = mnist_grey
    assert x_train.shape == (60000, 28, 28, 1)
    assert x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert abs(float(x_train.mean()) - MNIST_TRAIN_PIXEL_MEAN) < 1e-3
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert sum(np.bincount(y_train)) + sum(np.bincount(y_test)) == 70000


def test_names_are_case_and_dash_insensitive(data_dir):
    (x_train, _), _ = datasets.load("Frey-Face", data_dir=str(data_dir))
    (x_again, _), _ = datasets.load("frey_face", data_dir=data_dir)
    assert_same(x_train, x_again)


def test_binarized_mnist_splits_are_binary(data_dir, mnist_grey):
    splits = datasets.load_binarized_mnist_splits(data_dir)
    sizes = {key: value.shape for key, value in splits.items()}
    assert sizes == {
        "train": (50000, 28, 28, 1),
        "valid": (10000, 28, 28, 1),
        "test": (10000, 28, 28, 1),
    }
    for x in splits.values():
        assert x.dtype == np.float32
        assert is_binary(x)
    # The fixed binarization is one Bernoulli draw of the same test images.
    grey_test_mean = float(mnist_grey[1][0].mean())
    assert abs(float(splits["test"].mean()) - grey_test_mean) < 1e-3

    (x_train, y_train), (x_test, y_test) = datasets.load(
        "binarized_mnist", data_dir=data_dir
    )
    assert y_train is None and y_test is None
    assert_same(x_train, splits["train"])
    assert_same(x_test, splits["test"])
    (x_static, _), _ = datasets.load(
        "binarized_mnist", binarize="static", data_dir=data_dir
    )
    assert_same(x_static, splits["train"])


def test_frey_face_split(data_dir):
    (x_train, y_train), (x_test, y_test) = datasets.load(
        "frey_face", data_dir=data_dir
    )
    assert y_train is None and y_test is None
    assert x_train.shape[1:] == x_test.shape[1:] == (28, 20, 1)
    assert len(x_train) + len(x_test) == FREY_FACE_FRAMES
    assert len(x_test) == FREY_FACE_FRAMES // 10
    both = np.concatenate([x_train, x_test])
    assert both.min() == pytest.approx(8 / 255)
    assert both.max() == pytest.approx(238 / 255)
    # The split is a partition of the file's frames...
    raw = np.load(data_dir / "frey_face.npz")["x"].astype(np.int64)
    frame_sums = np.round(both * 255).astype(np.int64).reshape(len(both), -1)
    assert_same(
        np.sort(frame_sums.sum(1)), np.sort(raw.reshape(len(raw), -1).sum(1))
    )
    # ... and the same on every call, whatever the binarization seed.
    (_, _), (x_test_again, _) = datasets.load(
        "frey_face", data_dir=data_dir, seed=5
    )
    assert_same(x_test, x_test_again)


def test_dataset_names():
    assert datasets.DATASET_NAMES == (
        "mnist",
        "binarized_mnist",
        "fashion_mnist",
        "frey_face",
    )


# ---------------------------------------------------------------------------
# Lookup order, downloader fallback, Fashion-MNIST IDX layouts
# ---------------------------------------------------------------------------


def _fake_frey(directory, value):
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "frey_face.npz", x=np.full((20, 28, 20), value, np.uint8))


def _frey_value(**kwargs):
    (x_train, _), _ = datasets.load("frey_face", **kwargs)
    return round(float(x_train[0, 0, 0, 0]) * 255)


def test_lookup_order(nowhere, monkeypatch):
    home, work = nowhere / "home", nowhere / "work"
    _fake_frey(home / ".keras" / "datasets", 50)
    assert _frey_value() == 50
    _fake_frey(home / ".keras_vae" / "data", 40)
    assert _frey_value() == 40
    _fake_frey(work / "data", 30)
    assert _frey_value() == 30
    _fake_frey(nowhere / "env", 20)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(nowhere / "env"))
    assert _frey_value() == 20
    _fake_frey(nowhere / "arg", 10)
    assert _frey_value(data_dir=nowhere / "arg") == 10


def test_keras_downloader_only_when_nothing_local(nowhere, monkeypatch):
    calls = []

    def fake_download(name):
        calls.append(name)
        x = np.full((3, 28, 28), 255, np.uint8)
        y = np.arange(3, dtype=np.uint8)
        return (x, y), (x[:1], y[:1])

    monkeypatch.setattr(loaders, "_download_with_keras", fake_download)
    (x_train, y_train), (x_test, _) = datasets.load("mnist")
    assert calls == ["mnist"]
    assert x_train.shape == (3, 28, 28, 1) and x_test.shape == (1, 28, 28, 1)
    assert x_train.max() == 1.0 and y_train.dtype == np.int64

    local = nowhere / "local"
    local.mkdir()
    x = np.zeros((2, 28, 28), np.uint8)
    np.savez(local / "mnist.npz", x_train=x, y_train=[0, 1], x_test=x, y_test=[0, 1])
    (x_train, _), _ = datasets.load("mnist", data_dir=local)
    assert calls == ["mnist"] and x_train.shape == (2, 28, 28, 1)


def _write_idx_set(directory, compress=True, count=12):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (count, 28, 28)),
        "train-labels-idx1-ubyte": rng.randint(0, 10, count),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (count // 2, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, count // 2),
    }
    for stem, array in arrays.items():
        name = stem + (".gz" if compress else "")
        _write_idx(directory / name, array.astype(np.uint8), compress)
    return arrays


@pytest.mark.parametrize("layout", ["system", "keras_cache", "data_dir_raw"])
def test_fashion_mnist_from_idx_files(nowhere, monkeypatch, layout):
    if layout == "system":
        directory = nowhere / "system-fashion"
        monkeypatch.setattr(loaders, "FASHION_MNIST_SYSTEM_DIR", str(directory))
        arrays = _write_idx_set(directory)
        kwargs = {}
    elif layout == "keras_cache":
        directory = nowhere / "home" / ".keras" / "datasets" / "fashion-mnist"
        arrays = _write_idx_set(directory)
        kwargs = {}
    else:
        directory = nowhere / "raw"
        arrays = _write_idx_set(directory, compress=False)
        kwargs = {"data_dir": directory}
    (x_train, y_train), (x_test, y_test) = datasets.load("fashion_mnist", **kwargs)
    np.testing.assert_allclose(
        x_train[..., 0] * 255, arrays["train-images-idx3-ubyte"], atol=1e-4
    )
    assert_same(y_train, arrays["train-labels-idx1-ubyte"])
    assert x_test.shape == (6, 28, 28, 1) and y_test.dtype == np.int64


# ---------------------------------------------------------------------------
# Paths: IDX, npz, npy
# ---------------------------------------------------------------------------


def test_gzipped_idx_round_trip(tmp_path):
    images = np.random.RandomState(1).randint(0, 256, (30, 6, 6)).astype(np.uint8)
    path = tmp_path / "images-idx3-ubyte.gz"
    _write_idx(path, images, compress=True)
    (x_train, y_train), (x_test, y_test) = datasets.load(path)
    assert y_train is None and y_test is None
    assert x_train.shape == (27, 6, 6, 1) and x_test.shape == (3, 6, 6, 1)
    both = np.concatenate([x_train, x_test])[..., 0]
    np.testing.assert_allclose(
        np.sort(both.sum((1, 2))), np.sort(images.sum((1, 2)) / 255.0), rtol=1e-5
    )


def test_raw_float_idx_keeps_values(tmp_path):
    values = np.random.RandomState(2).uniform(-1, 2, (10, 4, 4)).astype(np.float32)
    path = tmp_path / "values-idx3-ubyte"
    _write_idx(path, values, compress=False)
    (x_train, _), (x_test, _) = datasets.load(str(path))
    both = np.concatenate([x_train, x_test])[..., 0]
    assert_same(np.sort(both.ravel()), np.sort(values.ravel()))


def test_idx_directory(tmp_path):
    arrays = _write_idx_set(tmp_path / "idx")
    (x_train, y_train), _ = datasets.load(tmp_path / "idx")
    assert_same(y_train, arrays["train-labels-idx1-ubyte"])
    assert x_train.shape == (12, 28, 28, 1)


def test_npz_with_splits_and_shapes(tmp_path):
    rng = np.random.RandomState(3)
    flat = rng.randint(0, 256, (8, 784)).astype(np.uint8)
    path = tmp_path / "flat.npz"
    np.savez(path, x_train=flat, y_train=np.arange(8), x_test=flat[:2], y_test=[1, 2])
    (x_train, y_train), (x_test, y_test) = datasets.load(path)
    assert x_train.shape == (8, 28, 28, 1) and x_test.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(x_train.reshape(8, 784) * 255, flat, atol=1e-4)
    assert y_train.dtype == np.int64 and y_test.tolist() == [1, 2]

    colour = rng.uniform(size=(10, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "colour.npz", x=colour)
    (x_train, _), (x_test, _) = datasets.load(tmp_path / "colour.npz")
    assert x_train.shape == (9, 8, 8, 3) and x_test.shape == (1, 8, 8, 3)

    features = rng.uniform(size=(20, 10)).astype(np.float32)
    np.savez(tmp_path / "features.npz", anything=features)
    (x_train, _), (x_test, _) = datasets.load(tmp_path / "features.npz")
    assert x_train.shape == (18, 10) and x_test.shape == (2, 10)


def test_npz_uint8_binary_is_not_rescaled(tmp_path):
    binary = (np.random.RandomState(4).uniform(size=(10, 16)) > 0.5).astype(np.uint8)
    np.savez(tmp_path / "binary.npz", x=binary)
    (x_train, _), (x_test, _) = datasets.load(tmp_path / "binary.npz")
    assert is_binary(np.concatenate([x_train, x_test]))


def test_npy_split_with_labels_and_binarization(tmp_path):
    x = np.random.RandomState(5).uniform(size=(40, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (x_train, _), (x_test, _) = datasets.load(tmp_path / "x.npy")
    assert x_train.shape == (36, 5, 5, 1) and x_test.shape == (4, 5, 5, 1)
    (x_train_s, _), (x_test_s, _) = datasets.load(
        tmp_path / "x.npy", binarize="static", seed=2
    )
    assert_same(x_test_s, datasets.binarize_once(x_test, 2))
    assert_same(x_train_s, datasets.binarize_once(x_train, 3))

    # With y = example index, labels must travel with their examples.
    np.savez(tmp_path / "xy.npz", x=x, y=np.arange(40))
    (x_train, y_train), (x_test, y_test) = datasets.load(tmp_path / "xy.npz")
    assert len(y_train) == 36 and len(y_test) == 4
    assert sorted(y_train.tolist() + y_test.tolist()) == list(range(40))
    assert_same(x[y_train], x_train[..., 0])
    assert_same(x[y_test], x_test[..., 0])


def test_float_data_outside_unit_interval_is_kept(tmp_path):
    x = np.linspace(-1, 2, 10 * 9, dtype=np.float32).reshape(10, 3, 3)
    np.save(tmp_path / "wide.npy", x)
    (x_train, _), (x_test, _) = datasets.load(tmp_path / "wide.npy")
    both = np.concatenate([x_train, x_test]).ravel()
    assert_same(np.sort(both), np.sort(x.ravel()))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*\[-1, 2\]"):
        datasets.load(tmp_path / "wide.npy", binarize="dynamic")


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'mnsit'.*binarized_mnist.*frey_face.*path"):
        datasets.load("mnsit")


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        datasets.load("mnist", seed=-1)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.npz"):
        datasets.load(tmp_path / "nope.npz")


def test_missing_named_dataset_lists_places(nowhere):
    with pytest.raises(FileNotFoundError) as info:
        datasets.load("frey_face")
    message = str(info.value)
    for place in (
        str(nowhere / "empty" / "frey_face.npz"),
        "$KERAS_VAE_DATA_DIR",
        str(nowhere / "work" / "data"),
        "no such directory",
        "~/.keras_vae/data",
        "~/.keras/datasets",
        "set KERAS_VAE_DATA_DIR=",
    ):
        assert place in message, place


def test_missing_mnist_reports_download_failure(nowhere):
    with pytest.raises(
        FileNotFoundError, match=r"(?s)mnist\.npz.*load_data\(\).*offline \(test\)"
    ):
        datasets.load("mnist", data_dir=nowhere / "empty")


def test_missing_fashion_mnist_names_the_apt_package(nowhere):
    with pytest.raises(
        FileNotFoundError,
        match=r"(?s)train-images-idx3-ubyte.*apt-get install dataset-fashion-mnist",
    ):
        datasets.load("fashion_mnist")


def test_missing_binarized_mnist(nowhere):
    with pytest.raises(FileNotFoundError, match="binarized_mnist.npz"):
        datasets.load_binarized_mnist_splits()


def test_nan_values_are_counted(tmp_path):
    x = np.random.RandomState(6).uniform(size=(10, 4, 4)).astype(np.float32)
    x[3, 1, 2] = np.nan
    x[7, 0, 0] = np.inf
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(
        ValueError, match=r"nan\.npy.*2 NaN or infinite values.*example 3"
    ):
        datasets.load(tmp_path / "nan.npy")


def test_empty_data(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"empty\.npy.*is empty"):
        datasets.load(tmp_path / "empty.npy")
    np.savez(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="empty .npz archive"):
        datasets.load(tmp_path / "nothing.npz")


def test_corrupt_files(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match=r"bad\.npz.*\.npz archive"):
        datasets.load(tmp_path / "bad.npz")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"bad\.npy.*\.npy array"):
        datasets.load(tmp_path / "bad.npy")
    (tmp_path / "bad-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(ValueError, match=r"bad-idx3-ubyte\.gz.*IDX file"):
        datasets.load(tmp_path / "bad-idx3-ubyte.gz")
    (tmp_path / "header-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match=r"IDX file.*header starts"):
        datasets.load(tmp_path / "header-idx3-ubyte")


def test_truncated_idx(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    _write_idx(path, np.zeros((10, 4, 4), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        datasets.load(path)


def test_unsupported_extension_and_keys(tmp_path):
    (tmp_path / "data.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match=r"Unsupported file type '\.csv'"):
        datasets.load(tmp_path / "data.csv")
    np.savez(tmp_path / "half.npz", x_train=np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match=r"missing the keys \['x_test'\]"):
        datasets.load(tmp_path / "half.npz")
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 4)), b=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"keys \['a', 'b'\]"):
        datasets.load(tmp_path / "two.npz")
    np.save(tmp_path / "flat.npy", np.zeros(10))
    with pytest.raises(ValueError, match=r"shape \(10,\).*expected images"):
        datasets.load(tmp_path / "flat.npy")


def test_wrong_named_file_content(tmp_path):
    np.savez(tmp_path / "mnist.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"mnist\.npz.*missing the keys"):
        datasets.load("mnist", data_dir=tmp_path)
