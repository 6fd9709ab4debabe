"""The ``zoo`` command line (also ``python -m recipes``).

    zoo list                         recipes and registered models
    zoo run cnn --epochs 3           one recipe; --help lists its fields, defaults and presets
    zoo run finetune --preset cifar10_90 --dry-run   the resolved config, without touching data
    zoo run all --quick              every recipe in quick mode, each in its own process (the demo)
    zoo launch --workers 2 cnn       one recipe on 2 worker processes here (MultiWorkerMirroredStrategy)
    zoo run cnn --data my_images/    a recipe on your own data (an image folder, a CSV table)
    zoo predict RUN_DIR INPUT...     a trained run's model on new inputs (images, texts, table rows, a prompt)
    zoo export RUN_DIR --format tflite   that model as a SavedModel, TFLite or ONNX artifact (RUN_DIR/export/)
    zoo results                      the results table (results/README.md, regenerated)
    zoo results gan                  one recipe's rows, column meanings and pictures
    zoo bench all                    each family trained as the recipe does, as plain Keras and plain PyTorch
    zoo data import mnist --from DIR prepare a tfds dataset from local raw files, offline

Exit status: 0 on success, 2 for bad input (unknown recipe, model or option, wrong
type), 1 when a run fails (missing or corrupt data, NaN loss).
"""

from __future__ import annotations

import argparse
import os
import sys

import recipes

USAGE_ERROR, RUN_ERROR = 2, 1


