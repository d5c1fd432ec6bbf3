"""Datasets: the catalog of the guide, where files come from, readers, splits and loading."""

from .catalog import DatasetInfo, get_info, list_datasets, resolve_name
from .dataset import DataSplits, ImageArrays, load_dataset
from .loader import TensorLoader

__all__ = [
    "DataSplits",
    "DatasetInfo",
    "ImageArrays",
    "TensorLoader",
    "get_info",
    "list_datasets",
    "load_dataset",
    "resolve_name",
]
