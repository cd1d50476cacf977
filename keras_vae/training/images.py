"""TensorBoard images: reconstructions and prior samples during training."""

import keras
import numpy as np
import tensorflow as tf

from keras_vae.training._checks import (
    _check_steps,
)


def image_grid(images, columns):
    """Tiles (N, H, W, C) images into one (1, rows * H, columns * W, C)."""
    images = np.asarray(images, dtype="float32")
    n, h, w, c = images.shape
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, h, w, c), "float32")
    padded[:n] = images
    grid = padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4)
    return grid.reshape(1, rows * h, columns * w, c)


def _as_images(x):
    x = np.asarray(x, dtype="float32")
    if x.ndim == 3:
        x = x[..., None]
    return np.clip(x, 0.0, 1.0)


def is_image_shape(event_shape):
    """True for (H, W) or (H, W, C) with C in 1 or 3."""
    shape = tuple(event_shape)
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))


class ImageSummaries(keras.callbacks.Callback):
    """Writes reconstructions and prior samples to TensorBoard each epoch.

    Two image summaries per epoch, in `log_dir`: "reconstructions" (rows of
    inputs alternating with the mean of p(x|z) at z = z_mean) and "samples"
    (the mean of p(x|z) for z ~ N(0, I), fixed seed, so the same latent
    points are shown every epoch). Values are clipped to [0, 1] for display.

    Args:
        log_dir: str, e.g. RUN_DIR/tensorboard/images.
        images: array (N, H, W[, C]) of inputs to reconstruct (N <= 64).
        num_samples: int >= 1, default 16.
        seed: int, default 0.
        every_epochs: int >= 1, default 1.
        labels: a conditional model's labels of `images` (N,), or None;
            its samples then cycle through the classes 0, 1, 2, ...
    """

    def __init__(self, log_dir, images, num_samples=16, seed=0,
                 every_epochs=1, labels=None):
        super().__init__()
        self.labels = None if labels is None else np.asarray(labels)[:64]
        images = np.asarray(images, dtype="float32")
        if images.ndim < 3 or not is_image_shape(images.shape[1:]):
            raise ValueError(
                "ImageSummaries needs images of shape (N, H, W) or "
                f"(N, H, W, C) with C 1 or 3. Received: {images.shape}"
            )
        self.log_dir = log_dir
        self.images = images[:64]
        self.num_samples = _check_steps(num_samples, "num_samples")
        self.seed = seed
        self.every_epochs = _check_steps(every_epochs, "every_epochs")
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        x = self.images
        columns = 8
        classes = getattr(self.model, "num_classes", None)
        given = {} if classes is None else {"labels": self.labels}
        recon = self.model.reconstruct(x, mode="mean", **given).reshape(
            x.shape)
        pairs = []
        for start in range(0, len(x), columns):
            pairs.append(_as_images(x[start:start + columns]))
            pairs.append(_as_images(recon[start:start + columns]))
        pairs = [np.concatenate(
            [p, np.zeros((columns - len(p),) + p.shape[1:], "float32")]
        ) for p in pairs]
        if classes is not None:
            given = {"labels": np.arange(self.num_samples) % classes}
        samples = self.model.sample(self.num_samples, seed=self.seed,
                                    **given)
        with self._writer.as_default():
            tf.summary.image(
                "reconstructions", image_grid(np.concatenate(pairs), columns),
                step=epoch,
                description="inputs (odd rows) and mean reconstructions "
                            "(even rows)",
            )
            tf.summary.image(
                "samples",
                image_grid(_as_images(samples.reshape(
                    (-1,) + x.shape[1:])), columns),
                step=epoch, description="mean of p(x|z), z ~ N(0, I)",
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
