"""A training batch that does not fit in memory: one line with a batch size that fits (found by halving),
the last checkpoint intact, no traceback.

The fault is injected where a real one happens, in the model's forward pass: a forward pre-hook
raises what PyTorch raises when an allocation fails (torch.OutOfMemoryError on CUDA, the CPU
allocator's RuntimeError, Python's MemoryError) for every training batch larger than 16 images,
from the fourth step on (after the checkpoint of step 3). The probe halves 64 -> 32 (fails) -> 16.
"""

from __future__ import annotations

import pytest
import torch
from helpers_faults import FLAGS, run_module, temporaries

from cnnkit.cli import main
from cnnkit.train.checkpoint import read_checkpoint
from cnnkit.train.memory import is_out_of_memory

FAILURES = {
    "cuda": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "cpu": lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                                "allocate memory: you tried to allocate 100000000000000 bytes."),
    "python": lambda: MemoryError(),
}


@pytest.mark.parametrize("kind", ["cuda", "cpu"])
def test_a_batch_too_large_names_one_that_fits_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys, kind):
    create_model = run_module.create_model
    steps = []

    def too_large(module, args):
        if module.training and len(args[0]) > 16:
            steps.append(1)
            if len(steps) >= 4:
                raise FAILURES[kind]()

    def model_that_runs_out(*args, **kwargs):
        model = create_model(*args, **kwargs)
        model.register_forward_pre_hook(too_large)
        return model

    monkeypatch.setattr(run_module, "create_model", model_that_runs_out)
    run = tmp_path / "oom"
    assert main(["train", *FLAGS, "--batch-size", "64", "--out", str(tmp_path), "--name", "oom"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory on cpu with a batch of 64 (epoch 1, step 4: "), err
    assert err.endswith("); --batch-size 16 fits (found by halving): start again with it; the last checkpoint "
                        f"(epoch 0, step 3) is intact in {run / 'last'}: continue with "
                        f"`cnnkit train --resume {run}`\n")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    state = read_checkpoint(run / "last" / "checkpoint.pt")["state"]
    assert (state["epoch"], state["step_in_epoch"]) == (0, 3)
    assert not temporaries(run) and not (run / ".lock").exists()


def test_what_counts_as_out_of_memory():
    assert all(is_out_of_memory(make()) for make in FAILURES.values())
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 2x2)"))
    assert not is_out_of_memory(ValueError("out of memory"))
