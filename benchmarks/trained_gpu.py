"""Candidates per hour for the ``trained-cnn/paper`` child on one device (issue 15's GPU check), in one script.

Times training steps of the paper preset's child network (F=32, N=3, B=5, batch 128, aux head, drop path) on
synthetic 32x32 images with the training fast path (bf16 autocast + channels_last, + torch.compile with
``--compile``) and in fp32 eager, reports img/s and peak memory for both, and extrapolates: one candidate is
25 epochs over 45,000 images (plus a 5,000-image validation pass), the paper's search 1,500 candidates.

    python benchmarks/trained_gpu.py --device cuda             # ~3-5 minutes on an H100/H200
    python benchmarks/trained_gpu.py --device cpu --steps 3    # a check that it runs (CPU numbers are slow)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from nao.nn.network import build_network
from nao.presets import preset
from nao.spaces import get_space
from nao.train.classifier import make_runtime


def time_steps(device: str, fast: bool, steps: int, warmup: int, compile_: bool, seed: int = 0) -> dict:
    """img/s and peak memory of ``steps`` SGD steps of a random cell at the paper preset's child size."""
    cfg = preset("trained-cnn/paper")
    space = get_space(cfg.space)
    runtime = make_runtime(device, bf16=fast, channels_last=fast, compile=fast and compile_)
    arch = space.sample(np.random.default_rng(seed))
    net = replace(cfg.network, num_classes=10)
    model = build_network(space, arch, net, torch.Generator().manual_seed(seed)).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if runtime.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=0.9, weight_decay=cfg.train.weight_decay)
    b = cfg.train.batch_size
    x = torch.randn(b, 3, 32, 32, device=runtime.device)
    y = torch.randint(0, 10, (b,), device=runtime.device)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(runtime.device)

    def step() -> None:
        with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=runtime.bf16):
            out = step_model(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = F.cross_entropy(logits, y) + (cfg.train.aux_weight * F.cross_entropy(aux, y) if aux is not None else 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(runtime.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize(runtime.device)
    seconds = time.perf_counter() - t0
    return {"img_per_s": steps * b / seconds,
            "peak_mem_mb": torch.cuda.max_memory_allocated(runtime.device) / 2**20 if cuda else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="also torch.compile in the fast path")
    args = p.parse_args()
    cfg = preset("trained-cnn/paper")
    images_per_candidate = cfg.train.epochs * (50_000 - cfg.val_images) + cfg.val_images
    rows = {}
    for name, fast in (("fast path", True), ("fp32 eager", False)):
        r = time_steps(args.device, fast, args.steps, args.warmup, args.compile)
        r["candidate_min"] = images_per_candidate / r["img_per_s"] / 60
        r["candidates_per_h"] = 60 / r["candidate_min"]
        r["search_gpu_h"] = cfg.budget * r["candidate_min"] / 60
        rows[name] = r
        mem = "n/a" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f} MB"
        print(f"{name:10s}: {r['img_per_s']:8.0f} img/s, peak {mem}, {r['candidate_min']:.1f} min/candidate, "
              f"{r['candidates_per_h']:.1f} candidates/h, paper search ({cfg.budget} candidates) "
              f"{r['search_gpu_h']:.0f} device-hours", flush=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(json.dumps({"device": device_name, "steps": args.steps, **rows}, indent=2))


if __name__ == "__main__":
    main()
