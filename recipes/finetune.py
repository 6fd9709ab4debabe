"""Transfer learning in two phases, against the same network trained from scratch.

    zoo run finetune --weights PATH/mobilenet_v2_imagenet.weights.h5      # ImageNet MobileNetV2 -> CIFAR-10
    zoo run finetune --weights PATH/mobilenet_v2_imagenet.weights.h5 --image-size 192 --head-epochs 1 \
        --finetune-epochs 7 --finetune-learning-rate 2e-4 --finetune-schedule cosine \
        --feature-shift 0.125 --mirror                                     # the run that reached 90%
    zoo run finetune --weights imagenet --weights-format keras            # Keras's own file (needs the internet)
    zoo run finetune --dataset fashion_mnist --backbone runs/cnn/mnist_convnet-mnist/model.keras
    zoo run finetune --quick                                              # seconds, scikit-learn's digits

Phase 1 trains a new softmax head on the frozen backbone (``phase1_accuracy``); phase 2
unfreezes the top ``--unfreeze-blocks`` blocks at a tenth of the learning rate, with every
BatchNormalization kept in inference mode (``test_accuracy``). The baseline
(``scratch_accuracy``) is the same network from random weights, trained end to end with
the first phase's optimizer for as long as the feature pass and both phases took together
(a budget of time on the same machine: the fair one when the fine-tune precomputes what it
can), in CPU seconds on a CPU (other jobs on the cores then bias neither side) and wall
seconds on accelerators.

The backbone is a ``zoo.backbones`` name with ``--weights``: a ``.weights.h5`` path,
``imagenet`` (Keras downloads its own; needs the internet) or ``none``. Left empty it
is ``$ZOO_WEIGHTS``, else ``imagenet``. ``--weights-format torchvision`` (the default)
loads a file converted from torchvision's MobileNetV2 the way that network computes
(``zoo/backbones.py``); Keras's own files need ``--weights-format keras``. Or the backbone
is any ``.keras`` model this project trained (``--backbone PATH``), cut at ``--cut-layer``
(default: below its last Dense layer). Images are resized to ``--image-size`` inside the
model (grey images are repeated to RGB for ImageNet backbones), so it takes raw uint8
images. CIFAR-10 is tfds's where prepared, else the imported JPEG copy ``cifar10_jpeg75``.

Speed: the frozen bottom of the network computes the same features every epoch (no
augmentation, BatchNorm frozen), so they are computed once (written to ``.npy`` files and
read memory-mapped: they take disk, 5.5 GB at 192 px with ``--mirror``, not memory) and both
phases train only the top blocks and the head on them; the saved model is the whole network, and
``test_accuracy`` is measured on it end to end. ``--feature-shift`` augments phase 2 by
shifting those cached maps by whole cells (shifting the image by the backbone's stride
there); ``--mirror`` also caches the features of the mirrored training images (in the
same pass, which then takes twice as long) and phase 2 takes each example mirrored half
the time; ``--finetune-schedule cosine`` decays phase 2's learning rate to zero.
``--features-cache DIR`` keeps the features for later runs that differ only in their phases
(their baselines still get the pass's recorded time). An interrupted run keeps what it
finished (each split's features, each phase) and goes on from the last epoch of the phase
it was in, or from the baseline's last checkpoint (taken every two minutes, as its epochs
at 192 px take about half an hour), so a run longer than a session finishes in the next
with the same command.

Measured (results/finetune.csv, 2 CPU cores, TF 2.21): torchvision's ImageNet MobileNetV2
on cifar10_jpeg75 at ``--image-size 128``, 2 + 2 epochs, top 5 blocks: phase 1 77.50%,
phase 2 85.88% in 27 minutes (the feature pass 753 s of it), short of 90%. At 192 px
(``--head-epochs 1``; feature pass 1473 s, phase 1 77.25%) phase 2 without augmentation
at a constant 1e-4 reached 84.27%, 87.15% and 86.60% in three epochs (training accuracy
90.4%: overfitting). With ``--feature-shift 0.125`` (shifts of up to 1.5 cells of the
12x12 maps, about 4 CIFAR pixels), ``--finetune-learning-rate 2e-4 --finetune-schedule
cosine`` and five epochs it reached 85.41%, 86.44%, 88.16%, 89.63% and **89.50%**
(training accuracy 96.8%; about 1000 CPU seconds an epoch), still short of 90%: the top
blocks still overfit. Adding ``--mirror`` to the same five epochs: 85.41%, 86.97%, 88.06%,
89.72% and 89.95% on the cached test features (training accuracy 95.4%; 11,433 CPU seconds
in all, the mirrored feature pass 4,201 of them). Seven epochs instead (the command above):
85.57%, 86.60%, 88.16%, 89.05%, 89.72%, 90.07%, 90.08%, and 90.08% end to end (9,008 of 10,000
test images; training accuracy 97.6%; 16,718 CPU seconds in all): 90%, by a margin inside a
single seed's noise. Rerun whole on a 2-core Intel Xeon (3-4x faster here; the row in
results/finetune.csv): phase 1 77.25%, phase 2 85.73% ... 90.08%, 90.08% end to end in 4,399
CPU seconds (2,695 s), and **47.98%** for the same network from random weights in those
4,399 CPU seconds (0.98 epochs). The same schedule on a GPU (``benchmarks/finetune_gpu.py``, JAX, pixel
augmentation instead of the feature cache) gave 90.06%, 90.25% and 90.16% over three seeds,
and 67.94% for the network from random weights in the same 144 s. MNIST's ``mnist_convnet``
fine-tuned to Fashion-MNIST (``--unfreeze-blocks 1``): 85.82%, against 88.05% from scratch
in the same 232 CPU seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Literal

from recipes.runtime import files
from recipes.runtime.clocks import read_time, stopwatch, time_budget
from recipes.runtime.config import ConfigError, RunConfig


@dataclasses.dataclass
class Config(RunConfig):
    backbone: str = "mobilenet_v2"  # a zoo.backbones name, or the path of a zoo .keras model
    weights: str = ""  # .weights.h5 path | imagenet | none; "": $ZOO_WEIGHTS, else imagenet
    weights_format: Literal["keras", "torchvision"] = "torchvision"  # how a weights file was made
    cut_layer: str = ""  # .keras backbones: the layer whose output is the feature; "": below the last Dense
    trust_model_code: bool = False  # .keras backbones: load one that carries Python code (runs that code)
    dataset: Literal["cifar10", "mnist", "fashion_mnist", "digits"] = "cifar10"
    image_size: int = 160  # ImageNet backbones: images resized to this inside the model; 0: keep their size
    head_epochs: int = 2  # phase 1: the head on the frozen backbone
    finetune_epochs: int = 3  # phase 2: the top blocks too
    unfreeze_blocks: int = 5  # blocks of the backbone trained in phase 2 (MobileNetV2: block_13-16 and Conv_1)
    learning_rate: float = 1e-3  # Adam, phase 1 and the scratch baseline
    finetune_learning_rate: float = 1e-4  # Adam, phase 2: small steps keep the pretrained features
    finetune_schedule: Literal["constant", "cosine"] = "constant"  # phase 2's learning rate over its epochs
    feature_shift: float = 0.0  # phase 2: random shifts of the cached feature maps, a fraction of their size
    mirror: bool = False  # phase 2: each training image mirrored half the time (its features cached too)
    dropout: float = 0.2  # before the new head
    batch_size: int = 64
    epochs: int = 0  # set from the phases: head_epochs + finetune_epochs
    scratch: bool = True  # train the from-scratch baseline (scratch_accuracy)
    features_cache: str = ""  # keep the frozen bottom's features here for later runs; "": this run's only

    def __post_init__(self):
        if self.head_epochs < 1 or self.finetune_epochs < 0:
            raise ConfigError(f"--head-epochs must be >= 1 and --finetune-epochs >= 0; got "
                              f"{self.head_epochs} and {self.finetune_epochs}")
        if self.epochs not in (0, self.head_epochs + self.finetune_epochs):
            raise ConfigError(f"--epochs is set by the phases (--head-epochs + --finetune-epochs = "
                              f"{self.head_epochs + self.finetune_epochs}); got --epochs {self.epochs}")
        self.epochs = self.head_epochs + self.finetune_epochs
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1); got {self.dropout}")
        if not 0 <= self.feature_shift < 0.5:
            raise ConfigError(f"--feature-shift must be in [0, 0.5) (a fraction of the feature map's height "
                              f"and width); got {self.feature_shift}")

    @property
    def checkpoint(self) -> bool:
        return self.backbone.endswith(".keras")


# What --quick changes: scikit-learn's 8x8 digits; the backbone is the zoo's small_convnet trained on
# them for a few seconds first and saved as a .keras checkpoint (the path a real checkpoint takes).
QUICK = {"dataset": "digits", "backbone": "quick-source.keras", "head_epochs": 2, "finetune_epochs": 2,
         "unfreeze_blocks": 1, "batch_size": 32, "learning_rate": 3e-3, "finetune_learning_rate": 1e-3}
QUICK_SOURCE_EPOCHS = 3


def quick_source(config: Config, datasets, run_dir: str) -> str:
    """Train the quick mode's backbone, small_convnet on the digits, and save it as a checkpoint."""
    import zoo
    from recipes.runtime import data, train

    path = os.path.join(run_dir, "quick-source.keras")
    os.makedirs(run_dir, exist_ok=True)
    source = zoo.build("small_convnet", num_classes=datasets.num_classes, input_shape=datasets.input_shape,
                       input_scale=1 / 255)  # make_datasets gives the digits in 0-255, as every backbone takes
    compile_phase(source, config.learning_rate, config)
    source.fit(data.pipeline(datasets.train, datasets.num_train, config.batch_size, training=True, seed=config.seed),
               epochs=QUICK_SOURCE_EPOCHS, verbose=0)
    train.save_model(source, path)  # every worker of a cluster writes this file
    return path


