"""Tests of keras_vae.plotting: image tiling, the manifold grid, and that
figures are written whole."""

import numpy as np
import pytest
import tensorflow_probability as tfp

from keras_vae import plotting


def test_tile_places_image_i_at_row_i_div_ncols():
    images = np.arange(5 * 2 * 3, dtype="float32").reshape(5, 2, 3, 1) / 30.0
    canvas = plotting.tile(images, ncols=2)
    assert canvas.shape == (3 * 2, 2 * 3)
    for i in range(5):
        r, c = divmod(i, 2)
        np.testing.assert_array_equal(
            canvas[2 * r:2 * r + 2, 3 * c:3 * c + 3], images[i, ..., 0])
    # The empty sixth cell is white; flat (N, D) images are squared.
    np.testing.assert_array_equal(canvas[4:, 3:], 1.0)
    flat = plotting.tile(np.zeros((2, 16)), ncols=2)
    assert flat.shape == (4, 8)


def test_tile_refuses_what_is_not_images():
    with pytest.raises(ValueError, match=r"Received shape \(2, 3, 4, 5, 6\)"):
        plotting.tile(np.zeros((2, 3, 4, 5, 6)), ncols=2)


def test_manifold_grid_is_the_priors_quantiles():
    grid = plotting.manifold_grid(n=5, quantile=0.1)
    probs = np.linspace(0.1, 0.9, 5)
    ticks = tfp.distributions.Normal(0.0, 1.0).quantile(probs).numpy()
    assert grid.shape == (25, 2)
    # Row-major: x runs along a row, z[1] decreases down the rows.
    np.testing.assert_allclose(grid[:5, 0], ticks, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grid[::5, 1], ticks[::-1], rtol=1e-5, atol=1e-6)


def test_figures_are_written_whole(tmp_path):
    path = tmp_path / "figs" / "grid.png"
    out = plotting.plot_image_grid(np.random.rand(6, 4, 4), str(path), ncols=3)
    assert out == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["grid.png"]
