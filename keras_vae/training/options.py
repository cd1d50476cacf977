"""What `keras-vae train` uses: `standard_callbacks` (schedule, NaN guard,
backup, TensorBoard) and the checks of the training options.
"""

import os

import keras
import numpy as np

from keras_vae.training._checks import (
    _check_number,
    _check_steps,
)
from keras_vae.training.schedules import (
    _kl_weight_variable,
    kl_schedule,
)
from keras_vae.training.nan_guard import (
    NaNGuard,
)
from keras_vae.training.backup import (
    BackupAndRestore,
)
from keras_vae.training.images import (
    is_image_shape,
    ImageSummaries,
)


def standard_callbacks(run_dir, model=None, steps_per_epoch=None,
                       warmup_steps=0, cycle_steps=0, cycle_ratio=0.5,
                       nan_guard="rollback", save_freq="epoch", images=None,
                       tensorboard=True, image_labels=None):
    """The callbacks of a `keras-vae train` run, in the order they must run.

    1. the KL schedule (so `kl_weight` reaches the logs),
    2. `NaNGuard` (before the backup, so a non-finite state is never saved),
    3. `BackupAndRestore` in RUN_DIR/backup,
    4. `keras.callbacks.TensorBoard` in RUN_DIR/tensorboard (scalars) and
       `ImageSummaries` in RUN_DIR/tensorboard/images.

    Everything is checked here, before training writes anything: the
    schedule settings, and, when `model` is given, that a backup left in
    RUN_DIR/backup belongs to this model and `steps_per_epoch`.

    Args:
        run_dir: str.
        model: the compiled model, or None to skip the backup check.
        steps_per_epoch: int or None.
        warmup_steps, cycle_steps, cycle_ratio: see `kl_schedule`.
        nan_guard: "rollback" (default), "stop" or None (off).
        save_freq: "epoch" or int, the backup frequency.
        images: array of a few inputs for the image summaries, or None.
        tensorboard: bool, default True.
        image_labels: the labels of `images` for a conditional model.

    Returns:
        (callbacks list, the BackupAndRestore callback).
    """
    schedule = kl_schedule(warmup_steps, cycle_steps, cycle_ratio)
    if schedule is not None and model is not None:
        _kl_weight_variable(model)
    result = [] if schedule is None else [schedule]
    if nan_guard is not None:
        result.append(NaNGuard(mode=nan_guard))
    # The previous backup is kept as a fallback for an unreadable latest.
    backup = BackupAndRestore(os.path.join(run_dir, "backup"),
                              save_freq=save_freq, double_checkpoint=True)
    if model is not None:
        backup.check_model(model, steps_per_epoch)
    result.append(backup)
    if tensorboard:
        try:
            import tensorboard as _  # noqa: F401  (tf.summary needs it)
        except ImportError:
            raise ImportError(
                "TensorBoard logs need the tensorboard package: pip install "
                "'tensorboard>=2.21,<2.22' (or pass tensorboard=False)."
            ) from None
        log_dir = os.path.join(run_dir, "tensorboard")
        result.append(keras.callbacks.TensorBoard(log_dir=log_dir))
        if images is not None and is_image_shape(np.shape(images)[1:]):
            result.append(
                ImageSummaries(os.path.join(log_dir, "images"), images,
                               labels=image_labels)
            )
    return result, backup


NAN_GUARD_MODES = ("rollback", "stop", "off")


def check_train_options(config):
    """Checks the training options of a `keras_vae.runs.TrainConfig`.

    Covers the objective, free bits, KL schedule, clipping, strategy (and
    TF_CONFIG for "multi_worker"), mixed precision, XLA, backup frequency and
    NaN guard settings; raises ValueError naming the first bad one, before
    any data is loaded or file written.
    """
    from keras_vae.training import distribute
    from keras_vae.vae import OBJECTIVES

    if config.objective not in OBJECTIVES:
        raise ValueError(
            f"Unknown objective {config.objective!r}. Expected one of "
            f"{list(OBJECTIVES)}."
        )
    _check_number(config.free_bits, "free_bits")
    schedule = kl_schedule(config.warmup_steps, config.cycle_steps)
    if config.objective == "iwae" and (
        schedule is not None or config.free_bits or config.beta != 1.0
    ):
        raise ValueError(
            "KL schedules, free bits and beta act on the KL term of the ELBO; "
            "the IWAE objective has none. Received objective='iwae' with "
            f"warmup_steps={config.warmup_steps}, cycle_steps="
            f"{config.cycle_steps}, free_bits={config.free_bits}, beta="
            f"{config.beta}. Use objective='elbo' for them."
        )
    _check_number(config.clipnorm, "clipnorm")
    if config.strategy not in distribute.STRATEGIES:
        distribute.get_strategy(config.strategy)  # raises with the list
    if config.strategy == "multi_worker":
        distribute.parse_tf_config()
    distribute.check_dtype_policy(config.mixed_precision)
    distribute.jit_compile_flag(config.jit_compile)
    if config.save_freq != "epoch":
        _check_steps(config.save_freq, "save_freq")
    if config.nan_guard not in NAN_GUARD_MODES:
        raise ValueError(
            f"Unknown nan_guard {config.nan_guard!r}. Expected one of "
            f"{list(NAN_GUARD_MODES)}."
        )
