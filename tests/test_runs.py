"""The run directory type: what it writes, what it reads, how it fails."""

import json
import os
import pathlib

import numpy as np
import pytest

import keras_vae as kv
from keras_vae import runs

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_json_round_trip_and_atomic_failure(tmp_path):
    run = runs.RunDirectory(tmp_path / "run")
    assert run.read_metrics() == {} and run.read_config() == {}
    path = run.write_json(run.METRICS, {"dataset": "mnist", "test": [1.5]})
    assert json.loads(pathlib.Path(path).read_text()) == {
        "dataset": "mnist", "test": [1.5]}
    assert run.read_metrics()["test"] == [1.5]
    with pytest.raises(TypeError):
        run.write_json(run.METRICS, {"bad": object()})
    # The earlier file is intact and no temporary file is left.
    assert run.read_metrics()["dataset"] == "mnist"
    assert sorted(os.listdir(run.path)) == ["metrics.json"]
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        run.read_config()


def test_model_round_trip(tmp_path):
    vae = kv.build_mlp_vae((4,), 2, hidden_units=(4,), seed=0)
    run = runs.RunDirectory(tmp_path)
    run.save_model(vae)
    assert os.listdir(tmp_path) == ["model.keras"]
    x = np.random.default_rng(0).uniform(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(run.load_model().encode(x)[0],
                               vae.encode(x)[0], rtol=1e-6)


def test_unfinished_runs_are_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runs.RunDirectory(tmp_path / "nope").require_finished()
    run = runs.RunDirectory(tmp_path)
    run.write_json(run.METRICS, {})
    with pytest.raises(FileNotFoundError, match="model.keras.*finished"):
        run.require_finished()
    with pytest.raises(FileNotFoundError, match="No model.keras"):
        run.load_model()


def test_no_other_module_parses_the_run_directory_by_hand():
    # The file names of a run directory appear in code only in runs.py
    # (docstrings and messages may name them).
    pattern = ('"metrics.json"', '"config.json"', '"history.json"',
               '"model.keras"')
    for path in sorted((REPO / "keras_vae").rglob("*.py")) + sorted(
            (REPO / "examples").glob("*.py")):
        if path.name == "runs.py":
            continue
        code = [line for line in path.read_text().splitlines()
                if not line.strip().startswith(("#", '"', "'"))]
        used = [p for p in pattern if any(
            "join(" in line and p in line or f"/ {p}" in line
            for line in code)]
        assert not used, f"{path.name} builds run-directory paths: {used}"
