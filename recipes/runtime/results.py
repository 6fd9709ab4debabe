"""Results rows, the per-recipe CSVs and the markdown table in ``results/README.md``.

A finished run appends exactly one row to ``results/<recipe>.csv``. The write is atomic
(a temporary file renamed over the old one), so a crash never leaves a partial row, and
locked, so runs finishing at once keep every row; ``results/README.md`` is regenerated from
all CSVs after each write.
"""

from __future__ import annotations

import glob
import os

import pandas as pd

from recipes.runtime import files

# The columns every row has, in order; test metrics follow as test_<name>.
COLUMNS = [
    "date", "recipe", "model", "dataset", "dataset_source", "train_examples", "params", "epochs",
    "per_replica_batch_size", "global_batch_size", "learning_rate", "workers", "replicas", "strategy", "device", "backend",
    "tensorflow_version", "keras_version", "mixed_precision", "jit_compile", "steps_per_execution",
    "commit", "seed", "train_seconds", "samples_per_second",
]
TAIL_COLUMNS = ["command"]
COLUMN_MEANINGS = {
    "dataset_source": "where the data came from: tfds download, a local import (and whether its sha256 "
                      "matches tfds's registry), or the package it ships in",
    "train_examples": "training examples used (fewer than the split only with --train-examples)",
    "params": "trainable + non-trainable parameters",
    "global_batch_size": "per-replica batch x replicas (of all workers)",
    "workers, replicas": "processes in the cluster (multi_worker; 1 otherwise; empty in rows from before the "
                         "column) and replicas in sync over all of them",
    "device": "the hardware the run used",
    "commit": "git commit of the code (-dirty: with uncommitted changes)",
    "train_seconds": "wall time of model.fit, compilation included; a resumed run adds its interrupted "
                     "invocations' finished epochs (runs before this clock existed count only the last)",
    "samples_per_second": "training examples processed per second over the whole fit",
    "test_*": "metrics on the held-out test split after the last epoch",
    "tokens_per_second": "for sequence models: tokens (characters, words) processed per second in training",
    "naive_mae, naive_rmse": "forecasting: errors of the last-value forecast on the same test windows",
    "flops_per_example": "transformers: forward-pass matrix-product FLOPs of one example (training is about 3x; "
                         "zoo.transformer.forward_flops)",
    "depth, embed_dim, patch_size": "transformers: blocks, width and (ViT) patch size of the trained model",
    "test_fid": "GANs: Frechet distance between generated and training images in the penultimate features of "
                "a convnet trained on the same data (not Inception's: compare within this table only)",
    "real_fid, untrained_fid": "GANs: the same distance for the real test images (the floor) and for the "
                               "generator before training (the ceiling)",
    "test_class_accuracy": "conditional GANs: how often that convnet classifies a generated image as the "
                           "class it was generated for",
    "classifier_accuracy": "GANs: test accuracy of the convnet whose features the distances use",
    "test_d_loss, test_g_loss, test_real_score, test_fake_score": "GANs: discriminator and generator losses "
        "and the discriminator's mean probability of 'real' for real and generated test-sized batches",
    "test_elbo": "VAEs: evidence lower bound on the test images in nats per image (negative; higher is better), one "
                 "posterior sample per image, = -test_loss; a Bernoulli decoder on [0, 1] grey levels, so not "
                 "comparable to log-likelihoods on binarised MNIST",
    "test_reconstruction_loss, test_kl_loss": "VAEs: the two terms of -test_elbo: the decoder's Bernoulli "
        "cross-entropy summed over pixels at a posterior sample, and KL(q(z|x) || N(0, I)), nats per image",
    "test_mse (autoencoder)": "autoencoders: per-pixel squared error of the deterministic reconstruction (a VAE "
                              "decodes its posterior mean), intensities in [0, 1]; their test_loss is the summed "
                              "per-pixel cross-entropy in nats per image (VAEs: -ELBO)",
    "mean_image_mse, mean_image_cross_entropy": "autoencoders: the training set's mean image as every test "
        "reconstruction: its per-pixel MSE and its cross-entropy in nats per image (the negative log-likelihood of "
        "independent Bernoulli pixels, which a VAE's -test_elbo must beat)",
    "denoised_mse": "autoencoders: per-pixel MSE against the clean test images of the reconstructions of copies with "
                    "Gaussian noise of noise_stddev on [0, 1] intensities (the noise alone scores noise_stddev^2)",
    "latent_dim, noise_stddev": "GANs: noise size; autoencoders: code size, and the noise behind denoised_mse "
                                "(also the denoising model's training corruption)",
    "phase1_accuracy": "finetune: test accuracy after phase 1 (new head on the frozen backbone)",
    "finetune_seconds, finetune_cpu_seconds": "finetune: wall and CPU seconds of the feature pass and both "
        "phases, summed over a resumed run's invocations (CPU seconds: every thread of the process); dbn "
        "(finetune_seconds only): backpropagation fine-tuning after pretraining",
    "hidden_units, cd_k, pretrain_epochs": "dbn: widths of the stacked RBMs (input side first), Gibbs steps per "
        "contrastive-divergence update (the k of CD-k), and pretraining epochs per RBM",
    "pretrain_seconds": "dbn: seconds of greedy RBM pretraining, all layers (part of train_seconds)",
    "reconstruction_error_*": "dbn: RBM N's (1 = on the pixels) mean squared error per unit between its input and "
        "the first reconstruction of its CD updates, averaged over its last pretraining epoch",
    "scratch_accuracy, scratch_epochs, scratch_seconds, scratch_cpu_seconds, budget_clock": "finetune: the same "
        "network from random weights, trained end to end for as long as the fine-tune took on the clock "
        "budget_clock names (cpu_seconds on a CPU, so other work on the cores does not bias the comparison; "
        "wall seconds on accelerators), how many epochs that was, and its wall and CPU seconds; dbn "
        "(scratch_accuracy, scratch_seconds): the same classifier from random weights, trained with the "
        "fine-tuning settings for the same number of epochs, and its seconds",
    "weights, image_size, unfreeze_blocks": "finetune: the pretrained weights (file and its layout), the size "
        "images are resized to inside the model, and the top blocks trained in phase 2 (deepdream: weights too)",
    "start_objective, dream_objective, objective_gain": "deepdream: the objective (mean over the chosen layers "
        "of the mean squared activation) on the original image and on the dream, both at full size without "
        "jitter, and their ratio",
    "layers, octave_scale, steps, jitter, image_shape, ascent_cpu_seconds": "deepdream: the amplified layers, "
        "the size ratio between octaves, ascent steps per octave, the largest random roll (pixels), the image's "
        "height x width, and the ascent's CPU seconds; for deepdream epochs counts octaves, learning_rate is the "
        "step (mean pixel change on the 0-255 scale), train_seconds the ascent's wall time and "
        "samples_per_second the rolled image copies processed per second",
}
# Columns shown in the README table (the CSV holds them all).
SUMMARY_COLUMNS = ["date", "model", "dataset", "epochs", "global_batch_size", "replicas", "device",
                   "train_seconds", "samples_per_second"]


