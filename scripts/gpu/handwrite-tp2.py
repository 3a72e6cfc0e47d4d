"""Writes the hand-written two-GPU TP 2 recording (no two-GPU machine was lent), from real recordings.

  python3 scripts/gpu/handwrite-tp2.py      (from the repository root, after `node esbuild.mjs`)

It is NOT a recording. It has the files a run of `COUNT=2 bash scripts/gpu/sglang-jax-run.sh` on two
H100s would write, made from three real runs and SGLang-JAX's own sizing rule, so the replay tests
have a two-GPU case until a real one replaces it. Each file says where it comes from in HANDWRITTEN.md,
which this script writes beside them. The real runs:
  ONE  sglang-jax-cddbf6f1-jax0.11.2-2026-12-05            export128 served at TP 1 on an H100
  GPU  sglang-jax-cddbf6f1-jax0.11.2-2026-12-06-tp2-on1gpu  the TP 2 script on a one-H100 machine:
                                                            the refusal, fit128 served at TP 1 with
                                                            nvidia-smi, a bare JAX process's memory
  CPU  sglang-jax-cddbf6f1-jax0.11.2-2026-12-06-tp2-cpu     TP 2 on two XLA host devices
SGLang-JAX's pool on a GPU is XLA's limit x the fraction less what is in use after loading
(model_runner_kv_cache_mixin.py _profile_available_bytes): at TP 2 a device holds the weights fit
puts on it instead of all of them, so its pool is TP 1's plus the difference, and its cell size is
fit's KV bytes a token on one device. The working memory nvidia-smi showed at TP 1 beyond weights and
pool is carried over unchanged: how it scales with TP is what a real run would show.
"""
import json
import os
import re
import shutil
import subprocess
import sys

FIX = "test/fixtures"
ONE = f"{FIX}/sglang-jax-cddbf6f1-jax0.11.2-2026-12-05"
GPU = f"{FIX}/sglang-jax-cddbf6f1-jax0.11.2-2026-12-06-tp2-on1gpu"
CPU = f"{FIX}/sglang-jax-cddbf6f1-jax0.11.2-2026-12-06-tp2-cpu"
OUT = f"{FIX}/handwritten-sglang-jax-cddbf6f1-jax0.11.2-2026-12-06-tp2"
MiB = 2**20


def read(path):
    # newline="": the engine's carriage returns (its progress bars) are kept, as the recordings keep them.
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def write(name, text):
    with open(f"{OUT}/{name}", "w", encoding="utf-8", newline="") as f:
        f.write(text)


def fit(config, tp, fraction):
    """`jax-serve fit` on a folder holding only `config`, on an H100, at TP tp."""
    d = f"{OUT}.tmp-fit"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/config.json", "w") as f:
        json.dump(config, f)
    r = subprocess.run(["node", "dist/cli.js", "fit", d, "--engine", "sglang-jax", "--gpu", "h100", "--count", str(tp), "--tp", str(tp), "--memory-fraction", str(fraction), "--json"], capture_output=True, text=True)
    shutil.rmtree(d)
    return json.loads(r.stdout)


def logged(text, key):
    return re.search(rf"\b{key}=([^,)\s]+)", text).group(1)


