"""Dataset loaders and tf.data pipelines, with explicit binarization protocols.

A log-likelihood on MNIST means nothing without the protocol that produced
the data: grey pixels, a binarization drawn once, or a fresh binarization
every epoch give numbers that cannot be compared. This module makes the
protocol an argument (`binarize`) and a string (`describe_protocol`) that is
printed next to every number.

- `load` reads a named dataset (`DATASET_NAMES`) from local files first and
  only then tries the keras downloader; it also reads `.npz`, `.npy` and IDX
  files given by path. Images come back as float32 with a channel axis.
- `make_dataset` builds the `tf.data` pipeline that `VAE.fit` consumes; with
  `binarize="dynamic"` it draws x ~ Bernoulli(pixel) inside the graph, fresh
  for every epoch (the protocol of Burda et al. 2016, IWAE).
- `binarize_once` is the fixed-seed numpy draw used for static binarization
  and for the test set of the dynamic protocol.

Where named datasets are looked up, in order: the `data_dir` argument, the
directory in `$KERAS_VAE_DATA_DIR`, `./data`, `~/.keras_vae/data`,
`~/.keras/datasets`, and for Fashion-MNIST also `/usr/share/datasets/
fashion-mnist` (Debian package `dataset-fashion-mnist`). A relative
`$KERAS_VAE_DATA_DIR` is taken from the working directory.
"""

import gzip
import math
import numbers
import os
import pathlib
import zipfile
import zlib

import numpy as np
import tensorflow as tf

DATASET_NAMES = ("mnist", "binarized_mnist", "fashion_mnist", "frey_face")
BINARIZE_MODES = ("none", "dynamic", "static", "threshold")
DATA_DIR_ENV = "KERAS_VAE_DATA_DIR"
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

# A fixed split is part of the protocol: the test set of an unlabelled
# dataset must not move when the binarization seed changes.
_SPLIT_SEED = 0
_TEST_FRACTION_DENOMINATOR = 10  # last 1/10 of a fixed permutation = test

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
# Rows per chunk of uniform draws in `binarize_once`: bounds the float64
# temporary to ~25 MB whatever the dataset size.
_BINARIZE_CHUNK_VALUES = 1 << 22


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


_BINARIZE_HELP = (
    "None/'none' keeps grey values in [0, 1], 'dynamic' re-draws "
    "x ~ Bernoulli(pixel) every epoch, 'static' draws once with a fixed "
    "seed, 'threshold' sets pixel > 0.5."
)


def _check_binarize(binarize, valid=BINARIZE_MODES, hint=_BINARIZE_HELP):
    """Returns the canonical binarize mode ("none" for None)."""
    if binarize is None:
        return "none"
    mode = binarize.lower() if isinstance(binarize, str) else binarize
    if mode not in valid:
        raise ValueError(
            f"Unknown binarize mode {binarize!r}. Expected one of "
            f"{[None, *valid]}: {hint}"
        )
    return mode


def _check_seed(seed):
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed < 2**32 - 1
    ):
        raise ValueError(
            "`seed` must be an int in [0, 2**32 - 2] (numpy's RandomState "
            f"range; static mode also uses seed + 1). Received: seed={seed!r}"
        )
    return int(seed)


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


def _uint8_to_float32(x):
    """8-bit grey levels -> [0, 1]; uint8 holding only 0 and 1 stays binary."""
    binary = x.max() <= 1
    x = x.astype(np.float32)
    if not binary:
        x *= np.float32(1.0 / 255.0)
    return x


