"""jax-serve verify entry point: your JAX model's logits, to compare with the export's in transformers.

`jax-serve verify` imports this file in your JAX environment and calls

    state = load(checkpoint, config)     # once; checkpoint is the JAX checkpoint you converted,
                                         # config the export's config.json as a dict
    logits = forward(state, input_ids)   # per prompt; input_ids int32 (1, T) -> float32 (1, T, vocab)

As generated it runs a plain jax.numpy forward of the layout named by PRESET, written from that
layout's documented semantics (RoPE pairing, query pre-scale, norm conventions), so it checks the
export against what the weights mean. Better still: make forward() call your own model (for
example `model = nnx.merge(graphdef, state)` in load and `model(input_ids)` in forward), so the
check covers your code too.
"""
import os

import numpy as np

PRESET = "talk-nnx-llama"


# --- loading ----------------------------------------------------------------------------------

def _f32(tree):
    if isinstance(tree, dict):
        # An nnx.State saved by orbax restores each Variable as {"value": array}.
        if set(tree) == {"value"}:
            return _f32(tree["value"])
        return {str(k): _f32(v) for k, v in tree.items()}
    return np.asarray(tree).astype(np.float32)


def load_tree(checkpoint):
    """A checkpoint as nested dicts of f32 numpy arrays: flax msgpack (also HF-Flax sharded folders),
    safetensors.flax, or an Orbax folder."""
    if os.path.isdir(checkpoint) and os.path.exists(os.path.join(checkpoint, "flax_model.msgpack.index.json")):
        import json
        from flax import serialization
        with open(os.path.join(checkpoint, "flax_model.msgpack.index.json")) as f:
            weight_map = json.load(f)["weight_map"]
        tree = {}
        for shard in sorted(set(weight_map.values())):
            with open(os.path.join(checkpoint, shard), "rb") as f:
                _merge(tree, serialization.msgpack_restore(f.read()))
        return _f32(tree)
    if os.path.isdir(checkpoint) and os.path.exists(os.path.join(checkpoint, "flax_model.msgpack")):
        checkpoint = os.path.join(checkpoint, "flax_model.msgpack")
    if checkpoint.endswith(".msgpack"):
        from flax import serialization
        with open(checkpoint, "rb") as f:
            return _f32(serialization.msgpack_restore(f.read()))
    if checkpoint.endswith(".safetensors"):
        from safetensors.flax import load_file
        tree = {}
        for k, v in load_file(checkpoint).items():
            node = tree
            *parents, leaf = k.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = v
        return _f32(tree)
    import orbax.checkpoint as ocp
    return _f32(ocp.StandardCheckpointer().restore(os.path.abspath(checkpoint)))


def _merge(into, tree):
    for k, v in tree.items():
        if isinstance(v, dict):
            _merge(into.setdefault(k, {}), v)
        else:
            into[k] = v


def load(checkpoint, config):
    return {"tree": load_tree(checkpoint), "config": config}


def forward(state, input_ids):
    return FORWARDS[PRESET](state["tree"], np.asarray(input_ids), state["config"])


# --- building blocks --------------------------------------------------------------------------

def _jnp():
    import jax
    import jax.numpy as jnp
    return jax, jnp


def _setting(cfg, key, layer_type="full_attention"):
    """A config value, from the transformers 4.x keys or 5.x rope_parameters."""
    if key == "rope_theta" and "rope_theta" not in cfg:
        rp = cfg["rope_parameters"]
        return (rp.get(layer_type) or rp)["rope_theta"]
    if key == "rope_local_base_freq" and key not in cfg:
        return cfg["rope_parameters"]["sliding_attention"]["rope_theta"]
    return cfg[key]


def _rms(x, w, eps, one_plus=False):
    jax, jnp = _jnp()
    y = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * (1.0 + w) if one_plus else y * w


def _angles(T, H, theta):
    _, jnp = _jnp()
    inv = 1.0 / (theta ** (jnp.arange(0, H, 2, dtype=jnp.float32) / H))
    return jnp.arange(T, dtype=jnp.float32)[:, None] * inv[None, :]  # (T, H/2)


