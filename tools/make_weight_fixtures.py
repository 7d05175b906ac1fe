#!/usr/bin/python3
"""Writes the weight-import and parity fixtures of tests/files/weights/ (run once; outputs committed).

Needs Debian's python3-torch and python3-torchvision (apt-get install python3-torchvision); run
with the system interpreter: /usr/bin/python3 tools/make_weight_fixtures.py [OUT_DIR]

Full ResNet/DeepLab weights are far too large to commit, so the parity fixtures hold no weights:
every tensor is a deterministic function of its state-dict key and element index (`synth`, also
implemented in tests/weight_fixtures.h), computed with exact integer arithmetic so that Python and
C++ produce identical values. Each parity file stores the input, torchvision's output, and the
state dict's keys and shapes as stride-0 views of one element (a few hundred bytes per tensor in
the pickle, no storage), which also makes it a real torchvision OrderedDict checkpoint to load.
"""
import collections
import math
import os
import re
import sys

import torch
import torch.nn.functional as F
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


# --- The MiB/PLOP/SDR codebases' DeepLabV3 ("layout mib" in cseg), written from its description:
# an in-place-ABN ResNet (mod1 = conv1/bn1/max-pool, mod2..5 of blocks with convs.conv1..3 and
# proj_conv/proj_bn, every block of a dilated stage dilated alike), a head of four ASPP convs
# normalised together and reduced, an image-pooling branch added before the last norm, and one
# 1x1 classifier per step. In-place ABN's arithmetic at evaluation: batch norm with scale |w| + eps,
# then leaky ReLU (slope 0.01), or no activation for a block's last norm and its shortcut's.

class AbnEval(torch.nn.BatchNorm2d):
    def __init__(self, channels, act=True):
        super().__init__(channels)
        self.act = act

    def forward(self, x):
        assert not self.training
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight.abs() + self.eps, self.bias,
                         False, 0.0, self.eps)
        return F.leaky_relu(y, 0.01) if self.act else y


class AbnBottleneck(torch.nn.Module):
    def __init__(self, cin, planes, stride, dilation):
        super().__init__()
        out = planes * 4
        self.convs = torch.nn.Sequential(collections.OrderedDict([
            ("conv1", torch.nn.Conv2d(cin, planes, 1, bias=False)), ("bn1", AbnEval(planes)),
            ("conv2", torch.nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)), ("bn2", AbnEval(planes)),
            ("conv3", torch.nn.Conv2d(planes, out, 1, bias=False)), ("bn3", AbnEval(out, act=False))]))
        if stride != 1 or cin != out:
            self.proj_conv = torch.nn.Conv2d(cin, out, 1, stride, bias=False)
            self.proj_bn = AbnEval(out, act=False)

    def forward(self, x):
        shortcut = self.proj_bn(self.proj_conv(x)) if hasattr(self, "proj_conv") else x
        return F.leaky_relu(self.convs(x) + shortcut, 0.01)


class AbnResNet(torch.nn.Module):
    def __init__(self, blocks, output_stride):
        super().__init__()
        dilation = [1, 1, 1, 2] if output_stride == 16 else [1, 1, 2, 4]
        self.mod1 = torch.nn.Sequential(collections.OrderedDict([
            ("conv1", torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False)), ("bn1", AbnEval(64)),
            ("pool1", torch.nn.MaxPool2d(3, 2, 1))]))
        cin = 64
        for m, n in enumerate(blocks):
            layers = []
            for b in range(n):
                stride = 2 if dilation[m] == 1 and b == 0 and m > 0 else 1
                layers.append((f"block{b + 1}", AbnBottleneck(cin, 64 << m, stride, dilation[m])))
                cin = (64 << m) * 4
            self.add_module(f"mod{m + 2}", torch.nn.Sequential(collections.OrderedDict(layers)))
        self.out_channels = cin

    def forward(self, x):
        for m in (self.mod1, self.mod2, self.mod3, self.mod4, self.mod5):
            x = m(x)
        return x


