"""Recurrent networks on three tasks; the task follows from ``--dataset``.

    zoo run rnn --dataset imdb_reviews       # sentiment, word-level BiLSTM (imdb_bilstm)
    zoo run rnn --dataset imdb_reviews --model imdb_recursive   # the same, a recursive (tree) network
    zoo run rnn --dataset tiny_shakespeare   # character language model (char_lstm)
    zoo run rnn --dataset co2                # weekly Mauna Loa CO2, 12 weeks ahead (lstm_forecaster)
    zoo run rnn --quick [--dataset ...]      # seconds: digits rows, scikit-learn's docs, CO2

- Sentiment: tfds ``imdb_reviews`` (import the raw archive once with ``zoo data import
  imdb_reviews --from DIR``). A ``TextVectorization`` adapted on the training reviews
  (20,000 words) feeds the network; of a longer review the last 400 words are kept, as
  Keras's ``pad_sequences`` does. The run also saves ``text_model.keras``, which takes
  raw review text. This should take about 40 minutes on 2 CPU cores and reach 88.3%
  (3 epochs). Keeping the first 400 words instead reached 86.9%, the first 256 85.5%.
  Reference: the Keras example "Bidirectional LSTM on IMDB" reports about 85-88%.
  ``--model imdb_recursive`` composes the words bottom-up over a balanced binary tree
  with one shared layer (zoo/recursive.py) and is reported in the same table: 3 epochs
  reached 87.37% (87.72% after 2; training accuracy 98%, so it overfits by the third) in
  9 minutes on 2 CPU cores shared with a niced job, against the BiLSTM's 88.27% in 36.
- Language model: tfds ``tiny_shakespeare`` (train 90%, test the last 5% of the text),
  100-character windows; ``test_loss`` is the held-out cross-entropy in nats per
  character, each window starting without context. The run writes ``samples.txt`` and
  copies an excerpt to ``results/rnn/``. ``char_lstm`` (2 x 256) reached 1.582 in 20
  epochs, 86 minutes on 2 shared CPU cores (best epoch 1.569). Reference: a 6-layer,
  384-wide character GPT reaches 1.47 (karpathy/nanoGPT).
- Forecasting: statsmodels' weekly CO2 series (NaNs interpolated), 52 weeks in, the next
  12 out, the last 20% of the weeks held out. ``test_mae``/``test_rmse`` (ppm) stand beside
  ``naive_mae``/``naive_rmse``, the last-value forecast on the same windows: 0.380 ppm
  against 1.646 in 5 minutes (60 epochs).

Speed on 2 CPU cores (TF 2.21, ``benchmarks/rnn_speed.py``, ``benchmarks/RESULTS.md``):
``char_lstm`` trains at about 5,000 characters/s; a tf.data pipeline, steps_per_execution,
XLA and unrolling each measured 1.00x, and the same network in plain PyTorch runs 2.7x
faster (a fused oneDNN LSTM kernel against TensorFlow's step-by-step loop on CPU). That
gap is not won back yet; XLA stays off on CPU (``--jit-compile auto``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from recipes.runtime.config import ConfigError, RunConfig

TASKS = {"imdb_reviews": "classify", "digits": "classify", "tiny_shakespeare": "language_model",
         "sklearn_docs": "language_model", "co2": "forecast", "sunspots": "forecast"}
# Per task: the model and hyper-parameters used when a field is left at 0 / "".
TASK_DEFAULTS = {
    "classify": dict(model="imdb_bilstm", epochs=3, batch_size=64, learning_rate=1e-3, sequence_length=400),
    "language_model": dict(model="char_lstm", epochs=20, batch_size=64, learning_rate=2e-3, sequence_length=100),
    "forecast": dict(model="lstm_forecaster", epochs=60, batch_size=32, learning_rate=1e-3, sequence_length=52),
}
# --quick trains on data that ships with installed packages.
QUICK_DATA = {"imdb_reviews": "digits", "tiny_shakespeare": "sklearn_docs"}
QUICK_DEFAULTS = {"language_model": dict(epochs=3, units=(128,), sequence_length=64, learning_rate=3e-3),
                  "forecast": dict(epochs=5)}
DIGITS_DEFAULTS = dict(model="sequence_lstm", epochs=8, batch_size=32, learning_rate=3e-3)


@dataclasses.dataclass
class Config(RunConfig):
    dataset: Literal["imdb_reviews", "tiny_shakespeare", "co2", "sunspots", "digits", "sklearn_docs"] = "imdb_reviews"
    model: str = ""  # "": the task's default (imdb_bilstm, char_lstm, lstm_forecaster; sequence_lstm on digits)
    units: tuple[int, ...] = ()  # override the model's layer sizes, e.g. --units 256,256
    epochs: int = 0  # 0: the task's default (3, 20, 60)
    batch_size: int = 0  # per replica; 0: the task's default (64, 64, 32)
    learning_rate: float = 0.0  # Adam; 0: the task's default (1e-3, 2e-3, 1e-3)
    vocab_size: int = 20000  # words kept by the IMDB vectorizer
    keep: Literal["first", "last"] = "last"  # which words of a longer review to keep (Keras's pad_sequences keeps the last)
    lr_schedule: Literal["auto", "constant", "cosine"] = "auto"  # auto: cosine decay for sentiment, constant otherwise
    sequence_length: int = 0  # words per review, characters per LM window, or the forecast window (400, 100, 52)
    horizon: int = 12  # forecast steps
    sample_length: int = 1000  # characters generated after training the language model
    temperature: float = 0.8  # sampling temperature for those characters

    def __post_init__(self):
        if self.quick:
            self.dataset = QUICK_DATA.get(self.dataset, self.dataset)
        task = TASKS[self.dataset]
        defaults = dict(TASK_DEFAULTS[task])
        if self.dataset == "digits":
            defaults.update(DIGITS_DEFAULTS)
        if self.quick:
            defaults.update(QUICK_DEFAULTS.get(task, {}))
        for name, value in defaults.items():
            if getattr(self, name) in (0, 0.0, "", ()):
                setattr(self, name, value)

    @property
    def task(self) -> str:
        return TASKS[self.dataset]


def make_datasets(config: Config):
    from recipes.runtime import data, sequences

    if config.dataset == "digits":  # 8x8 digits read row by row: 8 steps of 8 pixels
        datasets = data.digits_datasets(config.seed)
        rows = lambda image, label: (image[..., 0] / 16.0, label)
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


def build_model(config: Config, datasets):
    import keras

    import zoo
    from recipes.runtime.train import compile_options, steps_per_epoch

    options = {"units": config.units} if config.units else {}
    if config.task == "classify":
        if len(datasets.input_shape) == 2:
            options.update(input_shape=datasets.input_shape)
        else:
            options.update(vocab_size=datasets.extras["vocab_size"], sequence_length=config.sequence_length)
        options.update(num_classes=datasets.num_classes)
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    elif config.task == "language_model":
        options.update(vocab_size=len(datasets.extras["vocabulary"]), sequence_length=config.sequence_length)
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    else:
        options.update(window=config.sequence_length, horizon=config.horizon, scale=datasets.extras["scale"])
        loss = "mse"
        metrics = [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse")]
    try:
        model = zoo.build(config.model, **options)
    except TypeError as error:
        raise ConfigError(f"--model {config.model} does not fit the {config.task} task ({error}); "
                          f"use a model from `zoo list` made for it, e.g. {TASK_DEFAULTS[config.task]['model']}")
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine" or (config.lr_schedule == "auto" and config.task == "classify"):
        steps = config.epochs * steps_per_epoch(config, datasets.num_train)
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)
    # Clipping keeps an LSTM's occasional exploding gradient from undoing an epoch.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss=loss,
                  metrics=metrics, **compile_options(config))
    return model


def run_name(config: Config) -> str:
    return config.model + (f"-{'x'.join(map(str, config.units))}" if config.units else "")


def PUBLISH(config: Config) -> tuple:  # noqa: N802  (the runtime's name for published artifacts)
    return {"language_model": ("sample.txt",), "forecast": ("forecast.png",)}.get(config.task, ())


def report(model, datasets, config: Config, run_dir: str) -> dict:
    from recipes.runtime import sequences

    if config.task == "classify" and "vectorizer" in datasets.extras:
        sequences.save_text_model(model, datasets.extras["vectorizer"], run_dir)
    elif config.task == "language_model":
        sequences.write_samples(model, datasets.extras, run_dir, config.sample_length, config.temperature,
                                config.seed)
    elif config.task == "forecast":
        return sequences.forecast_report(model, datasets, run_dir)
    return {}
