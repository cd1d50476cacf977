"""Training callbacks: KL schedules, a NaN guard, exact resumption, images.

KL schedules set the weight of the KL term, the non-trainable variable
`model.sampler.kl_weight`, at the start of every batch from the optimizer's
step count. The weight is therefore a function of the global step only, and
a resumed run (whose optimizer state, step count included, comes back from
the backup) continues the schedule where it stopped. Only the `loss` metric
is weighted; `kl_loss` and `elbo` stay the true, unweighted values.

    warm-up     (Bowman et al. 2016; Sonderby et al. 2016)   LinearKLWarmup
    cyclical    (Fu et al. 2019)                             CyclicalKLSchedule
    constant    (beta-VAE, Higgins et al. 2017)              ConstantKL

Free bits (Kingma et al. 2016) are not a schedule: they are part of the
objective, `VAE(free_bits=...)`.

`standard_callbacks` assembles what `keras-vae train` uses for every run:
the schedule, `NaNGuard`, `BackupAndRestore` in RUN_DIR/backup and
TensorBoard logs (scalars, reconstructions and samples) in
RUN_DIR/tensorboard.

This module is the public face of `keras_vae.training`, where each part
lives in a module of its own: `schedules`, `nan_guard`, `backup`, `images`
and `options` (`standard_callbacks`, `check_train_options`).
"""

from keras_vae.training.schedules import ConstantKL  # noqa: F401
from keras_vae.training.schedules import CyclicalKLSchedule  # noqa: F401
from keras_vae.training.schedules import KLSchedule  # noqa: F401
from keras_vae.training.schedules import LinearKLWarmup  # noqa: F401
from keras_vae.training.schedules import kl_schedule  # noqa: F401
from keras_vae.training.nan_guard import NaNGuard  # noqa: F401
from keras_vae.training.backup import BackupAndRestore  # noqa: F401
from keras_vae.training.backup import model_fingerprint  # noqa: F401
from keras_vae.training.images import ImageSummaries  # noqa: F401
from keras_vae.training.images import image_grid  # noqa: F401
from keras_vae.training.images import is_image_shape  # noqa: F401
from keras_vae.training.options import NAN_GUARD_MODES  # noqa: F401
from keras_vae.training.options import check_train_options  # noqa: F401
from keras_vae.training.options import standard_callbacks  # noqa: F401

__all__ = [
    "BackupAndRestore",
    "ConstantKL",
    "CyclicalKLSchedule",
    "ImageSummaries",
    "KLSchedule",
    "LinearKLWarmup",
    "NAN_GUARD_MODES",
    "NaNGuard",
    "check_train_options",
    "image_grid",
    "is_image_shape",
    "kl_schedule",
    "model_fingerprint",
    "standard_callbacks",
]