def rope_half_split(x, theta):
    """HF rotate_half: feature i pairs with i + H/2. x is (B, T, heads, H)."""
    _, jnp = _jnp()
    ang = _angles(x.shape[1], x.shape[-1], theta)
    cos = jnp.cos(jnp.concatenate([ang, ang], -1))[None, :, None, :]
    sin = jnp.sin(jnp.concatenate([ang, ang], -1))[None, :, None, :]
    h = x.shape[-1] // 2
    return x * cos + jnp.concatenate([-x[..., h:], x[..., :h]], -1) * sin


def rope_interleaved(x, theta):
    """GPT-J / complex-pair RoPE (Meta's original, MaxText's LLaMARotaryEmbedding): 2i pairs with 2i + 1."""
    _, jnp = _jnp()
    ang = _angles(x.shape[1], x.shape[-1], theta)
    cos, sin = jnp.cos(ang)[None, :, None, :], jnp.sin(ang)[None, :, None, :]
    even, odd = x[..., 0::2], x[..., 1::2]
    return jnp.stack([even * cos - odd * sin, odd * cos + even * sin], -1).reshape(x.shape)


def attend(q, k, v, scale, window=None):
    """Causal grouped-query attention; q (B, T, N, H), k/v (B, T, K, H); `window` limits how far back."""
    jax, jnp = _jnp()
    N, K, T = q.shape[2], k.shape[2], q.shape[1]
    k, v = jnp.repeat(k, N // K, axis=2), jnp.repeat(v, N // K, axis=2)
    s = jnp.einsum("btnh,bsnh->bnts", q, k) * scale
    i, j = jnp.arange(T)[:, None], jnp.arange(T)[None, :]
    mask = j <= i if window is None else (j <= i) & (i - j < window)
    s = jnp.where(mask[None, None], s, -jnp.inf)
    return jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(s, axis=-1), v)


def llama(ids, cfg, embed, layers, final_norm, lm_head, rope=rope_half_split, query_scale=None):
    """A Llama-family decoder over einsum-shaped weights: per layer q (D, N, H), k/v (D, K, H),
    o (N, H, D), gate/up/down (in, out), ln1/ln2 (D,), and for Qwen3 q_norm/k_norm (H,).
    `query_scale` is 1/sqrt(head_dim) unless the layout folded it into the query kernel."""
    jax, jnp = _jnp()
    eps, theta = cfg["rms_norm_eps"], _setting(cfg, "rope_theta")
    x = jnp.asarray(embed)[ids]
    for L in layers:
        h = _rms(x, L["ln1"], eps)
        q = jnp.einsum("btd,dnh->btnh", h, L["q"])
        k = jnp.einsum("btd,dkh->btkh", h, L["k"])
        v = jnp.einsum("btd,dkh->btkh", h, L["v"])
        if "q_norm" in L:  # Qwen3: RMSNorm over head_dim, per head, before RoPE
            q, k = _rms(q, L["q_norm"], eps), _rms(k, L["k_norm"], eps)
        scale = 1.0 / np.sqrt(q.shape[-1]) if query_scale is None else query_scale
        o = attend(rope(q, theta), rope(k, theta), v, scale)
        x = x + jnp.einsum("btnh,nhd->btd", o, L["o"])
        h = _rms(x, L["ln2"], eps)
        x = x + (moe(h, L["moe"], cfg["num_experts_per_tok"]) if "moe" in L else (jax.nn.silu(h @ L["gate"]) * (h @ L["up"])) @ L["down"])
    return np.asarray(_rms(x, final_norm, eps) @ lm_head)


