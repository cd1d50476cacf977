"""Distributed training: strategy names, TF_CONFIG, and the replicas' sums.

Oracle: the same global batch on one device. Two replicas (two logical CPU
devices, configured in a subprocess before TensorFlow starts) and two
worker processes on localhost must give the same loss, metrics and update.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import cli
from keras_vae import distribute

# Builds a tiny VAE whose q(z|x) has variance exp(-30): the sampling noise
# moves z by ~3e-7, so one device and two replicas (which draw different
# noise) must agree to float precision, and any difference left is in how
# the loss and the gradients are summed over the replicas.
_COMMON = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    import tensorflow as tf

    def near_deterministic_weights(model):
        weights = model.get_weights()
        for var, value in zip(model.weights, weights):
            if "z_log_var" in var.path:
                value[...] = 0.0 if "kernel" in var.path else -30.0
        return weights
""")

_MIRRORED = _COMMON + textwrap.dedent("""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_vae as kv
    from keras_vae import distribute, resume

    x = (np.random.RandomState(0).rand(16, 6) < 0.5).astype("float32")
    init = near_deterministic_weights(
        kv.build_mlp_vae((6,), 2, hidden_units=(5,), seed=3))

    def first_step(strategy, clipnorm):
        with strategy.scope():
            model = kv.build_mlp_vae((6,), 2, hidden_units=(5,), seed=3)
            model.set_weights(init)
            model.compile(keras.optimizers.SGD(0.1, global_clipnorm=clipnorm))
        before = [np.array(v) for v in model.trainable_variables]
        stream = resume.make_step_dataset(x, 16, shuffle=False)
        logs = model.fit(stream, epochs=1, steps_per_epoch=1, verbose=0)
        update = [np.array(v) - b
                  for v, b in zip(model.trainable_variables, before)]
        return {k: v[0] for k, v in logs.history.items()}, update

    def compare(clipnorm):
        one, u1 = first_step(tf.distribute.get_strategy(), clipnorm)
        two, u2 = first_step(
            tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), clipnorm)
        return {
            "one": one, "two": two,
            "update_diff": max(float(np.max(np.abs(a - b)))
                               for a, b in zip(u1, u2)),
            "update_size": max(float(np.max(np.abs(a))) for a in u1),
        }

    out = {"plain": compare(None), "clipped": compare(0.5)}
    # Keras alone clips each replica's share before summing them.
    distribute.clip_global_norm_across_replicas = lambda grads, opt: grads
    out["clipped_keras_only"] = compare(0.5)

    # FusedAdam's once-per-step scalars under two replicas: same weights as
    # Keras' Adam after three steps (the oracle), and they did move.
    def three_adam_steps(optimizer_class):
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = kv.build_mlp_vae((6,), 2, hidden_units=(5,), seed=3)
            model.set_weights(init)
            model.compile(optimizer_class(0.01), fused_adam=False)
        start = [np.array(v) for v in model.trainable_variables]
        stream = resume.make_step_dataset(x, 16, shuffle=False)
        model.fit(stream, epochs=3, steps_per_epoch=1, verbose=0)
        end = [np.array(v) for v in model.trainable_variables]
        return end, max(float(np.max(np.abs(a - b)))
                        for a, b in zip(end, start))
    fused, _ = three_adam_steps(kv.optimizers.FusedAdam)
    adam, out["adam_moved"] = three_adam_steps(keras.optimizers.Adam)
    out["fused_vs_adam"] = max(float(np.max(np.abs(a - b)))
                               for a, b in zip(fused, adam))

    # Each replica draws its own noise for its slice of the batch.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = kv.Sampling(seed=5)
    z = tf.function(lambda: strategy.run(
        lambda: layer([tf.zeros((3, 2)), tf.zeros((3, 2))])))()
    a, b = strategy.experimental_local_results(z)
    out["replica_noise_differs"] = bool(np.any(a.numpy() != b.numpy()))
    print("RESULT " + json.dumps(out))
""")

