"""Sequence data for the text and time-series recipes: word-vectorised text
classification, character language-model windows, forecasting windows, and the reports
built on them (a text-input model, generated samples, the naive forecast baseline).

Shared by every recipe that trains on sequences, whatever the network (recurrent or
transformer), so tokenisation and windowing exist once.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np

from recipes.runtime.data import AUTOTUNE, DataError, Datasets, from_arrays, load_text_classification, \
    load_text_corpus

# --- text classification -------------------------------------------------------------


def text_classification(name: str, data_dir: str, vocab_size: int, sequence_length: int,
                        keep: str = "first") -> Datasets:
    """(token ids, label) examples; the vectorizer is adapted on the training texts only.

    Texts longer than ``sequence_length`` words keep their ``keep="first"`` or ``"last"`` words.
    """
    train, test, num_train, num_test, class_names, source = load_text_classification(name, data_dir)
    return vectorized(train, test, num_train, num_test, class_names, name, source, vocab_size, sequence_length, keep)


def vectorized(train, test, num_train: int, num_test: int, class_names: list, name: str, source: str,
               vocab_size: int, sequence_length: int, keep: str = "first") -> Datasets:
    """(token ids, label) examples of (text, label) datasets; the vectorizer is adapted on ``train`` only."""
    import zoo.text

    vectorizer = zoo.text.word_vectorizer(train.map(lambda text, label: text).batch(1024), vocab_size,
                                          sequence_length, keep=keep)
    to_ids = lambda text, label: (vectorizer(text[None])[0], label)
    return Datasets(train.map(to_ids, num_parallel_calls=AUTOTUNE), test.map(to_ids, num_parallel_calls=AUTOTUNE),
                    name, source, num_train, num_test, (sequence_length,), len(class_names), class_names,
                    vocabulary=vectorizer, vocab_size=zoo.text.vocabulary_size(vectorizer),
                    tokens_per_example=sequence_length)


def save_text_model(model, vectorizer, run_dir: str) -> str:
    """Save ``model`` behind its vectorizer as ``text_model.keras``: raw text in, predictions out."""
    import zoo.text

    path = os.path.join(run_dir, "text_model.keras")
    zoo.text.with_text_input(vectorizer, model).save(path)
    return path


# --- character language modelling -----------------------------------------------------

def sklearn_docs_corpus() -> tuple[dict, str]:
    """scikit-learn's bundled data-set descriptions (about 43,000 characters of English),
    split 90/5/5 in order as tfds splits tiny_shakespeare."""
    import sklearn
    import sklearn.datasets

    files = sorted(glob.glob(os.path.join(os.path.dirname(sklearn.datasets.__file__), "descr", "*.rst")))
    text = "".join(open(path, encoding="utf-8").read() for path in files)
    if not text:
        raise DataError(f"scikit-learn {sklearn.__version__} ships no data-set descriptions to train on")
    train_end = int(len(text) * 0.9)
    validation_end = train_end + int((len(text) - train_end) * 0.5)
    texts = {"train": text[:train_end], "validation": text[train_end:validation_end], "test": text[validation_end:]}
    return texts, f"scikit-learn {sklearn.__version__} sklearn/datasets/descr/*.rst ({len(files)} files, bundled)"


def require_one_window(ids: np.ndarray, length: int) -> None:
    if len(ids) < length + 1:
        raise DataError(f"A text of {len(ids)} characters is too short for one window of {length} + 1")


def windows(ids: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows of ``length`` inputs and the same window shifted by one as targets."""
    require_one_window(ids, length)
    count = (len(ids) - 1) // length
    return ids[:count * length].reshape(count, length), ids[1:count * length + 1].reshape(count, length)


def character_windows(name: str, data_dir: str, sequence_length: int, random_offsets: bool = False) -> Datasets:
    """(ids, next ids) windows of a character corpus; the vocabulary is every character in it.

    Test windows are consecutive and fixed. Training windows are too, unless
    ``random_offsets``: then each training example is a random ``sequence_length + 1`` crop
    of a ``2 * sequence_length + 1`` chunk (chunks start every ``sequence_length``
    characters), drawn anew every epoch, so a model cannot memorise fixed window
    boundaries; an epoch still covers the text about once.
    """
    texts, source = sklearn_docs_corpus() if name == "sklearn_docs" else load_text_corpus(name, data_dir)
    return windows_of(texts, name, source, sequence_length, random_offsets)


