"""Custom training steps that run on every Keras backend: the one place where a model with
its own ``train_step`` (``zoo.gan.GAN``, ``zoo.vae.VAE``) meets TensorFlow's tape, PyTorch's
autograd and JAX's stateless functions.

A model writes its step once, as ordinary stateful Keras code over ``keras.ops``:

    def _train(self, data):
        loss, = steps.gradient_step(lambda: (self._loss(data),), self.trainable_variables, self.optimizer)
        ...update metrics, return logs...

    def train_step(self, *args):
        return steps.train_step(self, self._train, *args)

- TensorFlow: ``gradient_step`` differentiates under ``tf.GradientTape`` and applies the
  optimizer, as a hand-written TF step would (so everything that held under ``tf.distribute``
  still holds);
- PyTorch: it clears the weights' ``.grad``, calls ``backward()`` and applies the optimizer
  under ``torch.no_grad()``, as Keras's own torch trainer does;
- JAX: Keras calls ``train_step(state, data)`` and expects the new state back, with no
  variable touched. ``train_step`` runs the model's step inside a ``keras.StatelessScope``
  holding the state, so reads see the state and assignments are recorded; ``gradient_step``
  differentiates with ``jax.value_and_grad`` over the weights' values (every other variable
  the loss reads or updates, batch-norm statistics and noise seeds, comes along as an
  auxiliary output) and applies the optimizer with ``stateless_apply``. The recorded values
  are the new state.

A model with several optimizers (the GAN's two) lists them with ``Optimizers``: Keras's JAX
trainer carries ``model.optimizer.variables`` as the optimizer state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import keras

_state = threading.local()  # JAX: the scope holding the step's state, while train_step runs


class Optimizers:
    """Several optimizers seen as one by Keras's JAX trainer, which carries and syncs
    ``model.optimizer.variables`` (the GAN's discriminator and generator optimizers)."""

    built = True

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def variables(self):
        return [variable for optimizer in self.optimizers for variable in optimizer.variables]


def gradient_step(loss_fn: Callable[[], Sequence], weights: Sequence, optimizer) -> tuple:
    """Runs ``loss_fn()`` (a tuple whose first item is the loss to minimise; the rest rides
    along), takes the loss's gradient with respect to ``weights`` and applies ``optimizer``
    to them. Returns ``loss_fn``'s tuple, computed before the update."""
    backend = keras.backend.backend()
    weights = list(weights)
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            outputs = tuple(loss_fn())
            scaled = optimizer.scale_loss(outputs[0])  # mixed float16: the loss-scale optimizer's factor
        optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        return outputs
    if backend == "torch":
        import torch

        for weight in weights:  # another network's step may have left gradients here
            weight.value.grad = None
        outputs = tuple(loss_fn())
        optimizer.scale_loss(outputs[0]).backward()
        with torch.no_grad():
            optimizer.apply([weight.value.grad for weight in weights], weights)
        return outputs
    if backend == "jax":
        return _jax_gradient_step(loss_fn, weights, optimizer)
    raise NotImplementedError(f"zoo's custom training steps support the tensorflow, jax and torch backends; "
                              f"this is {backend!r}")


def _jax_gradient_step(loss_fn, weights, optimizer) -> tuple:
    import jax

    scope = getattr(_state, "scope", None)
    if scope is None:
        raise RuntimeError("On JAX, gradient_step runs inside zoo.steps.train_step (Keras's stateless "
                           "train_step(state, data)), which provides the state")
    weight_ids = {id(weight) for weight in weights}
    # Every other variable the step knows (the scope's mapping), so that the loss reads their
    # current values and its updates (batch-norm statistics, noise seeds) come out as values.
    others = [variable for variable in scope.variables if id(variable) not in weight_ids]
    other_values = [scope.get_current_value(variable) for variable in others]

    def scaled_loss(weight_values):
        mapping = list(zip(weights, weight_values)) + list(zip(others, other_values))
        with keras.StatelessScope(state_mapping=mapping) as inner:
            outputs = tuple(loss_fn())
            scaled = optimizer.scale_loss(outputs[0])
        return scaled, (outputs, [inner.get_current_value(variable) for variable in others])

    weight_values = [scope.get_current_value(weight) for weight in weights]
    (_, (outputs, updates)), gradients = jax.value_and_grad(scaled_loss, has_aux=True)(weight_values)
    for variable, value in zip(others, updates):
        variable.assign(value)
    optimizer_values = [scope.get_current_value(variable) for variable in optimizer.variables]
    new_weights, new_optimizer_values = optimizer.stateless_apply(optimizer_values, gradients, weight_values)
    for variable, value in zip([*weights, *optimizer.variables], [*new_weights, *new_optimizer_values]):
        variable.assign(value)
    return outputs


class _StateScope(keras.StatelessScope):
    """A stateless scope that remembers which variables it holds (``gradient_step`` needs the list)."""

    def __init__(self, groups: Sequence[Sequence], values: Sequence[Sequence]):
        self.variables = [variable for group in groups for variable in group]
        super().__init__(state_mapping=[pair for group, group_values in zip(groups, values)
                                        for pair in zip(group, group_values)])


def _stateless(groups, state, step, data):
    with _StateScope(groups, state) as scope:
        _state.scope = scope
        try:
            logs = step(data)
        finally:
            _state.scope = None
    return logs, tuple([scope.get_current_value(variable) for variable in group] for group in groups)


def train_step(model: keras.Model, step: Callable, *args):
    """``model.train_step`` on every backend: ``step(data)`` directly on TensorFlow and PyTorch;
    on JAX (``train_step(state, data)``) inside a scope holding the state, returning the new state."""
    if keras.backend.backend() != "jax":
        return step(*args)
    state, data = args
    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
              model.metrics_variables)
    return _stateless(groups, state, step, data)


def test_step(model: keras.Model, step: Callable, *args):
    """``model.test_step`` on every backend (JAX: ``test_step(state, data)``, no optimizer state)."""
    if keras.backend.backend() != "jax":
        return step(*args)
    state, data = args
    groups = (model.trainable_variables, model.non_trainable_variables, model.metrics_variables)
    return _stateless(groups, state, step, data)
