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

Checkpoints are untrusted input. Before anything in a checkpoint is read, the folder the user named
is resolved once and the item's tree is walked with lstat (nothing opened): a symlink that leaves
that folder, or anything that is not a regular file or a folder (a FIFO would block tensorstore
forever), is refused. Every JSON file is read through one bounded path (O_NONBLOCK, fstat, size and
depth caps); every array's zarr metadata is checked before tensorstore sees it (a dtype or chunk no
real array has made tensorstore abort); arrays are opened the way orbax opens them, so missing
chunks are refused, not read as zeros. Every failure is one line with a jax-serve error code that
names the folder and the file or array.
Tested with orbax-checkpoint 0.12.8 and tensorstore 0.1.86.
"""

import collections
import contextlib
import datetime
import errno
import importlib.metadata
import json
import os
import platform
import re
import stat
import sys
import time

PROTOCOL = 1
# Open tensorstores kept per sidecar; a viewer touches a few leaves at a time.
MAX_OPEN_ARRAYS = 256
# Decoded chunks kept by tensorstore, so nearby small reads (a column of a slice) hit memory.
CACHE_BYTES = 64 * 1024 * 1024
# Largest single read; the client asks for a few MB at a time.
MAX_READ_BYTES = 256 * 1024 * 1024
STEP_DIR = re.compile(r"^\d+$")

# Limits on untrusted input, each with its unit and reason.
# Bytes of `_METADATA`, `_strings.json`, `_sharding`: a 100k-leaf tree's `_METADATA` is ~25 MB.
MAX_JSON_BYTES = 256 * 1024 * 1024
# Bytes of one array's `.zarray` / `zarr.json`: real ones are under 1 KB (orbax inlines them in OCDBT).
MAX_ARRAY_METADATA_BYTES = 1024 * 1024
# Bytes of `_CHECKPOINT_METADATA` (commit time, user metrics): informational, read only this far.
MAX_SIDE_JSON_BYTES = 16 * 1024 * 1024
# Nesting of any JSON read here (the TypeScript side's MAX_JSON_DEPTH); orbax's files stay under 10.
MAX_JSON_DEPTH = 128
# Dimensions of one array (the TypeScript side's MAX_TENSOR_RANK).
MAX_RANK = 64
# Bytes per element: complex128 is the widest numeric type; a 64 GiB "scalar" made tensorstore abort.
MAX_ITEMSIZE = 16
# Bytes of one array: the TypeScript side counts bytes in doubles, exact up to 2**53 (8 PiB).
MAX_ARRAY_BYTES = 2**53
# Bytes of one decoded chunk (or shard index): tensorstore allocates a whole chunk to decode it and
# aborts the process (std::bad_alloc) when it cannot. Half the machine's memory, at most 16 GiB;
# orbax's chunks follow the saved shards and stay well below (OCDBT data files default to 2 GiB).
try:
    _RAM = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):
    _RAM = 32 * 1024**3
MAX_CHUNK_BYTES = min(16 * 1024**3, _RAM // 2)
# The walk of a checkpoint's tree before it is read: depth (a rank-64 zarr3 array nests 66 deep),
# entries (one file per chunk; large per-array checkpoints have ~100k) and seconds (a slow disk).
MAX_TREE_DEPTH = 96
MAX_TREE_ENTRIES = 2_000_000
MAX_TREE_SECONDS = 60.0
# zarr metadata file names: everything else in an array's folder (or under its OCDBT prefix) is a chunk.
ZARR_METADATA_NAMES = frozenset((".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"))


class Failure(Exception):
    """A refusal with a jax-serve error code (src/core/errors.ts) and a one-line message naming the file."""

    def __init__(self, code, message, unsafe=False):
        super().__init__(message)
        self.code = code
        # A link out of the folder or a file that is not a regular one: refused wherever it is met.
        self.unsafe = unsafe


# As src/core/text.ts: escape sequences (CSI, OSC, two-byte ESC, C1 forms) removed whole, then every
# other C0/C1 control, DEL and bidirectional override. Names and texts from files never reach a terminal raw.
ESCAPE_SEQUENCES = re.compile(
    "\x1b\\[[0-?]*[ -/]*[@-~]?|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?|\x9b[0-?]*[ -/]*[@-~]?|\x9d[^\x07\x1b]*(?:\x07|\x1b\\\\)?|\x1b[@-_]?"
)
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(s):
    """One line without control characters (paths and names in messages come from the checkpoint)."""
    return " ".join(CONTROLS.sub(" ", ESCAPE_SEQUENCES.sub("", str(s))).split())


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
# One error path: every exception becomes a Failure naming what was being read.

# tensorstore raises ValueError("STATUS: text [source locations='…'] [tensorstore_spec='…']").
TS_STATUS = re.compile(r"^([A-Z][A-Z_]+): ")
TS_DETAIL = re.compile(r"\s*\[[A-Za-z_ ]+='.*?'\]", re.S)
TS_CODES = {"NOT_FOUND": "E_NOT_FOUND", "RESOURCE_EXHAUSTED": "E_LIMIT", "PERMISSION_DENIED": "E_IO", "UNAVAILABLE": "E_IO",
            "DEADLINE_EXCEEDED": "E_IO", "ABORTED": "E_IO", "CANCELLED": "E_IO", "UNIMPLEMENTED": "E_UNSUPPORTED"}
DAMAGED = "the checkpoint is damaged or was not written by orbax; copy or save it again"
MISSING = ("orbax refuses to restore an array with missing data too (NOT_FOUND) rather than read zeros; "
           "the checkpoint is incomplete: copy or save it again")


def ts_status(e):
    m = TS_STATUS.match(str(e))
    return m.group(1) if m else None


def gist(e):
    """tensorstore's long status text cut to what it says: no status prefix, source locations or spec."""
    s = TS_STATUS.sub("", TS_DETAIL.sub("", str(e)), count=1)
    s = clean(s)
    return s if len(s) <= 300 else s[:300] + "…"


