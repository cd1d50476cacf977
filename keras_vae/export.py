"""Export a trained VAE as a TensorFlow SavedModel laid out for TF Serving.

`export_saved_model(model, base_dir)` writes `base_dir/<version>/`, the layout
TF Serving watches (a model's base path holds one numbered directory per
version; the server loads the highest). The SavedModel holds six named
signatures, float32, with a free batch dimension:

    signature       inputs                      outputs
    encode          x (B, *event_shape)         z_mean, z_log_var,
                                                each (B, latent_dim)
      (also serving_default)
    decode          z (B, latent_dim)           mean (B, *event_shape),
                                                params (B, *params_shape)
    reconstruct     x                           reconstruction: the mean of
                                                p(x | z = z_mean)
    sample          num_samples, seed: int32    z, x_mean, x_sample
                    scalars
    elbo            x                           elbo, reconstruction, kl (B,)
    log_likelihood  x, num_samples: int32 (K)   log_likelihood (B,), nats

Randomness in `elbo` and `log_likelihood` is deterministic: the k-th
importance sample of every example uses the same standard-normal vector

    eps_k = stateless_normal([CHUNK_SIZE, latent_dim],
                             seed=[NOISE_SEED, k // CHUNK_SIZE],
                             )[k % CHUNK_SIZE]

(common random numbers). The score of an example is therefore a function of
that example and K only: it does not depend on the other rows of the batch,
on the batch size or on the call, which is what an anomaly threshold needs.
`elbo` uses eps_0, one draw, with the closed-form KL (the estimate the train
step reports); `log_likelihood` is the IWAE bound with eps_0 .. eps_{K-1}
(Burda et al. 2016), computed CHUNK_SIZE samples at a time in a
`tf.while_loop`, so memory grows with batch * CHUNK_SIZE, not with K.

`sample` reproduces `VAE.sample(num_samples, seed)`: z = stateless_normal(
[num_samples, latent_dim], seed=[seed, 0]), and x_sample ~ p(x|z) drawn with
the stateless seed [seed + 1, 1].

A conditional VAE (`num_classes=C`) exports the same signatures with one
more input, `label`: int32 class labels (B,) in [0, C), one per row of x
(of z for `decode`; num_samples of them for `sample`, each sample drawn
from p(x | z, y) for its label). Labels out of range or of another length
fail the request with an InvalidArgument error.

The graphs hold standard TensorFlow ops only: the export loads with
`tf.saved_model.load` (or TF Serving's C++ loader) in a process that never
imports keras_vae or TensorFlow Probability.

Beside the SavedModel, `assets.extra/` holds `tf_serving_warmup_requests`
(PredictionLog records TF Serving replays at load time, so the first real
request does not pay for graph initialisation) and `keras_vae_export.json`
(the shapes, likelihood and noise scheme of the export).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae.data import checks as data_checks

#: Importance samples per step of the `log_likelihood` loop. Peak memory of
#: one request is about batch * CHUNK_SIZE decoder outputs.
CHUNK_SIZE = 128
#: First half of the stateless seed of the `elbo` / `log_likelihood` noise.
NOISE_SEED = 0
SIGNATURES = (
    "encode", "decode", "reconstruct", "sample", "elbo", "log_likelihood",
)
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "keras_vae_export.json"
#: Batch sizes of the warm-up requests (one request per signature and size).
WARMUP_BATCH_SIZES = (1, 16)


# -- checks ---------------------------------------------------------------
def _check_model(model):
    from keras_vae.vae import VAE

    if not isinstance(model, VAE):
        raise TypeError(
            "export_saved_model expects a keras_vae.VAE (built with "
            "kv.VAE, kv.build_mlp_vae or kv.build_conv_vae, or loaded with "
            "keras.models.load_model). Received: an object of type "
            f"{type(model).__name__}."
        )
    parts = (model, model.encoder, model.decoder, model.likelihood)
    if not all(getattr(p, "built", False) for p in parts) or (
        not model.encoder.weights or not model.decoder.weights
    ):
        raise ValueError(
            "The VAE is not built: its encoder and decoder have no weights "
            "yet, so there is nothing to export. Build the networks with an "
            "input shape (keras.Input or the kv.build_* helpers) or call the "
            "model on a batch before exporting."
        )
    if model.likelihood.event_shape != model.event_shape:
        raise ValueError(
            "The likelihood head is bound to event_shape="
            f"{model.likelihood.event_shape} but the model's data shape is "
            f"{model.event_shape}."
        )


def _check_version(version):
    if version is None:
        return None
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    return data_checks.check_int(
        version, "version", alternative="None",
        what="TF Serving reads version directories as numbers")


def _existing_versions(base_dir):
    if not base_dir.is_dir():
        return []
    return sorted(
        int(p.name) for p in base_dir.iterdir() if p.name.isdigit()
    )


def _resolve_target(base_dir, version):
    base_dir = pathlib.Path(base_dir)
    if base_dir.exists() and not base_dir.is_dir():
        raise ValueError(
            f"`base_dir` must be a directory (TF Serving's model base path), "
            f"but {str(base_dir)!r} is a file. Choose a directory such as "
            "saved_models/mnist_vae."
        )
    versions = _existing_versions(base_dir)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    elif version in versions or (base_dir / str(version)).exists():
        raise ValueError(
            f"Version {version} already exists in {str(base_dir)!r} "
            f"(existing versions: {versions}). Exports never overwrite a "
            "version TF Serving may be serving: pass another version, or "
            "version=None for the next one "
            f"({(versions[-1] + 1) if versions else 1})."
        )
    return base_dir, version


# -- the serving functions -------------------------------------------------
def _noise_chunk(chunk_index, latent_dim):
    """The standard-normal vectors eps_k of chunk `chunk_index`, (C, L)."""
    seed = tf.stack(
        [tf.constant(NOISE_SEED, tf.int32), tf.cast(chunk_index, tf.int32)]
    )
    return tf.random.stateless_normal([CHUNK_SIZE, latent_dim], seed=seed)


def _serving_functions(model):
    """The signature functions of `model` and their input signatures.

    Each is a thin wrapper over the VAE's own graph methods (`encode_graph`,
    `reconstruct_graph`, `sample_graph`, `elbo_terms_at`,
    `log_likelihood_graph`), the ones its Python methods and the evaluation
    call, so the export computes the same numbers by construction; only the
    noise (common random numbers, see the module docstring) is the export's.
    """
    event_shape = tuple(model.event_shape)
    latent_dim = int(model.latent_dim)
    x_spec = tf.TensorSpec((None,) + event_shape, tf.float32, name="x")
    z_spec = tf.TensorSpec((None, latent_dim), tf.float32, name="z")
    n_spec = tf.TensorSpec((), tf.int32, name="num_samples")
    seed_spec = tf.TensorSpec((), tf.int32, name="seed")
    num_classes = getattr(model, "num_classes", None)
    # A conditional model's signatures take one more input, its labels.
    label_spec = ([] if num_classes is None
                  else [tf.TensorSpec((None,), tf.int32, name="label")])

    def _checked(x):
        # Signature wrappers do not enforce the declared shape; a convolution
        # would silently accept images of another size.
        return tf.ensure_shape(x, (None,) + event_shape)

    def _checked_k(num_samples, what):
        num_samples = tf.ensure_shape(num_samples, [])
        check = tf.debugging.assert_positive(num_samples, message=what)
        with tf.control_dependencies([check]):
            return tf.identity(num_samples)

    def _labels(label, rows, what):
        """None, or the labels checked against the rows and the classes."""
        if not label:
            return None
        label = tf.ensure_shape(label[0], (None,))
        checks = [
            tf.debugging.assert_equal(
                tf.shape(label)[0], rows,
                message=f"{what}: one label per row is needed"),
            tf.debugging.assert_non_negative(
                label, message=f"{what}: labels must be >= 0"),
            tf.debugging.assert_less(
                label, tf.constant(num_classes, tf.int32),
                message=f"{what}: labels must be < {num_classes}"),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(label)

    def encode(x, *label):
        x = _checked(x)
        return model.encode_graph(x, _labels(label, tf.shape(x)[0],
                                             "encode"))

    def decode(z, *label):
        z = tf.ensure_shape(z, (None, latent_dim))
        labels = _labels(label, tf.shape(z)[0], "decode")
        params = model._decode_params(z, labels=labels)
        return {
            "mean": tf.cast(model.likelihood.mean(params), tf.float32),
            "params": tf.cast(params, tf.float32),
        }

    def reconstruct(x, *label):
        x = _checked(x)
        labels = _labels(label, tf.shape(x)[0], "reconstruct")
        return {"reconstruction": model.reconstruct_graph(x, labels)}

    def sample(num_samples, seed, *label):
        num_samples = _checked_k(num_samples,
                                 "sample: num_samples must be >= 1")
        seed_pair = tf.stack([seed, tf.constant(0, tf.int32)])
        labels = _labels(label, num_samples, "sample")
        return model.sample_graph(num_samples, seed_pair, labels)

    def elbo(x, *label):
        x = _checked(x)
        labels = _labels(label, tf.shape(x)[0], "elbo")
        params = model.posterior_params(x, labels=labels)
        eps = _noise_chunk(0, latent_dim)[:1, None]  # eps_0, (1, 1, L)
        # (1, B, L) and (1, B)
        z, log_qz = model.posterior.sample_and_log_prob(params, eps)
        terms = model.elbo_terms_at(x, params, z, log_qz=log_qz,
                                    labels=labels)
        return {k: terms[k] for k in ("elbo", "reconstruction", "kl")}

    def log_likelihood(x, num_samples, *label):
        x = _checked(x)
        k_total = _checked_k(
            num_samples, "log_likelihood: num_samples (K) must be >= 1")
        labels = _labels(label, tf.shape(x)[0], "log_likelihood")
        params = model.posterior_params(x, labels=labels)

        def noise(c, kc):
            return _noise_chunk(c, latent_dim)[:kc, None]  # (kc, 1, L)

        value, _, _ = model.log_likelihood_graph(
            x, params, k_total, CHUNK_SIZE, noise, labels=labels
        )
        return {"log_likelihood": tf.cast(value, tf.float32)}

    return {
        "encode": (encode, [x_spec] + label_spec),
        "decode": (decode, [z_spec] + label_spec),
        "reconstruct": (reconstruct, [x_spec] + label_spec),
        "sample": (sample, [n_spec, seed_spec] + label_spec),
        "elbo": (elbo, [x_spec] + label_spec),
        "log_likelihood": (log_likelihood, [x_spec, n_spec] + label_spec),
    }


# -- warm-up and metadata -----------------------------------------------------
def _import_serving_protos():
    try:
        from tensorflow_serving.apis import model_pb2
        from tensorflow_serving.apis import predict_pb2
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError as err:
        raise ImportError(
            "Writing TF Serving warm-up requests needs the "
            "tensorflow-serving-api package: pip install "
            "tensorflow-serving-api (or pip install keras_vae[serving]), "
            "or export with warmup=False."
        ) from err
    return model_pb2, predict_pb2, prediction_log_pb2


def warmup_inputs(event_shape, latent_dim, batch_size=1,
                  num_classes=None):
    """The inputs of each signature used for warm-up requests (with a
    `label` of class 0 for every row when `num_classes` is set).

    Returns:
        dict signature name -> dict input name -> numpy array.
    """
    x = np.zeros((batch_size,) + tuple(event_shape), np.float32)
    z = np.zeros((batch_size, latent_dim), np.float32)
    n = np.array(batch_size, np.int32)
    if num_classes is not None:
        label = {"label": np.zeros(batch_size, np.int32)}
        return {
            name: {**inputs, **label} for name, inputs in warmup_inputs(
                event_shape, latent_dim, batch_size).items()
        }
    return {
        "encode": {"x": x},
        "decode": {"z": z},
        "reconstruct": {"x": x},
        "sample": {"num_samples": n, "seed": np.array(0, np.int32)},
        "elbo": {"x": x},
        "log_likelihood": {"x": x, "num_samples": np.array(CHUNK_SIZE,
                                                             np.int32)},
    }


def _write_warmup(path, model_name, event_shape, latent_dim, protos,
                  num_classes=None):
    model_pb2, predict_pb2, prediction_log_pb2 = protos
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch_size in WARMUP_BATCH_SIZES:
            for name, inputs in warmup_inputs(
                event_shape, latent_dim, batch_size, num_classes
            ).items():
                request = predict_pb2.PredictRequest(
                    model_spec=model_pb2.ModelSpec(
                        name=model_name, signature_name=name
                    )
                )
                for key, value in inputs.items():
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                log = prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
                writer.write(log.SerializeToString())


def _metadata(model, version, model_name):
    from keras_vae import __version__

    head = model.likelihood
    return {
        "model_name": model_name,
        "version": version,
        "keras_vae_version": __version__,
        "tensorflow_version": tf.__version__,
        "event_shape": list(model.event_shape),
        "latent_dim": int(model.latent_dim),
        "num_classes": getattr(model, "num_classes", None),
        "likelihood": keras.saving.serialize_keras_object(head)[
            "class_name"
        ],
        "likelihood_config": {
            k: v for k, v in head.get_config().items()
            if isinstance(v, (int, float, str, list, type(None)))
        },
        "signatures": list(SIGNATURES),
        "noise": {
            "chunk_size": CHUNK_SIZE,
            "seed": NOISE_SEED,
            "scheme": (
                "eps_k = stateless_normal([chunk_size, latent_dim], "
                "seed=[seed, k // chunk_size])[k % chunk_size], shared by "
                "every example; elbo uses eps_0, log_likelihood eps_0.."
                "eps_{K-1}"
            ),
        },
        "units": "nats per example, summed over data dimensions",
    }


# -- export -------------------------------------------------------------------
def export_saved_model(model, base_dir, version=None, warmup="auto",
                       model_name=None):
    """Writes `model` as a TF Serving SavedModel at `base_dir/<version>/`.

    The SavedModel is first written to a hidden temporary directory inside
    `base_dir` (TF Serving ignores names that are not numbers) and renamed
    into place once complete, so a failed export leaves nothing behind and a
    server never sees a half-written version.

    Args:
        model: a `keras_vae.VAE` (trained, or loaded from a .keras file).
        base_dir: str or path, the model's base path, e.g.
            "saved_models/mnist_vae"; created if missing.
        version: positive int, or None for one more than the highest
            existing version (1 for an empty base_dir). An existing version
            is never overwritten.
        warmup: True, False or "auto" (default): write
            `assets.extra/tf_serving_warmup_requests`. True needs
            tensorflow-serving-api; "auto" skips the file with a warning
            when that package is missing.
        model_name: name written in the warm-up requests' model spec;
            defaults to the name of `base_dir`.

    Returns:
        str, the path of the version directory.

    Raises:
        TypeError: `model` is not a keras_vae.VAE.
        ValueError: an unbuilt model, a `base_dir` that is a file, a bad or
            existing `version`.
        ImportError: warmup=True without tensorflow-serving-api.

    Examples:
        >>> vae = kv.build_mlp_vae((28, 28, 1), latent_dim=2)
        >>> path = kv.export_saved_model(vae, "saved_models/mnist_vae")
        >>> path
        'saved_models/mnist_vae/1'
        >>> served = tf.saved_model.load(path)
        >>> out = served.signatures["log_likelihood"](
        ...     x=tf.constant(x_test[:8]), num_samples=tf.constant(1000))
        >>> {name: tuple(value.shape) for name, value in out.items()}
        {'log_likelihood': (8,)}
    """
    _check_model(model)
    version = _check_version(version)
    if warmup not in (True, False, "auto"):
        raise ValueError(
            f"`warmup` must be True, False or 'auto'. Received: {warmup!r}"
        )
    base_dir, version = _resolve_target(base_dir, version)
    model_name = model_name or base_dir.resolve().name
    protos = None
    if warmup is True:
        protos = _import_serving_protos()
    elif warmup == "auto":
        try:
            protos = _import_serving_protos()
        except ImportError as err:
            warnings.warn(f"No warm-up requests written. {err}", stacklevel=2)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint is also published as "serving_default".
    for name, (fn, signature) in _serving_functions(model).items():
        archive.add_endpoint(name=name, fn=fn, input_signature=signature)

    created_base = not base_dir.exists()
    base_dir.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(
        tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base_dir)
    )
    target = base_dir / str(version)
    try:
        # mkdtemp makes the directory private (0700); a server running as
        # another user must be able to read the version.
        os.chmod(tmp, 0o755)
        archive.write_out(str(tmp), verbose=False)
        extra = tmp / "assets.extra"
        extra.mkdir(exist_ok=True)
        if protos is not None:
            _write_warmup(extra / WARMUP_FILE, model_name, model.event_shape,
                          model.latent_dim, protos,
                          getattr(model, "num_classes", None))
        (extra / METADATA_FILE).write_text(
            json.dumps(_metadata(model, version, model_name), indent=2)
        )
        if target.exists():
            raise ValueError(
                f"Version {version} appeared in {str(base_dir)!r} while "
                "exporting; not overwriting it. Export again."
            )
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_base and not any(base_dir.iterdir()):
            base_dir.rmdir()
        raise
    return str(target)


def export_run(run_dir, to, version=None, warmup="auto"):
    """Exports RUN_DIR/model.keras (from `keras-vae train`) to `to/<version>`.

    Raises:
        FileNotFoundError: `run_dir` holds no model.keras.
    """
    from keras_vae import runs

    run = runs.RunDirectory(run_dir)
    run.require_model()
    version = _check_version(version)
    _resolve_target(to, version)  # fail before loading the model
    model = run.load_model()
    return export_saved_model(model, to, version=version, warmup=warmup)


def write_models_config(root, container_root="/models", path=None):
    """Writes TF Serving's model config file for every model under `root`.

    Each directory of `root` holding at least one numbered version becomes a
    model of that name, with base path `container_root/<name>` (where the
    docker command mounts `root`).

    Returns:
        str, the path written (`root/models.config` by default).
    """
    root = pathlib.Path(root)
    names = sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and _existing_versions(p)
    ) if root.is_dir() else []
    if not names:
        raise ValueError(
            f"No exported model under {str(root)!r}: expected directories "
            "holding numbered versions (run export_saved_model first)."
        )
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{container_root.rstrip("/")}/{name}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for name in names
    )
    path = pathlib.Path(path) if path else root / "models.config"
    path.write_text("model_config_list {\n" + entries + "}\n")
    return str(path)


# -- serve-check --------------------------------------------------------------
def resolve_export_dir(path):
    """`saved_models/NAME` -> its highest version; `NAME/VERSION` as is."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = _existing_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"No SavedModel at {str(path)!r}: expected saved_model.pb there "
            "or numbered version directories (export with `keras-vae "
            "export RUN_DIR --to saved_models/NAME`)."
        )
    return path / str(versions[-1])


