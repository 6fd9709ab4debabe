"""Transformers on three tasks; the task follows from ``--dataset``, which applies its preset.

    zoo run transformer --dataset imdb_reviews       # encoder classifier, one epoch: 88.08% in 8 min on 2 CPU
                                                     # cores (87% reached in that epoch, 456 s)
    zoo run transformer --dataset tiny_shakespeare   # character GPT (char_gpt_small): 1.5839 nats/char in 30
                                                     # epochs, 56 min on 2 busy CPU cores (1.6 after 45 min)
    zoo run transformer --preset char_gpt_base       # character GPT, 256 characters of context: 1.5991 nats/char
                                                     # in 84 min on 2 CPU cores
    zoo run transformer --dataset mnist              # Vision Transformer (vit_mnist): 97.80% in 8 epochs
    zoo run transformer --quick [--dataset sklearn_docs|digits]   # seconds: digit tokens, scikit-learn's docs, digits
    zoo run transformer --data reviews/ | corpus.txt | images/  # your own texts, corpus or image folder

- Sentiment: tfds ``imdb_reviews``, the ``rnn`` recipe's 20,000-word vectorizer, the last 256
  words of a review, padding masked in attention and pooling; saves ``text_model.keras``.
  Reference: the Keras example "Text classification with Transformer" reports 84-88%.
- Language model: tfds ``tiny_shakespeare``, windows as long as the model's context;
  ``test_loss`` is nats per character. ``--random-windows`` crops each epoch's training
  windows at new offsets, as nanoGPT samples them. Reference: nanoGPT's 6-layer, 384-wide
  character GPT reaches 1.47.
- Images: a ViT on MNIST (7x7 patches) or, with ``--model vit_cifar``, on CIFAR-10.

All tasks train with AdamW (weight decay on weight matrices only), a linear warm-up and cosine
decay to a tenth. Rows carry ``tokens_per_second`` and ``flops_per_example``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from recipes.runtime.config import ConfigError, Per, RunConfig
from recipes.runtime.recipe import Recipe

TASKS = {"imdb_reviews": "classify", "digit_tokens": "classify", "tiny_shakespeare": "language_model",
         "sklearn_docs": "language_model", "mnist": "image", "fashion_mnist": "image", "cifar10": "image",
         "digits": "image"}
MODEL_CONTEXT = {"char_gpt_tiny": 32, "char_gpt_small": 128, "char_gpt_base": 256}  # characters each is built for
LANGUAGE_MODEL = {"model": "char_gpt_small", "epochs": 10, "batch_size": 64, "learning_rate": 2e-3, "dropout": 0.0,
                  "sequence_length": Per("model", MODEL_CONTEXT)}
IMAGE = {"model": "vit_mnist", "epochs": 10, "batch_size": 128, "learning_rate": 1e-3, "dropout": 0.1}
# --quick by data set (all bundled with installed packages).
QUICK_BY_DATASET = {
    "digit_tokens": {"model": "transformer_classifier_tiny", "epochs": 6, "batch_size": 32, "learning_rate": 3e-3,
                     "dropout": 0.1, "patch_size": 0},
    "sklearn_docs": {"model": "char_gpt_tiny", "epochs": 4, "batch_size": 16, "learning_rate": 3e-3, "dropout": 0.0,
                     "patch_size": 0},
    "digits": {"model": "vit_tiny", "patch_size": 2, "epochs": 12, "batch_size": 32, "learning_rate": 3e-3,
               "dropout": 0.1},
}
DATA_FORMS = ("text", "corpus", "images")
PRESETS = {
    # --data of each form: its task's settings, and (with --quick) seconds' worth of them.
    "text": {"epochs": 2},  # your own texts: fewer than IMDB's 25,000, more epochs
    "corpus": LANGUAGE_MODEL, "quick_corpus": {**QUICK_BY_DATASET["sklearn_docs"], "sequence_length": 32},
    "images": IMAGE, "quick_images": QUICK_BY_DATASET["digits"],
    "quick_text": {**QUICK_BY_DATASET["digit_tokens"], "sequence_length": 100, "vocab_size": 5000},
    "quick": {"dataset": "digit_tokens",
              **{field: Per("dataset", {dataset: values[field] for dataset, values in QUICK_BY_DATASET.items()})
                 for field in QUICK_BY_DATASET["digits"]},
              "sequence_length": Per("model", MODEL_CONTEXT, otherwise=64)},  # read by language models only
    # 1.5839 nats after 30 epochs, 1.6 first reached at epoch 22 (results/transformer.csv); 10 epochs without
    # random windows, dropout or weight decay stopped at 1.687.
    "tiny_shakespeare": {"dataset": "tiny_shakespeare", **LANGUAGE_MODEL, "epochs": 30, "dropout": 0.1,
                         "weight_decay": 0.1, "random_windows": True},
    "char_gpt_base": {"dataset": "tiny_shakespeare", **LANGUAGE_MODEL, "model": "char_gpt_base", "batch_size": 8,
                      "learning_rate": 1e-3, "random_windows": True, "weight_decay": 0.1, "epochs": 9},
    "sklearn_docs": {"dataset": "sklearn_docs", **LANGUAGE_MODEL},
    **{name: {"dataset": name, **IMAGE} for name in ("mnist", "fashion_mnist", "cifar10", "digits")},
}


@dataclasses.dataclass
class Config(RunConfig):
    dataset: str = "imdb_reviews"  # also tiny_shakespeare, mnist, fashion_mnist, cifar10, digit_tokens, sklearn_docs,
    # digits, or a tfds text set
    model: str = "transformer_classifier_small"  # the other tasks' presets: char_gpt_small, vit_mnist
    epochs: int = 1  # IMDB: one epoch of warm-up and cosine decay reached 88.08%; two reached 87.66%
    batch_size: int = 64  # per replica
    learning_rate: float = 1e-3  # peak AdamW learning rate
    warmup_fraction: float = 0.05  # share of the steps spent warming the learning rate up from 0
    weight_decay: float = 0.01  # AdamW, on weight matrices only
    dropout: float = 0.1  # embeddings and residual branches (attention dropout halved the CPU speed: off)
    depth: int = 0  # override the model's number of blocks; 0: the model's own
    embed_dim: int = 0  # override the model's width; 0: the model's own
    num_heads: int = 0  # override the model's attention heads; 0: the model's own
    patch_size: int = 0  # ViT: override the patch size; 0: the model's own
    vocab_size: int = 20000  # words kept by the IMDB vectorizer
    keep: Literal["first", "last"] = "last"  # which words of a longer review to keep
    sequence_length: int = 256  # words per review, or characters of GPT context (its presets: the model's own)
    sample_length: int = 1000  # characters generated after training the language model
    temperature: float = 0.8  # sampling temperature for those characters
    top_k: int = 0  # sample among the k likeliest characters only; 0: all
    random_windows: bool = False  # GPT: crop training windows at random offsets, new every epoch

    def __post_init__(self):
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1); got {self.dropout}")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"--warmup-fraction must be in [0, 1); got {self.warmup_fraction}")

    @property
    def task(self) -> str:
        if self.data:  # your own: a text folder or CSV, a corpus file, an image folder
            from recipes.runtime import forms

            return forms.task_of(self.data, self.data_format, DATA_FORMS)
        return TASKS.get(self.dataset, "classify")  # another tfds set: a supervised text classification


def digit_token_datasets(seed: int):
    """scikit-learn's 8x8 digits as 64 tokens each: grey level v (0-16 in the file) is token v + 1,
    so the text classifier's path (ids, embedding, masking of 0) runs on bundled data."""
    import tensorflow as tf

    from recipes.runtime import data

    datasets = data.digits_datasets(seed)
    levels = lambda image: tf.cast(tf.round(tf.reshape(image, (64,)) * (16.0 / datasets.pixel_max)), tf.int32)
    to_tokens = lambda image, label: (levels(image) + 1, label)
    datasets.train, datasets.test = datasets.train.map(to_tokens), datasets.test.map(to_tokens)
    datasets.name, datasets.input_shape, datasets.tokens_per_example = "digit_tokens", (64,), 64
    datasets.vocab_size = 18  # the 17 grey levels and the padding id 0
    return datasets


