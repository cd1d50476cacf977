"""benchmarks/reproduce_iwae.py: the paper's schedule, the output-bias
initialisation, and a row stopped and continued in a second call ending
where an uninterrupted one ends."""

import json
import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "benchmarks"))
import reproduce_iwae  # noqa: E402


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
    # Finished: the checkpoint is gone, the model and the result are there.
    assert not (tmp_path / "b" / "checkpoints" / name).exists()
    result = json.loads((tmp_path / "b" / "pretrained"
                         / f"{name}.json").read_text())
    assert result["processes"] == 2 and result["epochs_done"] == 2
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["paper_nll"] == {1: 86.76, 2: 85.33}[layers]
    card = reproduce_iwae.render_card(tmp_path / "b", _MACHINE)
    ll = result["report"]["log_likelihood"]["mean"]
    assert f"| {name} | -{result_nll(layers):.2f} | {ll:.2f} +- " in card
    assert card.count("not started") == 11
    for a, b in zip(_weights(tmp_path / "a" / "pretrained" / f"{name}.keras"),
                    _weights(tmp_path / "b" / "pretrained" / f"{name}.keras")):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The same settings only: another row size is refused.
    with pytest.raises(SystemExit):
        (tmp_path / "b" / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "b" / "checkpoints" / name / "state.json").write_text(
            json.dumps({**state, "settings": {**state["settings"],
                                               "epochs": 3}}))
        reproduce_iwae.main(resumed)
