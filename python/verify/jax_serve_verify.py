"""jax-serve verify, the Python half: logits of an export (transformers) and of its JAX source (the
user's entry point), written as .npy for jax-serve to compare. Two commands, so each can run in its
own environment (JAX and torch often live in different venvs):

  hf EXPORT_DIR PROMPTS_JSON OUT_DIR
      tokenize each prompt with the export's tokenizer, run AutoModelForCausalLM in float32;
      write OUT_DIR/ids.json (the token ids) and OUT_DIR/hf-K.npy (1, T, vocab) per prompt
  jax ENTRY_PY CHECKPOINT CONFIG_JSON OUT_DIR
      import ENTRY_PY, state = load(CHECKPOINT, config), then forward(state, ids) for every prompt
      in OUT_DIR/ids.json; write OUT_DIR/jax-K.npy
  served EXPORT_DIR REQUESTS_JSON OUT_JSON
      jax-serve check-served: teacher-force what a server generated through the export (float32).
      REQUESTS_JSON is {"prompts": [{"prompt", "chat", "ids" (the server's token ids, or null),
      "text" (the server's text)}]}. Per prompt, OUT_JSON gets the prompt's ids, the generated ids
      compared (the server's, or when it sent none, ids recovered from its text: see below) and,
      at each of the n+1 positions after the prompt (the last one is what comes after the server's
      last token), the reference's argmax, its top-2 logit margin, the |top logit|, the gap from the
      top logit to the server's token and the log-softmax of the server's token. `jax` over
      OUT_DIR/ids.json (prompt + compared ids) then gives the JAX entry point's view of the same.

Failures print one line `jax-serve-verify: <what went wrong>` on stderr and exit 2.
"""
import importlib.util
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def fail(message):
    print(f"jax-serve-verify: {message}", file=sys.stderr)
    sys.exit(2)


def _load(export_dir, transformers, torch):
    """The export's tokenizer and model in float32, or one line naming the folder: a folder without
    tokenizer files, or with weights transformers cannot read, raises a long multi-line message."""
    what = "tokenizer"
    try:
        tok = transformers.AutoTokenizer.from_pretrained(export_dir)
        what = "model"
        model = transformers.AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()
    except Exception as e:  # noqa: BLE001 - any load failure is the folder's, reported by name
        said = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        fail(f"{export_dir}: transformers cannot load the export's {what} ({said[:300]}); give the export folder the server serves, with its config, weights and tokenizer files.")
    return tok, model


def hf(export_dir, prompts_file, out_dir):
    import numpy as np
    try:
        import torch
        import transformers
    except ImportError as e:
        fail(f"this Python ({sys.executable}) cannot import {e.name}; the export side needs torch and transformers (choose another interpreter for it).")
    with open(prompts_file) as f:
        prompts = json.load(f)
    tok, model = _load(export_dir, transformers, torch)
    ids = [tok(p)["input_ids"] for p in prompts]
    for k, row in enumerate(ids):
        with torch.no_grad():
            logits = model(torch.tensor([row])).logits.float().numpy()
        np.save(os.path.join(out_dir, f"hf-{k}.npy"), logits)
    with open(os.path.join(out_dir, "ids.json"), "w") as f:
        json.dump(ids, f)


def jax(entry, checkpoint, config_file, out_dir):
    import numpy as np
    spec = importlib.util.spec_from_file_location("jax_serve_entry", entry)
    if spec is None or not os.path.isfile(entry):
        fail(f"{entry}: not a Python file (the entry point is a .py file defining load() and forward()).")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: report it, with its type
        fail(f"{entry}: importing it raised {type(e).__name__}: {e}")
    if not callable(getattr(module, "load", None)) or not callable(getattr(module, "forward", None)):
        fail(f"{entry} must define load(checkpoint, config) and forward(state, input_ids) (jax-serve verify --template PRESET writes one).")
    with open(config_file) as f:
        config = json.load(f)
    with open(os.path.join(out_dir, "ids.json")) as f:
        ids = json.load(f)
    try:
        state = module.load(checkpoint, config)
    except Exception as e:
        fail(f"{entry}: load({checkpoint!r}, config) raised {type(e).__name__}: {e}")
    for k, row in enumerate(ids):
        try:
            logits = np.asarray(module.forward(state, np.asarray([row], dtype=np.int32)), dtype=np.float32)
        except Exception as e:
            fail(f"{entry}: forward() on prompt {k} raised {type(e).__name__}: {e}")
        if logits.ndim != 3 or logits.shape[:2] != (1, len(row)):
            fail(f"{entry}: forward() returned shape {logits.shape} for {len(row)} tokens; expected (1, {len(row)}, vocab).")
        np.save(os.path.join(out_dir, f"jax-{k}.npy"), logits)


