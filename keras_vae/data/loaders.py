"""Dataset loaders: named datasets and files, as float32 examples.

- `load` reads a named dataset (`DATASET_NAMES`) from local files first and
  only then tries the keras downloader; it also reads `.npz`, `.npy` and IDX
  files given by path. Images come back as float32 with a channel axis,
  converted by the one rule of `keras_vae.data.checks`, and with the
  binarization protocol asked for (`keras_vae.data.protocols`).
- `load_binarized_mnist_splits` reads Larochelle's fixed binarization with
  its validation split.
- `describe_protocol` is the one-line statement of the data protocol to
  print next to a likelihood.

Where named datasets are looked up, in order: the `data_dir` argument, the
directory in `$KERAS_VAE_DATA_DIR`, `./data`, `~/.keras_vae/data`,
`~/.keras/datasets`, and for Fashion-MNIST also `/usr/share/datasets/
fashion-mnist` (Debian package `dataset-fashion-mnist`). A relative
`$KERAS_VAE_DATA_DIR` is taken from the working directory.
"""

import gzip
import math
import os
import pathlib
import zipfile
import zlib

import numpy as np

from keras_vae.data import checks
from keras_vae.data import protocols

DATASET_NAMES = ("mnist", "binarized_mnist", "fashion_mnist", "frey_face")
DATA_DIR_ENV = "KERAS_VAE_DATA_DIR"
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

# A fixed split is part of the protocol: the test set of an unlabelled
# dataset must not move when the binarization seed changes.
_SPLIT_SEED = 0
_TEST_FRACTION_DENOMINATOR = 10  # last 1/10 of a fixed permutation = test

#: The class of each label of the labelled datasets, in label order
#: (Fashion-MNIST's from Xiao et al. 2017's README).
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}


def class_names(name, labels=None):
    """The names of a dataset's classes, in label order: those of a named
    dataset, else "0", "1", ... up to the largest of `labels` (None when
    there are no labels)."""
    if name in CLASS_NAMES:
        return CLASS_NAMES[name]
    if labels is None or not len(labels):
        return None
    return tuple(str(k) for k in range(int(np.max(labels)) + 1))


