"""``zoo export RUN_DIR --format saved_model|tflite|onnx``: a trained run's model as one artifact
that serves without this project, its Python code or Keras.

What is exported keeps the run's raw-input contract, as ``zoo predict`` uses it: a text
classifier's ``text_model.keras`` (raw strings in; its TextVectorization inside), else
``model.keras`` (pixels as the run's images hold them, 0-255; table rows; token or character
ids; a series window). Outputs are the model's: class probabilities in ``data.json``'s
``class_names`` order, a regression value, a language model's next-character logits (the
sampling loop and ``vocabulary.json`` stay outside), a forecaster's next horizon. Per recipe:
cnn, dbn, finetune, mlp, rnn and transformer as predict serves them; an autoencoder run's
``model.keras`` (pixels in, reconstructed intensities in [0, 1] out; a VAE decodes its
posterior mean, so the artifact is deterministic); a gan run's generator (``noise``, normal
numbers of ``latent_dim``, and a conditional GAN's int32 ``label`` in; images in pixel units
out), not the GAN around it, whose ``train_step`` and discriminator serve nothing. A deepdream
run trains no model and is refused. The batch dimension is free unless ``--batch-size N``
fixes it. Keras's own ``model.export`` writes each format:

- ``saved_model`` (default ``RUN_DIR/export/saved_model/``, a folder): TensorFlow's, for TF
  Serving (signature ``serving_default``) or ``artifact = tf.saved_model.load(path)`` then
  ``artifact.serve(x)`` (in two steps: the variables die with the loaded object, so
  ``tf.saved_model.load(path).serve(x)`` in one expression fails). Takes every input, strings
  included.
- ``tflite`` (``RUN_DIR/export/model.tflite``): LiteRT, converted to builtin ops only, so that
  ``tf.lite.Interpreter`` of the tensorflow pip package runs it
  (``.get_signature_runner("serving_default")(image=x)["output_0"]``): that interpreter has no
  Flex delegate for TensorFlow ops. Refused for string inputs (no builtin op lowercases, splits
  or looks up words); recurrent layers need ``--batch-size`` (1 serves one input at a time), as
  TFLite lowers their loops to builtin ops only at a static batch.
- ``onnx`` (``RUN_DIR/export/model.onnx``): through tf2onnx (``pip install -e '.[export]'``),
  for ``onnxruntime.InferenceSession(path).run(None, {name: x})``. Refused for string inputs
  (ONNX has no regex or word-split operators). tf2onnx writes ops it cannot convert as they
  are, which no ONNX runtime runs, so such an artifact is refused instead. TensorFlow's exact
  GELU uses ``Erfc``, which tf2onnx lacks: ``register_erfc`` teaches it ``1 - Erf``.

An existing output stays unless ``--force``; the artifact is written under a temporary sibling
name and renamed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile

FORMATS = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}  # default names
KERAS_FORMATS = {"saved_model": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}
SERVED_TASKS = ("classify", "regress", "language_model", "forecast", "reconstruct", "generate")


class ExportError(Exception):
    """The export was tried and failed (exit status 1); the message says why and what to do."""


class ExportRefused(ExportError):
    """Nothing was tried: a run folder, format or option that cannot be exported (exit status 2)."""


def default_out(run_dir: str, format: str) -> str:
    return os.path.join(run_dir, "export", FORMATS[format])


def model_path(run_dir: str) -> tuple[str, dict]:
    """The model file to export (a text classifier's ``text_model.keras``, else ``model.keras``, as
    ``zoo predict`` chooses) and the run's ``data.json``; or ExportRefused."""
    if not os.path.isdir(run_dir):
        raise ExportRefused(f"{run_dir!r} is not a folder; pass a run folder such as runs/cnn/mnist_convnet-mnist")
    facts_path = os.path.join(run_dir, "data.json")
    if not os.path.exists(facts_path):
        raise ExportRefused(f"{run_dir} has no data.json: it is not a finished run folder (run its command again)")
    with open(facts_path) as handle:
        facts = json.load(handle)
    task = facts.get("task", "")
    if task == "dream":
        raise ExportRefused(f"{run_dir} is a deepdream run: it trains no model (it changes an image), so there "
                            f"is nothing to export")
    if task not in SERVED_TASKS:
        raise ExportRefused(f"{run_dir} is a {task!r} run; zoo export serves runs of the tasks {list(SERVED_TASKS)}")
    text_model = os.path.join(run_dir, "text_model.keras")
    path = text_model if task == "classify" and os.path.exists(text_model) else os.path.join(run_dir, "model.keras")
    if not os.path.exists(path):
        raise ExportRefused(f"{run_dir} lacks {os.path.basename(path)}: it is not a finished run folder")
    return path, facts