# The check runs in a fresh interpreter that imports TensorFlow only, as TF
# Serving would load the export: anything the graphs need from keras_vae or
# TensorFlow Probability would fail here.
_SERVE_CHECK_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import tensorflow as tf

    path = sys.argv[1]
    batch = int(sys.argv[2])
    loaded = tf.saved_model.load(path)
    rng = np.random.default_rng(0)
    report = {"signatures": {}}

    def make_inputs(fn):
        inputs = {}
        for name, spec in fn.structured_input_signature[1].items():
            if name == "label":
                inputs[name] = tf.zeros([batch], spec.dtype)
            elif spec.dtype.is_integer:
                value = {"num_samples": batch, "seed": 1}.get(name, 1)
                if name == "num_samples" and "x" in (
                    fn.structured_input_signature[1]
                ):
                    value = 16
                inputs[name] = tf.constant(value, spec.dtype)
            else:
                shape = [batch if d is None else d for d in spec.shape]
                inputs[name] = tf.constant(
                    rng.uniform(size=shape).astype(spec.dtype.as_numpy_dtype)
                )
        return inputs

    ok = True
    for name in sorted(loaded.signatures):
        fn = loaded.signatures[name]
        inputs = make_inputs(fn)
        entry = {"inputs": {
            k: [list(v.shape), v.dtype.name]
            + ([v.numpy().item()] if v.shape.rank == 0 else [])
            for k, v in inputs.items()
        }}
        try:
            start = time.perf_counter()
            out = fn(**inputs)
            first = time.perf_counter() - start
            start = time.perf_counter()
            out2 = fn(**inputs)
            second = time.perf_counter() - start
            entry["outputs"] = {
                k: [list(v.shape), v.dtype.name,
                    bool(np.all(np.isfinite(v.numpy())))]
                for k, v in out.items()
            }
            entry["repeatable"] = all(
                np.array_equal(out[k].numpy(), out2[k].numpy()) for k in out
            )
            entry["first_ms"] = 1000 * first
            entry["second_ms"] = 1000 * second
        except Exception as err:  # reported, not raised: check every one
            ok = False
            entry["error"] = f"{type(err).__name__}: {err}"
        report["signatures"][name] = entry
    report["ok"] = ok
    report["modules"] = {
        m: m in sys.modules
        for m in ("keras_vae", "tensorflow_probability", "keras")
    }
    print("SERVE_CHECK " + json.dumps(report))
    """
)


def serve_check(path, batch_size=4, timeout=300):
    """Loads an export in a fresh TensorFlow-only process and runs every
    signature on random inputs.

    Args:
        path: `saved_models/NAME` (highest version) or `NAME/VERSION`.
        batch_size: rows per request (and samples for `sample`).
        timeout: seconds before the check process is stopped.

    Returns:
        dict: "path", "ok" (bool), "load_seconds", "signatures" (per
        signature: input and output shapes and dtypes, whether the outputs
        are finite and repeat exactly, first- and second-call milliseconds,
        or "error"), "modules" (which of keras_vae, tensorflow_probability
        and keras the fresh process imported).

    Raises:
        FileNotFoundError: no SavedModel at `path`.
        RuntimeError: the check process failed to load the export.
    """
    export_dir = resolve_export_dir(path)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _SERVE_CHECK_SCRIPT,
         os.path.abspath(export_dir), str(int(batch_size))],
        capture_output=True, text=True, timeout=timeout, env=env,
        cwd=tempfile.gettempdir(),
    )
    elapsed = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith("SERVE_CHECK ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"Loading {str(export_dir)!r} with tf.saved_model.load in a fresh "
            f"TensorFlow process failed (exit {proc.returncode}):\n"
            + proc.stderr[-3000:]
        )
    report = json.loads(lines[-1][len("SERVE_CHECK "):])
    report["path"] = str(export_dir)
    report["process_seconds"] = elapsed
    return report


def format_serve_check(report):
    """A human-readable table of a `serve_check` report."""
    lines = [f"SavedModel: {report['path']}"]
    mods = report["modules"]
    lines.append(
        "fresh process imported: "
        + ", ".join(f"{m}={'yes' if v else 'no'}" for m, v in mods.items())
    )
    for name, entry in report["signatures"].items():
        ins = ", ".join(
            f"{k}={v[2]}" if len(v) == 3 else f"{k}{tuple(v[0])} {v[1]}"
            for k, v in entry["inputs"].items()
        )
        if "error" in entry:
            lines.append(f"  {name}({ins}): ERROR {entry['error']}")
            continue
        outs = ", ".join(
            f"{k}{tuple(s)} {d}" + ("" if finite else " NON-FINITE")
            for k, (s, d, finite) in entry["outputs"].items()
        )
        lines.append(
            f"  {name}({ins}) -> {outs}; first call "
            f"{entry['first_ms']:.1f} ms, second {entry['second_ms']:.1f} ms"
            + ("" if entry["repeatable"] else "; NOT repeatable")
        )
    lines.append("OK" if report["ok"] else "FAILED")
    return "\n".join(lines)


__all__ = [
    "CHUNK_SIZE",
    "NOISE_SEED",
    "SIGNATURES",
    "export_run",
    "export_saved_model",
    "format_serve_check",
    "resolve_export_dir",
    "serve_check",
    "warmup_inputs",
    "write_models_config",
]
