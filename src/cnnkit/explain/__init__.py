"""Look inside a CNN: feature maps, filters, Grad-CAM, and convolutions worked by hand."""

from .conv_demo import conv_demo, pool_demo
from .gradcam import GradCam, grad_cam
from .handwork import WorkedValue, work_conv_value
from .report import Explanation, explain, explain_model

__all__ = [
    "Explanation", "GradCam", "WorkedValue", "conv_demo", "explain", "explain_model", "grad_cam",
    "pool_demo", "work_conv_value",
]
