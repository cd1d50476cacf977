"""TF Serving clients against stand-in servers on 127.0.0.1.

No TF Serving binary runs here, so each transport talks to a stand-in from
serving_stand_ins.py (REST: an `http.server` that accepts only the
documented request bodies; gRPC: an in-process `PredictionService`). Both
evaluate the exported SavedModel, so client results are compared with the
signatures called directly.
"""

import http.server
import json
import sys

import numpy as np
import pytest
import tensorflow as tf
from serving_stand_ins import grpc_stand_in, rest_stand_in, url

import keras_vae as kv
from keras_vae import serving

MODEL = "tiny_vae"
EVENT_SHAPE = (4, 4, 1)
LATENT_DIM = 2


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    model = kv.build_mlp_vae(EVENT_SHAPE, LATENT_DIM, hidden_units=(8,),
                             likelihood="bernoulli", seed=0)
    path = kv.export_saved_model(
        model, tmp_path_factory.mktemp("sm") / MODEL, warmup=False)
    return tf.saved_model.load(path)


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    return (rng.uniform(size=(3,) + EVENT_SHAPE) > 0.5).astype("float32")


def _call(loaded, signature, **inputs):
    out = loaded.signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


# -- the REST stand-in --------------------------------------------------------
@pytest.fixture(scope="module")
def rest_server(loaded):
    with rest_stand_in(loaded, MODEL) as server:
        yield server


# -- request bodies -----------------------------------------------------------
def test_request_bodies_are_the_documented_rest_format():
    x = np.arange(4, dtype="float32").reshape(2, 2) / 3
    assert serving.predict_request_body("encode", instances=x) == {
        "signature_name": "encode",
        "instances": [[0.0, float(np.float32(1 / 3))],
                      [float(np.float32(2 / 3)), 1.0]],
    }
    body = serving.predict_request_body(
        "log_likelihood", inputs={"x": x, "num_samples": np.int32(5)})
    assert body == {"signature_name": "log_likelihood",
                    "inputs": {"x": x.tolist(), "num_samples": 5}}
    assert type(body["inputs"]["num_samples"]) is int
    # float32 values survive the JSON round trip exactly.
    back = json.loads(json.dumps(body))["inputs"]["x"]
    np.testing.assert_array_equal(np.asarray(back, "float32"), x)
    # A dict of same-length arrays becomes one object per example.
    body = serving.predict_request_body(
        "pairs", instances={"a": x, "b": np.array([7, 8])})
    assert body["instances"] == [{"a": x[0].tolist(), "b": 7},
                                 {"a": x[1].tolist(), "b": 8}]
    assert serving.predict_request_body(inputs=x) == {
        "signature_name": "serving_default", "inputs": x.tolist()}


def test_request_body_errors():
    with pytest.raises(ValueError, match="exactly one of `instances`"):
        serving.predict_request_body("encode")
    with pytest.raises(ValueError, match="exactly one of `instances`"):
        serving.predict_request_body("encode", instances=[1], inputs=[1])
    with pytest.raises(ValueError, match="columnar format"):
        serving.predict_request_body(
            "log_likelihood", instances={"x": np.zeros((2, 3)),
                                         "num_samples": 5})
    with pytest.raises(ValueError, match="signature_name"):
        serving.predict_request_body("", inputs=[1])
    with pytest.raises(ValueError, match="http"):
        serving.RestClient("localhost:8501", MODEL)
    with pytest.raises(ValueError, match="version"):
        serving.RestClient("http://h:1", MODEL, version=0)


def test_responses_parse_in_both_formats():
    rows = {"predictions": [{"a": [1, 2], "b": 3}, {"a": [4, 5], "b": 6}]}
    out = serving.parse_predict_response(rows)
    np.testing.assert_array_equal(out["a"], [[1, 2], [4, 5]])
    np.testing.assert_array_equal(out["b"], [3, 6])
    np.testing.assert_array_equal(
        serving.parse_predict_response({"predictions": [1.5, 2.5]}),
        [1.5, 2.5])
    out = serving.parse_predict_response({"outputs": {"a": [[1.0]]}})
    np.testing.assert_array_equal(out["a"], [[1.0]])
    with pytest.raises(ValueError, match="'predictions' or 'outputs'"):
        serving.parse_predict_response({"result": 1})


