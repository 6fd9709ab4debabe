"""ImageNet MobileNetV2 fine-tuned on the CIFAR-10 JPEG copy on any Keras backend (GPU check).

    KERAS_BACKEND=jax python benchmarks/finetune_gpu.py --archive DIR/cifar10_jpeg75_images.tar.gz \\
        --weights DIR/mobilenet_v2_imagenet.weights.h5

A check of the zoo's backbone, freezing and scratch-baseline code on another backend and
a GPU, not a recipe run: the ``finetune`` recipe needs TensorFlow (tf.data, tfds), which
the lent GPU machine lacks, so this script reads the image-folder archive directly, as
``resnet_cifar_gpu.py`` does. It follows the recipe's two phases and baseline with the
settings of its 90.08% CPU run, minus the feature cache (a GPU can afford the frozen bottom
every step, so the augmentation is done on pixels instead of on cached feature maps):

1. phase 1: the backbone frozen (BatchNorm in inference mode), the new head trained with
   Adam 1e-3 for ``--head-epochs``;
2. phase 2: the top ``--unfreeze-blocks`` blocks unfrozen (BatchNorm still frozen), Adam
   from ``--finetune-learning-rate`` with cosine decay over ``--finetune-epochs``;
3. baseline: the same network from random weights, every layer trainable (the recipe's
   ``scratch_network``: BN momentum 0.99), Adam 1e-3, trained for the wall time phases 1
   and 2 took.

Both phases and the baseline see random flips and shifts of up to 4 pixels of the 32-pixel
image (the network resizes to ``--image-size`` inside). A JSON record is rewritten after
each stage, so a run cut short still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np

import zoo
from recipes.finetune import scratch_network
from resnet_cifar_gpu import augment, load_archive, subset
from zoo import backbones


def train(model, x_train, y_train, epochs: int, rng, label: str, seconds: float = 0.0, x_test=None, y_test=None,
          batch_size: int = 64, on_epoch=lambda records: None) -> list[dict]:
    """``epochs`` epochs of fresh augmentation each, or until ``seconds`` of wall time (checked
    after every batch) when given; one record per epoch with the held-out accuracy, passed
    to ``on_epoch`` as they grow. The time counts compilation and the per-epoch tests."""
    start = time.perf_counter()

    class Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if seconds and time.perf_counter() - start > seconds:
                self.model.stop_training = True

    records = []
    for epoch in range(epochs):
        history = model.fit(augment(x_train, rng).astype("float32"), y_train, batch_size=batch_size, epochs=1,
                            verbose=0, callbacks=[Budget()])
        test = model.evaluate(x_test, y_test, batch_size=500, verbose=0, return_dict=True)
        records.append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - start, 1),
                        "train_accuracy": round(float(history.history["accuracy"][-1]), 4),
                        "test_accuracy": round(float(test["accuracy"]), 4)})
        print(f"[{label}] {json.dumps(records[-1])}", flush=True)
        on_epoch(records)
        if model.stop_training:
            break
    return records


def compile_adam(model, learning_rate) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True)
    parser.add_argument("--weights", required=True, help="torchvision-converted MobileNetV2 .weights.h5")
    parser.add_argument("--image-size", type=int, default=192)
    parser.add_argument("--head-epochs", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=int, default=7)
    parser.add_argument("--unfreeze-blocks", type=int, default=5)
    parser.add_argument("--finetune-learning-rate", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0,
                        help="train and test on N random images of each split (smoke test)")
    parser.add_argument("--deadline", type=float, default=0,
                        help="seconds after the start by which the baseline must stop (cuts its budget if needed)")
    parser.add_argument("--seed", type=int, default=0, help="weights of the new head, augmentation, batch order")
    parser.add_argument("--no-scratch", action="store_true", help="skip the baseline (e.g. for a second seed)")
    parser.add_argument("--output", default="finetune_gpu.json")
    args = parser.parse_args()
    start = time.perf_counter()
    data = load_archive(args.archive)
    (x_train, y_train), (x_test, y_test) = subset(*data["train"], args.limit), subset(*data["test"], args.limit, 1)
    x_train = x_train.astype("uint8")
    print(f"loaded {len(x_train)} train / {len(x_test)} test images in {time.perf_counter() - start:.0f}s",
          flush=True)
    record = {"model": "mobilenet_v2_classifier", "weights": args.weights, "weights_format": "torchvision",
              "image_size": args.image_size, "batch_size": args.batch_size, "unfreeze_blocks": args.unfreeze_blocks,
              "head_epochs": args.head_epochs, "finetune_epochs": args.finetune_epochs,
              "finetune_learning_rate": args.finetune_learning_rate, "schedule": "cosine",
              "seed": args.seed, "train_images": len(x_train), "test_images": len(x_test), "dataset": "cifar10_jpeg75",
              "backend": keras.backend.backend(), "keras_version": keras.__version__}

    def save(**fields):
        record.update(fields)
        with open(args.output, "w") as handle:
            json.dump(record, handle, indent=2)

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    common = dict(x_test=x_test, y_test=y_test, batch_size=args.batch_size)
    model = zoo.build("mobilenet_v2_classifier", num_classes=10, input_shape=(32, 32, 3),
                      image_size=args.image_size, weights=args.weights, weights_format="torchvision")
    backbones.freeze(model)
    compile_adam(model, 1e-3)
    phase1 = train(model, x_train, y_train, args.head_epochs, rng, "phase1", on_epoch=lambda r: save(phase1=r),
                   **common)
    save(phase1=phase1, phase1_accuracy=phase1[-1]["test_accuracy"])
    unfrozen = backbones.unfreeze_top(model, args.unfreeze_blocks)
    steps = args.finetune_epochs * -(-len(x_train) // args.batch_size)
    compile_adam(model, keras.optimizers.schedules.CosineDecay(args.finetune_learning_rate, decay_steps=steps))
    phase2 = train(model, x_train, y_train, args.finetune_epochs, rng, "phase2", on_epoch=lambda r: save(phase2=r),
                   **common)
    finetune_seconds = phase1[-1]["seconds"] + phase2[-1]["seconds"]
    save(unfrozen=unfrozen, phase2=phase2, test_accuracy=phase2[-1]["test_accuracy"],
         finetune_seconds=round(finetune_seconds, 1))
    if args.no_scratch:
        return
    keras.utils.set_random_seed(args.seed + 1)
    scratch = scratch_network(model)
    compile_adam(scratch, 1e-3)
    seconds = finetune_seconds
    if args.deadline:  # leave room for the last test and the record
        seconds = min(seconds, args.deadline - (time.perf_counter() - start) - 15)
    save(scratch_budget_seconds=round(seconds, 1), scratch_budget_cut=seconds < finetune_seconds)
    baseline = train(scratch, x_train, y_train, 1000, rng, "scratch", seconds=seconds,
                     on_epoch=lambda r: save(scratch=r), **common)
    save(scratch=baseline, scratch_accuracy=baseline[-1]["test_accuracy"],
         scratch_seconds=baseline[-1]["seconds"], total_seconds=round(time.perf_counter() - start, 1))
    print(json.dumps({key: value for key, value in record.items() if not isinstance(value, list)}, indent=2))


if __name__ == "__main__":
    main()
