"""Transformers built from the zoo's reusable blocks (``zoo.layers``): an encoder text
classifier, a decoder-only character language model (GPT) and a Vision Transformer.

    classifier = zoo.build("transformer_classifier_small", vocab_size=20000, sequence_length=400)
    gpt = zoo.build("char_gpt_small", vocab_size=65)
    zoo.transformer.generate(gpt, vocabulary, "ROMEO:", length=200, temperature=0.8, top_k=20, seed=0)
    vit = zoo.build("vit_cifar", num_classes=10)

All blocks are pre-norm (LayerNorm before attention and MLP) with GELU MLPs, written
with ``keras.layers``/``keras.ops`` only, so the models run on any Keras backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from zoo.layers import MaskedPooling1D, PatchEmbedding, TokenAndPositionEmbedding, TransformerBlock, \
    check_choice, classifier_head
from zoo.registry import register_model
from zoo.text import generate  # noqa: F401  (sampling works for the GPT as for the char LSTM)

POOLINGS = ("mean", "max", "first")


def _check_sizes(depth: int, embed_dim: int, num_heads: int):
    if depth < 1 or embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
        raise ValueError(f"Need depth >= 1 and embed_dim divisible by num_heads; got depth={depth}, "
                         f"embed_dim={embed_dim}, num_heads={num_heads}")


def encoder_stack(x, depth: int, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float,
                  causal: bool = False, attention_dropout: float = 0.0, name: str = "block"):
    """``depth`` transformer blocks and the final LayerNorm of a pre-norm transformer."""
    for index in range(depth):
        x = TransformerBlock(embed_dim, num_heads, mlp_dim, dropout, causal=causal,
                             attention_dropout=attention_dropout, name=f"{name}{index + 1}")(x)
    return layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)


@register_model
def transformer_classifier(vocab_size: int = 20000, sequence_length: int = 256, embed_dim: int = 64,
                           depth: int = 2, num_heads: int = 4, mlp_dim: int | None = None, dropout: float = 0.1,
                           pooling: str = "mean", num_classes: int = 2,
                           classifier_activation: str | None = "softmax", head_dropout: float = 0.1,
                           attention_dropout: float = 0.0, name: str = "transformer_classifier") -> keras.Model:
    """An encoder over token ids (0 is padding and is masked) with a classification head.

    Args:
        vocab_size, sequence_length: token ids in, at most ``sequence_length`` of them
            (any shorter length works too: padding is masked).
        embed_dim, depth, num_heads, mlp_dim: width, blocks, heads and MLP width
            (default ``4 * embed_dim``).
        pooling: ``"mean"`` or ``"max"`` over the unpadded positions, or the ``"first"`` token.
        dropout, attention_dropout: on the embeddings and residual branches, and on the
            attention weights (see ``zoo.layers.TransformerBlock``).
    """
    _check_sizes(depth, embed_dim, num_heads)
    check_choice("pooling", pooling, POOLINGS)
    inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")  # any length up to sequence_length
    x = TokenAndPositionEmbedding(vocab_size, sequence_length, embed_dim, mask_zero=True, name="embedding")(inputs)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = encoder_stack(x, depth, embed_dim, num_heads, mlp_dim or 4 * embed_dim, dropout,
                      attention_dropout=attention_dropout)
    x = x[:, 0] if pooling == "first" else MaskedPooling1D(pooling, name=f"{pooling}_pool")(x)
    outputs = classifier_head(x, num_classes, classifier_activation, head_dropout)
    return keras.Model(inputs, outputs, name=name)


@register_model
def gpt(vocab_size: int = 65, sequence_length: int = 128, embed_dim: int = 128, depth: int = 4,
        num_heads: int = 4, mlp_dim: int | None = None, dropout: float = 0.1, attention_dropout: float = 0.0,
        name: str = "gpt") -> keras.Model:
    """A decoder-only language model: causal blocks, next-token logits at every position.

    Position t sees positions 0..t only, so logits at t never depend on later tokens;
    ``zoo.transformer.generate`` samples from it.

    Profile of a recipe training step (TF 2.21, 2 CPU cores, batch 12 x 64, AdamW, dropout 0):
    attention took 45% of the op time through Keras's MultiHeadAttention (three broadcast
    einsum projections, a mask rebuilt every step), MLP matrix products 30%, LayerNorm 9%,
    GELU 4%, AdamW with clipnorm 12% in ~2,600 small per-variable ops. The block now runs
    attention as plain matrix products (``zoo.layers.transformer.self_attention``): ~10% less
    CPU time per character (benchmarks/RESULTS.md); the optimizer's op count is what is left.
    """
    _check_sizes(depth, embed_dim, num_heads)
    inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
    x = TokenAndPositionEmbedding(vocab_size, sequence_length, embed_dim, name="embedding")(inputs)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = encoder_stack(x, depth, embed_dim, num_heads, mlp_dim or 4 * embed_dim, dropout, causal=True,
                      attention_dropout=attention_dropout)
    x = layers.Dense(vocab_size, name="logits_dense")(x)
    outputs = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model
def vit(input_shape: Sequence[int] = (32, 32, 3), patch_size: int = 4, embed_dim: int = 128, depth: int = 6,
        num_heads: int = 4, mlp_dim: int | None = None, dropout: float = 0.1, num_classes: int = 10,
        classifier_activation: str | None = "softmax", attention_dropout: float = 0.0,
        name: str = "vit") -> keras.Model:
    """A Vision Transformer for small images: patches, class token, blocks, head on the class token.

    Takes raw pixels (0-255); rescaling to [0, 1] is a layer inside the model.
    """
    _check_sizes(depth, embed_dim, num_heads)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = PatchEmbedding(patch_size, embed_dim, name="patches")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = encoder_stack(x, depth, embed_dim, num_heads, mlp_dim or 2 * embed_dim, dropout,
                      attention_dropout=attention_dropout)
    outputs = classifier_head(x[:, 0], num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


# --- registered sizes -----------------------------------------------------------------

@register_model
def transformer_classifier_tiny(**kwargs) -> keras.Model:
    """2 blocks of width 32 with 2 heads: for tests and quick runs."""
    options = dict(vocab_size=1000, sequence_length=64, embed_dim=32, depth=2, num_heads=2) | kwargs
    return transformer_classifier(name="transformer_classifier_tiny", **options)


@register_model
def transformer_classifier_small(**kwargs) -> keras.Model:
    """2 blocks of width 64, 4 heads, over 400 tokens of a 20,000-word vocabulary (IMDB-sized)."""
    options = dict(vocab_size=20000, sequence_length=400, embed_dim=64, depth=2, num_heads=4) | kwargs
    return transformer_classifier(name="transformer_classifier_small", **options)


@register_model
def char_gpt_tiny(**kwargs) -> keras.Model:
    """2 causal blocks of width 32 over 32 characters: for tests and quick runs."""
    options = dict(vocab_size=65, sequence_length=32, embed_dim=32, depth=2, num_heads=2) | kwargs
    return gpt(name="char_gpt_tiny", **options)


@register_model
def char_gpt_small(**kwargs) -> keras.Model:
    """4 causal blocks of width 128, 4 heads, 128 characters of context (about 0.8M parameters)."""
    options = dict(vocab_size=65, sequence_length=128, embed_dim=128, depth=4, num_heads=4) | kwargs
    return gpt(name="char_gpt_small", **options)


@register_model
def char_gpt_base(**kwargs) -> keras.Model:
    """4 causal blocks of width 192, 4 heads, 256 characters of context (about 1.9M parameters)."""
    options = dict(vocab_size=65, sequence_length=256, embed_dim=192, depth=4, num_heads=4) | kwargs
    return gpt(name="char_gpt_base", **options)


@register_model
def vit_tiny(**kwargs) -> keras.Model:
    """MNIST-sized ViT: 28x28x1 images in 7x7 patches, 2 blocks of width 32."""
    options = dict(input_shape=(28, 28, 1), patch_size=7, embed_dim=32, depth=2, num_heads=2) | kwargs
    return vit(name="vit_tiny", **options)


@register_model
def vit_mnist(**kwargs) -> keras.Model:
    """28x28x1 images in 7x7 patches (16 tokens + class token), 4 blocks of width 64, 4 heads."""
    options = dict(input_shape=(28, 28, 1), patch_size=7, embed_dim=64, depth=4, num_heads=4) | kwargs
    return vit(name="vit_mnist", **options)


@register_model
def vit_cifar(**kwargs) -> keras.Model:
    """32x32x3 images in 4x4 patches (64 tokens + class token), 6 blocks of width 128."""
    options = dict(input_shape=(32, 32, 3), patch_size=4, embed_dim=128, depth=6, num_heads=4) | kwargs
    return vit(name="vit_cifar", **options)


# --- cost -----------------------------------------------------------------------------

def forward_flops(model: keras.Model, tokens: int | None = None) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of one example's forward pass through the
    matrix products of a zoo transformer: attention projections, attention scores and
    weighted sums, MLPs, patch projection and dense heads. Embedding lookups, norms and
    softmax are left out, as is usual. Training costs about three times this.

    ``tokens`` gives the sequence length where the model takes any length (the classifier).
    """
    total = 0
    for layer in model.layers:
        if not layer.built or isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, TransformerBlock):
            steps = layer.output.shape[1] or tokens
            if steps is None:
                raise ValueError(f"{model.name} takes sequences of any length; pass tokens=")
            width = layer.embed_dim
            projections = 2 * steps * (4 * width * width + 2 * width * layer.mlp_dim)
            total += projections + 2 * 2 * steps * steps * width  # scores (QK^T) and weighted sum (AV)
        elif isinstance(layer, PatchEmbedding):
            total += 2 * layer.num_patches * math.prod(layer.projection.kernel.shape)
        elif isinstance(layer, layers.Dense):
            positions = math.prod(size or tokens or 1 for size in layer.output.shape[1:-1])
            total += 2 * positions * math.prod(layer.kernel.shape)
    return int(total)
