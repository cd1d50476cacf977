"""Stand-ins for TF Serving, for tests: no TF Serving binary runs here.

`rest_stand_in` is an `http.server` that accepts only the request bodies TF
Serving's REST API documents and answers as TF Serving does
({"predictions"} / {"outputs"} / {"error"}); `grpc_stand_in` is an
in-process gRPC server implementing `PredictionService` from
tensorflow-serving-api. Both evaluate a loaded SavedModel's signatures, so
what a client gets back can be compared with the signatures called
directly. Used by test_serving.py and by the docstring examples of
`keras_vae.serving` (test_docstring_examples.py), which talk to TF Serving's
default ports.
"""

import concurrent.futures
import contextlib
import http.server
import json
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


class RestHandler(http.server.BaseHTTPRequestHandler):
    """Answers like TF Serving's REST API; see its documentation: predict at
    /v1/models/NAME[/versions/N]:predict with {"signature_name", "instances"}
    or {"signature_name", "inputs"}; errors as {"error": message}."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    @property
    def _model(self):  # the served model's name: server.model_name
        return self.server.model_name

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.log.append(("GET", self.path, None, None))
        if self.path == f"/v1/models/{self._model}":
            return self._reply(200, {"model_version_status": [{
                "version": "1", "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}}]})
        return self._reply(404, {"error": "Not found"})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.loads(raw)
        self.server.log.append(
            ("POST", self.path, body, self.headers.get("Content-Type")))
        match = re.fullmatch(r"/v1/models/([^/:]+)(/versions/\d+)?:predict",
                             self.path)
        if not match or match.group(1) != self._model:
            name = match.group(1) if match else self.path
            return self._reply(404, {
                "error": f"Servable not found for request: Latest({name})"})
        if set(body) - {"signature_name"} not in ({"instances"},
                                                  {"inputs"}):
            return self._reply(400, {"error": "JSON Value: ... Missing "
                                              "'instances' or 'inputs' key"})
        signature = body.get("signature_name", "serving_default")
        if signature not in self.server.loaded.signatures:
            return self._reply(400, {
                "error": f'Serving signature name: "{signature}" not found '
                         "in signature def"})
        fn = self.server.loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        row_format = "instances" in body
        data = body["instances"] if row_format else body["inputs"]
        if row_format:
            if data and isinstance(data[0], dict):
                data = {k: [row[k] for row in data] for k in data[0]}
            else:
                data = {next(iter(specs)): data}
        elif not isinstance(data, dict):
            data = {next(iter(specs)): data}
        try:
            if set(data) != set(specs):
                raise ValueError(f"expected inputs {sorted(specs)}, got "
                                 f"{sorted(data)}")
            out = fn(**{k: tf.constant(np.asarray(v), dtype=specs[k].dtype)
                        for k, v in data.items()})
        except Exception as err:  # TF Serving reports any failure as 400
            return self._reply(400, {"error": str(err)})
        out = {k: v.numpy().tolist() for k, v in out.items()}
        if row_format:
            n = len(next(iter(out.values())))
            rows = ([{k: v[i] for k, v in out.items()} for i in range(n)]
                    if len(out) > 1 else next(iter(out.values())))
            return self._reply(200, {"predictions": rows})
        return self._reply(200, {
            "outputs": out if len(out) > 1 else next(iter(out.values()))})


class PredictionService(
        prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, loaded, model_name):
        self.loaded = loaded
        self.model_name = model_name
        self.requests = []

    def Predict(self, request, context):
        self.requests.append(request)
        if request.model_spec.name != self.model_name:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          "Servable not found for request: "
                          f"Latest({request.model_spec.name})")
        name = request.model_spec.signature_name or "serving_default"
        if name not in self.loaded.signatures:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f'Serving signature name: "{name}" not found')
        try:
            out = self.loaded.signatures[name](**{
                k: tf.constant(tf.make_ndarray(v))
                for k, v in request.inputs.items()})
        except Exception as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for k, v in out.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
        return response


@contextlib.contextmanager
def rest_stand_in(loaded, model_name, port=0):
    """A REST stand-in serving `loaded` as `model_name` on 127.0.0.1:`port`
    (0: a free port) while the block runs. Yields the server: its URL is
    `url(server)`, and `server.log` lists every request as (method, path,
    body, content type). Raises OSError when the port is taken."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                             RestHandler)
    server.loaded, server.model_name, server.log = loaded, model_name, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server):
    """The base URL of a REST stand-in."""
    return f"http://127.0.0.1:{server.server_address[1]}"


@contextlib.contextmanager
def grpc_stand_in(loaded, model_name, port=0):
    """A gRPC `PredictionService` stand-in serving `loaded` as `model_name`
    on 127.0.0.1:`port` (0: a free port) while the block runs. Yields
    (target, service); `service.requests` lists the requests received.
    Raises RuntimeError when the port is taken."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    service = PredictionService(loaded, model_name)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        service, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if not bound:  # older grpc returns 0 instead of raising
        raise RuntimeError(f"could not bind 127.0.0.1:{port}")
    server.start()
    try:
        yield f"127.0.0.1:{bound}", service
    finally:
        server.stop(None)
