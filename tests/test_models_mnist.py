"""benchmarks/models_mnist.py: a named comparison of its own (the VampPrior
against the standard prior), its difference line, and finished models kept
on a rerun."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "benchmarks"))
import models_mnist  # noqa: E402


def test_a_named_vampprior_comparison_writes_its_own_section(
        tmp_path, data_dir, capsys):
    argv = ["--name", "vamp_trial", "--models", "standard,vamp",
            "--epochs", "1", "--warmup-epochs", "1", "--learning-rate",
            "5e-4", "--train-examples", "600", "--test-examples", "20",
            "--num-samples", "10", "--vamp-components", "10",
            "--root", str(tmp_path)]
    results = models_mnist.main(argv)
    means = {r["model"]: r["log_likelihood"]["mean"] for r in results}
    kept = json.loads((tmp_path / "_out" / "vamp_trial_vamp.json")
                      .read_text())
    assert kept["learning_rate"] == 5e-4 and kept["train_examples"] == 600
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## vamp_trial" in text and "## models_mnist" not in text
    assert "Adam(0.0005)" in text
    assert f"**{means['vamp'] - means['standard']:+.2f} +- " in text
    assert "Tomczak & Welling (2018): +2.99 nats" in text
    assert "![samples of each model](figures/vamp_trial.png)" in text
    assert (tmp_path / "figures" / "vamp_trial.png").stat().st_size > 5000
    capsys.readouterr()
    # A rerun with the same settings keeps both finished models.
    models_mnist.main(argv)
    assert capsys.readouterr().out.count("kept the finished result") == 2
    with pytest.raises(SystemExit):
        models_mnist.main(argv[:-2] + ["--name", "../x"])
