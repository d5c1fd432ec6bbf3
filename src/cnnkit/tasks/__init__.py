"""Tasks: what a batch holds and what "right" means (base.py has the interface and the registry).

Classification (classification.py) is the first; detection, segmentation and video plug in the
same way (docs/tasks.md). Import from the modules: this file stays free of torch.
"""
