#!/usr/bin/python3
"""Python PyTorch's half of the side-by-side benchmarks (bench/side_by_side.cpp is cseg's half,
bench/side_by_side.py runs both). Same workloads, same arguments, one JSON line on stdout.

  pytorch_side.py infer model=fast_scnn size=1024x2048 [classes=19] [runs=10] [warmup=3] [batch=1]
                        [channels_last=0]
  pytorch_side.py train model=deeplabv3 size=256 batch=4 [iters=5] [warmup=2] [train_channels_last=0]
  pytorch_side.py train_files data_root=DIR size=256 batch=8 [iters=30] [warmup=5] [workers=2]
  common: threads=2  device=cpu|cuda  precision=fp32|bf16|fp16 (autocast; fp16 trains with
          torch's GradScaler)  backbone=resnet50|resnet101 (deeplabv3)

Fast-SCNN is written out here with the layer structure of cseg's (the reference implementation's
layout; the parameter counts are compared by the runner). DeepLabV3 is torchvision's
deeplabv3_resnet50 or _resnet101 (output stride 8). On a GPU each timed run ends with
torch.cuda.synchronize(). The input pipeline of train_files is the usual PIL + numpy
dataset under a torch DataLoader with worker processes.
"""
import json
import random
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import numpy as np
except ImportError:  # a GPU machine's PyTorch may come without it: only train_files needs it
    np = None


# --- Fast-SCNN (Poudel et al. 2019) -----------------------------------------------------------

def conv_bn_relu(cin, cout, k, stride=1, pad=0):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def depthwise_separable(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(True),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def depthwise(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, expansion, stride):
        super().__init__()
        mid = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(conv_bn_relu(cin, mid, 1), depthwise(mid, mid, stride),
                                  nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def stage(cin, cout, blocks, expansion, stride):
    return nn.Sequential(InvertedResidual(cin, cout, expansion, stride),
                         *[InvertedResidual(cout, cout, expansion, 1) for _ in range(blocks - 1)])


def up(x, h, w):
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)


class PyramidPooling(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cin // 4, 1) for _ in range(4)])
        self.project = conv_bn_relu(cin * 2, cout, 1)

    def forward(self, x):
        h, w = x.shape[2:]
        parts = [x] + [up(b(F.adaptive_avg_pool2d(x, s)), h, w) for b, s in zip(self.branches, (1, 2, 3, 6))]
        return self.project(torch.cat(parts, 1))


class FastSCNN(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.downsample = nn.Sequential(conv_bn_relu(3, 32, 3, 2), depthwise_separable(32, 48, 2),
                                        depthwise_separable(48, 64, 2))
        self.features = nn.Sequential(stage(64, 64, 3, 6, 2), stage(64, 96, 3, 6, 2), stage(96, 128, 3, 6, 1),
                                      PyramidPooling(128, 128))
        self.low_dw = depthwise(128, 128)
        self.low = nn.Sequential(nn.Conv2d(128, 128, 1), nn.BatchNorm2d(128))
        self.high = nn.Sequential(nn.Conv2d(64, 128, 1), nn.BatchNorm2d(128))
        self.head = nn.Sequential(depthwise_separable(128, 128), depthwise_separable(128, 128), nn.Dropout(0.1),
                                  nn.Conv2d(128, classes, 1))

    def forward(self, x):
        h, w = x.shape[2:]
        high = self.downsample(x)
        low = self.features(high)
        low = self.low(self.low_dw(up(low, high.shape[2], high.shape[3])))
        fused = F.relu(self.high(high) + low)
        return up(self.head(fused), h, w)


def make(name, classes, backbone="resnet50"):
    if name == "fast_scnn":
        return FastSCNN(classes)
    if name == "deeplabv3":
        import torchvision
        build = getattr(torchvision.models.segmentation, f"deeplabv3_{backbone}")
        net = build(weights=None, weights_backbone=None, num_classes=classes, aux_loss=False)
        return lambda_out(net)
    raise SystemExit(f"model='{name}': expected fast_scnn or deeplabv3")


class lambda_out(nn.Module):
    """torchvision's segmentation models return a dict; the benchmark wants the logits."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def params(m):
    return sum(p.numel() for p in m.parameters())


def size_of(s):
    h, _, w = s.partition("x")
    return int(h), int(w or h)


# --- workloads ----------------------------------------------------------------------------------

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device, precision):
    """torch.autocast for bf16 / fp16, a no-op context for fp32."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def infer(a):
    h, w = size_of(a["size"])
    device = torch.device(a["device"])
    model = make(a["model"], int(a["classes"]), a["backbone"]).eval().to(device)
    if a["channels_last"] == "1":
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(int(a["batch"]), 3, h, w, device=device)
    ms = []

    def forward():
        with torch.no_grad(), autocast(device, a["precision"]):
            model(x)
        sync(device)

    for _ in range(int(a["warmup"])):
        forward()
    for _ in range(int(a["runs"])):
        t0 = time.perf_counter()
        forward()
        ms.append(1000 * (time.perf_counter() - t0))
    median = statistics.median(ms)
    return {"median_ms": median, "images_per_second": 1000 * int(a["batch"]) / median, "all_ms": ms,
            "params": params(model), "device": str(device), "precision": a["precision"]}


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def step(model, opt, x, y, precision="fp32", scaler=None):
    with autocast(x.device, precision):
        loss = F.cross_entropy(model(x).float(), y, ignore_index=255)
    opt.zero_grad()
    if scaler is not None:  # fp16: the usual AMP recipe
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    sync(x.device)


def train(a):
    h, w = size_of(a["size"])
    batch, classes = int(a["batch"]), int(a["classes"])
    device = torch.device(a["device"])
    model = make(a["model"], classes, a["backbone"]).train().to(device)
    if a["train_channels_last"] == "1":
        model = model.to(memory_format=torch.channels_last)
    opt = sgd(model)
    scaler = torch.cuda.amp.GradScaler() if a["precision"] == "fp16" else None
    x = torch.randn(batch, 3, h, w, device=device)
    y = torch.randint(0, classes, (batch, h, w), device=device)
    for _ in range(int(a["warmup"])):
        step(model, opt, x, y, a["precision"], scaler)
    ms = []
    for _ in range(int(a["iters"])):
        t0 = time.perf_counter()
        step(model, opt, x, y, a["precision"], scaler)
        ms.append(1000 * (time.perf_counter() - t0))
    return {"images_per_second": 1000 * batch / statistics.median(ms), "all_ms": ms, "params": params(model),
            "device": str(device), "precision": a["precision"]}


class VocLayout(torch.utils.data.Dataset):
    """JPEGImages/<id>.jpg + SegmentationClass/<id>.png listed in ImageSets/Segmentation/train.txt,
    with the augmentation cseg's loader applies: random scale 0.5-2, pad (mean colour / 255),
    random crop, horizontal flip, ImageNet normalisation."""

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, root, crop):
        self.root, self.crop = root, crop
        with open(f"{root}/ImageSets/Segmentation/train.txt") as f:
            self.ids = [line.strip() for line in f if line.strip()]

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        from PIL import Image
        image = Image.open(f"{self.root}/JPEGImages/{self.ids[i]}.jpg").convert("RGB")
        mask = Image.open(f"{self.root}/SegmentationClass/{self.ids[i]}.png")
        s = random.uniform(0.5, 2.0)
        size = (max(1, round(image.width * s)), max(1, round(image.height * s)))
        image, mask = image.resize(size, Image.BILINEAR), mask.resize(size, Image.NEAREST)
        img = np.asarray(image, np.float32) / 255.0
        lab = np.asarray(mask, np.int64)
        c = self.crop
        ph, pw = max(0, c - img.shape[0]), max(0, c - img.shape[1])
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)))
            img[img.shape[0] - ph:, :, :] = self.MEAN
            img[:, img.shape[1] - pw:, :] = self.MEAN
            lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=255)
        y0, x0 = random.randint(0, img.shape[0] - c), random.randint(0, img.shape[1] - c)
        img, lab = img[y0:y0 + c, x0:x0 + c], lab[y0:y0 + c, x0:x0 + c]
        if random.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        img = (img - np.array(self.MEAN, np.float32)) / np.array(self.STD, np.float32)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), torch.from_numpy(np.ascontiguousarray(lab))