def at_tp2(text, config, kv_line_heads):
    """A TP 1 start log as TP 2 would print it: tp_size, KV heads per device, the pool and its tokens
    (in GiB, which SGLang-JAX labels GB: its "11.86 GB" is 3108477 x 4096 bytes / 2**30)."""
    fraction = float(logged(text, "mem_fraction_static"))
    one, two = fit(config, 1, fraction), fit(config, 2, fraction)
    pool1 = int(logged(text, "max_tokens")) * int(logged(text, "cell_size"))
    pool2 = pool1 + one["weightBytesPerDevice"] - two["weightBytesPerDevice"]
    cell2 = two["kvBytesPerTokenPerDevice"]
    tokens2 = pool2 // cell2
    kv = config["num_key_value_heads"]
    text = re.sub(r"\btp_size=1\b", "tp_size=2", text)
    text = text.replace(f"original_kv_heads={kv}, tp_size=2, each device gets {kv} head(s)", f"original_kv_heads={kv}, tp_size=2, each device gets {kv_line_heads} head(s)")
    text = re.sub(r"available_kv_cache=[\d.]+GB, max_tokens=\d+, cell_size=\d+ bytes", f"available_kv_cache={pool2 / 2**30:.1f}GB, max_tokens={tokens2}, cell_size={cell2} bytes", text)
    text = re.sub(r"max_total_num_tokens after dp_size 1: \d+", f"max_total_num_tokens after dp_size 1: {tokens2}", text)
    text = re.sub(r"final max_total_num_tokens: \d+", f"final max_total_num_tokens: {tokens2}", text)
    text = re.sub(r"#tokens: \d+, Fused KV size: [\d.]+ GB", f"#tokens: {tokens2}, Fused KV size: {2 * tokens2 * cell2 / 2**30:.2f} GB", text)
    return text, {"pool1": pool1, "pool2": pool2, "tokens2": tokens2, "cell2": cell2, "w1": one["weightBytesPerDevice"], "w2": two["weightBytesPerDevice"]}


def csv(rows):
    return "index, name, memory.total [MiB], memory.used [MiB]\n" + "".join(f"{i}, NVIDIA H100 80GB HBM3, 81559 MiB, {u} MiB\n" for i, u in enumerate(rows))


