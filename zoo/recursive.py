"""Recursive (tree-structured) neural networks: one shared layer composes two child vectors
into their parent, bottom-up over a binary tree, and the root encodes the whole sequence.

    model = zoo.build("imdb_recursive")                      # word ids in, sentiment out
    model = zoo.build("recursive_nn", units=(32,), input_shape=(8, 8), num_classes=10)
    root = zoo.recursive.TreeComposer()(vectors, mask=mask)  # (batch, steps, dim) -> (batch, dim)

``TreeComposer`` is the recursive network of Socher et al. (2011): ``parent = tanh(W [left;
right] + b)``, with one ``W`` (``2 * dim`` by ``dim``) and one ``b`` shared by every node of
every tree, so a tree of any size uses the same ``2 * dim * dim + dim`` weights.

No parse is given, so the tree is the balanced one over the sequence's real (unpadded)
elements: pair neighbours ``(0, 1), (2, 3), ...``; an element left over at the end of an
odd-sized level is carried up unchanged; repeat on the parents until one node is left.
``balanced_tree(5)`` spells it out: ``(((0, 1), (2, 3)), 4)``. Padding (the mask's False
steps, wherever they are) is dropped before the tree is built, so a sequence gets the same
root however much padding surrounds it and whatever else shares its batch. A sequence with
no real element encodes to zeros.

The levels are vectorised: all trees in a batch are built together, one matrix product
per level and ``ceil(log2(steps))`` levels, rather than a node at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from zoo.layers import classifier_head, sequence_input
from zoo.registry import register_model


def balanced_tree(count: int):
    """The tree ``TreeComposer`` builds over ``count`` elements, as nested pairs of indices.

    ``balanced_tree(3) == ((0, 1), 2)``; ``balanced_tree(1) == 0``; ``balanced_tree(0) is None``.
    """
    if count < 0:
        raise ValueError(f"count must be at least 0, got {count}")
    nodes = list(range(count))
    while len(nodes) > 1:
        nodes = [tuple(nodes[index:index + 2]) if index + 1 < len(nodes) else nodes[index]
                 for index in range(0, len(nodes), 2)]
    return nodes[0] if nodes else None


def average_pair_initializer(shape, dtype=None):
    """``0.5 * [I; I]`` plus a little noise: an untrained parent is about the mean of its
    children, so the root starts as a weighted bag of words (Socher et al. 2013 start
    their composition the same way) and deep trees neither explode nor vanish at first;
    from a random (Glorot) start the root of a deep tree forgets the words."""
    inputs, outputs = shape
    if inputs != 2 * outputs:
        raise ValueError(f"The composition kernel must be (2 * dim, dim), got {tuple(shape)}")
    half_identity = 0.5 * ops.eye(outputs, dtype=dtype)
    noise = keras.initializers.RandomNormal(stddev=0.01)(shape, dtype=dtype)
    return ops.concatenate([half_identity, half_identity], axis=0) + noise


@keras.saving.register_keras_serializable(package="zoo")
class TreeComposer(layers.Layer):
    """Compose ``(batch, steps, dim)`` vectors bottom-up over the balanced binary tree of
    each sequence's real steps; returns the roots, ``(batch, dim)``.

    ``mask`` (``(batch, steps)``, True for real steps, e.g. from ``Embedding(mask_zero=True)``)
    says which steps are real; without one every step is. ``activation`` is the
    nonlinearity of the composition; ``kernel_initializer`` is ``"average"`` (see
    ``average_pair_initializer``) or any Keras initializer name.
    """

    def __init__(self, activation: str = "tanh", kernel_initializer: str = "average", **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.kernel_initializer = kernel_initializer
        self.activation_function = keras.activations.get(activation)
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"TreeComposer needs a known vector size (the last axis), got input shape {input_shape}")
        initializer = (average_pair_initializer if self.kernel_initializer == "average"
                       else keras.initializers.get(self.kernel_initializer))
        self.kernel = self.add_weight(shape=(2 * dim, dim), initializer=initializer, name="kernel")
        self.bias = self.add_weight(shape=(dim,), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs, mask=None):
        batch, steps, dim = ops.shape(inputs)[0], ops.shape(inputs)[1], inputs.shape[-1]
        if mask is None:
            counts = ops.full((batch,), steps, dtype="int32")
            nodes = inputs
        else:
            nodes, counts = self.real_steps_first(inputs, ops.cast(mask, "bool"))
        if isinstance(inputs.shape[1], int):  # a known length: unroll the ceil(log2(steps)) levels
            while nodes.shape[1] > 1:
                nodes, counts = self.compose_level(nodes, counts, dim)
        else:  # a length known only at run time (TensorFlow graphs): loop until one node is left
            nodes, counts = ops.while_loop(lambda nodes, counts: ops.shape(nodes)[1] > 1,
                                           lambda nodes, counts: self.compose_level(nodes, counts, dim),
                                           (nodes, counts))
        return nodes[:, 0, :]

    @staticmethod
    def real_steps_first(inputs, mask):
        """Move each sequence's real steps to the front, in order, and zero the rest.

        The tree then depends only on the real steps, wherever the padding was."""
        batch, steps, dim = ops.shape(inputs)[0], ops.shape(inputs)[1], inputs.shape[-1]
        positions = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)
        order = ops.argsort(ops.where(mask, positions, positions + steps), axis=1)  # real steps sort first
        # Gather whole vectors from the flattened batch: take_along_axis would gather (and,
        # backwards, scatter) element by element, a much slower training step.
        rows = order + ops.expand_dims(ops.arange(batch, dtype="int32") * steps, 1)
        nodes = ops.reshape(ops.take(ops.reshape(inputs, (-1, dim)), ops.reshape(rows, (-1,)), axis=0),
                            ops.shape(inputs))
        counts = ops.sum(ops.cast(mask, "int32"), axis=1)
        real = ops.expand_dims(positions < ops.expand_dims(counts, 1), -1)
        return ops.where(real, nodes, ops.zeros_like(nodes)), counts

    def compose_level(self, nodes, counts, dim: int):
        """One level: node pairs (2i, 2i + 1) become parents where both are real; a last,
        unpaired real node is carried up unchanged; padding stays zero."""
        steps = nodes.shape[1]
        if isinstance(steps, int):  # keep the length static, so the caller's unrolled loop can read it
            nodes = ops.pad(nodes, [[0, 0], [0, steps % 2], [0, 0]])
            pairs = ops.reshape(nodes, (-1, (steps + 1) // 2, 2 * dim))  # [left; right] of each neighbour pair
        else:
            batch, steps = ops.shape(nodes)[0], ops.shape(nodes)[1]
            nodes = ops.concatenate([nodes, ops.zeros((batch, steps % 2, dim), dtype=nodes.dtype)], axis=1)
            pairs = ops.reshape(nodes, (batch, -1, 2 * dim))
        parents = self.activation_function(ops.matmul(pairs, self.kernel) + self.bias)
        left = pairs[:, :, :dim]
        pair_index = ops.arange(ops.shape(pairs)[1], dtype="int32")
        both_real = ops.expand_dims(2 * pair_index + 1, 0) < ops.expand_dims(counts, 1)
        return ops.where(ops.expand_dims(both_real, -1), parents, left), (counts + 1) // 2

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "kernel_initializer": self.kernel_initializer}


@register_model
def recursive_nn(units: Sequence[int] = (128,), vocab_size: int | None = 20000, sequence_length: int | None = None,
                 input_shape: Sequence[int] | None = None, activation: str = "tanh",
                 kernel_initializer: str = "average", dropout: float = 0.0, num_classes: int = 2,
                 classifier_activation: str | None = "softmax", head_dropout: float = 0.0,
                 name: str = "recursive_nn") -> keras.Model:
    """A sequence classifier whose encoder is a ``TreeComposer`` over the balanced tree.

    Args:
        units: ``(dim,)``, the size of every tree node (a one-element list, as the recurrent
            models' ``units``, so ``--units 64`` works for both). Leaves are token
            embeddings of this size, or for numeric sequences each step projected to it.
        vocab_size: token ids for text, 0 reserved for padding (masked, left out of the
            tree); ``None`` with ``input_shape`` for numeric sequences.
        sequence_length: fixed number of tokens, or ``None`` for any length.
        input_shape: ``(steps, features)`` of a numeric sequence (no padding).
        activation, kernel_initializer: of the composition (see ``TreeComposer``).
        dropout: on the leaves (embeddings or projected steps).
        num_classes, classifier_activation, head_dropout: the head on the root vector.
    """
    units = [units] if isinstance(units, int) else list(units)
    if len(units) != 1 or int(units[0]) < 1:
        raise ValueError(f"units must be one positive node size, e.g. (128,); got {units}: a recursive "
                         f"network has a single composition layer, shared by every node")
    dim = int(units[0])
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    inputs = sequence_input(vocab_size, sequence_length, input_shape, model="A recursive classifier")
    if input_shape is not None:
        leaves = layers.Dense(dim, activation=activation, name="leaf_projection")(inputs)
    else:
        leaves = layers.Embedding(vocab_size, dim, mask_zero=True, name="embedding")(inputs)
    if dropout:
        leaves = layers.Dropout(dropout, name="leaf_dropout")(leaves)
    root = TreeComposer(activation, kernel_initializer, name="tree")(leaves)
    outputs = classifier_head(root, num_classes, classifier_activation, head_dropout)
    return keras.Model(inputs, outputs, name=name)


# --- registered variants -------------------------------------------------------------

@register_model
def imdb_recursive(vocab_size: int = 20000, num_classes: int = 2, **kwargs) -> keras.Model:
    """Word-level recursive network for IMDB-sized sentiment, to set beside ``imdb_bilstm``:
    128-d embeddings composed over the balanced tree of the review's words, 20% dropout
    on the embeddings and 30% before the head."""
    options = dict(units=(128,), dropout=0.2, head_dropout=0.3) | kwargs
    return recursive_nn(vocab_size=vocab_size, num_classes=num_classes, name="imdb_recursive", **options)


@register_model
def recursive_tiny(vocab_size: int = 100, num_classes: int = 2, **kwargs) -> keras.Model:
    """An 8-d recursive network over a 100-word vocabulary, for tests."""
    options = dict(units=(8,)) | kwargs
    return recursive_nn(vocab_size=vocab_size, num_classes=num_classes, name="recursive_tiny", **options)
