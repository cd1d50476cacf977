"""benchmarks/reproduce_iwae.py: the paper's schedule, the output-bias
initialisation, and a row stopped and continued in a second call ending
where an uninterrupted one ends."""

import hashlib
import json
import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "benchmarks"))
import reproduce_iwae  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import cli  # noqa: E402


def test_the_schedule_is_the_papers():
    # Burda et al. 2016, section 5: stage i runs 3^i epochs at
    # 1e-3 * 10^(-i/7), i = 0..7, 3,280 epochs in all.
    assert reproduce_iwae.FULL_EPOCHS == 3280
    starts = [0, 1, 4, 13, 40, 121, 364, 1093]
    for i, start in enumerate(starts):
        expected = 1e-3 * 10 ** (-i / 7)
        assert reproduce_iwae.learning_rate(start) == pytest.approx(expected)
        if start:
            assert reproduce_iwae.learning_rate(start - 1) == pytest.approx(
                1e-3 * 10 ** (-(i - 1) / 7))
    assert reproduce_iwae.learning_rate(3279) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="past the 3280-epoch schedule"):
        reproduce_iwae.learning_rate(3280)


def test_output_bias_is_the_clipped_logit_of_the_pixel_means():
    x = np.zeros((4, 2, 2, 1), "float32")
    x[:, 0, 0] = 1.0          # always on: clipped to 0.999
    x[:2, 0, 1] = 1.0         # half the time
    bias = reproduce_iwae.output_bias(x)
    np.testing.assert_allclose(1 / (1 + np.exp(-bias)),
                               [0.999, 0.5, 0.001, 0.001], rtol=1e-6)


_MACHINE = {"date": "today", "cpu_model": "cpu", "cpu_cores": 2,
            "python": "3.11"}


def result_nll(layers):
    return {1: 86.76, 2: 85.33}[layers]


def _weights(path):
    return [np.asarray(w) for w in
            keras.models.load_model(path, safe_mode=True).weights]


@pytest.mark.parametrize("layers", [1, 2])
def test_a_row_stopped_and_continued_ends_as_an_uninterrupted_one(
        tmp_path, data_dir, layers):
    common = ["--layers", str(layers), "--epochs", "2",
              "--train-examples", "200", "--test-examples", "40",
              "--num-samples", "20"]
    name = reproduce_iwae.row_name(layers, "vae", 1)
    assert reproduce_iwae.main(common + ["--root", str(tmp_path / "a")]) == 0
    # A budget that ends the first process after its first epoch.
    resumed = common + ["--root", str(tmp_path / "b"), "--max-minutes",
                        "1e-6"]
    assert reproduce_iwae.main(resumed) == 0
    state = json.loads((tmp_path / "b" / "checkpoints" / name
                        / "state.json").read_text())
    assert state["epochs_done"] == 1
    assert not (tmp_path / "b" / "pretrained").exists()
    card = reproduce_iwae.render_card(tmp_path / "b", _MACHINE)
    assert f"| {name} | -{result_nll(layers):.2f} | - | - | 1 of 2 |" in card
    assert reproduce_iwae.main(resumed) == 0
    # Finished: the checkpoint is gone, the run directory is there.
    assert not (tmp_path / "b" / "checkpoints" / name).exists()
    run_b = tmp_path / "b" / "pretrained" / name
    result = json.loads((run_b / "result.json").read_text())
    evaluation = json.loads((run_b / "evaluation.json").read_text())
    assert result["processes"] == 2 and result["epochs_done"] == 2
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["paper_nll"] == {1: 86.76, 2: 85.33}[layers]
    assert "dynamic" in evaluation["protocol"]
    assert "first 40 test examples" in evaluation["protocol"]
    card = reproduce_iwae.render_card(tmp_path / "b", _MACHINE)
    ll = evaluation["log_likelihood"]["mean"]
    assert f"| {name} | -{result_nll(layers):.2f} | {ll:.2f} +- " in card
    gap = ll + result_nll(layers)  # a tiny model: far below the paper
    assert f"finished, {abs(gap):.2f} nats below the paper (2 processes;" \
        in card and gap < 0
    # Twelve rows: this one, the two IWAE k = 1 rows that are the VAE k = 1
    # rows' objective, nine not started.
    assert card.count("not started") == 9
    assert card.count("(with k = 1 the IWAE bound is the ELBO)") == 2
    for a, b in zip(_weights(tmp_path / "a" / "pretrained" / name
                             / "model.keras"),
                    _weights(run_b / "model.keras")):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The registry of that root holds the file's hash and the number.
    registry = tmp_path / "b" / "registry.json"
    entry = kv.pretrained.info(name, registry=registry)
    assert entry["sha256"] == hashlib.sha256(
        (run_b / "model.keras").read_bytes()).hexdigest()
    assert entry["log_likelihood"]["mean"] == pytest.approx(ll)
    assert entry["log_likelihood"]["num_samples"] == 20
    assert entry["check"]["test_examples"] == 100
    assert entry["check"]["num_samples"] == 20
    assert entry["paper_log_likelihood"] == -result_nll(layers)
    # The same settings only: another row size is refused.
    with pytest.raises(SystemExit):
        (tmp_path / "b" / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "b" / "checkpoints" / name / "state.json").write_text(
            json.dumps({**state, "settings": {**state["settings"],
                                               "epochs": 3}}))
        reproduce_iwae.main(resumed)


