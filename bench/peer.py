"""The Python peers the benchmarks run side by side with jax-serve.

  open DIR N         median ms over N runs of loading model.safetensors.index.json and listing every
                     shard it names with safe_open (names, dtypes and shapes), the way a Python
                     script (or transformers) inspects a sharded checkpoint
  stats FILE NAME N  median GB/s over N runs of numpy computing the same statistics as jax-serve
                     (min, max, mean, std over finite values; NaN/±Inf/zero counts), decoding included
"""
import json
import os
import statistics
import sys
import time

import numpy as np
from safetensors import safe_open


def bench_open(d: str, n: int) -> None:
    times, count = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        count = 0
        with open(os.path.join(d, "model.safetensors.index.json"), "rb") as f:
            index = json.load(f)
        for name in sorted(set(index["weight_map"].values())):
            f = os.path.join(d, name)
            with safe_open(f, framework="np") as h:
                for k in h.keys():
                    h.get_slice(k).get_shape()
                    count += 1
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"ms": statistics.median(times), "tensors": count}))


def bench_stats(path: str, name: str, n: int) -> None:
    import torch  # bf16 needs torch to decode; numpy has no bfloat16
    from safetensors.torch import safe_open as pt_open
    rates = []
    for _ in range(n):
        t0 = time.perf_counter()
        with pt_open(path, framework="pt") as h:
            t = h.get_tensor(name)
        a = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        nbytes = t.numel() * t.element_size()
        finite = np.isfinite(a)
        v = a[finite]
        _ = (v.min(), v.max(), v.mean(dtype=np.float64), v.std(dtype=np.float64),
             np.isnan(a).sum(), np.isposinf(a).sum(), np.isneginf(a).sum(), (a == 0).sum())
        rates.append(nbytes / (time.perf_counter() - t0) / 1e9)
    print(json.dumps({"gbps": statistics.median(rates)}))


if __name__ == "__main__":
    if sys.argv[1] == "open":
        bench_open(sys.argv[2], int(sys.argv[3]))
    else:
        bench_stats(sys.argv[2], sys.argv[3], int(sys.argv[4]))
