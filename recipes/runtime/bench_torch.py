"""Each benchmark family's headline network in plain PyTorch, and a plain PyTorch training step:
the third way ``zoo bench`` trains a model (after the recipe and plain Keras).

    from recipes.runtime import bench_torch                        # needs torch installed
    network = bench_torch.twin("char_lstm", zoo.build("char_lstm")).to("cuda")
    step = bench_torch.trainer("char_lstm", network, learning_rate=1e-3)
    loss = step(bench_torch.to_torch("char_lstm", numpy_batch, device="cuda"))

A twin is the same network as the Keras model it is given, sized from that model's layers
(so tiny test shapes work), with the same number of trainable parameters and fresh random
weights. Classifiers return logits (the trainer's cross-entropy applies the softmax). The
image networks are read off the Keras graph (``bench_torch_vision``); the sequence networks
here read their sizes from the layers' configs. Where a twin computes differently from
Keras, the class says how. ``trainer`` is Adam and the recipe's loss, one step per call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recipes.runtime.bench_torch_vision import GANTwin, graph_twin

FAMILIES = ("mnist_convnet", "resnet20", "char_lstm", "imdb_bilstm", "char_gpt_small", "imdb_transformer", "dcgan",
            "finetune_phase2")
IMAGE_FAMILIES = ("mnist_convnet", "resnet20", "finetune_phase2")


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"Unknown benchmark family {family!r}; expected one of {list(FAMILIES)}")


def _layers(keras_model, kind) -> list:
    return [layer for layer in keras_model.layers if isinstance(layer, kind)]


# --- recurrent networks --------------------------------------------------------------------

class SequenceDropout(nn.Module):
    """A Keras recurrent layer's ``dropout``: one mask per sequence, the same at every step
    (Keras draws it from the first step and applies it to the whole input sequence)."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = float(rate)

    def forward(self, x):  # (batch, steps, features)
        if not self.training or not self.rate:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype).bernoulli_(1 - self.rate)
        return x * keep / (1 - self.rate)


def _lstm(keras_lstm, input_size: int, bidirectional: bool = False) -> nn.LSTM:
    """torch's LSTM for a Keras LSTM. Keras has one bias per gate, torch two (``b_ih`` and
    ``b_hh``): ``b_hh`` is zeroed and frozen, so the twin computes Keras's gates with Keras's
    trainable parameter count (``4 * units`` frozen numbers per direction are left over).
    ``b_ih`` starts as Keras's does, with the forget gate's bias at 1 (``unit_forget_bias``)."""
    config = keras_lstm.get_config()
    if config.get("recurrent_dropout"):
        raise ValueError(f"{keras_lstm.name}: recurrent_dropout has no cuDNN twin in torch")
    units = int(config["units"])
    lstm = nn.LSTM(input_size, units, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for name, parameter in lstm.named_parameters():
            if name.startswith("bias_hh"):
                parameter.zero_()
                parameter.requires_grad_(False)
            elif name.startswith("bias_ih"):
                parameter.zero_()
                if config.get("unit_forget_bias", True):
                    parameter[units:2 * units] = 1.0  # torch's gate order: input, forget, cell, output
    return lstm


def _embedding_and_lstms(keras_model) -> tuple[nn.Embedding, nn.ModuleList, nn.ModuleList]:
    """The Keras model's token embedding, and its stacked LSTMs (bidirectional or not) with the
    input dropout of each."""
    from keras import layers

    embedding = keras_model.get_layer("embedding")
    dropouts, lstms = nn.ModuleList(), nn.ModuleList()
    width = embedding.output_dim
    for layer in keras_model.layers:
        bidirectional = isinstance(layer, layers.Bidirectional)
        keras_lstm = layer.forward_layer if bidirectional else layer
        if isinstance(keras_lstm, layers.RNN) and not isinstance(keras_lstm, layers.LSTM):
            raise ValueError(f"{keras_model.name}: the twins have LSTMs only, not {type(keras_lstm).__name__}")
        if isinstance(keras_lstm, layers.LSTM):
            dropouts.append(SequenceDropout(keras_lstm.dropout))
            lstms.append(_lstm(keras_lstm, width, bidirectional))
            width = keras_lstm.units * (2 if bidirectional else 1)
    return nn.Embedding(embedding.input_dim, embedding.output_dim), dropouts, lstms


class CharLSTM(nn.Module):
    """``zoo.rnn.char_lstm``: embedding, stacked LSTMs (input dropout each), next-token logits."""

    def __init__(self, keras_model):
        super().__init__()
        from keras import layers

        self.embedding, self.dropouts, self.lstms = _embedding_and_lstms(keras_model)
        head_dropout = _layers(keras_model, layers.Dropout)
        self.head_dropout = nn.Dropout(head_dropout[0].rate if head_dropout else 0.0)
        self.logits = nn.Linear(*keras_model.get_layer("logits_dense").kernel.shape)

    def forward(self, ids):
        x = self.embedding(ids)
        for dropout, lstm in zip(self.dropouts, self.lstms):
            x = lstm(dropout(x))[0]
        return self.logits(self.head_dropout(x))


def _masked_pool(x, valid, mode: str):
    """``zoo.layers.MaskedPooling1D``: max or mean over the unpadded steps; zeros if there are none."""
    counts = valid.sum(1, keepdim=True)
    if mode == "mean":
        return (x * valid.unsqueeze(-1)).sum(1) / counts.clamp(min=1)
    pooled = x.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)
    return torch.where(counts > 0, pooled, torch.zeros_like(pooled))


