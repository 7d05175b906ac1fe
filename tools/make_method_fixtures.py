#!/usr/bin/python3
"""Writes tests/files/methods/plop_reference.pt and sdr_reference.pt: what PLOP's and SDR's reference
code computes on small inputs, for the parity tests of `method_options.plop.faithful` and
`method_options.sdr.faithful` (tests/methods/test_plop_reference.cpp, tests/methods/test_sdr_reference.cpp).

Needs Debian's python3-torch; run with the system interpreter (run once; output committed):
    /usr/bin/python3 tools/make_method_fixtures.py [OUT_DIR]

The functions below restate, in this project's words, the computations of PLOP's train.py
(github.com/arthurdouillard/CVPR2021_PLOP: entropy, find_median, the entropy pseudo-labels with
the adaptive factor, the CE mean and the local POD embedding) with the same tensor types, so that
their float32 and float-border quirks are the ones the C++ side must reproduce. The SDR part
restates the prototype update of SDR's train.py and the clustering, sparsification and prototype
matching losses of its utils/loss.py (github.com/LTTM/SDR) with the settings its `--method SDR`
selects (max_maskedforclass, exponential, ratio; repulsion between batch means; matching on the
mean feature).
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


# --- SDR ---------------------------------------------------------------------------------------

def rows_per_channel(features, mask):
    """The reference's gather: the selected values (batch-major) read as D rows."""
    return features[mask.unsqueeze(1).expand_as(features)].view(features.shape[1], -1)


def sdr_update_prototypes(prototypes, counts, features, labels, mode, step):
    """Running class means; the first label present is skipped in overlap mode and in disjoint
    mode after step 0, the ignore label when it is the last."""
    present = torch.unique(labels)
    if mode == "overlap" or (mode != "sequential" and step > 0):
        present = present[1:]
    if present.numel() > 0 and present[-1] == 255:
        present = present[:-1]
    for c in present:
        rows = rows_per_channel(features, labels == c).detach()
        n = rows.shape[-1]
        prototypes[c] = (rows.sum(dim=-1) + counts[c] * prototypes[c]) / (counts[c] + n)
        counts[c] += n
    return prototypes, counts


def sdr_clustering(features, labels, prototypes, num_classes):
    """Attraction (running sum divided by the class count after each class) and repulsion (1 / the
    distances between the batch's class means, infinite values dropped)."""
    present = torch.unique(labels)
    if present[-1] == 255:
        present = present[:-1]
    means = torch.zeros(num_classes, features.shape[1])
    attraction = torch.tensor(0.0)
    for c in present:
        rows = rows_per_channel(features, labels == c)
        means[c] = rows.mean(dim=-1)
        attraction = attraction + F.mse_loss(rows, prototypes[c].unsqueeze(1).expand(-1, rows.shape[1]))
        attraction = attraction / present.shape[0]
    batch_means = means[present]
    inverse = 1 / torch.cdist(batch_means.unsqueeze(0), batch_means.unsqueeze(0)).squeeze()
    r = inverse[~torch.isinf(inverse)].mean()
    repulsion = r if not torch.isnan(r) else torch.tensor(0.0)
    return attraction, repulsion


def sdr_sparsity(features, labels):
    """Each label's features over their maximum (all labels unless only background), then the
    mean over all pixels of sum exp / sum."""
    present = torch.unique(labels)
    if present[-1] == 0:
        present = present[:-1]
    scaled = torch.zeros_like(features)
    for c in present:
        mask = (labels == c).unsqueeze(1)
        scaled = scaled + features / (features[mask.expand_as(features)].max() + 1e-15) * mask.float()
    if scaled.sum() > 0:
        return (torch.exp(scaled).sum(dim=1, keepdim=True) / (scaled.sum(dim=1, keepdim=True) + 1e-15)).mean()
    return torch.tensor(0.0)


def sdr_matching(features, located, prototypes):
    """Per old class found: MSE between the mean of its selected values read as rows of D and the
    prototype, divided by the number of classes found."""
    present = torch.unique(located)
    if present[0] == 0:
        present = present[1:]
    total = torch.tensor(0.0)
    for c in present:
        rows = features[(located == c).unsqueeze(1).expand_as(features)].view(-1, features.shape[1])
        total = total + F.mse_loss(rows.mean(dim=0), prototypes[c]) / present.shape[0]
    return total


def sdr_main():
    torch.manual_seed(5)
    out = {}
    n, d, h, w, classes, old = 3, 4, 5, 6, 6, 4
    features = torch.rand(n, d, h, w) + 0.05
    # Step 1 of a 4 + 2 split: background, the new classes 4 and 5, some ignored pixels.
    labels = torch.zeros(n, h, w, dtype=torch.long)
    labels[0, 1:4, 1:4] = 4
    labels[1, 0:3, 2:6] = 5
    labels[2, 2:5, 0:3] = 4
    labels[2, 0, 3:6] = 5
    labels[1, 4, :] = 255
    # Sequential mode keeps the old classes' labels.
    labels_seq = labels.clone()
    labels_seq[0, 4, 0:3] = 1
    labels_seq[2, 3:5, 4:6] = 2
    old_pred = torch.randint(0, old, (n, h, w))
    prototypes = torch.rand(classes, d)
    prototypes[old:] = 0
    counts = torch.tensor([20, 9, 14, 0, 0, 0], dtype=torch.long)
    prototypes[3] = 0  # class 3 never had a prototype
    out.update(features=features, labels=labels, labels_seq=labels_seq, old_pred=old_pred, prototypes=prototypes,
               counts=counts)
    for mode, step, lab in [("overlap", 1, labels), ("disjoint", 1, labels), ("disjoint", 0, labels),
                            ("sequential", 1, labels_seq)]:
        key = f"{mode}{step}"
        p, c = sdr_update_prototypes(prototypes.clone(), counts.clone(), features, lab, mode, step)
        out[f"{key}_prototypes"], out[f"{key}_counts"] = p, c
        a, r = sdr_clustering(features, lab, p, classes)
        out[f"{key}_attraction"], out[f"{key}_repulsion"] = a, r
        located = lab * (lab < old).long() if mode == "sequential" else old_pred * (lab == 0).long()
        out[f"{key}_located"] = located
        out[f"{key}_matching"] = sdr_matching(features, located, p)
    out["sparsity"] = sdr_sparsity(features, labels)
    only_background = torch.zeros(n, h, w, dtype=torch.long)
    out["sparsity_background"] = sdr_sparsity(features, only_background)
    os.makedirs(OUT, exist_ok=True)
    torch.save(out, os.path.join(OUT, "sdr_reference.pt"))
    print("sdr", {k: round(float(v), 6) for k, v in out.items() if v.dim() == 0})


if __name__ == "__main__":
    main()
    sdr_main()
