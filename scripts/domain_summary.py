#!/usr/bin/env python3
"""Summarises domain-incremental runs over seeds (docs/domain_incremental.md quotes it).

    python3 scripts/domain_summary.py RUNS_DIR [RUNS_DIR ...] [--reference EXPERIMENT]
                                      [--compare "METHOD (EXPERIMENT)" "METHOD (EXPERIMENT)"]
    python3 scripts/domain_summary.py RUNS_DIR [...] --archive OUT_DIR

Reads every results.json under the folders (a suite's runs: one per method and seed) and prints,
per method, mean +- std over seeds of: the source model (the row after the last labelled
environment) on each unlabelled environment, the same environment after its own step and at the
end, the labelled environments at the end, ACC / BWT / FWT, the pseudo-labels' accuracy, the
detector's delay, false alarms and what each signal saw when it ran, and time and memory per unlabelled step. Then the
paired t-tests (same seeds) that answer the questions: does each unlabelled step raise its
environment over the source model, and does a method keep the labelled environments better than
fine-tuning. `--reference EXPERIMENT` also tests every row against the same method in that
experiment (a variant against its base, e.g. a cue added, a buffer setting changed), and
`--compare A B` one row against another (e.g. image against latent replay at equal bytes); the
folders of both must be given. Two-sided, p < 0.05, no correction for multiple comparisons; pure
Python. `--archive OUT_DIR` copies what the tables read of every finished run (a few KB each, the
same folder layout) to OUT_DIR, which this script then reads like run folders: the record a
later session can tabulate without the runs (docs/results/ keeps the documented ones).
"""
import json
import math
import statistics
import sys
from pathlib import Path

# Two-sided 5 % critical values of Student's t for 1..10 degrees of freedom (published tables).
T_CRIT = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def paired(a, b):
    """Paired t-test of a - b over the seeds both have: (mean difference, t, significant)."""
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds]
    if len(d) < 2:  # one shared seed: the difference as a direction, no test
        return (d[0] if d else float("nan")), float("nan"), False
    mean = statistics.mean(d)
    sd = statistics.stdev(d)
    if sd == 0:
        return mean, math.inf if mean else 0.0, mean != 0
    t = mean / (sd / math.sqrt(len(d)))
    return mean, t, abs(t) > T_CRIT.get(len(d) - 1, 1.96)


def pm(values):
    v = list(values)
    if not v:
        return "—"
    if len(v) == 1:
        return f"{100 * v[0]:.1f}"
    return f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}"


def load(folders):
    runs = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("results.json")):
            j = json.loads(path.read_text())
            if j.get("type") != "domain" or len(j["steps"]) != len(j["environments"]):
                continue  # not a domain run, or unfinished
            # One row per experiment and method (a suite may hold several experiments).
            runs.setdefault(f"{j['method']} ({j.get('experiment', '')})", {})[j.get("seed", 0)] = j
    return runs


# What the tables read of a run; the rest of results.json (confusion matrices, per-class IoU,
# timing series) stays in the run folder.
RUN_KEYS = ("schema", "type", "experiment", "method", "seed", "environments", "accuracy_matrix", "acc", "bwt", "fwt",
            "detection", "cost")
STEP_KEYS = ("step", "train_seconds", "iteration_ms", "peak_rss_mb", "pseudo_labels", "detection", "method_stats",
             "shared_step0", "iterations")


def archive(folders, out):
    n = 0
    for folder in folders:
        for path in sorted(Path(folder).rglob("results.json")):
            j = json.loads(path.read_text())
            if j.get("type") != "domain" or len(j["steps"]) != len(j["environments"]):
                continue
            small = {k: j[k] for k in RUN_KEYS if k in j}
            small["steps"] = [{k: s[k] for k in STEP_KEYS if k in s} for s in j["steps"]]
            dest = Path(out) / path.relative_to(folder).parent / "results.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".json.tmp")  # a killed archive leaves no half-written record
            tmp.write_text(json.dumps(small, indent=1) + "\n")
            tmp.replace(dest)
            n += 1
    print(f"archived {n} finished domain runs under {out}")