# -- REST client against the stand-in --------------------------------------
def test_rest_client_matches_signatures(rest_server, loaded, x):
    client = serving.RestClient(url(rest_server), MODEL)
    rest_server.log.clear()

    out = client.encode(x)
    ref = _call(loaded, "encode", x=x)
    for k in ("z_mean", "z_log_var"):
        np.testing.assert_allclose(out[k], ref[k], rtol=1e-6)
    # Row format, as the REST documentation's first example.
    rows = client.predict("encode", instances=x)
    np.testing.assert_allclose(rows["z_mean"], ref["z_mean"], rtol=1e-6)
    scores = client.log_likelihood(x, num_samples=300)
    np.testing.assert_allclose(
        scores,
        _call(loaded, "log_likelihood", x=x,
              num_samples=np.int32(300))["log_likelihood"], rtol=1e-6)
    samples = client.sample(4, seed=3)
    np.testing.assert_array_equal(samples["x_sample"],
                                  client.sample(4, seed=3)["x_sample"])
    np.testing.assert_allclose(
        samples["x_mean"],
        _call(loaded, "sample", num_samples=np.int32(4),
              seed=np.int32(3))["x_mean"], rtol=1e-6)
    assert client.reconstruct(x).shape == x.shape
    assert client.decode(np.zeros((2, LATENT_DIM)))["mean"].shape == (
        (2,) + EVENT_SHAPE)
    assert client.elbo(x)["elbo"].shape == (3,)
    assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"

    posts = [entry for entry in rest_server.log if entry[0] == "POST"]
    assert all(path == f"/v1/models/{MODEL}:predict"
               for _, path, _, _ in posts)
    assert all(ctype == "application/json" for *_, ctype in posts)
    assert posts[0][2] == {"signature_name": "encode",
                           "inputs": {"x": x.tolist()}}
    assert posts[1][2] == {"signature_name": "encode",
                           "instances": x.tolist()}
    assert posts[2][2] == {"signature_name": "log_likelihood",
                           "inputs": {"x": x.tolist(), "num_samples": 300}}
    assert posts[3][2] == {"signature_name": "sample",
                           "inputs": {"num_samples": 4, "seed": 3}}


def test_rest_client_versionedurl(rest_server, x):
    rest_server.log.clear()
    client = serving.RestClient(url(rest_server) + "/", MODEL, version=3)
    client.elbo(x)
    assert rest_server.log[-1][1] == f"/v1/models/{MODEL}/versions/3:predict"


