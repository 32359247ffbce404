"""Learnability check of the synthetic dataset with references outside the library (scikit-learn, PyTorch).

Reads the raw TV-L1 flows written by `bench/dump_raw_flow.ts`, builds the same 28x28x3 input as
`flowToInput` (strain from numpy.gradient, per-channel min-max, OpenCV INTER_AREA resize), and runs LOSO
(predictions pooled over the subjects) with:

- logistic regression on the standardised pixels (scikit-learn, L2, C = 1);
- a small CNN (PyTorch): conv3x3 3-16 / 16-32 / 32-32 with BatchNorm and ReLU, two 2x2 max-pools, global
  average pooling, linear; AdamW 3e-3 (decay 0.05), one-cycle schedule, batch 16, 60 epochs, no augmentation;
  inputs standardised per channel with the training subjects' statistics.

Nothing is tuned on a test subject. It prints per-subject accuracy and pooled UF1 / UAR / accuracy.

    deno run -A bench/dump_raw_flow.ts --out out/raw-flow
    .cache/torch-venv/bin/python bench/synthetic_learnability.py out/raw-flow [--no-cnn] [--compensate]

`--compensate` first subtracts a robust (Huber IRLS) affine fit of the flow (global head motion), to check
how much of the difficulty is head motion. Needs numpy, scikit-learn, torch and opencv-python(-headless).
"""

import json
import sys

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, recall_score

torch.set_num_threads(1)
args = [a for a in sys.argv[1:] if not a.startswith("--")]
root = args[0] if args else "out/raw-flow"
meta = json.load(open(f"{root}/flows.json"))
n, W, H = meta["n"], meta["W"], meta["H"]
flows = np.fromfile(f"{root}/flows.f32", dtype=np.float32).reshape(n, 2, H, W)
y = np.array(meta["fine"])
subj = np.array(meta["subjects"])
yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)


def compensate(u, v):
    X = np.stack([np.ones(H * W), xx.ravel() - W / 2, yy.ravel() - H / 2], 1)
    w = np.ones(H * W)
    for _ in range(10):
        sw = np.sqrt(w)[:, None]
        cu = np.linalg.lstsq(X * sw, u.ravel() * sw[:, 0], rcond=None)[0]
        cv = np.linalg.lstsq(X * sw, v.ravel() * sw[:, 0], rcond=None)[0]
        r = np.hypot(u.ravel() - X @ cu, v.ravel() - X @ cv)
        c = 1.345 * max(np.median(r) / 0.6745, 1e-3)
        w = np.where(r <= c, 1, c / np.maximum(r, 1e-9))
    return (u.ravel() - X @ cu).reshape(H, W), (v.ravel() - X @ cv).reshape(H, W)


def strain(u, v):
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    return np.sqrt(ux**2 + vy**2 + 0.5 * (uy + vx) ** 2)


def minmax(a):
    r = a.max() - a.min()
    return (a - a.min()) / r if r > 0 else a * 0


def build(size=28, comp=False):
    out = np.zeros((n, 3, size, size), np.float32)
    for i in range(n):
        u, v = flows[i, 0].astype(np.float64), flows[i, 1].astype(np.float64)
        if comp:
            u, v = compensate(u, v)
        for c, a in enumerate([u, v, strain(u, v)]):
            out[i, c] = cv2.resize(minmax(a).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return out


def loso(X, fit_predict, name):
    pred = np.zeros(n, int)
    for s in np.unique(subj):
        te = subj == s
        pred[te] = fit_predict(X[~te], y[~te], X[te])
    per = " ".join("%.2f" % (pred[subj == s] == y[subj == s]).mean() for s in np.unique(subj))
    print(f"{name}: per-subject accuracy {per}")
    print(
        f"{name}: UF1 {f1_score(y, pred, average='macro'):.3f}  UAR {recall_score(y, pred, average='macro'):.3f}"
        f"  accuracy {(pred == y).mean():.3f}",
        flush=True,
    )


def logistic(Xtr, ytr, Xte):
    Xtr, Xte = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    return LogisticRegression(C=1.0, max_iter=300).fit((Xtr - mu) / sd, ytr).predict((Xte - mu) / sd)


class SmallCNN(nn.Module):
    def __init__(self, w=16, k=5):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w)
        self.c2, self.b2 = nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w)
        self.c3, self.b3 = nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w)
        self.fc = nn.Linear(2 * w, k)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x)))
        return self.fc(x.mean((2, 3)))


def cnn(Xtr, ytr, Xte, epochs=60, batch=16, lr=3e-3):
    torch.manual_seed(0)
    mu = Xtr.mean((0, 2, 3), keepdims=True)
    sd = Xtr.std((0, 2, 3), keepdims=True) + 1e-6
    xt, yt, xe = torch.tensor((Xtr - mu) / sd), torch.tensor(ytr), torch.tensor((Xte - mu) / sd)
    net = SmallCNN(k=int(y.max()) + 1)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((len(xt) + batch - 1) // batch))
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for k in range(0, len(xt), batch):
            idx = perm[k : k + batch]
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        return net(xe).argmax(1).numpy()


X = build(comp="--compensate" in sys.argv)
print(f"{root}: {n} samples, {len(np.unique(subj))} subjects, {W}x{H} flow -> 28x28x3")
loso(X, logistic, "logistic regression")
if "--no-cnn" not in sys.argv:
    loso(X, cnn, "small CNN")
