"""Clients for a VAE exported by `export_saved_model`, served by TF Serving.

Two transports, the same methods:

- `RestClient` speaks TF Serving's REST predict API (port 8501) with the
  standard library only (`urllib`, `json`):
  `POST /v1/models/<name>[/versions/<v>]:predict` with a JSON body
  `{"signature_name": ..., "instances": [...]}` (row format: one entry per
  example, all inputs sharing the batch dimension) or
  `{"signature_name": ..., "inputs": {...}}` (columnar format: one entry per
  input, needed for the scalar `num_samples` and `seed` inputs). The server
  answers `{"predictions": ...}`, `{"outputs": ...}` or `{"error": ...}`.
- `GrpcClient` calls `PredictionService/Predict` (port 8500) through
  `tensorflow-serving-api`, imported only when the client is created.

Both raise `ServingError`, naming the signature, the model and the server's
message, when the server rejects a request (wrong shape or dtype, unknown
signature or model) or cannot be reached.

Examples:
    >>> client = RestClient("http://localhost:8501", "mnist_vae")
    >>> scores = client.log_likelihood(x_test[:16], num_samples=1000)
    >>> z = client.encode(x_test[:16])["z_mean"]
    >>> scores.shape, z.shape  # nats per image; a 50-d latent mean each
    ((16,), (16, 50))
"""

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from keras_vae.data import checks


class ServingError(RuntimeError):
    """A TF Serving request failed.

    Attributes:
        signature_name: the signature the request called.
        model_name: the served model's name.
        status: HTTP status or gRPC status code name, None when the server
            was not reached.
        server_message: the server's error message, if any.
    """

    def __init__(self, message, signature_name=None, model_name=None,
                 status=None, server_message=None):
        super().__init__(message)
        self.signature_name = signature_name
        self.model_name = model_name
        self.status = status
        self.server_message = server_message


def _check_name(value, what):
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"`{what}` must be a non-empty string. Received: {what}={value!r}"
        )
    return value


def _check_version(version):
    if version is None:
        return None
    return checks.check_int(version, "version",
                            alternative="None (the latest)")


