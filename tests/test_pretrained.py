"""keras_vae.pretrained: the registry, the hash check, where files are
looked for, and the shipped registry against the shipped files."""

import hashlib
import json

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import cli
from keras_vae import pretrained


def _tiny_run(directory, seed=0):
    keras.utils.set_random_seed(seed)
    vae = kv.build_mlp_vae((4,), 2, hidden_units=(8,), seed=seed)
    vae.compile(optimizer="adam")
    vae.fit(np.random.default_rng(seed).integers(0, 2, (16, 4))
            .astype("float32"), epochs=1, batch_size=8, verbose=0)
    directory.mkdir(parents=True)
    vae.save(directory / "model.keras")
    return vae


def test_register_locate_load_round_trip(tmp_path):
    vae = _tiny_run(tmp_path / "models" / "tiny")
    registry = tmp_path / "registry.json"
    entry = pretrained.register("tiny", tmp_path / "models" / "tiny",
                                registry=registry, protocol="toy")
    digest = hashlib.sha256(
        (tmp_path / "models" / "tiny" / "model.keras").read_bytes())
    assert entry["sha256"] == digest.hexdigest()
    assert json.loads(registry.read_text())["models"]["tiny"]["protocol"] \
        == "toy"
    assert pretrained.available(registry) == ["tiny"]
    loaded = pretrained.load("tiny", directory=tmp_path / "models",
                             registry=registry)
    x = np.eye(4, dtype="float32")
    np.testing.assert_allclose(loaded.encode(x)[0], vae.encode(x)[0],
                               rtol=1e-6)


def test_a_file_that_differs_from_its_hash_is_refused(tmp_path):
    _tiny_run(tmp_path / "a" / "tiny", seed=0)
    registry = tmp_path / "registry.json"
    pretrained.register("tiny", tmp_path / "a" / "tiny", registry=registry)
    # Another model under the same name: same size class, other bytes.
    _tiny_run(tmp_path / "b" / "tiny", seed=1)
    with pytest.raises(ValueError, match="is not the registered 'tiny'"):
        pretrained.load("tiny", directory=tmp_path / "b", registry=registry)


def test_unknown_names_and_missing_files_say_where_to_look(tmp_path,
                                                           monkeypatch):
    registry = tmp_path / "registry.json"
    with pytest.raises(ValueError, match="Unknown pretrained model 'nope'"):
        pretrained.load("nope", registry=registry)
    registry.write_text(json.dumps({"models": {"gone": {"sha256": "0"}}}))
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as err:
        pretrained.locate("gone", directory=tmp_path / "arg",
                          registry=registry)
    message = str(err.value)
    assert str(tmp_path / "arg" / "gone" / "model.keras") in message
    assert str(tmp_path / "env" / "gone" / "model.keras") in message
    assert pretrained.ENV_DIR in message
    registry.write_text(json.dumps(["not", "a", "registry"]))
    with pytest.raises(ValueError, match="must hold an object"):
        pretrained.available(registry)
    with pytest.raises(ValueError, match="one path component"):
        pretrained.register("../x", tmp_path, registry=registry)


def test_every_shipped_model_matches_its_recorded_hash_and_protocol():
    # The package's registry and benchmarks/pretrained/ move together: a
    # re-trained or edited model without a new registry entry fails here.
    models = pretrained.read_registry()
    for name, entry in models.items():
        path = pretrained.CHECKOUT_DIR / name / pretrained.MODEL_FILE
        assert path.is_file(), f"{name}: {path} is not in the checkout"
        assert pretrained.sha256(path) == entry["sha256"], name
        assert "dynamic binarization" in entry["protocol"], name
        assert entry["log_likelihood"]["num_samples"] == 5000, name
    shipped = {path.parent.name for path in
               pretrained.CHECKOUT_DIR.glob(f"*/{pretrained.MODEL_FILE}")}
    assert shipped <= set(models), (
        f"run directories without a registry entry: {shipped - set(models)}")


@pytest.mark.parametrize("name", pretrained.available())
def test_every_shipped_model_rescores_to_its_recorded_spot_check(
        name, data_dir, tmp_path, capsys):
    # `keras-vae evaluate NAME` on the first test images, as a user would
    # run it, gives the number recorded when the model was finished.
    check = pretrained.info(name)["check"]
    assert cli.main(["evaluate", name, "--num-samples",
                     str(check["num_samples"]), "--max-examples",
                     str(check["test_examples"]), "--seed",
                     str(check["seed"]), "--out", str(tmp_path),
                     "--progress", "0"]) == 0
    assert "SHA-256 checked" in capsys.readouterr().out
    result = json.loads((tmp_path / "evaluation.json").read_text())
    assert result["log_likelihood"]["mean"] == pytest.approx(
        check["mean"], abs=0.01)
    assert "dynamic binarization" in result["protocol"]