def make_datasets(config: Config):
    from recipes.runtime import data, sequences

    if config.data:
        from recipes.runtime import user_sequences

        if config.task == "image":
            return data.images(config)
        return user_sequences.sequence_datasets(config, ("text", "corpus"), config.sequence_length,
                                                random_offsets=config.random_windows)

    if config.dataset == "digit_tokens":
        return digit_token_datasets(config.seed)
    if config.task == "classify":
        return sequences.text_classification(config.dataset, data.resolve_data_dir(config.data_dir),
                                             config.vocab_size, config.sequence_length, config.keep)
    if config.task == "language_model":
        return sequences.character_windows(config.dataset, data.resolve_data_dir(config.data_dir),
                                           config.sequence_length, random_offsets=config.random_windows)
    return data.image_classification(config.dataset, config.data_dir, config.seed)


def model_options(config: Config, datasets) -> dict:
    overrides = {"depth": config.depth, "embed_dim": config.embed_dim, "num_heads": config.num_heads,
                 "patch_size": config.patch_size}
    options = {name: value for name, value in overrides.items() if value}
    options["dropout"] = config.dropout
    if config.task == "classify":
        options.update(vocab_size=datasets.vocab_size, sequence_length=datasets.input_shape[0],
                       num_classes=datasets.num_classes)
    elif config.task == "language_model":
        options.update(vocab_size=datasets.vocab_size, sequence_length=config.sequence_length)
    else:
        options.update(input_shape=datasets.input_shape, num_classes=datasets.num_classes)
    return options


