"""The Playground's pictures of an mlp run (recipes/runtime/playground_states.py, playground_pictures.py):
recorded states are the model's weights, frames are the model's predictions in the documented colours,
connections carry their weights, and the recipe writes one GIF frame per recorded epoch."""

import contextlib
import importlib.util
import io

import keras
import numpy as np
import pytest
from PIL import Image, ImageSequence

import zoo
from recipes.__main__ import main
from recipes.mlp import generate
from recipes.runtime import playground_pictures as pictures
from recipes.runtime import playground_states as states
from recipes.runtime import pictures as published, results

# heat_colours of -1, 0 and +1, worked out by hand from the Playground's colours at opacity 160/255 on white.
FULL_BLUE, MIDDLE_GREY, FULL_ORANGE = (100, 170, 214), (241, 242, 242), (249, 187, 116)


def splits(name="circle", count=120, seed=0):
    points, labels = generate(name, count, 0.0, np.random.default_rng(seed))
    half = count // 2
    order = np.random.default_rng(seed).permutation(count)
    return {"train": (points[order[:half]], labels[order[:half]]), "test": (points[order[half:]], labels[order[half:]])}


def small_model(regression=False, hidden_units=(3, 2)):
    keras.utils.set_random_seed(1)
    model = zoo.build("playground", input_shape=(2,), input_features=("x1", "x2", "x1_sq"), hidden_units=hidden_units,
                      head="regression" if regression else "classification")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse" if regression else "sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def trained():
    """A classifier trained 4 epochs with a Recorder, and a plain callback's copy of its weights after each epoch."""
    data = splits()
    model = small_model()
    initial = [np.array(weight) for weight in model.get_weights()]
    after_epoch = []
    copy = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: after_epoch.append([np.array(weight) for weight in model.get_weights()]))
    recorder = states.Recorder(epochs=4, frames=101)
    model.fit(*data["train"], epochs=4, batch_size=10, verbose=0, callbacks=[recorder, copy])
    return model, recorder, [initial, *after_epoch], data


def test_recorded_states_are_the_models_weights_at_those_epochs(trained):
    model, recorder, expected, _ = trained
    assert [state.epoch for state in recorder.states] == [0, 1, 2, 3, 4]
    for state, weights in zip(recorder.states, expected):
        assert len(state.weights) == len(weights)
        for recorded, actual in zip(state.weights, weights):
            np.testing.assert_array_equal(recorded, actual)
    assert not np.array_equal(recorder.states[0].weights[1], recorder.states[-1].weights[1])  # copies, not views
    # A long run is thinned evenly, keeping the first and the last epoch.
    assert states.chosen_epochs(10, 4) == {0, 3, 7, 10} and states.chosen_epochs(3, 101) == {0, 1, 2, 3}
    thinned = states.Recorder(epochs=6, frames=3)
    small = small_model()
    small.fit(*splits()["train"], epochs=6, batch_size=30, verbose=0, callbacks=[thinned])
    assert [state.epoch for state in thinned.states] == [0, 3, 6]
    np.testing.assert_array_equal(thinned.states[-1].weights[0], small.get_weights()[0])


def test_the_colour_mapping_is_the_playgrounds():
    colours = states.heat_colours(np.array([-1.0, -0.99, 0.0, 0.99, 1.0, 7.0]))
    assert [tuple(colour) for colour in colours] == [FULL_ORANGE, FULL_ORANGE, MIDDLE_GREY, FULL_BLUE, FULL_BLUE,
                                                     FULL_BLUE]
    blue_side = states.heat_colours(np.linspace(0, 1, 11))  # more confident: more saturated blue, less red
    assert np.all(np.diff(blue_side[:, 0].astype(int)) <= 0) and blue_side[0, 0] > blue_side[-1, 0]


def test_a_frames_background_is_model_predict_on_the_grid(trained):
    model, recorder, _, data = trained
    final = [np.array(weight) for weight in model.get_weights()]
    frames = states.frames(model, recorder.states, data)
    assert [frame.epoch for frame in frames] == [0, 1, 2, 3, 4]
    for before, after in zip(final, model.get_weights()):  # frames() put the trained weights back
        np.testing.assert_array_equal(before, after)
    for frame, state in zip(frames[1::2], recorder.states[1::2]):
        model.set_weights(state.weights)
        probabilities = model.predict(states.grid(), batch_size=4096, verbose=0)
        value = (probabilities[:, 1] - probabilities[:, 0]).reshape(states.DENSITY, states.DENSITY)
        np.testing.assert_allclose(frame.values, value, atol=1e-6)
        np.testing.assert_array_equal(frame.background, states.heat_colours(value))
        confident = value > 0.95
        assert (frame.background[confident] == FULL_BLUE).all() and (frame.background[value < -0.95] == FULL_ORANGE).all()
        # The loss shown is the compiled loss of this state on the whole split.
        test_loss = model.evaluate(*data["test"], verbose=0)
        assert frame.test_loss == pytest.approx(test_loss, rel=1e-5)
    model.set_weights(final)
    # The picture shows that background: a grid cell with no point near it has its colour in the rendered frame.
    frame = frames[-1]
    image = np.asarray(pictures.render(frame, states.feature_names(model), data, "test"))
    left, top = pictures.network_width([column.shape[-1] for column in frame.maps]), pictures.HEADER
    points = np.concatenate([pictures.to_pixels(points) for points, _ in data.values()])
    cell = pictures.BOUNDARY / states.DENSITY
    checked = 0
    for row, column in [(5, 5), (5, 94), (94, 5), (94, 94), (50, 50), (20, 70)]:
        centre = np.array([(column + 0.5) * cell, (row + 0.5) * cell])
        if np.min(np.linalg.norm(points - centre, axis=1)) > pictures.POINT_RADIUS + 3:
            pixel = image[int(top + centre[1]), int(left + centre[0])]
            assert tuple(pixel) == tuple(frame.background[row, column]), (row, column)
            checked += 1
    assert checked >= 3