def ts_failure(where, e):
    status = ts_status(e)
    return Failure(TS_CODES.get(status, "E_FORMAT"), f"{where}: {gist(e)}; {MISSING if status == 'NOT_FOUND' else DAMAGED}.")


@contextlib.contextmanager
def reading(where):
    """Turns whatever goes wrong inside into a Failure that names `where` (a file, or an array of a folder).

    Unexpected JSON shapes surface as KeyError/AttributeError/TypeError deep inside; the user gets what
    was being read and what to do, never the exception's name or a traceback.
    """
    try:
        yield
    except Failure:
        raise
    except RecursionError:
        raise Failure("E_LIMIT", f"{where}: nested deeper than {MAX_JSON_DEPTH} levels; not something orbax writes ({DAMAGED}).")
    except MemoryError:
        raise Failure("E_LIMIT", f"{where}: needs more memory than this machine has to read; {DAMAGED}.")
    except UnicodeDecodeError as e:
        raise Failure("E_FORMAT", f"{where}: not valid UTF-8 (byte {e.start}); {DAMAGED}.")
    except OSError as e:
        raise io_failure(where, e)
    except ValueError as e:
        if ts_status(e):
            raise ts_failure(where, e)
        raise Failure("E_FORMAT", f"{where}: unexpected content ({clean(e)[:200]}); {DAMAGED}.")
    except (KeyError, AttributeError, TypeError, IndexError, OverflowError):
        raise Failure("E_FORMAT", f"{where}: unexpected structure (a field missing or of the wrong type); {DAMAGED}.")
    except Exception as e:  # anything else tensorstore or numpy raises: still one line naming the file
        raise Failure("E_IO", f"{where}: reading it failed ({gist(e) or 'no detail'}); if orbax reads this checkpoint, report it to jax-serve.")


def io_failure(where, e):
    if e.errno == errno.ENOENT:
        return Failure("E_NOT_FOUND", f"{where}: no such file or folder ({clean(e.filename or '')}); the checkpoint is incomplete.")
    if e.errno == errno.ENXIO:
        return Failure("E_FORMAT", f"{where}: not a regular file (a socket or device); refused.", unsafe=True)
    return Failure("E_IO", f"{where}: {clean(e.strerror or 'cannot be read')}{' (' + clean(e.filename) + ')' if e.filename else ''}.")


# ---------------------------------------------------------------------------------------------
# Confinement: nothing outside the folder the user named is read, and nothing but regular files.


HF_SNAPSHOT = re.compile(r"^(.*/models--[^/]+)/snapshots/[^/]+(?:/.*)?$")


class Folder:
    """The folder the user named, resolved once: a symlink there is theirs to name. Every file read
    must resolve (realpath) to a path inside it."""

    def __init__(self, named):
        self.named = named
        self.real = os.path.realpath(named)
        self.prefix = self.real.rstrip(os.sep) + os.sep
        # In a Hugging Face cache snapshot (models--ORG--NAME/snapshots/REV/, or a folder inside it) the
        # files are links into that repository's own blobs/, which count as inside (as core/node/confinement.ts).
        m = HF_SNAPSHOT.match(self.real)
        self.blobs = os.path.join(m.group(1), "blobs") + os.sep if m else None

    def inside(self, real):
        return real == self.real or real.startswith(self.prefix) or (self.blobs is not None and real.startswith(self.blobs))

    def outside(self, link, real):
        return Failure(
            "E_UNSAFE_PATH",
            f"{link} leads to {real}, outside the checkpoint folder {self.named}; jax-serve reads nothing outside "
            "the folder you open: copy that file or folder into the checkpoint, or open the folder it lies in.",
            unsafe=True,
        )

    def resolve(self, path):
        """The real path of `path`, refused when it lies outside."""
        real = os.path.realpath(path)
        if not self.inside(real):
            raise self.outside(path, real)
        return real


def kind_of(mode):
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def not_regular(path, mode, via=None):
    what = f"{path} (a link to {via})" if via else path
    return Failure(
        "E_FORMAT",
        f"{what} is {kind_of(mode)}, not a regular file; refused before reading it (a pipe or device would block or "
        "feed the reader forever). Replace it with the file orbax wrote.",
        unsafe=True,
    )


