"""The model zoo: pure Keras 3 builders, reachable by name.

    import zoo
    zoo.list_models()                       # every registered architecture
    model = zoo.build("resnet20", num_classes=10, input_shape=(32, 32, 3))

Builders return uncompiled ``keras.Model`` objects named after their registry key that
save and load as ``.keras`` files. Nothing here imports TensorFlow-specific code,
tensorflow-datasets or the recipes, so the zoo runs on the TensorFlow, JAX and PyTorch
backends alike.
"""

# Importing the family modules registers their models; the others are reachable as zoo.<name>.
from zoo import autoencoder, backbones, cnn, dbn, fid, freezing, gan, images, layers, losses, mlp, recursive, \
    rnn, text, transformer, vae  # noqa: F401
from zoo.registry import UnknownModelError, build, get_builder, list_models, register_model

__all__ = ["build", "get_builder", "list_models", "register_model", "UnknownModelError"]
