"""Recurrent networks on three tasks; the task follows from ``--dataset``, which applies its preset.

    zoo run rnn --dataset imdb_reviews       # sentiment, word-level BiLSTM, one epoch: 88.00% in 5 min on 2
                                             # CPU cores (87% reached in that epoch, 258 s)
    zoo run rnn --dataset imdb_reviews --model imdb_recursive   # the same, a recursive (tree) network
    zoo run rnn --dataset tiny_shakespeare   # character language model (char_lstm, FusedLSTM): 1.5825 nats/char
                                             # in 20 epochs, 35 min on 2 busy CPU cores (1.6 after 22 min)
    zoo run rnn --dataset co2                # weekly Mauna Loa CO2, 12 weeks ahead: MAE 0.380 ppm in 5 min
    zoo run rnn --quick [--dataset sklearn_docs|co2]   # seconds: digits rows, scikit-learn's docs, CO2
    zoo run rnn --data reviews/ | corpus.txt | series.csv   # your own texts, corpus or series (its preset)

- Sentiment: tfds ``imdb_reviews`` (``zoo data import imdb_reviews --from DIR`` once); a
  ``TextVectorization`` adapted on the training reviews (20,000 words), the last 400 words of
  a longer review kept, as Keras's ``pad_sequences`` does; also saves ``text_model.keras``
  (raw text in). Reference: the Keras example "Bidirectional LSTM on IMDB" reports 85-88%.
- Language model: tfds ``tiny_shakespeare``, 100-character windows; ``test_loss`` is nats per
  character on the test split. Writes ``samples.txt``; an excerpt goes to ``results/rnn/``.
  Reference: karpathy/nanoGPT's 6-layer character GPT reaches 1.47.
- Forecasting: statsmodels' weekly CO2 series, 52 weeks in, 12 out, the last 20% held out;
  ``naive_mae``/``naive_rmse`` are the last-value forecast's errors on the same windows.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from recipes.runtime.config import ConfigError, Per, RunConfig
from recipes.runtime.recipe import Recipe

TASKS = {"imdb_reviews": "classify", "digits": "classify", "tiny_shakespeare": "language_model",
         "sklearn_docs": "language_model", "co2": "forecast", "sunspots": "forecast"}
LANGUAGE_MODEL = {"model": "char_lstm", "epochs": 20, "batch_size": 64, "learning_rate": 2e-3, "sequence_length": 100,
                  "lr_schedule": "constant"}
FORECAST = {"model": "lstm_forecaster", "epochs": 60, "batch_size": 32, "learning_rate": 1e-3, "sequence_length": 52,
            "lr_schedule": "constant"}
# --quick by data set (all bundled with installed packages): digits rows, scikit-learn's docs, a series.
QUICK_BY_DATASET = {
    "digits": {"model": "sequence_lstm", "epochs": 8, "batch_size": 32, "learning_rate": 3e-3, "sequence_length": 8,
               "lr_schedule": "cosine"},
    "sklearn_docs": {**LANGUAGE_MODEL, "epochs": 3, "units": (128,), "sequence_length": 64, "learning_rate": 3e-3},
    "co2": {**FORECAST, "epochs": 5}, "sunspots": {**FORECAST, "epochs": 5},
}
DATA_FORMS = ("text", "corpus", "series")
PRESETS = {
    # --data of each form: its task's settings, and (with --quick) seconds' worth of them.
    "text": {"epochs": 3, "learning_rate": 1e-3},  # your own texts: fewer than IMDB's 25,000, more epochs
    "corpus": LANGUAGE_MODEL, "quick_corpus": QUICK_BY_DATASET["sklearn_docs"],
    "series": FORECAST, "quick_series": QUICK_BY_DATASET["co2"],
    "quick_text": {"epochs": 8, "batch_size": 32, "learning_rate": 3e-3, "sequence_length": 100, "vocab_size": 5000,
                   "units": (32,)},
    "quick": {"dataset": "digits", **{field: Per("dataset", {dataset: values[field] for dataset, values
                                                            in QUICK_BY_DATASET.items() if field in values})
                                      for field in ("model", "epochs", "batch_size", "learning_rate",
                                                    "sequence_length", "lr_schedule")},
              "units": Per("dataset", {"digits": (), "sklearn_docs": (128,), "co2": (), "sunspots": ()})},
    "tiny_shakespeare": {"dataset": "tiny_shakespeare", **LANGUAGE_MODEL},
    "sklearn_docs": {"dataset": "sklearn_docs", **LANGUAGE_MODEL},
    "digits": {"dataset": "digits", **QUICK_BY_DATASET["digits"]},
    "co2": {"dataset": "co2", **FORECAST},
    "sunspots": {"dataset": "sunspots", **FORECAST},
}


@dataclasses.dataclass
class Config(RunConfig):
    dataset: str = "imdb_reviews"  # also tiny_shakespeare, co2, sunspots, digits, sklearn_docs, or a tfds text set
    model: str = "imdb_bilstm"  # the other tasks' presets: char_lstm, lstm_forecaster (sequence_lstm on digits)
    units: tuple[int, ...] = ()  # override the model's layer sizes, e.g. --units 256,256; empty: the model's own
    epochs: int = 1  # IMDB: one epoch at 2e-3, cosine to 0, reached 88.00%; 3 epochs at 1e-3 88.27% in 8x the time
    batch_size: int = 64  # per replica
    learning_rate: float = 2e-3  # Adam
    vocab_size: int = 20000  # words kept by the IMDB vectorizer
    keep: Literal["first", "last"] = "last"  # which words of a longer review to keep (Keras's pad_sequences keeps the last)
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # cosine decay to 0 over the run
    sequence_length: int = 400  # words per review, characters per LM window, or the forecast window
    horizon: int = 12  # forecast steps
    sample_length: int = 1000  # characters generated after training the language model
    temperature: float = 0.8  # sampling temperature for those characters

    @property
    def task(self) -> str:
        if self.data:  # your own: a text folder or CSV, a corpus file, a series CSV
            from recipes.runtime import forms

            return forms.task_of(self.data, self.data_format, DATA_FORMS)
        return TASKS.get(self.dataset, "classify")  # another tfds set: a supervised text classification


def make_datasets(config: Config):
    from recipes.runtime import data, sequences

    if config.data:
        from recipes.runtime import user_sequences

        return user_sequences.sequence_datasets(config, DATA_FORMS, config.sequence_length, config.horizon)

    if config.dataset == "digits":  # 8x8 digits read row by row: 8 steps of 8 pixels
        datasets = data.digits_datasets(config.seed)
        rows = lambda image, label: (image[..., 0] / datasets.pixel_max, label)
        datasets.train, datasets.test = datasets.train.map(rows), datasets.test.map(rows)
        datasets.input_shape = (8, 8)
        return datasets
    if config.task == "classify":
        return sequences.text_classification(config.dataset, data.resolve_data_dir(config.data_dir),
                                             config.vocab_size, config.sequence_length, config.keep)
    if config.task == "language_model":
        return sequences.character_windows(config.dataset, data.resolve_data_dir(config.data_dir),
                                           config.sequence_length)
    return sequences.forecast_windows(config.dataset, config.sequence_length, config.horizon)


def build_model(config: Config, datasets, plan):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    options = {"units": config.units} if config.units else {}
    if config.task == "classify":
        if len(datasets.input_shape) == 2:
            options.update(input_shape=datasets.input_shape)
        else:
            options.update(vocab_size=datasets.vocab_size, sequence_length=config.sequence_length)
        options.update(num_classes=datasets.num_classes)
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    elif config.task == "language_model":
        options.update(vocab_size=datasets.vocab_size, sequence_length=config.sequence_length)
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    else:
        options.update(window=config.sequence_length, horizon=config.horizon, scale=datasets.series.scale)
        loss = "mse"
        metrics = [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse")]
    try:
        model = zoo.build(config.model, **options)
    except TypeError as error:
        raise ConfigError(f"--model {config.model} does not fit the {config.task} task ({error}); "
                          f"use a model from `zoo list` made for it, e.g. {DEFAULT_MODELS[config.task]}") from None
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                               decay_steps=config.epochs * plan.steps_per_epoch)
    # Clipping keeps an LSTM's occasional exploding gradient from undoing an epoch.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss=loss,
                  metrics=metrics, **compile_options(config))
    return model


def run_name(config: Config) -> str:
    return config.model + (f"-{'x'.join(map(str, config.units))}" if config.units else "")


DEFAULT_MODELS = {"classify": "imdb_bilstm", "language_model": "char_lstm", "forecast": "lstm_forecaster"}


def published(config: Config) -> tuple:
    return {"language_model": ("sample.txt",), "forecast": ("forecast.png",)}.get(config.task, ())


def report(run) -> dict:
    from recipes.runtime import sequences

    model, datasets, config = run.model, run.datasets, run.config
    if config.task == "classify" and datasets.vocabulary is not None:
        sequences.save_text_model(model, datasets.vocabulary, run.output_dir)
    elif config.task == "language_model":
        sequences.write_samples(model, datasets, run.output_dir, config.sample_length, config.temperature,
                                config.seed)
    elif config.task == "forecast":
        return sequences.forecast_report(model, datasets, run.output_dir)
    return {}


# The row records when the test metric first reached these: IMDB's accuracy, the character
# models' cross-entropy in nats per character.
TARGETS = {"imdb_reviews": ("val_accuracy", ">=", 0.87), "tiny_shakespeare": ("val_loss", "<=", 1.6)}

RECIPE = Recipe("rnn", Config, make_datasets, build_model, report=report, run_name=run_name, presets=PRESETS,
                data_forms=DATA_FORMS, targets=TARGETS,
                publish=published, headline=("test_accuracy", "test_mae", "naive_mae"), doc=__doc__,
                columns={"naive_mae, naive_rmse": "forecasting: errors of the last-value forecast on the same "
                                                  "test windows"},
                summary="Recurrent networks: IMDB sentiment, a character language model, time-series forecasting")
