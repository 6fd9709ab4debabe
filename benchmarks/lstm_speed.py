"""Training speed of zoo's LSTMs on the CPU: stock ``keras.layers.LSTM``, ``FusedLSTM`` and plain PyTorch.

    python benchmarks/lstm_speed.py              # both networks, 3 interleaved repeats (~3 min on 2 cores)
    python benchmarks/lstm_speed.py --profile [--fused]   # where a training step spends its time

Two networks, each trained with Adam on random token ids in this process: ``char_lstm``
(64-d embedding, 2 x LSTM 256, logits over 65 characters, batch 64 x 100) and
``imdb_bilstm`` (20000-word embedding of 128, BiLSTM of 64 per direction over right-padded
reviews of 128-256 of 256 tokens, masked max pooling, batch 64), both with dropout off so
the three versions compute the same thing. The variants are timed in turn, ``--repeats``
times, after a warm-up that pays for tracing; the table gives the median tokens per second,
the spread over repeats, and the ratio to plain PyTorch (``nn.LSTM``, packed sequences).
PyTorch runs one thread by default: on a shared 2-core machine its two OpenMP threads
waited on each other at every op (3-6x slower than one thread, measured while writing this).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

import zoo  # noqa: E402

NETWORKS = {"char_lstm": dict(vocab=65, length=100), "imdb_bilstm": dict(vocab=20000, length=256)}


def batches(network: str, batch: int, steps: int):
    rng = np.random.default_rng(0)
    shape = NETWORKS[network]
    ids = rng.integers(1, shape["vocab"], (batch * steps, shape["length"])).astype("int32")
    if network == "char_lstm":
        return ids, np.roll(ids, -1, axis=1)
    lengths = rng.integers(shape["length"] // 2, shape["length"] + 1, batch * steps)
    ids[np.arange(shape["length"]) >= lengths[:, None]] = 0  # right padding, masked by the embedding
    return ids, rng.integers(0, 2, batch * steps).astype("int32")


def keras_trainer(network: str, fused: bool, ids, targets, batch: int):
    keras.utils.set_random_seed(0)
    options = dict(dropout=0.0, fused=fused)
    if network == "imdb_bilstm":
        options |= dict(head_dropout=0.0, classifier_activation=None, sequence_length=ids.shape[1])
    model = zoo.build(network, **options)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ids[:batch * 2], targets[:batch * 2], batch_size=batch, verbose=0)  # warm-up: tracing
    return lambda: model.fit(ids, targets, batch_size=batch, verbose=0, shuffle=False)


class TorchNetwork(torch.nn.Module):
    def __init__(self, network: str):
        super().__init__()
        self.network = network
        if network == "char_lstm":
            self.embedding = torch.nn.Embedding(65, 64)
            self.lstm = torch.nn.LSTM(64, 256, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(256, 65)
        else:
            self.embedding = torch.nn.Embedding(20000, 128, padding_idx=0)
            self.lstm = torch.nn.LSTM(128, 64, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(128, 2)

    def forward(self, ids):
        x = self.embedding(ids)
        if self.network == "char_lstm":
            return self.head(self.lstm(x)[0])
        lengths = (ids != 0).sum(1)
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = torch.nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                            padding_value=float("-inf"))
        return self.head(outputs.max(1).values)


def torch_trainer(network: str, ids, targets, batch: int):
    torch.manual_seed(0)
    model = TorchNetwork(network)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = torch.from_numpy(ids.astype("int64")), torch.from_numpy(targets.astype("int64"))

    def train(count=len(ids) // batch):
        for step in range(count):
            x, y = x_all[step * batch:(step + 1) * batch], y_all[step * batch:(step + 1) * batch]
            optimizer.zero_grad()
            logits = model(x)
            torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
            optimizer.step()

    train(2)
    return train


def profile(batch: int, steps: int, fused: bool = False, folder: str = "/tmp/lstm_profile"):
    """Self time of each op type in ``steps`` training steps of char_lstm."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    ids, targets = batches("char_lstm", batch, steps)
    train = keras_trainer("char_lstm", fused, ids, targets, batch)
    tf.profiler.experimental.start(folder)
    train()
    tf.profiler.experimental.stop()
    totals = {}
    for path in [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]:
        if path.endswith(".xplane.pb"):
            space = xplane_pb2.XSpace.FromString(open(path, "rb").read())
            for plane in (plane for plane in space.planes if plane.name == "/host:CPU"):
                for line in plane.lines:
                    events = sorted(line.events, key=lambda event: (event.offset_ps, -event.duration_ps))
                    for index, event in enumerate(events):  # self time: minus directly nested events
                        end, nested, child = event.offset_ps + event.duration_ps, 0, index + 1
                        while child < len(events) and events[child].offset_ps < end:
                            nested += events[child].duration_ps
                            child_end = events[child].offset_ps + events[child].duration_ps
                            child += 1
                            while child < len(events) and events[child].offset_ps < child_end:
                                child += 1
                        name = plane.event_metadata[event.metadata_id].name
                        kind = name.split(":")[-1] if ":" in name else name.split("/")[-1]
                        totals[kind] = totals.get(kind, 0) + (event.duration_ps - nested) / 1e12
        os.remove(path)
    everything = sum(totals.values())
    print(f"{'FusedLSTM' if fused else 'keras.layers.LSTM'} char_lstm, {steps} training steps, self time by op type:")
    for kind, seconds in sorted(totals.items(), key=lambda item: -item[1])[:20]:
        print(f"  {kind:40s} {seconds:8.3f} s  {100 * seconds / everything:5.1f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--fused", action="store_true", help="profile FusedLSTM instead")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {os.cpu_count()} CPU cores")
    if args.profile:
        return profile(args.batch, args.steps, args.fused)
    for network in args.networks:
        ids, targets = batches(network, args.batch, args.steps)
        trainers = {"keras.layers.LSTM": keras_trainer(network, False, ids, targets, args.batch),
                    "zoo FusedLSTM": keras_trainer(network, True, ids, targets, args.batch),
                    "plain PyTorch": torch_trainer(network, ids, targets, args.batch)}
        speeds = {name: [] for name in trainers}
        for _ in range(args.repeats):
            for name, train in trainers.items():  # interleaved, so a slow moment hits every variant
                start = time.perf_counter()
                train()
                speeds[name].append(ids.size / (time.perf_counter() - start))
        print(f"\n{network}: batch {args.batch} x {ids.shape[1]} tokens, {args.steps} steps, "
              f"median of {args.repeats}")
        torch_speed = statistics.median(speeds["plain PyTorch"])
        for name, values in speeds.items():
            median = statistics.median(values)
            print(f"  {name:20s} {median:9.0f} tokens/s  (range {min(values):.0f}-{max(values):.0f})"
                  f"  {median / torch_speed:5.2f}x PyTorch")


if __name__ == "__main__":
    main()
