#!/usr/bin/env python3
"""Where a segmentation run's errors are: from the test confusion matrix of a run's last step
(results.json), the share of item pixels (every class but background, label 0) predicted as
background, as another item class, or right; the class-agnostic item IoU (items vs background);
the mIoU the run would have if no item pixel were given another item's class; and the largest
confusions. Usage: python3 scripts/confusion_summary.py RUN/METHOD/results.json"""
import json
import sys


def main(path):
    with open(path) as f:
        r = json.load(f)
    test = r["steps"][-1]["test"]
    cm = [[float(v) for v in row] for row in test["confusion"]]  # rows: truth, columns: prediction
    names = r["class_names"]
    n = len(cm)

    def miou(m):
        ious = []
        for c in range(n):
            union = sum(m[c]) + sum(m[i][c] for i in range(n)) - m[c][c]
            ious.append(m[c][c] / union if union > 0 else float("nan"))
        return sum(ious) / n, ious

    score, ious = miou(cm)
    items = sum(sum(cm[i]) for i in range(1, n))
    as_background = sum(cm[i][0] for i in range(1, n))
    right = sum(cm[i][i] for i in range(1, n))
    background_as_item = sum(cm[0][1:])
    tp = sum(sum(cm[i][1:]) for i in range(1, n))
    print(f"{path}: test mIoU {100 * score:.1f} %")
    print("per-class IoU: " + ", ".join(f"{names[c]} {100 * ious[c]:.1f}" for c in range(n)))
    print(f"item pixels: {100 * right / items:.1f} % right, {100 * (items - right - as_background) / items:.1f} % "
          f"another item class, {100 * as_background / items:.1f} % background; background pixels called an "
          f"item: {100 * background_as_item / sum(cm[0]):.1f} %")
    print(f"class-agnostic item IoU: {100 * tp / (tp + background_as_item + as_background):.1f} %")
    fixed = [row[:] for row in cm]
    for i in range(1, n):
        fixed[i] = [fixed[i][0]] + [0.0] * (n - 1)
        fixed[i][i] = sum(cm[i][1:])
    print(f"mIoU if no item were given another item's class: {100 * miou(fixed)[0]:.1f} %")
    pairs = sorted(((cm[i][j] / sum(cm[i]), names[i], names[j]) for i in range(1, n) for j in range(1, n) if i != j),
                   reverse=True)
    print("largest confusions (share of the true class's pixels): " +
          ", ".join(f"{t} -> {p} {100 * s:.1f} %" for s, t, p in pairs[:6]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
