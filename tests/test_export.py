"""zoo export: the quick runs' models of cnn, rnn (raw text in, and an LSTM on digit rows),
transformer and finetune as SavedModel, TFLite and ONNX, each artifact run in its own runtime
against model.predict; an untrained conditional GAN's generator and VAE in run folders of their
own; the refusals through the CLI, with their exit status and no traceback."""

import concurrent.futures
import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

from recipes.runtime import export
from tests.conftest import assert_handled_failure, run_cli
from tests.test_user_data import package_texts

QUICK = {  # the quick presets cut to one epoch: seconds each
    "cnn": ["cnn", "--quick", "--epochs", "1"],
    "rnn_text": ["rnn", "--quick", "--data", "TEXTS", "--epochs", "1"],
    "rnn": ["rnn", "--quick", "--epochs", "1"],  # sequence_lstm on digit rows
    "transformer": ["transformer", "--quick", "--epochs", "1"],
    "finetune": ["finetune", "--quick", "--head-epochs", "1", "--finetune-epochs", "1", "--scratch", "false"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each quick run once, two at a time (2 cores), every file under a scratch folder."""
    folder = tmp_path_factory.mktemp("export-runs")
    for label, texts in package_texts().items():
        (folder / "texts" / label).mkdir(parents=True)
        for index, text in enumerate(texts):
            (folder / "texts" / label / f"{index}.txt").write_text(text, encoding="utf-8")

    def train(name):
        options = [str(folder / "texts") if option == "TEXTS" else option for option in QUICK[name]]
        return run_cli("run", *options, "--verbose", "0", "--output-dir", str(folder / name), "--results-dir",
                       str(folder / "results"), cwd=str(folder))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = dict(zip(QUICK, pool.map(train, QUICK)))
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return {name: folder / name for name in QUICK}


def digits(count=6):
    return load_digits().images[:count].astype("float32") * (255.0 / 16.0)  # 0-255, as the runs read them


INPUTS = {  # each run's raw inputs, as zoo predict gives them
    "cnn": lambda: digits()[..., None],
    "finetune": lambda: digits()[..., None],
    "transformer": lambda: (np.round(digits() * 16 / 255).reshape(-1, 64) + 1).astype("int32"),  # grey level + 1
    "rnn": lambda: digits(),  # 8 rows of 8 pixels
    "rnn_text": lambda: np.array(["The iris data set has three classes of fifty instances each.",
                                  "Longley's data on employment, for the least-squares regressions",
                                  "a"], dtype=object),
}


def run_artifact(format: str, path: str, inputs: list):
    """The artifact's output, from its own runtime: no Keras, no zoo."""
    import tensorflow as tf

    names = ["noise", "label"] if len(inputs) == 2 else None
    if format == "saved_model":
        artifact = tf.saved_model.load(path)  # kept in a name: its variables die with it
        return np.asarray(artifact.serve(inputs if names else tf.constant(inputs[0])))
    if format == "tflite":
        runner = tf.lite.Interpreter(model_path=path).get_signature_runner("serving_default")
        feeds = dict(zip(names, inputs)) if names else {runner.get_input_details().popitem()[0]: inputs[0]}
        return runner(**feeds)["output_0"]
    import onnxruntime

    session = onnxruntime.InferenceSession(path)
    return session.run(None, {spec.name: value for spec, value in zip(session.get_inputs(), inputs)})[0]


def check_against_keras(run_dir, format, tmp_path, inputs, batch_size=0, atol=1e-4):
    """Export ``run_dir`` to ``format`` and compare the artifact's outputs with model.predict's."""
    from zoo.backbones import load_model

    written = export.export(str(run_dir), format, out=str(tmp_path / export.FORMATS[format]),
                            batch_size=batch_size)
    model = load_model(written["model"])
    model = model.generator if written["task"] == "generate" else model
    expected = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    np.testing.assert_allclose(run_artifact(format, written["path"], inputs), expected, atol=atol, rtol=1e-5)
    return written


SERVED = [(run, format) for run in ("cnn", "transformer", "finetune") for format in export.FORMATS] + [
    ("rnn_text", "saved_model"), ("rnn", "saved_model"), ("rnn", "onnx")]


@pytest.mark.parametrize("run, format", SERVED)
def test_an_exported_quick_model_answers_as_model_predict(runs, run, format, tmp_path):
    written = check_against_keras(runs[run], format, tmp_path, [INPUTS[run]()])
    assert written["model"].endswith("text_model.keras" if run == "rnn_text" else "model.keras")
    if run == "rnn_text":
        assert written["inputs"] == ["text: string (batch)"]  # raw strings in, as zoo predict takes them


def test_tflite_of_a_recurrent_model_needs_a_fixed_batch_and_then_answers(runs, tmp_path):
    result = run_cli("export", str(runs["rnn"]), "--format", "tflite")
    assert_handled_failure(result, 1, None, "recurrent layers", "--batch-size 1")
    assert not (runs["rnn"] / "export").exists()  # a failed export leaves nothing behind
    written = check_against_keras(runs["rnn"], "tflite", tmp_path, [INPUTS["rnn"]()], batch_size=6)
    assert written["inputs"] == ["sequence: float32 (6, 8, 8)"]


@pytest.mark.parametrize("format, reason", [("tflite", "Flex delegate"), ("onnx", "ONNX has no operators")])
def test_raw_text_models_are_refused_where_strings_cannot_go(runs, format, reason):
    result = run_cli("export", str(runs["rnn_text"]), "--format", format)
    assert_handled_failure(result, 2, None, "takes raw strings", reason, "--format saved_model")
    assert not (runs["rnn_text"] / "export").exists()


def untrained_run(folder, model, task: str):
    """A run folder as a recipe leaves it (model.keras, data.json) around an untrained zoo model."""
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "data.json").write_text(json.dumps({"name": "digits", "task": task, "input_shape": [8, 8, 1],
                                                  "class_names": [str(index) for index in range(10)]}))
    return folder


@pytest.mark.parametrize("format", list(export.FORMATS))
def test_a_conditional_gans_generator_and_a_vae_export(format, tmp_path):
    import zoo

    gan = untrained_run(tmp_path / "gan", zoo.build("conditional_dcgan", latent_dim=8, image_shape=(8, 8, 1),
                                                    width=4), "generate")
    noise, labels = np.random.default_rng(0).normal(size=(3, 8)).astype("float32"), np.array([0, 3, 9], "int32")
    written = check_against_keras(gan, format, tmp_path / "gan", [noise, labels], atol=1e-3)  # pixels 0-255
    assert written["inputs"] == ["noise: float32 (batch, 8)", "label: int32 (batch)"]
    vae = untrained_run(tmp_path / "vae", zoo.build("tiny_vae"), "reconstruct")
    check_against_keras(vae, format, tmp_path / "vae", [digits(3)[..., None]])


def test_the_cli_writes_the_default_path_and_replaces_it_only_with_force(runs):
    result = run_cli("export", str(runs["cnn"]), "--format", "tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    path = runs["cnn"] / "export" / "model.tflite"
    assert f"Wrote {path}" in result.stdout and "image: float32 (batch, 8, 8, 1)" in result.stdout
    assert "get_signature_runner()(image=x)" in result.stdout
    before = path.stat().st_mtime_ns
    assert_handled_failure(run_cli("export", str(runs["cnn"]), "--format", "tflite"), 2, None, "exists", "--force")
    assert path.stat().st_mtime_ns == before
    result = run_cli("export", str(runs["cnn"]), "--format", "tflite", "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    assert path.stat().st_mtime_ns != before and sorted(p.name for p in path.parent.iterdir()) == ["model.tflite"]


def test_refusals_before_anything_is_loaded(runs, tmp_path):
    assert_handled_failure(run_cli("export", str(tmp_path / "nowhere"), "--format", "onnx"), 2, None,
                           "is not a folder")
    assert_handled_failure(run_cli("export", str(runs["cnn"]), "--format", "coreml"), 2, None,
                           "invalid choice: 'coreml'")
    dream = tmp_path / "dream"
    dream.mkdir()
    (dream / "data.json").write_text(json.dumps({"task": "dream"}))
    assert_handled_failure(run_cli("export", str(dream), "--format", "saved_model"), 2, None,
                           "deepdream run", "nothing to export")
    missing = tmp_path / "no_tf2onnx" / "tf2onnx"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError('No module named tf2onnx')\n")
    result = run_cli("export", str(runs["cnn"]), "--format", "onnx",
                     env={"PYTHONPATH": os.pathsep.join([str(missing.parent), os.environ.get("PYTHONPATH", "")])})
    assert_handled_failure(result, 2, None, "needs tf2onnx", "pip install -e '.[export]'")


def test_an_onnx_file_with_an_unconverted_tensorflow_op_is_recognised(tmp_path):
    """What tf2onnx writes for an op it cannot convert (it keeps the TensorFlow op's name) is found."""
    import onnx
    from onnx import TensorProto, helper

    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [None])
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"]), helper.make_node("Erfc", ["y"], ["z"])],
                              "g", [value("x")], [value("z")])
    onnx.save(helper.make_model(graph), tmp_path / "model.onnx")
    assert export.nonstandard_operators(str(tmp_path / "model.onnx")) == ["Erfc"]