def moe(h, m, top_k):
    """A routed mixture of SwiGLU experts: router (D, E), gate/up (E, D, F), down (E, F, D). Each token
    takes its top-k router logits and weighs those experts by a softmax over just those k (MaxText's
    RoutedMoE; equal to softmax over all, top-k, renormalized). Every expert runs on every token here
    (tiny models), and the weights of the experts a token did not pick are zero."""
    jax, jnp = _jnp()
    logits = h @ m["router"]  # (B, T, E)
    top, idx = jax.lax.top_k(logits, top_k)
    weights = jnp.sum(jax.nn.one_hot(idx, logits.shape[-1]) * jax.nn.softmax(top, axis=-1)[..., None], axis=-2)  # (B, T, E)
    each = jnp.einsum("btef,efd->bted", jax.nn.silu(jnp.einsum("btd,edf->btef", h, m["gate"])) * jnp.einsum("btd,edf->btef", h, m["up"]), m["down"])
    return jnp.einsum("bte,bted->btd", weights, each)


def _heads(cfg):
    return cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"]), cfg["head_dim"]


def _dense_layer(a, m, ln1, ln2, cfg):
    """One layer from 2-D Linear kernels: (D, N·H) is (D, N, H) read as such (a reshape)."""
    N, K, H = _heads(cfg)
    return {
        "q": a["q_proj"]["kernel"].reshape(-1, N, H), "k": a["k_proj"]["kernel"].reshape(-1, K, H),
        "v": a["v_proj"]["kernel"].reshape(-1, K, H), "o": a["o_proj"]["kernel"].reshape(N, H, -1),
        "gate": m["gate_proj"]["kernel"], "up": m["up_proj"]["kernel"], "down": m["down_proj"]["kernel"], "ln1": ln1, "ln2": ln2,
    }


# --- the layouts --------------------------------------------------------------------------------

def talk_nnx_llama(t, ids, cfg):
    """The talk's NNX Llama: nnx.Linear (in, out) kernels, `norm_weights`, `attention`."""
    layers = [t["layers"][str(i)] for i in range(len(t["layers"]))]
    return llama(ids, cfg, t["token_embed"]["embedding"],
                 [_dense_layer(L["attention"], L["mlp"], L["input_layernorm"]["norm_weights"], L["post_attention_layernorm"]["norm_weights"], cfg) for L in layers],
                 t["norm"]["norm_weights"], t["lm_head"]["kernel"] if "lm_head" in t else t["token_embed"]["embedding"].T)


def bonsai(t, ids, cfg):
    """bonsai-style NNX Llama / Qwen3: einsum q/k/v (D, N, H), o (N, H, D) (or 2-D Linear), `scale` norms."""
    out = []
    for i in range(len(t["layers"])):
        L = t["layers"][str(i)]
        a = L.get("attn") or L["self_attn"]
        ln1, ln2 = L["input_layernorm"]["scale"], L["post_attention_layernorm"]["scale"]
        if a["q_proj"]["kernel"].ndim == 2:
            layer = _dense_layer(a, L["mlp"], ln1, ln2, cfg)
        else:
            m = L["mlp"]
            layer = {"q": a["q_proj"]["kernel"], "k": a["k_proj"]["kernel"], "v": a["v_proj"]["kernel"], "o": a["o_proj"]["kernel"],
                     "gate": m["gate_proj"]["kernel"], "up": m["up_proj"]["kernel"], "down": m["down_proj"]["kernel"], "ln1": ln1, "ln2": ln2}
        if "q_norm" in a:
            layer.update(q_norm=a["q_norm"]["scale"], k_norm=a["k_norm"]["scale"])
        out.append(layer)
    head = t["lm_head"]["kernel"] if "lm_head" in t else t["embedder"]["embedding"].T
    return llama(ids, cfg, t["embedder"]["embedding"], out, t["final_norm"]["scale"], head)


