"""Datasets: the catalog of the guide, where files come from, readers, splits and loading."""

from .arrays import FileList
from .catalog import DatasetInfo, get_info, list_datasets, resolve_name
from .dataset import DataSplits, ImageArrays, load_dataset
from .folder import load_folder
from .loader import TensorLoader, make_loader
from .sources import locate

__all__ = [
    "DataSplits",
    "DatasetInfo",
    "FileList",
    "ImageArrays",
    "TensorLoader",
    "get_info",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "locate",
    "make_loader",
    "resolve_name",
]
