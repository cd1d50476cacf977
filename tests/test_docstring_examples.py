"""Every `>>>` example in keras_vae's docstrings runs, and prints what it
says it prints.

The examples are written for a reader who has just loaded MNIST, so they
run with these names defined (besides the module's own globals): `kv`,
`keras`, `tf`, `tfp`, `np`, and `x_train`, `y_train`, `x_test`, `y_test`,
1,000 and 200 real MNIST digits as `kv.datasets.load("mnist")` gives them
(grey float32 in [0, 1], shape (N, 28, 28, 1)). Output is compared with
doctest's ELLIPSIS and NORMALIZE_WHITESPACE. The examples of
`keras_vae.serving` talk to TF Serving at its default ports; here the
stand-in servers of serving_stand_ins.py answer there, serving an exported
MNIST VAE.
"""

import contextlib
import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = ["keras_vae"] + [
        info.name for info in pkgutil.walk_packages(kv.__path__, "keras_vae.")]
    return [importlib.import_module(name) for name in sorted(set(names))]


def _examples():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for module in _modules():
        for test in finder.find(module, module.__name__):
            # An object re-exported by another module is found there too.
            if test.examples and test.name not in found and (
                    test.filename or "").startswith(kv.__path__[0]):
                found[test.name] = test
    return [found[name] for name in sorted(found)]


EXAMPLES = _examples()


def test_the_collector_finds_the_examples():
    names = {t.name for t in EXAMPLES}
    # A few that must be there: a class, a method, a function, a module.
    for name in ("keras_vae.vae.VAE", "keras_vae.vae.VAE.sample",
                 "keras_vae.priors.get", "keras_vae.progress"):
        assert name in names, sorted(names)
    assert sum(len(t.examples) for t in EXAMPLES) >= 80


@pytest.fixture(scope="module")
def reader_globals(data_dir):
    (x_train, y_train), (x_test, y_test) = kv.datasets.load(
        "mnist", data_dir=data_dir)
    return {
        "kv": kv, "keras": keras, "tf": tf, "tfp": tfp, "np": np,
        "x_train": x_train[:1000], "y_train": y_train[:1000],
        "x_test": x_test[:200], "y_test": y_test[:200],
    }


@pytest.fixture(scope="module")
def tf_serving(tmp_path_factory):
    """The servers the serving examples talk to: "mnist_vae" (an MNIST VAE
    with 50 latent units) behind serving_stand_ins.py's stand-ins for TF Serving's
    REST API on localhost:8501 and its gRPC API on localhost:8500, the
    ports TF Serving uses by default."""
    from serving_stand_ins import grpc_stand_in, rest_stand_in

    vae = kv.build_mlp_vae((28, 28, 1), 50, seed=0)
    loaded = tf.saved_model.load(kv.export_saved_model(
        vae, tmp_path_factory.mktemp("served") / "mnist_vae", warmup=False))
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(rest_stand_in(loaded, "mnist_vae", 8501))
        except OSError as err:
            pytest.skip(f"port 8501 is taken ({err}); the serving examples "
                        "talk to localhost:8501")
        try:
            stack.enter_context(grpc_stand_in(loaded, "mnist_vae", 8500))
        except RuntimeError as err:
            pytest.skip(f"port 8500 is taken ({err}); the gRPC example "
                        "talks to localhost:8500")
        yield


@pytest.mark.parametrize("test", EXAMPLES, ids=lambda t: t.name)
def test_docstring_example_runs(test, reader_globals, tmp_path, monkeypatch,
                                request):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    if test.name.startswith("keras_vae.serving"):
        request.getfixturevalue("tf_serving")
    keras.utils.set_random_seed(0)
    test = doctest.DocTest(
        test.examples, {**test.globs, **reader_globals}, test.name,
        test.filename, test.lineno, test.docstring)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