def compare_rows(name, a_runs, b_runs, envs, labelled, unlabelled, last):
    """Paired differences a - b: each unlabelled environment after its own step, every
    environment at the end, ACC and BWT."""
    def cell(j, row, col):
        return j["accuracy_matrix"][row][col]

    out = []
    for label, pick in ([(f"{envs[r]} own step", lambda j, r=r: cell(j, r, r)) for r in unlabelled]
                        + [(f"{envs[i]} end", lambda j, i=i: cell(j, last, i)) for i in labelled + unlabelled]
                        + [(k.upper(), lambda j, k=k: j[k]) for k in ("acc", "bwt")]):
        d, t, sig = paired({s: pick(j) for s, j in a_runs.items()}, {s: pick(j) for s, j in b_runs.items()})
        out.append(f"{label} {100 * d:+.1f}{'*' if sig else ''}")
    seeds = len(set(a_runs) & set(b_runs))
    print(f"- {name} ({seeds} seeds): " + ", ".join(out))


def main(folders, reference=None, pairs=()):
    runs = load(folders)
    if not runs:
        sys.exit(f"no finished domain runs under {', '.join(folders)}")
    any_run = next(iter(next(iter(runs.values())).values()))
    envs = [e["name"] for e in any_run["environments"]]
    labelled = [i for i, e in enumerate(any_run["environments"]) if e["labelled"]]
    unlabelled = [i for i, e in enumerate(any_run["environments"]) if not e["labelled"]]
    src = max(labelled)  # the source model: after the last labelled environment
    last = len(envs) - 1

    def cell(j, row, col):
        return j["accuracy_matrix"][row][col]

    print(f"Environments: {', '.join(envs)}; source model = row after '{envs[src]}'. mIoU %, mean ± std over seeds.\n")
    print("| method | seeds | " + " | ".join(f"{envs[r]}: source → own step → end" for r in unlabelled)
          + " | " + " / ".join(envs[i] for i in labelled) + " at end | ACC | BWT | FWT |")
    print("|---" * (4 + len(unlabelled) + 3) + "|")
    for method, by_seed in runs.items():
        js = list(by_seed.values())
        cols = []
        for r in unlabelled:
            cols.append(" → ".join(pm(cell(j, row, r) for j in js) for row in (src, r, last)))
        kept = " / ".join(pm(cell(j, last, i) for j in js) for i in labelled)
        print(f"| {method} | {len(js)} | " + " | ".join(cols) + f" | {kept} | "
              + " | ".join(pm(j[k] for j in js if j.get(k) is not None) for k in ("acc", "bwt", "fwt")) + " |")

    print(f"\nThe source model (after '{envs[src]}') on every environment, and the first environment's model on its own:")
    for method, by_seed in runs.items():
        js = list(by_seed.values())
        print(f"- {method}: " + ", ".join(f"{e} {pm(cell(j, src, i) for j in js)}" for i, e in enumerate(envs))
              + f"; {envs[0]} after its own step {pm(cell(j, 0, 0) for j in js)}")

    print("\nPseudo-labels of the teacher against the masks (score_pseudo_labels): share right among the labelled pixels, mean over seeds")
    for method, by_seed in runs.items():
        parts = []
        for r in unlabelled:
            acc = [j["steps"][r]["pseudo_labels"]["score"]["accuracy"] for j in by_seed.values()
                   if isinstance(j["steps"][r].get("pseudo_labels"), dict) and "score" in j["steps"][r]["pseudo_labels"]]
            if acc:
                parts.append(f"{envs[r]} {pm(acc)}")
        if parts:
            print(f"- {method}: " + ", ".join(parts))

    detected = {m: s for m, s in runs.items() if any(j.get("detection") for j in s.values())}
    if detected:
        print("\nNew-environment detector (adaptation.detect): per unlabelled environment, delay in frames (seeds) and false alarms")
        for method, by_seed in detected.items():
            parts = []
            for r in unlabelled:
                d = [j["steps"][r]["detection"] for j in by_seed.values()]
                delays = ["missed" if not x["detected"] else str(x["delay_frames"]) for x in d]
                parts.append(f"{envs[r]} delay {', '.join(delays)}, false alarms {', '.join(str(x['false_alarms']) for x in d)}")
            print(f"- {method}: " + "; ".join(parts))
            # What each signal saw: its mean over the known room's frames -> over the new room's
            # (uncertainty: normalised entropy; features: z-score), per seed.
            def by_signal(j, r):
                return (j["steps"][r].get("detection") or {}).get("by_signal", {})

            for signal in sorted({k for j in by_seed.values() for r in unlabelled for k in by_signal(j, r)}):
                seen = []
                for r in unlabelled:
                    d = [by_signal(j, r).get(signal) for j in by_seed.values()]
                    means = [f"{x['history_mean']:.2f} -> {x['arriving_mean']:.2f}" for x in d if x]
                    seen.append(f"{envs[r]} {', '.join(means)}")
                print(f"  {signal}, known room -> new room (per seed): " + "; ".join(seen))

    print("\nCost per unlabelled step (mean over seeds and steps): training seconds, median iteration ms, peak MiB")
    for method, by_seed in runs.items():
        steps = [j["steps"][r] for j in by_seed.values() for r in unlabelled]
        sec = statistics.mean(s["train_seconds"] for s in steps)
        med = [s["iteration_ms"]["median"] for s in steps if s.get("iteration_ms") and s["iteration_ms"].get("median")]
        rss = max(s.get("peak_rss_mb", 0) for s in steps)
        print(f"- {method}: {sec:.0f} s, {statistics.mean(med) if med else float('nan'):.0f} ms, {rss:.0f} MiB")

    print("\nPaired t-tests over seeds (difference in points; * = p < 0.05):")
    for method, by_seed in runs.items():
        out = []
        for r in unlabelled:
            own = {s: cell(j, r, r) for s, j in by_seed.items()}
            end = {s: cell(j, last, r) for s, j in by_seed.items()}
            source = {s: cell(j, src, r) for s, j in by_seed.items()}
            for name, v in (("own step", own), ("end", end)):
                d, t, sig = paired(v, source)
                out.append(f"{envs[r]} {name} − source {100 * d:+.1f}{'*' if sig else ''}")
        print(f"- {method}: " + ", ".join(out))
    # Each method against fine-tuning of the same experiment.
    for method, by_seed in runs.items():
        experiment = method[method.index("(") :]
        ft = runs.get(f"finetune {experiment}")
        if ft is None or ft is by_seed:
            continue
        out = []
        for i in labelled + unlabelled[:-1]:
            a = {s: cell(j, last, i) for s, j in by_seed.items()}
            b = {s: cell(j, last, i) for s, j in ft.items()}
            d, t, sig = paired(a, b)
            out.append(f"{envs[i]} {100 * d:+.1f}{'*' if sig else ''}")
        for k in ("acc", "bwt"):
            d, t, sig = paired({s: j[k] for s, j in by_seed.items()}, {s: j[k] for s, j in ft.items()})
            out.append(f"{k.upper()} {100 * d:+.1f}{'*' if sig else ''}")
        print(f"- {method} − finetune at the end: " + ", ".join(out))

    if reference or pairs:
        print("\nPaired t-tests between rows (a − b, points; * = p < 0.05):")
    if reference:
        for method, by_seed in runs.items():
            base = runs.get(f"{method[: method.index(' (')]} ({reference})")
            if base is not None and base is not by_seed:
                compare_rows(f"{method} − {reference}", by_seed, base, envs, labelled, unlabelled, last)
    for a, b in pairs:
        missing = [r for r in (a, b) if r not in runs]
        if missing:
            sys.exit(f"--compare: no finished runs for {', '.join(missing)}; rows are: {', '.join(runs)}")
        compare_rows(f"{a} − {b}", runs[a], runs[b], envs, labelled, unlabelled, last)


if __name__ == "__main__":
    args, reference, pairs, out = sys.argv[1:], None, [], None
    folders = []
    while args:
        a = args.pop(0)
        if a == "--archive" and args:
            out = args.pop(0)
        elif a == "--reference" and args:
            reference = args.pop(0)
        elif a == "--compare" and len(args) >= 2:
            pairs.append((args.pop(0), args.pop(0)))
        elif a.startswith("--"):
            sys.exit(f"unknown or incomplete option '{a}'\n{__doc__}")
        else:
            folders.append(a)
    if not folders:
        sys.exit(__doc__)
    if out:
        archive(folders, out)
    else:
        main(folders, reference, pairs)
