#!/usr/bin/python3
"""Writes the weight-import and parity fixtures of tests/data/weights/ (run once; outputs committed).

Needs Debian's python3-torch and python3-torchvision (apt-get install python3-torchvision); run
with the system interpreter: /usr/bin/python3 tools/make_weight_fixtures.py [OUT_DIR]

Full ResNet/DeepLab weights are far too large to commit, so the parity fixtures hold no weights:
every tensor is a deterministic function of its state-dict key and element index (`synth`, also
implemented in tests/test_weights.cpp), computed with exact integer arithmetic so that Python and
C++ produce identical values. Each parity file stores the input, torchvision's output, and the
state dict's keys and shapes as stride-0 views of one element (a few hundred bytes per tensor in
the pickle, no storage), which also makes it a real torchvision OrderedDict checkpoint to load.
"""
import collections
import math
import os
import sys

import torch
import torchvision

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "weights")
M32 = 2 ** 32


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) % M32
    return h


def synth(name, shape):
    """Deterministic weights: a hashed integer sequence mapped to a scale that suits the key."""
    if name.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    n = math.prod(shape)
    x = (torch.arange(n, dtype=torch.int64) * 40503 + fnv1a32(name)) % M32
    x = x ^ (x >> 15)
    x = (x * 1664525 + 1013904223) % M32
    x = x ^ (x >> 13)
    x = (x * 22695477 + 1) % M32
    u = x.double() / M32 - 0.5  # uniform in [-0.5, 0.5)
    if name.endswith("running_var"):
        v = 1.0 + (u + 0.5)
    elif name.endswith("running_mean"):
        v = 0.2 * u
    elif len(shape) == 1 and name.endswith("weight"):
        v = 0.85 + 0.4 * u  # norm scale: < 1 keeps 33 residual sums bounded, yet the input still shows
    elif name.endswith("bias"):
        v = 0.02 * u
    else:
        fan_in = n // shape[0]
        v = u * math.sqrt(12.0 * 2.0 / fan_in)  # He-uniform
    return v.float().reshape(shape)


def shapes_only(state):
    """The state dict with every tensor replaced by a stride-0 view (real keys, shapes, dtypes)."""
    out = collections.OrderedDict()
    for k, v in state.items():
        out[k] = torch.zeros(1, dtype=v.dtype).expand(v.shape) if v.dim() > 0 else torch.zeros((), dtype=v.dtype)
    out._metadata = getattr(state, "_metadata", None)
    return out


def parity(name, model, input_shape, key):
    state = model.state_dict()
    model.load_state_dict(collections.OrderedDict((k, synth(k, tuple(v.shape))) for k, v in state.items()))
    model.eval()
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(input_shape, generator=g)
    with torch.no_grad():
        out = model(x)
    y = out[key] if isinstance(out, dict) else out
    with torch.no_grad():  # how much the output depends on the input (vs. biases and BN means)
        other = model(torch.randn(input_shape, generator=g))
        other = other[key] if isinstance(other, dict) else other
    print(f"{name}: output {tuple(y.shape)} mean|y| {y.abs().mean():.4f} max|y| {y.abs().max():.4f} "
          f"mean|y - y(other input)| {(y - other).abs().mean():.4f}")
    torch.save({"input": x, "output": y, "state": shapes_only(state)}, os.path.join(OUT, f"parity_{name}.pt"))


def main():
    os.makedirs(OUT, exist_ok=True)
    tv = torchvision.models
    seg = torchvision.models.segmentation
    # Classification ResNets (ImageNet layout, 1000 classes).
    parity("resnet50", tv.resnet50(weights=None), (1, 3, 48, 64), None)
    parity("resnet101", tv.resnet101(weights=None), (1, 3, 48, 64), None)
    # DeepLabV3 at torchvision's output stride 8 (ASPP rates 12, 24, 36), with the aux head.
    for depth in (50, 101):
        ctor = getattr(seg, f"deeplabv3_resnet{depth}")
        parity(f"deeplabv3_resnet{depth}", ctor(weights=None, weights_backbone=None, num_classes=5, aux_loss=True),
               (1, 3, 48, 64), "out")

    # torchvision's DeepLabV3-R50 checkpoint layout as saved by model.state_dict() (values left out).
    state = shapes_only(seg.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=5, aux_loss=True).state_dict())
    torch.save(state, os.path.join(OUT, "deeplabv3_resnet50_shapes.pt"))

    # A deliberately wrong checkpoint: one renamed key, one dropped key, one wrong shape.
    state = shapes_only(seg.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=5, aux_loss=True).state_dict())
    state["backbone.layer1.0.conv1.weightt"] = state.pop("backbone.layer1.0.conv1.weight")
    del state["classifier.1.weight"]
    state["backbone.conv1.weight"] = torch.zeros(1).expand(64, 3, 5, 5)
    torch.save(state, os.path.join(OUT, "deeplabv3_resnet50_wrong.pt"))

    # The legacy (pre-1.6) format and the zip format on the same mixed content.
    p = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    base = torch.arange(10, dtype=torch.float64)
    mixed = collections.OrderedDict([
        ("param", p),
        ("view", base[2:8:2]),             # a strided view of a shared storage
        ("same_storage", base),
        ("half", torch.tensor([1.5, -2.0], dtype=torch.float16)),
        ("long", torch.tensor([7, -9], dtype=torch.int64)),
        ("nested", {"a": torch.ones(2, 2), "b": torch.zeros(3)}),
    ])
    wrapper = {"epoch": 3, "lr": 0.01, "name": "mixed", "flag": True, "none": None,
               "tuple": (1, 2.5, "x"), "big": 2 ** 70, "state_dict": mixed}
    torch.save(wrapper, os.path.join(OUT, "mixed_zip.pt"))
    torch.save(wrapper, os.path.join(OUT, "mixed_legacy.pt"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
