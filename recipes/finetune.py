"""Transfer learning in two phases, against the same network trained from scratch.

    zoo run finetune --weights PATH/mobilenet_v2_imagenet.weights.h5      # ImageNet MobileNetV2 -> CIFAR-10
    zoo run finetune --weights PATH/mobilenet_v2_imagenet.weights.h5 --preset cifar10_90
                                     # 90.08% on cifar10_jpeg75 in 4,399 CPU seconds on a 2-core Intel Xeon
    zoo run finetune --dataset fashion_mnist --backbone runs/cnn/mnist_convnet-mnist/model.keras
    zoo run finetune --quick                                              # seconds, scikit-learn's digits

Phase 1 trains a new softmax head on the frozen backbone (``phase1_accuracy``); phase 2
unfreezes the top ``--unfreeze-blocks`` blocks at a smaller learning rate, BatchNorm kept in
inference mode (``test_accuracy``, end to end on the saved model). The baseline
(``scratch_accuracy``) is the same network from random weights trained end to end for as long
as the feature pass and both phases took (CPU seconds on a CPU, wall seconds on accelerators).

The backbone is a ``zoo.backbones`` name with ``--weights`` (``recipes/runtime/weights.py``),
``--weights-format torchvision`` for a file converted from torchvision's MobileNetV2, or any
``.keras`` model this project trained (``--backbone PATH``, cut at ``--cut-layer``). Images are
resized to ``--image-size`` inside the model, so it takes raw uint8 images. The frozen bottom's
features are computed once (``recipes/runtime/features.py``); ``--feature-shift`` and
``--mirror`` augment them in phase 2; ``--features-cache DIR`` keeps them for later runs. An
interrupted run resumes from the split, phase or baseline checkpoint it was in.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from recipes.runtime import files
from recipes.runtime.clocks import read_time, stopwatch, time_budget
from recipes.runtime.config import ConfigError, RunConfig
from recipes.runtime.recipe import FitResult, Recipe
from recipes.runtime.weights import describe_weights, resolve_weights, weights_format


@dataclasses.dataclass
class Config(RunConfig):
    NOT_APPLICABLE = {"epochs": "is set by the phases for finetune: use --head-epochs and --finetune-epochs"}

    backbone: str = "mobilenet_v2"  # a zoo.backbones name, or the path of a zoo .keras model
    weights: str = ""  # .weights.h5 path | imagenet | none; "": $ZOO_WEIGHTS, else imagenet
    weights_format: Literal["keras", "torchvision"] = "torchvision"  # how a weights file was made
    cut_layer: str = ""  # .keras backbones: the layer whose output is the feature; "": below the last Dense
    trust_model_code: bool = False  # .keras backbones: load one that carries Python code (runs that code)
    dataset: str = "cifar10"  # cifar10, mnist, fashion_mnist, digits (bundled), or any prepared tfds image set
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
    scratch: bool = True  # train the from-scratch baseline (scratch_accuracy)
    features_cache: str = ""  # keep the frozen bottom's features here for later runs; "": this run's only

    def __post_init__(self):
        if self.head_epochs < 1 or self.finetune_epochs < 0:
            raise ConfigError(f"--head-epochs must be >= 1 and --finetune-epochs >= 0; got "
                              f"{self.head_epochs} and {self.finetune_epochs}")
        self.epochs = self.head_epochs + self.finetune_epochs  # derived, so config.json says what ran
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1); got {self.dropout}")
        if not 0 <= self.feature_shift < 0.5:
            raise ConfigError(f"--feature-shift must be in [0, 0.5) (a fraction of the feature map's height "
                              f"and width); got {self.feature_shift}")

    @property
    def checkpoint(self) -> bool:
        return self.backbone.endswith(".keras")


PRESETS = {
    # scikit-learn's 8x8 digits; the backbone is small_convnet trained on them for a few seconds
    # first and saved as a .keras checkpoint (the path a real checkpoint takes).
    "quick": {"dataset": "digits", "backbone": "quick-source.keras", "head_epochs": 2, "finetune_epochs": 2,
              "unfreeze_blocks": 1, "batch_size": 32, "learning_rate": 3e-3, "finetune_learning_rate": 1e-3},
    # The run that reached 90% on cifar10_jpeg75 (results/finetune.csv); give --weights or $ZOO_WEIGHTS.
    "cifar10_90": {"image_size": 192, "head_epochs": 1, "finetune_epochs": 7, "finetune_learning_rate": 2e-4,
                   "finetune_schedule": "cosine", "feature_shift": 0.125, "mirror": True},
}
QUICK_SOURCE_EPOCHS = 3


def quick_source(config: Config, datasets, run_dir: str) -> str:
    """Train the quick mode's backbone, small_convnet on the digits, and save it as a checkpoint."""
    import zoo
    from recipes.runtime import artifacts, data

    path = os.path.join(run_dir, "quick-source.keras")
    os.makedirs(run_dir, exist_ok=True)
    source = zoo.build("small_convnet", num_classes=datasets.num_classes, input_shape=datasets.input_shape)
    compile_phase(source, config.learning_rate, config)
    source.fit(data.pipeline(datasets.train, datasets.num_train, config.batch_size, training=True, seed=config.seed),
               epochs=QUICK_SOURCE_EPOCHS, verbose=0)
    artifacts.save_model(source, path)  # every worker of a cluster writes this file
    return path


