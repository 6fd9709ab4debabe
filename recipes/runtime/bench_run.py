"""One benchmark row: a family's recipe set up as ``zoo run`` would, then its three ways timed
(``recipes/runtime/bench.py`` says what each way is); the rows' CSV and README section."""

from __future__ import annotations

import datetime
import os
import sys
import tempfile

from recipes.runtime import bench, files
from recipes.runtime.bench import BenchError

CSV_NAME = "benchmarks.csv"
WAYS = ("recipe", "keras", "torch")
SUMMARY = ["date", "family", "unit", "global_batch_size", "recipe_per_s", "keras_per_s", "torch_per_s",
           "ratio_vs_keras", "ratio_vs_torch", "pipeline_per_s", "cpu", "cpu_flags"]
MEANINGS = {
    "unit": "what the speeds count: training examples, or tokens (sequence positions) for the language models",
    "recipe_per_s / keras_per_s / torch_per_s": "median over the repeats of units per second of training, the "
    "recipe's way, plain Keras (fit on NumPy arrays, Adam defaults, stock layers) and plain PyTorch (same network)",
    "pipeline_per_s": "the recipe's input pipeline alone, units per second as a fit draws its batches: far above "
    "recipe_per_s, the input is not what limits the recipe",
    "*_spread": "the slowest and fastest repeat, units per second",
    "*_step_ms / *_step_ms_p90": "median and 90th percentile of the timed steps (per execution where "
    "steps_per_execution > 1)",
    "*_mib": "growth of the resident memory of that way's process while it built its model and trained (MiB; the "
    "recipe's after its data was loaded, the baselines' after their imports)",
    "ratio_vs_keras / ratio_vs_torch": "recipe_per_s / keras_per_s and recipe_per_s / torch_per_s: above 1, the "
    "recipe trains faster than that baseline on this processor",
    "*_params": "trainable parameters of each way's network (PyTorch's LSTM keeps two bias vectors per gate set)",
    "recipe_settings": "what the recipe way resolved: precision, XLA, steps_per_execution, the zoo's speed layers",
    "cpu / cpu_flags / threads": "the processor the ratios hold on, its SIMD and matrix flags, and the threads "
    "TensorFlow and PyTorch used",
}


