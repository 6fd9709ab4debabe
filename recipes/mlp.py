"""The TensorFlow Playground, reproduced: small feed-forward networks on 2-D point sets, drawn as they learn.

    zoo run mlp                                  # circle, the Playground's defaults: 98.8% in about 60-75 s
    zoo run mlp --dataset spiral --features x1,x2,x1_sq,x2_sq,x1_x2,sin_x1,sin_x2 --hidden-units 8,8,6
    zoo run mlp --dataset reg_plane --loss arctan  # regression, arctan error
    zoo run mlp --preset lesson_spiral_bigger_relu --output-dir runs/mlp/spiral_relu  # x1, x2 only: 98.8%, 83 s
    zoo run mlp --quick                          # spiral, all features, seconds
    zoo run mlp --data table.csv                 # your own: numeric features and a label or target column

The data sets are generated the way tensorflow/playground's ``src/dataset.ts`` does: circle,
xor, two Gaussians, two spirals, and the regression sets plane and six Gaussians. Defaults are
the Playground's: 500 points (1200 for regression: ``--dataset reg_plane`` applies its
preset), half for training, features x1 and x2, network [4, 2] with tanh, SGD at 0.03,
batch 10. Classification uses a softmax output and cross-entropy rather than the Playground's
tanh output and squared error. Each run draws ``decision_boundary.png`` and, from the weights
recorded after every epoch (``--frames``), ``training.gif`` (the boundary forming beside the
network, epoch and losses), ``network.png`` and ``loss.png`` (recipes/runtime/playground_pictures.py),
all copied to ``results/mlp/``.

The lesson's experiments, as presets (test accuracy of results/mlp.csv rows 10-23; README.md says more):
    lesson_circle, _xor, _gauss, _spiral     the default network on each set: 0.988, 1.000, 1.000, 0.588
    lesson_reg_plane, lesson_reg_gauss       the same on the regression sets: RMSE 0.0342, 0.1846
    lesson_spiral_bigger, _deeper            4 and 6 tanh layers of 8 on x1, x2: 0.868 (350 epochs), 0.988 (600)
    lesson_spiral_bigger_relu                6 ReLU layers of 8: 0.988 in 200 epochs
    lesson_circle_noise                      noise 0.25: 0.816
    lesson_circle_squares                    x1^2 and x2^2, no hidden layer: the circle turns linear, 1.000
    lesson_circle_linear, _sigmoid, _relu    activations (tanh is lesson_circle): 0.652 (a straight
                                             boundary), 0.540 (stuck at chance loss), 0.996
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from recipes.runtime.config import RunConfig
from recipes.runtime.recipe import Recipe

CLASSIFICATION = ("circle", "xor", "gauss", "spiral")
REGRESSION = ("reg_plane", "reg_gauss")
ALL_FEATURES = ("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2")


@dataclasses.dataclass
class Config(RunConfig):
    model: str = "playground"
    dataset: Literal["circle", "xor", "gauss", "spiral", "reg_plane", "reg_gauss"] = "circle"
    noise: float = 0.0  # the Playground's noise slider / 100, from 0 to 0.5
    num_samples: int = 500  # the Playground's 500 points (its regression sets' presets: 1200)
    train_fraction: float = 0.5  # the Playground's "ratio of training to test data"
    features: tuple[str, ...] = ("x1", "x2")  # any of x1 x2 x1_sq x2_sq x1_x2 sin_x1 sin_x2
    hidden_units: tuple[int, ...] = (4, 2)
    activation: Literal["linear", "sigmoid", "tanh", "relu"] = "tanh"
    regularization: Literal["none", "l1", "l2"] = "none"
    regularization_rate: float = 0.0
    loss: Literal["crossentropy", "mse", "rmse", "arctan", "mae"] = "crossentropy"  # regression sets: mse and the others
    epochs: int = 100
    batch_size: int = 10
    learning_rate: float = 0.03
    frames: int = 101  # states drawn in training.gif: every epoch (0 = before training) up to this many, else spread evenly


REGRESSION_PRESET = {"num_samples": 1200, "loss": "mse"}  # the Playground's regression sets
PRESETS = {
    "quick": {"dataset": "spiral", "features": ALL_FEATURES, "hidden_units": (8, 8), "epochs": 60,
              "validation_freq": 10, "learning_rate": 0.1},
    "reg_plane": {"dataset": "reg_plane", **REGRESSION_PRESET},
    "reg_gauss": {"dataset": "reg_gauss", **REGRESSION_PRESET},
    # The lesson's experiments (the docstring says what each shows): the default network on each data set ...
    "lesson_circle": {"dataset": "circle"},
    "lesson_xor": {"dataset": "xor"},
    "lesson_gauss": {"dataset": "gauss"},
    "lesson_spiral": {"dataset": "spiral"},  # a more complex data set, the same network
    "lesson_reg_plane": {"dataset": "reg_plane", **REGRESSION_PRESET},
    "lesson_reg_gauss": {"dataset": "reg_gauss", **REGRESSION_PRESET},
    # ... more layers and neurons for the spiral from x1 and x2 alone ...
    "lesson_spiral_bigger": {"dataset": "spiral", "hidden_units": (8, 8, 8, 8), "epochs": 350},
    "lesson_spiral_deeper": {"dataset": "spiral", "hidden_units": (8, 8, 8, 8, 8, 8), "epochs": 600},
    "lesson_spiral_bigger_relu": {"dataset": "spiral", "hidden_units": (8, 8, 8, 8, 8, 8), "activation": "relu",
                                  "epochs": 200},
    # ... noise, features that make the circle linear, and the activations (tanh is lesson_circle).
    "lesson_circle_noise": {"dataset": "circle", "noise": 0.25},
    "lesson_circle_squares": {"dataset": "circle", "features": ("x1_sq", "x2_sq"), "hidden_units": ()},
    "lesson_circle_linear": {"dataset": "circle", "activation": "linear"},
    "lesson_circle_sigmoid": {"dataset": "circle", "activation": "sigmoid"},
    "lesson_circle_relu": {"dataset": "circle", "activation": "relu"},
}


def generate(name: str, count: int, noise: float, rng):
    """Points and labels as tensorflow/playground's dataset.ts makes them.

    Classification labels are 0/1 (the Playground's -1/+1); regression targets lie in [-1, 1].
    """
    import numpy as np

    half = count // 2
    uniform = rng.uniform
    if name == "circle":
        radius = 5.0
        r = np.concatenate([uniform(0, radius * 0.5, half), uniform(radius * 0.7, radius, count - half)])
        angle = uniform(0, 2 * math.pi, count)
        points = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
        noisy = points + uniform(-radius, radius, (count, 2)) * noise  # noise flips labels near the border
        labels = (np.linalg.norm(noisy, axis=1) < radius * 0.5).astype(int)
    elif name == "xor":
        points = uniform(-5, 5, (count, 2))
        points += np.where(points > 0, 0.3, -0.3)  # the Playground's padding around the axes
        noisy = points + uniform(-5, 5, (count, 2)) * noise
        labels = (noisy[:, 0] * noisy[:, 1] >= 0).astype(int)
    elif name == "gauss":
        variance = 0.5 + 3.5 * noise / 0.5  # d3 linear scale from noise [0, 0.5] to variance [0.5, 4]
        centres = np.repeat([[2.0, 2.0], [-2.0, -2.0]], [half, count - half], axis=0)
        points = centres + rng.normal(0, math.sqrt(variance), (count, 2))
        labels = np.repeat([1, 0], [half, count - half])
    elif name == "spiral":
        def arm(size, delta, label):
            i = np.arange(size)
            r = i / size * 5
            t = 1.75 * i / size * 2 * math.pi + delta
            xy = np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + uniform(-1, 1, (size, 2)) * noise
            return xy, np.full(size, label)
        (first, first_labels), (second, second_labels) = arm(half, 0, 1), arm(count - half, math.pi, 0)
        points, labels = np.concatenate([first, second]), np.concatenate([first_labels, second_labels])
    elif name in REGRESSION:
        radius = 6.0
        points = uniform(-radius, radius, (count, 2))
        noisy = points + uniform(-radius, radius, (count, 2)) * noise
        if name == "reg_plane":
            labels = (noisy[:, 0] + noisy[:, 1]) / 10  # scale [-10, 10] -> [-1, 1]
        else:
            gaussians = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]
            labels = np.zeros(count)
            for cx, cy, sign in gaussians:
                distance = np.hypot(noisy[:, 0] - cx, noisy[:, 1] - cy)
                value = sign * np.clip(1 - distance / 2, 0, 1)  # scale [0, 2] -> [1, 0], clamped
                labels = np.where(np.abs(value) > np.abs(labels), value, labels)
    else:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {[*CLASSIFICATION, *REGRESSION]}")
    return points.astype("float32"), labels.astype("float32" if name in REGRESSION else "int64")


def make_datasets(config: Config):
    import numpy as np

    from recipes.runtime import data
    from recipes.runtime.config import ConfigError

    if config.data:  # a CSV table of your own: numeric features and a label or target column
        from recipes.runtime import user_data

        return user_data.load(config, ("table",))
    if not 0 <= config.noise <= 0.5:
        raise ConfigError(f"noise must be in [0, 0.5] (the Playground's 0-50%), got {config.noise}")
    unknown = [name for name in config.features if name not in ALL_FEATURES]
    if unknown or not config.features:
        raise ConfigError(f"Unknown or no features {unknown or []}; choose from {list(ALL_FEATURES)}")
    if not 0 < config.train_fraction < 1:
        raise ConfigError(f"train_fraction must be in (0, 1), got {config.train_fraction}")
    regression = config.dataset in REGRESSION
    count = config.num_samples
    rng = np.random.default_rng(config.seed)
    points, labels = generate(config.dataset, count, config.noise, rng)
    order = rng.permutation(count)  # the Playground shuffles, then splits
    split = int(count * config.train_fraction)
    train, test = order[:split], order[split:]
    source = (f"generated: TensorFlow Playground {config.dataset}, {count} points, noise {config.noise} "
              f"(tensorflow/playground src/dataset.ts, reimplemented)")
    return data.Datasets(data.from_arrays(points[train], labels[train]), data.from_arrays(points[test], labels[test]),
                         config.dataset, source, len(train), len(test), (2,),
                         0 if regression else 2, [] if regression else ["negative", "positive"],
                         task="regress" if regression else "classify")


def build_model(config: Config, datasets, plan):
    import keras

    import zoo
    from recipes.runtime.config import ConfigError
    from recipes.runtime.train import compile_options

    regression = datasets.task == "regress"
    rate = config.regularization_rate
    table = datasets.table_columns is not None
    model = zoo.build(config.model, input_shape=datasets.input_shape,
                      head="regression" if regression else "classification",
                      **({"num_classes": datasets.num_classes} if datasets.num_classes else {}),
                      input_features=None if table else config.features, hidden_units=config.hidden_units,
                      activation=config.activation, l1=rate if config.regularization == "l1" else 0.0,
                      l2=rate if config.regularization == "l2" else 0.0)
    if table:  # features on their own scales: standardised inside the model, so it takes the raw columns
        normalise = keras.layers.Normalization(name="standardize")
        normalise.adapt(datasets.train.map(lambda features, label: features).batch(1024))
        inputs = keras.Input(datasets.input_shape, name="features")
        model = keras.Model(inputs, model(normalise(inputs)), name=config.model)
    loss_name = config.loss
    if regression == (loss_name == "crossentropy"):
        what = f"--data {config.data!r} (a {'regression' if regression else 'classification'} table)" if table \
            else f"dataset {config.dataset!r}"
        raise ConfigError(f"loss={loss_name!r} does not fit {what}: classification takes crossentropy, "
                          f"regression mse, rmse, mae or arctan (--loss); the Playground's classification sets "
                          f"are {list(CLASSIFICATION)}, its regression sets {list(REGRESSION)}")
    if regression:
        loss = zoo.losses.get(loss_name)
        metrics = [zoo.losses.get_metric(name) for name in ("mse", "rmse", "mae", "arctan")]
    else:
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    model.compile(optimizer=keras.optimizers.SGD(config.learning_rate), loss=loss, metrics=metrics,
                  **compile_options(config))
    return model


def callbacks(run) -> list:
    """Record the network's weights at the epochs training.gif shows (recipes/runtime/playground_states.py)."""
    from recipes.runtime.playground_states import Recorder

    if run.datasets.table_columns is not None:  # not points in the plane: nothing to draw
        return []
    return [Recorder(run.config.epochs, run.config.frames)]


def report(run) -> dict:
    """Draw the learned function over the plane with the train and test points, and the Playground's
    pictures of the recorded states: training.gif, network.png, loss.png (recipes/runtime/playground_pictures.py)."""
    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from recipes.runtime import playground_pictures
    from recipes.runtime.playground_states import Recorder

    model, datasets, config = run.model, run.datasets, run.config
    if datasets.table_columns is not None:  # not points in the plane: nothing to draw
        return {}
    axis_values = np.linspace(-6, 6, 121, dtype="float32")
    grid_x, grid_y = np.meshgrid(axis_values, axis_values)
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    outputs = model.predict(grid, batch_size=4096, verbose=0)
    # Classification: P(positive) - P(negative) in [-1, 1], the Playground's output scale.
    values = outputs[:, 1] - outputs[:, 0] if datasets.num_classes else outputs[:, 0]
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.contourf(grid_x, grid_y, values.reshape(grid_x.shape), levels=np.linspace(-1, 1, 21),
                  cmap="RdBu", extend="both")
    splits = {name: tuple(np.stack(column) for column in zip(*dataset.as_numpy_iterator()))
              for name, dataset in (("train", datasets.train), ("test", datasets.test))}
    for (points, labels), edge in zip(splits.values(), ("white", "black")):
        colours = (2 * labels - 1) if datasets.num_classes else labels
        axis.scatter(points[:, 0], points[:, 1], c=colours, cmap="RdBu", vmin=-1, vmax=1, s=14,
                     edgecolors=edge, linewidths=0.6)
    network = f"network {list(config.hidden_units)} {config.activation}" if config.hidden_units else "no hidden layer"
    title = f"{config.dataset}{f', noise {config.noise:g}' if config.noise else ''}: {len(config.features)} features, {network}"
    axis.set_title(title, fontsize=9)
    axis.set_xlim(-6, 6)
    axis.set_ylim(-6, 6)
    figure.tight_layout()
    figure.savefig(os.path.join(run.output_dir, "decision_boundary.png"), dpi=100)
    plt.close(figure)
    (recorder,) = [callback for callback in run.callbacks if isinstance(callback, Recorder)]
    playground_pictures.draw(model, recorder.states, splits, run.output_dir, title,
                             regression=not datasets.num_classes, log=lambda line: run.log(f"[mlp] {line}"))
    return {}


PICTURES = ("decision_boundary.png", "training.gif", "network.png", "loss.png")
RECIPE = Recipe("mlp", Config, make_datasets, build_model, report=report, callbacks=callbacks, presets=PRESETS,
                data_forms=("table",), publish=lambda config: () if config.data else PICTURES if config.frames > 0 else PICTURES[:1],
                headline=("test_accuracy", "test_rmse"), doc=__doc__,
                summary="Feed-forward networks on the TensorFlow Playground's data sets")
