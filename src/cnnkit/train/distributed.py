"""Data-parallel training under torchrun: the same `cnnkit train` on N processes.

Nothing here launches workers or moves bytes by itself: torchrun (PyTorch's
launcher) starts the processes and sets RANK / WORLD_SIZE / LOCAL_RANK /
LOCAL_WORLD_SIZE / MASTER_ADDR / MASTER_PORT; this module turns those into a
process group (NCCL on CUDA GPUs, gloo on CPU), wraps the model in
DistributedDataParallel and gives the Trainer the few collectives it needs:

- the run directory is made by rank 0 and its path broadcast, so every rank
  agrees on it (and on `--resume`); only rank 0 writes files or prints;
- the epoch's counters (loss, score, seen) are summed over ranks and the
  val/test predictions gathered back into split order, so reported numbers are
  global, and every rank takes the same best-epoch and stop decisions;
- BatchNorm running statistics are averaged over ranks at each epoch end, so
  all ranks hold bit-identical weights (or use --sync-bn on GPUs);
- a checkpoint records the world size it was written with, so a run resumes
  with a different number of processes (see `adapt_resumed_state`).

`--batch-size` is per process, as in torchrun scripts: the global batch is
batch_size x world_size. `--scale-lr` applies the linear scaling rule
(lr x world_size). Single-process runs never touch torch.distributed: every
helper is a no-op when WORLD_SIZE is 1 or unset.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..device import pick_device
from ..errors import CnnkitError, ConfigError, TrainingError

T = TypeVar("T")

# Seconds a collective may wait for a peer before failing (a dead peer usually fails at once:
# its sockets close; this bounds the rest, e.g. a peer stuck on a file system).
TIMEOUT_ENV = "CNNKIT_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600
# Debug hooks used by the tests (and handy when checking a new cluster):
HASH_ENV = "CNNKIT_DIST_HASH_DIR"  # each rank writes rank<N>.json with a sha256 of its final weights
KILL_ENV = "CNNKIT_DIST_KILL"  # "RANK:EPOCH:STEP": that rank SIGKILLs itself after that step
COUNTERS = ("loss", "score", "seen")  # the summable entries of the Trainer's per-epoch sums


# --------------------------------------------------------------------------- who am I


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def launched() -> bool:
    """True when a launcher started this process as one of several (WORLD_SIZE > 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def rank() -> int:
    return dist.get_rank() if _active() else _env_int("RANK", 0)


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Rank 0 is the only process that writes files and prints (true in a plain run)."""
    return rank() == 0


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def main_only(log: Callable[[str], Any]) -> Callable[[str], Any]:
    """`log` on rank 0, a silent function on the others (decided from RANK, before any init)."""
    return log if _env_int("RANK", 0) == 0 else _silent


def _silent(*_args, **_kwargs) -> None:
    return None


def shard() -> dict[str, int]:
    """TensorLoader keyword arguments that give this rank its slice of every epoch."""
    return {"rank": rank(), "world_size": world_size()}


# --------------------------------------------------------------------------- set up


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_process(local_world_size: int, cores: int | None = None) -> int:
    """The CPU's cores shared fairly among the processes of this machine."""
    return max(1, (cores or cpu_cores()) // max(1, local_world_size))


def init(device_name: str | None) -> torch.device:
    """Pick this process's device and, under torchrun with WORLD_SIZE > 1, join the process group.

    CUDA: one GPU per process (cuda:LOCAL_RANK), NCCL. CPU: gloo, with the cores split
    between the local processes (unless OMP_NUM_THREADS says otherwise).
    """
    if not launched():
        return pick_device(device_name)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", _env_int("WORLD_SIZE", 1))
    device = pick_device(device_name)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ConfigError(f"process {local_rank} on this machine has no GPU of its own: {count} visible; "
                              f"start at most {count} processes per machine (--nproc-per-node {count}) "
                              "or train on the CPU with --device cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
        if os.environ.get("OMP_NUM_THREADS", "1") == "1":  # torchrun's default; an explicit choice wins
            torch.set_num_threads(threads_per_process(local_world))
    else:
        raise ConfigError(f"distributed training runs on CUDA GPUs (NCCL) or on CPUs (gloo), not on "
                          f"{device.type}; pass --device cpu")
    if not _active():
        timeout = timedelta(seconds=_env_int(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        try:
            dist.init_process_group(backend, timeout=timeout)
            atexit.register(teardown)  # leave the group cleanly however the run ends
        except (RuntimeError, ValueError) as e:
            raise TrainingError(f"could not join the {backend} process group of "
                                f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} "
                                f"({str(e).splitlines()[0]}); start every process with the same torchrun "
                                "--rdzv-endpoint, --nnodes and --nproc-per-node") from e
    return device


def teardown() -> None:
    """Leave the process group (registered with atexit by `init`)."""
    if _active():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- collectives


def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_object(obj: T, src: int = 0) -> T:
    """rank `src`'s `obj` on every rank (picklable objects: a path, a dict)."""
    if world_size() <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (e.g. a callback asked one rank to stop)."""
    if world_size() <= 1:
        return flag
    t = torch.tensor([int(bool(flag))], device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def reduce_counters(sums: dict) -> dict:
    """A copy of the epoch's sums with loss/score/seen summed over ranks (seconds stay local)."""
    if world_size() <= 1 or not sums:
        return sums
    t = torch.tensor([float(sums.get(k, 0)) for k in COUNTERS], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    out = dict(sums)
    for k, v in zip(COUNTERS, t.tolist(), strict=True):
        out[k] = int(round(v)) if isinstance(sums.get(k, 0), int) else v  # counts stay integers
    return out


def sync_buffers(model: nn.Module) -> None:
    """Average float buffers (BatchNorm running mean/var) over ranks; take rank 0's counters.

    DDP keeps parameters identical, but each rank updates its BN statistics from its own
    last batch; averaging them at epoch ends makes every rank's weights the same before
    validation and checkpoints (timm's `distribute_bn`).
    """
    if world_size() <= 1:
        return
    n = world_size()
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer.data)
            buffer.data.div_(n)
        else:
            dist.broadcast(buffer.data, src=0)


def end_of_epoch(model: nn.Module, sums: dict) -> dict:
    """The Trainer's hook at the end of each training epoch: global counters, synced buffers."""
    sync_buffers(model)
    return reduce_counters(sums)


def interleave(shards: list[torch.Tensor], n: int) -> torch.Tensor:
    """Undo TensorLoader's sharding: rank r held positions r, r+W, r+2W, ... of the padded order."""
    return torch.stack(shards, 1).flatten(0, 1)[:n]


def gather_split(logits: torch.Tensor, labels: torch.Tensor, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Each rank predicted its shard of an unshuffled split; all ranks get the whole split, in order.

    Works for TensorLoader and StreamingLoader (both deal out with `data.loader.epoch_order`).
    If the streaming path skipped unreadable files the shards differ in length: then the
    (logit, label) pairs are all there but not in split order, padding repeats included.
    """
    w = getattr(loader, "world_size", 1)
    if w <= 1 or world_size() <= 1:
        return logits, labels
    split = getattr(loader, "labels", None)
    n = len(split) if split is not None else len(loader.files)
    device = _comm_device()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(w)]
    dist.all_gather(sizes, torch.tensor([len(labels)], dtype=torch.int64, device=device))
    sizes = [int(s.item()) for s in sizes]
    out = []
    for t in (logits, labels):
        t = t.contiguous().to(device)
        padded = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=device)
        padded[: len(t)] = t
        parts = [torch.empty_like(padded) for _ in range(w)]
        dist.all_gather(parts, padded)
        if len(set(sizes)) == 1:
            whole = interleave(parts, n)
        else:
            whole = torch.cat([p[:k] for p, k in zip(parts, sizes, strict=True)])
        out.append(whole.to(logits.device))
    return out[0], out[1]


# --------------------------------------------------------------------------- the model


def wrap_model(model: nn.Module, device: torch.device, *, sync_bn: bool = False) -> tuple[nn.Module, nn.Module]:
    """(model, what to call forward on): the model itself in a plain run, DDP(model) under torchrun.

    The first is what optimizers, checkpoints and bundles see (no wrapper names); with
    --sync-bn its BatchNorm layers become SyncBatchNorm (same state-dict keys).
    """
    if world_size() <= 1:
        return model, model
    if any(hasattr(m, "keras_model") for m in model.modules()):
        raise ConfigError("a Keras backbone cannot be trained by several processes: its BatchNormalization "
                          "statistics are parameters that DDP neither averages nor broadcasts; train it in one "
                          "process, or use the tv:/timm: version of the network")
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError("--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm does not run on the CPU "
                              "(on CPUs the BatchNorm statistics are averaged at every epoch end instead); "
                              "drop --sync-bn")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    # DDP copied rank 0's initial weights to all ranks; from here, dropout draws differ per rank.
    if rank() > 0:
        torch.manual_seed(torch.initial_seed() + rank())
    return model, ddp


def scale_lr(config, log: Callable[[str], Any] = _silent):
    """The linear scaling rule: lr x world_size (= global batch / per-process batch), when asked."""
    n = world_size()
    if not getattr(config, "scale_lr", False) or n <= 1:
        return config
    scaled = config.lr * n
    log(f"--scale-lr: lr {config.lr:g} x {n} processes = {scaled:g} "
        f"(global batch {config.batch_size * n} = {n} x {config.batch_size})")
    return dataclasses.replace(config, lr=scaled)


def summary_fields(config) -> dict[str, int]:
    """What a run's summary.json says about its processes."""
    n = world_size()
    return {"processes": n, "global_batch_size": (config.batch_size or 0) * n}


# --------------------------------------------------------------------------- checkpoints and resume


def checkpoint_state(state):
    """The TrainState to save: stamped with the world size, half-done epoch counters made global.

    Every rank must call this (it may all-reduce); only rank 0 then writes the file.
    """
    partial = reduce_counters(state.partial) if state.partial else state.partial
    return dataclasses.replace(state, partial=partial, world_size=world_size())


def resume_step(step_in_epoch: int, batch_size: int, old_world: int, new_world: int) -> int:
    """The first step of this world size whose images were not all trained on yet.

    TensorLoader hands rank r the positions r, r+W, ... of the epoch's permutation, so
    after s steps the W ranks together have trained exactly the first s*B*W positions;
    with W' ranks, step s*B*W // (B*W') starts at or just before that point (a few
    images may be seen twice when it does not divide; none is skipped).
    """
    if old_world == new_world:
        return step_in_epoch
    return (step_in_epoch * batch_size * old_world) // (batch_size * new_world)


def adapt_resumed_state(trainer) -> None:
    """After loading a checkpoint: map its step counts to this world size, then de-duplicate counters.

    The checkpoint is world-size independent: its weights and optimizer state are the
    same on every rank; its step counts are mapped with `resume_step`, and the
    schedule's position is recounted in this world size's steps, so the learning-rate
    curve continues where it was. With --scale-lr, the learning rates are rescaled by
    new/old world size. Rank 0 carries the half-done epoch's global counters; the
    other ranks start theirs at zero so the epoch-end sum counts them once.
    """
    state, config = trainer.state, trainer.config
    old, new = max(1, int(getattr(state, "world_size", 1) or 1)), world_size()
    steps = len(trainer.train_loader)
    state.step_in_epoch = min(resume_step(state.step_in_epoch, config.batch_size, old, new), steps)
    scheduler, optimizer = trainer.scheduler, trainer.optimizer
    if config.scale_lr and old != new:
        factor = new / old
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
        for group in optimizer.param_groups:
            if "initial_lr" in group:
                group["initial_lr"] *= factor
    # The schedule spans the current stage (the whole run unless a finetune stage started later).
    scheduler.last_epoch = (state.epoch - trainer.stage_start) * steps + state.step_in_epoch
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas is not None:
        lrs = [base * f(scheduler.last_epoch) for f, base in zip(lambdas, scheduler.base_lrs, strict=True)]
        for group, lr in zip(optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        scheduler._last_lr = lrs
    if state.partial and rank() > 0:
        state.partial = {**state.partial, **{k: 0 for k in COUNTERS}}
    if rank() > 0:  # the checkpoint restored rank 0's RNG everywhere; keep dropout draws per rank
        torch.manual_seed(config.seed + 1_000 * (state.epoch + 1) + rank())
    state.world_size = new


# --------------------------------------------------------------------------- failures and debug hooks


def _is_peer_failure(e: BaseException) -> bool:
    if isinstance(e, dist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "gloo", "Gloo", "NCCL",
                            "Timed out", "timed out", "Broken pipe"))


class _KillAt:
    """Fault injection for tests: SIGKILL this rank after a given step (CNNKIT_DIST_KILL=RANK:EPOCH:STEP)."""

    def __init__(self, spec: str) -> None:
        self.rank, self.epoch, self.step = (int(x) for x in spec.split(":"))

    def on_step(self, trainer, step: int, steps: int, loss: float, accuracy: float) -> None:
        if rank() == self.rank and trainer.state.epoch + 1 == self.epoch and step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def weights_digest(model: nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes): equal iff the weights are identical."""
    from ..models.bundle import unwrap

    h = hashlib.sha256()
    for name, t in sorted(unwrap(model).state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@contextmanager
def supervise(trainer) -> Iterator[None]:
    """Around `trainer.fit()`: a lost peer becomes a TrainingError that says how to resume.

    Debug hooks (environment): CNNKIT_DIST_KILL kills one rank mid-run; CNNKIT_DIST_HASH_DIR
    makes each rank write rank<N>.json with the digest of its final weights.
    """
    if world_size() > 1 and os.environ.get(KILL_ENV):
        trainer.callbacks.append(_KillAt(os.environ[KILL_ENV]))
    try:
        yield
    except CnnkitError:
        raise
    except Exception as e:
        if world_size() > 1 and _is_peer_failure(e):
            run = trainer.run_dir
            raise TrainingError(
                f"rank {rank()} lost contact with another training process ({str(e).splitlines()[0][:200]}); "
                f"the last complete checkpoint is {run / 'last' / 'checkpoint.pt'}; continue with "
                f"`cnnkit train --resume {run}` under the same launcher (any number of processes)") from e
        raise
    folder = os.environ.get(HASH_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        record = {"rank": rank(), "world_size": world_size(), "sha256": weights_digest(trainer.model)}
        (Path(folder) / f"rank{rank()}.json").write_text(json.dumps(record) + "\n")


# --------------------------------------------------------------------------- `cnnkit train --nproc N`


def relaunch_argv(argv: list[str], verb: str = "train") -> list[str]:
    """The user's own `cnnkit` command line, as `verb`'s arguments minus `--nproc N`.

    Options given before the verb (`cnnkit --debug train ...`) are kept: the verb accepts
    them too. Forwarding what was typed, rather than rebuilding it from the parsed flags,
    passes every flag on exactly as given (`--no-tta`, `--config`, a new setting).
    """
    at = argv.index(verb)
    rest, out, skip = [*argv[:at], *argv[at + 1:]], [], False
    for arg in rest:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True  # and its value
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def torchrun_command(nproc: int, train_argv: list[str]) -> list[str]:
    """torchrun on this machine (a free port is chosen by --standalone) running `cnnkit train`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "cnnkit", "train", *train_argv]


def launch(nproc: int, train_argv: list[str], *, log: Callable[[str], Any] = print) -> int:
    """Start `nproc` processes of `cnnkit train` through torchrun on this machine; wait for them."""
    if launched() or "TORCHELASTIC_RUN_ID" in os.environ:
        raise ConfigError("--nproc starts torchrun itself; this process is already one of several "
                          "started by a launcher, so leave --nproc out")
    if nproc < 1:
        raise ConfigError("--nproc must be at least 1")
    cmd = torchrun_command(nproc, train_argv)
    env = dict(os.environ)
    # torchrun would set 1 thread per process; share the cores instead (an explicit setting wins).
    env.setdefault("OMP_NUM_THREADS", str(threads_per_process(nproc)))
    log(f"starting {nproc} processes: {shlex.join(['torchrun', *cmd[3:]])}")
    with subprocess.Popen(cmd, env=env) as process:
        try:
            code = process.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to torchrun too; let it stop its workers
            process.wait()
            raise
    if code != 0:
        raise TrainingError(f"the {nproc} training processes stopped (torchrun exit code {code}; the failing "
                            "rank's message is above); continue from the last complete checkpoint with "
                            f"`cnnkit train --nproc {nproc} --resume {_run_hint(train_argv)}`")
    return 0


def _run_hint(train_argv: list[str]) -> str:
    """The run directory a `cnnkit train` command line writes, as far as its flags say."""
    flags = {arg: train_argv[i + 1] for i, arg in enumerate(train_argv[:-1]) if arg.startswith("--")}
    if "--resume" in flags:
        return flags["--resume"]
    if "--name" in flags:
        return str(Path(flags.get("--out", "runs")) / flags["--name"])
    return "RUN (the run directory printed at the start)"