def _prepare_images(x, what, source):
    """Checks an image array and returns float32 with a channel axis.

    uint8 is 8-bit grey levels and is divided by 255, unless it only holds
    0 and 1 (already binary, e.g. Larochelle's binarized MNIST). Floats are
    kept as they are (values outside [0, 1] are legitimate for continuous
    likelihoods); other integer types are counts and are kept too.
    """
    x = np.asarray(x)
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.number) or x.dtype == bool
    ) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(
            f"{what} from {source} has dtype {x.dtype}; expected a numeric "
            "array (uint8 pixels 0..255, or floats)."
        )
    if x.ndim < 2 or x.ndim > 4:
        raise ValueError(
            f"{what} from {source} has shape {x.shape}; expected images "
            "(N, D), (N, H, W) or (N, H, W, C), with examples on axis 0."
        )
    if x.size == 0:
        raise ValueError(
            f"{what} from {source} is empty (shape {x.shape}); there is "
            "nothing to train or evaluate on. Check that the file holds the "
            "data you meant to load."
        )
    if x.dtype == np.uint8:
        x = _uint8_to_float32(x)
    else:
        x = x.astype(np.float32)
        finite = np.isfinite(x)
        if not finite.all():
            bad = np.argwhere(~finite)
            first = tuple(int(i) for i in bad[0])
            raise ValueError(
                f"{what} from {source} contains {len(bad)} NaN or infinite "
                f"values (after conversion to float32), in "
                f"{len(np.unique(bad[:, 0]))} examples; the first is example "
                f"{first[0]} at position {first[1:]}. Fix or drop those "
                "examples in the file before loading."
            )
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


def _check_probabilities(x, what, mode):
    low, high = float(np.min(x)), float(np.max(x))
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"binarize={mode!r} treats pixels as probabilities, so they must "
            f"lie in [0, 1]; {what} has values in [{low:g}, {high:g}]. Use "
            "binarize=None for continuous data, or rescale it first."
        )


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


