"""zoo.images: a batch of images tiled into one grid and saved as a PNG."""

import numpy as np

import zoo


def test_save_grid_writes_a_png_of_the_tiled_and_enlarged_images(tmp_path):
    images = np.random.default_rng(3).uniform(0, 255, (6, 32, 32, 3)).astype("float32")  # pixel units
    path = zoo.images.save_grid(images, str(tmp_path / "grid.png"), columns=3, scale=2)
    from PIL import Image
    assert Image.open(path).size == (2 * (3 * 34 + 2), 2 * (2 * 34 + 2))  # 3 x 2 images, 2-pixel gaps
