"""``zoo predict RUN_DIR INPUT...``: a trained run's model, used.

RUN_DIR is a run folder (``runs/<recipe>/<model>-<data>``) with its ``model.keras`` and
``data.json``; the model is loaded in safe mode (``--trust-model-code`` for one that carries
Python code). What INPUT is follows from the run's task:

- image classifiers: image files or folders of them; prints the top ``--top-k`` classes with
  their probabilities (class names from the run);
- text classifiers (a run that saved ``text_model.keras``): texts, or ``.txt`` files; the label
  and its probability;
- tables (``--data`` CSV runs of the mlp recipe): a CSV with the run's feature columns; the
  prediction per row;
- character language models: a prompt; a continuation (``--length``, ``--temperature``,
  ``--seed``);
- forecasters: a CSV whose last column (or ``--column``) is the series; the next horizon beside
  the input's last values.

``--json`` prints one JSON list for machines instead.
"""

from __future__ import annotations

import json
import os

import numpy as np

from recipes.runtime.data import DataError
from recipes.runtime.forms import IMAGE_SUFFIXES


class PredictError(DataError):
    """A run folder or an input that cannot be predicted on; the message says why and what to do."""


def read_run(run_dir: str) -> dict:
    facts_path, model_path = os.path.join(run_dir, "data.json"), os.path.join(run_dir, "model.keras")
    if not os.path.isdir(run_dir):
        raise PredictError(f"{run_dir!r} is not a folder; pass a run folder such as runs/cnn/mnist_convnet-mnist")
    missing = [path for path in (model_path, facts_path) if not os.path.exists(path)]
    if missing:
        raise PredictError(f"{run_dir} lacks {[os.path.basename(path) for path in missing]}: it is not a finished "
                           f"run folder, or it was made before `zoo predict` existed (run its command again)")
    with open(facts_path) as handle:
        return json.load(handle)


def image_files(inputs: list[str]) -> list[str]:
    found = []
    for item in inputs:
        if os.path.isdir(item):
            found += sorted(os.path.join(root, name) for root, _, names in os.walk(item) for name in names
                            if name.lower().endswith(IMAGE_SUFFIXES))
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise PredictError(f"{item!r}: no such image file or folder")
    if not found:
        raise PredictError(f"no images in {inputs}")
    return found


def load_images(paths: list[str], input_shape: list[int]) -> np.ndarray:
    """The images as the run's training read them (its mode and size)."""
    from PIL import UnidentifiedImageError

    from recipes.runtime.user_data import image_array

    height, width, channels = input_shape
    arrays = []
    for path in paths:
        try:
            arrays.append(image_array(path, "L" if channels == 1 else "RGB", width, height))
        except (UnidentifiedImageError, OSError) as error:
            raise PredictError(f"{path} is not an image Pillow can read ({error})") from None
    return np.stack(arrays)


def classes(probabilities: np.ndarray, names: list[str], top_k: int) -> list[dict]:
    order = np.argsort(-probabilities)[:top_k]
    return [{"class": names[index] if index < len(names) else str(index), "probability": float(probabilities[index])}
            for index in order]


def predict(run_dir: str, inputs: list[str], top_k: int = 3, trust_code: bool = False, length: int = 200,
            temperature: float = 0.8, seed: int = 0, column: str = "", plot: str = "") -> list[dict]:
    """One answer per input (per row of a table), as plain data."""
    from zoo.backbones import load_model

    facts = read_run(run_dir)
    names, task, shape = facts["class_names"], facts["task"], facts["input_shape"]
    text_model = os.path.join(run_dir, "text_model.keras")
    if task == "classify" and os.path.exists(text_model):
        model = load_model(text_model, trust_code=trust_code)
        from recipes.runtime.user_sequences import read_text

        texts = [read_text(item) if os.path.isfile(item) and item.endswith(".txt") else item for item in inputs]
        probabilities = np.asarray(model.predict(np.array(texts, dtype=object), verbose=0))
        return [{"input": item if len(item) < 60 else item[:57] + "...", "top": classes(row, names, top_k)}
                for item, row in zip(inputs, probabilities)]
    model = load_model(os.path.join(run_dir, "model.keras"), trust_code=trust_code)
    if facts.get("table_columns") or (len(shape) == 1 and task in ("classify", "regress")):
        return predict_table(model, facts, inputs, top_k)  # a table's rows, or the Playground's points
    if task == "classify" and len(shape) == 3:
        paths = image_files(inputs)
        probabilities = np.asarray(model.predict(load_images(paths, shape), verbose=0))
        return [{"input": path, "top": classes(row, names, top_k)} for path, row in zip(paths, probabilities)]
    if task == "language_model":
        import zoo.text

        vocabulary = zoo.text.CharVocabulary.load(os.path.join(run_dir, "vocabulary.json"))
        unknown = sorted({char for prompt in inputs for char in prompt} - set(vocabulary.chars))
        if unknown:
            raise PredictError(f"the prompt has characters the model never saw: {unknown}; its vocabulary is in "
                               f"{os.path.join(run_dir, 'vocabulary.json')}")
        return [{"input": prompt, "continuation": zoo.text.generate(model, vocabulary, prompt, length=length,
                                                                    temperature=temperature, seed=seed)}
                for prompt in inputs]
    if task == "forecast":
        answers = [predict_series(model, path, column, facts.get("series_unit") or "") for path in inputs]
        if plot:
            plot_forecasts(answers, plot)
        return answers
    raise PredictError(f"{run_dir} is a {task} run ({facts['name']}); zoo predict answers for image, text and "
                       f"table classifiers, tables, language models and forecasters")


