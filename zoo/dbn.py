"""Deep belief networks: restricted Boltzmann machines trained with contrastive divergence,
stacked greedily, then unrolled into a sigmoid classifier fine-tuned with backpropagation.

    classifier = zoo.build("mnist_dbn")                   # 784-500-500-2000-10, raw pixels in
    rbms = zoo.dbn.rbm_stack(classifier, cd_steps=1, seed=0)
    visible = zoo.dbn.visible_units(classifier)(images)   # the scaled, flattened pixels
    for rbm in rbms:                                      # greedily, layer by layer
        for batch in batches(visible):
            error = rbm.contrastive_divergence(batch)     # one CD-k update; returns the error
        visible = rbm.hidden_probabilities(visible)       # the next RBM's data
    zoo.dbn.load_pretrained(classifier, rbms)             # then compile and fit as usual

``RBM`` is a Bernoulli-Bernoulli restricted Boltzmann machine (Hinton, Osindero and Teh
2006; Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", UTML TR
2010-003). Visible units take values in [0, 1], read as probabilities; the classifier's
``Rescaling`` layer (``input_scale``) puts raw pixels there, so the RBMs and the saved
classifier take the same raw data. Its update follows the guide and Hinton and
Salakhutdinov's ``rbm.m``: learning rate 0.1 on the batch-mean statistics, momentum, weight
decay 2e-4 on the weights only; the positive phase drives the chain with sampled hidden
states, the chain's visible states are probabilities, and the negative statistics use hidden
probabilities. Weights start from N(0, 0.1^2), as in ``rbm.m``, not the guide's N(0, 0.01^2),
from which a wide RBM's nearly identical hidden units can all switch off in the first updates.

``dbn`` builds the classifier with the stack's shapes: ``Dense(units, "sigmoid")`` layers
named ``rbm_0``, ``rbm_1`` ... computing exactly what each RBM's hidden
probabilities are, so ``load_pretrained`` copies weights and hidden biases across and the
two give identical activations. Hinton et al. (2006) report 1.25% test error on MNIST for
784-500-500-2000 with a label-joint top layer fine-tuned by the up-down algorithm; here
the network is fine-tuned by backpropagation instead, as Hinton and Salakhutdinov (2006) did.

The CD update is plain ``keras.ops`` code on one batch, for any backend (on TensorFlow, wrap
it in ``tf.function`` for speed, as the ``dbn`` recipe does); RBMs compute in float32 whatever
the global dtype policy. Under ``tf.distribute`` call it outside replica context, on the
global batch: the update is then the same for any number of replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from zoo.layers import classifier_head
from zoo.registry import list_models, register_model


@keras.saving.register_keras_serializable(package="zoo")
class RBM(layers.Layer):
    """A Bernoulli-Bernoulli restricted Boltzmann machine; calling it gives p(h = 1 | v).

    Args:
        units: hidden units.
        cd_steps: k of CD-k, the Gibbs steps of the negative phase.
        learning_rate, momentum, weight_decay: the CD update's defaults (learning rate and
            momentum may be overridden per call, e.g. momentum 0.5 in the first epochs).
        initial_std: standard deviation of the initial weights.
        seed: seeds the Bernoulli samples (a ``keras.random.SeedGenerator``).
    """

    def __init__(self, units: int, cd_steps: int = 1, learning_rate: float = 0.1, momentum: float = 0.9,
                 weight_decay: float = 2e-4, initial_std: float = 0.1, seed: int | None = None, **kwargs):
        # float32 whatever the global policy: CD's small differences of large statistics need it.
        super().__init__(**{"dtype": "float32", **kwargs})
        if int(units) < 1:
            raise ValueError(f"units must be a positive number of hidden units, got {units}")
        if int(cd_steps) < 1:
            raise ValueError(f"cd_steps (the k of CD-k) must be at least 1, got {cd_steps}")
        if learning_rate <= 0 or not 0 <= momentum < 1 or weight_decay < 0 or initial_std <= 0:
            raise ValueError(f"Need learning_rate > 0, 0 <= momentum < 1, weight_decay >= 0 and initial_std > 0; "
                             f"got learning_rate={learning_rate}, momentum={momentum}, weight_decay={weight_decay}, "
                             f"initial_std={initial_std}")
        self.units, self.cd_steps, self.seed = int(units), int(cd_steps), seed
        self.learning_rate, self.momentum, self.weight_decay = learning_rate, momentum, weight_decay
        self.initial_std = initial_std
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        visible = int(input_shape[-1])
        initializer = keras.initializers.RandomNormal(0.0, self.initial_std, self.seed)
        self.kernel = self.add_weight((visible, self.units), initializer, name="kernel")
        self.visible_bias = self.add_weight((visible,), "zeros", name="visible_bias")
        self.hidden_bias = self.add_weight((self.units,), "zeros", name="hidden_bias")
        # The momentum terms ("increments" in rbm.m): saved with the layer so training can continue.
        self.velocities = [self.add_weight(variable.shape, "zeros", trainable=False, name=f"{variable.name}_velocity")
                           for variable in (self.kernel, self.visible_bias, self.hidden_bias)]

    def call(self, visible):
        return self.hidden_probabilities(visible)

    def hidden_probabilities(self, visible):
        return ops.sigmoid(ops.matmul(visible, self.kernel) + self.hidden_bias)

    def visible_probabilities(self, hidden):
        return ops.sigmoid(ops.matmul(hidden, ops.transpose(self.kernel)) + self.visible_bias)

    def sample(self, probabilities):
        """Bernoulli states (0.0 or 1.0) with the given probabilities, from the layer's seed."""
        noise = keras.random.uniform(ops.shape(probabilities), seed=self.seed_generator)
        return ops.cast(noise < probabilities, probabilities.dtype)

    def initialize_visible_bias(self, visible) -> None:
        """Set visible biases to log(p / (1 - p)) of each unit's mean over ``visible`` (the guide's
        Section 8): the model starts with the data's marginals instead of learning them first."""
        mean = np.clip(np.mean(ops.convert_to_numpy(visible), axis=0), 1e-3, 1 - 1e-3)
        if not self.built:
            self.build(np.shape(visible))
        self.visible_bias.assign(np.log(mean / (1 - mean)).astype(self.visible_bias.dtype))

    def reconstruction_error(self, visible):
        """Mean squared error per unit of the deterministic reconstruction p(v | p(h | v)); no update."""
        visible = ops.convert_to_tensor(visible, self.compute_dtype)
        return ops.mean(ops.square(visible - self.visible_probabilities(self.hidden_probabilities(visible))))

    def contrastive_divergence(self, visible, learning_rate=None, momentum=None):
        """One CD-k update on a batch of visible vectors; returns the batch's reconstruction error
        (mean squared error per unit of the first reconstruction, comparable across k)."""
        visible = ops.convert_to_tensor(visible, self.compute_dtype)
        if not self.built:
            self.build(visible.shape)
        learning_rate = self.learning_rate if learning_rate is None else learning_rate
        momentum = self.momentum if momentum is None else momentum
        positive_hidden = self.hidden_probabilities(visible)
        hidden_states = self.sample(positive_hidden)
        for step in range(self.cd_steps):
            negative_visible = self.visible_probabilities(hidden_states)
            if step == 0:
                error = ops.mean(ops.square(visible - negative_visible))
            negative_hidden = self.hidden_probabilities(negative_visible)
            if step + 1 < self.cd_steps:
                hidden_states = self.sample(negative_hidden)
        count = ops.cast(ops.shape(visible)[0], visible.dtype)
        gradients = [  # CD-k estimates of the log-likelihood gradient, then weight decay
            (ops.matmul(ops.transpose(visible), positive_hidden)
             - ops.matmul(ops.transpose(negative_visible), negative_hidden)) / count
            - self.weight_decay * self.kernel,
            ops.mean(visible - negative_visible, axis=0),
            ops.mean(positive_hidden - negative_hidden, axis=0),
        ]
        for variable, velocity, gradient in zip((self.kernel, self.visible_bias, self.hidden_bias), self.velocities,
                                                gradients):
            velocity.assign(momentum * velocity + learning_rate * gradient)
            variable.assign_add(velocity)
        return error

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, cd_steps=self.cd_steps, learning_rate=self.learning_rate,
                      momentum=self.momentum, weight_decay=self.weight_decay, initial_std=self.initial_std,
                      seed=self.seed)
        return config


