"""`make bench`: every benchmark of this folder, one after the other, logs into benchmarks/results/.

Training first (throughput ratio, time to accuracy), then every other
`benchmarks/*.py` script that exists, with its own defaults. Scripts whose name
says `gpu` run only where CUDA is available. Each runs in its own process (so
one's threads and caches do not colour the next); a failure is reported and the
rest still run; the exit status is 1 if any failed. The lead copies the numbers
into docs/benchmarks.md.

    python benchmarks/run_all.py                 # everything
    python benchmarks/run_all.py --only throughput,time_to_accuracy
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FIRST = ["throughput", "time_to_accuracy"]  # training's own, with their JSON outputs
SKIP = {"run_all"}


def scripts() -> list[str]:
    others = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SKIP and p.stem not in FIRST
                    and not p.stem.startswith("_"))
    return [s for s in FIRST if (HERE / f"{s}.py").exists()] + others


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated script names (without .py)")
    args = p.parse_args()
    names = args.only.split(",") if args.only else scripts()
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary, failed = {}, []
    for name in names:
        if "gpu" in name and not has_cuda():
            print(f"== {name}: skipped (needs a CUDA GPU)", flush=True)
            summary[name] = {"status": "skipped: no CUDA GPU"}
            continue
        cmd = [sys.executable, str(HERE / f"{name}.py")]
        if name in FIRST:
            cmd += ["--json", str(RESULTS / f"{name}.json")]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        tic = time.perf_counter()
        with open(RESULTS / f"{name}.log", "w", encoding="utf-8") as log:
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent)
        seconds = round(time.perf_counter() - tic, 1)
        summary[name] = {"status": "ok" if code == 0 else f"failed ({code})", "seconds": seconds,
                         "log": str((RESULTS / f"{name}.log").relative_to(HERE.parent))}
        if code:
            failed.append(name)
        tail = (RESULTS / f"{name}.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        print(f"   {summary[name]['status']} in {seconds} s; " + " | ".join(tail)[:300], flush=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)} (logs in {RESULTS})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