def test_a_finished_row_rescored_by_name_with_keras_vae_evaluate(
        tmp_path, data_dir, monkeypatch, capsys):
    # A finished row, then what a user does with it: load it by name
    # (hash checked), score it, and re-score it from the shell.
    name = reproduce_iwae.row_name(1, "vae", 1)
    root = tmp_path / "root"
    assert reproduce_iwae.main(
        ["--epochs", "1", "--train-examples", "200", "--test-examples", "40",
         "--num-samples", "20", "--root", str(root)]) == 0
    registry = root / "registry.json"
    recorded = json.loads((root / "pretrained" / name
                           / "evaluation.json").read_text())
    monkeypatch.setattr(kv.pretrained, "DEFAULT_REGISTRY", registry)
    monkeypatch.setenv(kv.pretrained.ENV_DIR, str(root / "pretrained"))
    assert kv.pretrained.available() == [name]

    vae = kv.pretrained.load(name)
    (x_train, _), (x_test, _) = kv.data.load("mnist", binarize="dynamic",
                                             seed=0)
    # The same K and seed as the recorded evaluation: the same number.
    mean = kv.evaluation.log_likelihood(vae, x_test[:40], num_samples=20,
                                        seed=0).mean
    assert mean == pytest.approx(recorded["log_likelihood"]["mean"],
                                 abs=1e-3)

    out = tmp_path / "rescore"
    assert cli.main(["evaluate", name, "--num-samples", "20",
                     "--max-examples", "40", "--out", str(out),
                     "--progress", "0"]) == 0
    assert "SHA-256 checked" in capsys.readouterr().out
    rescored = json.loads((out / "evaluation.json").read_text())
    assert rescored["log_likelihood"]["mean"] == pytest.approx(
        recorded["log_likelihood"]["mean"], abs=1e-3)
    # The shipped evaluation was not touched.
    assert json.loads((root / "pretrained" / name / "evaluation.json")
                      .read_text()) == recorded

    # --out naming a file: refused before anything runs or is written.
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    assert cli.main(["evaluate", name, "--out", str(a_file)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert a_file.read_text() == "keep"

    # A changed file is refused, by the loader and by the CLI.
    model = root / "pretrained" / name / "model.keras"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="is not the registered"):
        kv.pretrained.load(name)
    assert cli.main(["evaluate", name, "--out", str(out)]) == 2
    assert "SHA-256" in capsys.readouterr().err


def test_the_loglinear_schedule_spans_the_papers_rates_evenly_in_log():
    rates = [reproduce_iwae.loglinear_rate(e, 820) for e in range(820)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-4)
    ratios = np.array(rates[1:]) / np.array(rates[:-1])
    np.testing.assert_allclose(ratios, 10 ** (-1 / 819), rtol=1e-9)
    with pytest.raises(ValueError, match="past the 820-epoch schedule"):
        reproduce_iwae.loglinear_rate(820, 820)


def test_a_faster_recipe_is_its_own_row_with_its_schedule_and_warmup(
        tmp_path, data_dir):
    root = tmp_path / "root"
    argv = ["--batch-size", "50", "--epochs", "3", "--schedule", "loglinear",
            "--warmup-epochs", "2", "--train-examples", "200",
            "--test-examples", "20", "--num-samples", "10",
            "--root", str(root), "--max-minutes", "60"]
    assert reproduce_iwae.main(argv) == 0
    name = "fast-1layer-vae-k1-b50-e3-loglinear-w2"
    # The command that trains the row, as the registry and the card give
    # it: the time budget of a process is not part of it.
    command = ("python benchmarks/reproduce_iwae.py --batch-size 50 "
               "--epochs 3 --schedule loglinear --warmup-epochs 2 "
               "--train-examples 200 --test-examples 20 --num-samples 10 "
               f"--root {root}")
    assert kv.pretrained.info(
        name, registry=root / "registry.json")["command"] == command
    result = json.loads((root / "pretrained" / name
                         / "result.json").read_text())
    history = result["history"]
    # 200 examples in batches of 50: 4 steps an epoch.
    assert [h["learning_rate"] for h in history] == pytest.approx(
        [1e-3, 10 ** -3.5, 1e-4], rel=1e-5)
    assert 0 < history[0]["kl_weight"] < 1 and history[2]["kl_weight"] == 1
    assert result["settings"]["batch_size"] == 50
    config = json.loads((root / "pretrained" / name
                         / "config.json").read_text())
    assert "KL warm-up over 2 epochs" in config["learning_rate"]
    card = reproduce_iwae.render_card(root, _MACHINE)
    assert "### Beyond the paper: faster recipes" in card
    assert f"| {name} | -86.76 | " in card
    assert f"| `{command}` |" in card and "--max-minutes" not in card
    # The paper's rows are untouched by it.
    assert card.count("not started") == 10
    assert reproduce_iwae.row_names(root) == [name]
    figure = reproduce_iwae.plot_curves(root, tmp_path / "curves.png")
    assert figure.stat().st_size > 10_000
    assert reproduce_iwae.plot_curves(tmp_path / "empty",
                                      tmp_path / "none.png") is None
    assert "![reproduce_iwae curves](figures/c.png)" in \
        reproduce_iwae.render_card(root, _MACHINE, figure="figures/c.png")
    with pytest.raises(SystemExit):
        reproduce_iwae.main(argv[:6] + ["--warmup-epochs", "3"])


def test_the_recipe_command_leaves_out_the_time_budget_only():
    assert reproduce_iwae.recipe_command(
        ["--layers", "2", "--max-minutes", "130", "--k", "5"]) == \
        "python benchmarks/reproduce_iwae.py --layers 2 --k 5"
    assert reproduce_iwae.recipe_command(
        ["--max-minutes=5", "--root", "a b"]) == \
        "python benchmarks/reproduce_iwae.py --root 'a b'"


def test_the_iwae_k1_rows_point_to_the_vae_k1_rows(tmp_path, capsys):
    """With one sample the IWAE bound is the ELBO: the command refuses to
    train a copy of the VAE row, says which row that is, and writes
    nothing."""
    with pytest.raises(SystemExit):
        reproduce_iwae.main(["--objective", "iwae", "--k", "1",
                             "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert "run --objective vae --k 1" in err
    assert "received --objective iwae --k 1" in err
    assert not list(tmp_path.iterdir())


def test_an_iwae_row_trains_its_bound_and_the_card_shows_it(tmp_path):
    """A k = 5 IWAE row (tiny here) trains the IWAE bound: its training
    objective per epoch is at least the single-sample ELBO of the same
    batches on average, as Burda et al.'s theorem 1 says, and the card
    shows the row against the paper's -85.54."""
    root = tmp_path / "root"
    assert reproduce_iwae.main(
        ["--objective", "iwae", "--k", "5", "--epochs", "2",
         "--train-examples", "200", "--test-examples", "40",
         "--num-samples", "20", "--root", str(root)]) == 0
    name = reproduce_iwae.row_name(1, "iwae", 5)
    result = json.loads((root / "pretrained" / name
                         / "result.json").read_text())
    assert result["settings"]["objective"] == "iwae"
    bound = np.mean([-h["loss"] for h in result["history"]])
    elbo = np.mean([h["elbo"] for h in result["history"]])
    assert bound > elbo
    card = reproduce_iwae.render_card(root, _MACHINE)
    assert f"| {name} | -85.54 | " in card
    assert "finished, " in card.split(f"| {name} |")[1].split("\n")[0]
    figure = reproduce_iwae.plot_curves(root, tmp_path / "curves.png")
    assert figure.stat().st_size > 10_000