_WORKER = _COMMON + textwrap.dedent("""
    import keras
    import keras_vae as kv
    from keras_vae import distribute, resume

    out_dir = sys.argv[1]
    strategy = distribute.get_strategy("multi_worker")
    x = np.random.RandomState(0).rand(64, 6).astype("float32")
    init = np.load(os.path.join(out_dir, "init.npz"))
    with strategy.scope():
        model = kv.build_mlp_vae((6,), 2, hidden_units=(5,), seed=3)
        model.set_weights([init[f"arr_{i}"] for i in range(len(init.files))])
        model.compile(keras.optimizers.SGD(0.05))
    stream = resume.make_step_dataset(x, 16, binarize="dynamic", seed=1)
    logs = model.fit(stream, epochs=2, steps_per_epoch=2, verbose=0)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(os.path.join(out_dir, f"worker{index}.npz"), *model.get_weights())
    print("RESULT " + json.dumps(logs.history))
""")


def _run_script(source, args=(), env=None):
    return subprocess.Popen(
        [sys.executable, "-c", source, *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _result(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


# -- names and cluster descriptions ------------------------------------------


def test_unknown_strategy_name():
    with pytest.raises(ValueError, match="Unknown strategy 'horovod'"):
        distribute.get_strategy("horovod")


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "'cluster'"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", '
         '"index": 0}}', "non-empty list"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": '
         '"worker", "index": 3}}', "index"),
    ],
)
def test_bad_tf_config(text, match):
    with pytest.raises(ValueError, match=match):
        distribute.parse_tf_config(text)


def test_missing_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distribute.get_strategy("multi_worker")


def test_good_tf_config_parses():
    text = json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                       "task": {"type": "worker", "index": 1}})
    assert distribute.parse_tf_config(text)["task"]["index"] == 1


def test_cli_reports_bad_strategy_settings_before_writing(
        tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("TF_CONFIG", "{not json")
    status = cli.main(["train", "--strategy", "multi_worker",
                       "--out", str(run_dir)])
    assert status == 2
    assert "TF_CONFIG is not valid JSON" in capsys.readouterr().err
    assert not run_dir.exists()
    with pytest.raises(SystemExit):
        cli.main(["train", "--strategy", "horovod", "--out", str(run_dir)])
    assert "invalid choice: 'horovod'" in capsys.readouterr().err
    for flag, value, message in [
        ("--warmup-steps", "-5", "warmup_steps"),
        ("--free-bits", "-0.5", "free_bits"),
        ("--clipnorm", "-1", "clipnorm"),
    ]:
        assert cli.main(["train", flag, value, "--out", str(run_dir)]) == 2
        assert message in capsys.readouterr().err
    assert not run_dir.exists()


def test_single_process_helpers_are_no_ops(tmp_path):
    strategy = tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)
    assert distribute.worker_run_dir(str(tmp_path), strategy) == str(tmp_path)
    logs = {"loss": tf.constant(1.5)}
    assert distribute.step_logs(logs) is logs
    grads = [tf.ones(3)]
    assert distribute.clip_global_norm_across_replicas(
        grads, keras.optimizers.SGD(global_clipnorm=0.1)) is grads


def test_single_device_noise_is_plain_keras_noise():
    layer = kv.Sampling(seed=9)
    z = layer([tf.zeros((4, 3)), tf.zeros((4, 3))])
    want = keras.random.normal((4, 3), seed=keras.random.SeedGenerator(9))
    np.testing.assert_array_equal(z.numpy(), want.numpy())


def test_dtype_policy_is_set_and_restored():
    before = keras.config.dtype_policy().name
    with distribute.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(ValueError, match="mixed-precision policy"):
        with distribute.dtype_policy("float8"):
            pass


# -- two replicas == one device ----------------------------------------------


