"""The `cnnkit` command: verbs -> public API. Parses, prints, sets exit codes; no logic of its own.

The flags of train, finetune and lr-find are derived from the settings dataclasses (TrainConfig,
TransferOptions, LRFindOptions) by cnnkit/settings.py: a setting is declared once, in its field.

A user error (CnnkitError) prints one or two lines and exits 2; `--debug` shows
the traceback instead. A run stopped by Ctrl-C or SIGTERM prints how to resume it and exits
130 or 143 (128 + the signal's number, as a shell reports it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .errors import CnnkitError, Interrupted
from .settings import add_flags, flag_values, from_flags

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, setup: Callable[[argparse.ArgumentParser], None]):
    """Register a verb: `setup` adds its arguments, the decorated function does the work."""

    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help_text, setup, run)
        return run

    return register


# --------------------------------------------------------------------------- train


def _settings():
    """The settings dataclasses, looked up when a parser is built (so a test can substitute one)."""
    from .train import config
    from .transfer import options

    return config.TrainConfig, options.TransferOptions, config.LRFindOptions


def _train_setup(p):
    train_config, _, _ = _settings()
    add_flags(p, train_config)  # every field of TrainConfig, as --kebab-case
    p.add_argument("--config", help="a config.yaml to start from (flags override it)")
    p.add_argument("--resume", metavar="RUN", help="continue a run that stopped (its own config is used)")
    # [distributed] see docs/distributed.md; under torchrun --batch-size is per process
    p.add_argument("--nproc", type=int, help="start N training processes on this machine through torchrun")


@command("train", "train a CNN on a dataset (default: digits) and write a run directory", _train_setup)
def _train_run(args) -> int:
    from .api import train
    from .fileio import read_yaml
    from .train.config import TrainConfig

    if args.nproc is not None:  # [distributed] re-run this same command line under torchrun, N processes
        from .train.distributed import launch, relaunch_argv

        return launch(args.nproc, relaunch_argv(args.argv, "train"))
    if args.resume:
        refuse_other_flags(args, "train", allowed=("nproc",))  # a resumed DDP run may change its size
        train(resume=args.resume)
        return 0
    config = TrainConfig.from_dict(read_yaml(args.config) or {}) if args.config else TrainConfig()
    train(config, **flag_values(args, TrainConfig))
    return 0


# --------------------------------------------------------------------------- evaluate / predict


def _foreign_args(p):
    g = p.add_argument_group("foreign models (a file cnnkit did not export, run in OpenCV DNN; docs/export.md)")
    g.add_argument("--config", metavar="FILE",
                   help="the model's second file (.caffemodel, .prototxt, .weights, .cfg, .pbtxt); "
                        "default: the one beside it with the same name")
    g.add_argument("--preprocessing", metavar="YAML",
                   help="the preprocessing YAML (default: <model stem>.cnnkit.yaml or cnnkit.yaml beside it)")
    g.add_argument("--size", metavar="WxH", help="input width x height, e.g. 224x224")
    g.add_argument("--channels", type=int, choices=[1, 3], help="input channels (default 3)")
    g.add_argument("--scale", help="x = (pixel - mean) * scale / std; e.g. 1/255 or 0.017 (default 1)")
    g.add_argument("--mean", help="per channel, in pixel units (0..255), model's channel order, e.g. 104,117,123")
    g.add_argument("--std", help="per channel divisor applied after scale (default 1)")
    g.add_argument("--swap-rb", action=argparse.BooleanOptionalAction, default=None,
                   help="the model wants RGB (OpenCV's swapRB); default: no, BGR as cv2.imread gives")
    g.add_argument("--crop", action=argparse.BooleanOptionalAction, default=None,
                   help="resize to cover the size and cut the centre (default: stretch)")
    g.add_argument("--labels", metavar="FILE", help="class names, one per line")


FOREIGN_FLAGS = ("config", "preprocessing", "size", "channels", "scale", "mean", "std", "swap_rb", "crop", "labels")


def _foreign(args) -> dict | None:
    given = {k: getattr(args, k) for k in FOREIGN_FLAGS if getattr(args, k) is not None}
    return given or None


def _evaluate_setup(p):
    p.add_argument("model", metavar="RUN_OR_BUNDLE")
    p.add_argument("--data", help="dataset (default: the one the model was trained on)")
    p.add_argument("--out", help="folder for the confusion matrix and evaluation.json")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _foreign_args(p)


@command("evaluate", "accuracy, per-class precision/recall/F1 and a confusion matrix on a test set", _evaluate_setup)
def _evaluate_run(args) -> int:
    from .api import evaluate

    result = evaluate(args.model, args.data, out=args.out, device=args.device, preprocessing=_foreign(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['dataset']} test set: {result['images']:,} images, accuracy {result['accuracy']:.4f}")
    width = max(len("class"), *(len(r["class"]) for r in result["per_class"]))
    print(f"{'class':<{width}}  precision  recall     f1  support")
    for r in result["per_class"]:
        print(f"{r['class']:<{width}}  {r['precision']:9.4f}  {r['recall']:6.4f}  {r['f1']:5.4f}  {r['support']:7d}")
    print(f"confusion matrix: {result['confusion_matrix_png']}")
    return 0


def _predict_setup(p):
    p.add_argument("model", metavar="RUN_OR_BUNDLE")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line; an unreadable image's has an \"error\" key instead of \"top\"")
    p.add_argument("--runtime", choices=["torch", "onnxruntime", "opencv"], default=None,
                   help="run the model (a run, bundle, .onnx or TorchScript .pt file) in this runtime "
                        "(default: torch; onnxruntime for a .onnx file)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (default: predict the others, report it, exit 2)")
    _foreign_args(p)


@command("predict", "top-k classes with probabilities for image files", _predict_setup)
def _predict_run(args) -> int:
    from .api import predict

    results = predict(args.model, args.images, top_k=args.top_k, device=args.device, runtime=args.runtime,
                      strict=args.strict, preprocessing=_foreign(args))
    failed = 0
    for result in results:
        if "error" in result:
            failed += 1
            print(f"error: {result['error']}", file=sys.stderr)
        if args.json:
            print(json.dumps(result))
        elif "top" in result:
            tops = "  ".join(f"{t['class']} {t['probability']:.3f}" for t in result["top"])
            print(f"{result['image']}: {tops}")
    if failed:
        print(f"{failed} of {len(results)} images could not be read", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------- datasets / models


def _datasets_setup(p):
    p.add_argument("action", nargs="?", choices=["list", "info", "show"], default="list")
    p.add_argument("name", nargs="?")
    p.add_argument("--out", help="`show`: the PNG file (a name ending in .png) or a folder for NAME-samples.png")
    p.add_argument("--level", choices=["builtin", "beginner", "intermediate", "advanced"], help="list one level only")
    p.add_argument("--per-class", type=int, default=8, help="samples per class in `show`")
    p.add_argument("--json", action="store_true", help="`list`/`info` as JSON")


@command("datasets", "the datasets of the guide, by level, and where each stands here", _datasets_setup)
def _datasets_run(args) -> int:
    from .api import datasets, datasets_info, datasets_show
    from .data import catalog_view
    from .train.recipes import augmentation  # what training uses: the recipe states it

    if args.action == "list":
        rows = datasets(args.level)
        print(json.dumps(rows, indent=2) if args.json else catalog_view.table(rows, args.level))
    elif not args.name:
        raise CnnkitError(f"`cnnkit datasets {args.action}` needs a dataset name")
    elif args.action == "info":
        record = datasets_info(args.name)
        print(json.dumps(record, indent=2) if args.json else catalog_view.info(record["name"], augmentation))
    else:
        print(datasets_show(args.name, args.out, per_class=args.per_class))
    return 0


def _models_setup(p):
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'res*'")
    p.add_argument("--source", help="only this source: builtin, tv, timm, hf-hub, hf, keras, kerashub, run")
    p.add_argument("--pretrained", action="store_true", help="only models that come with pretrained weights")


@command("models", "the model registry: built-ins and other sources", _models_setup)
def _models_run(args) -> int:
    from .api import list_models
    from .models.registry import WEIGHTS_HERE, missing_extra

    rows = list_models(args.pattern, source=args.source, pretrained=True if args.pretrained else None)
    if not rows:
        missing = missing_extra(args.source)
        raise CnnkitError(f"no model matches {args.pattern!r}"
                          + (f" in source {args.source!r}" if args.source else "")
                          + (f"; {missing}" if missing else ""))
    width = max(len(r[0]) for r in rows)
    for name, source, description in rows:
        print(f"{name:<{width}}  {source:<8}  {description}")
    if args.pretrained:
        here = sum(WEIGHTS_HERE in r[2] for r in rows)
        print(f"\n{here} of {len(rows)} have their weights on this machine {WEIGHTS_HERE}; the others download "
              "on first use (or say where to put the file when offline)")
    return 0


# --------------------------------------------------------------------------- explain / export


def _explain_setup(p):
    p.add_argument("target", metavar="RUN_OR_BUNDLE|conv|pool",
                   help="a run or bundle to explain, or `conv` / `pool` for a worked example on small numbers")
    p.add_argument("image", nargs="?", metavar="IMAGE", help="the image to explain (with a run or bundle)")
    p.add_argument("--class", dest="class_", metavar="C", help="Grad-CAM for this class (index or name; default: top)")
    p.add_argument("--out", help="output folder (default: RUN/explain/IMAGE-NAME, or explain-conv / explain-pool)")
    p.add_argument("--max-maps", type=int, default=64, help="feature maps drawn per conv layer")
    p.add_argument("--input", default=None, help="conv/pool: input size, e.g. 6x6")
    p.add_argument("--kernel", type=int, default=None, help="conv/pool: kernel (window) size")
    p.add_argument("--stride", type=int, default=None, help="conv/pool: stride (pool default: the window size)")
    p.add_argument("--padding", type=int, default=0, help="conv/pool: padding on every side")
    p.add_argument("--op", choices=["max", "avg"], default="max", help="pool: max or average")


@command("explain", "look inside: feature maps, filters, Grad-CAM, a convolution worked by hand", _explain_setup)
def _explain_run(args) -> int:
    from pathlib import Path

    from .explain.conv_demo import conv_demo, pool_demo
    from .explain.report import explain_model

    if args.target in ("conv", "pool") and not Path(args.target).exists():
        if args.image:
            raise CnnkitError(f"`cnnkit explain {args.target}` takes no image; use --input, --kernel, --stride, --padding")
        out = args.out or f"explain-{args.target}"
        if args.target == "conv":
            demo = conv_demo(args.input or "6x6", args.kernel or 3, args.stride or 1, args.padding, out=out)
        else:
            demo = pool_demo(args.input or "4x4", args.kernel or 2, args.stride, args.padding, args.op, out=out)
        print(demo.text)
        print(f"\n{len(demo.frames)} frames and an animation: {demo.gif}")
        return 0
    if not args.image:
        raise CnnkitError("give an image to explain: cnnkit explain RUN_OR_BUNDLE IMAGE")
    r = explain_model(args.target, args.image, class_=args.class_, out=args.out, max_maps=args.max_maps)
    names = r.class_names
    print(f"{args.image}: {names[r.predicted]} {r.probabilities[r.predicted]:.3f}")
    for s in r.shapes:
        print(f"  {s.name:<28} {s.kind:<18} {' x '.join(map(str, s.output_shape))}")
    w = r.worked
    print(f"{r.gradcam.layer} Grad-CAM for {names[r.gradcam.class_index]}; "
          f"first conv value [{w.filter},{w.row},{w.col}] by hand {w.value:+.6f}, model {r.worked_actual:+.6f} "
          f"(difference {r.worked_difference:.1e})")
    print(f"pictures and explain.md in {r.out_dir}")
    return 0


def _export_setup(p):
    p.add_argument("model", metavar="RUN_OR_BUNDLE")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", metavar="FILE", help="output file (default: model.onnx / model.pt in the bundle)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17 loads in OpenCV DNN 4.9+ and 5)")
    p.add_argument("--no-check", action="store_true", help="skip running the export beside PyTorch")


@command("export", "export a model to ONNX or TorchScript, preprocessing included, checked against PyTorch",
         _export_setup)
def _export_run(args) -> int:
    from .deploy import export_model

    result = export_model(args.model, format=args.format, out=args.out, opset=args.opset, check=not args.no_check)
    size = result.path.stat().st_size / 1e6
    print(f"wrote {result.path} ({result.format}{f', opset {result.opset}' if result.opset else ''}, "
          f"{size:.2f} MB, dynamic batch size)")
    for runtime, difference in result.differences.items():
        print(f"  {runtime:<12} max |difference| from PyTorch {difference:.1e} (allowed {result.tolerance:.0e})")
    return 0


# --------------------------------------------------------------------------- finetune


# The TrainConfig fields `cnnkit finetune` takes (the rest of its flags are TransferOptions').
FINETUNE_TRAINING = ("data", "epochs", "batch_size", "lr", "weight_decay", "limit", "seed", "device", "out",
                     "name", "augment", "optimizer", "schedule", "amp", "checkpoint_every", "deterministic",
                     "tensorboard")


def _finetune_setup(p):
    train_config, transfer_options, _ = _settings()
    add_flags(p, transfer_options)
    p.add_argument("--resume", metavar="RUN", help="continue a finetune run that stopped (its own options are used)")
    p.add_argument("--summary", action="store_true",
                   help="print each stage's layer summary (trainable vs frozen parameters) and stop; trains nothing")
    training = p.add_argument_group("training (as in `cnnkit train`; unset ones come from the dataset's recipe)")
    add_flags(training, train_config, FINETUNE_TRAINING, help={"lr": "peak learning rate of the head"})


def refuse_other_flags(args, verb: str, allowed: tuple[str, ...] = ()) -> None:
    """--resume continues a run with its own options: any other flag would be silently ignored."""
    defaults = vars(build_parser().parse_args([verb, "--resume", args.resume]))
    given = [k for k, v in vars(args).items() if k not in ("debug", "argv", *allowed) and v != defaults.get(k)]
    if given:
        raise CnnkitError(f"--resume continues a run with its own options; drop --{given[0].replace('_', '-')}")


@command("finetune", "transfer a pretrained model to new data (feature-extractor, freeze, full, gradual, fine-tune)",
         _finetune_setup)
def _finetune_run(args) -> int:
    from .train.config import TrainConfig
    from .transfer.finetune import finetune, finetune_summary
    from .transfer.options import TransferOptions

    if args.resume:
        refuse_other_flags(args, "finetune")
        finetune(None, resume=args.resume)
        return 0
    settings = {**flag_values(args, TransferOptions), **flag_values(args, TrainConfig, FINETUNE_TRAINING)}
    data = settings.pop("data")
    if args.summary:  # the plan of the run these flags would start: same start-up, same recipe
        print(finetune_summary(data=data, **settings))
        return 0
    finetune(data=data, **settings)
    return 0


# --------------------------------------------------------------------------- summary


def _summary_setup(p):
    p.add_argument("model", metavar="SPEC_OR_MODEL_OR_BUNDLE",
                   help="a layer spec in quotes, a registry name, or a bundle / run directory")
    p.add_argument("--input", metavar="CxHxW", help="image shape, e.g. 1x28x28 (a bundle knows its own)")
    p.add_argument("--batch-size", type=int, default=1, help="batch size for the activation memory (default 1)")
    p.add_argument("--classes", type=int, help="classes of a new classifier (default: as the spec says; a tv:/timm:/hf:/keras: "
                        "model keeps its library's own, 1,000 for ImageNet models; 10 for a built-in name)")
    p.add_argument("--json", action="store_true", help="print the rows and totals as JSON")


@command("summary", "every layer's output shape, parameters and MACs, with totals (Keras-style)", _summary_setup)
def _summary_run(args) -> int:
    from .api import summary

    result = summary(args.model, input=args.input, batch_size=args.batch_size, classes=args.classes)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.format())
    return 0


# --------------------------------------------------------------------------- lr-find


# The TrainConfig fields `cnnkit lr-find` takes (the range test's own are LRFindOptions').
LR_FIND_TRAINING = ("data", "model", "recipe", "batch_size", "weight_decay", "label_smoothing", "limit", "seed",
                    "optimizer", "augment", "amp", "device")


def _lr_find_setup(p):
    train_config, _, lr_find_options = _settings()
    add_flags(p, train_config, LR_FIND_TRAINING)
    add_flags(p, lr_find_options)


@command("lr-find", "the learning-rate range test: a loss-vs-rate plot and a suggested --lr", _lr_find_setup)
def _lr_find_run(args) -> int:
    from .api import lr_find
    from .train.config import LRFindOptions, TrainConfig

    result = lr_find(options=from_flags(args, LRFindOptions), **flag_values(args, TrainConfig, LR_FIND_TRAINING))
    print(f"suggested --lr {result['suggestion']:.2g} (steepest descent); the loss is lowest at "
          f"{result['minimum']:.2g}{' and diverged after it' if result['stopped_early'] else ''}")
    print(f"plot: {result['plot']}")
    return 0


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnkit", allow_abbrev=False,
        description="Convolutional neural networks end to end: build, train, transfer, explain, export.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (help_text, setup, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        setup(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given (`train --nproc` passes it on to torchrun)
    if not args.verb:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.verb][2](args)
    except Interrupted as e:  # Ctrl-C or SIGTERM during a run: not an error, a stop (train/guard.py)
        if args.debug:
            raise
        print(e, file=sys.stderr)
        return e.exit_code
    except CnnkitError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a run's training (loading data, lr-find, export, ...)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