def run_name(config: Config) -> str:
    if config.checkpoint:
        return os.path.splitext(os.path.basename(config.backbone))[0] + "-checkpoint"
    return config.backbone


def resolve_weights(config: Config) -> str | None:
    weights = config.weights or os.environ.get("ZOO_WEIGHTS", "") or "imagenet"
    return None if weights == "none" else weights


def describe_weights(config: Config) -> str:
    """The weights column: a file by name and format (not its local path), imagenet or none."""
    if config.checkpoint:
        return f"checkpoint {os.path.basename(config.backbone)}"
    weights = resolve_weights(config)
    if weights in (None, "imagenet"):
        return str(weights).lower()
    return f"{os.path.basename(weights)} ({config.weights_format})"


def make_datasets(config: Config):
    import tensorflow as tf

    from recipes import cnn
    from recipes.runtime import data

    if config.dataset == "digits":
        datasets = data.digits_datasets(config.seed)
        to_pixels = lambda image, label: (image * (255.0 / 16.0), label)  # 0-16 -> 0-255, as every backbone takes
        datasets.train, datasets.test = datasets.train.map(to_pixels), datasets.test.map(to_pixels)
    elif config.dataset == "cifar10":
        datasets = cnn.cifar10_datasets(config)
    else:
        datasets = data.load_image_classification(config.dataset, data.resolve_data_dir(config.data_dir))
    to_float = lambda image, label: (tf.cast(image, tf.float32), label)
    datasets.train, datasets.test = datasets.train.map(to_float), datasets.test.map(to_float)
    return datasets