def predict_table(model, facts: dict, inputs: list[str], top_k: int) -> list[dict]:
    import pandas as pd

    from recipes.runtime.user_data import read_csv

    answers = []
    for path in inputs:
        frame = read_csv(path)
        if facts.get("table_columns"):
            columns = facts["table_columns"]["features"]
            missing = [column for column in columns if column not in frame.columns]
            if missing:
                raise PredictError(f"{path} lacks the feature columns {missing} the model was trained on")
        else:  # trained on generated points: the CSV's numeric columns, as many as the model takes
            columns = [column for column in frame.columns if pd.api.types.is_numeric_dtype(frame[column])]
            if len(columns) != facts["input_shape"][0]:
                raise PredictError(f"{path} has {len(columns)} numeric columns {columns}; the model takes "
                                   f"{facts['input_shape'][0]} numbers per row (e.g. x1,x2 for the Playground)")
        outputs = np.asarray(model.predict(frame[columns].to_numpy("float32"), verbose=0))
        for index, row in enumerate(outputs):
            answer = {"input": f"{path} row {index + 1}"}
            if facts["task"] == "classify":
                answer["top"] = classes(row, facts["class_names"], top_k)
            else:
                answer["prediction"] = float(row[0])
            answers.append(answer)
    return answers


def predict_series(model, path: str, column: str, trained_on: str = "") -> dict:
    import types

    from recipes.runtime import user_sequences
    from recipes.runtime.user_data import read_csv

    if not column and trained_on in read_csv(path, nrows=1).columns:  # the column the run trained on
        column = trained_on
    # Read as training read it: the value column (--column), ordered by a date or time column, gaps filled.
    series = user_sequences.series(path, types.SimpleNamespace(value_column=column))
    values, name = series["values"], series["unit"]
    window = int(model.input_shape[1])
    if len(values) < window:
        raise PredictError(f"{path}: the forecaster reads the last {window} values of {name!r}; it has "
                           f"{len(values)}")
    forecast = np.asarray(model.predict(values[None, -window:, None], verbose=0))[0]
    return {"input": path, "column": name, "last_values": values[-5:].tolist(), "forecast": forecast.tolist(),
            "window": values[-window:].tolist()}


def plot_forecasts(answers: list[dict], path: str) -> None:
    """``--plot``: each input's last window and the forecast after it, one panel per input."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(answers), 1, figsize=(9, 3.2 * len(answers)), squeeze=False)
    for axis, answer in zip(axes[:, 0], answers):
        window, forecast = answer["window"], answer["forecast"]
        axis.plot(range(len(window)), window, color="black", label="input")
        axis.plot(range(len(window), len(window) + len(forecast)), forecast, color="tab:blue", marker=".",
                  label="forecast")
        axis.set_title(f"{os.path.basename(answer['input'])}: {answer['column']}", fontsize=9)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def show(answers: list[dict]) -> str:
    """The answers as lines a person reads."""
    lines = []
    for answer in answers:
        if "top" in answer:
            lines.append(f"{answer['input']}: " + ", ".join(f"{choice['class']} {choice['probability']:.3f}"
                                                            for choice in answer["top"]))
        elif "prediction" in answer:
            lines.append(f"{answer['input']}: {answer['prediction']:.6g}")
        elif "continuation" in answer:
            lines.append(f"{answer['input']}{answer['continuation']}")
        else:
            lines.append(f"{answer['input']}: last values {[round(value, 4) for value in answer['last_values']]} -> "
                         f"next {[round(value, 4) for value in answer['forecast']]}")
    return "\n".join(lines)