def maxtext(t, ids, cfg, rope=rope_interleaved, query_scale=1.0):
    """MaxText Llama, scanned (layer on axis 1) or not: interleaved RoPE (llama3.1 style), query
    kernel already divided by sqrt(head_dim), so attention applies no further scale. Its mixtures of
    experts (Mixtral's `MoeBlock_0`, Qwen3's `moe_block`) hold the router `gate.kernel` (D, E) and the
    experts `wi_0`/`wi_1` (E, D, F), `wo` (E, F, D), scanned with the layer on axis 1 (the experts'
    axis 0 stays first); Qwen3's attention has per-head `query_norm` / `key_norm`."""
    while "decoder" not in t:  # params.params wrapper
        t = t["params"]
    d = t["decoder"]

    def layer(get):
        a = get("self_attention")
        out = {"q": a["query"]["kernel"], "k": a["key"]["kernel"], "v": a["value"]["kernel"], "o": a["out"]["kernel"],
               "ln1": get("pre_self_attention_layer_norm")["scale"], "ln2": get("post_self_attention_layer_norm")["scale"]}
        if "query_norm" in a:
            out.update(q_norm=a["query_norm"]["scale"], k_norm=a["key_norm"]["scale"])
        block = next((b for b in ("MoeBlock_0", "moe_block") if b in layer_names), None)
        if block:
            m = get(block)
            out["moe"] = {"router": m["gate"]["kernel"], "gate": m["wi_0"], "up": m["wi_1"], "down": m["wo"]}
        else:
            m = get("mlp")
            out.update(gate=m["wi_0"]["kernel"], up=m["wi_1"]["kernel"], down=m["wo"]["kernel"])
        return out

    if "layers" in d:
        layer_names = d["layers"]
        n = d["layers"]["pre_self_attention_layer_norm"]["scale"].shape[1]
        # Every scanned leaf holds the layer on axis 1: (D, L, …) kernels and norms, (E, L, …) experts.
        take = lambda tree, i: {k: take(v, i) for k, v in tree.items()} if isinstance(tree, dict) else tree[:, i]
        layers = [layer(lambda name, i=i: take(d["layers"][name], i)) for i in range(n)]
    else:
        n = sum(1 for k in d if k.startswith("layers_"))
        layer_names = d["layers_0"]
        layers = [layer(lambda name, i=i: d[f"layers_{i}"][name]) for i in range(n)]
    head = d["logits_dense"]["kernel"] if "logits_dense" in d else t["token_embedder"]["embedding"].T
    return llama(ids, cfg, t["token_embedder"]["embedding"], layers, d["decoder_norm"]["scale"], head, rope=rope, query_scale=query_scale)


def maxtext_llama2(t, ids, cfg):
    """MaxText Llama 2 / Mistral: as above with half-split RoPE."""
    return maxtext(t, ids, cfg, rope=rope_half_split)


def maxtext_mixtral(t, ids, cfg):
    """MaxText Mixtral: half-split RoPE, query kernel divided by sqrt(head_dim) (as MaxText Llama)."""
    return maxtext(t, ids, cfg, rope=rope_half_split)


def maxtext_qwen3_moe(t, ids, cfg):
    """MaxText Qwen3-MoE: half-split RoPE, q/k norms, the query scaled at run time (1/sqrt(head_dim))."""
    return maxtext(t, ids, cfg, rope=rope_half_split, query_scale=None)


def tunix_qwen3(t, ids, cfg):
    """Qwen3 / Qwen3-MoE in the Tunix layout: einsum q/k/v (D, N, H) and o (N, H, D), `w` norms (x · w),
    per-head q/k norms, half-split RoPE, the query scaled at run time; a Linear MLP or a router (D, E)
    with experts gate/up (E, D, F), down (E, F, D) (softmax, top-k, renormalized)."""
    layers = []
    for i in range(len(t["layers"])):
        L = t["layers"][str(i)]
        a, m = L["attn"], L["mlp"]
        layer = {"q": a["q_proj"]["w"], "k": a["k_proj"]["w"], "v": a["v_proj"]["w"], "o": a["o_proj"]["w"],
                 "q_norm": a["q_norm"]["w"], "k_norm": a["k_norm"]["w"],
                 "ln1": L["input_layernorm"]["w"], "ln2": L["post_attention_layernorm"]["w"]}
        if "router" in m:
            layer["moe"] = {"router": m["router"]["kernel"], "gate": m["gate_proj"], "up": m["up_proj"], "down": m["down_proj"]}
        else:
            layer.update(gate=m["gate_proj"]["kernel"], up=m["up_proj"]["kernel"], down=m["down_proj"]["kernel"])
        layers.append(layer)
    head = t["lm_head"]["w"] if "lm_head" in t else t["embedder"]["input_embedding"].T
    return llama(ids, cfg, t["embedder"]["input_embedding"], layers, t["final_norm"]["w"], head)