def check_tree(top, folder):
    """Walks the folder tree `top` with lstat, opening nothing, before any file in it is read.

    A symlink whose target lies inside `folder` is followed (a link back to a folder above ends there);
    one leaving it is refused, naming both paths; anything but a regular file or a folder (FIFO, socket,
    device) is refused. This covers every file tensorstore may open under `top` (manifest.ocdbt,
    ocdbt.process_N/, d/ data files, zarr chunks) and the metadata files, whose own reads go through
    `read_bytes` as well. Bounded in depth, entries and time. Returns the number of regular files below
    each entry of `top` that are not zarr metadata (an array's chunks in a per-array layout).
    """
    deadline = time.monotonic() + MAX_TREE_SECONDS
    top_st = os.stat(folder.resolve(top))
    chunks = collections.Counter()
    entries = 0
    # Each folder with the (device, inode) of the folders above it: a link back up is a loop, walked no
    # further; a folder reached twice by links within the checkpoint is walked twice (entries bound it).
    stack = [(top, 0, None, ((top_st.st_dev, top_st.st_ino),))]
    while stack:
        d, depth, first, above = stack.pop()
        with reading(d), os.scandir(d) as it:
            for e in it:
                entries += 1
                if entries > MAX_TREE_ENTRIES:
                    raise Failure("E_LIMIT", f"{top}: more than {MAX_TREE_ENTRIES} files and folders; not a checkpoint jax-serve reads (open one item or step).")
                if entries % 4096 == 0 and time.monotonic() > deadline:
                    raise Failure("E_LIMIT", f"{top}: listing its files took over {MAX_TREE_SECONDS:.0f} s; open one item or step, or copy it to a faster disk.")
                path = e.path
                owner = first if first is not None else e.name
                with reading(path):
                    st = e.stat(follow_symlinks=False)
                    via = None
                    if stat.S_ISLNK(st.st_mode):
                        via = os.path.realpath(path)
                        if not folder.inside(via):
                            raise folder.outside(path, via)
                        try:
                            st = os.stat(path)
                        except FileNotFoundError:
                            raise Failure("E_NOT_FOUND", f"{path} is a symbolic link to {via}, which does not exist; the checkpoint is incomplete.")
                if stat.S_ISDIR(st.st_mode):
                    if depth + 1 > MAX_TREE_DEPTH:
                        raise Failure("E_LIMIT", f"{path}: folders nest deeper than {MAX_TREE_DEPTH} levels; not a layout orbax writes.")
                    key = (st.st_dev, st.st_ino)
                    if key not in above:
                        stack.append((path, depth + 1, owner, above + (key,)))
                elif stat.S_ISREG(st.st_mode):
                    if e.name not in ZARR_METADATA_NAMES:
                        chunks[owner] += 1
                else:
                    raise not_regular(path, st.st_mode, via)
    return chunks


def read_bytes(path, folder, limit, what):
    """The bytes of a small file inside `folder`: opened (real path, no final-link follow, O_NONBLOCK so
    a FIFO cannot block), fstat'ed, refused unless a regular file of at most `limit` bytes."""
    with reading(path):
        real = folder.resolve(path)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(real, flags)
        except OSError as e:
            if e.errno == errno.ELOOP:
                # The last component was swapped for a link after realpath: treat it as leaving.
                raise folder.outside(path, os.path.realpath(path))
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise not_regular(path, st.st_mode, real if real != os.path.abspath(path) else None)
            if st.st_size > limit:
                raise Failure("E_LIMIT", f"{path}: {what} is {st.st_size} bytes, over the limit of {limit}; not a file orbax writes ({DAMAGED}).")
            parts, total = [], 0
            while True:
                b = os.read(fd, min(1 << 20, limit + 1 - total))
                if not b:
                    break
                parts.append(b)
                total += len(b)
                if total > limit:
                    raise Failure("E_LIMIT", f"{path}: {what} is over the limit of {limit} bytes; not a file orbax writes ({DAMAGED}).")
            return b"".join(parts)
        finally:
            os.close(fd)


def parse_json(where, data, what):
    """JSON from a checkpoint: UTF-8, at most MAX_JSON_DEPTH deep; errors name `where`."""
    with reading(where):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Failure("E_FORMAT", f"{where}: {what} is not valid UTF-8 (byte {e.start}); {DAMAGED}.")
        try:
            # The C scanner raises RecursionError past Python's recursion limit, mapped by `reading`.
            value = json.loads(text)
        except RecursionError:
            raise
        except ValueError as e:
            raise Failure("E_FORMAT", f"{where}: {what} is not valid JSON ({clean(e)[:200]}); {DAMAGED}.")
        depth = json_depth(value)
        if depth > MAX_JSON_DEPTH:
            raise Failure("E_LIMIT", f"{where}: {what} nests {depth} levels deep, over the limit of {MAX_JSON_DEPTH}; not a file orbax writes ({DAMAGED}).")
        return value


