"""Training throughput of the character GPT (the transformer recipe's language model).

    python benchmarks/transformer_speed.py          # part of `make bench`
    python benchmarks/transformer_speed.py --depth 2 --width 64 --steps 20

Every variant trains zoo's ``gpt`` (by default the ``char_gpt_small`` shape: 4 pre-norm
blocks of width 128, 4 heads, 128 characters of context, no dropout) on the same random
windows in this process; the table reports characters per second and the ratio to the
plain baseline, ``model.fit`` on NumPy arrays with Keras's defaults. Variants: a tf.data
pipeline, ``steps_per_execution``, XLA. When PyTorch is installed, the same network in
plain PyTorch (pre-norm blocks with ``scaled_dot_product_attention``, Adam, same batch)
runs last as the reference. What the characters say does not change the speed, so the
windows are random ids.
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


def keras_variant(ids, targets, args, **options) -> float:
    keras.utils.set_random_seed(0)
    model = zoo.build("gpt", vocab_size=VOCAB, sequence_length=ids.shape[1], embed_dim=args.width,
                      depth=args.depth, num_heads=args.heads, dropout=0.0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras_fit_speed(model, ids, targets, args.batch, args.steps, loss, **options) * ids.shape[1]


def torch_reference(ids, targets, args) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    from torch import nn
    from torch.nn import functional

    torch.manual_seed(0)
    width, heads, length = args.width, args.heads, ids.shape[1]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
            self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x):
            batch = x.shape[0]
            q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
            attended = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.out(attended.transpose(1, 2).reshape(batch, length, width))
            return x + self.mlp(self.norm2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens, self.positions = nn.Embedding(VOCAB, width), nn.Parameter(torch.zeros(1, length, width))
            self.blocks = nn.Sequential(*[Block() for _ in range(args.depth)])
            self.norm, self.logits = nn.LayerNorm(width, eps=1e-6), nn.Linear(width, VOCAB)

        def forward(self, x):
            return self.logits(self.norm(self.blocks(self.tokens(x) + self.positions)))

    return torch_train_speed(GPT(), ids, targets, args.batch, args.steps) * length


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()
    ids, targets = random_windows(VOCAB, args.batch * args.steps, args.length)
    print(f"gpt depth {args.depth} width {args.width} heads {args.heads}, batch {args.batch} x {args.length} "
          f"characters, {args.steps} steps, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores")
    print_table(VARIANTS, lambda **options: keras_variant(ids, targets, args, **options),
                lambda: torch_reference(ids, targets, args))


if __name__ == "__main__":
    main()