def run_name(config: Config) -> str:
    if config.checkpoint:
        return os.path.splitext(os.path.basename(config.backbone))[0] + "-checkpoint"
    return config.backbone


def weights_column(config: Config) -> str:
    return describe_weights(config.weights, config.weights_format, config.backbone if config.checkpoint else "")


def make_datasets(config: Config):
    import tensorflow as tf

    from recipes.runtime import data

    datasets = data.images(config)
    to_float = lambda image, label: (tf.cast(image, tf.float32), label)
    datasets.train, datasets.test = datasets.train.map(to_float), datasets.test.map(to_float)
    return datasets


def build_model(config: Config, datasets, plan):
    from zoo import backbones

    if config.checkpoint:
        path = config.backbone
        if config.quick and path == PRESETS["quick"]["backbone"]:
            path = quick_source(config, datasets, config.output_dir or os.path.join("runs", "finetune"))
        features = backbones.from_checkpoint(path, config.cut_layer or None, trust_code=config.trust_model_code)
    else:
        if config.cut_layer:
            raise ConfigError("--cut-layer applies to a .keras --backbone only")
        size = config.image_size or datasets.input_shape[0]
        weights = resolve_weights(config.weights)
        features = backbones.backbone(config.backbone, weights=weights, input_shape=(size, size, 3),
                                      weights_format=weights_format(weights, config.weights_format))
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


def cache_features(run, bottom) -> tuple[dict, object, list, tuple]:
    """Each split's features through the frozen ``bottom``, computed once (or found from an
    interrupted run or ``--features-cache``): (pipelines by split, phase 2's training data, the
    passes' recorded times, the feature shape)."""
    import shutil

    from recipes.runtime import data, features

    config, datasets, plan = run.config, run.datasets, run.plan
    folder = (features.features_cache_dir(bottom, datasets, config, weights_column(config))
              if config.features_cache else run.backup_dir)
    cached, phase2_train = {}, None
    for split_name, dataset, count in (("train", datasets.train, datasets.num_train),
                                       ("test", datasets.test, datasets.num_test)):
        mirror = config.mirror and split_name == "train"
        path = os.path.join(folder, f"features_{split_name}")  # a folder of .npy files
        if not os.path.exists(path):
            partial = path + ".partial"
            shutil.rmtree(partial, ignore_errors=True)  # a pass cut off by an interruption
            with stopwatch(path + ".time.json"):
                features.features_and_labels(bottom, dataset, partial, count, mirror=mirror,
                                             log=lambda line, name=split_name: run.log(f"[finetune] {name} features: "
                                                                                       f"{line}"))
            os.replace(partial, path)  # whole or absent: a cut-off write is never taken for features
        values, labels, mirrored = features.load_features(path, mirror)
        source = data.from_arrays(values, labels)
        if split_name == "train":  # phase 2's: with mirror both in one dataset
            phase2_train = data.from_arrays((values, mirrored), labels) if mirror else source
        cached[split_name] = data.pipeline(source, count, plan.global_batch_size, training=split_name == "train",
                                           seed=config.seed, replicas=plan.replicas, cache=False)
    times = [read_time(os.path.join(folder, f"features_{name}.time.json")) for name in cached]
    run.log(f"[finetune] features below the top {config.unfreeze_blocks} blocks computed once: "
            f"{values.shape[1:]} per image, {sum(time['seconds'] for time in times):.0f}s"
            + (f" (kept in {folder}; that time counts in this run's too)" if config.features_cache else ""))
    return cached, phase2_train, times, values.shape[1:]


