"""The pieces of train/distributed.py that need no second process: sharding arithmetic,
resume mapping, the LR rule, the launcher's command line."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch

from cnnkit.cli import main
from cnnkit.data.dataset import ImageArrays
from cnnkit.data.loader import TensorLoader
from cnnkit.errors import ConfigError
from cnnkit.train import distributed
from cnnkit.train.config import TrainConfig
from cnnkit.train.optim import make_scheduler
from cnnkit.train.trainer import TrainState


def _split(n: int) -> ImageArrays:
    return ImageArrays(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))


@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 2), (7, 3), (5, 4), (1, 2)])
def test_shards_are_disjoint_cover_the_epoch_and_interleave_back(n, world):
    loaders = [TensorLoader(_split(n), batch_size=3, mean=(0.0,), std=(1.0,), shuffle=True, seed=5,
                            rank=r, world_size=world) for r in range(world)]
    for loader in loaders:
        loader.set_epoch(2)
    shards = [loader._indices() for loader in loaders]
    assert len({len(s) for s in shards}) == 1  # equal steps on every rank: collectives line up
    padded = torch.cat(shards)
    assert set(padded.tolist()) == set(range(n))  # the union is the epoch
    assert len(padded) - n < world  # at most world-1 repeats (DistributedSampler's padding)
    # Unshuffled (evaluation): gathering the shards restores the split's order exactly.
    eval_shards = [TensorLoader(_split(n), batch_size=3, mean=(0.0,), std=(1.0,), rank=r,
                                world_size=world)._indices() for r in range(world)]
    assert distributed.interleave(eval_shards, n).tolist() == list(range(n))


def test_shards_of_one_global_batch_are_the_single_process_batch():
    # 2 ranks x batch 4 see, step by step, exactly the images of 1 rank x batch 8: the
    # equivalence the torchrun test relies on (and the reason resume can change world size).
    single = TensorLoader(_split(32), batch_size=8, mean=(0.0,), std=(1.0,), shuffle=True, seed=1)
    ranks = [TensorLoader(_split(32), batch_size=4, mean=(0.0,), std=(1.0,), shuffle=True, seed=1,
                          rank=r, world_size=2) for r in range(2)]
    for (_, y1), (_, ya), (_, yb) in zip(single, *ranks, strict=True):
        assert sorted(y1.tolist()) == sorted(ya.tolist() + yb.tolist())


@pytest.mark.parametrize(("step", "old", "new", "expected"), [
    (3, 2, 1, 6), (3, 1, 2, 1), (5, 2, 2, 5), (4, 3, 2, 6), (0, 4, 1, 0)])
def test_resume_step_never_skips_an_image(step, old, new, expected):
    got = distributed.resume_step(step, 50, old, new)
    assert got == expected
    assert got * 50 * new <= step * 50 * old < (got + 1) * 50 * new or step == 0


def _fake_trainer(world_at_save: int, step_in_epoch: int, scale_lr: bool, steps_per_epoch: int):
    config = TrainConfig(batch_size=50, lr=0.01, epochs=4, scale_lr=scale_lr)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr * world_at_save if scale_lr else config.lr)
    scheduler = make_scheduler(optimizer, config, config.epochs * 10)
    partial = {"loss": 1.0, "score": 7, "seen": 300, "seconds": 0.5} if step_in_epoch else {}
    state = TrainState(epoch=1, step_in_epoch=step_in_epoch, partial=partial, world_size=world_at_save)
    return types.SimpleNamespace(state=state, config=config, optimizer=optimizer, scheduler=scheduler, stage_start=0,
                                 train_loader=[None] * steps_per_epoch)


def test_resume_with_fewer_processes_maps_steps_schedule_and_lr(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 1)
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    trainer = _fake_trainer(world_at_save=2, step_in_epoch=3, scale_lr=True, steps_per_epoch=20)
    distributed.adapt_resumed_state(trainer)
    state = trainer.state
    assert (state.step_in_epoch, state.world_size) == (6, 1)
    assert trainer.scheduler.last_epoch == 1 * 20 + 6  # counted in this world size's steps
    assert trainer.scheduler.base_lrs == [pytest.approx(0.01)]  # 0.02 for 2 processes -> 0.01 for 1
    assert state.partial["seen"] == 300  # rank 0 keeps the global counters


def test_resume_on_other_ranks_zeroes_the_counters(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    trainer = _fake_trainer(world_at_save=2, step_in_epoch=3, scale_lr=False, steps_per_epoch=10)
    distributed.adapt_resumed_state(trainer)
    assert trainer.state.step_in_epoch == 3
    assert trainer.state.partial["seen"] == 0 and trainer.state.partial["loss"] == 0
    assert trainer.scheduler.last_epoch == 13
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(trainer.scheduler.get_last_lr()[0])


def test_scale_lr_is_linear_in_processes_and_only_when_asked(monkeypatch):
    config = TrainConfig(lr=0.004, batch_size=64, scale_lr=True)
    assert distributed.scale_lr(config).lr == 0.004  # one process: nothing to scale
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    messages = []
    assert distributed.scale_lr(config, messages.append).lr == pytest.approx(0.016)
    assert "global batch 256" in messages[0]
    assert distributed.scale_lr(dataclasses.replace(config, scale_lr=False)).lr == 0.004


def test_threads_are_shared_between_local_processes():
    assert distributed.threads_per_process(2, cores=16) == 8
    assert distributed.threads_per_process(4, cores=2) == 1
    assert distributed.threads_per_process(1, cores=2) == 2


def test_single_process_helpers_are_no_ops():
    assert not distributed.launched() and distributed.world_size() == 1 and distributed.is_main()
    model = torch.nn.BatchNorm2d(3)
    plain, net = distributed.wrap_model(model, torch.device("cpu"), sync_bn=True)
    assert plain is model and net is model
    sums = {"loss": 2.0, "score": 3, "seen": 4, "seconds": 1.0}
    assert distributed.end_of_epoch(model, sums) == sums
    assert distributed.broadcast_object("x") == "x" and distributed.any_rank(True)
    logits, labels = torch.ones(3, 2), torch.arange(3)
    assert distributed.gather_split(logits, labels, object()) == (logits, labels)


def _launched_command(monkeypatch, argv: list[str]) -> list[str]:
    """What `cnnkit.cli.main(argv)` would hand to subprocess for `--nproc` (nothing is started)."""
    started = []

    class FakeProcess:
        def __init__(self, cmd, env):
            started.append(cmd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait(self):
            return 0

    monkeypatch.setattr(distributed.subprocess, "Popen", FakeProcess)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert main(argv) == 0
    (cmd,) = started
    return cmd


def test_nproc_forwards_the_users_own_command_line(monkeypatch):
    typed = ["--data", "fashion-mnist", "--epochs", "3", "--model", "conv8-3,relu,flatten", "--scale-lr",
             "--lr", "0.002", "--no-tta", "--no-channels-last", "--tensorboard", "--config", "c.yaml"]
    cmd = _launched_command(monkeypatch, ["train", "--nproc", "2", *typed])
    assert cmd[1:8] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "cnnkit", "train"]
    assert cmd[8:] == typed  # exactly as typed, --nproc N left out
    # --nproc=N anywhere, and options before the verb, are handled too
    cmd = _launched_command(monkeypatch, ["--debug", "train", "--epochs", "1", "--nproc=3", "--resume", "runs/a"])
    assert cmd[4] == "--nproc-per-node=3" and cmd[8:] == ["--debug", "--epochs", "1", "--resume", "runs/a"]


def test_relaunch_argv_drops_only_nproc():
    assert distributed.relaunch_argv(["train", "--nproc", "2", "--name", "x", "--sync-bn"]) == ["--name", "x",
                                                                                                 "--sync-bn"]
    assert distributed.relaunch_argv(["train", "--nproc=2"]) == []
    cmd = distributed.torchrun_command(2, ["--epochs", "2"])
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m"]


def test_nproc_inside_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    with pytest.raises(ConfigError, match="already one of several"):
        distributed.launch(2, [])
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    with pytest.raises(ConfigError, match="at least 1"):
        distributed.launch(0, [])


def test_non_zero_ranks_are_silent(monkeypatch):
    said = []
    monkeypatch.setenv("RANK", "1")
    distributed.main_only(said.append)("hello")
    monkeypatch.setenv("RANK", "0")
    distributed.main_only(said.append)("hello")
    assert said == ["hello"]


def test_weights_digest_sees_every_bit():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    before = distributed.weights_digest(model)
    assert distributed.weights_digest(model) == before
    with torch.no_grad():
        model[1].running_mean[0] += 1e-7
    assert distributed.weights_digest(model) != before


def test_the_launcher_names_the_run_to_resume():
    assert distributed._run_hint(["--epochs", "2", "--name", "k", "--out", "x"]) == "x/k"
    assert distributed._run_hint(["--resume", "runs/a"]) == "runs/a"
    assert distributed._run_hint(["--compile"]).startswith("RUN")


def test_sync_bn_on_cpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ConfigError, match="needs CUDA GPUs"):
        distributed.wrap_model(torch.nn.BatchNorm2d(3), torch.device("cpu"), sync_bn=True)
