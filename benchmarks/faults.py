"""The kill -9 soak: SIGKILL `cnnkit train` / `finetune` at random moments, resume, compare with a run never killed.

For each scenario (digits, a Fashion-MNIST subset, a staged finetune of a digits run) this runs the
command once uninterrupted (the reference), then runs it again and kills it with SIGKILL at random
moments, `--resume` after every kill, until the run completes; if a run completes before the kills
are used up, a new one starts ("chain") and the kills go on. Every chain ends with its run compared
with the reference: metrics.csv byte for byte, the best/ and last/ weights file for file, summary.json
without its two clock fields. With `--checkpoint-every 1` a checkpoint (about 0.7 MB, fsynced) is
written after every step, so many kills land in the middle of a write.

After every kill, everything in the run folder is checked to be whole (a checkpoint loads, weights
load, JSON/YAML/CSV parse, PNGs decode), the temporary files the kill left (fileio.atomic_path's
`.NAME.XXXXXXXX.tmp`: the kill landed in that file's write) are counted, and `runs/latest` must
point at a folder. At the end of a chain there must be no temporary file and no lock file left.

The kill moment: odd kills (1st, 3rd, ...) come at a random time: for the first process of a chain,
after its first checkpoint exists (before it there is nothing to resume: the command would be run
again instead); for a resumed one, after it took the run's lock (train/runlock.py); uniform up to the
reference's time from its lock to its exit. They land in the start-up of a resumed process (loading
data, building the model), its training, or the final test and report. Random moments seldom fall in
a write of a few milliseconds, so even kills are aimed: they wait for the next write of one file
(checkpoint.pt, model.safetensors, metrics.csv, cnnkit.json, curves.png, report.md, summary.json,
timing.csv, confusion_matrix.png in turn), seen as its temporary file appearing (polled every
millisecond), and kill then. Whether the kill beat the write's rename is counted from the temporary
files found afterwards ("left mid-write").

    python benchmarks/faults.py                              # 20 kills per scenario, all three (~15 min, 2 cores)
    python benchmarks/faults.py --kills 3 --scenarios digits  # the short version (tests/train/test_faults_soak.py)

Results: a table on stdout, and JSON with --json (docs/results/faults.md has the measured ones).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# A temporary file's name -> the name of the file being written (fileio.atomic_path's pattern).
_TEMPORARY_NAME = re.compile(r"^\.(.+)\.[a-z0-9_]{8}\.tmp$")

# Each scenario: the command's arguments after `cnnkit` (OUT and the run name are added), and the verb
# whose --resume continues it. --deterministic: the project's determinism promise (docs/training.md);
# --no-tensorboard: TensorBoard's event files are append-only logs outside the atomic writes.
SCENARIOS = {
    "digits": ["train", "--data", "digits", "--limit", "600", "--epochs", "3", "--checkpoint-every", "1",
               "--deterministic", "--no-tensorboard"],
    "fashion": ["train", "--data", "fashion-mnist", "--limit", "3000", "--epochs", "2", "--batch-size", "128",
                "--checkpoint-every", "1", "--deterministic", "--no-tensorboard"],
    "finetune": ["finetune", "--model", "{donor}", "--data", "digits", "--strategy", "gradual", "--epochs", "4",
                 "--limit", "600", "--checkpoint-every", "1", "--deterministic", "--no-tensorboard"],
}
# Every other kill waits for one of these files to be written (its temporary file to appear) and
# kills then: random moments alone seldom land in a write of a few milliseconds.
TARGETS = ("checkpoint.pt", "model.safetensors", "metrics.csv", "cnnkit.json", "curves.png", "report.md",
           "summary.json", "timing.csv", "confusion_matrix.png")
# The pretrained model of the finetune scenario: a digits run (its run directory is a model source).
DONOR = ["train", "--data", "digits", "--limit", "300", "--epochs", "1", "--no-tensorboard"]
CLOCK_FIELDS = ("train_seconds", "images_per_second")


@dataclass
class Scenario:
    name: str
    command: list[str]
    kills: int = 0
    resumes: int = 0
    chains: int = 0
    mismatches: list[str] = field(default_factory=list)  # chain: what differs from the reference
    half_written: list[str] = field(default_factory=list)  # files that were not whole after a kill
    leftovers: list[str] = field(default_factory=list)  # temporary or lock files at the end of a chain
    bad_latest: int = 0  # kills after which runs/latest did not point at a folder
    kills_mid_write: Counter = field(default_factory=Counter)  # file whose write a kill interrupted
    kills_by_phase: Counter = field(default_factory=Counter)
    kills_aimed: Counter = field(default_factory=Counter)  # target file -> kills sent when its write was seen
    aims_missed: Counter = field(default_factory=Counter)  # target file -> runs that ended before it was seen
    log: list[dict] = field(default_factory=list)  # one record per kill
    reference_seconds: float = 0.0
    seconds: float = 0.0


def cnnkit(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "cnnkit", *args], env=env, stdout=f,
                                stderr=subprocess.STDOUT)


def wait_until(condition, proc: subprocess.Popen, limit: float = 900.0, every: float = 0.005) -> bool:
    """Poll `condition` until it holds (True) or `proc` has exited (False)."""
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not get there in time")
        time.sleep(every)
    return True


def writing(run: Path, target: str) -> bool:
    """Is a file named `target` being written in the run folder (its temporary file exists)?"""
    return any(_TEMPORARY_NAME.sub(r"\1", p.name) == target for p in run.rglob(".*.tmp"))


def holds_lock(run: Path, pid: int) -> bool:
    try:
        return (run / ".lock").read_text().split()[:1] == [str(pid)]
    except OSError:
        return False


def position(run: Path) -> tuple[int, int] | None:
    """(epochs done, step in epoch) of the run's checkpoint, or None."""
    from cnnkit.train.checkpoint import read_checkpoint

    path = run / "last" / "checkpoint.pt"
    if not path.is_file():
        return None
    state = read_checkpoint(path)["state"]
    return state["epoch"], state["step_in_epoch"]


