#!/usr/bin/env python3
"""cseg against PyTorch eager on one GPU, side by side in one run, with issue 26's targets (figures
measured on an H200 with PyTorch 2.11 eager). scripts/gpu_check.sh runs it after the build:

    python3 bench/gpu_side_by_side.py BUILD_DIR [--quick] [--out RESULTS.json]

Each workload runs as its own process, cseg (BUILD_DIR/bench_side_by_side) then PyTorch
(bench/pytorch_side.py, the python3 on the PATH), device=cuda, each timed run ending with a device
synchronisation. Fast-SCNN is cseg's layer structure written out in Python (the targets were
measured on the Tramac reference, the same architecture); DeepLabV3-R101 is torchvision's
deeplabv3_resnet101 on the PyTorch side (skipped there when torchvision is missing). cseg runs
with its defaults (inference: batch norm folded, channels-last weights), PyTorch as users run it.
Standard library only; prints a markdown table and, with --out, the raw results.
"""
import json
import subprocess
import sys
from pathlib import Path

# name, target, unit, workload, arguments (both sides)
WORKLOADS = [
    ("Fast-SCNN inference 1024×2048, batch 1, fp32", 2.68, "ms", "infer",
     "model=fast_scnn size=1024x2048 batch=1 precision=fp32 runs=50 warmup=10"),
    ("Fast-SCNN inference 1024×2048, batch 1, fp16 autocast", 3.84, "ms", "infer",
     "model=fast_scnn size=1024x2048 batch=1 precision=fp16 runs=50 warmup=10"),
    ("Fast-SCNN inference 1024×2048, batch 16, fp16", 1102, "img/s", "infer",
     "model=fast_scnn size=1024x2048 batch=16 precision=fp16 runs=20 warmup=5"),
    ("Fast-SCNN training 512×1024, batch 16, fp32", 465, "img/s", "train",
     "model=fast_scnn size=512x1024 batch=16 precision=fp32 iters=20 warmup=5"),
    ("DeepLabV3-R101 training 512², batch 24, fp32", 72, "img/s", "train",
     "model=deeplabv3 backbone=resnet101 classes=21 size=512 batch=24 precision=fp32 iters=10 warmup=3"),
    ("DeepLabV3-R101 training 512², batch 24, fp16 AMP", 107, "img/s", "train",
     "model=deeplabv3 backbone=resnet101 classes=21 size=512 batch=24 precision=fp16 iters=10 warmup=3"),
    ("DeepLabV3-R101 training 512², batch 24, bf16 + channels-last", 153, "img/s", "train",
     "model=deeplabv3 backbone=resnet101 classes=21 size=512 batch=24 precision=bf16 train_channels_last=1 "
     "iters=10 warmup=3"),
    ("DeepLabV3-R101 inference 512², batch 1, fp32", 8.4, "ms", "infer",
     "model=deeplabv3 backbone=resnet101 classes=21 size=512 batch=1 precision=fp32 runs=50 warmup=10"),
]


def run(cmd, timeout=240):
    """The JSON line a side prints, or {'error': ...}."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {p.returncode}: {tail[0][:200]}"}
    return json.loads(lines[-1])


def figure(r, unit):
    if "error" in r:
        return None
    return r["median_ms"] if unit == "ms" else r["images_per_second"]


def faster(a, b, unit):
    """How many times faster a is than b (>1: a is faster)."""
    if a is None or b is None:
        return None
    return b / a if unit == "ms" else a / b


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    build, quick, out = Path(args[0]), "--quick" in args, None
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
    here = Path(__file__).resolve().parent
    rows, raw = [], []
    for name, target, unit, workload, arg in WORKLOADS:
        a = arg.split() + ["device=cuda", "threads=4"]
        if quick:  # a smoke run: fewer repetitions
            a = [x.replace("runs=50", "runs=5").replace("iters=20", "iters=3").replace("iters=10", "iters=3") for x in a]
        cseg = run([str(build / "bench_side_by_side"), workload] + a)
        torch_side = run([sys.executable, str(here / "pytorch_side.py"), workload] + a)
        c, t = figure(cseg, unit), figure(torch_side, unit)
        raw.append({"workload": name, "target": target, "unit": unit, "cseg": cseg, "pytorch": torch_side})
        fmt = (lambda v: "—" if v is None else (f"{v:.2f} ms" if unit == "ms" else f"{v:.0f} img/s"))
        ratio = (lambda v: "—" if v is None else f"{v:.2f}×")
        rows.append(f"| {name} | {fmt(target)} | {fmt(c) if c is not None else cseg['error']} | "
                    f"{fmt(t) if t is not None else torch_side['error']} | {ratio(faster(c, t, unit))} | "
                    f"{ratio(faster(c, target, unit))} |")
        print(f"[gpu bench] {name}: cseg {fmt(c)}, PyTorch {fmt(t)}", file=sys.stderr, flush=True)
    print("| workload | target (H200, PyTorch 2.11) | cseg | PyTorch, this machine | cseg vs PyTorch | cseg vs target |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n(× > 1: cseg faster. Targets are another machine's figures; the PyTorch column is this run's.)")
    if out:
        out.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