_PRETTY_NAMES = {
    "mnist": "MNIST",
    "binarized_mnist": "binarized MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "frey_face": "Frey Face",
}
_NPZ_FILES = {name: f"{name}.npz" for name in DATASET_NAMES}
# Standard IDX file names (MNIST, Fashion-MNIST, keras' cache, Debian).
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Sub-directories that hold the IDX files (keras caches Fashion-MNIST in
# ~/.keras/datasets/fashion-mnist/).
_IDX_SUBDIRS = ("", "fashion-mnist", "fashion_mnist")
# IDX type byte -> big-endian numpy dtype (LeCun's IDX format).
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _canonical_name(name_or_path):
    """Returns the dataset name for `name_or_path`, or None for a path."""
    if isinstance(name_or_path, os.PathLike):
        return None
    if not isinstance(name_or_path, str):
        raise TypeError(
            "`name_or_path` must be a dataset name (one of "
            f"{list(DATASET_NAMES)}) or a path to a .npz, .npy or IDX file. "
            f"Received: {type(name_or_path).__name__} {name_or_path!r}"
        )
    name = name_or_path.strip().lower().replace("-", "_")
    if name in DATASET_NAMES:
        return name
    looks_like_path = (
        os.sep in name_or_path
        or "/" in name_or_path
        or pathlib.Path(name_or_path).suffix != ""
        or os.path.exists(name_or_path)
    )
    if looks_like_path:
        return None
    raise ValueError(
        f"Unknown dataset name {name_or_path!r}. Valid names: "
        f"{list(DATASET_NAMES)}. A path to a .npz, .npy or IDX "
        "(.gz / *-ubyte) file, or to a directory holding the four standard "
        "IDX files, is also accepted."
    )



# ---------------------------------------------------------------------------
# File readers (raw arrays, no scaling)
# ---------------------------------------------------------------------------


def _unreadable(path, expected, error):
    return ValueError(
        f"Could not read {str(path)!r} as {expected}: "
        f"{type(error).__name__}: {error}. Check that the file is complete "
        "(re-copy or re-download it) and that its extension matches its "
        "content."
    )


def _read_npz(path):
    """Returns {key: array} of an .npz file."""
    expected = "a numpy .npz archive (np.savez)"
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (
        OSError,
        ValueError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
    ) as error:
        raise _unreadable(path, expected, error) from error


def _read_npy(path):
    expected = "a numpy .npy array (np.save)"
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise _unreadable(path, expected, error) from error


def _read_idx(path):
    """Parses an IDX file (raw or gzipped) into a numpy array.

    Layout: two zero bytes, a type byte (`_IDX_DTYPES`), the number of
    dimensions, then one big-endian uint32 per dimension, then the values
    in C order, big-endian.
    """
    expected = "an IDX file (gzipped or raw, e.g. train-images-idx3-ubyte.gz)"
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":  # gzip magic number
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as error:
        raise _unreadable(path, expected, error) from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"Could not read {str(path)!r} as {expected}: the header starts "
            f"with bytes {raw[:4].hex(' ') or '(empty file)'}, expected "
            "00 00 <type in 08 09 0b 0c 0d 0e> <ndim>."
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise ValueError(
            f"Could not read {str(path)!r} as {expected}: the header declares "
            f"{ndim} dimensions but the file has {len(raw)} bytes."
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected_bytes = math.prod(dims) * dtype.itemsize
    if len(raw) - header_size != expected_bytes:
        raise ValueError(
            f"Could not read {str(path)!r} as {expected}: the header "
            f"declares shape {dims} ({expected_bytes} bytes of data) but the "
            f"file holds {len(raw) - header_size} bytes after the header "
            "(truncated or corrupt)."
        )
    values = np.frombuffer(raw, dtype, offset=header_size).reshape(dims)
    return values.astype(dtype.newbyteorder("="))


def _find_idx_file(directory, stem):
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_directory(directory):
    """Returns {x_train, y_train, x_test, y_test} from the four IDX files."""
    files = {key: _find_idx_file(directory, stem) for key, stem in _IDX_FILES.items()}
    missing = [_IDX_FILES[key] for key, path in files.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"{str(directory)!r} is missing the IDX files {missing} "
            "(each may be gzipped, with a .gz suffix). Expected the four "
            f"files {list(_IDX_FILES.values())}."
        )
    arrays = {key: _read_idx(path) for key, path in files.items()}
    return arrays, {key: str(path) for key, path in files.items()}



# ---------------------------------------------------------------------------
# Array preparation
# ---------------------------------------------------------------------------


def _prepare_images(x, what, source):
    """Checks an image array and returns float32 with a channel axis.

    Values are converted by the one rule of `keras_vae.data.checks`
    (uint8 / 255 unless only 0 and 1; floats and counts kept).
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.ndim > 4:
        raise ValueError(
            f"{what} from {source} has shape {x.shape}; expected images "
            "(N, D), (N, H, W) or (N, H, W, C), with examples on axis 0."
        )
    x = checks.to_float32(x, what, source=source, consumer="load")
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1]:
            x = x.reshape(x.shape[0], side, side, 1)  # (N, D) -> (N, s, s, 1)
    elif x.ndim == 3:
        x = x[..., np.newaxis]  # (N, H, W) -> (N, H, W, 1)
    return x

def _prepare_labels(y, num_examples, what, source):
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != num_examples:
        raise ValueError(
            f"{what} from {source} has shape {y.shape}; expected one label "
            f"per example, shape ({num_examples},)."
        )
    if not np.issubdtype(y.dtype, np.integer):
        if not (
            np.issubdtype(y.dtype, np.number)
            and np.all(np.isfinite(y))
            and np.all(y == np.round(y))
        ):
            raise ValueError(
                f"{what} from {source} has non-integer values (dtype "
                f"{y.dtype}); expected integer class labels."
            )
    return y.astype(np.int64)


def _split(x, y=None):
    """Deterministic 90/10 split: last tenth of a fixed permutation = test."""
    n = len(x)
    if n < 2:
        raise ValueError(
            f"Cannot split {n} example(s) into train and test; a single "
            "array needs at least 2 examples (90/10 split). Provide "
            "x_train and x_test separately instead."
        )
    order = np.random.RandomState(_SPLIT_SEED).permutation(n)
    num_test = max(1, n // _TEST_FRACTION_DENOMINATOR)
    train, test = order[: n - num_test], order[n - num_test :]
    if y is None:
        return (x[train], None), (x[test], None)
    return (x[train], y[train]), (x[test], y[test])



# ---------------------------------------------------------------------------
# Locating named datasets
# ---------------------------------------------------------------------------


def _search_dirs(name, data_dir):
    """Returns [(directory or None, how it was chosen)] in lookup order."""
    env_value = os.environ.get(DATA_DIR_ENV) or None
    places = [
        (data_dir if data_dir not in (None, "") else None, "data_dir argument"),
        (env_value, f"${DATA_DIR_ENV}"),
        (pathlib.Path.cwd() / "data", "./data"),
        (pathlib.Path.home() / ".keras_vae" / "data", "~/.keras_vae/data"),
        (pathlib.Path.home() / ".keras" / "datasets", "~/.keras/datasets"),
    ]
    if name == "fashion_mnist":
        places.append(
            (FASHION_MNIST_SYSTEM_DIR, "Debian package dataset-fashion-mnist")
        )
    result, seen = [], set()
    for directory, how in places:
        if directory is None:
            result.append((None, how))
            continue
        directory = pathlib.Path(directory).expanduser()
        key = os.path.abspath(directory)
        if key in seen:
            continue
        seen.add(key)
        result.append((directory, how))
    return result


def _locate(name, data_dir):
    """Finds a named dataset on disk.

    Returns:
        (kind, location, places): kind is "npz", "idx" or None (not found),
        location the file or directory, places the list of human-readable
        lines describing where it looked.
    """
    places = []
    for directory, how in _search_dirs(name, data_dir):
        if directory is None:
            places.append(f"(not set) ({how})")
            continue
        if not directory.is_dir():
            places.append(f"{directory} ({how}; no such directory)")
            continue
        npz = directory / _NPZ_FILES[name]
        places.append(f"{npz} ({how})")
        if npz.is_file():
            return "npz", npz, places
        if name == "fashion_mnist":
            for sub in _IDX_SUBDIRS:
                idx_dir = directory / sub if sub else directory
                places.append(f"{idx_dir}/ (IDX files) ({how})")
                if all(
                    _find_idx_file(idx_dir, stem) is not None
                    for stem in _IDX_FILES.values()
                ):
                    return "idx", idx_dir, places
    return None, None, places


def _download_with_keras(name):
    """Calls keras' downloader; returns ((x, y), (x, y)) uint8 arrays."""
    import keras

    loader = {
        "mnist": keras.datasets.mnist,
        "fashion_mnist": keras.datasets.fashion_mnist,
    }[name]
    return loader.load_data()


def _not_found(name, places, download_error):
    lines = [f"Could not find the dataset {name!r}. Looked for:"]
    lines += [f"  - {place}" for place in places]
    if name == "fashion_mnist":
        wanted = (
            f"{_NPZ_FILES[name]} (keys x_train, y_train, x_test, y_test) or "
            f"the IDX files {list(_IDX_FILES.values())} (optionally .gz)"
        )
    elif name == "frey_face":
        wanted = f"{_NPZ_FILES[name]} (key x, shape (1965, 28, 20))"
    elif name == "binarized_mnist":
        wanted = f"{_NPZ_FILES[name]} (keys x_train, x_valid, x_test)"
    else:
        wanted = f"{_NPZ_FILES[name]} (keys x_train, y_train, x_test, y_test)"
    if download_error is not None:
        lines.append(
            f"Downloading with keras.datasets.{name}.load_data() also failed: "
            f"{type(download_error).__name__}: {download_error}"
        )
    else:
        lines.append("keras has no downloader for this dataset.")
    fix = (
        f"To fix: put {wanted} in a directory and set {DATA_DIR_ENV}="
        "/path/to/that/directory (or pass data_dir=...)"
    )
    if name == "fashion_mnist":
        fix += (
            ", or install the Debian package: apt-get install "
            f"dataset-fashion-mnist (files in {FASHION_MNIST_SYSTEM_DIR})"
        )
    lines.append(fix + ".")
    return FileNotFoundError("\n".join(lines))


def _require_keys(arrays, keys, source, expected):
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(
            f"{source} is missing the keys {missing}; it has "
            f"{sorted(arrays)}. Expected {expected}."
        )


def _load_named_raw(name, data_dir):
    """Returns (raw arrays dict, source description) for a named dataset."""
    kind, location, places = _locate(name, data_dir)
    if kind == "idx":
        arrays, _ = _read_idx_directory(location)
        return arrays, f"IDX files in {str(location)!r}"
    if kind == "npz":
        arrays = _read_npz(location)
        source = repr(str(location))
        if name == "frey_face":
            return _single_array(arrays, source), source
        keys = ("x_train", "x_valid", "x_test")
        if name != "binarized_mnist":
            keys = ("x_train", "y_train", "x_test", "y_test")
        _require_keys(arrays, keys, source, f"the keys {list(keys)}")
        return arrays, source
    download_error = None
    if name in ("mnist", "fashion_mnist"):
        try:
            (x_train, y_train), (x_test, y_test) = _download_with_keras(name)
        except Exception as error:  # keras raises a bare Exception offline
            download_error = error
        else:
            arrays = dict(
                x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
            )
            return arrays, f"keras.datasets.{name}.load_data()"
    raise _not_found(name, places, download_error)


def _single_array(arrays, source):
    """Returns {"x": ..., optional "y"} from an archive holding one dataset."""
    if "x" in arrays:
        return {"x": arrays["x"], "y": arrays.get("y")}
    if len(arrays) == 1:
        return {"x": next(iter(arrays.values())), "y": None}
    raise ValueError(
        f"{source} has the keys {sorted(arrays)}; expected either x_train "
        "and x_test (optionally y_train, y_test), a key x (optionally y), "
        "or a single array (split 90/10)."
    )


def _load_path_raw(path):
    """Returns (raw arrays dict, source description) for a file path."""
    path = pathlib.Path(path).expanduser()
    source = repr(str(path))
    if not path.exists():
        raise FileNotFoundError(
            f"No such file or directory: {str(path)!r} (resolved to "
            f"{str(path.absolute())!r}). Give the path to a .npz, .npy or "
            f"IDX file, or one of the dataset names {list(DATASET_NAMES)}."
        )
    if path.is_dir():
        arrays, _ = _read_idx_directory(path)
        return arrays, f"IDX files in {source}"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
        if not arrays:
            raise ValueError(
                f"{source} is an empty .npz archive (no arrays). Expected "
                "x_train and x_test, a key x, or a single array."
            )
        if "x_train" in arrays or "x_test" in arrays:
            _require_keys(
                arrays,
                ("x_train", "x_test"),
                source,
                "both x_train and x_test (or a single array to split 90/10)",
            )
            return arrays, source
        return _single_array(arrays, source), source
    if suffix == ".npy":
        return {"x": _read_npy(path), "y": None}, source
    if suffix == ".gz" or "ubyte" in path.name.lower() or suffix.startswith(".idx"):
        return {"x": _read_idx(path), "y": None}, source
    raise ValueError(
        f"Unsupported file type {path.suffix or '(no extension)'!r} for "
        f"{source}. Expected a .npz archive, a .npy array, or an IDX file "
        "(gzipped .gz or raw *-ubyte)."
    )


def _prepare_splits(arrays, source):
    """Raw arrays -> ((x_train, y_train), (x_test, y_test)), checked."""
    if "x" in arrays:
        x = _prepare_images(arrays["x"], "x", source)
        y = _prepare_labels(arrays.get("y"), len(x), "y", source)
        return _split(x, y)
    x_train = _prepare_images(arrays["x_train"], "x_train", source)
    x_test = _prepare_images(arrays["x_test"], "x_test", source)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"x_train and x_test from {source} have different example "
            f"shapes: {x_train.shape[1:]} and {x_test.shape[1:]}."
        )
    y_train = _prepare_labels(arrays.get("y_train"), len(x_train), "y_train", source)
    y_test = _prepare_labels(arrays.get("y_test"), len(x_test), "y_test", source)
    return (x_train, y_train), (x_test, y_test)


def _check_already_binary(x, what, source):
    not_binary = (x != 0.0) & (x != 1.0)
    if not_binary.any():
        raise ValueError(
            f"{what} from {source} should hold only 0 and 1 (Larochelle's "
            f"binarized MNIST) but has {int(not_binary.sum())} other values, "
            f"e.g. {float(x[not_binary][0])}; the file is not "
            "binarized_mnist.npz."
        )



# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def load_binarized_mnist_splits(data_dir=None):
    """Loads Larochelle's fixed binarized MNIST with its three splits.

    The binarization of Larochelle & Murray (2011): one Bernoulli draw
    fixed for everyone, 50,000 train / 10,000 validation / 10,000 test
    images, no labels. Results on it are "static binarization" results.

    Args:
        data_dir: str, path or None. Directory holding `binarized_mnist.npz`;
            searched first, before $KERAS_VAE_DATA_DIR and the default places.

    Returns:
        dict with keys "train", "valid", "test", each a float32 array
        (N, 28, 28, 1) of 0.0 and 1.0.

    Raises:
        FileNotFoundError: if the file is in none of the places looked
            (listed in the message).
        ValueError: if the file is unreadable or not binary.

    Examples:
        >>> splits = load_binarized_mnist_splits()
        >>> splits["valid"].shape
        (10000, 28, 28, 1)
    """
    arrays, source = _load_named_raw("binarized_mnist", data_dir)
    splits = {}
    for split in ("train", "valid", "test"):
        x = _prepare_images(arrays[f"x_{split}"], f"x_{split}", source)
        _check_already_binary(x, f"x_{split}", source)
        splits[split] = x
    return splits


def load(name_or_path, binarize=None, data_dir=None, seed=0):
    """Loads a dataset as float32 images in [0, 1] with a channel axis.

    Named datasets are read from local files first (the lookup order is in
    the module docstring); only MNIST and Fashion-MNIST fall back to keras'
    downloader. `.npz` files are read with numpy, since keras' own cache
    check rejects an MNIST file that was not downloaded by keras.

    Args:
        name_or_path: one of `DATASET_NAMES` ("mnist", "binarized_mnist",
            "fashion_mnist", "frey_face"), or a path: a `.npz` archive with
            x_train/x_test (and optionally y_train/y_test) or with a single
            array (key `x`, optional `y`); a `.npy` array; an IDX file, raw
            (`*-ubyte`) or gzipped (`.gz`); or a directory with the four
            standard IDX files. A single array is split 90/10 by a fixed
            permutation (last tenth = test); Frey Face is split the same way.
        binarize: None or "none" (grey values), "dynamic" (x_train stays
            grey, to be re-binarized each epoch by `make_dataset`; x_test
            binarized once with `seed`), "static" (x_test binarized with
            `seed`, x_train with `seed + 1`), or "threshold" (pixel > 0.5).
            For "binarized_mnist", only None and "static" are allowed.
        data_dir: str, path or None. Directory searched first.
        seed: int, default 0. Seed of the one-off Bernoulli draws.

    Returns:
        `(x_train, y_train), (x_test, y_test)`. x are float32 arrays
        (N, H, W, C): (N, 28, 28, 1) for the MNIST family, (N, 28, 20, 1)
        for Frey Face. 2-D data (N, D) with D a perfect square becomes
        (N, s, s, 1); other 2-D data stays (N, D). uint8 is divided by 255
        (uint8 holding only 0/1 is kept as binary); floats are kept as they
        are, even outside [0, 1]. y are int64 (N,) or None (no labels).

    Raises:
        ValueError: unknown name or binarize mode, unreadable or corrupt
            file, empty data, NaN or infinite values, binarization of data
            outside [0, 1], or a non-static mode for "binarized_mnist".
        FileNotFoundError: a missing path, or a named dataset found nowhere
            (the message lists every place looked).

    Examples:
        >>> (x_train, _), (x_test, _) = load("mnist", binarize="dynamic")
        >>> x_train.shape, x_test.shape
        ((60000, 28, 28, 1), (10000, 28, 28, 1))
        >>> ds = kv.datasets.make_dataset(x_train, binarize="dynamic", seed=0)
    """
    name = _canonical_name(name_or_path)
    valid = (("none", "static") if name == "binarized_mnist"
             else protocols.BINARIZE_MODES)
    mode = protocols.check_binarize(binarize)
    if mode not in valid:
        raise ValueError(
            f"binarize={binarize!r} is not available for 'binarized_mnist': "
            "it is already binarized (Larochelle & Murray 2011's fixed "
            "draw). Use binarize=None or 'static' for it, or load 'mnist' "
            f"with binarize={binarize!r}."
        )
    seed = checks.check_seed(
        seed, why="numpy's RandomState range; static mode also uses seed + 1"
    )

    if name == "binarized_mnist":
        splits = load_binarized_mnist_splits(data_dir)
        return (splits["train"], None), (splits["test"], None)
    if name is None:
        arrays, source = _load_path_raw(name_or_path)
    else:
        arrays, source = _load_named_raw(name, data_dir)
    (x_train, y_train), (x_test, y_test) = _prepare_splits(arrays, source)
    x_train, x_test = protocols.apply_protocol(
        x_train, x_test, mode, seed, source
    )
    return (x_train, y_train), (x_test, y_test)


def describe_protocol(name, binarize=None, seed=0):
    """Returns the one-line data protocol to print next to a likelihood.

    Numbers from grey pixels, static binarization and dynamic binarization
    cannot be compared (Burda et al. 2016 discuss the gap); this string
    says which one a number comes from.

    Args:
        name: a dataset name from `DATASET_NAMES` or a path given to `load`.
        binarize: the `binarize` argument given to `load`.
        seed: int, default 0. The `seed` given to `load`.

    Returns:
        str, e.g. "MNIST, dynamic binarization (train: fresh
        Bernoulli(pixel/255) draw each epoch; test: binarized once, seed 0)".

    Raises:
        ValueError: unknown binarize mode, or a mode that `load` refuses
            for this dataset.

    Examples:
        >>> describe_protocol("mnist", None)
        'MNIST, continuous pixels in [0, 1]'
    """
    mode = protocols.check_binarize(binarize)
    canonical = None
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        canonical = key if key in DATASET_NAMES else None
    if canonical == "binarized_mnist":
        if mode not in ("none", "static"):
            raise ValueError(
                f"binarize={binarize!r} is not available for "
                "'binarized_mnist': it is already binarized."
            )
        return (
            "binarized MNIST (Larochelle & Murray 2011 fixed binarization), "
            "static"
        )
    if canonical is None:
        pretty = f"data from {os.path.basename(os.fspath(name))!r}"
        pixel = "pixel"
        if mode == "none":
            return f"{pretty}, continuous values (uint8 / 255, floats as stored)"
    else:
        pretty = _PRETTY_NAMES[canonical]
        pixel = "pixel/255"
    if canonical == "frey_face":
        pretty += " (fixed 90/10 split)"
    if mode == "none":
        return f"{pretty}, continuous pixels in [0, 1]"
    if mode == "dynamic":
        return (
            f"{pretty}, dynamic binarization (train: fresh Bernoulli({pixel}) "
            f"draw each epoch; test: binarized once, seed {seed})"
        )
    if mode == "static":
        return (
            f"{pretty}, static binarization (Bernoulli({pixel}) drawn once: "
            f"train seed {seed + 1}, test seed {seed})"
        )
    return f"{pretty}, threshold binarization ({pixel} > 0.5)"
