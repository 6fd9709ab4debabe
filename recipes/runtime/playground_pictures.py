"""The TensorFlow Playground's pictures of a run, drawn from ``playground_states.frames``:

- ``training.gif`` (and ``training.mp4`` where imageio's ffmpeg writer, ``pip install imageio-ffmpeg``,
  is installed): one frame per recorded epoch, the network as the Playground draws it beside the
  decision boundary with the training points (white rim) and test points (black rim), the epoch
  counter and the training and test loss at that state; the last frame stays 2 s;
- ``network.png``: the network after the last epoch: the input features, each hidden neuron as a
  small heat map of its own output over the plane, each connection a line in its weight's colour
  and as thick as its size, and the output neuron's map (the decision boundary);
- ``loss.png``: training (grey) and test (black) loss at each recorded epoch, the Playground's chart.

Colours and widths: ``playground_states.py``. An input feature's map is its value over the plane
divided by its largest size there (x1 spans -6..6, x1^2 0..36), so each shows its shape.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recipes.runtime import playground_states as states_lib

SUPERSAMPLE = 2  # drawn at twice the size, then halved: smooth lines and rims
NODE, NODE_GAP, COLUMN_GAP = 30, 8, 70  # the Playground's RECT_SIZE is 30
THUMBNAIL_CELLS = 10  # a neuron's map: 10 x 10 cells, as the Playground reduces its 100 x 100 grid
BOUNDARY, MARGIN, HEADER, LABELS = 300, 14, 62, 50
POINT_RADIUS = 3  # the Playground's circles
FRAME_MS, LAST_FRAME_MS = 100, 2000
TRANSPARENT = 255  # the GIF palette index of "as in the frame before"
FEATURE_LABELS = {"x1": "x1", "x2": "x2", "x1_sq": "x1²", "x2_sq": "x2²", "x1_x2": "x1·x2",
                  "sin_x1": "sin(x1)", "sin_x2": "sin(x2)"}
_fonts: dict = {}


def font(size: int):
    """DejaVu Sans (matplotlib's own font: it has the superscript 2), at ``size`` pixels."""
    if size not in _fonts:
        from matplotlib import font_manager

        _fonts[size] = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size * SUPERSAMPLE)
    return _fonts[size]


def to_pixels(points: np.ndarray) -> np.ndarray:
    """Plane coordinates in [-6, 6] -> pixels of the BOUNDARY-sized panel (x2 up)."""
    extent = states_lib.EXTENT
    return np.stack([(points[:, 0] + extent) / (2 * extent) * BOUNDARY,
                     (extent - points[:, 1]) / (2 * extent) * BOUNDARY], axis=1)