class MibHead(torch.nn.Module):
    def __init__(self, cin, rates, pooling):
        super().__init__()
        self.pooling = pooling
        self.map_convs = torch.nn.ModuleList([torch.nn.Conv2d(cin, 256, 1, bias=False)] + [
            torch.nn.Conv2d(cin, 256, 3, padding=r, dilation=r, bias=False) for r in rates])
        self.map_bn = AbnEval(1024)
        self.global_pooling_conv = torch.nn.Conv2d(cin, 256, 1, bias=False)
        self.global_pooling_bn = AbnEval(256)
        self.red_conv = torch.nn.Conv2d(1024, 256, 1, bias=False)
        self.pool_red_conv = torch.nn.Conv2d(256, 256, 1, bias=False)
        self.red_bn = AbnEval(256)

    def forward(self, x):
        out = self.red_conv(self.map_bn(torch.cat([c(x) for c in self.map_convs], 1)))
        if self.pooling is None:
            pool = x.mean(dim=(2, 3), keepdim=True)
        else:  # windows of `pooling` cells (clipped to the map), edge-padded back to the map's size
            ph, pw = min(self.pooling, x.shape[2]), min(self.pooling, x.shape[3])
            pool = F.avg_pool2d(x, (ph, pw), stride=1)
            pool = F.pad(pool, ((pw - 1) // 2, pw - 1 - (pw - 1) // 2, (ph - 1) // 2, ph - 1 - (ph - 1) // 2), mode="replicate")
        pool = self.pool_red_conv(self.global_pooling_bn(self.global_pooling_conv(pool)))
        return self.red_bn(out + pool)


class MibDeepLab(torch.nn.Module):
    def __init__(self, heads, output_stride, pooling):
        super().__init__()
        self.body = AbnResNet([3, 4, 6, 3], output_stride)
        self.head = MibHead(2048, [6, 12, 18] if output_stride == 16 else [12, 24, 32], pooling)
        self.cls = torch.nn.ModuleList([torch.nn.Conv2d(256, n, 1) for n in heads])

    def forward(self, x):
        y = self.head(self.body(x))
        y = torch.cat([c(y) for c in self.cls], 1)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def mib_stored(name, shape):
    """What a MiB checkpoint stores: synth values, with every other norm scale negated (in-place ABN
    keeps w and computes with |w| + eps, so a stored scale may be negative)."""
    v = synth(name, shape)
    if re.search(r"bn\d*\.weight$", name):
        v = v.clone()
        v[::2] = -v[::2]
    return v


def mib_parity(name, heads, output_stride, pooling, input_shape):
    model = MibDeepLab(heads, output_stride, pooling)
    state = collections.OrderedDict((k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    model.load_state_dict(collections.OrderedDict((k, mib_stored(k, tuple(v.shape))) for k, v in state.items()), strict=False)
    model.eval()
    g = torch.Generator().manual_seed(4321)
    x = torch.randn(input_shape, generator=g)
    with torch.no_grad():
        y = model(x)
        other = model(torch.randn(input_shape, generator=g))
    print(f"{name}: output {tuple(y.shape)} mean|y| {y.abs().mean():.4f} max|y| {y.abs().max():.4f} "
          f"mean|y - y(other input)| {(y - other).abs().mean():.4f}")
    # As MiB's run.py saves it: the DistributedDataParallel model's state under "model_state".
    saved = collections.OrderedDict(("module." + k, v) for k, v in shapes_only(state).items())
    checkpoint = {"epoch": 30, "model_state": saved, "best_score": 0.0}
    torch.save({"input": x, "output": y, "state": checkpoint}, os.path.join(OUT, f"parity_{name}.pt"))


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

    # LR-ASPP on a dilated MobileNetV3-Large (output stride 16, low-level features at 8), 5 classes;
    # and the ImageNet MobileNetV3-Large classifier's layout (features.*, classifier.*) whose
    # `features` a segmentation backbone takes (values left out).
    parity("lraspp_mobilenet_v3_large", seg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=5),
           (1, 3, 64, 80), "out")
    torch.save(shapes_only(tv.mobilenet_v3_large(weights=None).state_dict()),
               os.path.join(OUT, "mobilenet_v3_large_shapes.pt"))

    # The MiB/PLOP/SDR DeepLabV3-R50: at stride 16 with two step heads and MiB's evaluation pooling
    # in windows (2 cells, an even window, on a 4x5 map), and at stride 8 with one head of 5
    # classes and the whole map pooled.
    mib_parity("mib_deeplabv3_resnet50_os16", [3, 2], 16, 2, (1, 3, 64, 80))
    mib_parity("mib_deeplabv3_resnet50_os8", [5], 8, None, (1, 3, 48, 64))

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
