"""Training speed of the DCGAN (zoo's ``dcgan``: 28x28x1 images, 128-d noise) against the same
network in plain PyTorch, all in this process.

    python benchmarks/gan_speed.py                      # batch 128, 8 timed steps, 3 rounds
    python benchmarks/gan_speed.py --threads 1 --rounds 5

Each round times ``fit`` over ``--steps`` batches of random images for every Keras variant
(the default generator, the ``upsampling="resize"`` one, ``steps_per_execution``, the
``mixed_bfloat16`` policy), then the
PyTorch twin (its own code here: Linear, BatchNorm, two 4x4 stride-2 ConvTranspose2d, a 3x3
Conv2d and tanh; two 4x4 stride-2 convolutions with LeakyReLU(0.2) and a linear logit; Adam
2e-4, beta_1 0.5; one discriminator step on real and fresh fake images, then one generator
step on new noise, as ``zoo.gan.GAN.train_step``). Rounds interleave the variants, so a
busy machine slows them alike; the table gives the median and the range over rounds.
Speeds are images per second of wall time and, for a machine shared with other work,
per second of this process's CPU time.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from timing import add_round_options, interleaved_rounds, print_rounds, set_threads  # noqa: E402


def keras_gan(upsampling: str, steps_per_execution: int = 1, policy: str = "float32"):
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(policy)
    try:
        model = zoo.build("dcgan", upsampling=upsampling, seed=0)
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile(steps_per_execution=steps_per_execution)
    return model


def torch_gan(latent_dim: int = 128, width: int = 64):
    import torch
    from torch import nn

    torch.manual_seed(0)
    generator = nn.Sequential(
        nn.Linear(latent_dim, 7 * 7 * 4 * width, bias=False), nn.BatchNorm1d(7 * 7 * 4 * width), nn.ReLU(),
        nn.Unflatten(1, (4 * width, 7, 7)),
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 1, 3, padding=1), nn.Tanh())
    discriminator = nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(7 * 7 * 2 * width, 1))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()

    def train_step(real):
        batch = real.shape[0]
        fake = generator(torch.randn(batch, latent_dim)).detach()
        real_logits, fake_logits = discriminator(real), discriminator(fake)
        d_loss = loss(real_logits, torch.ones_like(real_logits)) + loss(fake_logits, torch.zeros_like(fake_logits))
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()
        logits = discriminator(generator(torch.randn(batch, latent_dim)))
        g_loss = loss(logits, torch.ones_like(logits))
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()

    return train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    add_round_options(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    images = np.random.default_rng(0).uniform(0, 255, (args.batch * args.steps, 28, 28, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(args.batch, drop_remainder=True).cache().prefetch(2)
    variants = {"dcgan (transposed convolutions)": keras_gan("transpose"),
                "dcgan upsampling='resize'": keras_gan("resize"),
                "dcgan + steps_per_execution=4": keras_gan("transpose", 4),
                "dcgan mixed_bfloat16": keras_gan("transpose", policy="mixed_bfloat16")}
    runners = {}
    for name, model in variants.items():
        model.fit(data.take(4), verbose=0)  # warm-up: tracing
        runners[name] = lambda model=model: model.fit(data, verbose=0)
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.threads or os.cpu_count())
        step = torch_gan()
        batches = [torch.from_numpy(images[i * args.batch:(i + 1) * args.batch]).permute(0, 3, 1, 2) / 127.5 - 1
                   for i in range(args.steps)]
        step(batches[0])
        runners[f"plain PyTorch {torch.__version__}"] = lambda: [step(batch) for batch in batches]
    results = interleaved_rounds(runners, args.rounds)
    count = args.batch * args.steps
    print(f"dcgan 28x28x1, latent 128, batch {args.batch}, {args.steps} steps x {args.rounds} rounds, TensorFlow "
          f"{tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, threads {args.threads or 'default'}")
    print_rounds(results, count, "images/s")

if __name__ == "__main__":
    main()