def test_rest_errors_name_the_signature(rest_server, x):
    client = serving.RestClient(url(rest_server), MODEL)
    with pytest.raises(serving.ServingError,
                       match=r"(?s)'encode' signature .*HTTP 400"
                             r".*not compatible"
                       ) as info:
        client.encode(np.zeros((2, 8, 8, 1)))
    assert info.value.signature_name == "encode"
    assert info.value.status == 400
    with pytest.raises(serving.ServingError, match="'decode'.*HTTP 400"):
        client.predict("decode", inputs={"z": [["a", "b"]]})  # wrong dtype
    with pytest.raises(serving.ServingError,
                       match="'nope' signature.*not found"):
        client.predict("nope", inputs={"x": x})
    with pytest.raises(serving.ServingError, match="HTTP 404.*Servable"):
        serving.RestClient(url(rest_server), "other").encode(x)
    # A closed port: nothing listens there.
    closed = http.server.HTTPServer(("127.0.0.1", 0),
                                    http.server.BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(serving.ServingError,
                       match="Could not reach .*'log_likelihood'"):
        serving.RestClient(f"http://127.0.0.1:{port}", MODEL,
                           timeout=5).log_likelihood(x, 10)


# -- gRPC ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def grpc_server(loaded):
    with grpc_stand_in(loaded, MODEL) as (target, service):
        yield target, service


def test_grpc_client_matches_signatures(grpc_server, loaded, x):
    target, service = grpc_server
    with serving.GrpcClient(target, MODEL, version=2) as client:
        out = client.encode(x)
        scores = client.log_likelihood(x, num_samples=300)
        samples = client.sample(4, seed=3)
    ref = _call(loaded, "encode", x=x)
    np.testing.assert_array_equal(out["z_mean"], ref["z_mean"])
    np.testing.assert_array_equal(
        scores, _call(loaded, "log_likelihood", x=x,
                      num_samples=np.int32(300))["log_likelihood"])
    np.testing.assert_array_equal(
        samples["x_sample"],
        _call(loaded, "sample", num_samples=np.int32(4),
              seed=np.int32(3))["x_sample"])
    request = service.requests[1]
    assert request.model_spec.name == MODEL
    assert request.model_spec.signature_name == "log_likelihood"
    assert request.model_spec.version.value == 2
    assert request.inputs["x"].dtype == tf.float32.as_datatype_enum
    assert request.inputs["num_samples"].dtype == tf.int32.as_datatype_enum
    assert list(request.inputs["num_samples"].tensor_shape.dim) == []


def test_grpc_errors_name_the_signature(grpc_server, x):
    target, _ = grpc_server
    with serving.GrpcClient(target, MODEL) as client:
        with pytest.raises(serving.ServingError,
                           match=r"(?s)'encode'.*INVALID_ARGUMENT"
                                 r".*not compatible"
                           ) as info:
            client.encode(np.zeros((2, 8, 8, 1)))
        assert info.value.status == "INVALID_ARGUMENT"
        with pytest.raises(serving.ServingError,
                           match="(?s)'encode'.*float tensor but is a double"):
            client.predict("encode", inputs={"x": x.astype("float64")})
        with pytest.raises(ValueError, match="dict input name"):
            client.predict("encode", inputs=x)
    with serving.GrpcClient(target, "other") as client:
        with pytest.raises(serving.ServingError, match="'elbo'.*NOT_FOUND"):
            client.elbo(x)


def test_grpc_client_without_serving_api_names_pip_command(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("tensorflow_serving")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    with pytest.raises(ImportError,
                       match="pip install tensorflow-serving-api"):
        serving.GrpcClient("127.0.0.1:1", MODEL)


def test_rest_client_sends_a_conditional_models_labels(tmp_path, x):
    """Each client method of a conditional model's export sends `label`
    beside its other inputs, and the served numbers are the model's."""
    model = kv.build_mlp_vae(EVENT_SHAPE, LATENT_DIM, hidden_units=(8,),
                             num_classes=3, seed=0)
    loaded = tf.saved_model.load(kv.export_saved_model(
        model, tmp_path / MODEL, warmup=False))
    with rest_stand_in(loaded, MODEL) as server:
        client = serving.RestClient(url(server), MODEL)
        labels = np.array([0, 2, 1])
        np.testing.assert_allclose(client.encode(x, labels=labels)["z_mean"],
                                   model.encode(x, labels=labels)[0],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(client.reconstruct(x, labels=labels),
                                   model.reconstruct(x, labels=labels),
                                   rtol=1e-5, atol=1e-6)
        z = np.random.default_rng(1).normal(size=(3, LATENT_DIM))
        np.testing.assert_allclose(
            client.decode(z, labels=labels)["mean"],
            np.asarray(model.decode(z, labels=labels).mean()), rtol=1e-5,
            atol=1e-6)
        np.testing.assert_allclose(
            client.sample(3, seed=4, labels=labels)["x_mean"],
            model.sample(3, seed=4, labels=labels), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            client.log_likelihood(x, 200, labels=labels),
            _call(loaded, "log_likelihood", x=x, num_samples=np.int32(200),
                  label=labels.astype("int32"))["log_likelihood"],
            rtol=1e-6)
        assert client.elbo(x, labels=labels)["elbo"].shape == (3,)
        posts = [entry[2] for entry in server.log if entry[0] == "POST"]
        assert posts[0] == {"signature_name": "encode", "inputs": {
            "x": x.tolist(), "label": [0, 2, 1]}}
        with pytest.raises(serving.ServingError, match="HTTP 400"):
            client.encode(x)  # the export needs the label
