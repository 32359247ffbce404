"""PyTorch eager CPU baseline for bench/selective_scan_bench.ts (our own script, not mamba's code).

The same recurrence as merba's selectiveScan / mamba's selective_scan_ref (see lib/ops/selective_scan_ref.ts):
    dt = softplus(delta + delta_bias);  h[t] = exp(dt[t] A) * h[t-1] + dt[t] B[:, t] u[t]
    y[t] = sum_n C[n, t] h[t, n];  out = (y + D u) * silu(z)
written the way a researcher without CUDA runs it: precompute exp(dt A) and dt B u for all steps, then a
Python loop over the sequence, autograd for the backward pass.

Usage: python bench/torch_selective_scan.py b d l n iters [threads]
Prints one JSON line: {"forward_ms", "forward_backward_ms" (median wall clock), "forward_cpu_ms",
"forward_backward_cpu_ms" (median process CPU time, all threads), "torch", "threads"}.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def scan(u, delta, A, B, C, D, z, delta_bias):
    # u, delta, z: (b, d, l); A: (d, n); B, C: (b, n, l); D, delta_bias: (d,)
    dt = F.softplus(delta + delta_bias[None, :, None])  # (b, d, l)
    decay = torch.exp(dt.unsqueeze(-1) * A[None, :, None, :])  # (b, d, l, n)
    drive = (dt * u).unsqueeze(-1) * B.transpose(1, 2)[:, None, :, :]  # (b, d, l, n)
    Ct = C.transpose(1, 2)  # (b, l, n)
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(u.shape[2]):
        h = decay[:, :, t] * h + drive[:, :, t]
        ys.append((h * Ct[:, None, t, :]).sum(-1))  # (b, d)
    y = torch.stack(ys, dim=2)
    return (y + D[None, :, None] * u) * F.silu(z)


def main():
    b, d, l, n, iters = (int(x) for x in sys.argv[1:6])
    threads = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, l, generator=g)
    delta = torch.rand(b, d, l, generator=g) * 4 - 2.5
    A = -torch.exp(torch.log(torch.arange(1, n + 1, dtype=torch.float32))[None, :].repeat(d, 1))
    B = torch.randn(b, n, l, generator=g)
    C = torch.randn(b, n, l, generator=g)
    D = torch.ones(d)
    z = torch.randn(b, d, l, generator=g)
    bias = torch.rand(d, generator=g) * 2 - 1
    G = torch.randn(b, d, l, generator=g)
    leaves = [u, delta, A, B, C, D, z, bias]

    def fwd():
        with torch.no_grad():
            scan(*leaves)

    def fwd_bwd():
        xs = [x.detach().requires_grad_(True) for x in leaves]
        out = scan(*xs)
        torch.autograd.grad((out * G).sum(), xs)

    def median_ms(f):
        """Median wall-clock and process-CPU (all threads) milliseconds."""
        f()  # warm-up
        wall, cpu = [], []
        for _ in range(iters):
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        wall.sort()
        cpu.sort()
        return wall[len(wall) // 2], cpu[len(cpu) // 2]

    fw, fc = median_ms(fwd)
    bw, bc = median_ms(fwd_bwd)
    print(json.dumps({
        "forward_ms": fw,
        "forward_backward_ms": bw,
        "forward_cpu_ms": fc,
        "forward_backward_cpu_ms": bc,
        "torch": torch.__version__,
        "threads": threads,
    }))


if __name__ == "__main__":
    main()
