"""Tests of keras_vae/__init__.py: the public names and the import paths
scripts use, which are the modules where the code lives (not copies)."""

import importlib
import pathlib

import pytest

import keras_vae as kv


@pytest.mark.parametrize(
    "path, home",
    [
        ("keras_vae.datasets", "keras_vae/data/__init__.py"),
        ("keras_vae.resume", "keras_vae/data/stream.py"),
        ("keras_vae.threads", "keras_vae/training/threads.py"),
        ("keras_vae.optimizers", "keras_vae/training/optimizers.py"),
        ("keras_vae.distribute", "keras_vae/training/distribute.py"),
    ],
)
def test_old_import_paths_are_the_modules_themselves(path, home):
    module = importlib.import_module(path)
    assert pathlib.Path(module.__file__).as_posix().endswith(home)
    assert getattr(kv, path.split(".")[1]) is module
    # Setting an attribute through one name sets it for the code that
    # lives in the module (a copy would not see it).
    home_module = importlib.import_module(
        home[:-3].replace("/", ".").removesuffix(".__init__")
    )
    assert home_module is module


def test_the_design_contract_names_resolve():
    names = [
        kv.VAE, kv.Sampling, kv.build_mlp_vae, kv.build_conv_vae,
        kv.build_mlp_encoder, kv.build_mlp_decoder, kv.build_conv_encoder,
        kv.build_conv_decoder, kv.export_saved_model, kv.likelihoods.get,
        kv.likelihoods.Gaussian, kv.priors.StandardNormal,
        kv.posteriors.DiagonalGaussian, kv.datasets.load,
        kv.datasets.make_dataset, kv.datasets.binarize_once,
        kv.datasets.describe_protocol, kv.resume.GraphStream,
        kv.resume.make_step_dataset, kv.resume.steps_per_epoch,
        kv.callbacks.LinearKLWarmup, kv.callbacks.BackupAndRestore,
        kv.optimizers.FusedAdam, kv.threads.configure,
        kv.distribute.get_strategy, kv.evaluation.log_likelihood,
        kv.evaluation.refine, kv.objectives.iwae_bound,
    ]
    assert all(callable(n) for n in names)
    for name in kv.__all__:
        assert hasattr(kv, name), name


def test_every_kv_name_the_readme_and_manual_use_resolves():
    """A name the README or the manual tells users to call (kv.a.b...)
    exists."""
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    text = "".join(p.read_text() for p in [root / "README.md",
                                           *sorted((root / "docs").glob("*.md"))])
    names = sorted(set(re.findall(r"\bkv(?:\.[A-Za-z_][A-Za-z0-9_]*)+",
                                  text)))
    assert len(names) > 40
    missing = []
    for name in names:
        obj = kv
        for part in name.split(".")[1:]:
            if not hasattr(obj, part):
                missing.append(name)
                break
            obj = getattr(obj, part)
    assert not missing, missing
