"""The errors a user can cause. Each message says what is wrong and what to do.

The CLI prints a `CnnkitError` in one or two lines and exits with status 2 (an
`Interrupted` run: 130 or 143); anything else is a bug and shows its traceback.
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


class Interrupted(TrainingError):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run (train/faults.py); the message says how to resume.

    The CLI exits with 128 + the signal's number (130, 143), as a shell reports a signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class RunBusyError(TrainingError):
    """Another living process holds the run directory's lock (train/runlock.py)."""


class DiskFullError(CnnkitError):
    """A file could not be written: its disk (or the user's quota) is full."""


class OutOfMemoryError(TrainingError):
    """A training batch does not fit in the device's memory."""