def recipe_setup(family: bench.Family, tiny: bool, data_dir: str):
    """The recipe's config, datasets, training pipeline and a function building its compiled model, as
    ``zoo run`` makes them."""
    import keras

    import recipes
    from recipes.runtime import distribute, train
    from recipes.runtime.config import parse_overrides
    from recipes.runtime.recipe import Plan

    recipe = recipes.load(family.recipe)
    options = [*(family.tiny if tiny else family.options), *(["--data-dir", data_dir] if data_dir else [])]
    config = parse_overrides(recipe.config, options, f"zoo bench ({family.recipe})", recipe.presets,
                             data_forms=recipe.data_forms)
    placement = distribute.make_strategy(config.strategy, config.cpu_replicas, config.worker_timeout)
    keras.utils.set_random_seed(config.seed)
    train.set_precision(config.mixed_precision)
    datasets = recipe.make_datasets(config)
    batch = config.batch_size * placement.replicas
    plan = Plan(placement.replicas, placement.workers, batch, -(-datasets.num_train // batch))
    pipeline = train.training_pipeline(datasets, config, batch, placement.replicas)

    def build():
        with placement.strategy.scope():
            return recipe.build_model(config, datasets, plan)

    return config, datasets, pipeline, build


def phase2_top(model, config, batches, seed: int):
    """The fine-tune's phase 2 as the recipe trains it: the unfrozen top on the frozen bottom's cached
    features (the cache is made once per run, so it is not timed here; the row's notes say so)."""
    import numpy as np
    import tensorflow as tf

    from recipes import finetune
    from recipes.runtime import data as data_lib, features
    from zoo import backbones

    backbones.freeze(model)
    bottom, top = features.split(model, config.unfreeze_blocks)
    backbones.unfreeze_top(model, config.unfreeze_blocks)
    finetune.compile_phase(top, config.finetune_learning_rate, config)
    cached = [(bottom(x, training=False).numpy(), y) for x, y in batches]
    arrays = tuple(np.concatenate(part) for part in zip(*cached))
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    return top, data_lib.pipeline(dataset, len(arrays[1]), len(batches[0][1]), training=True, seed=seed,
                                  cache=False)


def torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def run_way(way: str, folder: str, timeout: float = 1800) -> tuple:
    """Time plain Keras or plain PyTorch in a process of its own (``bench_way``); (its Timing, its record)."""
    import json
    import subprocess

    backend = {"keras": "tensorflow", "torch": "torch"}[way]
    result = subprocess.run([sys.executable, "-m", "recipes.runtime.bench_way", way, folder], capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, "KERAS_BACKEND": backend})
    if result.returncode:
        raise BenchError(f"the plain {way} way failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    with open(os.path.join(folder, f"{way}.json")) as handle:
        record = json.load(handle)
    return bench.Timing(record["epochs"], record["steps"], record["memory_mib"]), record


def measure(name: str, tiny: bool = False, steps: int = 0, repeats: int = 3, data_dir: str = "",
            log=print) -> dict:
    """Train family ``name`` three ways: the recipe's here, plain Keras and plain PyTorch each in a process of
    its own right after it (``bench_way`` says why); its row."""
    if not torch_installed():  # said before anything is loaded
        raise BenchError("zoo bench needs PyTorch for its third way: pip install -e '.[bench]' "
                         "(the CPU wheel torch==2.13.0)")
    import keras
    import numpy as np
    import tensorflow as tf

    family = bench.FAMILIES[name]
    steps = steps or (min(family.steps, 8) if tiny else family.steps)
    config, datasets, pipeline, build = recipe_setup(family, tiny, data_dir)
    batches = list(pipeline.repeat().take(steps).as_numpy_iterator())  # the batches all three ways train on
    input_time = bench.pipeline_timing(pipeline.repeat(), steps, repeats)
    with bench.PeakRSS() as memory:
        model = build()
        trained, data = model, pipeline
        if name == "finetune_phase2":
            trained, data = phase2_top(model, config, batches, config.seed)
        log(f"[bench] {name}: {model.name} on {datasets.name}, global batch {len(batches[0][1])}, {steps} steps x "
            f"{repeats} repeats; {bench.trainable_count(trained):,} trainable parameters the recipe's way")
        recipe_time = bench.keras_timing(trained, data.repeat(), steps, repeats, steps_per_epoch=steps)
    recipe_time.memory_mib = memory.growth_mib

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as folder:  # the baselines, each in its own process
        x, y = (np.concatenate(part) for part in zip(*batches))
        np.savez(os.path.join(folder, "batches.npz"), x=x, y=y)
        loss = model.loss if isinstance(model.loss, (str, type(None))) else keras.losses.serialize(model.loss)
        files.write_json(os.path.join(folder, "spec.json"), {
            "family": family.twin or name, "seed": config.seed, "steps": steps, "repeats": repeats, "batch_size": len(batches[0][1]),
            "loss": loss, "model": bench.plain_config(model)}, default=str)
        keras_time, keras_result = run_way("keras", folder)
        torch_time, torch_result = run_way("torch", folder)

    per_step = len(batches[0][1]) * (batches[0][0].shape[1] if family.tokens else 1)
    row = {"family": name, "unit": "tokens" if family.tokens else "examples", "recipe": family.recipe,
           "model": model.name, "dataset": datasets.name, "dataset_source": datasets.source,
           "global_batch_size": len(batches[0][1]), "steps": steps, "repeats": repeats}
    summaries = {way: timing.summary(per_step * steps) for way, timing in zip(WAYS, (recipe_time, keras_time, torch_time))}
    for way, summary in summaries.items():
        row.update({f"{way}_{key}": value for key, value in summary.items()})
    row["pipeline_per_s"] = input_time.summary(per_step * steps)["per_s"]
    row["ratio_vs_keras"] = round(summaries["recipe"]["per_s"] / summaries["keras"]["per_s"], 3)
    row["ratio_vs_torch"] = round(summaries["recipe"]["per_s"] / summaries["torch"]["per_s"], 3)
    row.update(recipe_params=bench.trainable_count(trained), keras_params=keras_result["params"],
               torch_params=torch_result["params"])
    fused = sorted({type(layer).__name__ for layer in model._flatten_layers()
                    if type(layer).__name__ in bench.STOCK and getattr(layer, "packed_attention", True)})
    from recipes.runtime.train import use_xla

    row["recipe_settings"] = (f"precision {keras.config.dtype_policy().name}, xla {use_xla(config)}, "
                              f"steps_per_execution {config.steps_per_execution}, speed layers "
                              f"{' '.join(fused) or 'none'}")
    cpu, flags = bench.processor()
    row.update(cpu=cpu, cpu_flags=flags,
               threads=f"tensorflow {tf.config.threading.get_intra_op_parallelism_threads() or 'all'}, "
                       f"torch {torch_result['threads']}",
               tensorflow_version=tf.__version__, keras_version=keras.__version__, torch_version=torch_result["version"],
               notes=("the recipe way trains the top on the bottom's cached features (made once per run, untimed "
                      "here); keras and torch run the whole network on images with the bottom frozen"
                      if name == "finetune_phase2" else ""))
    log(f"[bench] {name}: recipe {row['recipe_per_s']:,.0f}, plain Keras {row['keras_per_s']:,.0f}, plain PyTorch "
        f"{row['torch_per_s']:,.0f} {row['unit']}/s: {row['ratio_vs_keras']:.2f}x Keras, "
        f"{row['ratio_vs_torch']:.2f}x PyTorch")
    return row


def record(rows: list[dict], results_dir: str, command: str) -> str:
    """Append ``rows`` to ``<results_dir>/benchmarks.csv`` (under the results lock) and regenerate the README."""
    import pandas as pd

    from recipes.runtime import artifacts, files, results

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    commit = artifacts.git_commit()
    rows = [{"date": stamp, **row, "commit": commit, "command": command} for row in rows]
    path = os.path.join(results_dir, CSV_NAME)
    os.makedirs(results_dir, exist_ok=True)
    with files.locked(results_dir):
        table = pd.DataFrame(rows)
        if os.path.exists(path):
            table = pd.concat([pd.read_csv(path), table], ignore_index=True)
        partial = f"{path}.{os.getpid()}.partial"
        table.to_csv(partial, index=False)
        os.replace(partial, path)
        results.write_readme(results_dir)
    return path


def section(results_dir: str) -> list[str]:
    """The README's benchmark section: a summary table, each row's command and the columns' meanings."""
    import pandas as pd

    path = os.path.join(results_dir, CSV_NAME)
    if not os.path.exists(path):
        return []
    from recipes.runtime.results import markdown_rows

    table = pd.read_csv(path)
    lines = ["## Benchmarks (`zoo bench`, `make bench`)", "",
             "Each family's headline model trained for a fixed number of steps three ways on the same batches, one "
             "after the other: the recipe's way, plain Keras and plain PyTorch, each baseline in a process of its own "
             "(`recipes/runtime/bench.py`, `bench_way.py`). A ratio holds on the processor of its row only.", "",
             markdown_rows(table, [column for column in SUMMARY if column in table]), "",
             "Commands, steps and spreads:", ""]
    for index, row in table.iterrows():
        lines.append(f"{index + 1}. `{row['command']}` at commit {row['commit']}: {row['family']} "
                     f"({row['model']} on {row['dataset']}), {row['steps']} steps x {row['repeats']} repeats; "
                     f"spreads recipe {row['recipe_spread']}, keras {row['keras_spread']}, torch "
                     f"{row['torch_spread']}; step ms (median/p90) recipe {row['recipe_step_ms']}/"
                     f"{row['recipe_step_ms_p90']}, keras {row['keras_step_ms']}/{row['keras_step_ms_p90']}, torch "
                     f"{row['torch_step_ms']}/{row['torch_step_ms_p90']}; {row['recipe_settings']}; threads "
                     f"{row['threads']}" + (f"; {row['notes']}" if isinstance(row.get("notes"), str) else ""))
    return lines + ["", "Columns of `benchmarks.csv`:", ""] + [f"- `{key}`: {value}" for key, value in MEANINGS.items()] \
        + [""]