def dbn(hidden_units: Sequence[int] = (500, 500, 2000), num_classes: int = 10,
        input_shape: Sequence[int] = (28, 28, 1), input_scale: float = 1 / 255,
        classifier_activation: str | None = "softmax", name: str = "dbn") -> keras.Model:
    """The classifier a stack of RBMs unrolls into: rescaled, flattened input, one sigmoid
    ``Dense`` layer per RBM (``rbm_0`` ...), then the softmax head. ``input_scale`` must
    map raw inputs into [0, 1] (1/255 for 8-bit pixels, the recipes' digits included)."""
    hidden_units = [int(units) for units in hidden_units]
    if not hidden_units or min(hidden_units) < 1:
        raise ValueError(f"hidden_units needs one positive width per RBM, e.g. (500, 500, 2000); got "
                         f"{list(hidden_units)}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if input_scale <= 0:
        raise ValueError(f"input_scale must be positive (raw inputs times it must lie in [0, 1]), got {input_scale}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(input_scale, name="rescale")(inputs)
    if len(input_shape) > 1:
        x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="sigmoid", name=f"rbm_{index}")(x)
    outputs = classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def hidden_layers(classifier: keras.Model) -> list:
    """The classifier's sigmoid ``Dense`` layers ``rbm_0``, ``rbm_1`` ..., input to output."""
    found = [layer for layer in classifier.layers if layer.name.startswith("rbm_")
             and isinstance(layer, layers.Dense) and layer.activation is keras.activations.sigmoid]
    if not found:
        raise ValueError(f"{classifier.name} has no sigmoid Dense layers named rbm_<i> for RBMs to fill; build "
                         f"it with zoo.dbn.dbn or a registered DBN ({list_dbns()})")
    return found


def visible_units(classifier: keras.Model) -> keras.Model:
    """Raw inputs to what the first RBM sees (rescaled and flattened), sharing the classifier's layers."""
    return keras.Model(classifier.input, hidden_layers(classifier)[0].input, name=f"{classifier.name}_visible")


def rbm_stack(classifier: keras.Model, **rbm_kwargs) -> list[RBM]:
    """Built RBMs with the classifier's hidden-layer shapes; ``rbm_kwargs`` go to every ``RBM``
    (a given ``seed`` is offset per layer so the layers draw different samples)."""
    seed = rbm_kwargs.pop("seed", None)
    rbms = []
    for index, layer in enumerate(hidden_layers(classifier)):
        rbm = RBM(layer.units, seed=None if seed is None else seed + index, name=f"rbm_{index}", **rbm_kwargs)
        rbm.build((None, layer.kernel.shape[0]))
        rbms.append(rbm)
    return rbms


def load_pretrained(classifier: keras.Model, rbms: Sequence[RBM]) -> None:
    """Copy each RBM's weights and hidden biases into the classifier's matching hidden layer."""
    targets = hidden_layers(classifier)
    if len(targets) != len(rbms):
        raise ValueError(f"{classifier.name} has {len(targets)} hidden layers but {len(rbms)} RBMs were given")
    for layer, rbm in zip(targets, rbms):
        if tuple(layer.kernel.shape) != tuple(rbm.kernel.shape):
            raise ValueError(f"{layer.name} has a {tuple(layer.kernel.shape)} kernel but {rbm.name} has "
                             f"{tuple(rbm.kernel.shape)}: build the RBMs with zoo.dbn.rbm_stack(classifier)")
        layer.kernel.assign(rbm.kernel)
        layer.bias.assign(rbm.hidden_bias)


def receptive_fields(kernel, image_shape: Sequence[int], count: int = 100) -> np.ndarray:
    """The first ``count`` hidden units' incoming weights (a ``(visible, hidden)`` kernel) as
    images of ``image_shape``, each stretched to [0, 255]: the strokes each unit detects
    (``zoo.images.save_grid`` tiles them)."""
    fields = np.asarray(ops.convert_to_numpy(kernel)).T[:count].reshape(-1, *image_shape)
    axes = tuple(range(1, fields.ndim))
    low, high = fields.min(axis=axes, keepdims=True), fields.max(axis=axes, keepdims=True)
    return (fields - low) / np.maximum(high - low, 1e-8) * 255.0


def list_dbns() -> list[str]:
    """The registered DBN classifiers."""
    return list_models("*dbn*")


@register_model
def mnist_dbn(num_classes=10, input_shape=(28, 28, 1), **kwargs) -> keras.Model:
    """Hinton et al.'s (2006) MNIST network: 784-500-500-2000-10, sigmoid units, 1.67M parameters."""
    return dbn(kwargs.pop("hidden_units", (500, 500, 2000)), num_classes, input_shape, name="mnist_dbn", **kwargs)


@register_model
def dbn_tiny(num_classes=10, input_shape=(8, 8, 1), input_scale=1 / 255, **kwargs) -> keras.Model:
    """64-64-64-10 for scikit-learn's 8x8 digits (in 0-255, as the recipes give them): tests and quick runs."""
    return dbn(kwargs.pop("hidden_units", (64, 64)), num_classes, input_shape, input_scale, name="dbn_tiny",
               **kwargs)
