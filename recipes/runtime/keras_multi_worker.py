"""Keras 3 under MultiWorkerMirroredStrategy: the one place that works around its bugs.

Keras 3's TensorFlow trainer breaks ``fit``, ``evaluate`` and ``predict`` as soon as a
cluster has two or more workers (keras-team/keras#20585, open; tensorflow/tensorflow#72388).
Measured with Keras 3.15.1 and TensorFlow 2.21, two workers on loopback:

1. ``TensorFlowTrainer._maybe_symbolic_build`` averages the first distributed batch with
   ``strategy.reduce("MEAN", batch, axis=None)`` to learn the input shapes; under this
   strategy that fails before the first step ("Attempt to convert a value (PerReplica:{...})
   with an unsupported type ... to a Tensor"). Averaging data across workers would be a
   collective whose shapes may differ between them anyway; the build needs only shapes and
   dtypes, which this worker's first local batch has.
2. ``reduce_per_replica`` reduces each step's logs in its multi-worker branch with
   ``strategy.reduce("MEAN", value, axis=0)``; the logs are scalars ("Invalid reduction
   dimension 0 for input with 0 dimensions"). The mean across replicas, element by element,
   is ``axis=None`` (what the single-machine branch computes with ``tf.reduce_mean`` over
   the stacked replicas).

``patch_keras()`` replaces both with wrappers that change only what is broken, only when
the strategy is a MultiWorkerMirroredStrategy in multi-worker mode, and fall through to
Keras's own code in every other case. ``distribute.make_strategy("multi_worker")`` applies it
for the Keras versions in ``AFFECTED`` (every Keras 3 release up to the newest we tried;
a newer one gets it too, with a warning, until a test says it is fixed). The day upstream
fixes it, ``tests/test_multi_worker.py::test_keras_still_needs_the_multi_worker_patch``
fails: that test trains a 2-worker cluster on the unpatched path and expects these errors.
Then delete this module and its call.
"""

from __future__ import annotations

import functools
import warnings

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tensorflow_trainer

# The releases whose trainer has both bugs (read in their source; 3.15.1 also run on 2 workers).
AFFECTED = ("3.0", "3.15.1")  # first and last release known to need the patch
_ORIGINALS: dict = {}


def in_multi_worker_mode(strategy) -> bool:
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def _version(text: str) -> tuple:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def needs_patch(version: str = keras.__version__) -> bool:
    """True for the Keras versions this layer is for (newer ones too, with a warning)."""
    if _version(version) < _version(AFFECTED[0]):
        return False
    if _version(version) > _version(AFFECTED[1]):
        warnings.warn(f"Keras {version} is newer than {AFFECTED[1]}, the last version checked for "
                      f"keras-team/keras#20585; patching it anyway. Run tests/test_multi_worker.py to see "
                      f"whether the patch is still needed.", stacklevel=2)
    return True


def _local_value(value):
    """This worker's first replica's part of a distributed value (a plain tensor as is)."""
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _symbolic_build(self, iterator=None, data_batch=None):
    """Keras's ``_maybe_symbolic_build``, building from this worker's first local batch."""
    strategy = self._distribute_strategy
    if strategy is None or not in_multi_worker_mode(strategy):
        return _ORIGINALS["_maybe_symbolic_build"](self, iterator=iterator, data_batch=data_batch)
    if iterator is not None:
        for _, _, batches in iterator:
            data_batch = keras.tree.map_structure(_local_value, next(batches))
            break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _reduce_per_replica(values, strategy, reduction):
    """Keras's ``reduce_per_replica``, with the mean across workers taken element by element."""
    if reduction in ("auto", "mean") and in_multi_worker_mode(strategy):
        return keras.tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
    return _ORIGINALS["reduce_per_replica"](values, strategy, reduction)


def patch_keras() -> bool:
    """Install both wrappers once; returns whether they are installed."""
    if _ORIGINALS:
        return True
    if not needs_patch():
        return False
    trainer_class = tensorflow_trainer.TensorFlowTrainer
    _ORIGINALS["_maybe_symbolic_build"] = trainer_class._maybe_symbolic_build
    _ORIGINALS["reduce_per_replica"] = tensorflow_trainer.reduce_per_replica
    trainer_class._maybe_symbolic_build = functools.wraps(trainer_class._maybe_symbolic_build)(_symbolic_build)
    # The train, test and predict functions look the name up in the module when they are traced.
    tensorflow_trainer.reduce_per_replica = functools.wraps(tensorflow_trainer.reduce_per_replica)(
        _reduce_per_replica)
    return True


def unpatch_keras() -> None:
    """Put Keras's own functions back (the upstream-detection test runs that path)."""
    if not _ORIGINALS:
        return
    tensorflow_trainer.TensorFlowTrainer._maybe_symbolic_build = _ORIGINALS.pop("_maybe_symbolic_build")
    tensorflow_trainer.reduce_per_replica = _ORIGINALS.pop("reduce_per_replica")