def _ids_from_tokens(model, tok, prompt_ids, text, tokens, eos, torch):
    """Token ids from a server's text when its logprobs list each token's text (OpenAI-style): the
    text skips special tokens (SGLang-JAX's chat logprobs listed a "<pad>" its content left out),
    so each goes back in at its place in the list, and the model reads it there while the ordinary
    ids are recovered from the text as below (the listed texts show a partial UTF-8 byte as U+FFFD,
    so they cannot stand in for the text)."""
    special = {t: tok.convert_tokens_to_ids(t) for t in tok.all_special_tokens}
    at = {i: int(special[t]) for i, t in enumerate(tokens) if t in special}
    return _recover_ids(model, tok, prompt_ids, text, eos, torch, max_steps=4 * len(text) + len(at) + 8, specials_at=at)


def _recover_ids(model, tok, prompt_ids, text, eos, torch, max_steps, specials_at=None):
    """Token ids for a server that sent only text (`transformers serve`): re-tokenising the text
    alone may split it differently from what was generated (BPE merges across token boundaries),
    so the export's model guides the split. At each step the reference's argmax is taken when its
    text continues the server's text, else the first of its top 64 candidates that does, else the
    rest re-tokenised up to a whole character. Each kept id's decoded text must extend what was
    matched: a special token (EOS decodes to nothing) never stands in for text, unless
    `specials_at` (generated position -> id) says the server put one there, or the server wrote
    the special token's own text there (a server that does not skip special tokens in its output
    writes EOS as "</s>"): then it is one id, taken when the model ranks it above every ordinary
    token that continues the text, and its text is dropped from what is left to match (it
    decodes to nothing here)."""
    ids = []
    past = None
    step_input = list(prompt_ids)
    prev = ""
    matched = 0  # characters of `text` the kept ids account for
    literal = {int(tok.convert_tokens_to_ids(t)): t for t in tok.all_special_tokens if t}
    for _ in range(max_steps):
        if specials_at and len(ids) in specials_at:
            # Decodes to nothing (skipped), so the text matched so far stays; the model reads it.
            ids.append(specials_at[len(ids)])
            step_input = step_input + [ids[-1]]
            continue
        if prev == text:
            break
        with torch.no_grad():
            out = model(torch.tensor([step_input]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        order = torch.argsort(out.logits[0, -1].float(), descending=True)[:64].tolist()

        def fits(t):
            # The decoded text must grow and stay a prefix of the server's. A byte token that starts
            # a character of several bytes decodes to U+FFFD until the character is whole, so its
            # bytes cannot be checked from text: such characters go through the fallback below.
            cand = tok.decode(ids + [t], skip_special_tokens=True)
            return len(cand) if len(cand) > len(prev) and text.startswith(cand) else None

        # The special token whose text the server wrote here, longest first ("<|im_end|>" over "<").
        here = max((i for i, t in literal.items() if text.startswith(t, matched)), key=lambda i: len(literal[i]), default=None)
        if here is not None:
            ordinary = next((t for t in order if t not in literal and fits(t) is not None), None)
            if ordinary is None or here not in order or order.index(here) < order.index(ordinary):
                ids.append(here)
                text = text[:matched] + text[matched + len(literal[here]):]
                step_input = [here]
                continue

        pick = None
        for t in order:
            if t in eos:
                continue
            got = fits(t)
            if got is not None:
                pick, matched = t, got
                break
        if pick is not None:
            added = [pick]
        else:
            # No candidate continues the text: the rest re-tokenised, as far as it takes to end on
            # a whole character (the bytes of one character go in together).
            added = []
            for t in tok(text[matched:], add_special_tokens=False)["input_ids"]:
                added.append(t)
                cand = tok.decode(ids + added, skip_special_tokens=True)
                if text.startswith(cand) and len(cand) > matched:
                    matched = len(cand)
                    break
            if not added or not text.startswith(tok.decode(ids + added, skip_special_tokens=True)):
                break  # the text cannot be rebuilt from tokens: compare what was
        ids.extend(added)
        step_input = added
        prev = tok.decode(ids, skip_special_tokens=True)
    return ids


def served(export_dir, requests_file, out_file):
    try:
        import torch
        import transformers
    except ImportError as e:
        fail(f"this Python ({sys.executable}) cannot import {e.name}; the reference needs torch and transformers (choose another interpreter with --python).")
    with open(requests_file) as f:
        requests = json.load(f)["prompts"]
    tok, model = _load(export_dir, transformers, torch)
    eos = model.generation_config.eos_token_id if model.generation_config is not None else None
    if eos is None:
        eos = model.config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if tok.eos_token_id is not None:
        eos.add(tok.eos_token_id)
    results = []
    for r in requests:
        if r.get("chat"):
            if not tok.chat_template:
                fail(f"{export_dir}: the tokenizer has no chat template, so a chat request has no reference (use --api completions).")
            prompt_ids = tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        else:
            prompt_ids = tok(r["prompt"])["input_ids"]
        prompt_ids = [int(i) for i in prompt_ids]
        if r.get("ids") is not None:
            ids, source = [int(i) for i in r["ids"]], "server"
        elif r.get("tokens"):
            ids, source = _ids_from_tokens(model, tok, prompt_ids, r.get("text") or "", r["tokens"], eos, torch), "text"
        else:
            text = r.get("text") or ""
            ids, source = _recover_ids(model, tok, prompt_ids, text, eos, torch, max_steps=4 * len(text) + 8), "text"
        vocab = model.config.vocab_size
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            fail(f"the server returned token id {bad[0]}, outside the export's vocabulary of {vocab}: is it serving another model?")
        seq = prompt_ids + ids
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0].float()
        # Position p predicts seq[p + 1]: the n + 1 rows from the prompt's last token on.
        rows = logits[len(prompt_ids) - 1:]
        top2 = torch.topk(rows, 2, dim=-1)
        logsm = torch.log_softmax(rows, dim=-1)
        n = len(ids)
        served_ids = torch.tensor(ids, dtype=torch.long)
        server_logit = rows[:n].gather(1, served_ids[:, None])[:, 0] if n else torch.zeros(0)
        argmax = top2.indices[:, 0].tolist()
        results.append({
            "promptIds": prompt_ids,
            "ids": ids,
            "idsFrom": source,
            "argmax": argmax,
            "margin": (top2.values[:, 0] - top2.values[:, 1]).tolist(),
            "topLogit": top2.values[:, 0].abs().tolist(),
            "gap": (top2.values[:n, 0] - server_logit).tolist(),
            "logprob": logsm[:n].gather(1, served_ids[:, None])[:, 0].tolist() if n else [],
            "tokenText": [tok.decode([i]) for i in ids],
            "argmaxText": [tok.decode([i]) for i in argmax],
            # Where each generated token's text starts in the decoded text (the panel marks the divergence).
            "prefixChars": [len(tok.decode(ids[:k], skip_special_tokens=True)) for k in range(n + 1)],
            "eos": sorted(eos),
        })
    with open(out_file, "w") as f:
        json.dump({"prompts": results}, f)


if __name__ == "__main__":
    if sys.argv[1:2] == ["hf"] and len(sys.argv) == 5:
        hf(*sys.argv[2:])
    elif sys.argv[1:2] == ["jax"] and len(sys.argv) == 6:
        jax(*sys.argv[2:])
    elif sys.argv[1:2] == ["served"] and len(sys.argv) == 5:
        served(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)
