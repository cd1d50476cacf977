"""SavedModel export: signatures against the in-process model and oracles.

Every model is exported once (module fixture) and all exports are evaluated
in ONE fresh Python process that imports TensorFlow only, as TF Serving
would load them; the tests then compare those outputs with the in-process
model, TFP distributions, numpy formulas and Monte-Carlo estimates.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import export as export_lib

EVENT_SHAPE = (4, 4, 1)
LATENT_DIM = 2
BATCH = 5
K_EXACT = 300  # crosses two chunk boundaries (CHUNK_SIZE = 128)
K_MC = 2000
SAMPLE_N = 3

_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _likelihood(lik_id):
    if lik_id == "gaussian_learned":
        return kv.likelihoods.Gaussian("learned")
    if lik_id == "gaussian_heteroscedastic":
        return kv.likelihoods.Gaussian("heteroscedastic")
    if lik_id == "gaussian_optimal":
        return kv.likelihoods.Gaussian("optimal")
    return kv.likelihoods.get(lik_id)  # "gaussian" is the fixed scale 1.0


# The likelihoods the issue names; every other registered likelihood is
# exported and checked too, in the slow group.
REQUIRED = ("bernoulli", "continuous_bernoulli", "gaussian",
            "gaussian_learned", "gaussian_heteroscedastic")
EXTRA = tuple(sorted(set(kv.likelihoods.names()) - set(REQUIRED)))
ARCHS = ("mlp", "conv")


def _cases(likelihoods):
    return [f"{arch}-{lik}" for arch in ARCHS for lik in likelihoods]


# Parity cases: encoders whose z_log_var output is pushed outside the soft
# clamp's range [-30, 10] ("@40": its bias set to +40, "@-60" to -60), and
# heads whose scale is learned or fitted ("optimal") with a stored value
# other than the initial one. The exported numbers must be the in-process
# model's (the clamp applied, the stored scale used).
PARITY = ("mlp-bernoulli@40", "mlp-bernoulli@-60", "conv-bernoulli@40",
          "conv-gaussian_learned@-60", "mlp-gaussian_optimal",
          "conv-gaussian_optimal@40")
ALL_CASES = _cases(REQUIRED) + _cases(EXTRA) + list(PARITY)
CASES = _cases(REQUIRED) + [
    pytest.param(case, marks=pytest.mark.slow) for case in _cases(EXTRA)
]


def _group(case):
    if case in PARITY:
        return "parity"
    return "extra" if case.split("-", 1)[1] in EXTRA else "required"


def _build(case, seed):
    case, _, push = case.partition("@")
    arch, lik_id = case.split("-", 1)
    keras.utils.set_random_seed(seed)
    head = _likelihood(lik_id)
    if arch == "mlp":
        model = kv.build_mlp_vae(EVENT_SHAPE, LATENT_DIM, hidden_units=(8,),
                                 likelihood=head)
    else:
        model = kv.build_conv_vae(EVENT_SHAPE, LATENT_DIM, likelihood=head,
                                  filters=(4, 8), dense_units=8)
    if lik_id == "gaussian_learned":
        # A value other than the initial 0, so the export must carry it.
        model.likelihood.log_scale.assign(-0.7)
    # Shrink the encoder's output layers so that q(z|x) stays near the
    # prior: an untrained encoder puts q far from the posterior, the
    # importance weights become heavy-tailed and K = 2000 estimates of
    # log p(x) are then off by more than their standard error suggests.
    for layer in model.encoder.layers:
        if layer.name in ("z_mean", "z_log_var"):
            layer.set_weights([0.1 * w for w in layer.get_weights()])
        if push and layer.name == "z_log_var":
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.full_like(bias, float(push))])
    if lik_id == "gaussian_optimal":
        model.likelihood.last_scale.assign(0.37)
    return model


def _data(model, seed):
    """Examples in the likelihood's support: draws from the model itself."""
    z = np.random.default_rng(seed).normal(size=(BATCH, LATENT_DIM))
    x = model.decode(z.astype("float32")).sample(seed=[seed, 1])
    return np.asarray(x, dtype="float32")