def train_phase(run, top, name: str, train, test, epochs: int, initial_epoch: int, learning_rate) -> dict:
    """One phase on the cached features, with its own checkpoint; a phase finished before an
    interruption is loaded, not trained again. Returns its test accuracy, epochs and seconds."""
    import keras

    done = os.path.join(run.backup_dir, f"{name}.weights.h5")
    if os.path.exists(done):
        top.load_weights(done)
        return files.read_json(done + ".json")
    with run.model.distribute_strategy.scope():
        compile_phase(top, learning_rate, run.config)
    watch_path = os.path.join(run.backup_dir, f"{name}_time.json")
    with stopwatch(watch_path) as watch:
        history = top.fit(train, epochs=epochs, initial_epoch=initial_epoch, verbose=run.config.fit_verbose,
                          validation_data=test, callbacks=[
                              keras.callbacks.BackupAndRestore(os.path.join(run.backup_dir, name)), watch,
                              *run.callbacks])
    state = {"accuracy": float(history.history["val_accuracy"][-1]), "epochs": history.epoch, **read_time(watch_path)}
    top.save_weights(done)
    files.write_json(done + ".json", state)
    return state


def fit(run) -> FitResult:
    """Phase 1 (frozen backbone), then phase 2 (top blocks), on features computed once."""
    import keras

    from recipes.runtime import data, features
    from zoo import backbones

    model, config, plan = run.model, run.config, run.plan
    strategy = model.distribute_strategy
    with strategy.scope():  # the sub-models and their optimizers must live where the variables do
        backbones.freeze(model)
        bottom, top = features.split(model, config.unfreeze_blocks)
    cached, phase2_train, feature_time, feature_shape = cache_features(run, bottom)
    shifts = (features.feature_shifts(feature_shape, config.feature_shift, config.seed)
              if config.feature_shift else None)  # checked before phase 1
    first = train_phase(run, top, "phase1", cached["train"], cached["test"], config.head_epochs, 0,
                        config.learning_rate)
    second = first
    with strategy.scope():
        unfrozen = backbones.unfreeze_top(model, config.unfreeze_blocks)
    if config.finetune_epochs:
        train = cached["train"]
        if config.mirror or shifts is not None:
            train = data.pipeline(phase2_train, run.datasets.num_train, plan.global_batch_size, training=True,
                                  seed=config.seed, replicas=plan.replicas, cache=False, augment=shifts,
                                  batch_map=features.mirrored_half(config.seed) if config.mirror else None)
        learning_rate = config.finetune_learning_rate
        if config.finetune_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                learning_rate, decay_steps=int(train.cardinality()) * config.finetune_epochs)
        run.log(f"[finetune] phase 1 (head only): test accuracy {first['accuracy']:.4f}; phase 2 trains "
                f"{unfrozen} at learning rate {config.finetune_learning_rate} ({config.finetune_schedule})"
                + (f", feature maps shifted by up to {config.feature_shift:g} of their size" if config.feature_shift
                   else "") + (", half of the images mirrored" if config.mirror else ""))
        second = train_phase(run, top, "phase2", train, cached["test"], config.head_epochs + config.finetune_epochs,
                             config.head_epochs, learning_rate)
    # Summed over every invocation of a resumed run: the feature pass and both phases.
    parts = [*feature_time, first, *([second] if second is not first else [])]
    with strategy.scope():
        compile_phase(model, config.finetune_learning_rate, config)  # the whole model, as saved and evaluated
    return FitResult(epochs=list(second["epochs"]), metrics={
        "phase1_accuracy": first["accuracy"], "unfreeze_blocks": config.unfreeze_blocks,
        "finetune_seconds": round(sum(part["seconds"] for part in parts), 1),
        "finetune_cpu_seconds": round(sum(part["cpu_seconds"] for part in parts), 1),
        "image_size": 0 if config.checkpoint else config.image_size, "weights": weights_column(config)})


