"""Images as pictures: tile a batch of images into one grid, and save it as a PNG.

    zoo.images.save_grid(images, "samples.png", columns=10, pixel_max=255.0)   # (N, H, W, C) pixels

Images are in pixel units, ``[0, pixel_max]``; the grid is uint8 with white gaps between
images. Pillow is imported only when a PNG is written.
"""

from __future__ import annotations

import numpy as np


def image_grid(images: np.ndarray, columns: int = 10, pixel_max: float = 255.0, padding: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, C)`` images row by row into one uint8 picture with ``padding`` pixel gaps."""
    images = np.asarray(images, "float32")
    if images.ndim != 4:
        raise ValueError(f"image_grid takes (count, height, width, channels) images, got shape {images.shape}")
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, channels), 255,
                   np.uint8)
    pixels = np.clip(np.round(images / pixel_max * 255.0), 0, 255).astype(np.uint8)
    for index, image in enumerate(pixels):
        top, left = padding + index // columns * (height + padding), padding + index % columns * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_grid(images: np.ndarray, path: str, columns: int = 10, pixel_max: float = 255.0, scale: int = 2) -> str:
    """Write ``image_grid(images)`` as a PNG, enlarged ``scale`` times (nearest neighbour)."""
    from PIL import Image

    grid = image_grid(images, columns, pixel_max)
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path