def build_model(config: Config, datasets):
    from zoo import backbones

    if config.checkpoint:
        path = config.backbone
        if config.quick and path == QUICK["backbone"]:
            path = quick_source(config, datasets, config.output_dir or os.path.join("runs", "finetune"))
        features = backbones.from_checkpoint(path, config.cut_layer or None, trust_code=config.trust_model_code)
    else:
        if config.cut_layer:
            raise ConfigError("--cut-layer applies to a .keras --backbone only")
        size = config.image_size or datasets.input_shape[0]
        weights = resolve_weights(config)
        features = backbones.backbone(config.backbone, weights=weights, input_shape=(size, size, 3),
                                      weights_format="keras" if weights in (None, "imagenet") else config.weights_format)
    model = backbones.classifier(features, datasets.num_classes, input_shape=datasets.input_shape,
                                 dropout=config.dropout)
    compile_phase(model, config.learning_rate, config)
    return model


def compile_phase(model, learning_rate, config: Config) -> None:
    """Adam at ``learning_rate`` (a float or a keras learning-rate schedule)."""
    import keras

    from recipes.runtime.train import compile_options

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], **compile_options(config))


def fit(model, train, test, config: Config, datasets, callbacks, backup_dir: str):
    """Phase 1 (frozen backbone), then phase 2 (top blocks), on features computed once."""
    import keras

    from recipes.runtime import data
    from zoo import backbones

    def phase(name, train, epochs, initial_epoch, learning_rate):
        done = os.path.join(backup_dir, f"{name}.weights.h5")
        if os.path.exists(done):  # finished before an interruption
            top.load_weights(done)
            return files.read_json(done + ".json")
        with strategy.scope():
            compile_phase(top, learning_rate, config)
        watch_path = os.path.join(backup_dir, f"{name}_time.json")
        with stopwatch(watch_path) as watch:
            history = top.fit(train, epochs=epochs, initial_epoch=initial_epoch, verbose=config.verbose,
                              validation_data=cached["test"],
                              callbacks=[keras.callbacks.BackupAndRestore(os.path.join(backup_dir, name)),
                                         watch, *callbacks])
        state = {"accuracy": float(history.history["val_accuracy"][-1]), "epochs": history.epoch,
                 **read_time(watch_path)}
        top.save_weights(done)
        files.write_json(done + ".json", state)
        return state

    strategy = model.distribute_strategy
    with strategy.scope():  # the sub-models and their optimizers must live where the variables do
        backbones.freeze(model)
        bottom, top = split(model, config.unfreeze_blocks)
    replicas = strategy.num_replicas_in_sync
    cached = {}
    feature_dir = features_cache_dir(bottom, datasets, config) if config.features_cache else backup_dir
    for split_name, dataset, count in (("train", datasets.train, datasets.num_train),
                                       ("test", datasets.test, datasets.num_test)):
        mirror = config.mirror and split_name == "train"
        path = os.path.join(feature_dir, f"features_{split_name}")  # a folder of .npy files
        if not os.path.exists(path):  # else computed before: an interrupted run, or another run's cache
            partial = path + ".partial"
            shutil.rmtree(partial, ignore_errors=True)  # a pass cut off by an interruption
            with stopwatch(path + ".time.json"):
                features_and_labels(bottom, dataset, partial, count, mirror=mirror,
                                    log=lambda line, name=split_name: print(f"[finetune] {name} features: {line}",
                                                                            flush=True))
            os.replace(partial, path)  # whole or absent: a cut-off write is never taken for features
        features, labels, mirrored = load_features(path, mirror)
        source = data.from_arrays(features, labels)
        if split_name == "train":  # phase 2's: with mirror both in one dataset
            phase2_train = data.from_arrays((features, mirrored), labels) if mirror else source
        cached[split_name] = data.pipeline(source, count, config.batch_size * replicas,
                                           training=split_name == "train", seed=config.seed, replicas=replicas,
                                           cache=False)
    feature_time = [read_time(os.path.join(feature_dir, f"features_{name}.time.json")) for name in cached]
    print(f"[finetune] features below the top {config.unfreeze_blocks} blocks computed once: "
          f"{features.shape[1:]} per image, {sum(t['seconds'] for t in feature_time):.0f}s"
          + (f" (kept in {feature_dir}; that time counts in this run's too)" if config.features_cache else ""))
    shifts = (feature_shifts(features.shape[1:], config.feature_shift, config.seed)
              if config.feature_shift else None)  # checked before phase 1
    first = phase("phase1", cached["train"], config.head_epochs, 0, config.learning_rate)
    second = first
    with strategy.scope():
        unfrozen = backbones.unfreeze_top(model, config.unfreeze_blocks)
    if config.finetune_epochs:
        train = cached["train"]
        if config.mirror or shifts is not None:
            train = data.pipeline(phase2_train, datasets.num_train, config.batch_size * replicas, training=True,
                                  seed=config.seed, replicas=replicas, cache=False, augment=shifts,
                                  batch_map=mirrored_half(config.seed) if config.mirror else None)
        learning_rate = config.finetune_learning_rate
        if config.finetune_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                learning_rate, decay_steps=int(train.cardinality()) * config.finetune_epochs)
        print(f"[finetune] phase 1 (head only): test accuracy {first['accuracy']:.4f}; phase 2 trains "
              f"{unfrozen} at learning rate {config.finetune_learning_rate} ({config.finetune_schedule})"
              + (f", feature maps shifted by up to {config.feature_shift:g} of their size" if config.feature_shift
                 else "") + (", half of the images mirrored" if config.mirror else ""))
        second = phase("phase2", train, config.epochs, config.head_epochs, learning_rate)
    # Summed over every invocation of a resumed run: the feature pass and both phases.
    parts = [*feature_time, first, *([second] if second is not first else [])]
    files.write_json(os.path.join(backup_dir, "phases.json"),
                     {"phase1_accuracy": first["accuracy"], "unfrozen_blocks": unfrozen,
                      "finetune_seconds": sum(part["seconds"] for part in parts),
                      "finetune_cpu_seconds": sum(part["cpu_seconds"] for part in parts)})
    with strategy.scope():
        compile_phase(model, config.finetune_learning_rate, config)  # the whole model, as saved and evaluated
    return FitHistory(second["epochs"])


