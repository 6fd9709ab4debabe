"""ResNet-20 from the zoo trained on the CIFAR-10 JPEG copy on any Keras backend (GPU check).

    KERAS_BACKEND=jax python benchmarks/resnet_cifar_gpu.py --archive DIR/cifar10_jpeg75_images.tar.gz

This is a check of the builder, not a recipe run: it reads the image-folder archive that
``zoo data import cifar10`` takes directly (no TensorFlow, no tfds), so it runs on a GPU
machine that has only JAX or PyTorch. Training follows He et al. (2016) in spirit: SGD
with Nesterov momentum 0.9, weight decay 1e-4 (in the builder), batch 128, random flips
and 4-pixel shifts, but with a cosine learning-rate schedule over ``--epochs`` epochs.
He et al. report 91.25% for ResNet-20 on pixel-exact CIFAR-10 after 64k iterations.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import time

import keras
import numpy as np
from PIL import Image

import zoo

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load_archive(path: str):
    splits = {"train": ([], []), "test": ([], [])}
    with tarfile.open(path) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3 or parts[-3] not in splits:
                continue
            split, label = parts[-3], CLASSES.index(parts[-2])
            image = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            splits[split][0].append(np.asarray(image))
            splits[split][1].append(label)
    return {split: (np.stack(images).astype("float32"), np.array(labels))
            for split, (images, labels) in splits.items()}


def subset(images: np.ndarray, labels: np.ndarray, limit: int, seed: int = 0):
    """A random ``limit`` of the examples (all of them when ``limit`` is 0), for smoke tests;
    random, since the archive holds each split in class order."""
    if not limit:
        return images, labels
    order = np.random.default_rng(seed).permutation(len(images))[:limit]
    return images[order], labels[order]


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flips and shifts of up to 4 pixels (zero padding), vectorised."""
    count, height, width = images.shape[:3]
    flip = rng.random(count) < 0.5
    images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    rows = rng.integers(0, 9, count)[:, None] + np.arange(height)[None]
    cols = rng.integers(0, 9, count)[:, None] + np.arange(width)[None]
    return padded[np.arange(count)[:, None, None], rows[:, :, None], cols[:, None, :]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=0, help="train on N random images only (smoke test)")
    parser.add_argument("--time-budget", type=float, default=0, help="stop after this many seconds of training")
    parser.add_argument("--output", default="resnet_cifar_gpu.json")
    args = parser.parse_args()
    start = time.perf_counter()
    data = load_archive(args.archive)
    (x_train, y_train), (x_test, y_test) = subset(*data["train"], args.limit), data["test"]
    print(f"loaded {len(x_train)} train / {len(x_test)} test images in {time.perf_counter() - start:.0f}s")
    keras.utils.set_random_seed(0)
    model = zoo.build(args.model)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True)
    start = time.perf_counter()

    class TimeBudget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if args.time_budget and time.perf_counter() - start > args.time_budget:
                print(f"time budget of {args.time_budget:.0f}s reached after epoch {epoch + 1}")
                self.model.stop_training = True

    rng = np.random.default_rng(0)
    x_train = x_train.astype("uint8")
    budget = TimeBudget()
    epochs_run = 0
    for epoch in range(args.epochs):  # fresh augmentation each epoch, done on the host
        history = model.fit(augment(x_train, rng).astype("float32"), y_train, batch_size=args.batch_size,
                            epochs=epoch + 1, initial_epoch=epoch, validation_data=(x_test, y_test),
                            verbose=2, callbacks=[budget])
        epochs_run += 1
        if model.stop_training:
            break
    train_seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    record = {"model": args.model, "params": model.count_params(), "epochs_planned": args.epochs,
              "epochs": epochs_run,
              "batch_size": args.batch_size, "test_accuracy": accuracy, "test_loss": loss,
              "train_seconds": round(train_seconds, 1),
              "samples_per_second": round(len(x_train) * epochs_run / train_seconds),
              "backend": keras.backend.backend(), "keras_version": keras.__version__,
              "final_train_accuracy": history.history["accuracy"][-1],
              "dataset": "cifar10_jpeg75", "archive": args.archive}
    print(json.dumps(record, indent=2))
    with open(args.output, "w") as handle:
        json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