def windows_of(texts: dict, name: str, source: str, sequence_length: int, random_offsets: bool = False) -> Datasets:
    """``character_windows`` of a corpus already split into {"train", "validation", "test"} texts."""
    import zoo.text

    vocabulary = zoo.text.CharVocabulary.from_text("".join(texts.values()))
    train_ids = vocabulary.encode(texts["train"])
    batch_map = None
    if random_offsets:
        chunks = overlapping_chunks(train_ids, sequence_length)
        train, num_train = from_arrays(chunks, np.zeros(len(chunks), "int32")), len(chunks)
        batch_map = lambda batch, _: random_crops(batch, sequence_length)
    else:
        x_train, y_train = windows(train_ids, sequence_length)
        train, num_train = from_arrays(x_train, y_train), len(x_train)
    x_test, y_test = windows(vocabulary.encode(texts["test"]), sequence_length)
    offsets = ", random training offsets each epoch" if random_offsets else ""
    return Datasets(train, from_arrays(x_test, y_test), name,
                    f"{source}; {len(texts['train']):,} train / {len(texts['test']):,} test characters{offsets}",
                    num_train, len(x_test), (sequence_length,), train_batch_map=batch_map, task="language_model",
                    vocabulary=vocabulary, vocab_size=len(vocabulary), prompt=texts["test"][:60],
                    tokens_per_example=sequence_length)