def build_model(config: Config, datasets, plan):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    if config.patch_size and config.task != "image":
        raise ConfigError(f"--patch-size applies to the Vision Transformer (image data sets), not to "
                          f"--dataset {config.dataset}")
    try:
        model = zoo.build(config.model, **model_options(config, datasets))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {config.model} does not fit the {config.task} task ({error}); use a model "
                          f"from `zoo list` made for it, e.g. {DEFAULT_MODELS[config.task]}") from None
    steps = config.epochs * plan.steps_per_epoch
    warmup = int(steps * config.warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(steps - warmup, 1), alpha=0.1,
                                                      warmup_target=config.learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, clipnorm=1.0)
    # Decay weight matrices only: not biases, LayerNorm scales/offsets, embeddings or the class token.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embedding", "class_token"])
    if config.task == "language_model":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], **compile_options(config))
    return model


def run_name(config: Config) -> str:
    parts = [config.model] + [f"{key}{value}" for key, value in
                              (("d", config.depth), ("w", config.embed_dim), ("p", config.patch_size))
                              if value and not config.quick]
    return "-".join(parts)


DEFAULT_MODELS = {"classify": "transformer_classifier_small", "language_model": "char_gpt_small",
                  "image": "vit_mnist"}


def model_shape(model) -> dict:
    """Depth, width and (ViT) patch size of a built zoo transformer, read off its layers."""
    from zoo.layers import PatchEmbedding, TransformerBlock

    blocks = [layer for layer in model.layers if isinstance(layer, TransformerBlock)]
    shape = {"depth": len(blocks), "embed_dim": blocks[0].embed_dim if blocks else 0}
    patches = [layer for layer in model.layers if isinstance(layer, PatchEmbedding)]
    if patches:
        shape["patch_size"] = patches[0].patch_size
    return shape


def report(run) -> dict:
    from recipes.runtime import sequences
    from zoo.layers import PatchEmbedding
    from zoo.transformer import forward_flops

    model, datasets, config = run.model, run.datasets, run.config
    tokens = datasets.tokens_per_example or None
    metrics = {}
    patches = [layer for layer in model.layers if isinstance(layer, PatchEmbedding)]
    if patches:  # a ViT's tokens: its patches and the class token
        tokens = patches[0].num_patches + 1
        metrics["tokens_per_second"] = round(run.examples / run.train_seconds * tokens)
    metrics.update(flops_per_example=forward_flops(model, tokens=tokens), **model_shape(model))
    if config.task == "classify" and datasets.vocabulary is not None:
        sequences.save_text_model(model, datasets.vocabulary, run.output_dir)
    elif config.task == "language_model":
        sequences.write_samples(model, datasets, run.output_dir, config.sample_length, config.temperature,
                                config.seed, top_k=config.top_k or None)
    return metrics


# The row records when the test metric first reached these: IMDB's accuracy, the character
# models' cross-entropy in nats per character.
TARGETS = {"imdb_reviews": ("val_accuracy", ">=", 0.87), "tiny_shakespeare": ("val_loss", "<=", 1.6)}

RECIPE = Recipe(
    "transformer", Config, make_datasets, build_model, report=report, run_name=run_name, presets=PRESETS,
    data_forms=DATA_FORMS, targets=TARGETS,
    publish=lambda config: ("sample.txt",) if config.task == "language_model" else (), doc=__doc__,
    columns={"flops_per_example": "transformers: forward-pass matrix-product FLOPs of one example (training is "
                                  "about 3x; zoo.transformer.forward_flops)",
             "depth, embed_dim, patch_size": "transformers: blocks, width and (ViT) patch size of the trained model"},
    summary="Transformers: an IMDB encoder classifier, a character GPT, a Vision Transformer")