def require_onnx_packages() -> None:
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise ExportRefused(f"--format onnx needs tf2onnx and onnx ({error}); install them with "
                            f"pip install -e '.[export]' (onnxruntime, also in it, runs the artifact)") from None


def input_signature(model, batch_size: int = 0) -> list:
    """One ``tf.TensorSpec`` per model input, named as the input, batch free or ``batch_size``."""
    import tensorflow as tf

    specs = [tf.TensorSpec((batch_size or None, *tensor.shape[1:]), tensor.dtype, name=tensor.name.split(":")[0])
             for tensor in model.inputs]
    return specs if len(specs) == 1 else [specs]  # Keras's form: several inputs are one list argument


def refuse_unservable_inputs(model, format: str, model_file: str) -> None:
    strings = [tensor.name for tensor in model.inputs if tensor.dtype == "string"]
    if not strings or format == "saved_model":
        return
    why = {"tflite": "TFLite has no builtin ops for the TextVectorization inside (lowercase, regex, word split); "
                     "as TensorFlow (Flex) ops they need the Flex delegate, which the tensorflow pip package's "
                     "tf.lite.Interpreter lacks",
           "onnx": "ONNX has no operators for the TextVectorization inside (its regex replace and word split; "
                   "tf2onnx converts neither)"}[format]
    raise ExportRefused(f"{model_file} takes raw strings (input {strings[0]!r}) and {why}. Export it as "
                        f"--format saved_model, which keeps the raw-text input")


@functools.lru_cache()
def register_erfc() -> None:
    """Teach tf2onnx ``Erfc`` (exact GELU on TensorFlow is ``0.5 * x * erfc(-x / sqrt 2)``) as ``1 - Erf``;
    in float32 the subtraction costs GELU an absolute error under 1e-7 * |x|, far inside predict's noise."""
    import numpy as np
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:
        @classmethod
        def version_9(cls, context, node, **kwargs):  # Erf is in ONNX from opset 9
            node.type = "Erf"
            dtype = utils.map_onnx_to_numpy_type(context.get_dtype(node.input[0]))
            one = context.make_const(utils.make_name("erfc_one"), np.array(1, dtype))
            context.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(node.name),
                                              inputs=[one.output[0], node.output[0]])


def nonstandard_operators(path: str) -> list[str]:
    """Operators of an ONNX file outside the standard sets (tf2onnx leaves ops it cannot convert as they were)."""
    import onnx

    graph = onnx.load(path).graph
    return sorted({f"{node.domain + '.' if node.domain else ''}{node.op_type}" for node in graph.node
                   if not onnx.defs.has(node.op_type, node.domain)})


@contextlib.contextmanager
def silenced_stderr():
    """File descriptor 2 into a scratch file meanwhile: TensorFlow's C++ converter prints its diagnostics
    there, and tf2onnx and TensorFlow log warnings, none of which a served artifact needs; a failure's
    message is in its exception."""
    import logging
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    quiet = {name: logging.getLogger(name).level for name in ("tf2onnx", "tensorflow")}
    with tempfile.TemporaryFile("w+") as capture:
        os.dup2(capture.fileno(), 2)
        for name in quiet:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            for name, level in quiet.items():
                logging.getLogger(name).setLevel(level)


def conversion_failure(format: str, error: Exception, model_file: str) -> ExportError:
    text = str(error)
    operators = sorted(set(re.findall(r"'tf\.(\w+)'", text)))
    if format == "tflite" and any(name.startswith("TensorList") for name in operators):
        return ExportError(f"{model_file} has recurrent layers, whose loops TFLite lowers to builtin ops only with "
                           f"a fixed batch size: pass --batch-size 1 (or the batch you will serve)")
    if operators:
        return ExportError(f"the {format} converter refused {model_file}: no builtin op for {operators}. "
                           f"Export it as --format saved_model, which runs every TensorFlow op")
    last = [line.strip() for line in text.splitlines() if "error" in line.lower()][-1:] or [text[-300:]]
    return ExportError(f"the {format} export of {model_file} failed: {type(error).__name__}: {last[0]}")


