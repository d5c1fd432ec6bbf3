"""A training batch that does not fit in memory: recognise it, and find by halving one that does.

PyTorch says "out of memory" in three ways: `torch.OutOfMemoryError` (CUDA, and XPU), a
RuntimeError from the CPU allocator ("DefaultCPUAllocator: can't allocate memory") or from MPS
("MPS backend out of memory"), and Python's own MemoryError. On Linux a CPU that runs out often
meets the kernel's OOM killer (a SIGKILL) first; nothing in the process sees that one, and
`--resume` continues from the last checkpoint as after any kill.
"""

from __future__ import annotations

import torch

_MESSAGES = ("can't allocate memory", "out of memory")


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error) for m in _MESSAGES)


def free_memory(trainer) -> None:
    """Drop what the failed step held (gradients, cached device blocks) before trying again."""
    trainer.optimizer.zero_grad(set_to_none=True)
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()
    elif trainer.device.type == "mps":
        torch.mps.empty_cache()


def batch_size_that_fits(trainer, x: torch.Tensor, y: torch.Tensor) -> int:
    """The largest of len(x)/2, /4, ..., 1 whose forward and backward pass fits (0: not even 1).

    Tried on the failed batch itself, in training mode, with the run's autocast; no optimizer step
    is taken (the run stops after this: its weights on disk are the last checkpoint's, and those
    in memory are not saved again).
    """
    size = len(x) // 2
    while size >= 1:
        free_memory(trainer)
        try:
            with torch.autocast(trainer.device.type, dtype=trainer.amp, enabled=trainer.amp is not None):
                loss = trainer.criterion(trainer.forward(x[:size]), y[:size])
            loss.backward()
            return size
        except Exception as e:  # only out-of-memory errors mean "try smaller"
            if not is_out_of_memory(e):
                raise
            size //= 2
        finally:
            free_memory(trainer)
    return 0
