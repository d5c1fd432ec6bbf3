"""Plots and the run report."""

from .plots import plot_confusion_matrix, plot_curves
from .report import write_report

__all__ = ["plot_confusion_matrix", "plot_curves", "write_report"]