def _jsonable(value):
    """numpy / TensorFlow values -> nested lists and Python numbers."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def predict_request_body(signature_name="serving_default", instances=None,
                         inputs=None):
    """The JSON body of a TF Serving REST predict request, as a dict.

    Exactly one of `instances` (row format) and `inputs` (columnar format):

    - `instances`: an array (B, ...) for a one-input signature (each row
      becomes one instance), a list of per-example values or dicts, or a
      dict of arrays sharing the batch dimension (split into one
      {name: row} object per example);
    - `inputs`: a dict name -> array or scalar, or one array for a
      one-input signature.

    Raises:
        ValueError: both or neither given; a dict of `instances` whose
            arrays do not share the batch dimension.
    """
    _check_name(signature_name, "signature_name")
    if (instances is None) == (inputs is None):
        raise ValueError(
            "Pass exactly one of `instances` (row format) and `inputs` "
            "(columnar format). Received: "
            f"instances={'set' if instances is not None else None}, "
            f"inputs={'set' if inputs is not None else None}"
        )
    body = {"signature_name": signature_name}
    if inputs is not None:
        if isinstance(inputs, dict):
            body["inputs"] = {k: _jsonable(v) for k, v in inputs.items()}
        else:
            body["inputs"] = _jsonable(inputs)
        return body
    if isinstance(instances, dict):
        arrays = {k: np.asarray(_jsonable(v)) for k, v in instances.items()}
        sizes = {k: (v.shape[0] if v.ndim else None)
                 for k, v in arrays.items()}
        if None in sizes.values() or len(set(sizes.values())) != 1:
            raise ValueError(
                "Row format (`instances`) needs every input to share the "
                f"batch dimension; received first dimensions {sizes}. Send "
                "scalar inputs (num_samples, seed) with `inputs=` "
                "(columnar format) instead."
            )
        n = next(iter(sizes.values()))
        body["instances"] = [
            {k: v[i].tolist() for k, v in arrays.items()} for i in range(n)
        ]
        return body
    body["instances"] = _jsonable(instances)
    return body


def parse_predict_response(response):
    """Numpy values from a TF Serving REST predict response (a dict).

    `{"predictions": [...]}` (row format) becomes an array, or a dict of
    arrays when each prediction is an object of named outputs;
    `{"outputs": ...}` (columnar format) becomes an array or a dict of
    arrays.
    """
    if "predictions" in response:
        rows = response["predictions"]
        if rows and isinstance(rows[0], dict):
            return {k: np.asarray([row[k] for row in rows])
                    for k in rows[0]}
        return np.asarray(rows)
    if "outputs" in response:
        outputs = response["outputs"]
        if isinstance(outputs, dict):
            return {k: np.asarray(v) for k, v in outputs.items()}
        return np.asarray(outputs)
    raise ValueError(
        "A TF Serving predict response holds 'predictions' or 'outputs'. "
        f"Received keys: {sorted(response)}"
    )


class _SignatureMethods:
    """One method per signature of `export_saved_model`, columnar inputs."""

    def predict(self, signature_name="serving_default", inputs=None,
                **kwargs):
        raise NotImplementedError

    @staticmethod
    def _float32(x):
        return np.asarray(x, dtype=np.float32)

    @staticmethod
    def _with_labels(inputs, labels):
        """A conditional model's export takes `label`, int32 (B,)."""
        if labels is not None:
            inputs["label"] = np.asarray(labels, dtype=np.int32).reshape(-1)
        return inputs

    def encode(self, x, labels=None):
        """x (B, *event_shape) -> {"z_mean", "z_log_var"}. `labels` (B,)
        for a conditional model, as for every method here."""
        return self.predict("encode", inputs=self._with_labels(
            {"x": self._float32(x)}, labels))

    def decode(self, z, labels=None):
        """z (B, latent_dim) -> {"mean", "params"}."""
        return self.predict("decode", inputs=self._with_labels(
            {"z": self._float32(z)}, labels))

    def reconstruct(self, x, labels=None):
        """x -> the mean of p(x | z = z_mean), (B, *event_shape)."""
        out = self.predict("reconstruct", inputs=self._with_labels(
            {"x": self._float32(x)}, labels))
        return out["reconstruction"] if isinstance(out, dict) else out

    def sample(self, num_samples, seed=0, labels=None):
        """num_samples draws from the prior -> {"z", "x_mean", "x_sample"};
        the same seed gives the same samples (`labels`, num_samples of
        them, pick the classes of a conditional model)."""
        return self.predict("sample", inputs=self._with_labels({
            "num_samples": np.int32(num_samples), "seed": np.int32(seed),
        }, labels))

    def elbo(self, x, labels=None):
        """x -> {"elbo", "reconstruction", "kl"}, (B,) nats each."""
        return self.predict("elbo", inputs=self._with_labels(
            {"x": self._float32(x)}, labels))

    def log_likelihood(self, x, num_samples=1000, labels=None):
        """x -> importance-sampled log p(x) with K = num_samples, (B,) nats
        (log p(x | y) for a conditional model's labels)."""
        out = self.predict("log_likelihood", inputs=self._with_labels({
            "x": self._float32(x), "num_samples": np.int32(num_samples),
        }, labels))
        return out["log_likelihood"] if isinstance(out, dict) else out


class RestClient(_SignatureMethods):
    """TF Serving REST client (standard library only).

    Args:
        url: server address, default "http://localhost:8501".
        model_name: the served model's name (its entry in models.config).
        version: int or None (the latest version the server holds).
        timeout: seconds per request, default 60.

    Examples:
        >>> client = RestClient("http://localhost:8501", "mnist_vae")
        >>> client.predict("encode", instances=x_test[:2])["z_mean"].shape
        (2, 50)
    """

    def __init__(self, url="http://localhost:8501", model_name="mnist_vae",
                 version=None, timeout=60.0):
        url = _check_name(url, "url")
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                "`url` must be an http(s) address such as "
                f"http://localhost:8501. Received: url={url!r}"
            )
        self.url = url.rstrip("/")
        self.model_name = _check_name(model_name, "model_name")
        self.version = _check_version(version)
        self.timeout = float(timeout)

    @property
    def model_url(self):
        """`<url>/v1/models/<name>[/versions/<v>]`."""
        path = f"{self.url}/v1/models/{urllib.parse.quote(self.model_name)}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        return path

    def _request(self, url, body, signature_name):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            url, data=data, method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        what = (f"the '{signature_name}' signature" if signature_name
                else "the model status")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                return json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8", errors="replace")
            try:
                message = json.loads(text).get("error", text)
            except ValueError:
                message = text
            raise ServingError(
                f"TF Serving rejected the request to {what} of model "
                f"'{self.model_name}' (HTTP {err.code}): {message}",
                signature_name=signature_name, model_name=self.model_name,
                status=err.code, server_message=message,
            ) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServingError(
                f"Could not reach TF Serving at {self.url} for {what} of "
                f"model '{self.model_name}': {reason}. Is the server running "
                "(see saved_models/README.md)?",
                signature_name=signature_name, model_name=self.model_name,
            ) from None

    def predict(self, signature_name="serving_default", inputs=None,
                instances=None):
        """Calls a signature; returns numpy outputs (see
        `parse_predict_response`).

        Raises:
            ServingError: the server answered with an error or could not be
                reached; the message names the signature.
        """
        body = predict_request_body(signature_name, instances=instances,
                                    inputs=inputs)
        response = self._request(self.model_url + ":predict", body,
                                 signature_name)
        if "error" in response:
            raise ServingError(
                f"TF Serving failed the '{signature_name}' signature of "
                f"model '{self.model_name}': {response['error']}",
                signature_name=signature_name, model_name=self.model_name,
                server_message=response["error"],
            )
        return parse_predict_response(response)

    def status(self):
        """The model's version status (GET /v1/models/<name>), a dict."""
        return self._request(self.model_url, None, None)

    def metadata(self):
        """The model's signatures (GET .../metadata), a dict."""
        return self._request(self.model_url + "/metadata", None, None)


