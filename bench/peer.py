"""The Python peers the benchmarks run side by side with jax-serve.

  list INDEX         prints the listing `jax-serve inspect INDEX --json` prints (each tensor's name, shard,
                     dtype, shape, bytes) from json.load of the index and safe_open of every shard: the
                     whole-process peer of the open line
  open DIR N         median ms over N runs of loading model.safetensors.index.json and listing every
                     shard it names with safe_open (names, dtypes and shapes), the way a Python
                     script (or transformers) inspects a sharded checkpoint
  stats FILE NAME N  median GB/s over N runs of numpy computing the same statistics as jax-serve
                     (min, max, mean, std over finite values; NaN/±Inf/zero counts), decoding included
  talk SRC OUT       the talk's pipeline: safetensors.numpy load_file, np.ascontiguousarray(k.T) of
                     every 2-D kernel, HF names, save_file; prints seconds and peak RSS (MB)
  run -- CMD...      runs CMD and prints its seconds and peak RSS (MB): the same measure for jax-serve
                     and for dd
  sse URL N          median ms per chunk over N streamed chat completions read with the openai client
                     (the usual Python way to consume vLLM/SGLang streams)
"""
import json
import os
import statistics
import sys
import time

from safetensors import safe_open

# numpy is imported where it is used: the list peer, timed as a whole process, does not need it.


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


def list_index(index_path: str) -> None:
    d = os.path.dirname(os.path.abspath(index_path))
    with open(index_path, "rb") as f:
        index = json.load(f)
    tensors = []
    for name in sorted(set(index["weight_map"].values())):
        with safe_open(os.path.join(d, name), framework="np") as h:
            for k in h.keys():
                s = h.get_slice(k)
                shape = s.get_shape()
                dtype = s.get_dtype()
                size = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2}.get(dtype, 1)
                n = 1
                for x in shape:
                    n *= x
                tensors.append({"name": k, "path": os.path.join(d, name), "dtype": dtype, "shape": shape, "bytes": n * size})
    sys.stdout.write(json.dumps({"format": "safetensors-sharded", "location": index_path, "tensors": tensors}) + "\n")


def bench_sse(url: str, n: int) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="none")
    per_chunk = []
    for _ in range(n):
        t0 = time.perf_counter()
        chunks = 0
        text = []
        for c in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
            if c.choices and c.choices[0].delta.content:
                text.append(c.choices[0].delta.content)
            chunks += 1
        per_chunk.append((time.perf_counter() - t0) * 1000 / max(1, chunks))
    print(json.dumps({"msPerChunk": statistics.median(per_chunk), "chunks": chunks}))


def bench_stats(path: str, name: str, n: int) -> None:
    import numpy as np
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


TALK_NAMES = [
    (r"^token_embed\.embedding$", "model.embed_tokens.weight", False),
    (r"^layers\.(\d+)\.attention\.(q_proj|k_proj|v_proj|o_proj)\.kernel$", r"model.layers.\1.self_attn.\2.weight", True),
    (r"^layers\.(\d+)\.mlp\.(gate_proj|up_proj|down_proj)\.kernel$", r"model.layers.\1.mlp.\2.weight", True),
    (r"^layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.norm_weights$", r"model.layers.\1.\2.weight", False),
    (r"^norm\.norm_weights$", "model.norm.weight", False),
    (r"^lm_head\.kernel$", "lm_head.weight", True),
]


