"""jax-serve verify, the Python half: logits of an export (transformers) and of its JAX source (the
user's entry point), written as .npy for jax-serve to compare. Two commands, so each can run in its
own environment (JAX and torch often live in different venvs):

  hf EXPORT_DIR PROMPTS_JSON OUT_DIR
      tokenize each prompt with the export's tokenizer, run AutoModelForCausalLM in float32;
      write OUT_DIR/ids.json (the token ids) and OUT_DIR/hf-K.npy (1, T, vocab) per prompt
  jax ENTRY_PY CHECKPOINT CONFIG_JSON OUT_DIR
      import ENTRY_PY, state = load(CHECKPOINT, config), then forward(state, ids) for every prompt
      in OUT_DIR/ids.json; write OUT_DIR/jax-K.npy

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


def hf(export_dir, prompts_file, out_dir):
    import numpy as np
    try:
        import torch
        import transformers
    except ImportError as e:
        fail(f"this Python ({sys.executable}) cannot import {e.name}; the export side needs torch and transformers (choose another interpreter for it).")
    with open(prompts_file) as f:
        prompts = json.load(f)
    tok = transformers.AutoTokenizer.from_pretrained(export_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["hf"] and len(sys.argv) == 5:
        hf(*sys.argv[2:])
    elif sys.argv[1:2] == ["jax"] and len(sys.argv) == 6:
        jax(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)
