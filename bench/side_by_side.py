#!/usr/bin/python3
"""Runs cseg and Python PyTorch side by side on the same workloads, several times each and
interleaved (so drifts in machine speed hit both alike), and writes the table of ratios into
bench/README.md between the side-by-side markers.

  /usr/bin/python3 bench/side_by_side.py [--reps 3] [--only SUBSTRING] [--build build]
                                          [--readme bench/README.md] [--raw FILE]

Needs Debian's python3-torch and python3-torchvision (`bash scripts/setup.sh --bench`) and a
built cseg (`bash scripts/build.sh`). Both sides use 2 intra-op threads and the same BLAS. Python
runs twice per workload: as installed (glibc malloc's defaults) and with glibc's allocator tuned
through the environment (the setting cseg applies with mallopt at start-up). Memory is the peak
resident set size each process reports (ru_maxrss); a DataLoader's worker processes add their
peak proportional set size (PSS, so pages shared with the main process are not counted twice),
sampled every 0.5 s: sampling faster would take CPU time from the 2 cores being measured.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184",
                "MALLOC_TOP_PAD_": "1073741824"}
DATA = "data/bench-scenes-512"

# (key, label, arguments, metric). metric: median_ms (lower is better) or images_per_second.
WORKLOADS = [
    ("fs_infer_1024x2048", "Fast-SCNN inference 1024×2048", ["infer", "model=fast_scnn", "size=1024x2048",
                                                             "runs=10"], "median_ms"),
    ("fs_infer_512x1024", "Fast-SCNN inference 512×1024", ["infer", "model=fast_scnn", "size=512x1024",
                                                           "runs=20"], "median_ms"),
    ("fs_train_b8_256", "Fast-SCNN training, batch 8, 256²", ["train", "model=fast_scnn", "size=256", "batch=8",
                                                              "iters=15", "warmup=3"], "images_per_second"),
    ("fs_train_b4_512", "Fast-SCNN training, batch 4, 512²", ["train", "model=fast_scnn", "size=512", "batch=4",
                                                              "iters=10", "warmup=2"], "images_per_second"),
    ("dl_train_b4_256", "DeepLabV3-R50 training, batch 4, 256²", ["train", "model=deeplabv3", "size=256",
                                                                  "batch=4", "classes=21", "iters=4", "warmup=1"],
     "images_per_second"),
    ("dl_infer_512", "DeepLabV3-R50 inference 512²", ["infer", "model=deeplabv3", "size=512", "classes=21",
                                                      "runs=4", "warmup=1"], "median_ms"),
    ("files_train_b8_256", "Fast-SCNN training from JPEG/PNG files, batch 8, 256² crops",
     ["train_files", f"data_root={DATA}", "size=256", "batch=8", "iters=30", "warmup=4"], "images_per_second"),
]
# cseg runs with its defaults (for inference BN folded and channels-last weights; training in
# NCHW float32, loading in the training thread); Python as users run it (NCHW, a DataLoader with
# one worker process per core).
CSEG_EXTRA = {"files_train_b8_256": ["workers=0"]}
PYTHON_EXTRA = {"files_train_b8_256": ["workers=2"]}
# Variants shown as extra rows: what each of cseg's choices is worth.
VARIANTS = [
    ("fs_infer_1024x2048", "cseg, BN not folded", ["fold_bn=0"]),
    ("fs_infer_1024x2048", "cseg, NCHW weights", ["channels_last=0"]),
    ("fs_infer_1024x2048", "cseg, NCHW, BN not folded, malloc untuned", ["channels_last=0", "fold_bn=0", "tune_malloc=0"]),
    ("fs_infer_512x1024", "cseg, NCHW weights", ["channels_last=0"]),
    ("fs_train_b8_256", "cseg, channels-last training", ["train_channels_last=1"]),
    ("fs_train_b8_256", "cseg, bf16 autocast", ["precision=bf16"]),
    ("dl_train_b4_256", "cseg, feature taps kept (PLOP, ILT, replay...)", ["taps=1"]),
    ("dl_train_b4_256", "cseg, channels-last training", ["train_channels_last=1"]),
    ("dl_train_b4_256", "cseg, bf16 autocast", ["precision=bf16"]),
    ("dl_infer_512", "cseg, NCHW weights", ["channels_last=0"]),
    ("files_train_b8_256", "cseg, 1 loader thread", ["workers=1"]),
]


def descendants_pss_kb(pid):
    """PSS of all descendants of a process (not the process itself), in kB."""
    total, todo, first = 0, [pid], True
    while todo:
        p = todo.pop()
        try:
            if not first:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError, StopIteration):
            pass
        first = False
    return total


def run(cmd, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out_file, stderr=err_file, text=True)
        workers_peak = 0
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                workers_peak = max(workers_peak, descendants_pss_kb(proc.pid))
        out_file.seek(0), err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = result["peak_rss_mb"] + workers_peak / 1024
    return result


def ensure_data(cseg):
    if not os.path.exists(os.path.join(ROOT, DATA, "ImageSets", "Segmentation", "train.txt")):
        print(f"making {DATA} (256 FMNIST-Scenes at 512x512)", flush=True)
        subprocess.run([cseg, "data", "fmnist-scenes", "--out", DATA, "--size", "512", "--train", "256", "--val", "8",
                        "--test", "8", "--min-items", "6", "--max-items", "14"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)


def continual_steps(cseg, reps):
    """Seconds per iteration of step 1 (the first continual step) for fine-tuning, MiB, PLOP and
    replay, from results.json of real `cseg train` runs (bench/continual_step.yaml), taking each
    run's median iteration. The machine's speed drifts over tens of seconds by more than the
    methods differ (fine-tuning 42-56 ms per iteration in one session), so every method run sits
    between two fine-tuning runs and is compared with their mean: ft, mib, ft, plop, ft, replay,
    ft, mib, ... (each repetition adds one run of each method)."""
    def train(method, tag):
        d = f"/tmp/cseg-bench-continual/{method}-{tag}"
        subprocess.run(["rm", "-rf", d])
        subprocess.run([cseg, "train", "-c", "bench/continual_step.yaml", f"methods=[{method}]", f"output_dir={d}"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(f"{d}/{method}/results.json") as f:
            s = json.load(f)["steps"][1]
        run = {"s_per_iter": s["iteration_ms"]["median"] / 1000,
               "images_per_iter": s["images_per_second"] * s["train_seconds"] / s["iterations"],
               "peak_rss_mb": s["peak_rss_mb"]}
        print(f"  continual step, {method}: {run['s_per_iter'] * 1000:.1f} ms/iteration", flush=True)
        return run

    out = {"finetune": [train("finetune", 0)]}
    for rep in range(reps):
        for method in ["mib", "plop", "replay"]:
            before = out["finetune"][-1]
            run = train(method, rep)
            after = train("finetune", len(out["finetune"]))
            out["finetune"].append(after)
            run["reference"] = {k: (before[k] + after[k]) / 2 for k in ("s_per_iter", "images_per_iter")}
            out.setdefault(method, []).append(run)
    for run in out["finetune"]:
        run["reference"] = {k: run[k] for k in ("s_per_iter", "images_per_iter")}
    return out


def interleaved_steps(build, reps):
    """bench_continual_step's ratios, one run per repetition: the methods interleaved iteration by
    iteration in one process, so the machine's drift hits them alike."""
    out = {}
    for rep in range(reps):
        proc = subprocess.run([os.path.join(ROOT, build, "bench_continual_step")], cwd=ROOT, check=True,
                              capture_output=True, text=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        for method, r in result.items():
            out.setdefault(method, []).append(r)
        print("  continual step, interleaved: " + ", ".join(f"{m} {r['ratio']:.2f}×" for m, r in result.items()),
              flush=True)
    return out


def fmt(v, metric):
    return f"{v:.1f} ms" if metric == "median_ms" else f"{v:.2f} img/s"


def speedup(cseg, other, metric):
    """How many times faster cseg is than `other`."""
    return other / cseg if metric == "median_ms" else cseg / other


def table(results, continual, reps):
    med = lambda rows, k: statistics.median(r[k] for r in rows)
    lines = ["| workload | cseg | PyTorch | PyTorch, tuned malloc | speed vs PyTorch | vs tuned | "
             "peak MB cseg / PyTorch / tuned |", "|---|---|---|---|---|---|---|"]
    for key, label, _, metric in WORKLOADS:
        if key not in results:
            continue
        r = results[key]
        c, p, t = med(r["cseg"], metric), med(r["pytorch"], metric), med(r["pytorch_tuned"], metric)
        mem = " / ".join(f"{med(r[s], 'peak_mb'):.0f}" for s in ("cseg", "pytorch", "pytorch_tuned"))
        lines.append(f"| {label} | {fmt(c, metric)} | {fmt(p, metric)} | {fmt(t, metric)} | "
                     f"**{speedup(c, p, metric):.2f}×** | **{speedup(c, t, metric):.2f}×** | {mem} |")
        for vkey, vlabel, _ in VARIANTS:
            if vkey == key and vlabel in r:
                v = med(r[vlabel], metric)
                lines.append(f"| ↳ {vlabel} | {fmt(v, metric)} | | | {speedup(v, p, metric):.2f}× | "
                             f"{speedup(v, t, metric):.2f}× | {med(r[vlabel], 'peak_mb'):.0f} |")
    if "dl_train_b4_256" in results:
        # Training ~ 3 forward passes (forward, and backward's two products per layer); 40.9 G
        # multiply-adds per 256x256 forward of DeepLabV3-R50; 2 FLOP per multiply-add.
        r = results["dl_train_b4_256"]
        flop_per_image = 3 * 40.9e9 * 2
        shares = [f"{s} {med(r[s], 'images_per_second') * flop_per_image / 1e9:.0f} GFLOP/s "
                  f"({med(r[s], 'images_per_second') * flop_per_image / 290e9:.0%})"
                  for s in ("cseg", "pytorch", "pytorch_tuned")]
        lines += ["", "DeepLabV3-R50 training against the oneDNN ceiling of ≈290 GFLOP/s on 2 threads "
                  "(3 × 40.9 G multiply-adds per image): " + ", ".join(shares) + "."]
    if continual:
        # Interleaved: bench_continual_step's per-process medians. Whole runs: each method run
        # against the mean of the fine-tuning runs just before and after it.
        whole, inter = continual["whole_runs"], continual["interleaved"]
        lines += ["", "Continual step (step 1 of `bench/continual_step.yaml`: Fast-SCNN, batch 8 at 96²). "
                  "Interleaved: `build/bench_continual_step`, each method's median iteration over 60 rounds in "
                  "which every method trains one iteration in turn on the same batch. Whole runs: real `cseg "
                  "train` runs, the run's median iteration against the mean of the fine-tuning runs just "
                  "before and after it. Costs are medians over the repetitions (range):", "",
                  "| method | interleaved: ms per iteration | cost vs fine-tuning | cost per image "
                  "(replayed ones included) | whole runs: ms per iteration | cost vs fine-tuning | peak MB |",
                  "|---|---|---|---|---|---|---|"]
        med = statistics.median
        for m, rows in whole.items():
            ratios = [x["s_per_iter"] / x["reference"]["s_per_iter"] for x in rows]
            i_rows = inter.get(m, [])
            i_ratio = [x["ratio"] for x in i_rows]
            i_image = [x["ratio_per_image"] for x in i_rows]
            span = lambda v: f"**{med(v):.2f}×** ({min(v):.2f}–{max(v):.2f})" if v else "–"
            lines.append(f"| {m} | {med(x['median_ms'] for x in i_rows) if i_rows else float('nan'):.1f} | "
                         f"{span(i_ratio)} | {span(i_image)} | {med(x['s_per_iter'] for x in rows) * 1000:.1f} | "
                         f"{span(ratios)} | {med(x['peak_rss_mb'] for x in rows):.0f} |")
    lines.append("")
    lines.append(f"Medians of {reps} runs per cell, cseg and Python interleaved.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="run only workloads whose key contains this, or 'continual' for "
                    "the continual-step runs alone (no README update)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--readme", default=os.path.join(HERE, "README.md"))
    ap.add_argument("--raw", default="", help="also write every measurement as JSON here")
    ap.add_argument("--no-continual", action="store_true")
    args = ap.parse_args()
    cseg = os.path.join(ROOT, args.build, "cseg")
    bench = os.path.join(ROOT, args.build, "bench_side_by_side")
    for f in (cseg, bench):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: build first (bash scripts/build.sh)")
    ensure_data(cseg)
    python = ["/usr/bin/python3", os.path.join(HERE, "pytorch_side.py")]
    results = {}
    started = time.time()
    for rep in range(args.reps):
        for key, label, wargs, metric in WORKLOADS:
            if args.only not in key:
                continue
            r = results.setdefault(key, {})
            sides = [("cseg", [bench] + wargs + CSEG_EXTRA.get(key, []), None),
                     ("pytorch", python + wargs + PYTHON_EXTRA.get(key, []), None),
                     ("pytorch_tuned", python + wargs + PYTHON_EXTRA.get(key, []), TUNED_MALLOC)]
            sides += [(vlabel, [bench] + wargs + CSEG_EXTRA.get(key, []) + vargs, None)
                      for vkey, vlabel, vargs in VARIANTS if vkey == key]
            for side, cmd, env in sides:
                m = run(cmd, env)
                r.setdefault(side, []).append(m)
                print(f"[{rep + 1}/{args.reps} {time.time() - started:5.0f}s] {label}, {side}: {fmt(m[metric], metric)}, "
                      f"{m['peak_mb']:.0f} MB", flush=True)
            params = {r[s][-1]["params"] for s in ("cseg", "pytorch")}
            if len(params) != 1:
                sys.exit(f"{label}: the two models differ in size ({sorted(params)} parameters)")
    # --only continual: just the continual-step runs (also no README update).
    wants_continual = not args.no_continual and (not args.only or args.only == "continual")
    continual = ({"interleaved": interleaved_steps(args.build, args.reps), "whole_runs": continual_steps(cseg, args.reps)}
                 if wants_continual else {})
    text = table(results, continual, args.reps)
    print(text)
    if args.raw:
        with open(args.raw, "w") as f:
            json.dump({"workloads": results, "continual": continual}, f, indent=1)
    if not args.only:
        with open(args.readme) as f:
            readme = f.read()
        begin, end = "<!-- side-by-side:begin -->", "<!-- side-by-side:end -->"
        if begin not in readme or end not in readme:
            sys.exit(f"{args.readme} lacks the {begin} ... {end} markers")
        head, rest = readme.split(begin, 1)
        stamp = time.strftime("%Y-%m-%d")
        body = f"\nMeasured {stamp} with `/usr/bin/python3 bench/side_by_side.py --reps {args.reps}`:\n\n{text}\n"
        with open(args.readme, "w") as f:
            f.write(head + begin + body + end + rest.split(end, 1)[1])
        print(f"wrote the table into {args.readme}")


if __name__ == "__main__":
    main()