class BiLSTMClassifier(nn.Module):
    """``zoo.rnn.imdb_bilstm``: masked embedding, bidirectional LSTM(s) over the unpadded
    tokens, masked max pooling, dropout, logits.

    Masking is done with packed sequences: each review runs for its own length (the count of
    non-zero ids), so the backward direction starts at the last real token, as Keras's masked
    backward layer does. This assumes the padding (id 0) is at the end, as the zoo pipelines
    give it; Keras would also skip a 0 in the middle. Differences from Keras: one input
    dropout mask per sequence shared by both directions (Keras draws one per direction).
    """

    def __init__(self, keras_model):
        super().__init__()
        from keras import layers

        from zoo.layers import MaskedPooling1D

        self.embedding, self.dropouts, self.lstms = _embedding_and_lstms(keras_model)
        pools = _layers(keras_model, MaskedPooling1D)
        if not pools:
            raise ValueError(f"{keras_model.name}: the BiLSTM twin pools over steps (max or mean); got no pooling")
        self.pooling = pools[0].mode
        dropouts = _layers(keras_model, layers.Dropout)
        self.head_dropout = nn.Dropout(dropouts[0].rate if dropouts else 0.0)
        self.logits = nn.Linear(*_layers(keras_model, layers.Dense)[-1].kernel.shape)

    def forward(self, ids):
        valid = ids != 0
        lengths = valid.sum(1).clamp(min=1).cpu()  # pack needs a step; an empty review pools to zeros
        x = self.embedding(ids)
        for dropout, lstm in zip(self.dropouts, self.lstms):
            packed = nn.utils.rnn.pack_padded_sequence(dropout(x), lengths, batch_first=True, enforce_sorted=False)
            x = nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=ids.shape[1])[0]
        return self.logits(self.head_dropout(_masked_pool(x, valid, self.pooling)))


# --- transformers --------------------------------------------------------------------------