def main():
    if not os.path.exists("dist/cli.js"):
        sys.exit("handwrite-tp2: build first (node esbuild.mjs)")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    versions = read(f"{GPU}/versions.txt").replace("devices=[CudaDevice(id=0)]", "devices=[CudaDevice(id=0), CudaDevice(id=1)]")
    gpu_line = re.search(r"^gpu=.*$", versions, re.M).group(0)
    write("versions.txt", versions.rstrip("\n") + f"\n{gpu_line}\n")
    for f in ("exports.sha256", "tp2-env.txt", "tp2-export128.config.json", "tp2-exporth3.config.json", "tp2-exporth3.fit.json", "tp2-exporth3.preflight.json", "fit128-manifest.json", "tp2-on1.engine.log"):
        shutil.copy(f"{GPU}/{f}", f"{OUT}/{f}")
    # The two-GPU launch is the one-GPU machine's TP 2 launch: the same arguments, the same argv.
    shutil.copy(f"{GPU}/tp2-on1.cli-args", f"{OUT}/tp2.cli-args")
    shutil.copy(f"{GPU}/tp2-on1.argv", f"{OUT}/tp2.argv")
    before = re.search(r"(\d+) MiB\s*$", read(f"{GPU}/tp2-gpus-before.csv")).group(1)
    write("tp2-gpus-before.csv", csv([before, before]))
    served = json.loads(read(f"{GPU}/tp2-export128.config.json"))
    start, s = at_tp2(read(f"{ONE}/sglang-jax-startup-ready.log"), served, served["num_key_value_heads"] // 2)
    write("tp2.engine.log", start)
    # The refusal is the engine's config check, before any device is touched: the CPU run's, on cuda.
    # Its ServerArgs made those of this launch: cuda, the fraction 0.2, no pool cap (the CPU run's 0.1 and 16,384).
    refused = read(f"{CPU}/tp2-heads3.engine.log").replace("device='cpu'", "device='cuda'").replace("mem_fraction_static=0.1,", "mem_fraction_static=0.2,").replace("max_total_tokens=16384,", "max_total_tokens=None,")
    write("tp2-heads3.engine.log", refused)
    context = re.search(r"(\d+) MiB\s*$", read(f"{GPU}/mem-context-gpus.csv")).group(1)
    write("mem-context-gpus.csv", csv([context, context]))
    big = dict(json.loads(read(f"{GPU}/fit128-manifest.json"))["config"], architectures=["LlamaForCausalLM"], model_type="llama", torch_dtype="bfloat16")
    mem1 = read(f"{GPU}/mem-tp1.engine.log")
    mem2, m = at_tp2(mem1, big, big["num_key_value_heads"] // 2)
    write("mem-tp2.engine.log", mem2)
    used1 = int(re.search(r"(\d+) MiB\s*$", read(f"{GPU}/mem-tp1-gpus-serving.csv")).group(1))
    working = used1 * MiB - int(context) * MiB - m["w1"] - m["pool1"]
    used2 = round((int(context) * MiB + m["w2"] + m["pool2"] + working) / MiB)
    write("mem-tp2-gpus-serving.csv", csv([used2, used2]))
    write("ps-at-end.txt", "# every process left at the end\nnone\n")
    write("tp2-gpu-apps-at-end.csv", "pid, gpu_uuid, used_gpu_memory [MiB]\n")
    write("HANDWRITTEN.md", f"""# Not a recording: written by hand (scripts/gpu/handwrite-tp2.py), 2026-12-06

No machine with two GPUs was lent, so nothing here ran on two GPUs. These files have the shape a run of
`COUNT=2 bash scripts/gpu/sglang-jax-run.sh` on two H100s writes, made from real runs, so the replay
tests have a two-GPU case. A real two-GPU recording replaces this folder.

| file | from |
|---|---|
| versions.txt, tp2-env.txt | the one-H100 machine's TP 2 run (`{os.path.basename(GPU)}`); versions.txt with a second `gpu=` line and `CudaDevice(id=1)` added |
| tp2-gpus-before.csv | that run's nvidia-smi before launch ({before} MiB used), for both GPUs |
| tp2.cli-args, tp2.argv | that run's TP 2 launch (`tp2-on1.*`): the same flags, the same engine argv |
| exports.sha256, tp2-on1.engine.log, tp2-export*.config.json, tp2-exporth3.fit.json, tp2-exporth3.preflight.json, fit128-manifest.json | copied from that run (real) |
| tp2-heads3.engine.log | the CPU run's refusal (`{os.path.basename(CPU)}`, real), its ServerArgs changed to this launch's (`device='cuda'`, `mem_fraction_static=0.2`, no `max_total_tokens`): the check reads only the config. The one-GPU run could not record it on a GPU: there the mesh of two devices fails first |
| tp2.engine.log | the real TP 1 start of the same export on an H100 (`{os.path.basename(ONE)}`), with `tp_size=2`, KV heads per device {served["num_key_value_heads"] // 2}, and the pool SGLang-JAX's rule gives at TP 2: TP 1's {s["pool1"]} bytes plus the weights TP 2 takes off a device (fit: {s["w1"]} − {s["w2"]}) = {s["pool2"]} bytes, ÷ fit's {s["cell2"]}-byte cell = {s["tokens2"]} tokens |
| mem-tp2.engine.log | the real TP 1 start of fit128 with nvidia-smi (`mem-tp1.engine.log`), changed the same way: pool {m["pool2"]} bytes, {m["tokens2"]} tokens of {m["cell2"]} bytes |
| mem-context-gpus.csv | the real bare-JAX process on the H100 ({context} MiB), for both GPUs |
| mem-tp2-gpus-serving.csv | context + fit's weights a device ({m["w2"]}) + the pool above + the working memory nvidia-smi showed at TP 1 beyond weights and pool ({working} bytes, carried over unchanged): {used2} MiB a GPU |
| ps-at-end.txt, tp2-gpu-apps-at-end.csv | what a clean stop leaves: nothing |

**By construction**, so the tests on this folder check the replay, not the engine: the cell size
and tokens come from fit's own rules; memory per GPU is TP 1's measured figure again (weights a
device fall by what the pool gains); the clean stop is assumed. What these cannot show, and a real
run would: whether the pool per device is what this rule says,
how the working memory scales with TP, the engine's own log lines at TP 2 on GPUs, NCCL's memory.
""")


if __name__ == "__main__":
    main()
