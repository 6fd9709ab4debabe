"""Transformers on three tasks; the task follows from ``--dataset``.

    zoo run transformer --dataset imdb_reviews       # sentiment, encoder classifier (transformer_classifier_small)
    zoo run transformer --dataset tiny_shakespeare   # character GPT (char_gpt_small; --model char_gpt_base below)
    zoo run transformer --dataset mnist              # Vision Transformer (vit_mnist); also fashion_mnist, cifar10
    zoo run transformer --quick [--dataset ...]      # seconds: digits as pixel tokens, scikit-learn's docs, digits

- Sentiment: tfds ``imdb_reviews`` (``zoo data import imdb_reviews --from DIR`` once), the
  same 20,000-word vectorizer as the ``rnn`` recipe, the last 256 words of a longer review.
  Padding is masked in attention and pooling. Attention's cost grows with the square of
  the length: on 2 CPU cores the 2-block classifier trained at about 30 reviews/s with 400
  words and 62/s with 200, so the default is 256 (``--sequence-length 400`` for more). Saves ``text_model.keras`` (raw text in).
  Reference: the Keras example "Text classification with Transformer" reports roughly
  84-88% after 2 epochs.
- Language model: tfds ``tiny_shakespeare``, windows as long as the model's context
  (``--sequence-length`` to change it), next-character cross-entropy; ``test_loss`` is
  nats per character on the test split (each window starting without context). Writes
  ``samples.txt``; an excerpt goes to ``results/transformer/``. Reference:
  karpathy/nanoGPT's 6-layer, 384-wide character GPT (10.7M parameters) reaches 1.47
  validation loss. ``--random-windows`` crops each epoch's training windows at new random
  offsets, as nanoGPT samples them, so fixed window boundaries cannot be memorised.
  What decided the run below was the number of steps: with 8,192 characters a step
  (``char_gpt_small``, batch 64 x 128, and ``char_gpt_base``, 32 x 256) the held-out loss
  sat near 2.4 for the first two epochs (246 steps); with 2,048 (``char_gpt_base``,
  batch 8 x 256) it was at 2.03 after two epochs and 1.60 after nine.
- Images: a ViT on MNIST (7x7 patches, 16 tokens + class token) or, with ``--model
  vit_cifar``, on 32x32 CIFAR-10 (the imported local copy is reported as ``cifar10_jpeg75``).
  The row records the patch size and depth.

Every row carries ``tokens_per_second`` (training) and ``flops_per_example`` (forward
matrix-product FLOPs of one example, ``zoo.transformer.forward_flops``; training costs about
three times that), so utilisation can be computed. All tasks train with AdamW (weight decay
0.01, not on biases, norms or embeddings), a linear warm-up and cosine decay to a tenth.

Attention dropout is off: on 2 CPU cores it halved the IMDB classifier's training speed
(16 against 30 examples/s).

Measured (results/transformer.csv, 2 CPU cores, TF 2.21): the IMDB classifier 87.66% in 2
epochs (44 minutes on one thread); ``vit_mnist`` 97.80% on MNIST in 8
epochs (34 minutes on one thread); ``char_gpt_base`` (1.85M parameters, 256 characters of
context) **1.5991 nats/char** on the test split after 9 epochs in 84 minutes on 2 cores
(short tests beside it in the first two epochs; 1,788 characters/s), with ``--batch-size 8
--learning-rate 1e-3 --random-windows true --weight-decay 0.1 --epochs 9`` and no
dropout: held-out 2.49, 2.03, 1.86, 1.73, 1.69,
1.65, 1.62, 1.60, 1.60 by epoch while the training loss reached 1.28, so it overfits and
the last epochs gained little; dropout (nanoGPT uses 0.2) and more epochs are the next
step. ``char_gpt_small`` 1.687 after 15 epochs (8,192 characters a step, fixed windows,
overfitting from epoch 13). The char LSTM of the ``rnn`` recipe reached 1.58.

Speed (``benchmarks/transformer_speed.py``, benchmarks/RESULTS.md): the GPT trains at about
6,700 characters/s on 2 cores; tf.data, steps_per_execution=8 and XLA measured 0.95-1.02x,
and the same network in plain PyTorch 1.79x. Not won back; XLA stays off on CPU.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from recipes.runtime.config import ConfigError, RunConfig

TASKS = {"imdb_reviews": "classify", "digit_tokens": "classify", "tiny_shakespeare": "language_model",
         "sklearn_docs": "language_model", "mnist": "image", "fashion_mnist": "image", "cifar10": "image",
         "digits": "image"}
# Per task: the model and hyper-parameters used when a field is left at 0 / "" / -1.
TASK_DEFAULTS = {
    "classify": dict(model="transformer_classifier_small", epochs=2, batch_size=64, learning_rate=1e-3,
                     sequence_length=256, dropout=0.1),
    "language_model": dict(model="char_gpt_small", epochs=10, batch_size=64, learning_rate=2e-3, dropout=0.0),
    "image": dict(model="vit_mnist", epochs=10, batch_size=128, learning_rate=1e-3, dropout=0.1),
}
# --quick trains on data that ships with installed packages.
QUICK_DATA = {"imdb_reviews": "digit_tokens", "tiny_shakespeare": "sklearn_docs", "mnist": "digits",
              "fashion_mnist": "digits", "cifar10": "digits"}
QUICK_DEFAULTS = {
    "classify": dict(model="transformer_classifier_tiny", epochs=6, batch_size=32, learning_rate=3e-3),
    "language_model": dict(model="char_gpt_tiny", epochs=4, batch_size=16, learning_rate=3e-3),
    "image": dict(model="vit_tiny", patch_size=2, epochs=12, batch_size=32, learning_rate=3e-3),
}


@dataclasses.dataclass
class Config(RunConfig):
    dataset: Literal["imdb_reviews", "tiny_shakespeare", "mnist", "fashion_mnist", "cifar10", "digit_tokens",
                     "sklearn_docs", "digits"] = "imdb_reviews"
    model: str = ""  # "": the task's default (transformer_classifier_small, char_gpt_small, vit_mnist)
    epochs: int = 0  # 0: the task's default (2, 10, 10)
    batch_size: int = 0  # per replica; 0: the task's default (64, 64, 128)
    learning_rate: float = 0.0  # peak AdamW learning rate; 0: the task's default (1e-3, 2e-3, 1e-3)
    warmup_fraction: float = 0.05  # share of the steps spent warming the learning rate up from 0
    weight_decay: float = 0.01  # AdamW, on weight matrices only
    dropout: float = -1.0  # embeddings and residual branches; -1: the task's default (0.1, 0.0, 0.1)
    depth: int = 0  # override the model's number of blocks
    embed_dim: int = 0  # override the model's width
    num_heads: int = 0  # override the model's attention heads
    patch_size: int = 0  # ViT: override the patch size
    vocab_size: int = 20000  # words kept by the IMDB vectorizer
    keep: Literal["first", "last"] = "last"  # which words of a longer review to keep
    sequence_length: int = 0  # words per review (0: 256) or characters of GPT context (0: the model's own)
    sample_length: int = 1000  # characters generated after training the language model
    temperature: float = 0.8  # sampling temperature for those characters
    top_k: int = 0  # sample among the k likeliest characters only; 0: all
    random_windows: bool = False  # GPT: crop training windows at random offsets, new every epoch

    def __post_init__(self):
        if self.quick:
            self.dataset = QUICK_DATA.get(self.dataset, self.dataset)
        defaults = dict(TASK_DEFAULTS[self.task])
        if self.quick:
            defaults.update(QUICK_DEFAULTS[self.task])
        for name, value in defaults.items():
            unset = getattr(self, name) == -1.0 if name == "dropout" else getattr(self, name) in (0, "")
            if unset:  # dropout 0 is a real choice; its "unset" is -1
                setattr(self, name, value)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1); got {self.dropout}")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"--warmup-fraction must be in [0, 1); got {self.warmup_fraction}")

    @property
    def task(self) -> str:
        return TASKS[self.dataset]


def digit_token_datasets(seed: int):
    """scikit-learn's 8x8 digits as 64 tokens each: pixel value v (0-16) is token v + 1,
    so the text classifier's path (ids, embedding, masking of 0) runs on bundled data."""
    import tensorflow as tf

    from recipes.runtime import data

    datasets = data.digits_datasets(seed)
    to_tokens = lambda image, label: (tf.cast(tf.reshape(image, (64,)), tf.int32) + 1, label)
    datasets.train, datasets.test = datasets.train.map(to_tokens), datasets.test.map(to_tokens)
    datasets.name, datasets.input_shape = "digit_tokens", (64,)
    datasets.extras = {"vocab_size": 18, "tokens_per_example": 64}
    return datasets


