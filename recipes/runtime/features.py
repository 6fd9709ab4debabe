"""A frozen bottom's features, computed once: the fine-tune's cache.

A backbone whose bottom is frozen (no augmentation reaches it, BatchNorm in inference mode)
computes the same features every epoch, so ``split`` cuts the network below its top blocks,
``features_and_labels`` runs the bottom once over a split (written to memory-mapped ``.npy``
files, so they take disk, not memory), and the phases train only the top on them.
``feature_shifts`` and ``mirrored_half`` augment the cached features the way pixel shifts and
flips would augment the images. ``features_cache_dir`` names a folder by what determines the
features, so later runs that differ only in their phases reuse them.
"""

from __future__ import annotations

import json
import os
import time

from recipes.runtime import files
from recipes.runtime.config import ConfigError


def split(model, num_blocks: int):
    """(bottom, top) sharing ``model``'s layers: bottom maps raw images to the input of the lowest
    of the top ``num_blocks`` blocks, top maps that to the class probabilities."""
    import keras

    from zoo import backbones

    chain = backbones.nesting(model)
    network = chain[-1]
    try:
        top_groups = backbones.top_blocks(network, num_blocks)
    except ValueError as error:
        raise ConfigError(f"--unfreeze-blocks: {error}") from None
    cut = top_groups[0][1][0].input if top_groups else network.output
    bottom, top = keras.Model(network.input, cut), keras.Model(cut, network.output)
    for outer, inner in zip(reversed(chain[:-1]), reversed(chain[1:])):
        position = outer.layers.index(inner)
        images = keras.Input(outer.input_shape[1:])
        x = images
        for layer in outer.layers[1:position]:
            x = layer(x)
        bottom = keras.Model(images, bottom(x))
        features = keras.Input(top.input_shape[1:])
        x = top(features)
        for layer in outer.layers[position + 1:]:
            x = layer(x)
        top = keras.Model(features, x)
    return bottom, top


def features_cache_dir(bottom, datasets, config, weights_column: str) -> str:
    """The folder in ``--features-cache`` for this run's features: named by a digest of what
    determines them (the bottom's weights, its output shape, the backbone, weights, cut, image
    size and blocks left to train, the data and its source, the seed, which picks some data
    sets' splits, and ``--mirror``), with that key in ``key.json``. A later run that differs
    only in its phases or baseline (epochs, learning rates, augmentation) finds the features
    there and skips the pass over the images; its time budget still counts the pass's
    recorded time, so its baseline is as long as that of the run that made them."""
    import hashlib

    import numpy as np

    weights = hashlib.sha256()
    for weight in bottom.weights:
        weights.update(np.asarray(weight).tobytes())
    key = {"backbone": os.path.basename(config.backbone), "weights": weights_column,
           "cut_layer": config.cut_layer, "image_size": config.image_size, "unfreeze_blocks": config.unfreeze_blocks,
           "feature_shape": [int(size) for size in bottom.output.shape[1:]], "bottom_weights_sha256": weights.hexdigest(),
           "dataset": config.dataset, "dataset_source": datasets.source, "train_examples": datasets.num_train,
           "test_examples": datasets.num_test, "seed": config.seed, "mirror": config.mirror}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{config.dataset}-{os.path.splitext(key['backbone'])[0]}-{digest}"
    directory = os.path.join(config.features_cache, name)
    os.makedirs(directory, exist_ok=True)
    files.write_json(os.path.join(directory, "key.json"), key, indent=2)
    return directory