class TransformerBlock(nn.Module):
    """``zoo.layers.TransformerBlock``: pre-norm attention and GELU MLP, dropout on both residual
    branches. Keras's MultiHeadAttention has separate query, key and value projections with
    biases; here they are one ``Linear(d, 3d)``, the same parameters in one matrix."""

    def __init__(self, keras_block):
        super().__init__()
        dim, self.heads = keras_block.embed_dim, keras_block.num_heads
        self.causal, self.attention_dropout = keras_block.causal, keras_block.attention_dropout
        self.attention_norm = nn.LayerNorm(dim, eps=keras_block.epsilon)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attention_output = nn.Linear(dim, dim)
        self.mlp_norm = nn.LayerNorm(dim, eps=keras_block.epsilon)
        self.mlp_hidden = nn.Linear(dim, keras_block.mlp_dim)
        self.mlp_output = nn.Linear(keras_block.mlp_dim, dim)
        self.residual_dropout = nn.Dropout(keras_block.dropout)

    def forward(self, x, padding_bias=None):
        batch, steps, dim = x.shape
        query, key, value = self.qkv(self.attention_norm(x)).view(batch, steps, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=padding_bias, is_causal=self.causal,
                                                  dropout_p=self.attention_dropout if self.training else 0.0)
        attended = self.attention_output(attended.transpose(1, 2).reshape(batch, steps, dim))
        x = x + self.residual_dropout(attended)
        hidden = self.mlp_output(F.gelu(self.mlp_hidden(self.mlp_norm(x))))  # Keras's "gelu" is the exact erf form
        return x + self.residual_dropout(hidden)


class Transformer(nn.Module):
    """``zoo.transformer.gpt`` (causal, logits at every position) and ``transformer_classifier``
    (padding masked out of attention and pooling, one prediction per sequence). A padded key
    gets -1e9 added to its attention scores, as Keras's masked softmax does."""

    def __init__(self, keras_model):
        super().__init__()
        from keras import layers

        from zoo.layers import MaskedPooling1D, TokenAndPositionEmbedding
        from zoo.layers import TransformerBlock as KerasBlock

        embedding = _layers(keras_model, TokenAndPositionEmbedding)[0]
        self.mask_zero = embedding.mask_zero
        self.tokens = nn.Embedding(embedding.vocab_size, embedding.embed_dim)
        self.positions = nn.Embedding(embedding.max_length, embedding.embed_dim)
        self.embedding_dropout = nn.Dropout(keras_model.get_layer("embedding_dropout").rate)
        self.blocks = nn.ModuleList(TransformerBlock(block) for block in _layers(keras_model, KerasBlock))
        if any(block.causal for block in self.blocks) and self.mask_zero:
            raise ValueError(f"{keras_model.name}: a causal transformer with a padding mask has no twin here")
        final_norm = keras_model.get_layer("final_norm")
        self.final_norm = nn.LayerNorm(embedding.embed_dim, eps=final_norm.epsilon)
        pools = _layers(keras_model, MaskedPooling1D)
        self.pooling = pools[0].mode if pools else ("first" if self.mask_zero else None)
        head_dropout = [layer for layer in _layers(keras_model, layers.Dropout) if layer.name != "embedding_dropout"]
        self.head_dropout = nn.Dropout(head_dropout[0].rate if head_dropout else 0.0)
        self.head = nn.Linear(*_layers(keras_model, layers.Dense)[-1].kernel.shape)

    def forward(self, ids):
        steps = ids.shape[1]
        x = self.embedding_dropout(self.tokens(ids) + self.positions(torch.arange(steps, device=ids.device)))
        valid = padding_bias = None
        if self.mask_zero:
            valid = ids != 0
            padding_bias = torch.zeros(valid.shape, dtype=x.dtype, device=x.device).masked_fill(~valid, -1e9)
            padding_bias = padding_bias[:, None, None, :]  # (batch, heads, queries, keys)
        for block in self.blocks:
            x = block(x, padding_bias)
        x = self.final_norm(x)
        if self.pooling is not None:
            x = x[:, 0] if self.pooling == "first" else _masked_pool(x, valid, self.pooling)
            x = self.head_dropout(x)
        return self.head(x)


# --- the interface -------------------------------------------------------------------------

