"""The evaluation examples and benchmark run end to end on tiny settings.

Each runs as a subprocess with a few hundred training images and a handful
of importance samples; the assertions check the printed tables and the
files, not the numbers (those are in docs/sections/evaluation.md).
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import DATA_DIR, REPO

pytestmark = pytest.mark.slow


def run(script, *args, cwd=None):
    env = dict(os.environ, KERAS_VAE_DATA_DIR=str(DATA_DIR),
               TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, str(REPO / script), *args], cwd=cwd or REPO,
        env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


def test_mean_vs_sample(tmp_path):
    out = run("examples/mean_vs_sample.py", "--epochs", "1",
              "--train-examples", "300", "--test-examples", "20",
              "--num-samples", "10", "--refine-steps", "5",
              "--out", str(tmp_path))
    assert "z = z_mean" in out and "log p(x)" in out
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["results"]) == {"sampled", "z = z_mean"}
    assert (tmp_path / "prior_samples.png").stat().st_size > 0


def test_likelihood_comparison(tmp_path):
    out = run("examples/likelihood_comparison.py", "--epochs", "1",
              "--train-examples", "300", "--test-examples", "20",
              "--num-samples", "5", "--out", str(tmp_path))
    assert "n/a (not normalised)" in out
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(rows) == 6
    assert (tmp_path / "likelihoods.png").stat().st_size > 0


def test_frey_face(tmp_path):
    out = run("examples/frey_face_vae.py", "--epochs", "2",
              "--num-samples", "5", "--grid", "5", "--out", str(tmp_path))
    assert "Frey Face" in out
    for name in ("manifold.png", "samples.png", "evaluation.json"):
        assert (tmp_path / name).exists()


def test_amortization_gap(tmp_path):
    out = run("examples/amortization_gap.py", "--epochs", "1",
              "--test-examples", "10", "--num-samples", "5", "--steps", "3",
              "--curve-steps", "2,4", "--out", str(tmp_path))
    assert "amortization gap" in out
    assert (tmp_path / "amortization_gap.png").stat().st_size > 0
