"""A deep belief network on MNIST: RBMs pretrained greedily with contrastive divergence, unrolled
into a sigmoid classifier, fine-tuned with backpropagation, beside the same classifier from scratch.

    zoo run dbn                                        # mnist_dbn, 784-500-500-2000-10: 98.54% in 18 min on 2 CPU cores
    zoo run dbn --hidden-units 512,512 --cd-k 3        # another stack, CD-3
    zoo run dbn --quick                                # seconds, scikit-learn's 8x8 digits

Each RBM (zoo.dbn.RBM) trains for ``--pretrain-epochs`` on the hidden probabilities of the one
below, with Hinton's settings ("A Practical Guide to Training RBMs"): CD-1, batch 100, learning
rate 0.1, momentum 0.5 for 5 epochs then 0.9, weight decay 2e-4. The weights go into the
classifier's Dense layers and ``model.fit`` fine-tunes it all with SGD (momentum 0.9). The
baseline trains the same classifier from random weights with the same settings for the same
epochs (``scratch_accuracy``). Pretraining runs on whole batches on one device, outside the
replicas, so it computes the same on 1 or N replicas; finished RBMs are kept under backup/, so
an interrupted run resumes after the last finished one. Reference: Hinton and Salakhutdinov
(2006) report 1.2% test error with this network and backpropagation fine-tuning.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Literal

from recipes.runtime import files
from recipes.runtime.config import ConfigError, RunConfig
from recipes.runtime.recipe import FitResult, Recipe


@dataclasses.dataclass
class Config(RunConfig):
    model: str = "mnist_dbn"  # a DBN classifier: mnist_dbn (784-500-500-2000-10) or dbn_tiny
    hidden_units: tuple[int, ...] = ()  # RBM widths, e.g. 512,512; empty: the model's own
    dataset: Literal["mnist", "fashion_mnist", "digits"] = "mnist"  # digits: 8x8, ships with scikit-learn
    cd_k: int = 1  # Gibbs steps per contrastive-divergence update
    pretrain_epochs: int = 10  # per RBM (Hinton et al. 2006: 30)
    pretrain_batch_size: int = 100  # global: pretraining runs on one device, outside the replicas
    pretrain_learning_rate: float = 0.1
    pretrain_momentum: float = 0.9  # after 5 epochs at 0.5, as rbm.m does
    weight_decay: float = 2e-4  # on the RBM weights, not the biases
    epochs: int = 10  # fine-tuning, and the scratch baseline
    batch_size: int = 100
    optimizer: Literal["sgd", "adam"] = "sgd"  # fine-tuning and the baseline; sgd: momentum 0.9
    learning_rate: float = 0.1  # fine-tuning and the baseline; for adam use about 1e-3
    scratch: bool = True  # train the baseline without pretraining (scratch_accuracy)

    def __post_init__(self):
        if self.cd_k < 1 or self.pretrain_epochs < 1 or self.pretrain_batch_size < 1:
            raise ConfigError(f"--cd-k, --pretrain-epochs and --pretrain-batch-size must be at least 1; got "
                              f"{self.cd_k}, {self.pretrain_epochs} and {self.pretrain_batch_size}")
        if self.pretrain_learning_rate <= 0 or not 0 <= self.pretrain_momentum < 1 or self.weight_decay < 0:
            raise ConfigError(f"Need --pretrain-learning-rate > 0, 0 <= --pretrain-momentum < 1 and "
                              f"--weight-decay >= 0; got {self.pretrain_learning_rate}, "
                              f"{self.pretrain_momentum} and {self.weight_decay}")
        if any(units < 1 for units in self.hidden_units):
            raise ConfigError(f"--hidden-units takes positive widths such as 500,500,2000; got {self.hidden_units}")


PRESETS = {"quick": {"dataset": "digits", "model": "dbn_tiny", "pretrain_epochs": 10, "pretrain_batch_size": 32,
                     "epochs": 8, "batch_size": 32}}
INITIAL_MOMENTUM_EPOCHS = 5  # momentum 0.5 at first, while the reconstruction error still falls fast


def run_name(config: Config) -> str:
    return config.model + "".join(f"-{units}" for units in config.hidden_units)


def make_datasets(config: Config):
    from recipes.runtime import data

    return data.images(config)


def build_model(config: Config, datasets, plan):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    overrides = {"hidden_units": config.hidden_units} if config.hidden_units else {}
    try:
        model = zoo.build(config.model, num_classes=datasets.num_classes, input_shape=datasets.input_shape,
                          input_scale=1 / datasets.pixel_max, **overrides)
        zoo.dbn.hidden_layers(model)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {config.model!r} is not a DBN the dbn recipe can train ({error}); use one of "
                          f"{zoo.dbn.list_dbns()}") from None
    optimizer = keras.optimizers.SGD(config.learning_rate, momentum=0.9) if config.optimizer == "sgd" \
        else keras.optimizers.Adam(config.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  **compile_options(config))
    return model


def pretrain(model, datasets, config: Config, backup_dir: str, log=print) -> list:
    """Train one RBM per hidden layer, greedily; each finished RBM is saved under ``backup_dir``
    (with its per-epoch reconstruction errors and seconds) and reused when the run resumes."""
    import numpy as np
    import tensorflow as tf

    import zoo

    to_visible = zoo.dbn.visible_units(model)
    visible = np.concatenate([np.asarray(to_visible(images), "float32") for images, _ in datasets.train.batch(4096)])
    if visible.min() < 0 or visible.max() > 1:
        raise ConfigError(f"The RBMs need inputs in [0, 1] but the scaled {datasets.name} spans "
                          f"[{visible.min():.3g}, {visible.max():.3g}]; its Datasets.pixel_max is {datasets.pixel_max}")
    rbms = zoo.dbn.rbm_stack(model, cd_steps=config.cd_k, learning_rate=config.pretrain_learning_rate,
                             momentum=config.pretrain_momentum, weight_decay=config.weight_decay, seed=config.seed)
    for index, rbm in enumerate(rbms):
        path = os.path.join(backup_dir, f"rbm_{index}.npz")
        shape = "->".join(map(str, rbm.kernel.shape))
        if os.path.exists(path):  # finished before an interruption
            with np.load(path) as saved:
                rbm.set_weights([saved[name] for name in ("weights", "visible_bias", "hidden_bias")]
                                + [np.zeros(velocity.shape, "float32") for velocity in rbm.velocities])
            log(f"[dbn] RBM {index + 1}/{len(rbms)} ({shape}) reused from {path}")
        else:
            rbm.initialize_visible_bias(visible)
            step = tf.function(rbm.contrastive_divergence, reduce_retracing=True)
            order_rng, errors, seconds = np.random.default_rng(config.seed + index), [], []
            for epoch in range(config.pretrain_epochs):
                start = time.perf_counter()
                # Tensors, not floats: a new float would trace the step again.
                momentum = tf.constant(config.pretrain_momentum if epoch >= INITIAL_MOMENTUM_EPOCHS else 0.5)
                learning_rate = tf.constant(config.pretrain_learning_rate)
                batches = np.array_split(order_rng.permutation(len(visible)),
                                         range(config.pretrain_batch_size, len(visible), config.pretrain_batch_size))
                batch_errors = [step(visible[batch], learning_rate, momentum) for batch in batches]
                errors.append(float(np.average(np.array(batch_errors), weights=[len(batch) for batch in batches])))
                seconds.append(time.perf_counter() - start)
                log(f"[dbn] RBM {index + 1}/{len(rbms)} ({shape}) epoch {epoch + 1}/{config.pretrain_epochs}: "
                    f"reconstruction error {errors[-1]:.4f} ({seconds[-1]:.1f}s)")
            if not np.isfinite(errors[-1]):
                raise ConfigError(f"RBM {index + 1} diverged (reconstruction error {errors[-1]}); lower "
                                  f"--pretrain-learning-rate (it was {config.pretrain_learning_rate})")
            with open(path + ".tmp", "wb") as handle:  # written whole, then renamed: never half a file
                np.savez(handle, weights=rbm.kernel.numpy(), visible_bias=rbm.visible_bias.numpy(),
                         hidden_bias=rbm.hidden_bias.numpy(), errors=errors, seconds=seconds)
            os.replace(path + ".tmp", path)
        if index + 1 < len(rbms):
            visible = np.concatenate([np.asarray(rbm.hidden_probabilities(visible[first:first + 8192]))
                                      for first in range(0, len(visible), 8192)])
    return rbms


def fit(run) -> FitResult:
    """Pretrain the RBM stack, copy it into the classifier, fine-tune with ``model.fit``."""
    import keras
    import numpy as np

    import zoo
    from recipes.runtime.train import validation_epochs

    model, config, backup_dir = run.model, run.config, run.backup_dir
    # Outside any replica context: the assignments reach every replica's copy of the weights.
    rbms = pretrain(model, run.datasets, config, backup_dir, run.log)
    zoo.dbn.load_pretrained(model, rbms)
    layers = []
    for index in range(len(rbms)):  # each RBM's record, as pretrain saved it (or an earlier invocation did)
        with np.load(os.path.join(backup_dir, f"rbm_{index}.npz")) as saved:
            layers.append({name: saved[name] for name in ("errors", "seconds", "weights")})
    done = os.path.join(backup_dir, "finetuned.weights.h5")
    state = files.read_json(done + ".json") if os.path.exists(done) and os.path.exists(done + ".json") else None
    if state and state["epochs"][-1] + 1 == config.epochs:  # fine-tuning finished before an interruption
        model.load_weights(done)
        epochs, history = state["epochs"], {}
    else:
        start = time.perf_counter()
        fitted = model.fit(run.train, epochs=config.epochs, validation_data=run.test, verbose=config.fit_verbose,
                           validation_freq=validation_epochs(config),
                           callbacks=[keras.callbacks.BackupAndRestore(os.path.join(backup_dir, "finetune")),
                                      *run.callbacks])
        epochs, history = list(fitted.epoch), dict(fitted.history)
        state = {"epochs": epochs, "seconds": time.perf_counter() - start}
        model.save_weights(done)
        files.write_json(done + ".json", state)
    metrics = {"hidden_units": "-".join(str(layer.units) for layer in zoo.dbn.hidden_layers(model)),
               "cd_k": config.cd_k, "pretrain_epochs": config.pretrain_epochs,
               "pretrain_seconds": round(float(sum(layer["seconds"].sum() for layer in layers)), 1),
               "finetune_seconds": round(state["seconds"], 1),
               **{f"reconstruction_error_{index + 1}": round(float(layer["errors"][-1]), 5)
                  for index, layer in enumerate(layers)}}
    return FitResult(epochs=epochs, metrics=metrics, state=layers, history=history)


def report(run) -> dict:
    """The pretraining history and the first RBM's weights as images (``filters.png``)."""
    import zoo

    layers, run_dir, input_shape = run.fitted.state, run.output_dir, run.datasets.input_shape
    files.write_text(os.path.join(run_dir, "pretrain_history.csv"), "rbm,epoch,reconstruction_error,seconds\n" + "".join(
        f"{index + 1},{epoch + 1},{error:.6f},{seconds:.2f}\n" for index, layer in enumerate(layers)
        for epoch, (error, seconds) in enumerate(zip(layer["errors"], layer["seconds"]))))
    zoo.images.save_grid(zoo.dbn.receptive_fields(layers[0]["weights"], input_shape),
                         os.path.join(run_dir, "filters.png"), scale=max(1, 56 // input_shape[0]))
    return {}


def baseline(run) -> dict:
    """The same classifier from random weights, the same fine-tuning settings and epochs."""
    import keras

    from recipes.runtime import data

    config = run.config
    if not config.scratch:
        return {}
    with run.model.distribute_strategy.scope():
        scratch = build_model(config, run.datasets, run.plan)  # the same classifier, fresh random weights
    train, test = data.global_batches(run.datasets, run.plan, config.seed)
    start = time.perf_counter()
    run.log(f"[dbn] baseline: the same classifier from random weights, {config.epochs} epochs")
    scratch.fit(train, epochs=config.epochs, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(os.path.join(run.backup_dir, "scratch"))])
    evaluation = scratch.evaluate(test, verbose=0, return_dict=True)
    return {"scratch_accuracy": float(evaluation["accuracy"]), "scratch_seconds": round(time.perf_counter() - start, 1)}


RECIPE = Recipe(
    "dbn", Config, make_datasets, build_model, fit=fit, report=report, baseline=baseline, run_name=run_name,
    data_forms=("images",),
    presets=PRESETS, publish=("filters.png",), doc=__doc__,
    columns={
        "hidden_units, cd_k, pretrain_epochs": "widths of the stacked RBMs (input side first), Gibbs steps per "
            "contrastive-divergence update (the k of CD-k), and pretraining epochs per RBM",
        "pretrain_seconds": "seconds of greedy RBM pretraining, all layers (part of train_seconds)",
        "finetune_seconds": "backpropagation fine-tuning after pretraining",
        "reconstruction_error_*": "RBM N's (1 = on the pixels) mean squared error per unit between its input and "
            "the first reconstruction of its CD updates, averaged over its last pretraining epoch",
        "scratch_accuracy, scratch_seconds": "the same classifier from random weights, trained with the "
            "fine-tuning settings for the same number of epochs, and its seconds"},
    summary="A deep belief network: RBMs pretrained greedily with contrastive divergence, then fine-tuned")
