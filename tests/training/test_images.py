"""Tests of keras_vae.training.images: the TensorBoard image grid."""

import numpy as np

from keras_vae import callbacks as kcb


def test_image_grid_tiles_row_major():
    images = np.arange(5 * 2 * 3, dtype="float32").reshape(5, 2, 3, 1)
    grid = kcb.image_grid(images, columns=3)
    assert grid.shape == (1, 4, 9, 1)
    np.testing.assert_array_equal(grid[0, 0:2, 3:6, 0], images[1, :, :, 0])
    np.testing.assert_array_equal(grid[0, 2:4, 3:6, 0], images[4, :, :, 0])
    np.testing.assert_array_equal(grid[0, 2:4, 6:9, 0], 0.0)  # padding