def write(model, format: str, path: str, batch_size: int, model_file: str) -> None:
    """``model.export`` to ``path``; ExportError when the converter fails or leaves foreign ops."""
    import tensorflow as tf

    options = {}
    if format == "tflite":
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    if format == "onnx":
        register_erfc()
    with silenced_stderr():
        try:
            model.export(path, format=KERAS_FORMATS[format], verbose=False,
                         input_signature=input_signature(model, batch_size), **options)
        except Exception as error:  # each converter raises its own types (ConverterError, ValueError ...)
            raise conversion_failure(format, error, model_file) from None
    if format == "onnx":
        foreign = nonstandard_operators(path)
        if foreign:
            raise ExportError(f"tf2onnx could not convert {model_file}'s TensorFlow ops {foreign} to ONNX "
                              f"operators; no ONNX runtime would run them. Export it as --format saved_model or "
                              f"tflite")


def export(run_dir: str, format: str, out: str = "", force: bool = False, trust_code: bool = False,
           batch_size: int = 0) -> dict:
    """Export the run's served model; returns what was written (path, format, inputs, outputs)."""
    if format not in FORMATS:
        raise ExportRefused(f"Unknown format={format!r}; expected one of {sorted(FORMATS)}")
    if batch_size < 0:
        raise ExportRefused(f"--batch-size {batch_size}: expected 0 (a free batch) or a positive size")
    source, facts = model_path(run_dir)
    out = out or default_out(run_dir, format)
    if os.path.lexists(out) and not force:
        raise ExportRefused(f"{out} exists; pass --force to replace it, or --out another path")
    if format == "onnx":
        require_onnx_packages()
    from zoo.backbones import WeightsError, load_model

    try:
        model = load_model(source, trust_code=trust_code)
    except WeightsError as error:  # a model that carries Python code, without --trust-model-code
        raise ExportRefused(str(error)) from None
    if facts["task"] == "generate":  # a GAN serves through its generator alone
        model = model.generator
    refuse_unservable_inputs(model, format, source)
    folder, name = os.path.split(os.path.abspath(out))
    made_folder = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{name}.{os.getpid()}.partial" + ("" if format == "saved_model" else
                                                                      os.path.splitext(FORMATS[format])[1]))
    try:
        write(model, format, partial, batch_size, source)
        replaced = f"{partial}.replaced"
        if os.path.lexists(out):  # --force: the old artifact goes only once the new one is complete
            os.replace(out, replaced)
        os.replace(partial, out)
        remove(replaced)
    finally:
        remove(partial)
        if made_folder and not os.listdir(folder):  # a failed export leaves no trace, RUN_DIR/export/ included
            os.rmdir(folder)
    return {"path": out, "format": format, "model": source, "task": facts["task"],
            "inputs": [describe(spec) for spec in flat(input_signature(model, batch_size))],
            "outputs": [describe(tensor, "output", batch_size) for tensor in model.outputs]}


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def flat(signature: list) -> list:
    return signature[0] if signature and isinstance(signature[0], list) else signature


def describe(tensor, name: str = "", batch_size: int = 0) -> str:
    """``name: dtype (batch, 8, 8, 1)``; ``?`` marks a free dimension other than the batch."""
    sizes = [batch_size or tensor.shape[0], *tensor.shape[1:]] if len(tensor.shape) else []
    shape = ", ".join("batch" if index == 0 and size is None else "?" if size is None else str(size)
                      for index, size in enumerate(sizes))
    dtype = getattr(tensor.dtype, "name", tensor.dtype)
    return f"{name or tensor.name.split(':')[0]}: {dtype} ({shape})"


def how_to_call(format: str, path: str, names: list[str]) -> str:
    """One line of Python that runs the artifact on ``x`` (or on arrays named as its inputs)."""
    values = ["x"] if len(names) == 1 else names
    if format == "saved_model":
        arguments = "x" if len(names) == 1 else "[" + ", ".join(names) + "]"
        return f"artifact = tf.saved_model.load({path!r}); artifact.serve({arguments})"  # kept: its variables
    if format == "tflite":
        keywords = ", ".join(f"{name}={value}" for name, value in zip(names, values))
        return f"tf.lite.Interpreter(model_path={path!r}).get_signature_runner()({keywords})['output_0']"
    feeds = ", ".join(f"{name!r}: {value}" for name, value in zip(names, values))
    return f"onnxruntime.InferenceSession({path!r}).run(None, {{{feeds}}})[0]"


def show(written: dict) -> str:
    names = [text.split(":")[0] for text in written["inputs"]]
    return (f"Wrote {written['path']} ({written['format']}, from {os.path.basename(written['model'])}, a "
            f"{written['task']} run)\n  in:  " + "; ".join(written["inputs"]) + "\n  out: "
            + "; ".join(written["outputs"]) + "\n  call: " + how_to_call(written["format"], written["path"], names))
