"""Trained models shipped with the project, loaded by name, checked by hash.

The benchmarks that reproduce papers (`benchmarks/reproduce_iwae.py`) leave
each finished model as a run directory under `benchmarks/pretrained/<name>/`
(model.keras, config.json, metrics.json, history.json, the K = 5000
evaluation and result.json) and record the SHA-256 of its model.keras in
this package's registry (`keras_vae/pretrained.json`). Loading goes through
the registry, so a file that was changed, truncated or replaced by another
model is refused instead of silently giving other numbers:

    import keras_vae as kv

    kv.pretrained.available()                    # names with a recorded hash
    vae = kv.pretrained.load("iwae-1layer-vae-k1")
    kv.pretrained.info("iwae-1layer-vae-k1")     # protocol, log p(x), paper

and from the shell, re-scoring with the evaluation that produced the
recorded number:

    keras-vae evaluate iwae-1layer-vae-k1 --out /tmp/rescore

Where the run directories are looked for, in order: the `directory`
argument, `$KERAS_VAE_PRETRAINED_DIR`, and `benchmarks/pretrained/` of the
source checkout this package was imported from.
"""

import hashlib
import json
import os
import pathlib

#: The registry shipped with the package: name -> file, hash and results.
DEFAULT_REGISTRY = pathlib.Path(__file__).resolve().parent / "pretrained.json"
#: Environment variable naming a directory that holds <name>/model.keras.
ENV_DIR = "KERAS_VAE_PRETRAINED_DIR"
#: Where a source checkout keeps the shipped run directories.
CHECKOUT_DIR = (pathlib.Path(__file__).resolve().parent.parent
                / "benchmarks" / "pretrained")
MODEL_FILE = "model.keras"


def _registry_path(registry):
    return pathlib.Path(registry) if registry is not None else \
        DEFAULT_REGISTRY


def read_registry(registry=None):
    """The registry as a dict name -> entry ({} when the file is missing).

    Args:
        registry: path of a registry JSON file; default the package's.

    Raises:
        ValueError: the file is not a registry ({"models": {...}}).
    """
    path = _registry_path(registry)
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"Pretrained registry {str(path)!r} is not valid "
                         f"JSON: {err}") from None
    models = content.get("models") if isinstance(content, dict) else None
    if not isinstance(models, dict):
        raise ValueError(
            f"Pretrained registry {str(path)!r} must hold an object "
            "{\"models\": {name: entry}}. Received top-level keys: "
            f"{sorted(content) if isinstance(content, dict) else content!r}"
        )
    return models


def available(registry=None):
    """Sorted names of the registered models."""
    return sorted(read_registry(registry))


def info(name, registry=None):
    """The registry entry of `name`: sha256, bytes, protocol, the recorded
    test log p(x) and K, the paper's value, the command that made it.

    Raises:
        ValueError: `name` is not registered (the message lists the names).
    """
    models = read_registry(registry)
    if name not in models:
        names = sorted(models) or "none yet: a benchmark registers a " \
            "model when its row finishes"
        raise ValueError(
            f"Unknown pretrained model {name!r}. Registered in "
            f"{str(_registry_path(registry))!r}: {names}."
        )
    return dict(models[name])


def sha256(path, chunk_bytes=1 << 20):
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def search_dirs(directory=None):
    """The directories `locate` looks in, in order."""
    dirs = []
    if directory is not None:
        dirs.append(pathlib.Path(directory))
    if os.environ.get(ENV_DIR):
        dirs.append(pathlib.Path(os.environ[ENV_DIR]))
    dirs.append(CHECKOUT_DIR)
    return dirs


