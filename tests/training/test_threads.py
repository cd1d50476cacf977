"""CPU thread pools: the setting's checks, the "auto" rule, and that the
pools TensorFlow reports afterwards are the ones asked for."""

import json
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from keras_vae import cli
from keras_vae import threads


@pytest.mark.parametrize("setting, expected", [
    ("auto", "auto"), ("tf", "tf"), ("1,2", (1, 2)), ((3, 1), (3, 1)),
    ([2, 2], (2, 2)),
])
def test_parse_accepts(setting, expected):
    assert threads.parse(setting) == expected


@pytest.mark.parametrize("setting", [
    "0,2", "1", "1,2,3", "a,b", "", (1,), (1, 0), (True, 1), 4, None, "fast",
])
def test_parse_rejects_with_what_was_received(setting):
    with pytest.raises(ValueError, match="INTRA,INTER.*Received"):
        threads.parse(setting)


def test_auto_rule():
    assert threads.auto_choice("mlp", 2, False, environ={}) == (1, 2)
    assert threads.auto_choice("mlp", 4, False, environ={}) == (1, 4)
    # Not measured there, or measured slower: TensorFlow's default.
    assert threads.auto_choice("mlp", 5, False, environ={}) is None
    assert threads.auto_choice("conv", 2, False, environ={}) is None
    assert threads.auto_choice("mlp", 2, True, environ={}) is None
    # The user's own environment wins.
    env = {"TF_NUM_INTRAOP_THREADS": "2"}
    assert threads.auto_choice("mlp", 2, False, environ=env) is None


_FRESH = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ.pop("TF_NUM_INTRAOP_THREADS", None)
    os.environ.pop("TF_NUM_INTEROP_THREADS", None)
    import tensorflow as tf
    from keras_vae import threads
    setting = json.loads(sys.argv[1])
    info = threads.configure(setting, sys.argv[2])
    # The runtime starts with these pools and computes as usual.
    y = float(tf.reduce_sum(tf.matmul(tf.ones((30, 40)), tf.ones((40, 5)))))
    info["check"] = y
    info["reported"] = [tf.config.threading.get_intra_op_parallelism_threads(),
                        tf.config.threading.get_inter_op_parallelism_threads()]
    info["expected_auto"] = threads.auto_choice(
        sys.argv[2], threads.num_cpus(),
        bool(tf.config.list_physical_devices("GPU")))
    print("RESULT " + json.dumps(info))
""")


def _fresh(setting, arch):
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH, json.dumps(setting), arch],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    return json.loads(line[-1][len("RESULT "):])


def test_explicit_pools_hold_in_a_fresh_process():
    info = _fresh([1, 1], "conv")
    assert info["source"] == "explicit"
    assert info["reported"] == [1, 1]
    assert [info["intra_op"], info["inter_op"]] == [1, 1]
    assert info["check"] == 30 * 5 * 40


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_auto_in_a_fresh_process_follows_the_rule(arch):
    info = _fresh("auto", arch)
    expected = info["expected_auto"] or [0, 0]
    assert info["reported"] == list(expected)
    assert info["source"] == ("auto" if info["expected_auto"]
                              else "auto: tensorflow default")


def test_too_late_explicit_is_a_clear_error_and_auto_says_unchanged():
    tf.constant(1.0) + 1.0  # this process's runtime has started
    current = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
    other = (current[0] + 3, current[1] + 3)
    with pytest.raises(ValueError, match="already run an op"):
        threads.configure(other, "mlp")
    info = threads.configure("auto", "mlp")
    assert (info["intra_op"], info["inter_op"]) == current
    if threads.auto_choice("mlp", threads.num_cpus(), False) not in (
        None, current
    ):
        assert info["source"].startswith("unchanged")


def test_cli_rejects_bad_cpu_threads_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--epochs", "1", "--out", str(out),
                     "--cpu-threads", "2,0"])
    assert code == 2
    assert "cpu_threads" in capsys.readouterr().err
    assert not out.exists()