def make_datasets(config: Config):
    from recipes import cnn
    from recipes.runtime import data, sequences

    if config.dataset == "digit_tokens":
        return digit_token_datasets(config.seed)
    if config.task == "classify":
        return sequences.text_classification(config.dataset, data.resolve_data_dir(config.data_dir),
                                             config.vocab_size, config.sequence_length, config.keep)
    if config.task == "language_model":
        config.sequence_length = config.sequence_length or model_context(config.model)
        return sequences.character_windows(config.dataset, data.resolve_data_dir(config.data_dir),
                                           config.sequence_length, random_offsets=config.random_windows)
    if config.dataset == "digits":  # the ViT rescales 0-255 inside; digits are 0-16
        datasets = data.digits_datasets(config.seed)
        scale = lambda image, label: (image * (255.0 / 16.0), label)
        datasets.train, datasets.test = datasets.train.map(scale), datasets.test.map(scale)
        return datasets
    if config.dataset == "cifar10":
        return cnn.cifar10_datasets(config)
    return data.load_image_classification(config.dataset, data.resolve_data_dir(config.data_dir))


def model_context(name: str) -> int:
    """Characters of context the registered language model ``name`` is built for by default
    (char_gpt_tiny 32, char_gpt_small 128, char_gpt_base 256)."""
    import zoo

    try:
        shape = zoo.build(name).input_shape
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {name} cannot be built as a language model ({error}); use a model from "
                          f"`zoo list` made for it, e.g. {TASK_DEFAULTS['language_model']['model']}")
    if len(shape) != 2 or not shape[1]:
        raise ConfigError(f"--model {name} is not a language model (its input is {shape[1:]}, not a fixed number "
                          f"of characters); use e.g. {TASK_DEFAULTS['language_model']['model']}")
    return int(shape[1])


