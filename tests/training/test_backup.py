"""Tests of keras_vae.training.backup: BackupAndRestore, exact resumption."""

import json
import os

import keras
import numpy as np
import pytest

import keras_vae as kv
from helpers import Interrupt
from keras_vae import callbacks as kcb
from keras_vae import resume


# Oracle: the uninterrupted run. A run interrupted in the middle of an epoch
# and started again must end with the same weights, optimizer state, KL
# weight and noise state.
N, BATCH, EPOCHS = 50, 10, 3
STEPS = resume.steps_per_epoch(N, BATCH)


def _data():
    return np.random.RandomState(0).rand(N, 6).astype("float32")


def _model(init=None, latent_dim=2):
    model = kv.build_mlp_vae((6,), latent_dim, hidden_units=(8,), seed=3)
    model.compile(keras.optimizers.Adam(1e-2))
    if init is not None:
        model.set_weights(init)
    return model




def _train(backup_dir, init, extra=(), double_checkpoint=False):
    model = _model(init)
    backup = kcb.BackupAndRestore(backup_dir, save_freq=2,
                                  double_checkpoint=double_checkpoint)
    stream = resume.make_step_dataset(
        _data(), BATCH, binarize="dynamic", seed=11,
        start_step=backup.resume_step(),
    )
    model.fit(stream, epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0,
              callbacks=[kcb.LinearKLWarmup(7), backup, *extra])
    return model


def _max_abs_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


# -- interrupted and resumed == uninterrupted ---------------------------------


@pytest.mark.parametrize("interrupt_at", [7, 8])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, interrupt_at):
    init = _model().get_weights()
    reference = _train(str(tmp_path / "a"), init)

    with pytest.raises(KeyboardInterrupt):
        _train(str(tmp_path / "b"), init, [Interrupt(interrupt_at)])
    with open(tmp_path / "b" / "training_metadata.json") as f:
        saved = json.load(f)
    assert saved["step"] == {7: 6, 8: 8}[interrupt_at]  # save_freq=2
    assert 0 < saved["step"] % STEPS  # in the middle of epoch 1
    resumed = _train(str(tmp_path / "b"), init)

    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS
    assert _max_abs_diff(reference.get_weights(),
                         resumed.get_weights()) <= 1e-6
    assert _max_abs_diff([np.array(v) for v in reference.optimizer.variables],
                         [np.array(v) for v in resumed.optimizer.variables]
                         ) <= 1e-6
    np.testing.assert_array_equal(
        np.array(reference.sampler.seed_generator.state),
        np.array(resumed.sampler.seed_generator.state))
    assert float(resumed.sampler.kl_weight) == 1.0
    assert not (tmp_path / "b").exists()  # finished: backup removed


def _corrupt(path):
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(b"not an HDF5 file" * 64)


def test_a_corrupt_latest_backup_resumes_exactly_from_the_previous(
        tmp_path, capsys):
    init = _model().get_weights()
    reference = _train(str(tmp_path / "a"), init)
    backup_dir = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        _train(str(backup_dir), init, [Interrupt(7)],
               double_checkpoint=True)
    # Saved at steps 2, 4 and 6: the latest is step 6, the previous step 4.
    backup = kcb.BackupAndRestore(str(backup_dir), double_checkpoint=True)
    assert backup.resume_step() == 6
    _corrupt(backup_dir / "latest.weights.h5")
    assert backup.resume_step() == 4
    capsys.readouterr()
    resumed = _train(str(backup_dir), init, double_checkpoint=True)
    assert "resuming from the previous one, at step 4" in (
        capsys.readouterr().out)
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS
    assert _max_abs_diff(reference.get_weights(),
                         resumed.get_weights()) <= 1e-6
    np.testing.assert_array_equal(
        np.array(reference.sampler.seed_generator.state),
        np.array(resumed.sampler.seed_generator.state))


def test_a_corrupt_backup_without_a_previous_one_is_a_clear_error(tmp_path):
    backup_dir = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        _train(str(backup_dir), _model().get_weights(), [Interrupt(5)])
    _corrupt(backup_dir / "latest.weights.h5")
    assert os.path.exists(backup_dir / "latest.weights.h5")
    with pytest.raises(ValueError, match="cannot be read.*Delete"):
        kcb.BackupAndRestore(str(backup_dir)).resume_step()
    with pytest.raises(ValueError, match="cannot be read"):
        _train(str(backup_dir), _model().get_weights())


def test_resume_refuses_a_backup_of_a_different_model(tmp_path):
    backup_dir = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        _train(backup_dir, _model().get_weights(), [Interrupt(2)])
    other = _model(latent_dim=3)
    backup = kcb.BackupAndRestore(backup_dir)
    with pytest.raises(ValueError, match="different model.*latent_dim"):
        backup.check_model(other)
    with pytest.raises(ValueError, match="different model"):
        other.fit(resume.make_step_dataset(_data(), BATCH), epochs=1,
                  steps_per_epoch=STEPS, verbose=0, callbacks=[backup])
    with pytest.raises(ValueError, match="steps per epoch"):
        backup.check_model(_model(), steps_per_epoch=STEPS + 1)