def hf_flax_llama(t, ids, cfg):
    """transformers 4.x FlaxLlamaForCausalLM's parameters (PyTorch names, Flax leaves)."""
    m = t["model"]
    layers = [m["layers"][str(i)] for i in range(len(m["layers"]))]
    return llama(ids, cfg, m["embed_tokens"]["embedding"],
                 [_dense_layer(L["self_attn"], L["mlp"], L["input_layernorm"]["weight"], L["post_attention_layernorm"]["weight"], cfg) for L in layers],
                 m["norm"]["weight"], t["lm_head"]["kernel"] if "lm_head" in t else m["embed_tokens"]["embedding"].T)


def tunix_gemma3(t, ids, cfg):
    """Gemma 3 (text) in the Tunix layout: embedding scaled by sqrt(D) and tied, norms multiply by
    1 + scale (also around attention and MLP outputs), q/k norms, sliding-window layers with their
    own RoPE base, query scaled by query_pre_attn_scalar^-1/2, tanh-GELU gated MLP."""
    jax, jnp = _jnp()
    eps = cfg["rms_norm_eps"]
    norm = lambda x, w: _rms(x, w, eps, one_plus=True)
    emb = jnp.asarray(t["embedder"]["input_embedding"])
    x = emb[ids] * jnp.sqrt(jnp.float32(emb.shape[1]))
    for i in range(len(t["layers"])):
        L = t["layers"][str(i)]
        a = L["attn"]
        sliding = cfg["layer_types"][i] == "sliding_attention"
        theta = _setting(cfg, "rope_local_base_freq") if sliding else _setting(cfg, "rope_theta")
        h = norm(x, L["pre_attention_norm"]["scale"])
        if "qkv_einsum" in a:
            wq, wk, wv = a["qkv_einsum"]["w"]
        else:
            wq, (wk, wv) = a["q_einsum"]["w"], a["kv_einsum"]["w"]
        q = norm(jnp.einsum("btd,ndh->btnh", h, wq), a["_query_norm"]["scale"])
        k = norm(jnp.einsum("btd,kdh->btkh", h, wk), a["_key_norm"]["scale"])
        v = jnp.einsum("btd,kdh->btkh", h, wv)
        o = attend(rope_half_split(q, theta), rope_half_split(k, theta), v, cfg["query_pre_attn_scalar"] ** -0.5, cfg["sliding_window"] if sliding else None)
        x = x + norm(jnp.einsum("btnh,nhd->btd", o, a["attn_vec_einsum"]["w"]), L["post_attention_norm"]["scale"])
        h = norm(x, L["pre_ffw_norm"]["scale"])
        m = L["mlp"]
        y = (jax.nn.gelu(h @ m["gate_proj"]["kernel"], approximate=True) * (h @ m["up_proj"]["kernel"])) @ m["down_proj"]["kernel"]
        x = x + norm(y, L["post_ffw_norm"]["scale"])
    return np.asarray(norm(x, t["final_norm"]["scale"]) @ emb.T)


FORWARDS = {
    "talk-nnx-llama": talk_nnx_llama,
    "bonsai-llama": bonsai,
    "bonsai-qwen3": bonsai,
    "maxtext-llama3.1": maxtext,
    "maxtext-llama2": maxtext_llama2,
    "maxtext-mixtral": maxtext_mixtral,
    "maxtext-qwen3-moe": maxtext_qwen3_moe,
    "hf-flax-llama": hf_flax_llama,
    "tunix-gemma3": tunix_gemma3,
    "tunix-qwen3": tunix_qwen3,
    "tunix-qwen3-moe": tunix_qwen3,
}
