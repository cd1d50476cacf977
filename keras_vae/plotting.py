"""Figures for VAE runs (matplotlib, Agg backend). No maths lives here.

Every function takes numpy arrays and a path, writes one PNG and returns
the path. Images are (N, H, W, C) or (N, H, W) with values in [0, 1].
"""

import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _squeeze_images(images):
    images = np.asarray(images, dtype="float32")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[-1])))
        if side * side == images.shape[-1]:
            images = images.reshape(-1, side, side)
    if images.ndim not in (3, 4):
        raise ValueError(
            "Expected images of shape (N, H, W) or (N, H, W, C). "
            f"Received shape {images.shape}."
        )
    return np.clip(images, 0.0, 1.0)


def tile(images, ncols):
    """Tiles (N, H, W[, C]) images into one (rows*H, ncols*W[, C]) array."""
    images = _squeeze_images(images)
    n, h, w = images.shape[:3]
    nrows = -(-n // ncols)
    canvas = np.ones((nrows * h, ncols * w) + images.shape[3:], "float32")
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return canvas


def save_figure(fig, path):
    """Writes `fig` to `path` (PNG) through a temporary file and closes it,
    so an interrupted run never leaves a half-written figure. Returns path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _show(ax, canvas, title=None):
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def plot_image_grid(images, path, title=None, ncols=10):
    """A grid of images, e.g. samples from the prior."""
    canvas = tile(images, ncols)
    fig, ax = plt.subplots(figsize=(ncols * 0.8, canvas.shape[0] /
                                    canvas.shape[1] * ncols * 0.8 + 0.4))
    _show(ax, canvas, title)
    return save_figure(fig, path)


def plot_samples_per_class(samples, class_names, path, title=None):
    """A conditional model's samples, one row per class: `samples` holds
    len(class_names) rows of equally many images, class by class; each row
    is labelled with its class name."""
    samples = _squeeze_images(samples)
    rows = len(class_names)
    if rows < 1 or len(samples) % rows:
        raise ValueError(
            f"plot_samples_per_class needs the same number of samples for "
            f"each of the {rows} classes. Received {len(samples)} samples."
        )
    ncols = len(samples) // rows
    canvas = tile(samples, ncols)
    height = samples.shape[1]
    fig, ax = plt.subplots(figsize=(ncols * 0.8 + 1.2, rows * 0.8 + 0.4))
    _show(ax, canvas, title)
    ax.set_yticks([height * (r + 0.5) for r in range(rows)])
    ax.set_yticklabels([str(name) for name in class_names], fontsize=8)
    ax.tick_params(axis="y", length=0)
    return save_figure(fig, path)


def plot_reconstructions(inputs, reconstructions, path, title=None,
                         ncols=10):
    """Inputs (odd rows) above their reconstructions (even rows)."""
    inputs = _squeeze_images(inputs)
    reconstructions = _squeeze_images(reconstructions)
    rows = []
    for start in range(0, len(inputs), ncols):
        rows.append(inputs[start:start + ncols])
        rows.append(reconstructions[start:start + ncols])
    stacked = np.concatenate(rows)
    canvas = tile(stacked, ncols)
    fig, ax = plt.subplots(figsize=(ncols * 0.8, canvas.shape[0] /
                                    canvas.shape[1] * ncols * 0.8 + 0.4))
    _show(ax, canvas, title or "inputs (odd rows) and reconstructions "
          "(even rows)")
    return save_figure(fig, path)


def plot_history(history, path, title=None):
    """Loss curves: loss, reconstruction and KL, train and validation."""
    keys = [k for k in ("loss", "reconstruction_loss", "kl_loss")
            if k in history]
    if not keys:
        raise ValueError(
            "The history holds none of loss, reconstruction_loss, kl_loss. "
            f"Received keys: {sorted(history)}"
        )
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3,
                    label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_latent_scatter(z_mean, labels, path, title=None, class_names=None):
    """2-D latent means coloured by label (the Keras blog's figure).

    `class_names` (one per label value, e.g. `keras_vae.data.class_names(
    "fashion_mnist")`) name the colour bar's ticks; without them the bar
    shows the label numbers.
    """
    z_mean = np.asarray(z_mean)
    if z_mean.ndim != 2 or z_mean.shape[1] != 2:
        raise ValueError(
            "The latent scatter needs a 2-D latent space. Received z_mean "
            f"of shape {z_mean.shape}."
        )
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    if labels is None:
        ax.scatter(z_mean[:, 0], z_mean[:, 1], s=2, alpha=0.5)
    else:
        labels = np.asarray(labels)
        if class_names is None:
            points = ax.scatter(z_mean[:, 0], z_mean[:, 1], c=labels, s=2,
                                cmap="tab10", alpha=0.7)
            fig.colorbar(points, ax=ax, label="label")
        else:
            names = list(class_names)
            if labels.size and (labels.min() < 0
                                or labels.max() >= len(names)):
                raise ValueError(
                    f"The labels run from {labels.min()} to {labels.max()}, "
                    f"but {len(names)} class names were given "
                    f"({names[:3]}...): pass one name per label value.")
            # One colour per class, and a tick at the middle of each.
            cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20",
                                len(names))
            points = ax.scatter(z_mean[:, 0], z_mean[:, 1], c=labels, s=2,
                                cmap=cmap, vmin=-0.5,
                                vmax=len(names) - 0.5, alpha=0.7)
            bar = fig.colorbar(points, ax=ax, ticks=range(len(names)))
            bar.ax.set_yticklabels(names)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title or "test set in latent space (z_mean)")
    return save_figure(fig, path)


def manifold_grid(n=15, quantile=0.05):
    """z values on an n x n grid through the prior's inverse CDF.

    Equal steps in probability, as in the AEVB paper's manifold figures:
    quantiles from `quantile` to 1 - `quantile` along each axis.
    Returns (n * n, 2), row-major with z[1] decreasing down the rows.
    """
    normal = statistics.NormalDist()
    ticks = [normal.inv_cdf(p) for p in np.linspace(quantile, 1 - quantile, n)]
    return np.array([[x, y] for y in ticks[::-1] for x in ticks],
                    dtype="float32")


def plot_manifold(images, path, n=15, title=None):
    """The decoded manifold: images decoded from `manifold_grid(n)`."""
    canvas = tile(images, n)
    fig, ax = plt.subplots(figsize=(8, 8 * canvas.shape[0] / canvas.shape[1]))
    _show(ax, canvas, title or "decoded latent manifold (prior quantiles)")
    return save_figure(fig, path)
