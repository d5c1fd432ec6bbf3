"""Models: one registry (built-ins, specs, other libraries, saved bundles) and the bundle format."""

from . import builtins as _builtins  # noqa: F401  (registers the built-in architectures)
from . import pretrained as _pretrained  # noqa: F401  (registers tv:, timm:, hf-hub:, run, transfer)
from .bundle import BundleMeta, find_bundle, load_bundle, save_bundle
from .registry import ModelEntry, create_model, list_models, register_model, register_source

__all__ = [
    "BundleMeta", "ModelEntry", "create_model", "find_bundle", "list_models", "load_bundle",
    "register_model", "register_source", "save_bundle",
]