def test_resume_refuses_a_backup_keras_vae_did_not_write(tmp_path):
    model = _model()
    plain = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=1,
                                             delete_checkpoint=False)
    model.fit(_data(), batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[plain])
    with pytest.raises(ValueError, match="did not write"):
        kcb.BackupAndRestore(str(tmp_path)).resume_step()


def test_backup_save_freq_must_be_positive():
    with pytest.raises(ValueError, match="save_freq"):
        kcb.BackupAndRestore("/tmp/unused", save_freq=0)


# -- the CLI's training function ----------------------------------------------


@pytest.mark.slow
def test_keras_vae_train_resumes_to_the_same_model(tmp_path, data_dir):
    from keras_vae import runs

    def config(name, **kwargs):
        return runs.TrainConfig(
            run_dir=str(tmp_path / name), latent_dim=2, hidden_units=(16,),
            epochs=2, batch_size=50, max_train_examples=200, save_freq=1,
            warmup_steps=5, verbose=0, **kwargs,
        )

    reference, _ = runs.train(config("a"))
    with pytest.raises(KeyboardInterrupt):
        runs.train(config("b"), callbacks=[Interrupt(6)])
    assert os.path.exists(tmp_path / "b" / "backup" / "latest.weights.h5")
    assert not os.path.exists(tmp_path / "b" / "model.keras")
    # A different model cannot take over the backup; nothing is written.
    with pytest.raises(ValueError, match="different model"):
        runs.train(runs.TrainConfig(
            run_dir=str(tmp_path / "b"), latent_dim=3, hidden_units=(16,),
            epochs=2, batch_size=50, max_train_examples=200, verbose=0))
    resumed, _ = runs.train(config("b"))  # the same command again
    loaded = keras.models.load_model(tmp_path / "b" / "model.keras")
    diff = _max_abs_diff(reference.get_weights(), loaded.get_weights())
    assert diff <= 1e-6, diff
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    # Epoch 1's logs come from the backup, epoch 2's from this process.
    assert len(history["loss"]) == 2


def test_steps_per_execution_default_and_alignment(tmp_path):
    from keras_vae import runs

    def spe(steps_per_epoch=600, **kwargs):
        config = runs.TrainConfig(run_dir="/tmp/unused", **kwargs)
        return runs._steps_per_execution(config, steps_per_epoch)

    assert spe() == "auto"  # resolved by each fit, below
    assert spe(warmup_steps=1000) == "auto"
    assert spe(steps_per_execution=8, warmup_steps=1000) == 8  # as asked
    assert spe(steps_per_execution=50, save_freq=25) == 25  # gcd(50, 600, 25)
    assert spe(steps_per_execution=50, save_freq=7) == 1
    assert spe(steps_per_execution=50, steps_per_epoch=60) == 10

    # "auto" with the callbacks keras-vae train uses: the schedule is set
    # in the train step, the backup every save_freq steps bounds it.
    from keras_vae.training import fit as fit_lib

    model = kv.build_mlp_vae((6,), 2, hidden_units=(4,), seed=0)
    model.compile()
    for save_freq, warmup, expected in [("epoch", 0, 50), ("epoch", 1000, 50),
                                        (25, 1000, 25), (7, 0, 1)]:
        run_callbacks, _ = kcb.standard_callbacks(
            str(tmp_path / "run"), model=model, steps_per_epoch=600,
            warmup_steps=warmup, save_freq=save_freq)
        assert fit_lib.steps_per_execution_for(
            model, 600, run_callbacks) == expected, (save_freq, warmup)
    with pytest.raises(ValueError, match="steps_per_execution"):
        runs.TrainConfig(run_dir="/tmp/unused",
                         steps_per_execution=0).validate()


@pytest.mark.slow
@pytest.mark.parametrize("spe, save_freq, stop", [(8, 8, 20), (1, 6, 14)])
def test_keras_vae_train_resumes_exactly_with_several_steps_per_execution(
        tmp_path, data_dir, spe, save_freq, stop):
    # 12 steps per epoch and a KL warm-up (set inside the train step).
    # (8, 8, 20): executions of gcd(8, 12, 8) = 4 steps, which never
    #   straddle an epoch; backups at steps 8 and 16; interrupted after 20.
    # (1, 6, 14): the backup due at step 12 is the last step of an epoch and
    #   is taken after that epoch's validation pass (which draws from the
    #   model's RNG too); interrupted after 14, resumed from 12.
    from keras_vae import runs

    def config(name):
        return runs.TrainConfig(
            run_dir=str(tmp_path / name), latent_dim=2, hidden_units=(16,),
            epochs=3, batch_size=50, max_train_examples=600,
            save_freq=save_freq, steps_per_execution=spe, warmup_steps=30,
            verbose=0,
        )

    reference, _ = runs.train(config("a"))
    with pytest.raises(KeyboardInterrupt):
        runs.train(config("b"), callbacks=[Interrupt(stop)])
    backup = kcb.BackupAndRestore(str(tmp_path / "b" / "backup"))
    assert backup.resume_step() == {20: 16, 14: 12}[stop]
    resumed, _ = runs.train(config("b"))
    loaded = keras.models.load_model(tmp_path / "b" / "model.keras")
    diff = _max_abs_diff(reference.get_weights(), loaded.get_weights())
    assert diff <= 1e-6, diff