def json_depth(value):
    """Nesting of a parsed JSON value (iterative: a deep value must not overflow the stack here either)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if d > deepest:
            deepest = d
            if d > MAX_JSON_DEPTH:
                return d
        stack.extend((c, d + 1) for c in children)
    return deepest


def read_json(path, folder, what, limit=MAX_JSON_BYTES):
    return parse_json(path, read_bytes(path, folder, limit, what), what)


def expect(cond, where, what):
    if not cond:
        raise Failure("E_FORMAT", f"{where}: {what}; {DAMAGED}.")


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


def resolve_item(path, folder):
    """The folder that holds one pytree: the path itself, the one item of a step, or the latest step.
    Each step down must stay inside `folder` (a step or item may be a symlink within it)."""
    notes = []
    d = path
    # At most run -> root -> step -> item (a MaxText run folder holds the manager root as checkpoints/).
    for _ in range(4):
        if is_item(d):
            return d, notes
        names = [n for n in safe_listdir(d) if os.path.isdir(os.path.join(d, n))]
        steps = sorted((n for n in names if STEP_DIR.match(n)), key=int)
        if steps:
            notes.append(f"latest of {len(steps)} steps: {steps[-1]}")
            d = os.path.join(d, steps[-1])
            folder.resolve(d)
            continue
        items = [n for n in names if is_item(os.path.join(d, n))]
        # An item that links out of the folder is refused by name, not passed over in silence.
        for n in items:
            folder.resolve(os.path.join(d, n))
        if len(items) == 1:
            notes.append(f"item: {items[0]}")
            d = os.path.join(d, items[0])
            continue
        if items:
            raise Failure(
                "E_USAGE",
                f"{d}: this step holds {len(items)} items ({', '.join(items)}); open one of those folders.",
            )
        if "checkpoints" in names:
            d = os.path.join(d, "checkpoints")
            folder.resolve(d)
            continue
        break
    raise Failure(
        "E_FORMAT",
        f"{path}: not an Orbax checkpoint (no _METADATA, manifest.ocdbt, ocdbt.process_* or zarr array folders inside, "
        "nor a step or item folder holding one).",
    )


# ---------------------------------------------------------------------------------------------
# Structure


def key_text(k, where):
    expect(isinstance(k, (str, int)) and not isinstance(k, bool), where, "a key_metadata key is not a string or an integer")
    return str(k)


def tree_from_metadata_file(item, folder):
    """Leaves from `_METADATA`: key paths and value kinds, in the order orbax saved them, and how the
    arrays are stored (orbax `metadata/tree.py` InternalTreeMetadata.from_json)."""
    where = os.path.join(item, "_METADATA")
    md = read_json(where, folder, "_METADATA")
    with reading(where):
        expect(isinstance(md, dict), where, "not a JSON object")
        tree = md.get("tree_metadata")
        expect(isinstance(tree, dict), where, "no tree_metadata object")
        leaves = []
        for name, entry in tree.items():
            expect(isinstance(entry, dict), where, f"tree_metadata entry {clean(name)[:80]!r} is not an object")
            km = entry.get("key_metadata", [])
            expect(isinstance(km, list) and all(isinstance(k, dict) for k in km), where, f"tree_metadata entry {clean(name)[:80]!r} has no key_metadata list")
            keys = [key_text(k.get("key"), where) for k in km]
            expect(len(keys) > 0, where, f"tree_metadata entry {clean(name)[:80]!r} has an empty key path")
            vm = entry.get("value_metadata") or {}
            expect(isinstance(vm, dict), where, f"tree_metadata entry {clean(name)[:80]!r} has a value_metadata that is not an object")
            kind = vm.get("value_type")
            expect(kind is None or isinstance(kind, str), where, f"tree_metadata entry {clean(name)[:80]!r} has a value_type that is not a string")
            leaves.append({"keys": keys, "keyTypes": [k.get("key_type") for k in km], "kind": kind})
        flags = {}
        for flag, default in (("use_ocdbt", True), ("use_zarr3", False), ("store_array_data_equal_to_fill_value", False)):
            v = md.get(flag)
            expect(v is None or isinstance(v, bool), where, f"{flag} is not true or false")
            flags[flag] = default if v is None else v
    # orbax (base_pytree_checkpoint_handler.py, 0.12.8) restores with
    # raise_array_data_missing_error = store_array_data_equal_to_fill_value, and ArrayReadSpec
    # (serialization/tensorstore_utils.py) turns that into 'fill_missing_data_reads': not raise...:
    # a checkpoint saved storing every chunk (orbax's default since that field exists) fails to
    # restore when a chunk is missing; an older one, which skipped chunks equal to the fill value,
    # reads them as the fill value. jax-serve does the same.
    return leaves, flags["use_ocdbt"], flags["use_zarr3"], flags["store_array_data_equal_to_fill_value"]


def tree_from_store(item, use_ocdbt, keys):
    """Without `_METADATA` (older orbax, or the file lost), list the arrays the store holds.

    orbax's own metadata API has nothing to offer then (0.12.8 returns item_metadata=None), but
    every array is a zarr array under its '.'-joined name, so the store itself says what is there.
    Scalars cannot be told from 0-d arrays this way and are shown as arrays.
    """
    if not use_ocdbt:
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
    return leaves, zarr3


def strip_nnx_value(leaves):
    """`nnx.state(model)` saves each Variable as `<path>.value`; when every leaf ends so, drop it."""
    arrays = [l for l in leaves if l["kind"] != "None"]
    if arrays and all(len(l["keys"]) > 1 and l["keys"][-1] == "value" for l in arrays):
        for l in arrays:
            l["shown"] = l["keys"][:-1]
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Array metadata, checked before tensorstore sees it

# Bytes per element of zarr v3 data types (and of zarr v2 names tensorstore adds, like "bfloat16").
NAMED_ITEMSIZE = {
    "bool": 1, "int2": 1, "uint2": 1, "int4": 1, "uint4": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4,
    "uint32": 4, "int64": 8, "uint64": 8, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "complex64": 8,
    "complex128": 16, "float4_e2m1fn": 1, "float8_e3m4": 1, "float8_e4m3": 1, "float8_e4m3fn": 1, "float8_e4m3fnuz": 1,
    "float8_e4m3b11fnuz": 1, "float8_e5m2": 1, "float8_e5m2fnuz": 1, "float8_e8m0fnu": 1,
}
# zarr v2 (numpy typestr): byte order, kind (bool, int, uint, float, complex), bytes.
NUMPY_TYPESTR = re.compile(r"^[<>|=]?([biufc])(\d{1,3})$")


def itemsize_of(dtype, where):
    """Bytes per element, or a refusal for what is not a numeric array type (void, strings, records)."""
    if isinstance(dtype, str):
        if dtype in NAMED_ITEMSIZE:
            return NAMED_ITEMSIZE[dtype]
        m = NUMPY_TYPESTR.match(dtype)
        if m and int(m.group(2)) <= MAX_ITEMSIZE:
            return int(m.group(2))
    shown = clean(json.dumps(dtype))[:80]
    raise Failure("E_UNSUPPORTED", f"{where}: dtype {shown} is not a numeric array type (bool, integer, float or complex of at most {MAX_ITEMSIZE} bytes); not something orbax saves from a jax or numpy array.")


def int_list(v, where, field, minimum):
    expect(isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= minimum for x in v), where,
           f"{field} is not a list of integers ≥ {minimum}")
    expect(len(v) <= MAX_RANK, where, f"{field} has {len(v)} dimensions, more than {MAX_RANK}")
    return v


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def grid(shape, chunks):
    """Chunks in the regular grid that covers `shape`."""
    n = 1
    for s, c in zip(shape, chunks):
        n *= -(-s // c)
    return n


def check_array_metadata(md, zarr3, where):
    """Shape, dtype and chunking of a zarr array (v2 `.zarray`, v3 `zarr.json`) checked for what no real
    array has: tensorstore allocates a whole decoded chunk (or shard index) before it reads a byte of
    it, so a chunk of 64 GiB (a "scalar" whose dtype is 64 GiB wide, say) aborts the process. Returns
    the shape and the number of chunk keys the array must have (its chunk, or shard, grid)."""
    expect(isinstance(md, dict), where, "not a JSON object")
    shape = int_list(md.get("shape"), where, "shape", 0)
    if zarr3:
        expect(md.get("zarr_format") == 3 and md.get("node_type", "array") == "array", where, "not a zarr v3 array")
        itemsize = itemsize_of(md.get("data_type"), where)
        cg = md.get("chunk_grid")
        expect(isinstance(cg, dict) and cg.get("name") == "regular" and isinstance(cg.get("configuration"), dict), where, "no regular chunk_grid")
        chunks = int_list(cg["configuration"].get("chunk_shape"), where, "chunk_shape", 1)
        codecs = md.get("codecs", [])
        inner = check_codecs(codecs, chunks, itemsize, where)
    else:
        expect(md.get("zarr_format", 2) == 2, where, "not a zarr v2 array")
        itemsize = itemsize_of(md.get("dtype"), where)
        chunks = int_list(md.get("chunks"), where, "chunks", 1)
        inner = chunks
    expect(len(chunks) == len(shape), where, f"chunks of rank {len(chunks)} for a shape of rank {len(shape)}")
    total = count(shape) * itemsize
    if total > MAX_ARRAY_BYTES:
        raise Failure("E_LIMIT", f"{where}: declares shape {shape} of {total} bytes, more than any real array (the limit is {MAX_ARRAY_BYTES}); {DAMAGED}.")
    chunk = count(inner) * itemsize
    if chunk > MAX_CHUNK_BYTES:
        raise Failure("E_LIMIT", f"{where}: declares chunks of {inner} ({chunk} bytes each), over the {MAX_CHUNK_BYTES} bytes jax-serve decodes at once on this machine; {DAMAGED}.")
    return shape, grid(shape, chunks)


def check_codecs(codecs, chunks, itemsize, where):
    """The chunk shape tensorstore decodes at once: the innermost sharding_indexed chunk_shape. A shard's
    index (16 bytes per inner chunk) is allocated whole too, so it gets the same bound."""
    expect(isinstance(codecs, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in codecs), where, "codecs is not a list of codec objects")
    for c in codecs:
        if c["name"] != "sharding_indexed":
            continue
        conf = c.get("configuration")
        expect(isinstance(conf, dict), where, "a sharding_indexed codec has no configuration")
        inner = int_list(conf.get("chunk_shape"), where, "sharding chunk_shape", 1)
        expect(len(inner) == len(chunks), where, "a sharding chunk_shape of the wrong rank")
        entries = grid(chunks, inner)
        if entries * 16 > MAX_CHUNK_BYTES:
            raise Failure("E_LIMIT", f"{where}: a shard of {chunks} in chunks of {inner} needs an index of {entries * 16} bytes, over the {MAX_CHUNK_BYTES} jax-serve reads at once; {DAMAGED}.")
        return check_codecs(conf.get("codecs", []), inner, itemsize, where)
    return chunks


class Item:
    """One opened checkpoint item: how to reach its arrays, and the arrays already opened."""

    def __init__(self, path, folder, use_ocdbt, use_zarr3, refuse_missing, chunk_files):
        self.path = path
        self.folder = folder
        self.use_ocdbt = use_ocdbt
        self.use_zarr3 = use_zarr3
        self.refuse_missing = refuse_missing
        # Regular files (not zarr metadata) below each entry of the item: a per-array layout's chunks.
        self.chunk_files = chunk_files
        self.arrays = collections.OrderedDict()
        self.context = None
        self.kv = None
        self._keys = None

    def base(self):
        return "file://" + os.path.abspath(self.path) + "/"

    def store(self):
        if self.kv is None:
            ts = need_tensorstore()
            with reading(f"{self.path}: the OCDBT store (manifest.ocdbt, d/)"):
                self.kv = ts.KvStore.open({"driver": "ocdbt", "base": self.base()}).result()
        return self.kv

    def keys(self):
        """Every key of the OCDBT store, sorted (arrays' metadata and chunks)."""
        if self._keys is None:
            with reading(f"{self.path}: the OCDBT store (manifest.ocdbt, d/)"):
                self._keys = sorted(k.decode("utf-8", "replace") for k in self.store().list().result())
        return self._keys

    def where(self, param):
        """The array's place, for messages: its folder, or its name in the OCDBT store."""
        marker = "zarr.json" if self.use_zarr3 else ".zarray"
        return os.path.join(self.path, param, marker) if not self.use_ocdbt else f"{self.path}: array {param!r} ({marker} in the OCDBT store)"

    def local_path(self, param):
        root = os.path.realpath(self.path)
        where = os.path.realpath(os.path.join(root, param))
        # Names come from the checkpoint's own _METADATA: refuse one that leads outside its folder.
        if os.path.commonpath([root, where]) != root or where == root:
            raise Failure("E_UNSAFE_PATH", f"{self.path}: array name {param!r} points outside the checkpoint folder; refused.")
        return where

    def metadata(self, param):
        """The array's zarr metadata, read (bounded) by us before tensorstore reads it."""
        marker = "zarr.json" if self.use_zarr3 else ".zarray"
        where = self.where(param)
        if self.use_ocdbt:
            key = f"{param}/{marker}"
            with reading(where):
                # A byte range past the value's end is an error, not a short read: one byte just past
                # the limit says whether the value is too large before the whole of it is read.
                try:
                    over = self.store().read(key, byte_range=slice(MAX_ARRAY_METADATA_BYTES, MAX_ARRAY_METADATA_BYTES + 1)).result()
                except ValueError as e:
                    if ts_status(e) != "OUT_OF_RANGE":
                        raise
                    over = None
                if over is not None and over.state == "value":
                    raise Failure("E_LIMIT", f"{where}: over {MAX_ARRAY_METADATA_BYTES} bytes; not a file orbax writes ({DAMAGED}).")
                r = self.store().read(key).result()
            if r.state != "value":
                raise Failure("E_NOT_FOUND", f"{where}: missing; _METADATA lists the array but the store does not hold it ({DAMAGED}).")
            data = bytes(r.value)
        else:
            path = os.path.join(self.local_path(param), marker)
            if not os.path.lexists(path):
                raise Failure("E_NOT_FOUND", f"{where}: missing; _METADATA lists the array but its folder holds no {marker} ({DAMAGED}).")
            data = read_bytes(path, self.folder, MAX_ARRAY_METADATA_BYTES, marker)
        md = parse_json(where, data, marker)
        with reading(where):
            return check_array_metadata(md, self.use_zarr3, where)

    def stored_chunks(self, param):
        if self.use_ocdbt:
            import bisect

            keys = self.keys()
            prefix = param + "/"
            i = bisect.bisect_left(keys, prefix)
            n = 0
            while i < len(keys) and keys[i].startswith(prefix):
                if keys[i][len(prefix):] not in ZARR_METADATA_NAMES:
                    n += 1
                i += 1
            return n
        return self.chunk_files.get(param, 0) if "/" not in param else None

    def spec(self, param):
        driver = "zarr3" if self.use_zarr3 else "zarr"
        if self.use_ocdbt:
            kv = {"driver": "ocdbt", "base": self.base(), "path": param}
        else:
            kv = {"driver": "file", "path": self.local_path(param) + "/"}
        # As orbax's ArrayReadSpec (tensorstore_utils.py): missing chunks fail the read unless the
        # checkpoint predates storing every chunk (see tree_from_metadata_file).
        return {"driver": driver, "kvstore": kv, "fill_missing_data_reads": not self.refuse_missing,
                "recheck_cached_data": False, "recheck_cached_metadata": False}

    def array(self, param):
        ts = need_tensorstore()
        a = self.arrays.get(param)
        if a is not None:
            self.arrays.move_to_end(param)
            return a
        shape, chunks = self.metadata(param)
        where = f"{self.path}: array {param!r}"
        if self.refuse_missing:
            stored = self.stored_chunks(param)
            if stored is not None and stored < chunks:
                raise Failure(
                    "E_NOT_FOUND",
                    f"{where} declares shape {shape} in {chunks} chunks, but {stored} are stored; {MISSING}.",
                )
        if self.context is None:
            self.context = ts.Context({"cache_pool": {"total_bytes_limit": CACHE_BYTES}})
        with reading(where):
            a = ts.open(self.spec(param), open=True, read=True, context=self.context).result()
            # What tensorstore opened must be what was checked (a file swapped in between is refused).
            read_chunk = a.chunk_layout.read_chunk.shape
            expect([int(x) for x in a.shape] == shape and a.dtype.numpy_dtype.itemsize <= MAX_ITEMSIZE
                   and (read_chunk is None or count(int(x) for x in read_chunk) * a.dtype.numpy_dtype.itemsize <= MAX_CHUNK_BYTES),
                   where, "its metadata changed while it was opened")
        self.arrays[param] = a
        if len(self.arrays) > MAX_OPEN_ARRAYS:
            self.arrays.popitem(last=False)
        return a


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
    path = os.path.abspath(path)
    if not os.path.lexists(path):
        raise Failure("E_NOT_FOUND", f"{path}: no such file or folder.")
    # The folder the user named, symlink or not, is theirs: confine to where it really is.
    folder = Folder(path)
    if not os.path.isdir(folder.real):
        raise Failure("E_FORMAT", f"{path}: an Orbax checkpoint is a folder, not a file.")
    item, notes = resolve_item(path, folder)
    # Nothing under the item is read before its whole tree has been checked.
    chunk_files = check_tree(item, folder)
    has_metadata = os.path.isfile(os.path.join(item, "_METADATA"))
    if has_metadata:
        leaves, use_ocdbt, use_zarr3, refuse_missing = tree_from_metadata_file(item, folder)
    else:
        # No _METADATA: nothing says the chunks were skipped on purpose, so a missing one is refused.
        use_ocdbt, refuse_missing = os.path.isfile(os.path.join(item, "manifest.ocdbt")), True
    if use_ocdbt and not os.path.isfile(os.path.join(item, "manifest.ocdbt")):
        raise Failure(
            "E_FORMAT",
            f"{item}: the checkpoint was not finalized (no manifest.ocdbt at its root; orbax writes it when "
            "the save completes). It may still be being written, or the save was interrupted.",
        )
    it = Item(item, folder, use_ocdbt, False, refuse_missing, chunk_files)
    if not has_metadata:
        leaves, use_zarr3 = tree_from_store(item, use_ocdbt, it.keys() if use_ocdbt else [])
    it.use_zarr3 = use_zarr3
    ITEMS[item] = it
    nnx = strip_nnx_value(leaves)
    tensors, values = [], []
    strings = None
    named = {}
    for l in leaves:
        param = ".".join(l["keys"])
        shown = l.get("shown", l["keys"])
        kind = l["kind"]
        # Two key paths that join to one name ("a.b" beside a -> b) would be two leaves of one array
        # under one name: refused, naming both, as jax-serve refuses colliding msgpack keys.
        name = ".".join(shown)
        if name in named:
            raise Failure("E_FORMAT", f"{os.path.join(item, '_METADATA')}: the key paths {named[name]!r} and {shown!r} both name {name!r}; {DAMAGED}.")
        named[name] = shown
        if kind in ("None", None):
            values.append({"keys": shown, "value": "None"})
            continue
        if kind == "string":
            # orbax keeps string leaves in _strings.json and fails to restore one it cannot find there.
            p = os.path.join(item, "_strings.json")
            if strings is None:
                if not os.path.lexists(p):
                    raise Failure("E_NOT_FOUND", f"{p}: missing; _METADATA lists the string leaf {param!r}, which orbax keeps there ({DAMAGED}).")
                strings = read_json(p, folder, "_strings.json")
                expect(isinstance(strings, dict), p, "not a JSON object")
            expect(isinstance(strings.get(param), str), p, f"no string for the leaf {param!r} that _METADATA lists")
            values.append({"keys": shown, "value": strings[param]})
            continue
        a = it.array(param)
        if kind == "scalar":
            with reading(f"{item}: array {param!r}"):
                values.append({"keys": shown, "value": scalar_text(a.read().result())})
            continue
        tensors.append({"keys": shown, "param": param, "dtype": str(a.dtype.numpy_dtype), "shape": [int(x) for x in a.shape]})
    meta = {"orbax.layout": ("ocdbt" if use_ocdbt else "per-array folders") + (", zarr3" if use_zarr3 else ", zarr2")}
    processes = sum(1 for n in safe_listdir(item) if n.startswith("ocdbt.process_"))
    if processes:
        meta["orbax.processes"] = str(processes)
    if not has_metadata:
        meta["orbax.structure"] = "listed from the array store (no _METADATA file)"
    if nnx:
        meta["orbax.nnx"] = "trailing 'value' key of nnx.State variables hidden"
    meta.update(step_facts(item, folder))
    sharding = sharding_summary(item, folder)
    if sharding:
        meta["orbax.sharding"] = sharding
    for n in notes:
        meta["orbax.opened"] = n if "orbax.opened" not in meta else meta["orbax.opened"] + "; " + n
    return {"item": item, "tensors": tensors, "values": values, "metadata": meta}


def side_json(path, folder, what, limit):
    """An informational file (`_CHECKPOINT_METADATA`, `_sharding`): orbax logs and goes on when one does
    not parse (metadata/checkpoint.py MetadataStore.read), and so does jax-serve, saying so. Reading
    it is still confined and bounded: a link out, a FIFO or an oversized file is refused."""
    try:
        return read_json(path, folder, what, limit), None
    except Failure as e:
        if e.unsafe or e.code == "E_IO":
            raise
        return None, f"unreadable {what} file ({'over the size or nesting limit' if e.code == 'E_LIMIT' else 'not valid JSON'}; orbax reads on without it too)"


def step_facts(item, folder):
    """The step (the numbered folder holding the item, or the item itself) and when it was committed
    (`_CHECKPOINT_METADATA`: a CheckpointManager writes it in the step folder, a Checkpointer in the
    folder it saved to). Read only where it lies inside the folder opened."""
    facts = {}
    step = next((d for d in (item, os.path.dirname(item)) if STEP_DIR.match(os.path.basename(d))), None)
    if step is not None:
        facts["orbax.step"] = str(int(os.path.basename(step)))
    for d in (step, item):
        meta_file = os.path.join(d, "_CHECKPOINT_METADATA") if d is not None else None
        if meta_file is None or not os.path.lexists(meta_file) or not folder.inside(os.path.realpath(d)):
            continue
        md, note = side_json(meta_file, folder, "_CHECKPOINT_METADATA", MAX_SIDE_JSON_BYTES)
        ns = md.get("commit_timestamp_nsecs") if isinstance(md, dict) else None
        if isinstance(ns, int) and not isinstance(ns, bool) and 0 <= ns < 2**63:
            facts["orbax.committed"] = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        elif note:
            facts["orbax.committed"] = note
        break
    return facts


def sharding_summary(item, folder):
    """What `_sharding` says of how the arrays were laid out on devices when saved, in one line:
    each sharding type with its mesh and how many arrays use it (e.g. "NamedSharding mesh x=2: 2 arrays
    (1 partitioned over x, 1 replicated)")."""
    p = os.path.join(item, "_sharding")
    if not os.path.lexists(p):
        return None
    entries, note = side_json(p, folder, "_sharding", MAX_JSON_BYTES)
    if note:
        return note
    if not isinstance(entries, dict):
        return None
    groups = {}
    for v in entries.values():
        try:
            s = json.loads(v) if isinstance(v, str) else v
        except (ValueError, RecursionError):
            continue
        if not isinstance(s, dict):
            continue
        kind = clean(s.get("sharding_type", "unknown"))[:80]
        if kind == "NamedSharding":
            axes = s.get("axis_names") if isinstance(s.get("axis_names"), list) else []
            shape = s.get("shape") if isinstance(s.get("shape"), list) else []
            label = "NamedSharding mesh " + " × ".join(f"{clean(a)[:40]}={clean(n)[:20]}" for a, n in zip(axes[:16], shape[:16]))
            spec = s.get("partition_spec") if isinstance(s.get("partition_spec"), list) else []
            partitioned = any(x is not None and x != [] for x in spec)
        else:
            label = kind + (f" ({clean(s['device_str'])[:80]})" if "device_str" in s else "")
            partitioned = False
        g = groups.setdefault(label, [0, 0])
        g[0] += 1
        g[1] += 1 if partitioned else 0
        if len(groups) > 32:
            break
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
    it = get_item(path)
    a = it.array(param)
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
    with reading(f"{it.path}: array {param!r}"):
        for idx in boxes(shape, offset // size, (offset + length) // size):
            v = a[idx].read().result() if idx else a.read().result()
            parts.append(v.astype(v.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# The loop


def handle(req):
    op = req.get("op")
    if op == "hello":
        return {"result": hello()}, None
    if op == "open":
        path = str(req["path"])
        with reading(path):
            return {"result": open_checkpoint(path)}, None
    if op == "read":
        path, param = str(req["path"]), str(req["param"])
        with reading(f"{path}: array {param!r}"):
            payload = read_range(path, param, int(req["offset"]), int(req["length"]))
        return {"bytes": len(payload)}, payload
    if op == "modules":
        # Which heavy libraries this process has imported: tests check that reading never restored a tree.
        return {"result": sorted(m for m in ("jax", "orbax", "orbax.checkpoint") if m in sys.modules)}, None
    if op == "close":
        ITEMS.pop(str(req["path"]), None)
        return {"result": True}, None
    raise Failure("E_USAGE", f"unknown op {clean(op)[:40]!r}.")


def main():
    out = sys.stdout.buffer
    # Anything a library prints must not corrupt the protocol.
    sys.stdout = sys.stderr
    for line in sys.stdin.buffer:
        req_id = None
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise Failure("E_USAGE", "a request is not a JSON object.")
            req_id = req.get("id")
            reply, payload = handle(req)
            reply = dict(id=req_id, ok=True, **reply)
        except Failure as e:
            reply, payload = {"id": req_id, "ok": False, "error": {"code": e.code, "message": clean(e)}}, None
        except Exception as e:  # report, never die: one bad checkpoint must not end the session
            # Only a malformed request gets here (each op maps its own failures): no traceback, one line.
            reply, payload = {"id": req_id, "ok": False, "error": {"code": "E_USAGE", "message": "the sidecar could not serve a malformed request."}}, None
        out.write(json.dumps(reply).encode("utf-8") + b"\n")
        if payload:
            out.write(payload)
        out.flush()


if __name__ == "__main__":
    main()
