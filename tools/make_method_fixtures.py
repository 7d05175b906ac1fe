#!/usr/bin/python3
"""Writes tests/data/methods/plop_reference.pt: what PLOP's reference code computes on small inputs,
for the parity tests of `method_options.plop.faithful` (tests/test_continual_methods.cpp).

Needs Debian's python3-torch; run with the system interpreter (run once; output committed):
    /usr/bin/python3 tools/make_method_fixtures.py [OUT_DIR]

The functions below restate, in this project's words, the computations of PLOP's train.py
(github.com/arthurdouillard/CVPR2021_PLOP: entropy, find_median, the entropy pseudo-labels with
the adaptive factor, the CE mean and the local POD embedding) with the same tensor types, so that
their float32 and float-border quirks are the ones the C++ side must reproduce.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "methods")


def class_mean_entropy(probs):
    """Per pixel: -(1 / log(C + 1e-8)) * mean over the C channels of p log(p + 1e-8)."""
    return -(probs * torch.log(probs + 1e-8)).mean(dim=1) / math.log(probs.shape[1] + 1e-8)


def uncertainty(old_logits, classes_after_step):
    """The reference's pseudo-label criterion: class_mean_entropy / log C_all (float32 log)."""
    scale = torch.log(torch.tensor(classes_after_step).float())
    return class_mean_entropy(torch.softmax(old_logits, dim=1)) / scale


def histogram(old_logits, labels, classes_after_step, bins=100):
    """Rows: the class the old model predicts; columns: uncertainty bins; background pixels only."""
    hist = torch.zeros(classes_after_step, bins).long()
    background = labels == 0
    predicted = torch.softmax(old_logits, dim=1).argmax(dim=1)[background].view(-1)
    values = uncertainty(old_logits, classes_after_step)[background].view(-1)
    columns = torch.clamp((values * bins).long(), max=bins - 1)
    hist.index_put_((predicted, columns), torch.ones_like(predicted), accumulate=True)
    return hist


def running_sum_median(hist, minimum):
    """The reference's median walk: the running sum grows by each bin's position, not its count."""
    bins = hist.shape[1]
    thresholds = torch.zeros(hist.shape[0], dtype=torch.float32)
    for c in range(hist.shape[0]):
        total = hist[c].sum()
        if total <= 0.0:
            continue
        half = total / 2  # a float32 tensor
        running = 0.0
        for i in range(bins):
            border = i / bins
            index = int(border * bins)
            if half >= running and half <= running + hist[c, index]:
                break
            running += border * bins
        thresholds[c] = border + ((half - running) / hist[c, index].sum()) * (1 / bins)
    for c in range(len(thresholds)):
        thresholds[c] = max(thresholds[c], minimum)
    return thresholds


def pseudo_labels(labels, old_logits, thresholds, classes_after_step, classes_before_step):
    """Confident old predictions replace background, unconfident background is ignored (255)."""
    labels = labels.clone()
    probs = torch.softmax(old_logits, dim=1)
    predicted = probs.argmax(dim=1)
    background = labels < classes_before_step
    confident = uncertainty(old_logits, classes_after_step) < thresholds[predicted]
    labels[~confident & background] = 255
    labels[confident & background] = predicted[confident & background]
    factor = (confident & background).float().sum(dim=(1, 2)) / background.float().sum(dim=(1, 2))
    return labels, factor


def region_embedding(x, scales=(1, 2, 4)):
    """Squares of side W // s from the top-left corner (rows cut by the width too)."""
    n, width = x.shape[0], x.shape[-1]
    parts = []
    for s in scales:
        k = width // s
        for i in range(s):
            for j in range(s):
                region = x[..., i * k:(i + 1) * k, j * k:(j + 1) * k]
                parts.append(region.mean(dim=3).view(n, -1))
                parts.append(region.mean(dim=2).view(n, -1))
    return torch.cat(parts, dim=1)


def local_pod(a, b):
    return torch.frobenius_norm(region_embedding(a.pow(2)) - region_embedding(b.pow(2)), dim=-1).mean()


def main():
    torch.manual_seed(11)
    out = {}
    # One step of 6 old classes (background included) + 2 new ones.
    c_old, c_all = 6, 8
    old_logits = torch.randn(2, c_old, 20, 24) * torch.linspace(0.5, 6.0, 20).view(1, 1, 20, 1)
    labels = torch.zeros(2, 20, 24, dtype=torch.long)
    labels[:, 3:9, 4:12] = 6
    labels[1, 12:18, 10:20] = 7
    labels[0, 0, :] = 255
    hist = histogram(old_logits, labels, c_all)
    thresholds = running_sum_median(hist, 0.001)
    pseudo, factor = pseudo_labels(labels, old_logits, thresholds, c_all, c_old)
    new_logits = torch.randn(2, c_all, 20, 24)
    ce = (F.cross_entropy(new_logits, pseudo, ignore_index=255, reduction="none") * factor[:, None, None]).mean()
    out.update(old_logits=old_logits, labels=labels, uncertainty=uncertainty(old_logits, c_all), hist=hist[:c_old],
               thresholds=thresholds[:c_old], pseudo=pseudo, factor=factor, new_logits=new_logits, ce=ce)

    # Hand-made histograms for the median walk: a spread of counts, one dominant bin, a walk that
    # runs off the end (median > 1), one that ends on an empty last bin (+inf), one that stops on
    # an empty bin with nothing left (NaN), one stopping on bin 29 (read from bin 28), an empty row.
    walks = torch.zeros(7, 100, dtype=torch.long)
    walks[0] = torch.randint(0, 40, (100,))
    walks[1, 3] = 1000
    walks[1, 10:20] = 7
    walks[2] = 200
    walks[3, 10:60] = 300
    walks[4, 50:70] = 1
    walks[5, 28] = 90  # i = 28: 378 + 90 < 480; i = 29 reads bin 28 again: 406 <= 480 <= 496
    walks[5, 80] = 870
    out["walks"] = walks
    out["walk_thresholds"] = running_sum_median(walks, 0.001)

    # Local POD with the reference's regions on square, uneven and non-square maps.
    for name, shape in [("square", (2, 3, 12, 12)), ("uneven", (2, 3, 13, 13)), ("wide", (2, 3, 10, 12)),
                        ("tall", (1, 2, 16, 9))]:
        a, b = torch.randn(shape), torch.randn(shape)
        out[f"pod_{name}_old"], out[f"pod_{name}_new"], out[f"pod_{name}_loss"] = a, b, local_pod(a, b)

    os.makedirs(OUT, exist_ok=True)
    torch.save(out, os.path.join(OUT, "plop_reference.pt"))
    print("thresholds", out["thresholds"].tolist())
    print("walks", out["walk_thresholds"].tolist())
    print("factor", factor.tolist(), "ce", ce.item())


if __name__ == "__main__":
    main()