class GrpcClient(_SignatureMethods):
    """TF Serving gRPC client (PredictionService/Predict).

    Needs `tensorflow-serving-api` (and TensorFlow), imported when the
    client is created.

    Args:
        target: "host:port", default "localhost:8500".
        model_name: the served model's name.
        version: int or None (the latest).
        timeout: seconds per request, default 60.
        max_message_mb: largest message sent or received, default 64 MiB.

    Raises:
        ImportError: tensorflow-serving-api is not installed.

    Examples:
        >>> client = GrpcClient("localhost:8500", "mnist_vae")
        >>> client.sample(4, seed=1)["x_mean"].shape
        (4, 28, 28, 1)
    """

    def __init__(self, target="localhost:8500", model_name="mnist_vae",
                 version=None, timeout=60.0, max_message_mb=64):
        try:
            import grpc
            import tensorflow as tf
            from tensorflow_serving.apis import predict_pb2
            from tensorflow_serving.apis import prediction_service_pb2_grpc
        except ImportError as err:
            raise ImportError(
                "GrpcClient needs the tensorflow-serving-api package (gRPC "
                "stubs of TF Serving): pip install tensorflow-serving-api "
                "(or pip install keras_vae[serving]). The RestClient needs "
                "nothing beyond the standard library."
            ) from err
        self._grpc = grpc
        self._tf = tf
        self._predict_pb2 = predict_pb2
        self.target = _check_name(target, "target")
        self.model_name = _check_name(model_name, "model_name")
        self.version = _check_version(version)
        self.timeout = float(timeout)
        size = int(max_message_mb * 1024 * 1024)
        self._channel = grpc.insecure_channel(self.target, options=[
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
        ])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(
            self._channel
        )

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def predict(self, signature_name="serving_default", inputs=None):
        """Calls a signature with named inputs; returns {name: ndarray}.

        Args:
            signature_name: str.
            inputs: dict input name -> array or scalar, sent with its numpy
                dtype (the export takes float32 data and int32 scalars).

        Raises:
            ServingError: the server failed the request; the message names
                the signature, the gRPC status and the server's message.
        """
        _check_name(signature_name, "signature_name")
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError(
                "`inputs` must be a dict input name -> array, e.g. "
                f"{{'x': x}}. Received: {type(inputs).__name__}"
            )
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature_name
        if self.version is not None:
            request.model_spec.version.value = self.version
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(
                self._tf.make_tensor_proto(np.asarray(value))
            )
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except self._grpc.RpcError as err:
            code = err.code().name if hasattr(err, "code") else None
            details = err.details() if hasattr(err, "details") else str(err)
            raise ServingError(
                f"TF Serving failed the '{signature_name}' signature of "
                f"model '{self.model_name}' at {self.target} (gRPC "
                f"{code}): {details}",
                signature_name=signature_name, model_name=self.model_name,
                status=code, server_message=details,
            ) from None
        return {k: self._tf.make_ndarray(v)
                for k, v in response.outputs.items()}


__all__ = [
    "GrpcClient",
    "RestClient",
    "ServingError",
    "parse_predict_response",
    "predict_request_body",
]
