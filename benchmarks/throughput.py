"""Training throughput of the zoo's builders on any Keras backend (GPU measurements).

    KERAS_BACKEND=jax python benchmarks/throughput.py --models mnist_convnet resnet20 resnet56

For each model it trains on in-memory random images (speed does not depend on the
pixels) and prints samples per second for the plain baseline (Keras's defaults: float32,
``jit_compile="auto"``, one step per call, batch 128) and for the fast settings the recipes use on GPUs (XLA, several
steps per call, bfloat16 mixed precision, larger batches), each as a ratio to the
baseline measured in the same process. The first epoch of each variant is excluded: it
pays for tracing and compilation.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import keras
import numpy as np

import zoo

VARIANTS = [  # name, batch, jit_compile, steps_per_execution, precision policy
    ("baseline: Keras defaults, fp32, batch 128", 128, "auto", 1, "float32"),
    ("XLA, steps_per_execution=16, batch 128", 128, True, 16, "float32"),
    ("XLA, spe=16, bf16 mixed, batch 128", 128, True, 16, "mixed_bfloat16"),
    ("XLA, spe=16, bf16 mixed, batch 512", 512, True, 16, "mixed_bfloat16"),
]


def measure(name: str, batch: int, jit_compile: bool, steps: int, policy: str, steps_per_epoch: int,
            epochs: int) -> float:
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    shape = model.input_shape[1:]
    classes = model.output_shape[-1]
    count = batch * steps_per_epoch
    images = np.random.default_rng(0).uniform(0, 255, (count, *shape)).astype("float32")
    labels = np.random.default_rng(1).integers(0, classes, count)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit_compile,
                  steps_per_execution=steps)
    model.fit(images, labels, batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(images, labels, batch_size=batch, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    keras.mixed_precision.set_global_policy("float32")
    return count * epochs / seconds


def device_name() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return ", ".join(sorted({device.device_kind for device in jax.devices()}))
    if backend == "torch":
        import torch
        return torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor()
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    return f"{len(gpus)} GPU" if gpus else f"CPU ({os.cpu_count()} cores)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mnist_convnet", "resnet20", "resnet56", "mlp_mnist"])
    parser.add_argument("--steps-per-epoch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    print(f"backend {keras.backend.backend()}, Keras {keras.__version__}, device: {device_name()}")
    print("| model | variant | samples/s | vs baseline |\n|---|---|---|---|")
    for name in args.models:
        baseline = None
        for variant, batch, jit_compile, steps, policy in VARIANTS:
            speed = measure(name, batch, jit_compile, steps, policy, args.steps_per_epoch, args.epochs)
            baseline = baseline or speed
            print(f"| {name} | {variant} | {speed:,.0f} | {speed / baseline:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
