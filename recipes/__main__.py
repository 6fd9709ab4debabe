"""The ``zoo`` command line (also ``python -m recipes``).

    zoo list                         recipes and registered models
    zoo run cnn --epochs 3           one recipe; --help lists its fields and defaults
    zoo run all --quick              every recipe in quick mode (the demo and smoke test)
    zoo results                      the results table
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


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def command_list(args) -> int:
    print("Recipes (zoo run NAME --help):")
    for name, summary in sorted(recipes.RECIPES.items()):
        print(f"  {name:12s} {summary}")
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
    from recipes.runtime.config import ConfigError, parse_overrides

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: zoo run RECIPE|all [--quick] [--FIELD VALUE ...]\n\nrecipes: "
              + ", ".join(sorted(recipes.RECIPES)) + "\n`zoo run RECIPE --help` lists a recipe's fields.")
        return 0 if argv else USAGE_ERROR
    name, overrides = argv[0], argv[1:]
    names = sorted(recipes.RECIPES) if name == "all" else [name]
    try:
        modules = {recipe: recipes.load(recipe) for recipe in names}
        if "-h" in overrides or "--help" in overrides:
            from recipes.runtime.config import make_parser
            for recipe, module in modules.items():
                make_parser(module.Config, f"zoo run {recipe}", module.__doc__).print_help()
            return 0
        configs = {recipe: parse_overrides(module.Config, overrides, f"zoo run {recipe}",
                                           getattr(module, "QUICK", None))
                   for recipe, module in modules.items()}
    except (ConfigError, recipes.UnknownRecipeError) as error:
        return _fail(str(error), USAGE_ERROR)

    _quiet_tensorflow()
    from recipes.runtime import train
    from recipes.runtime.data import DataError
    from zoo import UnknownModelError
    from zoo.backbones import WeightsError

    failures = []
    for recipe, config in configs.items():
        command = "zoo run " + " ".join([recipe, *overrides])
        try:
            if hasattr(modules[recipe], "run"):  # a recipe that trains no model (deepdream) runs itself
                modules[recipe].run(config, command=command)
            else:
                train.run(recipe, modules[recipe], config, command=command)
        except (UnknownModelError, ConfigError, WeightsError) as error:
            failures.append((recipe, str(error), USAGE_ERROR))
        except (DataError, train.NaNLossError, train.ResumeError) as error:
            failures.append((recipe, str(error), RUN_ERROR))
        if failures and name != "all":
            break
    for recipe, message, _ in failures:
        _fail(f"[{recipe}] {message}", 0)
    if failures:
        return max(status for _, _, status in failures)
    if name == "all":
        print(f"All {len(configs)} recipes finished: {', '.join(configs)}")
    return 0


def command_results(args) -> int:
    from recipes.runtime import results

    if not os.path.isdir(args.results_dir):
        return _fail(f"No results directory {args.results_dir!r}; run a recipe first or pass --results-dir",
                     RUN_ERROR)
    print(open(results.write_readme(args.results_dir)).read())
    return 0


def command_data(args) -> int:
    _quiet_tensorflow()
    from recipes.runtime import data

    data_dir = data.resolve_data_dir(args.data_dir)
    try:
        data.import_dataset(args.name, args.source, data_dir)
    except data.DataError as error:
        return _fail(str(error), RUN_ERROR)
    print(f"Done. Run recipes with --data-dir {data_dir} (or export ZOO_DATA_DIR={data_dir}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        return command_run(argv[1:])
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run a recipe (zoo run RECIPE --help)")
    listing = commands.add_parser("list", help="list recipes and models")
    listing.add_argument("what", nargs="?", default="all", choices=["all", "recipes", "models"])
    listing.add_argument("--pattern", default="*", help="shell pattern over model names, e.g. 'resnet*'")
    showing = commands.add_parser("results", help="print the results table")
    showing.add_argument("--results-dir", default="results")
    data = commands.add_parser("data", help="manage datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    importing = data_commands.add_parser("import", help="prepare a tfds dataset from local raw files")
    importing.add_argument("name", help="dataset: mnist, fashion_mnist or cifar10")
    importing.add_argument("--from", dest="source", required=True, help="folder with the raw files")
    importing.add_argument("--data-dir", default="", help="tfds data dir (default $ZOO_DATA_DIR)")
    args = parser.parse_args(argv)
    handlers = {"list": command_list, "results": command_results, "data": command_data}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