def _quiet_tensorflow(native_logs: bool = False) -> None:
    """Before TensorFlow loads: its C++ log lines hidden (recipes/runtime/console.py) unless asked for."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if not native_logs:
        from recipes.runtime import console

        console.hide_native_logs()


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def command_list(args) -> int:
    print("Recipes (zoo run NAME --help):")
    for name in recipes.names():
        print(f"  {name:12s} {recipes.load(name).summary}")
    if args.what in ("all", "models"):
        _quiet_tensorflow()
        import zoo

        names = zoo.list_models(args.pattern)
        print(f"\nModels ({len(names)}; zoo.build(NAME, **kwargs)):")
        for name in names:
            doc = (zoo.get_builder(name).__doc__ or "").strip().splitlines()
            print(f"  {name:22s} {doc[0] if doc else ''}")
    return 0


def command_run(argv: list[str]) -> int:
    from recipes.runtime.config import ConfigError, describe, make_parser, parse_overrides

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: zoo run RECIPE|all [--quick] [--preset NAME] [--dry-run] [--FIELD VALUE ...]\n\nrecipes: "
              + ", ".join(recipes.names()) + "\n`zoo run RECIPE --help` lists a recipe's fields and presets.")
        return 0 if argv else USAGE_ERROR
    name, overrides = argv[0], argv[1:]
    dry_run = "--dry-run" in overrides
    overrides = [option for option in overrides if option != "--dry-run"]
    names = sorted(recipes.RECIPES) if name == "all" else [name]
    try:
        chosen = {recipe: recipes.load(recipe) for recipe in names}
        if "-h" in overrides or "--help" in overrides:
            for recipe, declared in chosen.items():
                make_parser(declared.config, f"zoo run {recipe}", declared.doc, declared.presets).print_help()
            return 0
        resolved = {recipe: parse_overrides(declared.config, overrides, f"zoo run {recipe}", declared.presets,
                                            with_sources=True, data_forms=declared.data_forms)
                    for recipe, declared in chosen.items()}
    except (ConfigError, recipes.UnknownRecipeError) as error:
        return _fail(str(error), USAGE_ERROR)
    if dry_run:  # what would run, presets and overrides applied; nothing is read or written
        for recipe, (config, sources) in resolved.items():
            print(f"zoo run {recipe}: {type(config).__module__}.{type(config).__name__}"
                  + (f", preset {config.preset}" if config.preset else "") + "\n" + describe(config, sources))
        return 0

    try:
        for config, _ in resolved.values():
            config.fit_verbose  # refuses a --verbose out of range, before anything starts
    except ConfigError as error:
        return _fail(str(error), USAGE_ERROR)
    _quiet_tensorflow(native_logs=any(config.verbose == 3 for config, _ in resolved.values()))
    if name == "all":
        return run_each_in_its_own_process(list(resolved), overrides)
    command = os.environ.get("ZOO_COMMAND") or "zoo run " + " ".join([name, *overrides])  # zoo launch sets it
    return run_one(chosen[name], resolved[name][0], command)


def run_one(recipe, config, command: str) -> int:
    from recipes.runtime import train
    from recipes.runtime.cluster import ClusterError
    from recipes.runtime.config import ConfigError
    from recipes.runtime.data import DataError
    from recipes.runtime.files import SideFileError
    from zoo import UnknownModelError
    from zoo.backbones import WeightsError

    try:
        train.run(recipe, config, command=command)
    except (UnknownModelError, ConfigError, WeightsError) as error:
        return _fail(f"[{recipe.name}] {error}", USAGE_ERROR)
    except (DataError, train.NaNLossError, train.ResumeError, ClusterError, SideFileError) as error:
        return _fail(f"[{recipe.name}] {error}", RUN_ERROR)
    return 0


def run_each_in_its_own_process(names: list[str], overrides: list[str]) -> int:
    """``zoo run all``: each recipe in a fresh process, so that one recipe's TensorFlow state (the
    logical CPU split, a MirroredStrategy's collectives) cannot reach the next; a summary at the end."""
    import subprocess
    import time

    statuses = {}
    for recipe in names:
        print(f"=== zoo run {' '.join([recipe, *overrides])}", flush=True)
        start = time.perf_counter()
        statuses[recipe] = subprocess.run([sys.executable, "-m", "recipes", "run", recipe, *overrides]).returncode
        print(f"=== {recipe}: {'ok' if statuses[recipe] == 0 else f'failed (exit {statuses[recipe]})'} "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
    failed = {recipe: status for recipe, status in statuses.items() if status != 0}
    if failed:
        _fail(f"{len(failed)} of {len(names)} recipes failed: "
              + ", ".join(f"{recipe} (exit {status})" for recipe, status in failed.items())
              + "; their messages are above, after their === lines", 0)
        return USAGE_ERROR if USAGE_ERROR in failed.values() else RUN_ERROR
    print(f"All {len(names)} recipes finished: {', '.join(names)}")
    return 0


def command_launch(argv: list[str]) -> int:
    from recipes.runtime import launch
    from recipes.runtime.config import ConfigError

    parser = argparse.ArgumentParser(prog="zoo launch", description=launch.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes to start here (default: 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address the workers listen on (default: 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="stop every worker after this many seconds, exit 124 (default: 0, no limit)")
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER, help="RECIPE and its options, as for zoo run")
    args = parser.parse_args(argv)
    try:
        if args.recipe_args:
            recipes.load(args.recipe_args[0])  # the unknown-recipe message with its suggestions
        return launch.launch(args.workers, args.recipe_args, host=args.host, timeout=args.timeout)
    except (ConfigError, recipes.UnknownRecipeError) as error:
        return _fail(str(error), USAGE_ERROR)


def command_predict(args) -> int:
    _quiet_tensorflow()
    import json

    from recipes.runtime import predict
    from zoo.backbones import WeightsError

    try:
        answers = predict.predict(args.run_dir, args.inputs, top_k=args.top_k, trust_code=args.trust_model_code,
                                  length=args.length, temperature=args.temperature, seed=args.seed,
                                  column=args.column, plot=args.plot)
    except WeightsError as error:
        return _fail(str(error), USAGE_ERROR)
    except predict.DataError as error:
        return _fail(str(error), RUN_ERROR)
    print(json.dumps(answers, indent=2) if args.json else predict.show(answers))
    return 0


def command_export(args) -> int:
    _quiet_tensorflow()
    from recipes.runtime import export

    try:
        written = export.export(args.run_dir, args.format, out=args.out, force=args.force,
                                trust_code=args.trust_model_code, batch_size=args.batch_size)
    except export.ExportRefused as error:
        return _fail(str(error), USAGE_ERROR)
    except export.ExportError as error:
        return _fail(str(error), RUN_ERROR)
    print(export.show(written))
    return 0


def command_results(args) -> int:
    from recipes.runtime import files, results

    with_rows = results.recipes_with_rows(args.results_dir)
    if args.recipe and args.recipe not in with_rows:  # a table of an unregistered recipe still shows
        try:
            recipes.load(args.recipe)  # the unknown-recipe message with its suggestions
        except recipes.UnknownRecipeError as error:
            return _fail(str(error), USAGE_ERROR)
    if not os.path.isdir(args.results_dir):
        return _fail(f"No results directory {args.results_dir!r}; run a recipe first or pass --results-dir",
                     RUN_ERROR)
    if args.recipe:  # one recipe's section, read only: the README is left as it is
        if args.recipe not in with_rows:
            return _fail(f"No rows for {args.recipe!r} in {args.results_dir} yet: `zoo run {args.recipe}` appends "
                         f"one. Recipes with rows there: {', '.join(with_rows) or 'none'}", RUN_ERROR)
        print("\n".join(results.recipe_section(args.results_dir, args.recipe) + results.column_meanings()))
        print(f"\n(Paths are relative to {args.results_dir}; {args.recipe}.csv there holds every column.)")
        return 0
    with files.locked(args.results_dir):  # a run appending its row meanwhile waits
        readme = results.write_readme(args.results_dir)
    with open(readme) as handle:
        print(handle.read())
    return 0


def command_bench(args) -> int:
    from recipes.runtime import bench

    try:
        names = bench.check_families(args.families, args.tiny)
    except ValueError as error:
        return _fail(str(error), USAGE_ERROR)
    if args.steps < 0 or args.repeats < 1:
        return _fail(f"--steps must be >= 0 (0: the family's own) and --repeats >= 1; got {args.steps} and "
                     f"{args.repeats}", USAGE_ERROR)
    options = [*(["--tiny"] if args.tiny else []), "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--results-dir", args.results_dir, *(["--data-dir", args.data_dir] if args.data_dir else [])]
    if len(names) > 1:  # each family in a process of its own: no state or memory carried from one to the next
        import subprocess

        failed = [name for name in names
                  if subprocess.run([sys.executable, "-m", "recipes", "bench", name, *options]).returncode]
        if failed:
            return _fail(f"the benchmark of {', '.join(failed)} failed (its message is above); the other rows "
                         f"were recorded", RUN_ERROR)
        return 0
    _quiet_tensorflow()
    from recipes.runtime import bench_run
    from recipes.runtime.config import ConfigError
    from recipes.runtime.data import DataError

    try:
        row = bench_run.measure(names[0], args.tiny, args.steps, args.repeats, args.data_dir)
    except ConfigError as error:
        return _fail(str(error), USAGE_ERROR)
    except (bench.BenchError, DataError) as error:
        return _fail(str(error), RUN_ERROR)
    path = bench_run.record([row], args.results_dir, "zoo bench " + " ".join([names[0], *options]))
    print(f"[bench] row added to {path}")
    return 0


def command_data(args) -> int:
    _quiet_tensorflow()
    from recipes.runtime import data, data_import

    data_dir = data.resolve_data_dir(args.data_dir)
    try:
        data_import.import_dataset(args.name, args.source, data_dir)
    except data.DataError as error:
        return _fail(str(error), RUN_ERROR)
    print(f"Done. Run recipes with --data-dir {data_dir} (or export ZOO_DATA_DIR={data_dir}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `zoo results | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return RUN_ERROR


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "run":
        return command_run(argv[1:])
    if argv and argv[0] == "launch":
        return command_launch(argv[1:])
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from recipes.runtime.bench import __doc__ as bench_doc  # no TensorFlow: only the standard library

    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run a recipe (zoo run RECIPE --help)")
    commands.add_parser("launch", help="run a recipe on N local worker processes (zoo launch --help)")
    listing = commands.add_parser("list", help="list recipes and models")
    listing.add_argument("what", nargs="?", default="all", choices=["all", "recipes", "models"])
    listing.add_argument("--pattern", default="*", help="shell pattern over model names, e.g. 'resnet*'")
    predicting = commands.add_parser("predict", help="use a trained run's model (zoo predict --help)",
                                     description="A trained run's model on new inputs: top-k classes of images or "
                                                 "texts, table rows, a prompt's continuation, a forecast "
                                                 "(recipes/runtime/predict.py says which input each run takes).")
    predicting.add_argument("run_dir", help="a run folder, e.g. runs/cnn/small_convnet-digits-quick")
    predicting.add_argument("inputs", nargs="+", help="image files or folders, texts, CSV files, or a prompt")
    predicting.add_argument("--top-k", type=int, default=3, help="classes shown per input (default: 3)")
    predicting.add_argument("--json", action="store_true", help="one JSON list instead of lines")
    predicting.add_argument("--trust-model-code", action="store_true",
                            help="load a model that carries Python code (runs that code)")
    predicting.add_argument("--length", type=int, default=200, help="language models: characters (default: 200)")
    predicting.add_argument("--temperature", type=float, default=0.8, help="language models (default: 0.8)")
    predicting.add_argument("--seed", type=int, default=0, help="language models: sampling seed (default: 0)")
    predicting.add_argument("--column", default="", help="forecasters: the series column (default: the last)")
    predicting.add_argument("--plot", default="", help="forecasters: also draw the input and forecast to this PNG")
    exporting = commands.add_parser("export", help="a trained run's model as a SavedModel, TFLite or ONNX file",
                                    description="A trained run's model (the one zoo predict uses; a GAN's generator) "
                                                "as an artifact that takes the same raw inputs (recipes/runtime/"
                                                "export.py says what each format takes and refuses).")
    exporting.add_argument("run_dir", help="a run folder, e.g. runs/cnn/small_convnet-digits-quick")
    exporting.add_argument("--format", required=True, choices=["saved_model", "tflite", "onnx"])
    exporting.add_argument("--out", default="", help="where (default: RUN_DIR/export/saved_model, model.tflite, "
                                                     "model.onnx)")
    exporting.add_argument("--force", action="store_true", help="replace an existing --out")
    exporting.add_argument("--batch-size", type=int, default=0,
                           help="fix the batch dimension (TFLite needs it for recurrent layers; default: free)")
    exporting.add_argument("--trust-model-code", action="store_true",
                           help="load a model that carries Python code (runs that code)")
    showing = commands.add_parser("results", help="print the results table (regenerated), or one recipe's",
                                  description="Without RECIPE: regenerate results/README.md from the CSVs and "
                                              "print it. With RECIPE: print that recipe's rows, commands, column "
                                              "meanings and pictures, writing nothing.")
    showing.add_argument("recipe", nargs="?", default="", help="one recipe, e.g. cnn (default: all, regenerated)")
    showing.add_argument("--results-dir", default="results")
    benching = commands.add_parser("bench", help="time each family three ways: the recipe, plain Keras, plain PyTorch",
                                   description=bench_doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    benching.add_argument("families", nargs="*", default=["all"], help="families, or all (default)")
    benching.add_argument("--steps", type=int, default=0, help="timed steps per repeat (default: the family's)")
    benching.add_argument("--repeats", type=int, default=3, help="timed repeats per way (default: 3)")
    benching.add_argument("--tiny", action="store_true", help="bundled data and small shapes: seconds")
    benching.add_argument("--results-dir", default="results", help="where benchmarks.csv is (default: results)")
    benching.add_argument("--data-dir", default="", help="tfds data dir (default $ZOO_DATA_DIR)")
    data = commands.add_parser("data", help="manage datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    importing = data_commands.add_parser("import", help="prepare a tfds dataset from local raw files")
    importing.add_argument("name", help="dataset: mnist, fashion_mnist or cifar10")
    importing.add_argument("--from", dest="source", required=True, help="folder with the raw files")
    importing.add_argument("--data-dir", default="", help="tfds data dir (default $ZOO_DATA_DIR)")
    args = parser.parse_args(argv)
    handlers = {"list": command_list, "results": command_results, "data": command_data, "predict": command_predict,
                "export": command_export, "bench": command_bench}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