def binarize_once(x, seed):
    """Draws one fixed binarization x_bin ~ Bernoulli(x) with numpy.

    The draw uses `numpy.random.RandomState(seed)`, whose stream numpy keeps
    frozen across versions (NEP 19), so the same seed gives the same binary
    data on every machine: the test set of the dynamic protocol and both
    sets of the static protocol are reproducible.

    Args:
        x: array-like of probabilities in [0, 1], any shape (e.g. grey
            pixels divided by 255).
        seed: int in [0, 2**32 - 2].

    Returns:
        float32 array of 0.0 and 1.0, the shape of `x`.

    Raises:
        ValueError: if `seed` is not a valid int, or `x` is empty, not
            finite, or outside [0, 1].

    Example:
        >>> binarize_once(np.array([0.0, 1.0]), seed=0).tolist()
        [0.0, 1.0]
        >>> x_test_bin = binarize_once(x_test, seed=0)  # same seed, same draw
    """
    seed = _check_seed(seed)
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        raise ValueError(f"Cannot binarize an empty array (shape {x.shape}).")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"Cannot binarize: x has {int(np.sum(~np.isfinite(x)))} NaN or "
            "infinite values."
        )
    _check_probabilities(x, "x", "binarize_once")
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    rng = np.random.RandomState(seed)
    # Chunked draws give the same stream as one big draw, without a
    # float64 temporary the size of the whole dataset.
    for start in range(0, flat.size, _BINARIZE_CHUNK_VALUES):
        chunk = flat[start : start + _BINARIZE_CHUNK_VALUES]
        out[start : start + chunk.size] = rng.random_sample(chunk.size) < chunk
    return out.reshape(x.shape)


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

    Example:
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

    Example:
        >>> (x_train, _), (x_test, _) = load("mnist", binarize="dynamic")
        >>> x_train.shape, x_test.shape
        ((60000, 28, 28, 1), (10000, 28, 28, 1))
        >>> ds = make_dataset(x_train, binarize="dynamic", seed=0)
    """
    name = _canonical_name(name_or_path)
    valid = ("none", "static") if name == "binarized_mnist" else BINARIZE_MODES
    mode = _check_binarize(binarize)
    if mode not in valid:
        raise ValueError(
            f"binarize={binarize!r} is not available for 'binarized_mnist': "
            "it is already binarized (Larochelle & Murray 2011's fixed "
            "draw). Use binarize=None or 'static' for it, or load 'mnist' "
            f"with binarize={binarize!r}."
        )
    seed = _check_seed(seed)

    if name == "binarized_mnist":
        splits = load_binarized_mnist_splits(data_dir)
        return (splits["train"], None), (splits["test"], None)
    if name is None:
        arrays, source = _load_path_raw(name_or_path)
    else:
        arrays, source = _load_named_raw(name, data_dir)
    (x_train, y_train), (x_test, y_test) = _prepare_splits(arrays, source)

    if mode != "none":
        _check_probabilities(x_train, f"x_train from {source}", mode)
        _check_probabilities(x_test, f"x_test from {source}", mode)
    if mode == "dynamic":
        x_test = binarize_once(x_test, seed)
    elif mode == "static":
        x_test = binarize_once(x_test, seed)
        x_train = binarize_once(x_train, seed + 1)
    elif mode == "threshold":
        x_train = (x_train > 0.5).astype(np.float32)
        x_test = (x_test > 0.5).astype(np.float32)
    return (x_train, y_train), (x_test, y_test)


def _bernoulli_batch(x_batch, seed_pair):
    """x_batch -> 0/1 draws, one stateless uniform per pixel."""
    uniform = tf.random.stateless_uniform(
        tf.shape(x_batch), seed=seed_pair, dtype=x_batch.dtype
    )
    return tf.cast(uniform < x_batch, x_batch.dtype)


def index_batches(n, batch_size, drop_remainder):
    """Returns a function: an index order (n,) -> a dataset of its batches.

    Each batch is a slice of the order, cut by one reshape rather than by
    `Dataset.batch` over n scalar elements. Shared by `make_dataset` and
    `keras_vae.resume.make_step_dataset`.
    """
    full = n // batch_size

    def split(perm):
        head = tf.data.Dataset.from_tensor_slices(
            tf.reshape(perm[: full * batch_size], (full, batch_size))
        )
        if drop_remainder or n % batch_size == 0:
            return head
        return head.concatenate(
            tf.data.Dataset.from_tensors(perm[full * batch_size:])
        )

    return split


def _batches(x, batch_size, shuffle, seed, drop_remainder, repeat):
    """Batches of x, reshuffled each epoch, gathered by index.

    The images stay in one tensor; each epoch draws one permutation of the
    indices (a single op) and every batch is one gather. An element-wise
    `Dataset.shuffle` over the whole set would copy every image through a
    buffer as large as the data set at the start of each epoch, on the same
    cores the train step needs.
    """
    n = len(x)
    if shuffle:
        # A fresh (2,) seed per epoch: each new iterator re-randomizes, and
        # with repeat=True each repetition takes the next seed.
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        if not repeat:
            seeds = seeds.take(1)
        perms = seeds.map(
            lambda s: tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=s
            )
        )
    else:
        perms = tf.data.Dataset.from_tensors(tf.range(n, dtype=tf.int64))
        if repeat:
            perms = perms.repeat()
    indices = perms.flat_map(index_batches(n, batch_size, drop_remainder))
    images = tf.data.Dataset.from_tensors(x).repeat()

    def gather(i, data):
        # A free batch dimension, as Dataset.batch gives: one trace of the
        # train step serves the last, smaller batch too.
        i = tf.compat.v1.placeholder_with_default(i, shape=[None])
        return tf.gather(data, i)

    dataset = tf.data.Dataset.zip((indices, images)).map(
        gather,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
    )
    if repeat:
        return dataset
    # flat_map hides the length; Keras needs it to end an epoch cleanly.
    batches = n // batch_size + (0 if drop_remainder or n % batch_size == 0
                                 else 1)
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def make_dataset(
    x,
    batch_size=100,
    binarize=None,
    shuffle=True,
    seed=None,
    drop_remainder=False,
    repeat=False,
):
    """Builds the tf.data pipeline of images that `VAE.fit` consumes.

    Elements are float32 batches of x only (a VAE needs no targets). With
    `binarize="dynamic"` every batch is replaced by x ~ Bernoulli(pixel)
    inside the tf.data graph, and each new pass over the dataset draws anew
    (Burda et al. 2016's dynamic binarization): the per-batch seeds come
    from `tf.data.Dataset.random(..., rerandomize_each_iteration=True)`
    zipped with the batches and feed `tf.random.stateless_uniform`. (A
    stateful random op with a fixed seed inside `map` would repeat the same
    draws at every epoch.) With `repeat=True` the seed stream simply
    continues from epoch to epoch.

    Args:
        x: array-like (N, ...) of images, e.g. `x_train` from `load`.
            uint8 is divided by 255 as in `load`; other types are cast to
            float32. With binarize="dynamic" the values must lie in [0, 1].
        batch_size: int > 0, default 100.
        binarize: None or "none" (batches as given), or "dynamic". Static
            and threshold binarization are one-off transforms: use `load`
            or `binarize_once` for them.
        shuffle: bool, default True. Shuffles the whole set, anew each epoch.
        seed: int or None. Seed of the shuffle and of the binarization
            draws; with an int the sequence of epochs is reproducible.
        drop_remainder: bool, default False. Drop the last smaller batch.
        repeat: bool, default False. Repeat forever (then pass
            `steps_per_epoch` to fit).

    Returns:
        `tf.data.Dataset` of float32 tensors (batch, ...), prefetched.

    Raises:
        ValueError: bad batch_size, binarize or seed, empty x, x given as an
            (x, y) tuple, non-finite x, or values outside [0, 1] with
            binarize="dynamic".

    Example:
        >>> (x_train, _), _ = load("mnist", binarize="dynamic")
        >>> ds = make_dataset(x_train, batch_size=100, binarize="dynamic")
        >>> vae.fit(ds, epochs=10)  # a fresh binarization every epoch
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size <= 0
    ):
        raise ValueError(
            "`batch_size` must be an int > 0. "
            f"Received: batch_size={batch_size!r}"
        )
    mode = _check_binarize(
        binarize,
        valid=("none", "dynamic"),
        hint=(
            "make_dataset only re-binarizes on the fly ('dynamic'); static "
            "and threshold binarization are one-off transforms done by "
            "load(..., binarize=...) or binarize_once."
        ),
    )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
    ):
        raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
    if isinstance(x, tuple):
        raise ValueError(
            "make_dataset takes the images only (a VAE has no targets). "
            f"Received a tuple of length {len(x)}; pass x_train, not "
            "(x_train, y_train)."
        )
    x = np.asarray(x)
    if x.dtype == np.uint8 and x.size:
        x = _uint8_to_float32(x)  # the same scaling as `load`
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise ValueError(
            f"make_dataset needs at least one example. Received x with "
            f"shape {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"x has {int(np.sum(~np.isfinite(x)))} NaN or infinite values; "
            "clean the data before building the dataset."
        )
    if mode == "dynamic":
        _check_probabilities(x, "x", mode)

    dataset = _batches(x, int(batch_size), shuffle, seed, drop_remainder,
                       repeat)
    if mode == "dynamic":
        # One (2,) int64 seed per batch; a new iterator gets new seeds.
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            _bernoulli_batch, num_parallel_calls=tf.data.AUTOTUNE
        )
    options = tf.data.Options()
    # The images are one constant of the input graph: tf.data's default
    # graph rewrites would serialize it (the whole data set) again for every
    # new iterator, i.e. every epoch. Keras turns them off for numpy input
    # for the same reason.
    options.experimental_optimization.apply_default_optimizations = False
    # Under tf.distribute, each worker takes its share of every batch.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


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

    Example:
        >>> describe_protocol("mnist", None)
        'MNIST, continuous pixels in [0, 1]'
    """
    mode = _check_binarize(binarize)
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
