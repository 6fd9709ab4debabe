"""What the TensorFlow Playground shows of a network, read from the trained Keras model itself:
its weights recorded at chosen epochs (``Recorder``, a callback), and for each recorded state the
output over the plane, every neuron's own output over the plane, the connections and the losses
(``frames``). ``playground_pictures.py`` draws them; the mlp recipe (``recipes/mlp.py``) uses both.

Nothing here recomputes the network: each state is loaded into the model (``set_weights``) and a
``keras.Model`` over the model's own layers (``probe``) gives the feature, hidden and output values;
the final weights are put back afterwards.

Colours are the Playground's (tensorflow/playground ``src/heatmap.ts`` and ``src/playground.ts``).
A value v in [-1, 1] (classification: P(positive) - P(negative), so saturation is confidence;
regression: the prediction; a neuron: its output; values outside are clamped) is drawn as one of
31 shades from orange #f59322 (-1) through grey #e8eaeb (0) to blue #0877bd (+1), laid at opacity
160/255 on white (``heat_colours``). Points are the opaque colour of their label on the same scale.
A connection is drawn in the colour of its weight (unquantised: blue positive, orange negative,
greyer below |w| = 1) and ``1 + 9 |w| / 5`` pixels wide, 10 from |w| = 5 on (``Link``).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

ORANGE, GREY, BLUE = np.array([245, 147, 34.0]), np.array([232, 234, 235.0]), np.array([8, 119, 189.0])
SHADES = 30  # the Playground's NUM_SHADES: 31 colours from -1 to 1
OPACITY = 160 / 255  # the Playground's heat-map canvas alpha
DENSITY = 100  # grid cells per side over [-6, 6], the Playground's DENSITY
EXTENT = 6.0


def scale_colour(values) -> np.ndarray:
    """The Playground's colour scale, unquantised and opaque: (..., 3) floats for values in [-1, 1]."""
    value = np.clip(np.asarray(values, dtype="float64"), -1, 1)[..., None]
    return np.where(value < 0, GREY + (ORANGE - GREY) * -value, GREY + (BLUE - GREY) * value)


def heat_colours(values) -> np.ndarray:
    """The Playground's heat map: each value quantised to one of 31 shades, at opacity 160/255 on white
    (uint8 RGB, the shape of ``values`` plus 3)."""
    index = np.clip(np.floor((np.asarray(values, dtype="float64") + 1) / 2 * (SHADES + 1)), 0, SHADES)
    shade = scale_colour(index / SHADES * 2 - 1)
    return np.round(255 + OPACITY * (shade - 255)).astype("uint8")