def test_the_network_pictures_line_for_a_known_weight_has_its_colour_and_width():
    model, data = small_model(), splits()
    weights = model.get_weights()
    kernel = model.get_layer("hidden_0").kernel  # features (x1, x2, x1_sq) -> 3 neurons
    index = next(i for i, weight in enumerate(model.weights) if weight is kernel)
    weights[index][0, 1], weights[index][1, 0] = 2.5, -0.4
    frame = states.frames(model, [states.State(7, weights)], data)[0]
    by_end = {(link.layer, link.source, link.target): link for column in frame.links for link in column}
    strong, weak = by_end[(0, 0, 1)], by_end[(0, 1, 0)]
    assert (strong.weight, weak.weight) == (2.5, pytest.approx(-0.4))
    assert strong.colour == (8, 119, 189)  # blue: positive, |w| >= 1 at full colour
    assert weak.colour == (237, 199, 155)  # orange, 40% of the way from the grey
    assert strong.width == pytest.approx(1 + 9 * 2.5 / 5) and weak.width == pytest.approx(1 + 9 * 0.4 / 5)
    assert strong.width / weak.width == pytest.approx(5.5 / 1.72)
    assert len(frame.links[0]) == 3 * 3 and len(frame.links[1]) == 3 * 2 and len(frame.links[2]) == 2
    # The output neuron: the positive softmax unit's weights minus the negative one's.
    output = weights[-2]
    assert [link.weight for link in frame.links[2]] == pytest.approx(list(output[:, 1] - output[:, 0]))
    # Each hidden neuron's map is that neuron's own output: a sub-model of the same layers.
    hidden = keras.Model(model.inputs[0], model.get_layer("hidden_0").output)
    model.set_weights(weights)
    np.testing.assert_allclose(frame.maps[1].reshape(-1, 3), hidden.predict(states.grid(), verbose=0), atol=1e-6)


def test_regression_colours_follow_the_predicted_value():
    data = splits("reg_plane", 120)
    model = small_model(regression=True)
    model.fit(*data["train"], epochs=15, batch_size=10, verbose=0)
    frame = states.frames(model, [states.State(15, model.get_weights())], data)[0]
    predicted = model.predict(states.grid(), verbose=0)[:, 0].reshape(states.DENSITY, states.DENSITY)
    np.testing.assert_allclose(frame.values, predicted, atol=1e-6)
    np.testing.assert_array_equal(frame.background, states.heat_colours(predicted))
    high, low = np.unravel_index(predicted.argmax(), predicted.shape), np.unravel_index(predicted.argmin(), predicted.shape)
    assert predicted[high] > 0.3 and predicted[low] < -0.3  # reg_plane: (x1 + x2) / 10, -1 to 1 over the plane
    assert high[0] < states.DENSITY / 2 < low[0] and low[1] < states.DENSITY / 2 < high[1]  # highest at the top right
    blueness = frame.background[..., 2].astype(int) - frame.background[..., 0]
    assert blueness[high] > 0 > blueness[low]
    assert frame.test_loss == pytest.approx(model.evaluate(*data["test"], verbose=0), rel=1e-5)


def run_mlp(tmp_path, *options):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["run", "mlp", "--dataset", "circle", "--num-samples", "80", "--verbose", "0",
                       "--output-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"), *options])
    assert status == 0, err.getvalue()[-3000:]
    return out.getvalue()


def test_the_recipe_writes_a_gif_frame_per_recorded_epoch_and_publishes_the_pictures(tmp_path):
    log = run_mlp(tmp_path, "--epochs", "6", "--frames", "4")
    mp4 = importlib.util.find_spec("imageio_ffmpeg") is not None  # the test extra installs it
    assert f"training.gif{' and training.mp4' if mp4 else ''}: 4 frames (epochs 0 to 6)" in log, log
    assert (tmp_path / "run" / "training.mp4").exists() == mp4
    gif = Image.open(tmp_path / "run" / "training.gif")
    assert gif.format == "GIF" and gif.n_frames == 4
    shown = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    assert len({frame.size for frame in shown}) == 1 and gif.info["loop"] == 0
    assert not np.array_equal(np.asarray(shown[0]), np.asarray(shown[-1]))  # the boundary moved
    for name in ("network.png", "loss.png", "decision_boundary.png"):
        assert Image.open(tmp_path / "run" / name).size[0] > 200, name
    row = results.read_csv(tmp_path / "results" / "mlp.csv").iloc[0]
    readme = (tmp_path / "results" / "README.md").read_text()
    for kind in ("training.gif", "network.png", "loss.png"):
        assert f'<img src="mlp/{published.published_name(row, kind)}"' in readme, kind
        assert (tmp_path / "results" / "mlp" / published.published_name(row, kind)).exists()


def test_mp4_where_a_writer_is_installed(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="no MP4 writer installed (pip install imageio-ffmpeg)")
    import imageio.v2 as imageio

    images = [Image.new("RGB", (100, 70), colour) for colour in ("white", "orange", "blue")]
    assert pictures.write_mp4(images, str(tmp_path / "training.mp4"))
    reader = imageio.get_reader(str(tmp_path / "training.mp4"))
    assert reader.count_frames() == 3 + pictures.LAST_FRAME_MS // pictures.FRAME_MS - 1