def model_options(config: Config, datasets) -> dict:
    overrides = {"depth": config.depth, "embed_dim": config.embed_dim, "num_heads": config.num_heads,
                 "patch_size": config.patch_size}
    options = {name: value for name, value in overrides.items() if value}
    options["dropout"] = config.dropout
    if config.task == "classify":
        options.update(vocab_size=datasets.extras["vocab_size"], sequence_length=datasets.input_shape[0],
                       num_classes=datasets.num_classes)
    elif config.task == "language_model":
        options.update(vocab_size=len(datasets.extras["vocabulary"]), sequence_length=config.sequence_length)
    else:
        options.update(input_shape=datasets.input_shape, num_classes=datasets.num_classes)
    return options


def build_model(config: Config, datasets):
    import keras

    import zoo
    from recipes.runtime.train import compile_options, steps_per_epoch
    from zoo.layers import PatchEmbedding

    if config.patch_size and config.task != "image":
        raise ConfigError(f"--patch-size applies to the Vision Transformer (image data sets), not to "
                          f"--dataset {config.dataset}")
    try:
        model = zoo.build(config.model, **model_options(config, datasets))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {config.model} does not fit the {config.task} task ({error}); use a model "
                          f"from `zoo list` made for it, e.g. {TASK_DEFAULTS[config.task]['model']}")
    if config.task == "image":  # a ViT's tokens: its patches and the class token
        patches = [layer for layer in model.layers if isinstance(layer, PatchEmbedding)]
        if patches:
            datasets.extras["tokens_per_example"] = patches[0].num_patches + 1
    steps = config.epochs * steps_per_epoch(config, datasets.num_train)
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


def PUBLISH(config: Config) -> tuple:  # noqa: N802  (the runtime's name for published artifacts)
    return ("sample.txt",) if config.task == "language_model" else ()


def model_shape(model) -> dict:
    """Depth, width and (ViT) patch size of a built zoo transformer, read off its layers."""
    from zoo.layers import PatchEmbedding, TransformerBlock

    blocks = [layer for layer in model.layers if isinstance(layer, TransformerBlock)]
    shape = {"depth": len(blocks), "embed_dim": blocks[0].embed_dim if blocks else 0}
    patches = [layer for layer in model.layers if isinstance(layer, PatchEmbedding)]
    if patches:
        shape["patch_size"] = patches[0].patch_size
    return shape


def report(model, datasets, config: Config, run_dir: str) -> dict:
    from recipes.runtime import sequences
    from zoo.transformer import forward_flops

    tokens = datasets.extras.get("tokens_per_example") if datasets.extras else None
    extra = {"flops_per_example": forward_flops(model, tokens=tokens), **model_shape(model)}
    if config.task == "classify" and "vectorizer" in datasets.extras:
        sequences.save_text_model(model, datasets.extras["vectorizer"], run_dir)
    elif config.task == "language_model":
        sequences.write_samples(model, datasets.extras, run_dir, config.sample_length, config.temperature,
                                config.seed, top_k=config.top_k or None)
    return extra
