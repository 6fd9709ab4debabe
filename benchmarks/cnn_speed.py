"""Training throughput of the MNIST convnet under the recipe's speed settings.

    make bench                      # or: python benchmarks/cnn_speed.py --examples 12800

Every variant trains the same model (zoo's ``mnist_convnet``) on the same examples in this
process, and the table reports samples per second and the ratio to the plain baseline:
``model.fit`` on NumPy arrays with Keras's defaults (which turn XLA off on CPU-only
machines). Timing excludes the first epoch, which pays for tracing and compilation.
When PyTorch is installed, the same network written in plain PyTorch (same layers,
Adam, batch size) runs last as the reference a Keras user is usually compared with.
Data: MNIST from tfds when prepared in $ZOO_DATA_DIR, else scikit-learn's 8x8 digits
upsampled to 28x28 (the speed of a convnet does not depend on what the pixels show).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402


def load_examples(count: int):
    data_dir = os.environ.get("ZOO_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
    try:
        import tensorflow_datasets as tfds
        builder = tfds.builder("mnist", data_dir=data_dir)
        if builder.is_prepared():
            images, labels = tfds.as_numpy(builder.as_dataset(split=f"train[:{count}]", batch_size=-1,
                                                              as_supervised=True))
            return images.astype("float32"), labels, "MNIST (tfds)"
    except Exception:  # noqa: BLE001  (any failure falls back to bundled data)
        pass
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.kron(digits.images, np.ones((4, 4)))[:, 2:30, 2:30, None] * (255 / 16)
    repeats = -(-count // len(images))
    return (np.tile(images, (repeats, 1, 1, 1))[:count].astype("float32"),
            np.tile(digits.target, repeats)[:count], "scikit-learn digits upsampled to 28x28")


def measure(images, labels, batch_size: int, epochs: int, use_tf_data: bool, jit_compile, steps_per_execution):
    keras.utils.set_random_seed(0)
    model = zoo.build("mnist_convnet")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    if use_tf_data:
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache().shuffle(10_000)
        dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        model.fit(dataset, epochs=1, verbose=0)  # warm-up: tracing, XLA compilation, cache fill
        start = time.perf_counter()
        model.fit(dataset, epochs=epochs, verbose=0)
    else:
        model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(images, labels, batch_size=batch_size, epochs=epochs, verbose=0)
    return len(images) * epochs / (time.perf_counter() - start)


def measure_pytorch(images, labels, batch_size: int, epochs: int) -> float:
    """The same Conv32-Conv64-Dense128 network in plain PyTorch, trained the same way."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = torch.from_numpy(images.transpose(0, 3, 1, 2) / 255.0).float()
    targets = torch.from_numpy(labels.astype("int64"))

    def epoch():
        order = torch.randperm(len(inputs))
        for start in range(0, len(inputs), batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()

    epoch()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return len(images) * epochs / (time.perf_counter() - start)


VARIANTS = [  # name, tf.data, jit_compile, steps_per_execution
    ("baseline: fit(numpy), Keras defaults", False, "auto", 1),
    ("tf.data pipeline", True, "auto", 1),
    ("tf.data + XLA", True, True, 1),
    ("tf.data + XLA + steps_per_execution=8", True, True, 8),
    ("tf.data + steps_per_execution=8", True, False, 8),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=12_800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    images, labels, source = load_examples(args.examples)
    print(f"mnist_convnet, {len(images)} examples of {source}, batch {args.batch_size}, "
          f"{args.epochs} timed epochs, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    baseline = None
    print(f"{'variant':42s} {'samples/s':>10s} {'vs baseline':>12s}")
    for name, use_tf_data, jit_compile, steps in VARIANTS:
        speed = measure(images, labels, args.batch_size, args.epochs, use_tf_data, jit_compile, steps)
        baseline = baseline or speed
        print(f"{name:42s} {speed:10.0f} {speed / baseline:11.2f}x", flush=True)
    try:
        import torch
    except ImportError:
        print("(PyTorch not installed: `pip install torch` adds the plain-PyTorch reference row)")
        return
    speed = measure_pytorch(images, labels, args.batch_size, args.epochs)
    name = f"plain PyTorch {torch.__version__} (reference)"
    print(f"{name:42s} {speed:10.0f} {speed / baseline:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