def features_cache_dir(bottom, datasets, config: Config) -> str:
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
    key = {"backbone": os.path.basename(config.backbone), "weights": describe_weights(config),
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


class FitHistory:
    """What the runtime reads from a fit: the epochs trained, numbered across both phases."""

    def __init__(self, epochs):
        self.epoch = list(epochs)


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


def report(model, datasets, config: Config, run_dir: str) -> dict:
    """phase1_accuracy from the first phase; scratch_accuracy from the same network trained
    from random weights for the fine-tune's time."""
    import tensorflow as tf

    from recipes.runtime import data

    backup_dir = os.path.join(run_dir, "backup")
    phases = files.read_json(os.path.join(backup_dir, "phases.json"))
    metrics = {"phase1_accuracy": phases["phase1_accuracy"], "finetune_seconds": round(phases["finetune_seconds"], 1),
               "finetune_cpu_seconds": round(phases["finetune_cpu_seconds"], 1),
               "unfreeze_blocks": config.unfreeze_blocks, "image_size": 0 if config.checkpoint else config.image_size,
               "weights": describe_weights(config)}
    if config.scratch:
        strategy = model.distribute_strategy
        with strategy.scope():
            scratch = scratch_network(model)
            compile_phase(scratch, config.learning_rate, config)
        replicas = strategy.num_replicas_in_sync
        train = data.pipeline(datasets.train, datasets.num_train, config.batch_size * replicas, training=True,
                              seed=config.seed, replicas=replicas)
        test = data.pipeline(datasets.test, datasets.num_test, config.batch_size * replicas, training=False,
                             seed=config.seed, replicas=replicas)
        on_cpu = not tf.config.list_logical_devices("GPU")
        clock, seconds = (("cpu_seconds", phases["finetune_cpu_seconds"]) if on_cpu
                          else ("seconds", phases["finetune_seconds"]))
        budget = time_budget(seconds, clock, backup_dir=os.path.join(backup_dir, "scratch"), save_seconds=120,
                             log=lambda line: print(f"[finetune] baseline: {line}", flush=True))
        resumed = f" (resumed after {budget.used[clock]:.0f})" if budget.steps else ""
        print(f"[finetune] baseline: the same network from random weights for {seconds:.0f} "
              f"{'CPU ' if on_cpu else ''}seconds, as the fine-tune took{resumed}")
        # The budget checkpoints the baseline with its clock every two minutes and at each epoch's
        # end: an interrupted baseline resumes from there with the time it had used then.
        scratch.fit(train, epochs=10_000, initial_epoch=budget.initial_epoch, verbose=0, callbacks=[budget])
        steps_per_epoch = -(-datasets.num_train // (config.batch_size * replicas))
        metrics.update(scratch_accuracy=float(scratch.evaluate(test, verbose=0, return_dict=True)["accuracy"]),
                       scratch_epochs=round(budget.steps / steps_per_epoch, 2),
                       scratch_seconds=round(budget.used["seconds"], 1),
                       scratch_cpu_seconds=round(budget.used["cpu_seconds"], 1), budget_clock=clock)
    shutil.rmtree(backup_dir, ignore_errors=True)  # finished: nothing to resume
    return metrics


def scratch_network(model):
    """The baseline's network: ``model``'s architecture with fresh random weights, every
    layer trainable (BatchNorm included, as in a network trained from scratch)."""
    import keras

    from zoo import backbones

    # Recursive, or the nested backbone would be shared (its pretrained weights reused and
    # trained further) rather than re-created.
    scratch = keras.models.clone_model(model, recursive=True, clone_function=scratch_layer)
    if {id(weight) for weight in scratch.weights} & {id(weight) for weight in model.weights}:
        raise RuntimeError("the scratch baseline shares weights with the fine-tuned model")
    # Not `scratch.trainable = True`: on TensorFlow that leaves the clone's frozen layers frozen
    # (backbones.set_trainable says why), and the baseline trained only the fine-tune's top.
    return backbones.set_trainable(scratch, True)


def scratch_layer(layer):
    """A fresh copy of ``layer`` for the baseline. BatchNorm's moving averages use momentum 0.99:
    keras.applications' 0.999 suits ImageNet-length training, but after the one or two epochs a
    short budget allows its averages still remember their initial values, and a network that
    learnt well tests at chance in inference mode."""
    import keras

    config = layer.get_config()
    if isinstance(layer, keras.layers.BatchNormalization):
        config["momentum"] = min(config["momentum"], 0.99)
    return layer.__class__.from_config(config)
