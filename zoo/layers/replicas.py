"""Where a custom train step runs under ``tf.distribute``: this replica's index and the number
of replicas, this replica's slice of one global batch of noise, and batch normalisation over
the global batch.

TensorFlow is imported inside ``replica_position`` and only on the TensorFlow backend, so
``import zoo`` loads no TensorFlow module on JAX or PyTorch.
"""

from __future__ import annotations

import keras


def replica_position() -> tuple[int, int]:
    """(this replica's index, number of replicas) under tf.distribute; (0, 1) otherwise. For
    custom train steps (the GAN's, the VAE's) that split noise draws and scale losses per replica."""
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def replica_normal(batch_size, dim: int, seed):
    """This replica's ``(batch_size, dim)`` slice of one global batch of standard normal noise,
    so 1 and N replicas draw the same numbers (``seed``: a ``keras.random.SeedGenerator``)."""
    replica, replicas = replica_position()
    noise = keras.random.normal((batch_size * replicas, dim), seed=seed)
    return noise[replica * batch_size:(replica + 1) * batch_size]


@keras.saving.register_keras_serializable(package="zoo")
class GlobalBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation over the global batch under ``tf.distribute`` (Keras's
    ``synchronized=True``), so a network computes the same thing on 1 or N replicas. Keras
    refuses ``synchronized=True`` outside TensorFlow ("only supported with the TensorFlow
    backend"), and JAX and PyTorch have no tf.distribute replicas to synchronise: there this
    is plain batch normalisation. The flag is not saved, so a ``.keras`` file written on one
    backend loads on the others."""

    def __init__(self, **kwargs):
        kwargs.pop("synchronized", None)
        super().__init__(synchronized=keras.backend.backend() == "tensorflow", **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("synchronized", None)
        return config