def overlapping_chunks(ids: np.ndarray, length: int) -> np.ndarray:
    """Chunks of ``2 * length + 1`` ids starting every ``length`` ids (the last one may end
    early in the text, so it is padded by repeating the text's start: a crop rarely reaches it)."""
    require_one_window(ids, length)
    count = max(1, (len(ids) - 1) // length - 1)
    padded = np.concatenate([ids, ids[:2 * length + 1]])
    starts = np.arange(count)[:, None] * length
    return padded[starts + np.arange(2 * length + 1)]


def random_crops(chunks, length: int):
    """(ids, next ids) from a random ``length + 1`` crop of each ``2 * length + 1`` chunk."""
    import tensorflow as tf

    offsets = tf.random.uniform((tf.shape(chunks)[0], 1), 0, length + 1, dtype=tf.int32)
    crops = tf.gather(chunks, offsets + tf.range(length + 1)[None], batch_dims=1)
    return crops[:, :-1], crops[:, 1:]


def write_samples(model, datasets: Datasets, run_dir: str, length: int, temperature: float, seed: int,
                  excerpt_chars: int = 600, top_k: int | None = None) -> str:
    """Generate ``length`` characters after the prompt from the test text; write ``samples.txt``
    (with the vocabulary beside it as ``vocabulary.json``) and the excerpt ``sample.txt``."""
    import zoo.text

    vocabulary, prompt = datasets.vocabulary, datasets.prompt
    vocabulary.save(os.path.join(run_dir, "vocabulary.json"))
    sample = zoo.text.generate(model, vocabulary, prompt, length=length, temperature=temperature, top_k=top_k,
                               seed=seed)
    header = f"# prompt (the first 60 characters of the test split), then {length} sampled characters at " \
             f"temperature {temperature}{f', top-k {top_k}' if top_k else ''}, seed {seed}\n"
    with open(os.path.join(run_dir, "samples.txt"), "w", encoding="utf-8") as handle:
        handle.write(header + prompt + sample + "\n")
    with open(os.path.join(run_dir, "sample.txt"), "w", encoding="utf-8") as handle:
        handle.write(header + prompt + sample[:excerpt_chars] + "\n")
    return sample


# --- time-series forecasting ----------------------------------------------------------

def load_series(name: str) -> tuple[np.ndarray, str, str]:
    """``(values, unit, source)`` of a real series bundled with statsmodels."""
    import statsmodels
    import statsmodels.api as sm

    if name == "co2":
        frame = sm.datasets.co2.load_pandas().data
        values = frame["co2"].interpolate(method="time").to_numpy()
        unit, what = "ppm", "weekly Mauna Loa CO2 1958-2001, NaNs interpolated in time"
    elif name == "sunspots":
        values = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
        unit, what = "sunspot number", "yearly sunspot activity 1700-2008"
    else:
        raise DataError(f"Unknown series {name!r}; expected one of ['co2', 'sunspots']")
    return values.astype("float32"), unit, f"statsmodels {statsmodels.__version__} {name} ({what}, bundled)"


def make_windows(series: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(window, 1)`` input and the ``horizon`` values that follow it."""
    count = len(series) - window - horizon + 1
    if count < 1:
        raise DataError(f"A series of {len(series)} values is shorter than one window of {window} inputs plus "
                        f"{horizon} forecast steps; lower --sequence-length or --horizon")
    starts = np.arange(count)[:, None]
    inputs = series[starts + np.arange(window)][..., None]
    targets = series[starts + window + np.arange(horizon)]
    return inputs, targets


def forecast_windows(name: str, window: int, horizon: int, test_fraction: float = 0.2) -> Datasets:
    """Chronological split: training windows end before the last ``test_fraction`` of the
    series; test windows forecast into it (their inputs may reach back into the training part)."""
    series, unit, source = load_series(name)
    return forecasts_of(series, unit, name, source, window, horizon, test_fraction)


def forecasts_of(series: np.ndarray, unit: str, name: str, source: str, window: int, horizon: int,
                 test_fraction: float = 0.2) -> Datasets:
    """``forecast_windows`` of a series already loaded."""
    split = int(len(series) * (1 - test_fraction))
    if split - window - horizon + 1 < 1 or len(series) - split < horizon:
        raise DataError(f"{name} has {len(series)} values: too few for windows of {window} + {horizon} with the "
                        f"last {test_fraction:.0%} held out; lower --sequence-length or --horizon")
    x_train, y_train = make_windows(series[:split], window, horizon)
    x_test, y_test = make_windows(series[split - window:], window, horizon)
    return Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test), name, source, len(x_train),
                    len(x_test), (window, 1), task="forecast",
                    series=Series(series, unit, split, float(np.std(x_train - x_train[:, -1:, :])), x_test, y_test))


@dataclasses.dataclass
class Series:
    """A forecasting set's series and held-out windows (``Datasets.series``)."""

    values: np.ndarray
    unit: str
    split: int  # the first held-out step
    scale: float  # the spread of the training windows' changes from their last value (the model's scale)
    x_test: np.ndarray
    y_test: np.ndarray


def forecast_report(model, datasets: Datasets, run_dir: str) -> dict:
    """The naive (last value) forecast's errors on the test windows, and ``forecast.png``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_test, y_test = datasets.series.x_test, datasets.series.y_test
    naive = np.repeat(x_test[:, -1, :], y_test.shape[1], axis=1)
    predictions = model.predict(x_test, verbose=0)
    horizon = y_test.shape[1]
    figure, axis = plt.subplots(figsize=(10, 4))
    split, series = datasets.series.split, datasets.series.values
    axis.plot(np.arange(split - 3 * horizon, len(series)), series[split - 3 * horizon:], color="black",
              label="observed")
    for index, origin in enumerate(range(0, len(x_test), horizon)):
        steps = split + origin + np.arange(horizon)
        axis.plot(steps, predictions[origin], color="tab:blue", label="model" if index == 0 else None)
        axis.plot(steps, naive[origin], color="tab:orange", linestyle="--", label="naive" if index == 0 else None)
    axis.set_title(f"{datasets.name}: {horizon}-step forecasts over the held-out part")
    axis.set_xlabel("step")
    axis.set_ylabel(datasets.series.unit)
    axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(run_dir, "forecast.png"), dpi=100)
    plt.close(figure)
    return {"naive_mae": float(np.mean(np.abs(naive - y_test))),
            "naive_rmse": float(np.sqrt(np.mean((naive - y_test) ** 2)))}

