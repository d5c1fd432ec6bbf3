"""The errors a user can cause. Each message says what is wrong and what to do.

The CLI prints a `CnnkitError` in one or two lines and exits with status 2;
anything else is a bug and shows its traceback.
"""


class CnnkitError(Exception):
    """Base of every user-facing error."""


class ConfigError(CnnkitError):
    """A flag, option or config file value that cannot be used."""


class DatasetError(CnnkitError):
    """A dataset that cannot be found, read or trusted."""


class DatasetNotFound(DatasetError):
    """The files of a dataset are not on disk and cannot be downloaded."""


class SpecError(CnnkitError):
    """A layer spec that cannot be parsed."""


class ShapeError(CnnkitError):
    """A layer whose output would be empty or that does not fit its input."""


class ModelError(CnnkitError):
    """An unknown model name, or a model that cannot be built or loaded."""


class BundleError(ModelError):
    """A bundle or run directory that is missing, incomplete or not cnnkit's."""


class ImageError(CnnkitError):
    """An image file that cannot be decoded."""


class TrainingError(CnnkitError):
    """Training that cannot go on (a NaN loss, a run that cannot be resumed)."""
