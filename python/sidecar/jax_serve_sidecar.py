"""jax-serve sidecar: reads Orbax checkpoints for the VS Code extension and the CLI.

It runs with the user's Python, so it works with the tensorstore they already have (orbax brings it),
and it stays alive between requests because importing them costs seconds. It never restores a whole tree:
structure comes from the checkpoint's `_METADATA` file (or, without one, from the arrays its store
lists) and values are read leaf by leaf, range by range, through tensorstore.

Protocol (version 1), one request per line on stdin, one reply per line on stdout:

  {"id": 1, "op": "hello"}
  {"id": 2, "op": "open", "path": "/abs/ckpt"}
  {"id": 3, "op": "read", "path": "/abs/ckpt/item", "param": "params.w", "offset": 0, "length": 4096}
  {"id": 4, "op": "modules"}      which of jax/orbax are imported (diagnostics, tests)
  {"id": 5, "op": "close", "path": "/abs/ckpt/item"}

  {"id": N, "ok": true, "result": {...}}               a reply
  {"id": N, "ok": true, "bytes": L}                    a read reply; exactly L raw bytes follow
  {"id": N, "ok": false, "error": {"code": "E_...", "message": "..."}}

`read` returns the leaf's elements in C order from byte `offset` for `length` bytes, little-endian,
both multiples of the element size. Logs go to stderr; stdout carries only the protocol.
Needs Python >= 3.9 and tensorstore; orbax-checkpoint itself is never imported.
Tested with orbax-checkpoint 0.12.8 and tensorstore 0.1.86.
"""

import ast
import collections
import datetime
import importlib.metadata
import json
import os
import platform
import re
import sys