def ordered_columns(columns) -> list[str]:
    metrics = sorted(column for column in columns if column.startswith("test_"))
    other = [column for column in columns
             if column not in COLUMNS and column not in TAIL_COLUMNS and not column.startswith("test_")]
    return ([column for column in COLUMNS if column in columns] + metrics + sorted(other)
            + [column for column in TAIL_COLUMNS if column in columns])


def append_row(results_dir: str, recipe: str, row: dict) -> str:
    """Append ``row`` to ``<results_dir>/<recipe>.csv`` atomically; returns the CSV path."""
    missing = [column for column in COLUMNS if column not in row]
    if missing:
        raise ValueError(f"Results row lacks columns {missing}")
    path = os.path.join(results_dir, f"{recipe}.csv")
    # Locked: two runs finishing at once would each read the table, add their row and replace the
    # file, and one row would be lost.
    with files.locked(results_dir):
        table = pd.DataFrame([row])
        if os.path.exists(path):
            table = pd.concat([read_csv(path), table], ignore_index=True)
        table = table[ordered_columns(table.columns)]
        files.write_text(path, table.to_csv(index=False))
        write_readme(results_dir)
    return path


def read_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"commit": str}, keep_default_na=False, na_values=[""])


def _cell(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: the metric does not apply to this row
            return ""
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def markdown_table(table: pd.DataFrame) -> str:
    # Test metrics, then the recipe's own figures (baselines, tokens per second ...).
    metrics = [column for column in ordered_columns(table.columns)
               if column not in COLUMNS and column not in TAIL_COLUMNS]
    columns = [column for column in SUMMARY_COLUMNS[:3] if column in table] + metrics + \
              [column for column in SUMMARY_COLUMNS[3:] if column in table]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[column]) for column in columns) + " |")
    return "\n".join(lines)


def write_readme(results_dir: str) -> str:
    """Regenerate ``<results_dir>/README.md`` from every CSV in it."""
    sections = ["# Results", "",
                "Every row below comes from a real run of a recipe; `<recipe>.csv` beside this file "
                "holds all columns, including the exact command, the data source, the device and the "
                "commit. This file is regenerated by the runtime after each run: do not edit it by hand.", ""]
    for path in sorted(glob.glob(os.path.join(results_dir, "*.csv"))):
        recipe = os.path.splitext(os.path.basename(path))[0]
        table = read_csv(path)
        sections += [f"## {recipe}", "", markdown_table(table), "",
                     "Commands and data sources:", ""]
        for index, row in table.iterrows():
            sections.append(f"{index + 1}. `{row['command']}` at commit {row['commit']} ({row['dataset_source']})")
        sections.append("")
    sections += ["## Column meanings", ""]
    sections += [f"- `{name}`: {meaning}" for name, meaning in COLUMN_MEANINGS.items()]
    path = os.path.join(results_dir, "README.md")
    files.write_text(path, "\n".join(sections) + "\n")
    return path