# Runs in a fresh interpreter: TensorFlow and numpy only.
_LOADER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    inputs = np.load(sys.argv[1])
    plan = json.load(open(sys.argv[2]))
    outputs, signature_names, loaded = {}, {}, {}
    for key, path, signature, names in plan:
        if path not in loaded:
            loaded[path] = tf.saved_model.load(path)
            signature_names[path] = sorted(loaded[path].signatures)
        fn = loaded[path].signatures[signature]
        result = fn(**{n: tf.constant(inputs[key + "|" + n]) for n in names})
        for name, value in result.items():
            outputs[key + "|" + name] = value.numpy()
    np.savez(sys.argv[3], **outputs)
    prefixes = ("keras_vae", "tensorflow_probability", "keras")
    json.dump({
        "modules": sorted(
            m for m in sys.modules if m.split(".")[0] in prefixes
        ),
        "signatures": signature_names,
    }, open(sys.argv[4], "w"))
    """
)


class Bundle:
    """Exported models, their inputs and the fresh process's outputs."""

    def __init__(self, root):
        self.root = root
        self.models, self.paths, self.x = {}, {}, {}
        self._inputs, self._plan = {}, []
        self.outputs = None
        self.info = None
        self.cache = {}

    def request(self, case, signature, tag, **inputs):
        key = f"{case}|{signature}|{tag}"
        for name, value in inputs.items():
            self._inputs[f"{key}|{name}"] = np.asarray(value)
        self._plan.append([key, self.paths[case], signature, sorted(inputs)])

    def out(self, case, signature, tag, name):
        return self.outputs[f"{case}|{signature}|{tag}|{name}"]

    def run(self):
        np.savez(self.root / "inputs.npz", **self._inputs)
        (self.root / "plan.json").write_text(json.dumps(self._plan))
        proc = subprocess.run(
            [sys.executable, "-c", _LOADER_SCRIPT,
             str(self.root / "inputs.npz"), str(self.root / "plan.json"),
             str(self.root / "outputs.npz"), str(self.root / "info.json")],
            capture_output=True, text=True, env=_ENV, cwd=self.root,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        with np.load(self.root / "outputs.npz") as data:
            self.outputs = dict(data)
        self.info = json.loads((self.root / "info.json").read_text())


def _make_bundle(root, cases):
    b = Bundle(root)
    for case in cases:
        i = ALL_CASES.index(case)
        model = _build(case, seed=10 + i)
        b.models[case] = model
        b.paths[case] = kv.export_saved_model(model, root / case)
        x = _data(model, seed=i)
        b.x[case] = x
        z = np.random.default_rng(100 + i).normal(
            size=(BATCH, LATENT_DIM)).astype("float32")
        b.request(case, "encode", "x", x=x)
        b.request(case, "serving_default", "x", x=x)
        b.request(case, "decode", "z", z=z)
        b.request(case, "reconstruct", "x", x=x)
        for seed in (7, 8):
            for rep in (0, 1):
                b.request(case, "sample", f"s{seed}r{rep}",
                          num_samples=np.int32(SAMPLE_N),
                          seed=np.int32(seed))
        b.request(case, "elbo", "x", x=x)
        for k in (1, K_EXACT, K_MC):
            b.request(case, "log_likelihood", f"k{k}", x=x,
                      num_samples=np.int32(k))
        b.request(case, "log_likelihood", "reversed", x=x[::-1],
                  num_samples=np.int32(K_EXACT))
        b.request(case, "log_likelihood", "first", x=x[:1],
                  num_samples=np.int32(K_EXACT))
    b.run()
    return b


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """bundles(case) -> the Bundle holding `case`; each group (required,
    extra likelihoods) is exported and run in one fresh process, once."""
    cache = {}

    def get(case):
        group = _group(case)
        if group not in cache:
            cases = {"extra": _cases(EXTRA), "required": _cases(REQUIRED),
                     "parity": list(PARITY)}[group]
            cache[group] = _make_bundle(tmp_path_factory.mktemp(group), cases)
        return cache[group]

    return get


# -- oracles, written independently of keras_vae/export.py -------------------
def _documented_noise(k):
    """eps_0 .. eps_{k-1} as the export's docstring defines them, (k, L)."""
    chunks = []
    for c in range(-(-k // export_lib.CHUNK_SIZE)):
        chunks.append(tf.random.stateless_normal(
            [export_lib.CHUNK_SIZE, LATENT_DIM],
            seed=[export_lib.NOISE_SEED, c]).numpy())
    return np.concatenate(chunks)[:k].astype("float64")


def _log_normal(z, mean, var):
    return -0.5 * np.sum(np.log(2 * np.pi * var) + (z - mean) ** 2 / var,
                         axis=-1)


def _numpy_log_weights(model, x, eps):
    """log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x), numpy + TFP, (K, B)."""
    z_mean, z_log_var = (np.asarray(a, "float64") for a in model.encode(x))
    std = np.exp(0.5 * z_log_var)
    z = z_mean[None] + std[None] * eps[:, None]  # (K, B, L)
    k, b = z.shape[:2]
    x_rep = np.broadcast_to(x[None], (k,) + x.shape).reshape(
        (k * b,) + x.shape[1:])
    log_px_z = np.asarray(
        model.decode(z.reshape(k * b, LATENT_DIM)).log_prob(x_rep),
        "float64").reshape(k, b)
    return (log_px_z + _log_normal(z, 0.0, 1.0)
            - _log_normal(z, z_mean[None], std[None] ** 2)), log_px_z


def _numpy_kl(model, x):
    """Closed-form KL(N(z_mean, exp(z_log_var)) || N(0, I)), numpy, (B,)."""
    z_mean, z_log_var = (np.asarray(a, "float64") for a in model.encode(x))
    return 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var, -1)


def _log_mean_exp(a, axis=0):
    m = np.max(a, axis=axis)
    return m + np.log(np.mean(np.exp(a - m), axis=axis))


def _quadrature_log_px(model, x, n=101, limit=6.0):
    """log p(x) = log of the integral of p(x|z) N(z; 0, I) over a 2-D grid."""
    grid = np.linspace(-limit, limit, n)
    z = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    log_pz = -0.5 * np.sum(z**2, -1) - np.log(2 * np.pi)
    dist = model.decode(z.astype("float32"))
    values = []
    for xi in x:
        rep = np.broadcast_to(xi, (len(z),) + xi.shape)
        lp = np.asarray(dist.log_prob(rep), "float64") + log_pz
        values.append(lp.max() + np.log(np.sum(np.exp(lp - lp.max()))
                                        * (grid[1] - grid[0]) ** 2))
    return np.array(values)


def _documented_log_weights(bundle, case):
    """Cached (K_MC, B) numpy log-weights over the documented draws."""
    if case not in bundle.cache:
        bundle.cache[case] = _numpy_log_weights(
            bundle.models[case], bundle.x[case], _documented_noise(K_MC))[0]
    return bundle.cache[case]


# -- the fresh process --------------------------------------------------------
@pytest.mark.parametrize("case", [CASES[0], CASES[-1]])
def test_exports_load_with_tensorflow_alone(bundles, case):
    bundle = bundles(case)
    modules = bundle.info["modules"]
    assert not [m for m in modules if m.startswith("keras_vae")], modules
    assert not [m for m in modules
                if m.startswith("tensorflow_probability")], modules
    for names in bundle.info["signatures"].values():
        assert names == sorted(export_lib.SIGNATURES + ("serving_default",))


# -- deterministic signatures -------------------------------------------------
@pytest.mark.parametrize("case", CASES + list(PARITY))
def test_encode_and_serving_default_match_model(bundles, case):
    bundle = bundles(case)
    model, x = bundle.models[case], bundle.x[case]
    z_mean, z_log_var = model.encode(x)
    for sig in ("encode", "serving_default"):
        np.testing.assert_allclose(bundle.out(case, sig, "x", "z_mean"),
                                   z_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bundle.out(case, sig, "x", "z_log_var"),
                                   z_log_var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES + list(PARITY))
def test_decode_matches_tfp_distribution(bundles, case):
    bundle = bundles(case)
    model = bundle.models[case]
    z = bundle._inputs[f"{case}|decode|z|z"]
    dist = model.decode(z)
    mean = bundle.out(case, "decode", "z", "mean")
    assert mean.shape == (BATCH,) + EVENT_SHAPE and mean.dtype == np.float32
    np.testing.assert_allclose(mean, dist.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bundle.out(case, "decode", "z", "params"),
                               model.decoder(z), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES + list(PARITY))
def test_reconstruct_is_mean_at_z_mean(bundles, case):
    bundle = bundles(case)
    model, x = bundle.models[case], bundle.x[case]
    np.testing.assert_allclose(
        bundle.out(case, "reconstruct", "x", "reconstruction"),
        model.reconstruct(x, mode="mean"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES + list(PARITY))
def test_sample_is_reproducible_per_seed_and_matches_model(bundles, case):
    bundle = bundles(case)
    model = bundle.models[case]
    out = {k: bundle.out(case, "sample", "s7r0", k)
           for k in ("z", "x_mean", "x_sample")}
    for key, value in out.items():
        # The same seed gives the same values, call after call.
        np.testing.assert_array_equal(
            value, bundle.out(case, "sample", "s7r1", key))
    # A different seed gives different values.
    assert not np.allclose(out["z"], bundle.out(case, "sample", "s8r0", "z"))
    assert not np.allclose(out["x_mean"],
                           bundle.out(case, "sample", "s8r0", "x_mean"))
    np.testing.assert_allclose(
        out["z"], tf.random.stateless_normal([SAMPLE_N, LATENT_DIM],
                                             seed=[7, 0]), rtol=1e-6)
    np.testing.assert_allclose(out["x_mean"], model.sample(SAMPLE_N, seed=7),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out["x_sample"], model.sample(SAMPLE_N, seed=7, mode="sample"),
        rtol=1e-5, atol=1e-5)


# -- scores ------------------------------------------------------------------
def _assert_elbo_is_eps_0_formula(bundle, case):
    """The exported elbo, kl and reconstruction against numpy: one draw
    with the documented eps_0 and the closed-form KL. Returns (elbo, kl)."""
    model, x = bundle.models[case], bundle.x[case]
    kl = _numpy_kl(model, x)
    _, log_px_z = _numpy_log_weights(model, x, _documented_noise(1))
    np.testing.assert_allclose(bundle.out(case, "elbo", "x", "kl"), kl,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bundle.out(case, "elbo", "x", "reconstruction"),
                               log_px_z[0], rtol=1e-5, atol=1e-4)
    elbo = bundle.out(case, "elbo", "x", "elbo")
    np.testing.assert_allclose(elbo, log_px_z[0] - kl, rtol=1e-5, atol=1e-4)
    return elbo, kl


@pytest.mark.parametrize("case", CASES)
def test_elbo_is_one_draw_with_closed_form_kl(bundles, case):
    bundle = bundles(case)
    model, x = bundle.models[case], bundle.x[case]
    elbo, kl = _assert_elbo_is_eps_0_formula(bundle, case)
    # Monte-Carlo check: the one-draw estimate lies within 5 standard
    # deviations of the expectation estimated in-process with 500 draws.
    draws = np.asarray(model.compute_terms(x, num_samples=500)["log_px_z"])
    expected = draws.mean(0) - kl
    assert np.all(np.abs(elbo - expected) <= 5 * draws.std(0) + 1e-3)


@pytest.mark.parametrize("case", CASES + list(PARITY))
def test_log_likelihood_is_iwae_bound_over_documented_draws(bundles, case):
    bundle = bundles(case)
    log_w = _documented_log_weights(bundle, case)
    for k in (1, K_EXACT, K_MC):
        np.testing.assert_allclose(
            bundle.out(case, "log_likelihood", f"k{k}", "log_likelihood"),
            _log_mean_exp(log_w[:k]), rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("case", CASES)
def test_log_likelihood_agrees_with_quadrature_within_mc_error(bundles, case):
    bundle = bundles(case)
    model, x = bundle.models[case], bundle.x[case]
    served = bundle.out(case, "log_likelihood", f"k{K_MC}", "log_likelihood")
    # Delta-method standard error of log(mean w) over K_MC draws.
    log_w = _documented_log_weights(bundle, case)
    w = np.exp(log_w - log_w.max(0))
    se = w.std(0) / w.mean(0) / np.sqrt(K_MC)
    # With a 2-D latent space log p(x) is an integral a grid computes.
    exact = _quadrature_log_px(model, x)
    assert np.all(np.abs(served - exact) <= 5 * se + 1e-2), (served, exact)
    # The in-process estimator, with its own independent draws.
    reference = kv.evaluation.log_likelihood(
        model, x, num_samples=K_MC, seed=123, verbose=0).values
    assert np.all(np.abs(served - reference) <= 5 * np.sqrt(2) * se + 1e-2)
    # log p(x) >= ELBO (Burda et al. 2016): on average over the batch, up
    # to the Monte-Carlo error of both estimates (the gap is tiny when the
    # decoder hardly depends on z).
    terms = model.compute_terms(x, num_samples=500)
    draws = np.asarray(terms["log_px_z"])
    elbo = draws.mean(0) - np.asarray(terms["kl"])
    error = np.sqrt(np.sum(draws.var(0) / 500 + se**2)) / len(x)
    assert served.mean() >= elbo.mean() - 5 * error


@pytest.mark.parametrize("case", CASES + list(PARITY))
def test_score_of_an_example_does_not_depend_on_its_batch(bundles, case):
    bundle = bundles(case)
    full = bundle.out(case, "log_likelihood", f"k{K_EXACT}", "log_likelihood")
    np.testing.assert_allclose(
        bundle.out(case, "log_likelihood", "reversed", "log_likelihood"),
        full[::-1], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        bundle.out(case, "log_likelihood", "first", "log_likelihood"),
        full[:1], rtol=1e-5, atol=1e-4)


# -- parity: encoders outside the clamp range, stored scales ------------------
def _numpy_soft_clamp(v, low=-30.0, high=10.0, softness=5.0):
    """The soft clamp as documented in objectives.soft_clamp_log_var."""
    v = np.asarray(v, "float64")
    return np.where(v > high, high + softness * np.tanh((v - high) / softness),
                    np.where(v < low, low + softness * np.tanh(
                        (v - low) / softness), v))


@pytest.mark.parametrize("case", [c for c in PARITY if "@" in c])
def test_pushed_encoders_are_clamped_in_the_export_as_in_python(bundles,
                                                                  case):
    bundle = bundles(case)
    model, x = bundle.models[case], bundle.x[case]
    push = float(case.partition("@")[2])
    raw = np.asarray(model.encoder(x, training=False)[1], "float64")
    # The encoder really is outside [-30, 10] ...
    assert np.all(np.abs(raw - push) < 1.0)
    expected = _numpy_soft_clamp(raw)
    # ... and both the Python model and the export see the clamped value.
    np.testing.assert_allclose(model.encode(x)[1], expected, rtol=1e-5)
    np.testing.assert_allclose(bundle.out(case, "encode", "x", "z_log_var"),
                               expected, rtol=1e-5)
    assert np.all(np.abs(expected) < 35.0 + 1e-6)


@pytest.mark.parametrize("case", PARITY)
def test_parity_elbo_is_the_python_formula_over_eps_0(bundles, case):
    _assert_elbo_is_eps_0_formula(bundles(case), case)


@pytest.mark.parametrize("case", [c for c in PARITY if "@" not in c])
def test_parity_log_likelihood_agrees_with_python_within_mc_error(bundles,
                                                                  case):
    # (A posterior pushed far wider or narrower than the true one gives
    # importance weights of infinite variance, so no K = 2000 comparison of
    # two independent estimates is meaningful; those exports are checked
    # draw by draw against the documented noise instead.)
    bundle = bundles(case)
    model, x = bundle.models[case], bundle.x[case]
    served = bundle.out(case, "log_likelihood", f"k{K_MC}", "log_likelihood")
    log_w = _documented_log_weights(bundle, case)
    w = np.exp(log_w - log_w.max(0))
    se = w.std(0) / w.mean(0) / np.sqrt(K_MC)
    reference = kv.evaluation.log_likelihood(
        model, x, num_samples=K_MC, seed=321, verbose=0).values
    assert np.all(np.abs(served - reference) <= 5 * np.sqrt(2) * se + 1e-2), (
        served, reference)
    # The ELBO from Python (stored scale, closed-form KL) against the
    # exported one-draw ELBO's expectation over the documented draws.
    elbo_python = model.elbo(x, num_samples=K_MC)
    kl = _numpy_kl(model, x)
    _, log_px_z = _numpy_log_weights(model, x, _documented_noise(K_MC))
    expected = log_px_z.mean(0) - kl
    spread = log_px_z.std(0) / np.sqrt(K_MC)
    assert np.all(np.abs(elbo_python - expected) <= 5 * np.sqrt(2) * spread
                  + 1e-3)


# -- the session-based loader (TF Serving's C++ path) -------------------------
def test_saved_model_cli_show_lists_named_signatures(bundles):
    bundle = bundles('conv-bernoulli')
    case = "conv-bernoulli"
    proc = subprocess.run(
        [shutil.which("saved_model_cli") or "saved_model_cli", "show",
         "--all", "--dir", bundle.paths[case]],
        capture_output=True, text=True, env=_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = {}
    for block in proc.stdout.split("signature_def['")[1:]:
        blocks[block.split("'")[0]] = block
    expected = {
        "encode": (["x"], ["z_mean", "z_log_var"]),
        "serving_default": (["x"], ["z_mean", "z_log_var"]),
        "decode": (["z"], ["mean", "params"]),
        "reconstruct": (["x"], ["reconstruction"]),
        "sample": (["num_samples", "seed"], ["z", "x_mean", "x_sample"]),
        "elbo": (["x"], ["elbo", "reconstruction", "kl"]),
        "log_likelihood": (["x", "num_samples"], ["log_likelihood"]),
    }
    for name, (ins, outs) in expected.items():
        block = blocks[name]
        for i in ins:
            assert f"inputs['{i}']" in block, (name, i)
        for o in outs:
            assert f"outputs['{o}']" in block, (name, o)
        assert block.count("inputs['") == len(ins)
        assert block.count("outputs['") == len(outs)
        assert "tensorflow/serving/predict" in block
    assert "shape: (-1, 4, 4, 1)" in blocks["encode"]
    assert "DT_INT32" in blocks["sample"]


def test_saved_model_cli_run_encode_returns_same_numbers(bundles, tmp_path):
    bundle = bundles('mlp-bernoulli')
    case = "mlp-bernoulli"
    x = bundle.x[case]
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [shutil.which("saved_model_cli") or "saved_model_cli", "run",
         "--dir", bundle.paths[case], "--tag_set", "serve",
         "--signature_def", "encode", "--inputs", f"x={tmp_path / 'x.npy'}",
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, env=_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    z_mean, z_log_var = bundle.models[case].encode(x)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "z_mean.npy"),
                               z_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "z_log_var.npy"),
                               z_log_var, rtol=1e-5, atol=1e-6)


# -- warm-up, metadata, layout ------------------------------------------------
def test_warmup_records_parse_and_replay(bundles):
    bundle = bundles('mlp-gaussian')
    from tensorflow_serving.apis import prediction_log_pb2

    case = "mlp-gaussian"
    path = pathlib.Path(bundle.paths[case])
    records = [
        prediction_log_pb2.PredictionLog.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(
            str(path / "assets.extra" / "tf_serving_warmup_requests"))
    ]
    seen = {}
    loaded = tf.saved_model.load(str(path))
    for log in records:
        request = log.predict_log.request
        assert request.model_spec.name == case  # the base directory's name
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](
            **{k: tf.constant(v) for k, v in inputs.items()})
        assert all(np.all(np.isfinite(v.numpy())) for v in outputs.values())
        seen.setdefault(request.model_spec.signature_name, []).append(
            inputs.get("x", inputs.get("z", inputs.get("num_samples"))))
    assert sorted(seen) == sorted(export_lib.SIGNATURES)
    for values in seen.values():
        assert len(values) == len(export_lib.WARMUP_BATCH_SIZES)


def test_metadata_describes_the_export(bundles):
    bundle = bundles('conv-gaussian_heteroscedastic')
    case = "conv-gaussian_heteroscedastic"
    meta = json.loads((pathlib.Path(bundle.paths[case]) / "assets.extra"
                       / "keras_vae_export.json").read_text())
    assert meta["event_shape"] == list(EVENT_SHAPE)
    assert meta["latent_dim"] == LATENT_DIM
    assert meta["likelihood"] == "Gaussian"
    assert meta["likelihood_config"]["scale"] == "heteroscedastic"
    assert meta["noise"]["chunk_size"] == export_lib.CHUNK_SIZE
    assert meta["version"] == 1


def test_versions_increment_and_never_overwrite(tmp_path):
    model = _build("mlp-bernoulli", seed=0)
    base = tmp_path / "m"
    assert kv.export_saved_model(model, base, warmup=False) == str(base / "1")
    # Versions already there (another export, or one TF Serving is
    # serving): the next export takes the number after the highest.
    (base / "7").mkdir()
    (base / "7" / "keep.txt").write_text("serving")
    (base / "notes").mkdir()  # not a number: ignored, as TF Serving does
    assert kv.export_saved_model(model, base) == str(base / "8")
    stamp = (base / "1" / "saved_model.pb").stat().st_mtime_ns
    for version in (1, 7, "8"):
        with pytest.raises(ValueError, match=f"Version {version} already"):
            kv.export_saved_model(model, base, version=version)
    assert (base / "7" / "keep.txt").read_text() == "serving"
    assert (base / "1" / "saved_model.pb").stat().st_mtime_ns == stamp
    # No temporary directory left behind.
    assert sorted(p.name for p in base.iterdir()) == ["1", "7", "8", "notes"]


def test_models_config_parses_as_tf_serving_config(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    for name in ("b_vae", "a_vae"):
        (tmp_path / name / "3").mkdir(parents=True)
    (tmp_path / "not_a_model").mkdir()
    path = export_lib.write_models_config(tmp_path)
    repo_config = pathlib.Path(__file__).resolve().parents[1] / (
        "saved_models/models.config")
    for text, names in ((pathlib.Path(path).read_text(), ["a_vae", "b_vae"]),
                        (repo_config.read_text(), ["mnist_vae"])):
        config = text_format.Parse(
            text, model_server_config_pb2.ModelServerConfig())
        entries = config.model_config_list.config
        assert [c.name for c in entries] == names
        assert [c.base_path for c in entries] == [f"/models/{n}"
                                                  for n in names]
        assert all(c.model_platform == "tensorflow" for c in entries)
    with pytest.raises(ValueError, match="No exported model"):
        export_lib.write_models_config(tmp_path / "not_a_model")


# -- bad input ----------------------------------------------------------------
def test_non_vae_and_unbuilt_models_are_refused(tmp_path):
    base = tmp_path / "m"
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    for bad in (dense, "model.keras", None):
        with pytest.raises(TypeError, match="expects a keras_vae.VAE"):
            kv.export_saved_model(bad, base)
    model = _build("mlp-bernoulli", seed=0)
    model.built = False
    with pytest.raises(ValueError, match="not built"):
        kv.export_saved_model(model, base)
    assert not base.exists()


def test_bad_base_dir_and_version_are_refused_before_writing(tmp_path):
    model = _build("mlp-bernoulli", seed=0)
    as_file = tmp_path / "file"
    as_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        kv.export_saved_model(model, as_file)
    for bad in (0, -1, 1.5, "abc", True):
        with pytest.raises(ValueError, match=r"`version` \(TF Serving.*must be an int >= 1, or None"):
            kv.export_saved_model(model, tmp_path / "m", version=bad)
    with pytest.raises(ValueError, match="warmup"):
        kv.export_saved_model(model, tmp_path / "m", warmup="yes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    model = _build("mlp-bernoulli", seed=0)
    (tmp_path / "m" / "1").mkdir(parents=True)

    def crash(self, filepath, **kwargs):
        # Dies half-way: a partial file is on disk when the error comes.
        (pathlib.Path(filepath) / "saved_model.pb").write_bytes(b"\0" * 10)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out",
                        crash)
    with pytest.raises(OSError, match="simulated"):
        kv.export_saved_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1"]
    with pytest.raises(OSError, match="simulated"):
        kv.export_saved_model(model, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_warmup_without_serving_api_names_pip_command(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m.startswith("tensorflow_serving")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    model = _build("mlp-bernoulli", seed=0)
    with pytest.raises(ImportError,
                       match="pip install tensorflow-serving-api"):
        kv.export_saved_model(model, tmp_path / "m", warmup=True)
    assert not (tmp_path / "m").exists()
    with pytest.warns(UserWarning, match="No warm-up requests"):
        path = kv.export_saved_model(model, tmp_path / "m")
    assert not (pathlib.Path(path) / "assets.extra"
                / "tf_serving_warmup_requests").exists()


def test_signatures_reject_wrong_shape_dtype_and_k(bundles):
    bundle = bundles('conv-bernoulli')
    case = "conv-bernoulli"  # a convolution would accept other image sizes
    loaded = tf.saved_model.load(bundle.paths[case])
    encode = loaded.signatures["encode"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"not compatible with expected shape"):
        encode(x=tf.zeros((2, 8, 8, 1)))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="expected to be a float tensor but is a double"):
        encode(x=tf.zeros((2,) + EVENT_SHAPE, tf.float64))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"num_samples \(K\) must be >= 1"):
        loaded.signatures["log_likelihood"](
            x=tf.zeros((2,) + EVENT_SHAPE), num_samples=tf.constant(0))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="num_samples must be >= 1"):
        loaded.signatures["sample"](num_samples=tf.constant(0),
                                    seed=tf.constant(1))


# -- CLI: export a run, serve-check it in a fresh process ---------------------
def test_cli_export_then_serve_check(tmp_path, capsys, monkeypatch):
    from keras_vae import cli

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = _build("mlp-continuous_bernoulli", seed=3)
    model.save(run_dir / "model.keras")
    base = tmp_path / "saved_models" / "tiny_vae"
    assert cli.main(["export", str(run_dir), "--to", str(base)]) == 0
    assert cli.main(["export", str(run_dir), "--to", str(base),
                     "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "nope"), "--to",
                     str(base)]) == 2
    assert "No model.keras" in capsys.readouterr().err

    report = export_lib.serve_check(base, batch_size=3)
    assert report["ok"], report
    assert report["path"] == str(base / "1")
    assert not report["modules"]["keras_vae"]
    assert not report["modules"]["tensorflow_probability"]
    sig = report["signatures"]
    assert sorted(sig) == sorted(export_lib.SIGNATURES + ("serving_default",))
    assert sig["encode"]["outputs"]["z_mean"][:2] == [[3, LATENT_DIM],
                                                      "float32"]
    assert sig["log_likelihood"]["outputs"]["log_likelihood"][0] == [3]
    assert all(entry["repeatable"] for entry in sig.values())
    text = export_lib.format_serve_check(report)
    assert "sample(" in text and text.endswith("OK")
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        export_lib.serve_check(tmp_path / "saved_models")
    # The CLI prints the same table (the report is reused: no second
    # process).
    monkeypatch.setattr(export_lib, "serve_check", lambda *a, **k: report)
    assert cli.main(["serve-check", str(base)]) == 0
    assert capsys.readouterr().out.strip() == text
