"""Where a training step's time goes on the TensorFlow CPU backend: a TF profiler trace of a
few ``fit`` steps, summed by op type and by the layer an op belongs to.

    python benchmarks/profile_step.py gpt --batch 12 --length 64    # the recipe's GPT (AdamW, clipnorm)
    python benchmarks/profile_step.py dcgan --batch 128

Times are op times summed over TensorFlow's threads (so they can exceed the wall time) per
step. "opt" ops belong to the optimizer, "bwd" to the gradient, "fwd" to the rest; a GPT
block's attention ops (``zoo.layers.transformer.self_attention``) count as the block's "other".
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import zoo  # noqa: E402

PARTS = {"gpt": ("attention", "norm", "mlp_hidden", "mlp_output", "logits", "embedding"),
         "dcgan": ("up1_bn", "up2_bn", "project_bn", "up1", "up2", "project", "to_image", "down1", "down2", "logit")}


def model_and_data(name: str, batch: int, length: int):
    rng = np.random.default_rng(0)
    if name == "dcgan":
        model = zoo.build("dcgan", seed=0)
        model.compile()
        return model, tf.data.Dataset.from_tensor_slices(rng.uniform(0, 255, (batch * 8, 28, 28, 1)).astype("float32"))
    from recipes.transformer import Config, build_model

    config = Config(dataset="tiny_shakespeare", model="char_gpt_small", sequence_length=length, dropout=0.0)
    model = build_model(config, types.SimpleNamespace(vocab_size=65), types.SimpleNamespace(steps_per_epoch=100))
    ids = rng.integers(0, 65, (batch * 8, length)).astype("int32")
    return model, tf.data.Dataset.from_tensor_slices((ids, rng.integers(0, 65, ids.shape).astype("int32")))


def op_times(trace_dir: str, parts) -> collections.Counter:
    """Picoseconds by (section, part, op type) over the host's TensorFlow ops in the trace."""
    space = xplane_pb2.XSpace()
    space.ParseFromString(open(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[-1], "rb").read())
    totals = collections.Counter()
    for plane in (plane for plane in space.planes if plane.name == "/host:CPU"):
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for event in (event for line in plane.lines for event in line.events):
            name = names.get(event.metadata_id, "")
            if ":" not in name or "::" in name or name.startswith("tf_"):
                continue  # executor and Python events, not ops
            op_name, op_type = name.rsplit(":", 1)
            op_type, low = op_type.lstrip("_").removeprefix("Mkl").removeprefix("Fused"), op_name.lower()
            if "__inference" in name:
                continue  # the whole traced function, around its ops
            section = "opt" if ("adam" in low or "clip" in low) else "bwd" if "gradient" in low else "fwd"
            totals[section, next((part for part in parts if part in low), "other"), op_type] += event.duration_ps
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(PARTS))
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    model, data = model_and_data(args.model, args.batch, args.length)
    data = data.batch(args.batch, drop_remainder=True).cache().prefetch(2)
    model.fit(data.take(2), verbose=0)  # warm-up: tracing
    with tempfile.TemporaryDirectory() as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        model.fit(data.take(args.steps), verbose=0)
        tf.profiler.experimental.stop()
        totals = op_times(trace_dir, PARTS[args.model])
    per_step = {key: value / 1e9 / args.steps for key, value in totals.items()}  # milliseconds
    print(f"{args.model}, batch {args.batch}: {sum(per_step.values()):.1f} ms of op time per step")
    for grouping, index in (("section", 0), ("part", 1)):
        grouped = collections.Counter()
        for key, value in per_step.items():
            grouped[key[index]] += value
        print(f"by {grouping}: " + ", ".join(f"{key} {value:.1f}" for key, value in grouped.most_common()))
    for (section, part, op_type), value in collections.Counter(per_step).most_common(args.top):
        print(f"  {section} {part:12s} {op_type:36s} {value:8.2f} ms")


if __name__ == "__main__":
    main()
