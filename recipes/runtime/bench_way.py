"""One baseline way of a ``zoo bench`` row, in a process of its own.

    python -m recipes.runtime.bench_way keras|torch FOLDER   # FOLDER: spec.json, batches.npz; writes timing.json

The recipe's way runs in the ``zoo bench`` process; plain Keras and plain PyTorch each run here,
right after it, on the same batches and the same architecture (``spec.json`` holds the model's
Keras config and loss). Why not all three in one process: with TensorFlow's runtime loaded and
used in the process, plain PyTorch trained 1.6-6x slower than alone on the same 2-core EPYC
(resnet20 267 against 743 images/s, imdb_bilstm 18 against 116 reviews/s, 2026-12-01), which
would have flattered every ``ratio_vs_torch``. The PyTorch process builds its Keras model (to
read the twin's sizes) on Keras's torch backend, so TensorFlow never loads there.
"""

from __future__ import annotations

import json
import os
import sys


def keras_way(spec: dict, x, y, folder: str):
    import keras

    import zoo  # noqa: F401  (registers the zoo's layers for the config)
    from recipes.runtime import bench

    keras.utils.set_random_seed(spec["seed"])
    with bench.PeakRSS() as memory:
        model = keras.saving.deserialize_keras_object(spec["model"])
        if hasattr(model, "generator"):
            model.compile()  # the GAN's own defaults: Adam(2e-4, beta_1=0.5) for each network (keras-io's DCGAN)
        else:
            model.compile(optimizer="adam", loss=keras.losses.deserialize(spec["loss"]))
        timing = bench.keras_timing(model, x, spec["steps"], spec["repeats"], y=y, batch_size=spec["batch_size"])
    return timing, memory, bench.trainable_count(model)


def torch_way(spec: dict, x, y, folder: str):
    import keras
    import torch

    import zoo  # noqa: F401
    from recipes.runtime import bench, bench_torch

    torch.manual_seed(spec["seed"])
    with bench.PeakRSS() as memory:
        model = keras.saving.deserialize_keras_object(spec["model"])
        twin = bench_torch.twin(spec["family"], model)
        size = spec["batch_size"]
        batches = [bench_torch.to_torch(spec["family"], (x[start:start + size], y[start:start + size]))
                   for start in range(0, len(y), size)]
        timing = bench.torch_timing(bench_torch.trainer(spec["family"], twin), batches, spec["repeats"])
    return timing, memory, sum(parameter.numel() for parameter in twin.parameters() if parameter.requires_grad)


def main(argv: list[str]) -> int:
    way, folder = argv
    import numpy as np

    with open(os.path.join(folder, "spec.json")) as handle:
        spec = json.load(handle)
    arrays = np.load(os.path.join(folder, "batches.npz"))
    timing, memory, params = {"keras": keras_way, "torch": torch_way}[way](spec, arrays["x"], arrays["y"], folder)
    extra = {}
    if way == "torch":
        import torch

        extra = {"threads": torch.get_num_threads(), "version": torch.__version__}
    with open(os.path.join(folder, f"{way}.json"), "w") as handle:
        json.dump({"epochs": timing.epochs, "steps": timing.steps, "memory_mib": memory.growth_mib,
                   "params": params, **extra}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
