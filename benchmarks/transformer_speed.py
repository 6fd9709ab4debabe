"""Training throughput of the character GPT in the transformer recipe's own path, against a
plain PyTorch GPT of the same shape, in one process.

    python benchmarks/transformer_speed.py                          # char_gpt_small: batch 64 x 128
    python benchmarks/transformer_speed.py --batch 12 --length 64   # nanoGPT's small CPU shape
    python benchmarks/transformer_speed.py --threads 1 --rounds 5   # on a machine shared with other work

Keras variants build and compile the model with the recipe's ``build_model`` (``char_gpt_small``
at ``--length`` characters of context, dropout 0 as its language-model preset, AdamW with
weight-decay exclusions and clipnorm, the accuracy metric) and ``fit`` on a cached tf.data
pipeline of random windows (what the characters say does not change the speed):

- ``zoo attention``: the block as it is now (``zoo.layers.transformer.self_attention``);
- ``Keras MultiHeadAttention``: the same weights through Keras's layer call (the block before);
- ``+ steps_per_execution=N``: the recipe's ``--steps-per-execution``;
- ``mixed_bfloat16``: the recipe's ``--mixed-precision`` on CPU (different numerics).

The PyTorch reference is the same network (pre-norm blocks, one QKV Linear,
``scaled_dot_product_attention``, exact GELU) trained with Adam. Rounds interleave the
variants so that other work on the machine slows them alike; the table gives the median
and range over rounds, per second of wall time and per second of this process's CPU time.
"""

from __future__ import annotations

import argparse
import os
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from timing import add_round_options, interleaved_rounds, print_rounds, random_windows, \
    set_threads  # noqa: E402
from zoo.layers import transformer as transformer_layers  # noqa: E402

VOCAB = 65
ZOO_ATTENTION = transformer_layers.self_attention


def keras_attention(attention, x, causal, training=None):
    return attention(x, x, use_causal_mask=causal, training=training)


def recipe_model(args, attention=ZOO_ATTENTION, steps_per_execution: int = 1, mixed_precision: bool = False):
    """The recipe's model and compile for ``char_gpt_small`` at this context length."""
    from recipes.transformer import Config, build_model

    config = Config(dataset="tiny_shakespeare", model="char_gpt_small", sequence_length=args.length, dropout=0.0,
                    batch_size=args.batch, learning_rate=2e-3, steps_per_execution=steps_per_execution)
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("mixed_bfloat16" if mixed_precision else "float32")
    transformer_layers.self_attention = attention
    try:
        return build_model(config, types.SimpleNamespace(vocab_size=VOCAB), types.SimpleNamespace(steps_per_epoch=100))
    finally:
        keras.config.set_dtype_policy("float32")


def torch_gpt(args):
    import torch
    from torch import nn
    from torch.nn import functional

    torch.manual_seed(0)
    width, heads, length = 128, 4, args.length

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
            self.blocks = nn.Sequential(*[Block() for _ in range(4)])
            self.norm, self.logits = nn.LayerNorm(width, eps=1e-6), nn.Linear(width, VOCAB)

        def forward(self, x):
            return self.logits(self.norm(self.blocks(self.tokens(x) + self.positions)))

    return GPT()


def torch_loop(model, ids, targets, batch: int):
    """A function that trains ``model`` one pass over the windows (Adam), after one warm-up pass."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = torch.nn.CrossEntropyLoss()
    inputs, labels = torch.from_numpy(ids.astype("int64")), torch.from_numpy(targets.astype("int64"))

    def run(steps=len(ids) // batch):
        for step in range(steps):
            optimizer.zero_grad()
            logits = model(inputs[step * batch:(step + 1) * batch])
            loss_function(logits.reshape(-1, VOCAB), labels[step * batch:(step + 1) * batch].reshape(-1)).backward()
            optimizer.step()

    run(2)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round and variant")
    parser.add_argument("--steps-per-execution", type=int, default=8)
    add_round_options(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    ids, targets = random_windows(VOCAB, args.batch * args.steps, args.length)
    data = tf.data.Dataset.from_tensor_slices((ids, targets)).batch(args.batch).cache().prefetch(tf.data.AUTOTUNE)
    models = {"zoo attention (recipe path)": recipe_model(args),
              "Keras MultiHeadAttention (before)": recipe_model(args, keras_attention),
              f"zoo + steps_per_execution={args.steps_per_execution}":
                  recipe_model(args, steps_per_execution=args.steps_per_execution),
              "zoo + mixed_bfloat16": recipe_model(args, mixed_precision=True)}
    runners = {}
    for name, model in models.items():
        attention = keras_attention if "before" in name else ZOO_ATTENTION

        def run(model=model, attention=attention, data=data):
            transformer_layers.self_attention = attention  # read when fit first traces the step
            model.fit(data, verbose=0)

        run(data=data.take(max(2, model.steps_per_execution)))  # warm-up: tracing
        runners[name] = run
    transformer_layers.self_attention = ZOO_ATTENTION
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.threads or os.cpu_count())
        runners[f"plain PyTorch {torch.__version__}"] = torch_loop(torch_gpt(args), ids, targets, args.batch)
    results = interleaved_rounds(runners, args.rounds)
    print(f"gpt 4 blocks, width 128, 4 heads, batch {args.batch} x {args.length} characters, {args.steps} steps x "
          f"{args.rounds} rounds, TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, "
          f"threads {args.threads or 'default'}")
    print_rounds(results, args.batch * args.steps * args.length, "chars/s")

if __name__ == "__main__":
    main()