def baseline(run) -> dict:
    """scratch_accuracy: the same network from random weights, trained for the fine-tune's time."""
    import tensorflow as tf

    from recipes.runtime import data

    config, model = run.config, run.model
    if not config.scratch:
        return {}
    strategy = model.distribute_strategy
    with strategy.scope():
        scratch = scratch_network(model)
        compile_phase(scratch, config.learning_rate, config)
    train, test = data.global_batches(run.datasets, run.plan, config.seed)
    on_cpu = not tf.config.list_logical_devices("GPU")
    clock, seconds = (("cpu_seconds", run.fitted.metrics["finetune_cpu_seconds"]) if on_cpu
                      else ("seconds", run.fitted.metrics["finetune_seconds"]))
    budget = time_budget(seconds, clock, backup_dir=os.path.join(run.backup_dir, "scratch"), save_seconds=120,
                         log=lambda line: run.log(f"[finetune] baseline: {line}"))
    resumed = f" (resumed after {budget.used[clock]:.0f})" if budget.steps else ""
    run.log(f"[finetune] baseline: the same network from random weights for {seconds:.0f} "
            f"{'CPU ' if on_cpu else ''}seconds, as the fine-tune took{resumed}")
    # The budget checkpoints the baseline with its clock every two minutes and at each epoch's
    # end: an interrupted baseline resumes from there with the time it had used then.
    scratch.fit(train, epochs=10_000, initial_epoch=budget.initial_epoch, verbose=0, callbacks=[budget])
    return {"scratch_accuracy": float(scratch.evaluate(test, verbose=0, return_dict=True)["accuracy"]),
            "scratch_epochs": round(budget.steps / run.plan.steps_per_epoch, 2),
            "scratch_seconds": round(budget.used["seconds"], 1),
            "scratch_cpu_seconds": round(budget.used["cpu_seconds"], 1), "budget_clock": clock}


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


RECIPE = Recipe(
    "finetune", Config, make_datasets, build_model, fit=fit, baseline=baseline, run_name=run_name, presets=PRESETS,
    data_forms=("images",),
    doc=__doc__,
    columns={
        "phase1_accuracy": "test accuracy after phase 1 (new head on the frozen backbone)",
        "finetune_seconds, finetune_cpu_seconds": "wall and CPU seconds of the feature pass and both phases, "
            "summed over a resumed run's invocations (CPU seconds: every thread of the process)",
        "scratch_accuracy, scratch_epochs, scratch_seconds, scratch_cpu_seconds, budget_clock": "the same network "
            "from random weights, trained end to end for as long as the fine-tune took on the clock budget_clock "
            "names (cpu_seconds on a CPU, so other work on the cores does not bias the comparison; wall seconds "
            "on accelerators), how many epochs that was, and its wall and CPU seconds",
        "weights, image_size, unfreeze_blocks": "the pretrained weights (file and its layout), the size images are "
            "resized to inside the model, and the top blocks trained in phase 2"},
    summary="Transfer learning: a pretrained backbone fine-tuned in two phases, against training from scratch")