def locate(name, directory=None, registry=None):
    """The run directory of a registered model, after checking its hash.

    Args:
        name: a registered name (`available()`).
        directory: a directory holding <name>/model.keras, looked in first.
        registry: path of a registry JSON file; default the package's.

    Returns:
        pathlib.Path of the run directory (readable by
        `keras_vae.runs.RunDirectory` and `keras-vae evaluate`).

    Raises:
        ValueError: unknown name, or a model.keras whose SHA-256 differs
            from the registered one.
        FileNotFoundError: no <name>/model.keras in any searched directory.
    """
    entry = info(name, registry)
    tried = []
    for base in search_dirs(directory):
        run_dir = base / name
        model_path = run_dir / MODEL_FILE
        tried.append(str(model_path))
        if not model_path.is_file():
            continue
        found = sha256(model_path)
        if found != entry["sha256"]:
            raise ValueError(
                f"{str(model_path)!r} is not the registered {name!r}: its "
                f"SHA-256 is {found}, the registry says {entry['sha256']} "
                f"({entry.get('bytes', '?')} bytes; this file has "
                f"{model_path.stat().st_size}). Restore the file (e.g. `git "
                "checkout -- benchmarks/pretrained`) or point "
                f"${ENV_DIR} at an intact copy."
            )
        return run_dir
    raise FileNotFoundError(
        f"No file for the pretrained model {name!r}; looked for {tried}. "
        "The models live in a source checkout's benchmarks/pretrained/; pass "
        f"directory=... or set ${ENV_DIR} to a folder holding "
        f"{name}/{MODEL_FILE}."
    )


def load(name, directory=None, registry=None, compile=True):
    """Loads a registered model (after checking its SHA-256).

    Args:
        name: a registered name (`available()`), e.g. "iwae-1layer-vae-k1".
        directory: a directory holding <name>/model.keras, looked in first.
        registry: path of a registry JSON file; default the package's.
        compile: passed to `keras.models.load_model`.

    Returns:
        The `keras_vae.VAE`, loaded with safe_mode=True.

    Raises:
        ValueError, FileNotFoundError: see `locate`.

    Examples:
        The IWAE paper's one-layer VAE, trained to its protocol, and its
        recorded number; then the first 100 test digits, binarized as the
        protocol binarizes them, scored again (K = 5000, seed 0):

        >>> vae = kv.pretrained.load("iwae-1layer-vae-k1")
        >>> entry = kv.pretrained.info("iwae-1layer-vae-k1")
        >>> ll = entry["log_likelihood"]
        >>> print(f"{ll['mean']:.2f} +- {ll['stderr']:.2f} nats, K = "
        ...       f"{ll['num_samples']}; paper {entry['paper_log_likelihood']}")
        -86.09 +- 0.22 nats, K = 5000; paper -86.76
        >>> _, (x_bin, _) = kv.data.load("mnist", binarize="dynamic", seed=0)
        >>> scores = kv.evaluation.log_likelihood(
        ...     vae, x_bin[:100], num_samples=5000, seed=0, verbose=0)
        >>> abs(scores.mean - entry["check"]["mean"]) < 0.01
        True
    """
    import keras

    import keras_vae  # noqa: F401  (registers the serializable classes)

    run_dir = locate(name, directory=directory, registry=registry)
    return keras.models.load_model(run_dir / MODEL_FILE, compile=compile,
                                   safe_mode=True)


def register(name, run_dir, registry=None, **fields):
    """Records run_dir/model.keras under `name` in a registry (atomic).

    Used by the benchmarks when a model is finished; `fields` (protocol,
    log_likelihood, paper value, command...) are stored beside the hash.

    Returns:
        The entry written.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"A pretrained name is one path component, e.g. "
                         f"'iwae-1layer-vae-k1'. Received: {name!r}")
    model_path = pathlib.Path(run_dir) / MODEL_FILE
    if not model_path.is_file():
        raise FileNotFoundError(f"No {MODEL_FILE} in {str(run_dir)!r} to "
                                "register.")
    path = _registry_path(registry)
    models = read_registry(path)
    entry = {**fields, "sha256": sha256(model_path),
             "bytes": model_path.stat().st_size}
    models[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"models": models}, indent=2, sort_keys=True)
                   + "\n")
    os.replace(tmp, path)
    return entry
