"""Recurrent networks: SimpleRNN, LSTM and GRU stacks with three heads.

One general builder, ``rnn(head=...)``, over a shared recurrent stack:

- ``head="classify"``: a label per sequence, from token ids (``vocab_size`` given; id 0
  is padding and is masked) or from numeric sequences (``input_shape=(steps, features)``).
  The sequence is summarised by the last state, or by max / mean pooling over the
  outputs of the unpadded steps.
- ``head="language_model"``: next-token logits at every step (``vocab_size`` tokens),
  for ``zoo.text.generate``.
- ``head="forecast"``: the next ``horizon`` values of a series from a ``window`` of past
  values, in raw units. The network sees the window relative to its last value (divided
  by ``scale``) and predicts the change from that value, so it does not depend on the
  series' level, and an untrained one starts near the naive forecast.

    model = zoo.build("rnn", cell="gru", units=(64,), bidirectional=True, vocab_size=5000)
    lm = zoo.build("char_lstm", vocab_size=65)
    forecaster = zoo.build("lstm_forecaster", window=52, horizon=12, scale=2.0)

Registered variants cover each cell and head; all are uncompiled and save as ``.keras``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from zoo.layers import AddLastValue, FusedLSTM, MaskedPooling1D, RelativeToLast, Standardize, check_choice, \
    classifier_head, sequence_input
from zoo.registry import register_model

# "lstm" is keras.layers.LSTM with a faster training path on TensorFlow's CPU (same weights
# and results); fused=False builds the stock layer, e.g. to compare speeds.
CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": FusedLSTM, "gru": layers.GRU}
HEADS = ("classify", "language_model", "forecast")
POOLINGS = ("last", "max", "mean")


def recurrent_stack(x, cell: str = "lstm", units: Sequence[int] = (64,), bidirectional: bool = False,
                    dropout: float = 0.0, recurrent_dropout: float = 0.0, return_sequences: bool = False,
                    fused: bool = True, name: str = "rnn"):
    """Stacked recurrent layers; every layer but the last returns sequences unless asked to.
    ``fused=False`` uses ``keras.layers.LSTM`` for ``cell="lstm"`` instead of ``FusedLSTM``.

    Masks from an ``Embedding(mask_zero=True)`` flow through, so padded steps change
    neither the states nor the result.
    """
    check_choice("cell", cell, CELLS)
    if not units or any(int(size) < 1 for size in units):
        raise ValueError(f"units must be a non-empty list of positive sizes, got {list(units)}")
    if not (0.0 <= dropout < 1.0 and 0.0 <= recurrent_dropout < 1.0):
        raise ValueError(f"dropout and recurrent_dropout must be in [0, 1), got {dropout}, {recurrent_dropout}")
    for index, size in enumerate(units):
        last = index == len(units) - 1
        layer_class = layers.LSTM if cell == "lstm" and not fused else CELLS[cell]
        layer = layer_class(int(size), return_sequences=return_sequences or not last, dropout=dropout,
                            recurrent_dropout=recurrent_dropout, name=f"{name}_{cell}{index + 1}")
        if bidirectional:
            layer = layers.Bidirectional(layer, name=f"{name}_bidirectional{index + 1}")
        x = layer(x)
    return x


@register_model
def rnn(head: str = "classify", cell: str = "lstm", units: Sequence[int] = (64,), bidirectional: bool = False,
        dropout: float = 0.0, recurrent_dropout: float = 0.0, vocab_size: int | None = 20000,
        embedding_dim: int = 128, sequence_length: int | None = None, input_shape: Sequence[int] | None = None,
        pooling: str = "last", num_classes: int = 2, classifier_activation: str | None = "softmax",
        head_dropout: float = 0.0, window: int = 24, horizon: int = 1, features: int = 1,
        target_index: int = 0, scale=1.0, fused: bool = True, name: str = "rnn") -> keras.Model:
    """A recurrent network; see the module docstring for the heads.

    Args:
        head: ``"classify"``, ``"language_model"`` or ``"forecast"``.
        cell: ``"simple_rnn"``, ``"lstm"`` or ``"gru"``.
        units: state size of each stacked layer, bottom to top.
        bidirectional: run each layer in both directions (classification only; a language
            model or forecaster must not see the future).
        dropout, recurrent_dropout: on the inputs and on the recurrent state of every layer.
        vocab_size: token ids for text, 0 reserved for padding; ``None`` with ``input_shape``
            for numeric sequences (classification).
        embedding_dim: size of the token embedding.
        sequence_length: fixed number of steps, or ``None`` for any length.
        input_shape: ``(steps, features)`` of a numeric sequence to classify.
        pooling: ``"last"`` state, or ``"max"`` / ``"mean"`` over the unpadded outputs.
        num_classes, classifier_activation, head_dropout: the classification head.
        window, horizon, features, target_index: forecasting: ``window`` steps of
            ``features`` values in, the next ``horizon`` values of feature ``target_index`` out.
        scale: typical size of a change within a window, in raw units (a scalar or one per
            feature), e.g. the standard deviation of ``window - last value`` on training data.
        fused: ``cell="lstm"`` layers are ``zoo.layers.FusedLSTM`` (faster training on
            TensorFlow's CPU, same weights); ``False`` builds ``keras.layers.LSTM``.
    """
    check_choice("head", head, HEADS)
    stack = dict(cell=cell, units=units, dropout=dropout, recurrent_dropout=recurrent_dropout, fused=fused)
    if head == "classify":
        check_choice("pooling", pooling, POOLINGS)
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        x = inputs = sequence_input(vocab_size, sequence_length, input_shape)
        if input_shape is None:
            x = layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(inputs)
        x = recurrent_stack(x, bidirectional=bidirectional, return_sequences=pooling != "last", **stack)
        if pooling != "last":
            x = MaskedPooling1D(pooling, name=f"{pooling}_pool")(x)
        outputs = classifier_head(x, num_classes, classifier_activation, head_dropout)
    elif head == "language_model":
        if bidirectional:
            raise ValueError("A language model cannot be bidirectional: it would see the tokens it predicts")
        if not vocab_size:
            raise ValueError("A language model needs vocab_size")
        inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        x = layers.Embedding(vocab_size, embedding_dim, name="embedding")(inputs)
        x = recurrent_stack(x, return_sequences=True, **stack)
        if head_dropout:
            x = layers.Dropout(head_dropout, name="logits_dropout")(x)
        x = layers.Dense(vocab_size, name="logits_dense")(x)
        outputs = layers.Activation("linear", dtype="float32", name="logits")(x)
    else:
        if bidirectional:
            raise ValueError("A forecaster cannot be bidirectional: its last state must be the latest step")
        if window < 1 or horizon < 1 or not 0 <= target_index < features:
            raise ValueError(f"Need window >= 1, horizon >= 1 and 0 <= target_index < features; got "
                             f"window={window}, horizon={horizon}, target_index={target_index}, features={features}")
        inputs = keras.Input(shape=(window, features), name="series")
        x = RelativeToLast(name="relative_to_last")(inputs)
        x = Standardize(0.0, scale, name="scale")(x)
        x = recurrent_stack(x, **stack)
        target_scale = scale[target_index] if isinstance(scale, (list, tuple)) else scale
        changes = layers.Dense(horizon, name="changes")(x)
        changes = Standardize(0.0, target_scale, invert=True, dtype="float32", name="changes_raw_units")(changes)
        outputs = AddLastValue(target_index, dtype="float32", name="forecast")([inputs, changes])
    return keras.Model(inputs, outputs, name=name)


# --- registered variants -------------------------------------------------------------

@register_model
def imdb_bilstm(vocab_size: int = 20000, num_classes: int = 2, **kwargs) -> keras.Model:
    """Word-level bidirectional LSTM for IMDB-sized sentiment: 128-d embedding, one BiLSTM
    of 64 units per direction with 20% input dropout, max pooling over the unpadded steps."""
    options = dict(cell="lstm", units=(64,), bidirectional=True, embedding_dim=128, pooling="max",
                   dropout=0.2, head_dropout=0.3) | kwargs
    return rnn("classify", vocab_size=vocab_size, num_classes=num_classes, name="imdb_bilstm", **options)


@register_model
def imdb_bigru(vocab_size: int = 20000, num_classes: int = 2, **kwargs) -> keras.Model:
    """As ``imdb_bilstm`` with GRU cells (a quarter fewer recurrent weights)."""
    options = dict(cell="gru", units=(64,), bidirectional=True, embedding_dim=128, pooling="max",
                   dropout=0.2, head_dropout=0.3) | kwargs
    return rnn("classify", vocab_size=vocab_size, num_classes=num_classes, name="imdb_bigru", **options)


@register_model
def sequence_simple_rnn(input_shape: Sequence[int] = (8, 8), num_classes: int = 10, **kwargs) -> keras.Model:
    """A SimpleRNN of 64 units that classifies numeric sequences, e.g. an 8x8 digit read row by row."""
    options = dict(cell="simple_rnn", units=(64,)) | kwargs
    return rnn("classify", input_shape=input_shape, vocab_size=None, num_classes=num_classes,
               name="sequence_simple_rnn", **options)


@register_model
def sequence_lstm(input_shape: Sequence[int] = (8, 8), num_classes: int = 10, **kwargs) -> keras.Model:
    """An LSTM of 64 units that classifies numeric sequences."""
    options = dict(cell="lstm", units=(64,)) | kwargs
    return rnn("classify", input_shape=input_shape, vocab_size=None, num_classes=num_classes,
               name="sequence_lstm", **options)


@register_model
def char_lstm(vocab_size: int = 65, **kwargs) -> keras.Model:
    """Character language model: 64-d embedding, two stacked LSTMs of 256 units (0.87M
    parameters for 65 characters)."""
    options = dict(cell="lstm", units=(256, 256), embedding_dim=64, dropout=0.1) | kwargs
    return rnn("language_model", vocab_size=vocab_size, name="char_lstm", **options)


@register_model
def char_gru(vocab_size: int = 65, **kwargs) -> keras.Model:
    """Character language model: 64-d embedding, two stacked GRUs of 256 units."""
    options = dict(cell="gru", units=(256, 256), embedding_dim=64, dropout=0.1) | kwargs
    return rnn("language_model", vocab_size=vocab_size, name="char_gru", **options)


@register_model
def lstm_forecaster(window: int = 24, horizon: int = 1, **kwargs) -> keras.Model:
    """An LSTM of 64 units forecasting the next ``horizon`` values from ``window`` past ones."""
    options = dict(cell="lstm", units=(64,)) | kwargs
    return rnn("forecast", window=window, horizon=horizon, name="lstm_forecaster", **options)


@register_model
def gru_forecaster(window: int = 24, horizon: int = 1, **kwargs) -> keras.Model:
    """A GRU of 64 units forecasting the next ``horizon`` values from ``window`` past ones."""
    options = dict(cell="gru", units=(64,)) | kwargs
    return rnn("forecast", window=window, horizon=horizon, name="gru_forecaster", **options)