def test_mirrored_two_replicas_match_one_device():
    result = _result(_run_script(_MIRRORED))
    for case in ("plain", "clipped"):
        r = result[case]
        for name in ("loss", "reconstruction_loss", "kl_loss", "elbo"):
            assert r["two"][name] == pytest.approx(r["one"][name], rel=1e-6)
        # Float32 round-off only: the update is ~1e-2.
        assert r["update_diff"] <= 1e-6 * max(1.0, r["update_size"] * 100)
    assert result["clipped"]["update_size"] < result["plain"]["update_size"]
    # Without the cross-replica clip the two-replica update is wrong.
    assert result["clipped_keras_only"]["update_diff"] > 1e-3
    assert result["replica_noise_differs"]
    # Three Adam steps of 0.01 move weights by ~0.03; the two Adams agree to
    # float32 round-off.
    assert result["adam_moved"] > 0.01
    assert result["fused_vs_adam"] < 1e-5


# -- two worker processes -----------------------------------------------------


def _free_ports(n):
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_end_with_the_same_weights(tmp_path):
    ref = kv.build_mlp_vae((6,), 2, hidden_units=(5,), seed=3)
    init = ref.get_weights()
    for var, value in zip(ref.weights, init):
        if "z_log_var" in var.path:
            value[...] = 0.0 if "kernel" in var.path else -30.0
    np.savez(tmp_path / "init.npz", *init)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(_run_script(_WORKER, [str(tmp_path)], env=env))
    logs = [_result(p) for p in procs]
    assert logs[0] == logs[1]
    w0 = np.load(tmp_path / "worker0.npz")
    w1 = np.load(tmp_path / "worker1.npz")
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])

    # The same global batches on one device give the same weights.
    from keras_vae import resume

    ref.set_weights(init)
    ref.compile(keras.optimizers.SGD(0.05))
    x = np.random.RandomState(0).rand(64, 6).astype("float32")
    ref.fit(resume.make_step_dataset(x, 16, binarize="dynamic", seed=1),
            epochs=2, steps_per_epoch=2, verbose=0)
    for i, want in enumerate(ref.get_weights()):
        np.testing.assert_allclose(w0[f"arr_{i}"], want, atol=1e-6)


_PARTS_MIRRORED = _COMMON + textwrap.dedent("""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_vae as kv

    x = (np.random.RandomState(0).rand(64, 6) < 0.5).astype("float32")
    builders = {
        "default": lambda: kv.build_mlp_vae((6,), 3, hidden_units=(5,),
                                            seed=3),
        "iaf+mog": lambda: kv.build_mlp_vae(
            (6,), 3, hidden_units=(5,), seed=3, prior="mog",
            posterior=kv.posteriors.InverseAutoregressiveFlow(
                hidden_units=(6,), context_units=4)),
        "hierarchical": lambda: kv.build_hierarchical_vae(
            (6,), (3, 2), ((5,), (4,)), seed=3),
    }
    out = {}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name, build in builders.items():
        with strategy.scope():
            model = build()
            model.compile(keras.optimizers.Adam(1e-2))
        parts = model.trainable_weights
        before = [np.array(v) for v in parts]
        history = model.fit(x, batch_size=16, epochs=1, verbose=0)
        copies = [[np.array(c) for c in v.value.values] for v in parts]
        out[name] = {
            "num_part_weights": len(parts),
            "replicas": sorted({len(c) for c in copies}),
            "in_sync": max(float(np.abs(c[0] - c[1]).max())
                           for c in copies),
            "moved": min(float(np.abs(np.array(v) - b).max())
                         for v, b in zip(parts, before)),
            "loss": history.history["loss"][-1],
        }
    print("RESULT " + json.dumps(out))
""")


def test_fit_on_an_array_trains_every_part_in_sync_on_two_replicas():
    # vae.fit(x) under a two-replica MirroredStrategy (one step per
    # execution: Keras' multi-step loop fails there, keras#19246). Every
    # weight, the parts' own networks included (IAF flows, mixture prior,
    # the hierarchy's conditionals), is mirrored on both replicas, moved by
    # the all-reduced gradient and identical on both after training.
    result = _result(_run_script(_PARTS_MIRRORED))
    assert set(result) == {"default", "iaf+mog", "hierarchical"}
    for name, r in result.items():
        assert r["num_part_weights"] > 0, name
        assert r["replicas"] == [2], name
        assert r["in_sync"] == 0.0, name
        assert r["moved"] > 0.0, name
        assert np.isfinite(r["loss"]), name