def talk(src: str, out: str) -> None:
    """The talk notebook's export, as a user writes it: everything in memory, numpy transposes."""
    import numpy as np
    import re
    import resource
    from safetensors.numpy import load_file, save_file
    t0 = time.perf_counter()
    weights = load_file(src)
    servable = {}
    for k, v in weights.items():
        for pattern, name, transpose in TALK_NAMES:
            if re.match(pattern, k):
                servable[re.sub(pattern, name, k)] = np.ascontiguousarray(v.T) if transpose else v
                break
    save_file(servable, out, metadata={"format": "pt"})
    print(json.dumps({"seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def maxtext(src: str, out: str) -> None:
    """A MaxText scanned checkpoint to HF as a numpy user writes it (the maxtext to-HF hooks' steps):
    slice each layer off axis 1, undo the query scale, de-interleave q/k per head, reshape, transpose."""
    import numpy as np
    import resource
    from safetensors.numpy import load_file, save_file
    t0 = time.perf_counter()
    w = {k.removeprefix("params.params."): v for k, v in load_file(src).items()}
    lay = "decoder.layers."
    D, L, N, H = w[lay + "self_attention.query.kernel"].shape
    deint = lambda x: np.concatenate([x[..., ::2], x[..., 1::2]], -1)
    np.seterr(over="ignore")  # the synthetic bytes include huge floats; the scale overflows them as ours does
    hf = {"model.embed_tokens.weight": w["token_embedder.embedding"], "model.norm.weight": w["decoder.decoder_norm.scale"],
          "lm_head.weight": np.ascontiguousarray(w["decoder.logits_dense.kernel"].T)}
    for i in range(L):
        p = f"model.layers.{i}."
        att = lambda n: w[lay + f"self_attention.{n}.kernel"][:, i]
        hf[p + "self_attn.q_proj.weight"] = np.ascontiguousarray((deint(att("query")) * np.float32(np.sqrt(H))).reshape(D, -1).T)
        hf[p + "self_attn.k_proj.weight"] = np.ascontiguousarray(deint(att("key")).reshape(D, -1).T)
        hf[p + "self_attn.v_proj.weight"] = np.ascontiguousarray(att("value").reshape(D, -1).T)
        hf[p + "self_attn.o_proj.weight"] = np.ascontiguousarray(att("out").reshape(-1, D).T)
        for src_name, name in (("wi_0", "gate_proj"), ("wi_1", "up_proj"), ("wo", "down_proj")):
            hf[p + f"mlp.{name}.weight"] = np.ascontiguousarray(w[lay + f"mlp.{src_name}.kernel"][:, i].T)
        hf[p + "input_layernorm.weight"] = np.ascontiguousarray(w[lay + "pre_self_attention_layer_norm.scale"][:, i])
        hf[p + "post_attention_layernorm.weight"] = np.ascontiguousarray(w[lay + "post_self_attention_layer_norm.scale"][:, i])
    save_file(hf, out, metadata={"format": "pt"})
    print(json.dumps({"seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def maxtext_moe(src: str, out: str) -> None:
    """A MaxText Mixtral (scanned, experts stacked (E, L, ...)) to HF as MaxText's to-HF hooks do it
    in numpy: the query scale undone, each layer sliced off axis 1, each expert transposed."""
    import numpy as np
    import resource
    from safetensors.numpy import load_file, save_file
    t0 = time.perf_counter()
    w = {k.removeprefix("params.params."): v for k, v in load_file(src).items()}
    lay = "decoder.layers."
    D, L, N, H = w[lay + "self_attention.query.kernel"].shape
    E = w[lay + "MoeBlock_0.wi_0"].shape[0]
    np.seterr(over="ignore")
    hf = {"model.embed_tokens.weight": w["token_embedder.embedding"], "model.norm.weight": w["decoder.decoder_norm.scale"],
          "lm_head.weight": np.ascontiguousarray(w["decoder.logits_dense.kernel"].T)}
    for i in range(L):
        p = f"model.layers.{i}."
        att = lambda n: w[lay + f"self_attention.{n}.kernel"][:, i]
        hf[p + "self_attn.q_proj.weight"] = np.ascontiguousarray((att("query") * np.float32(np.sqrt(H))).reshape(D, -1).T)
        hf[p + "self_attn.k_proj.weight"] = np.ascontiguousarray(att("key").reshape(D, -1).T)
        hf[p + "self_attn.v_proj.weight"] = np.ascontiguousarray(att("value").reshape(D, -1).T)
        hf[p + "self_attn.o_proj.weight"] = np.ascontiguousarray(att("out").reshape(-1, D).T)
        hf[p + "block_sparse_moe.gate.weight"] = np.ascontiguousarray(w[lay + "MoeBlock_0.gate.kernel"][:, i].T)
        for e in range(E):
            for src_name, name in (("wi_0", "w1"), ("wi_1", "w3"), ("wo", "w2")):
                hf[p + f"block_sparse_moe.experts.{e}.{name}.weight"] = np.ascontiguousarray(w[lay + f"MoeBlock_0.{src_name}"][e, i].T)
        hf[p + "input_layernorm.weight"] = np.ascontiguousarray(w[lay + "pre_self_attention_layer_norm.scale"][:, i])
        hf[p + "post_attention_layernorm.weight"] = np.ascontiguousarray(w[lay + "post_self_attention_layer_norm.scale"][:, i])
    save_file(hf, out, metadata={"format": "pt"})
    print(json.dumps({"seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(cmd) -> None:
    import resource
    import subprocess
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(json.dumps({"seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


if __name__ == "__main__":
    if sys.argv[1] == "talk":
        talk(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "maxtext":
        maxtext(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "maxtext-moe":
        maxtext_moe(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "run":
        run(sys.argv[3:])
    elif sys.argv[1] == "sse":
        bench_sse(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "list":
        list_index(sys.argv[2])
    elif sys.argv[1] == "open":
        bench_open(sys.argv[2], int(sys.argv[3]))
    else:
        bench_stats(sys.argv[2], sys.argv[3], int(sys.argv[4]))
