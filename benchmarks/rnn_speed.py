"""Training throughput of the character LSTM (the rnn recipe's language model).

    python benchmarks/rnn_speed.py                 # part of `make bench`
    python benchmarks/rnn_speed.py --units 256 256 --steps 20

Every variant trains zoo's ``char_lstm`` (64-d embedding, stacked LSTMs, logits over 65
characters) on the same random windows of 100 characters in this process; the table
reports characters per second and the ratio to the plain baseline, ``model.fit`` on
NumPy arrays with Keras's defaults. Variants: a tf.data pipeline, ``steps_per_execution``,
XLA, and the LSTM unrolled. When PyTorch is installed, the same network in plain PyTorch
(``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear``, Adam, same batch) runs last as the
reference. Timing excludes a warm-up fit that pays for tracing and compilation. What the
characters say does not change the speed, so the windows are random ids.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from timing import VARIANTS, keras_fit_speed, print_table, random_windows, torch_train_speed  # noqa: E402

VOCAB = 65


def keras_variant(ids, targets, units, batch, steps, unroll=False, **options) -> float:
    keras.utils.set_random_seed(0)
    model = zoo.build("char_lstm", vocab_size=VOCAB, units=units, sequence_length=ids.shape[1], dropout=0.0)
    if unroll:
        for layer in model.layers:
            if isinstance(layer, keras.layers.LSTM):
                layer.unroll = True
        model = keras.models.clone_model(model)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras_fit_speed(model, ids, targets, batch, steps, loss, **options) * ids.shape[1]


def torch_reference(ids, targets, units, batch, steps) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)

    class CharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, 64)
            self.lstms = torch.nn.ModuleList(
                torch.nn.LSTM(size_in, size, batch_first=True) for size_in, size in zip((64, *units[:-1]), units))
            self.logits = torch.nn.Linear(units[-1], VOCAB)

        def forward(self, x):
            x = self.embedding(x)
            for lstm in self.lstms:
                x, _ = lstm(x)
            return self.logits(x)

    return torch_train_speed(CharLSTM(), ids, targets, batch, steps) * ids.shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--length", type=int, default=100)
    args = parser.parse_args()
    ids, targets = random_windows(VOCAB, args.batch * args.steps, args.length)
    units = tuple(args.units)
    print(f"char_lstm units={list(units)}, batch {args.batch} x {args.length} characters, {args.steps} steps, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores")
    print_table(VARIANTS + [("tf.data + unrolled LSTM", {"use_tf_data": True, "unroll": True})],
                lambda **options: keras_variant(ids, targets, units, args.batch, args.steps, **options),
                lambda: torch_reference(ids, targets, units, args.batch, args.steps))


if __name__ == "__main__":
    main()