def is_temporary(path: Path) -> bool:
    return bool(_TEMPORARY_NAME.match(path.name))


def not_whole(path: Path) -> str | None:
    """Why `path` is not a whole file of its kind, or None."""
    try:
        if path.suffix == ".pt":
            from cnnkit.train.checkpoint import read_checkpoint

            read_checkpoint(path)
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            load_file(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".yaml":
            import yaml

            yaml.safe_load(path.read_text())
        elif path.suffix == ".csv":
            rows = list(csv.reader(path.read_text().splitlines()))
            if not rows or any(len(r) != len(rows[0]) for r in rows):
                return "ragged CSV"
        elif path.suffix == ".png":
            from PIL import Image

            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".md":
            path.read_text(encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - any failure to read it back is the finding
        return f"{type(e).__name__}: {str(e)[:120]}"
    return None


def same_as(run: Path, reference: Path) -> list[str]:
    """What differs between a finished run and the reference (empty: nothing)."""
    diffs = []
    if (run / "metrics.csv").read_bytes() != (reference / "metrics.csv").read_bytes():
        diffs.append("metrics.csv")
    for name in ("best/model.safetensors", "last/model.safetensors"):
        if (run / name).read_bytes() != (reference / name).read_bytes():
            diffs.append(name)
    a, b = (json.loads((r / "summary.json").read_text()) for r in (run, reference))
    if {k: v for k, v in a.items() if k not in CLOCK_FIELDS} != {k: v for k, v in b.items() if k not in CLOCK_FIELDS}:
        diffs.append("summary.json")
    return diffs


def phase_of_kill(before: tuple[int, int] | None, after: tuple[int, int] | None, last: tuple[int, int]) -> str:
    """Where the kill landed, from the checkpoint before the process and after the kill."""
    if after == last:
        return "after training (last checkpoint written: final test, plots, report)"
    if after != before:
        return "training"
    return "start-up or first step (checkpoint unchanged)"


def soak(name: str, command: list[str], out: Path, kills: int, rng: random.Random, log=print) -> Scenario:
    s = Scenario(name, command)
    tic = time.perf_counter()
    verb = command[0]
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    # The reference: never killed; its time from taking the lock to exiting scales the kill moments.
    ref = out / "reference"
    proc = cnnkit([*command, "--out", str(out), "--name", "reference"], logs / f"{name}-reference.txt")
    wait_until(lambda: holds_lock(ref, proc.pid), proc)
    locked = time.perf_counter()
    if proc.wait() != 0:
        raise RuntimeError(f"the reference run failed: {(logs / f'{name}-reference.txt').read_text()[-2000:]}")
    window = time.perf_counter() - locked
    s.reference_seconds = round(window, 1)
    total_epochs = json.loads((ref / "summary.json").read_text())["epochs"]
    last = (total_epochs, 0)
    log(f"[{name}] reference: {window:.1f}s from lock to exit; kill moments uniform in [0, {window:.1f}] s")

    while s.kills < kills:
        s.chains += 1
        run_name = f"soaked-{s.chains}"
        run = out / run_name
        args = [*command, "--out", str(out), "--name", run_name]
        for attempt in range(1, 10_000):
            log_file = logs / f"{name}-{run_name}-{attempt}.txt"
            before = position(run)
            proc = cnnkit(args, log_file)
            if attempt == 1:  # a kill before the first checkpoint would leave nothing to resume
                ready = wait_until(functools.partial(Path.is_file, run / "last" / "checkpoint.pt"), proc)
            else:
                ready = wait_until(functools.partial(holds_lock, run, proc.pid), proc)
            aim = None
            if ready and s.kills < kills:  # with the kills used up, this one finishes the run
                if s.kills % 2 == 1:  # every other kill: at the next write of a target file
                    live = [t for t in TARGETS if s.aims_missed[t] < 2]
                    aim = live[s.kills // 2 % len(live)]
                    if wait_until(functools.partial(writing, run, aim), proc, every=0.001):
                        proc.send_signal(signal.SIGKILL)
                    else:
                        s.aims_missed[aim] += 1  # too quick to see, or never written again in this run
                else:
                    delay = rng.uniform(0, window)
                    try:
                        proc.wait(timeout=delay)
                    except subprocess.TimeoutExpired:
                        proc.send_signal(signal.SIGKILL)
            if proc.wait() == 0:
                break  # the run completed (before its kill came, or with no kill left)
            if proc.returncode != -signal.SIGKILL:
                raise RuntimeError(f"{log_file} ended with {proc.returncode}: {log_file.read_text()[-2000:]}")
            s.kills += 1
            after = position(run)
            s.kills_by_phase[phase_of_kill(before, after, last)] += 1
            files = [p for p in run.rglob("*") if p.is_file()]
            temporary = [p for p in files if is_temporary(p)]
            for p in temporary:
                s.kills_mid_write[str(p.parent.relative_to(run) / _TEMPORARY_NAME.sub(r"\1", p.name))] += 1
            for p in files:
                if p not in temporary and p.name != ".lock" and (why := not_whole(p)):
                    s.half_written.append(f"{run_name}/{p.relative_to(run)}: {why}")
            if not (out / "latest").resolve().is_dir():
                s.bad_latest += 1
            how = f"at the write of {aim}" if aim else f"{delay:.2f} s in"
            if aim:
                s.kills_aimed[aim] += 1
            s.log.append({"kill": s.kills, "run": run_name, "process": attempt, "when": how,
                          "checkpoint_before": before, "checkpoint_after": after,
                          "temporaries": [str(p.relative_to(run)) for p in temporary]})
            log(f"[{name}] kill {s.kills}/{kills} {how} ({run_name}, process {attempt}): checkpoint "
                f"{before} -> {after}; mid-write: {[str(p.relative_to(run)) for p in temporary] or 'no'}")
            if (run / "summary.json").is_file():  # killed after its last write: complete, nothing to resume
                break
            args = [verb, "--resume", str(run)]
            s.resumes += 1
        s.leftovers += [f"{run_name}/{p.relative_to(run)}" for p in run.rglob("*")
                        if p.is_file() and (is_temporary(p) or p.name == ".lock")]
        diffs = same_as(run, ref)
        if diffs:
            s.mismatches.append(f"{run_name}: {', '.join(diffs)}")
        log(f"[{name}] {run_name} complete after {attempt} process(es): "
            f"{'identical to the reference' if not diffs else 'DIFFERS: ' + ', '.join(diffs)}")
    s.seconds = round(time.perf_counter() - tic, 1)
    return s


def cpu_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    return model, flags


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs per scenario (default 20)")
    p.add_argument("--scenarios", default="digits,fashion,finetune", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", help="folder for the runs and logs (default: a temporary one, removed)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    sys.path.insert(0, str(SRC))
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    rng = random.Random(args.seed)
    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cnnkit-faults-"))
    results = []
    try:
        for name in names:
            out = base / name
            command = list(SCENARIOS[name])
            if "{donor}" in command:
                donor = base / "donor" / "donor"
                if not (donor / "summary.json").is_file():
                    (base / "donor").mkdir(parents=True, exist_ok=True)
                    proc = cnnkit([*DONOR, "--out", str(base / "donor"), "--name", "donor"], base / "donor" / "log.txt")
                    if proc.wait() != 0:
                        raise RuntimeError((base / "donor" / "log.txt").read_text()[-2000:])
                command = [str(donor) if a == "{donor}" else a for a in command]
            results.append(soak(name, command, out, args.kills, rng))
    finally:
        if not args.out:
            shutil.rmtree(base, ignore_errors=True)
    model, flags = cpu_flags()
    print(f"\nmachine: {model}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"command: {' '.join(['python', 'benchmarks/faults.py', *sys.argv[1:]])}")
    print("| scenario | kills | resumes | chains | mismatches | half-written files | leftovers | kills mid-write | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in results:
        print(f"| {s.name} | {s.kills} | {s.resumes} | {s.chains} | {len(s.mismatches)} | {len(s.half_written)} | "
              f"{len(s.leftovers)} | {sum(s.kills_mid_write.values())} | {s.seconds:.0f} |")
    for s in results:
        print(f"{s.name}: kills by phase {dict(s.kills_by_phase)}; aimed at writes {dict(s.kills_aimed)} "
              f"(missed {dict(s.aims_missed)}); left mid-write {dict(s.kills_mid_write)}"
              + (f"; MISMATCHES {s.mismatches}" if s.mismatches else "")
              + (f"; HALF-WRITTEN {s.half_written}" if s.half_written else "")
              + (f"; LEFTOVERS {s.leftovers}" if s.leftovers else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": " ".join(["python", "benchmarks/faults.py", *sys.argv[1:]]),
            "machine": {"cpu": model, "cores": os.cpu_count(), "flags": flags, "python": platform.python_version()},
            "scenarios": [{**asdict(s), "kills_mid_write": dict(s.kills_mid_write),
                           "kills_by_phase": dict(s.kills_by_phase), "kills_aimed": dict(s.kills_aimed),
                           "aims_missed": dict(s.aims_missed)} for s in results],
        }, indent=2) + "\n")
    failed = any(s.mismatches or s.half_written or s.leftovers or s.bad_latest for s in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