def twin(family: str, keras_model) -> nn.Module:
    """The same network as ``keras_model`` (built by zoo for ``family``) in plain PyTorch.

    ``dcgan``: the zoo GAN; the twin holds ``.generator`` and ``.discriminator``.
    ``finetune_phase2``: the ``zoo.backbones`` classifier after ``unfreeze_top(model, n)``; the
    twin freezes the same layers (its BatchNorms stay in eval mode through ``train()``).
    """
    _check_family(family)
    if family == "dcgan":
        return GANTwin(keras_model)
    if family in IMAGE_FAMILIES:
        if family == "finetune_phase2":
            _check_phase2(keras_model)
        return graph_twin(keras_model)
    if family == "char_lstm":
        return CharLSTM(keras_model)
    if family == "imdb_bilstm":
        return BiLSTMClassifier(keras_model)
    return Transformer(keras_model)


def _check_phase2(keras_model) -> None:
    from keras import layers

    norms = [layer for layer in keras_model._flatten_layers() if isinstance(layer, layers.BatchNormalization)]
    if norms and all(layer.trainable for layer in norms):
        raise ValueError("finetune_phase2 is the fine-tune's second phase: call zoo.backbones.unfreeze_top(model, "
                         "unfreeze_blocks) on the Keras classifier first (it freezes all but the top blocks and "
                         "every BatchNorm), then make its twin")


def to_torch(family: str, batch, device=None) -> tuple:
    """One batch of NumPy arrays as the Keras pipeline yields it, as the twin's tensors:
    images NHWC -> NCHW float32, token ids and labels int64; ``dcgan`` gives ``(images,)``."""
    _check_family(family)
    arrays = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    # A copy where needed: tf.data's NumPy arrays are read-only, which torch.from_numpy warns of.
    as_tensor = lambda array, dtype: torch.from_numpy(np.require(np.asarray(array, dtype), requirements="W"))
    if family in IMAGE_FAMILIES or family == "dcgan":
        images = as_tensor(arrays[0], np.float32).permute(0, 3, 1, 2).contiguous()
        tensors = (images,) if family == "dcgan" else (images, as_tensor(arrays[1], np.int64).reshape(-1))
    else:
        tensors = tuple(as_tensor(array, np.int64) for array in arrays[:2])
    return tuple(tensor.to(device) for tensor in tensors) if device is not None else tensors


def trainer(family: str, module, learning_rate: float = 1e-3) -> Callable[[tuple], float]:
    """``step(batch)``: one Adam step of ``module`` on a ``to_torch`` batch; returns the loss.

    Classifiers: cross-entropy of the logits (plus the Keras model's L2 kernel penalties, the
    ResNet's weight decay); language models: mean per-token cross-entropy; ``dcgan``: the zoo
    GAN's step (Adam with beta_1 0.5 for each network, as ``zoo.gan.GAN.compile``): the
    discriminator on real and fresh fake images (BCE with logits, real targets 1 - label
    smoothing), then the generator on fresh noise (non-saturating); returns d_loss + g_loss.
    """
    _check_family(family)
    module.train()
    if family == "dcgan":
        return _gan_trainer(module, learning_rate)
    weights = [parameter for parameter in module.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(weights, lr=learning_rate)
    penalties = getattr(module, "l2_penalties", [])

    def step(batch) -> float:
        inputs, labels = batch
        logits = module(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        for weight, factor in penalties:
            loss = loss + factor * weight.square().sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def _gan_trainer(gan: GANTwin, learning_rate: float) -> Callable[[tuple], float]:
    generator, discriminator = gan.generator, gan.discriminator
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits

    def step(batch) -> float:
        images = batch[0]
        count = images.shape[0]
        with torch.no_grad():  # the discriminator's step: no gradient for the generator
            fake = generator(torch.randn(count, gan.latent_dim, device=images.device))
        real_logits, fake_logits = discriminator(images), discriminator(fake)
        d_loss = (bce(real_logits, torch.full_like(real_logits, 1.0 - gan.label_smoothing))
                  + bce(fake_logits, torch.zeros_like(fake_logits)))
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        logits = discriminator(generator(torch.randn(count, gan.latent_dim, device=images.device)))
        g_loss = bce(logits, torch.ones_like(logits))
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        return float(d_loss.detach() + g_loss.detach())

    return step