def feature_shifts(feature_shape, fraction: float, seed: int):
    """Phase 2's augmentation of cached features: each feature map moved by up to ``fraction``
    of its height and width (whole cells, edges reflected). Convolutions commute with shifts,
    so moving a map by one cell is moving the image by the backbone's stride there (16 pixels
    of a 192-pixel image at MobileNetV2's block_13, 2.7 of CIFAR's 32): the pixel-shift
    augmentation, without computing the frozen bottom again."""
    import keras

    if len(feature_shape) != 3:
        raise ConfigError(f"--feature-shift moves feature maps (height, width, channels); the backbone's cut "
                          f"gives features of shape {tuple(feature_shape)}. Leave --feature-shift at 0 here.")
    return keras.layers.RandomTranslation(fraction, fraction, fill_mode="reflect", interpolation="nearest",
                                          seed=seed, name="feature_shifts")


def features_and_labels(bottom, dataset, out: str, count: int, batch_size: int = 256, mirror: bool = False,
                        log=None, every: float = 60.0):
    """``bottom``'s outputs, the labels and (``mirror``) ``bottom``'s outputs for the mirrored
    images (else None), from one pass over ``dataset`` of ``count`` examples: a data set that
    reshuffles on every pass (an image folder does) would misalign two separate passes.

    They are written batch by batch to ``features.npy``, ``labels.npy`` and ``mirrored.npy`` in
    the folder ``out`` and returned memory-mapped, so no copy is held in memory: CIFAR-10's
    training images at 192 px with their mirrored copies give 5.5 GB of features, and
    gathering them in memory, then copying them into a dataset, ran a 24 GB machine out of
    memory. ``log`` gets a progress line every ``every`` seconds (images done, rate, time
    left): that pass takes from 13 to 45 minutes on 2 cores."""
    import numpy as np
    import tensorflow as tf

    from recipes.runtime.data import DataError

    os.makedirs(out, exist_ok=True)
    # A plain compiled call: predict_on_batch of a model built under MirroredStrategy gives every
    # replica the whole batch and returns all their copies.
    infer = tf.function(lambda images: bottom(images, training=False), reduce_retracing=True)
    files = {}
    start = last = time.time()
    done = 0
    for images, labels in dataset.batch(batch_size):
        batch = {"features": np.asarray(infer(images)), "labels": np.asarray(labels)}
        if mirror:
            batch["mirrored"] = np.asarray(infer(tf.image.flip_left_right(images)))
        size = len(batch["labels"])
        if done + size > count:
            raise DataError(f"the data set has more than the {count} examples it declares")
        for name, values in batch.items():
            if name not in files:
                files[name] = np.lib.format.open_memmap(os.path.join(out, f"{name}.npy"), mode="w+",
                                                        dtype=values.dtype, shape=(count, *values.shape[1:]))
            files[name][done:done + size] = values
        done += size
        if log and time.time() - last >= every:
            last = time.time()
            rate = done / (last - start)
            log(f"{done} images of {count}, about {(count - done) / rate:.0f}s left ({rate * (2 if mirror else 1):.0f}"
                f" images/s through the frozen bottom" + (", each also mirrored" if mirror else "") + ")")
    if done != count:
        raise DataError(f"the data set declares {count} examples but gave {done}")
    for array in files.values():
        array.flush()
    return load_features(out, mirror)


def load_features(folder: str, mirror: bool = False):
    """(features, labels, mirrored or None) as ``features_and_labels`` wrote them in ``folder``,
    memory-mapped: read from the files (and the page cache) as the phases go, never copied whole."""
    import numpy as np

    load = lambda name: np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
    return load("features"), load("labels"), load("mirrored") if mirror else None


def mirrored_half(seed: int):
    """A batch map for (features, mirrored features) pairs: each example's mirrored
    features in place of its own with probability 1/2 (random horizontal flips, computed
    once by the frozen bottom)."""
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert  # plain tensor code; AutoGraph failed on the closure and said so
    def choose(pair, labels):
        features, mirrored = pair
        flip = tf.random.uniform(tf.shape(labels)[:1], seed=seed) < 0.5
        flip = tf.reshape(flip, [-1] + [1] * (len(features.shape) - 1))
        return tf.where(flip, mirrored, features), labels

    return choose
