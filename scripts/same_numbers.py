#!/usr/bin/env python3
"""Compares two output folders of `scripts/same_numbers.sh run`: every metrics.jsonl line and
every results.json / scenario.json value must be identical, except the measured times and memory
(which no two runs share) and paths that name the output folder itself. Exit 0 when everything
matches, 1 with the first differences listed otherwise."""
import json
import pathlib
import sys

# Measurements of the machine, not of the training: left out of the comparison.
TIMING = {"train_seconds", "images_per_second", "iteration_ms", "peak_rss_mb", "data_wait_fraction",
          "eval_seconds", "latency_ms_median", "latency_ms_p90", "seconds"}


def normalise(value, root):
    if isinstance(value, dict):
        return {k: normalise(v, root) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [normalise(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<out>")
    return value


def differences(a, b, where, out):
    if type(a) != type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        out.append(f"{where}: {a!r} vs {b!r}")
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'the first' if k in a else 'the second'}")
            else:
                differences(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} vs {len(b)} entries")
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {a!r} vs {b!r}")


def read(path, root):
    if path.suffix == ".jsonl":
        return [normalise(json.loads(line), root) for line in path.read_text().splitlines() if line.strip()]
    return normalise(json.loads(path.read_text()), root)


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} OUT_BEFORE OUT_AFTER")
    first, second = (pathlib.Path(p).resolve() for p in sys.argv[1:])
    names = ("metrics.jsonl", "results.json", "scenario.json")
    files = sorted({p.relative_to(first) for n in names for p in first.rglob(n)} |
                   {p.relative_to(second) for n in names for p in second.rglob(n)})
    if not files:
        sys.exit(f"no metrics.jsonl, results.json or scenario.json under {first}")
    found = []
    for rel in files:
        a, b = first / rel, second / rel
        if not a.exists() or not b.exists():
            found.append(f"{rel}: only in {first if a.exists() else second}")
            continue
        differences(read(a, str(first)), read(b, str(second)), str(rel), found)
    for line in found[:40]:
        print(line)
    if found:
        print(f"{len(found)} difference(s) in {len(files)} files")
        sys.exit(1)
    print(f"identical: {len(files)} files (times and memory left out)")


if __name__ == "__main__":
    main()