PROTOCOL = 1
# Open tensorstores kept per sidecar; a viewer touches a few leaves at a time.
MAX_OPEN_ARRAYS = 256
# Decoded chunks kept by tensorstore, so nearby small reads (a column of a slice) hit memory.
CACHE_BYTES = 64 * 1024 * 1024
# Largest single read; the client asks for a few MB at a time.
MAX_READ_BYTES = 256 * 1024 * 1024
STEP_DIR = re.compile(r"^\d+$")


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def version_of(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def need_tensorstore():
    try:
        import tensorstore  # noqa: F401
    except ImportError as e:
        raise Failure(
            "E_UNSUPPORTED",
            f"{sys.executable} cannot import tensorstore ({e}); install it in that environment "
            "(pip install tensorstore) or choose another interpreter.",
        )
    return tensorstore


def hello():
    return {
        "protocol": PROTOCOL,
        "python": platform.python_version(),
        "executable": sys.executable,
        "orbax": version_of("orbax-checkpoint"),
        "tensorstore": version_of("tensorstore"),
        "numpy": version_of("numpy"),
    }


# ---------------------------------------------------------------------------------------------
# Finding the item folder


def is_item(d):
    if os.path.isfile(os.path.join(d, "_METADATA")) or os.path.isfile(os.path.join(d, "manifest.ocdbt")):
        return True
    # Like orbax's format_utils: OCDBT process folders, or array folders (use_ocdbt=False).
    return any(
        n.startswith("ocdbt.process_") or os.path.isfile(os.path.join(d, n, ".zarray")) or os.path.isfile(os.path.join(d, n, "zarr.json"))
        for n in safe_listdir(d)
    )


def safe_listdir(d):
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []


def resolve_item(path):
    """The folder that holds one pytree: the path itself, the one item of a step, or the latest step."""
    if not os.path.exists(path):
        raise Failure("E_NOT_FOUND", f"{path}: no such file or folder.")
    if not os.path.isdir(path):
        raise Failure("E_FORMAT", f"{path}: an Orbax checkpoint is a folder, not a file.")
    notes = []
    d = path
    # At most root -> step -> item.
    for _ in range(3):
        if is_item(d):
            return d, notes
        names = [n for n in safe_listdir(d) if os.path.isdir(os.path.join(d, n))]
        steps = sorted((n for n in names if STEP_DIR.match(n)), key=int)
        if steps:
            notes.append(f"latest of {len(steps)} steps: {steps[-1]}")
            d = os.path.join(d, steps[-1])
            continue
        items = [n for n in names if is_item(os.path.join(d, n))]
        if len(items) == 1:
            notes.append(f"item: {items[0]}")
            d = os.path.join(d, items[0])
            continue
        if items:
            raise Failure(
                "E_USAGE",
                f"{d}: this step holds {len(items)} items ({', '.join(items)}); open one of those folders.",
            )
        break
    raise Failure(
        "E_FORMAT",
        f"{path}: not an Orbax checkpoint (no _METADATA, manifest.ocdbt, ocdbt.process_* or zarr array folders inside, "
        "nor a step or item folder holding one).",
    )


# ---------------------------------------------------------------------------------------------
# Structure


def read_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def tree_from_metadata_file(item):
    """Leaves from `_METADATA`: key paths and value kinds, in the order orbax saved them."""
    md = read_json(os.path.join(item, "_METADATA"))
    tree = md.get("tree_metadata")
    if not isinstance(tree, dict):
        raise Failure("E_FORMAT", f"{item}/_METADATA has no tree_metadata object.")
    leaves = []
    for entry in tree.values():
        keys = [k.get("key") for k in entry.get("key_metadata", [])]
        kinds = [k.get("key_type") for k in entry.get("key_metadata", [])]
        vm = entry.get("value_metadata") or {}
        leaves.append({"keys": [str(k) for k in keys], "keyTypes": kinds, "kind": vm.get("value_type")})
    return leaves, bool(md.get("use_ocdbt", True)), bool(md.get("use_zarr3", False))


def tree_from_store(item):
    """Without `_METADATA` (older orbax, or the file lost), list the arrays the store holds.

    orbax's own metadata API has nothing to offer then (0.12.8 returns item_metadata=None), but
    every array is a zarr array under its '.'-joined name, so the store itself says what is there.
    Scalars cannot be told from 0-d arrays this way and are shown as arrays.
    """
    ts = need_tensorstore()
    use_ocdbt = os.path.isfile(os.path.join(item, "manifest.ocdbt"))
    if use_ocdbt:
        kv = ts.KvStore.open({"driver": "ocdbt", "base": "file://" + os.path.abspath(item) + "/"}).result()
        keys = [k.decode("utf-8", "replace") for k in kv.list().result()]
    else:
        keys = []
        for name in safe_listdir(item):
            for marker in (".zarray", "zarr.json"):
                if os.path.isfile(os.path.join(item, name, marker)):
                    keys.append(name + "/" + marker)
    params = {}
    for k in keys:
        param, _, leaf = k.rpartition("/")
        if leaf in (".zarray", "zarr.json") and param:
            params[param] = leaf == "zarr.json"
    if not params:
        raise Failure("E_FORMAT", f"{item}: no _METADATA and no arrays in the store; not an Orbax checkpoint, or an empty one.")
    zarr3 = any(params.values())
    leaves = [{"keys": p.split("."), "keyTypes": [], "kind": "jax.Array"} for p in sorted(params)]
    return leaves, use_ocdbt, zarr3


def strip_nnx_value(leaves):
    """`nnx.state(model)` saves each Variable as `<path>.value`; when every leaf ends so, drop it."""
    arrays = [l for l in leaves if l["kind"] != "None"]
    if arrays and all(len(l["keys"]) > 1 and l["keys"][-1] == "value" for l in arrays):
        for l in arrays:
            l["shown"] = l["keys"][:-1]
        return True
    return False


class Item:
    """One opened checkpoint item: how to reach its arrays, and the arrays already opened."""

    def __init__(self, path):
        self.path = path
        self.arrays = collections.OrderedDict()
        self.context = None

    def spec(self, param):
        driver = "zarr3" if self.use_zarr3 else "zarr"
        base = "file://" + os.path.abspath(self.path) + "/"
        if self.use_ocdbt:
            kv = {"driver": "ocdbt", "base": base, "path": param}
        else:
            root = os.path.realpath(self.path)
            where = os.path.realpath(os.path.join(root, param))
            # Names come from the checkpoint's own _METADATA: refuse one that leads outside its folder.
            if os.path.commonpath([root, where]) != root or where == root:
                raise Failure("E_UNSAFE_PATH", f"{self.path}: array name {param!r} points outside the checkpoint folder; refused.")
            kv = {"driver": "file", "path": where + "/"}
        return {"driver": driver, "kvstore": kv}

    def array(self, param):
        ts = need_tensorstore()
        a = self.arrays.get(param)
        if a is not None:
            self.arrays.move_to_end(param)
            return a
        if self.context is None:
            self.context = ts.Context({"cache_pool": {"total_bytes_limit": CACHE_BYTES}})
        spec = self.spec(param)
        try:
            a = ts.open(spec, open=True, read=True, context=self.context).result()
        except Exception as e:  # tensorstore raises ValueError / its own errors with a message
            raise Failure("E_FORMAT", f"{self.path}: cannot open array {param!r} ({first_line(e)}).")
        self.arrays[param] = a
        if len(self.arrays) > MAX_OPEN_ARRAYS:
            self.arrays.popitem(last=False)
        return a


def first_line(e):
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


ITEMS = {}


def get_item(path):
    it = ITEMS.get(path)
    if it is None:
        # A restarted sidecar has forgotten what was open; the item folder opens again directly.
        open_checkpoint(path)
        it = ITEMS[os.path.abspath(path)]
    return it


def open_checkpoint(path):
    need_tensorstore()
    item, notes = resolve_item(os.path.abspath(path))
    if os.path.isfile(os.path.join(item, "_METADATA")):
        leaves, use_ocdbt, use_zarr3 = tree_from_metadata_file(item)
    else:
        leaves, use_ocdbt, use_zarr3 = tree_from_store(item)
    if use_ocdbt and not os.path.isfile(os.path.join(item, "manifest.ocdbt")):
        raise Failure(
            "E_FORMAT",
            f"{item}: the checkpoint was not finalized (no manifest.ocdbt at its root; orbax writes it when "
            "the save completes). It may still be being written, or the save was interrupted.",
        )
    it = Item(item)
    it.use_ocdbt, it.use_zarr3 = use_ocdbt, use_zarr3
    ITEMS[item] = it
    nnx = strip_nnx_value(leaves)
    tensors, values = [], []
    strings = None
    for l in leaves:
        param = ".".join(l["keys"])
        shown = l.get("shown", l["keys"])
        kind = l["kind"]
        if kind in ("None", None):
            values.append({"keys": shown, "value": "None"})
            continue
        if kind == "string":
            if strings is None:
                p = os.path.join(item, "_strings.json")
                strings = read_json(p) if os.path.isfile(p) else {}
            values.append({"keys": shown, "value": str(strings.get(param, "<string not found>"))})
            continue
        a = it.array(param)
        if kind == "scalar":
            values.append({"keys": shown, "value": scalar_text(a.read().result())})
            continue
        tensors.append({"keys": shown, "param": param, "dtype": str(a.dtype.numpy_dtype), "shape": [int(x) for x in a.shape]})
    meta = {"orbax.layout": ("ocdbt" if use_ocdbt else "per-array folders") + (", zarr3" if use_zarr3 else ", zarr2")}
    processes = sum(1 for n in safe_listdir(item) if n.startswith("ocdbt.process_"))
    if processes:
        meta["orbax.processes"] = str(processes)
    if not os.path.isfile(os.path.join(item, "_METADATA")):
        meta["orbax.structure"] = "listed from the array store (no _METADATA file)"
    if nnx:
        meta["orbax.nnx"] = "trailing 'value' key of nnx.State variables hidden"
    meta.update(step_facts(item))
    sharding = sharding_summary(item)
    if sharding:
        meta["orbax.sharding"] = sharding
    for n in notes:
        meta["orbax.opened"] = n if "orbax.opened" not in meta else meta["orbax.opened"] + "; " + n
    return {"item": item, "tensors": tensors, "values": values, "metadata": meta}


def step_facts(item):
    """The step (the numbered folder holding the item, or the item itself) and when it was committed."""
    facts = {}
    for d in (item, os.path.dirname(item)):
        name = os.path.basename(d)
        if STEP_DIR.match(name):
            facts["orbax.step"] = str(int(name))
            meta_file = os.path.join(d, "_CHECKPOINT_METADATA")
            try:
                ns = read_json(meta_file).get("commit_timestamp_nsecs") if os.path.isfile(meta_file) else None
            except Exception:
                ns = None
            if isinstance(ns, int):
                facts["orbax.committed"] = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            break
    return facts


def sharding_summary(item):
    """What `_sharding` says of how the arrays were laid out on devices when saved, in one line:
    each sharding type with its mesh and how many arrays use it (e.g. "NamedSharding mesh x=2: 2 arrays
    (1 partitioned over x, 1 replicated)")."""
    p = os.path.join(item, "_sharding")
    if not os.path.isfile(p):
        return None
    try:
        entries = read_json(p)
    except Exception:
        return "unreadable _sharding file"
    if not isinstance(entries, dict):
        return None
    groups = {}
    for v in entries.values():
        try:
            s = json.loads(v) if isinstance(v, str) else v
        except ValueError:
            continue
        if not isinstance(s, dict):
            continue
        kind = str(s.get("sharding_type", "unknown"))
        if kind == "NamedSharding":
            axes = s.get("axis_names") or []
            shape = s.get("shape") or []
            label = "NamedSharding mesh " + " × ".join(f"{a}={n}" for a, n in zip(axes, shape))
            spec = s.get("partition_spec") or []
            partitioned = any(x is not None and x != [] for x in spec)
        else:
            label = kind + (f" ({s['device_str']})" if "device_str" in s else "")
            partitioned = False
        g = groups.setdefault(label, [0, 0])
        g[0] += 1
        g[1] += 1 if partitioned else 0
    parts = []
    for label, (n, part) in groups.items():
        detail = f" ({part} partitioned, {n - part} replicated)" if label.startswith("NamedSharding") else ""
        parts.append(f"{label}: {n} array{'s' if n != 1 else ''}{detail}")
    return "; ".join(parts)


def scalar_text(v):
    try:
        return repr(v.item())
    except Exception:
        return str(v)


# ---------------------------------------------------------------------------------------------
# Values


def boxes(shape, start, stop):
    """Index tuples (of slices) that cover flat C-order elements [start, stop) in order, at most 2*rank+1."""
    if not shape:
        return [()] if start < stop else []
    inner = 1
    for d in shape[1:]:
        inner *= d
    first, last = start // inner, (stop - 1) // inner
    if first == last:
        return [(slice(first, first + 1),) + b for b in boxes(shape[1:], start - first * inner, stop - first * inner)]
    out = []
    if start % inner:
        out += [(slice(first, first + 1),) + b for b in boxes(shape[1:], start % inner, inner)]
        first += 1
    tail = []
    if stop % inner:
        tail = [(slice(last, last + 1),) + b for b in boxes(shape[1:], 0, stop % inner)]
    else:
        last += 1
    if first < last:
        out.append((slice(first, last),) + tuple(slice(None) for _ in shape[1:]))
    return out + tail


def read_range(path, param, offset, length):
    a = get_item(path).array(param)
    size = a.dtype.numpy_dtype.itemsize
    total = size
    for d in a.shape:
        total *= int(d)
    if offset % size or length % size or offset < 0 or length < 0 or offset + length > total:
        raise Failure("E_USAGE", f"read of {param!r}: bytes [{offset}, {offset + length}) are not whole elements inside its {total} bytes.")
    if length > MAX_READ_BYTES:
        raise Failure("E_USAGE", f"read of {param!r}: {length} bytes at once is over {MAX_READ_BYTES}; ask for less.")
    shape = [int(d) for d in a.shape]
    parts = []
    for idx in boxes(shape, offset // size, (offset + length) // size):
        v = a[idx].read().result() if idx else a.read().result()
        parts.append(v.astype(v.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# The loop


def main():
    out = sys.stdout.buffer
    # Anything a library prints must not corrupt the protocol.
    sys.stdout = sys.stderr
    for line in sys.stdin.buffer:
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            op = req.get("op")
            if op == "hello":
                reply, payload = {"result": hello()}, None
            elif op == "open":
                reply, payload = {"result": open_checkpoint(str(req["path"]))}, None
            elif op == "read":
                payload = read_range(str(req["path"]), str(req["param"]), int(req["offset"]), int(req["length"]))
                reply = {"bytes": len(payload)}
            elif op == "modules":
                # Which heavy libraries this process has imported: tests check that reading never restored a tree.
                reply, payload = {"result": sorted(m for m in ("jax", "orbax", "orbax.checkpoint") if m in sys.modules)}, None
            elif op == "close":
                ITEMS.pop(str(req["path"]), None)
                reply, payload = {"result": True}, None
            else:
                raise Failure("E_USAGE", f"unknown op {op!r}.")
            reply = dict(id=req_id, ok=True, **reply)
        except Failure as e:
            reply, payload = {"id": req_id, "ok": False, "error": {"code": e.code, "message": str(e)}}, None
        except Exception as e:  # report, never die: one bad checkpoint must not end the session
            reply, payload = {"id": req_id, "ok": False, "error": {"code": "E_IO", "message": f"{type(e).__name__}: {first_line(e)}"}}, None
        out.write(json.dumps(reply).encode("utf-8") + b"\n")
        if payload:
            out.write(payload)
        out.flush()


if __name__ == "__main__":
    main()
