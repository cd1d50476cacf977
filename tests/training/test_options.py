"""Tests of keras_vae.training.options: standard_callbacks."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import callbacks as kcb
from helpers import tiny_vae


def _summary_tags(directory):
    tags = set()
    for path in glob.glob(os.path.join(directory, "**", "events.*"),
                          recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_standard_callbacks_write_tensorboard_scalars_and_images(tmp_path):
    model = kv.build_mlp_vae((4, 4, 1), 2, hidden_units=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    x = (np.random.RandomState(0).rand(20, 4, 4, 1) < 0.5).astype("float32")
    cbs, backup = kcb.standard_callbacks(
        str(tmp_path), model=model, steps_per_epoch=2, warmup_steps=3,
        images=x[:8],
    )
    kinds = [type(c).__name__ for c in cbs]
    assert kinds == ["LinearKLWarmup", "NaNGuard", "BackupAndRestore",
                     "TensorBoard", "ImageSummaries"]
    assert backup is cbs[2]
    model.fit(x, batch_size=10, epochs=2, verbose=0, callbacks=cbs)
    tags = _summary_tags(str(tmp_path / "tensorboard"))
    assert {"reconstructions", "samples"} <= tags
    assert any("kl_loss" in t for t in tags)
    assert any("kl_weight" in t for t in tags)
    assert not (tmp_path / "backup").exists()  # removed after a finished run


def test_standard_callbacks_check_schedule_before_writing(tmp_path):
    model = tiny_vae(objective="iwae")
    with pytest.raises(ValueError, match="objective='iwae'"):
        kcb.standard_callbacks(str(tmp_path / "run"), model=model,
                               warmup_steps=10)
    assert not (tmp_path / "run").exists()