def train_files(a):
    batch, iters, warmup = int(a["batch"]), int(a["iters"]), int(a["warmup"])
    workers = int(a["workers"])
    loader = torch.utils.data.DataLoader(VocLayout(a["data_root"], int(a["size"])), batch_size=batch, shuffle=True,
                                         drop_last=True, num_workers=workers, persistent_workers=workers > 0)
    model = make("fast_scnn", int(a["classes"])).train()
    opt = sgd(model)

    def run(n):
        done = 0
        while done < n:
            for x, y in loader:
                step(model, opt, x, y)
                done += 1
                if done == n:
                    return

    run(warmup)
    t0 = time.perf_counter()
    run(iters)
    return {"images_per_second": iters * batch / (time.perf_counter() - t0), "params": params(model)}


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    a = {"model": "fast_scnn", "size": "512x1024", "classes": "19", "runs": "10", "warmup": "3", "batch": "8",
         "iters": "10", "threads": "2", "data_root": "", "workers": "2", "device": "cpu", "precision": "fp32",
         "backbone": "resnet50", "channels_last": "0", "train_channels_last": "0"}
    for arg in sys.argv[2:]:
        k, eq, v = arg.partition("=")
        if not eq or k not in a:
            raise SystemExit(f"unknown argument '{arg}'")
        a[k] = v
    torch.set_num_threads(int(a["threads"]))
    torch.manual_seed(0)
    random.seed(0)
    workloads = {"infer": infer, "train": train, "train_files": train_files}
    if sys.argv[1] not in workloads:
        raise SystemExit(f"unknown workload '{sys.argv[1]}' (infer, train, train_files)")
    r = workloads[sys.argv[1]](a)
    r.update(impl="pytorch", workload=sys.argv[1], threads=torch.get_num_threads(),
             peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