def grid(density: int = DENSITY, extent: float = EXTENT) -> np.ndarray:
    """Cell centres over [-extent, extent]^2, row by row from the top (x2 = +extent), as (density^2, 2)."""
    centres = -extent + 2 * extent * (np.arange(density) + 0.5) / density
    x1, x2 = np.meshgrid(centres, centres[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1).astype("float32")


def output_value(outputs: np.ndarray) -> np.ndarray:
    """The Playground's output scale: P(positive) - P(negative) for a two-class softmax, else the
    first (regression) output."""
    outputs = np.asarray(outputs)
    return outputs[:, 1] - outputs[:, 0] if outputs.shape[-1] == 2 else outputs[:, 0]


def chosen_epochs(epochs: int, frames: int) -> set[int]:
    """Epochs (0: before training, N: after N epochs) whose state is recorded: every one when there
    are at most ``frames`` of them, else ``frames`` spread evenly from the first to the last."""
    if frames <= 0:
        return set()
    if epochs + 1 <= frames:
        return set(range(epochs + 1))
    return {int(round(value)) for value in np.linspace(0, epochs, frames)}


@dataclasses.dataclass
class State:
    epoch: int  # epochs trained when it was taken
    weights: list  # model.get_weights() then


class Recorder(keras.callbacks.Callback):
    """Keeps ``model.get_weights()`` after each chosen epoch, and before the first epoch this fit
    trains (epoch 0, or the epoch a resumed run restarts from). Copies of a few hundred numbers:
    recording costs nothing next to an epoch."""

    def __init__(self, epochs: int, frames: int):
        super().__init__()
        self.chosen = chosen_epochs(epochs, frames)
        self.states: list[State] = []

    def record(self, epoch: int) -> None:
        if self.chosen and not (self.states and self.states[-1].epoch == epoch):
            self.states.append(State(epoch, [np.array(weight) for weight in self.model.get_weights()]))

    def on_epoch_begin(self, epoch, logs=None):
        if not self.states:
            self.record(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.chosen:
            self.record(epoch + 1)


@dataclasses.dataclass(frozen=True)
class Link:
    """One connection: from node ``source`` of column ``layer`` to node ``target`` of column ``layer + 1``."""

    layer: int
    source: int
    target: int
    weight: float

    @property
    def colour(self) -> tuple:
        return tuple(int(round(channel)) for channel in scale_colour(self.weight))

    @property
    def width(self) -> float:
        """Pixels, the Playground's linkWidthScale: |w| from 0 to 5 -> 1 to 10, clamped."""
        return 1 + 9 * min(abs(self.weight), 5.0) / 5


@dataclasses.dataclass
class Frame:
    """One recorded state as the Playground shows it."""

    epoch: int
    train_loss: float  # the compiled loss on the whole split at this state (no weight penalty)
    test_loss: float
    values: np.ndarray  # (DENSITY, DENSITY): output_value over the grid
    maps: list  # per column (features, each hidden layer, output): (DENSITY, DENSITY, units) outputs
    links: list  # per pair of columns: [Link]

    @property
    def background(self) -> np.ndarray:
        """The decision boundary's pixels, one per grid cell: ``heat_colours(values)``."""
        return heat_colours(self.values)


def network_layers(model):
    """(the features layer or None, the Dense layers in order): the columns of the Playground's picture."""
    from zoo.layers import PlaygroundFeatures

    features = [layer for layer in model.layers if isinstance(layer, PlaygroundFeatures)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return (features[0] if features else None), dense


def feature_names(model) -> list[str]:
    features, _ = network_layers(model)
    return list(features.features) if features is not None else ["x1", "x2"]


def probe(model) -> keras.Model:
    """A model over the trained model's own layers whose outputs are the features, each hidden
    layer's activations and the model's output."""
    features, dense = network_layers(model)
    first = features.output if features is not None else model.inputs[0]
    return keras.Model(model.inputs[0], [first, *[layer.output for layer in dense[:-1]], model.outputs[0]],
                       name=f"{model.name}_probe")


def links(model) -> list[list[Link]]:
    """The connections at the model's current weights. The two softmax units of a classifier are
    drawn as the Playground's one output neuron, whose weights are the positive unit's minus the
    negative's (a softmax over two is the sigmoid of that difference)."""
    _, dense = network_layers(model)
    columns = []
    for index, layer in enumerate(dense):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        if index == len(dense) - 1 and kernel.shape[1] == 2:
            kernel = kernel[:, 1:] - kernel[:, :1]
        columns.append([Link(index, source, target, float(kernel[source, target]))
                        for source in range(kernel.shape[0]) for target in range(kernel.shape[1])])
    return columns


def frames(model, states: list[State], splits: dict) -> list[Frame]:
    """A Frame for each state; ``splits``: {"train": (points, labels), "test": ...}. The model ends
    with the weights it had."""
    inspect = probe(model)
    loss = keras.losses.get(model.loss)
    plane = grid()
    inputs = np.concatenate([plane, *(points for points, _ in splits.values())])
    final, made = model.get_weights(), []
    try:
        for state in states:
            model.set_weights(state.weights)
            outputs = [keras.ops.convert_to_numpy(values) for values in inspect(inputs, training=False)]
            losses, start = {}, len(plane)
            for name, (points, labels) in splits.items():
                predicted = outputs[-1][start:start + len(points)]
                losses[name] = float(np.mean(keras.ops.convert_to_numpy(loss(labels, predicted))))
                start += len(points)
            maps = [values[:len(plane)].reshape(DENSITY, DENSITY, -1) for values in outputs[:-1]]
            value = output_value(outputs[-1][:len(plane)]).reshape(DENSITY, DENSITY)
            made.append(Frame(state.epoch, losses["train"], losses["test"], value, [*maps, value[..., None]],
                              links(model)))
    finally:
        model.set_weights(final)
    return made