def node_positions(units: list[int], top: int) -> list[list[tuple[int, int]]]:
    """Top-left corner of each node, column by column, each column centred vertically."""
    tallest = max(units) * (NODE + NODE_GAP) - NODE_GAP
    positions = []
    for column, count in enumerate(units):
        height = count * (NODE + NODE_GAP) - NODE_GAP
        x = MARGIN + LABELS + column * (NODE + COLUMN_GAP)
        positions.append([(x, top + (tallest - height) // 2 + row * (NODE + NODE_GAP)) for row in range(count)])
    return positions


def node_image(values: np.ndarray) -> Image.Image:
    """A neuron's map as the Playground shows it: the grid averaged over 10 x 10 blocks (its reduceMatrix)."""
    cells = states_lib.DENSITY // THUMBNAIL_CELLS
    blocks = values.reshape(THUMBNAIL_CELLS, cells, THUMBNAIL_CELLS, cells).mean(axis=(1, 3))
    image = Image.fromarray(states_lib.heat_colours(blocks))
    return image.resize((NODE * SUPERSAMPLE, NODE * SUPERSAMPLE), Image.Resampling.NEAREST)


def network_width(units: list[int]) -> int:
    return MARGIN + LABELS + len(units) * NODE + (len(units) - 1) * COLUMN_GAP + MARGIN


def render(frame: states_lib.Frame, features: list[str], splits: dict, title: str, boundary: bool = True,
           regression: bool = False) -> Image.Image:
    """One picture: the network, and with ``boundary`` the decision boundary and the points beside it."""
    units = [column.shape[-1] for column in frame.maps]
    tallest = max(units) * (NODE + NODE_GAP) - NODE_GAP
    width = network_width(units) + ((BOUNDARY + MARGIN) if boundary else 0)
    height = HEADER + max(tallest, BOUNDARY if boundary else 0) + MARGIN
    s = SUPERSAMPLE
    image = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(image)
    positions = node_positions(units, HEADER + max(0, (BOUNDARY - tallest) // 2 if boundary else 0))
    for column in frame.links:
        for link in column:
            (sx, sy), (tx, ty) = positions[link.layer][link.source], positions[link.layer + 1][link.target]
            draw.line([((sx + NODE) * s, (sy + NODE / 2) * s), (tx * s, (ty + NODE / 2) * s)],
                      fill=link.colour, width=max(1, int(round(link.width * s))))
    for column, maps in enumerate(frame.maps):
        for row in range(maps.shape[-1]):
            values = maps[..., row]
            if column == 0:  # an input feature: its shape, at its own scale
                values = values / max(float(np.abs(values).max()), 1e-9)
            x, y = positions[column][row]
            image.paste(node_image(values), (x * s, y * s))
            draw.rectangle([x * s, y * s, (x + NODE) * s - 1, (y + NODE) * s - 1], outline=(170, 170, 170), width=s)
        heading = ("features" if column == 0 else "output" if column == len(units) - 1
                   else f"{units[column]} neuron{'s' if units[column] > 1 else ''}")
        x = positions[column][0][0] + NODE / 2
        draw.text((x * s, (HEADER - 8) * s), heading, fill=(90, 90, 90), font=font(10), anchor="ms")
    for row, name in enumerate(features):
        x, y = positions[0][row]
        draw.text(((x - 6) * s, (y + NODE / 2) * s), FEATURE_LABELS.get(name, name), fill=(60, 60, 60),
                  font=font(10), anchor="rm")
    draw.text((MARGIN * s, 6 * s), f"Epoch {frame.epoch:,}", fill=(0, 0, 0), font=font(15))
    draw.text((MARGIN * s, 28 * s), title, fill=(110, 110, 110), font=font(9))
    if boundary:
        left, top = network_width(units), HEADER
        background = Image.fromarray(frame.background).resize((BOUNDARY * s, BOUNDARY * s), Image.Resampling.NEAREST)
        image.paste(background, (left * s, top * s))
        for name, rim in (("train", (255, 255, 255)), ("test", (0, 0, 0))):
            points, labels = splits[name]
            colours = states_lib.scale_colour(labels if regression else 2 * np.asarray(labels) - 1)
            for (px, py), colour in zip(to_pixels(points), colours):
                if 0 <= px <= BOUNDARY and 0 <= py <= BOUNDARY:
                    r = POINT_RADIUS
                    draw.ellipse([(left + px - r) * s, (top + py - r) * s, (left + px + r) * s, (top + py + r) * s],
                                 fill=tuple(int(c) for c in colour), outline=rim, width=s)
        draw.text(((left + BOUNDARY) * s, 6 * s), f"Test loss {frame.test_loss:.3f}", fill=(0, 0, 0),
                  font=font(11), anchor="ra")
        draw.text(((left + BOUNDARY) * s, 24 * s), f"Training loss {frame.train_loss:.3f}", fill=(110, 110, 110),
                  font=font(11), anchor="ra")
    return image.reduce(s)


def palette() -> Image.Image:
    """One palette for every GIF frame: the heat-map shades, the opaque scale, greys for text."""
    colours = [states_lib.heat_colours(value) for value in np.linspace(-1, 1, states_lib.SHADES + 1)]
    colours += [np.round(states_lib.scale_colour(value)).astype("uint8") for value in np.linspace(-1, 1, 121)]
    colours += [np.array([grey] * 3, "uint8") for grey in np.linspace(0, 255, 52).round()]
    for weight in np.linspace(0.15, 0.85, 4):  # the opaque scale's edges smoothed onto white
        colours += [np.round(255 + weight * (states_lib.scale_colour(value) - 255)).astype("uint8")
                    for value in np.linspace(-1, 1, 13)]
    flat = np.concatenate(colours).tolist()[:3 * TRANSPARENT]
    flat += [255] * (3 * TRANSPARENT - len(flat)) + [255, 0, 255]  # the transparent index: magenta, never near
    image = Image.new("P", (1, 1))
    image.putpalette(flat)
    return image


def write_gif(images: list[Image.Image], path: str) -> None:
    """One shared palette; after the first frame, the pixels a frame keeps from the one before are
    transparent (drawn over it), which shrinks a GIF of slowly changing frames several times."""
    shared = palette()
    indices = [np.asarray(image.quantize(palette=shared, dither=Image.Dither.NONE)) for image in images]
    frames = []
    for index, current in enumerate(indices):
        pixels = current if index == 0 else np.where(current == indices[index - 1], TRANSPARENT, current)
        frame = Image.fromarray(pixels.astype("uint8"), "P")
        frame.putpalette(shared.getpalette())
        frames.append(frame)
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=1,
                   transparency=TRANSPARENT, optimize=False)


def write_mp4(images: list[Image.Image], path: str) -> bool:
    """``training.mp4`` through imageio's ffmpeg plugin; False (nothing written) without one."""
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return False
    import imageio.v2 as imageio

    width, height = (-(-size // 16) * 16 for size in images[0].size)  # H.264 wants multiples of 16
    with imageio.get_writer(path, fps=1000 / FRAME_MS, codec="libx264", quality=8, macro_block_size=16) as writer:
        for image in images + [images[-1]] * (LAST_FRAME_MS // FRAME_MS - 1):
            canvas = Image.new("RGB", (width, height), "white")
            canvas.paste(image, (0, 0))
            writer.append_data(np.asarray(canvas))
    return True


def plot_loss(frames: list[states_lib.Frame], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [frame.epoch for frame in frames]
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.plot(epochs, [frame.train_loss for frame in frames], color="#777777", label="training loss")
    axis.plot(epochs, [frame.test_loss for frame in frames], color="black", label="test loss")
    axis.set_xlabel("epoch")
    axis.set_ylim(bottom=0)
    axis.legend(frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def draw(model, recorded: list, splits: dict, output_dir: str, title: str, regression: bool,
         log=print) -> list[states_lib.Frame]:
    """Write training.gif (and .mp4), network.png and loss.png for the recorded states; returns the frames."""
    frames = states_lib.frames(model, recorded, splits)
    if not frames:
        return frames
    features = states_lib.feature_names(model)
    images = [render(frame, features, splits, title, regression=regression) for frame in frames]
    write_gif(images, os.path.join(output_dir, "training.gif"))
    wrote_mp4 = write_mp4(images, os.path.join(output_dir, "training.mp4"))
    render(frames[-1], features, splits, title, boundary=False).save(os.path.join(output_dir, "network.png"))
    plot_loss(frames, os.path.join(output_dir, "loss.png"))
    log(f"training.gif{' and training.mp4' if wrote_mp4 else ''}: {len(frames)} frames (epochs "
        f"{frames[0].epoch} to {frames[-1].epoch}); network.png, loss.png"
        + ("" if wrote_mp4 else " (no MP4: pip install imageio-ffmpeg)"))
    return frames
