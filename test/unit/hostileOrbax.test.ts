/**
 * Hostile Orbax checkpoints, generated: each family damages real checkpoints written by orbax (the
 * four layouts: OCDBT and one folder per array, zarr v2 and v3) at a place and in a way the
 * generator picks, and runs the CLI on the copy. A refusal is exit 2 with one clean line naming the
 * file; nothing outside the folder is read (a canary, reached by a link, never shows); the source is
 * unchanged; no case hangs (runCli's time limit). What is fine to accept (a link that stays inside,
 * a folder that is itself a link, a lost informational file) must still give the same answers as the
 * undamaged checkpoint, and missing chunks are judged as orbax judges them (checked against orbax).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, lstatSync, cpSync, chmodSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { assertCleanText, assertRefused, assertUnchanged, Canary, fingerprint, fuzzRuns, fuzzSeed, runCli, type CliResult } from './hostile';
import { tempDir, venvPython } from './helpers';

const FIXTURES = resolve(__dirname, '../../../python/fixtures/orbax_ckpt.py');
const LAYOUTS = ['ocdbt', 'ocdbt-zarr3', 'per-array', 'per-array-zarr3'] as const;
type Layout = (typeof LAYOUTS)[number];
/** Arrays the value families read: one of many chunks, one of one chunk, and a 0-d one. */
const TENSORS = ['params.big', 'params.dense.kernel', 'params.layers.1'] as const;
/** Files orbax writes that say something about the checkpoint but hold none of its values. */
const SIDE_FILES = ['_sharding', '_CHECKPOINT_METADATA', 'commit_success.txt', 'ocdbt.process_0/manifest.ocdbt'];
/** Files that hold its structure or values: losing or damaging one must be refused. */
const CORE_JSON = ['_METADATA', '_strings.json'];

interface BaseManifest {
  tensors: Record<string, { dtype: string; shape: number[] }>;
  ocdbtKeys?: string[];
  arrayMetadata?: Record<string, string>;
}

interface Tree {
  files: string[];
  dirs: string[];
}

/** Regular files and folders below `root`, relative, sorted (the generators index into them). */
function listTree(root: string): Tree {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (lstatSync(join(root, r)).isDirectory()) {
        dirs.push(r);
        walk(r);
      } else files.push(r);
    }
  };
  walk('');
  return { files, dirs };
}

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;
const isArrayMetadata = (rel: string) => rel.endsWith('.zarray') || rel.endsWith('zarr.json');
/** The array a per-array layout file belongs to (its first folder), if that folder is an array. */
const arrayOf = (layout: Layout, rel: string) => (layout.startsWith('per-array') && rel.includes('/') ? rel.split('/')[0] : undefined);

describe('hostile Orbax checkpoints (generated): refused on one clean line, nothing read from outside, nothing hangs', function () {
  this.timeout(120_000);
  let python: string;
  let dir: ReturnType<typeof tempDir>;
  let manifest: Record<Layout, BaseManifest>;
  const bases = {} as Record<Layout, string>;
  const trees = {} as Record<Layout, Tree>;
  let canary: Canary;
  let caseNo = 0;
  const baselines = new Map<string, unknown>();
  const tally = new Map<string, { cases: number; passed: number }>();

  before(function () {
    python = venvPython(this);
    dir = tempDir('jax-serve-hostile-orbax-');
    const out = join(dir.path, 'bases');
    manifest = JSON.parse(execFileSync(python, [FIXTURES, 'write-bases', out], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Record<Layout, BaseManifest>;
    for (const l of LAYOUTS) {
      bases[l] = join(out, l);
      trees[l] = listTree(bases[l]);
    }
    canary = new Canary(join(dir.path, 'canary.txt'), fuzzSeed);
  });
  after(() => {
    const rows = [...tally].map(([f, t]) => `    ${f.padEnd(28)} ${String(t.cases).padStart(4)} cases, ${String(t.passed).padStart(4)} passing`);
    if (rows.length) console.log(`  hostile Orbax families (seed ${fuzzSeed}):\n${rows.join('\n')}`);
    dir?.remove();
  });

  /** A fresh copy of a base (cp -r, as a user copies one) in its own case folder, with room beside it for "outside". */
  function copyOf(layout: Layout): { root: string; ckpt: string } {
    const root = join(dir.path, `case-${caseNo++}`);
    mkdirSync(root);
    const ckpt = join(root, 'ckpt');
    execFileSync('cp', ['-r', bases[layout], ckpt]);
    return { root, ckpt };
  }

  function cli(cmd: 'inspect' | 'stats', ckpt: string, tensor: string): CliResult {
    return runCli(cmd === 'stats' ? ['stats', ckpt, tensor, '--json', '--python', python] : ['inspect', ckpt, '--json', '--python', python]);
  }

  /** What the CLI answers for the undamaged base: `stats` whole, `inspect` as its tensors and values. */
  function answer(cmd: 'inspect' | 'stats', stdout: string): unknown {
    const v = JSON.parse(stdout) as { tensors?: unknown; values?: unknown };
    return cmd === 'stats' ? v : { tensors: v.tensors, values: v.values };
  }
  function baseline(layout: Layout, cmd: 'inspect' | 'stats', tensor: string): unknown {
    const key = `${layout} ${cmd} ${tensor}`;
    if (!baselines.has(key)) {
      const r = cli(cmd, bases[layout], tensor);
      assert.equal(r.status, 0, `baseline ${key}: ${r.stderr}`);
      baselines.set(key, answer(cmd, r.stdout));
    }
    return baselines.get(key);
  }

  function assertSame(r: CliResult, layout: Layout, cmd: 'inspect' | 'stats', tensor: string, what: string): void {
    assert.equal(r.status, 0, `${what} should be read, got ${r.status}: ${r.stderr}`);
    assertCleanText(r.stderr + r.stdout, what);
    assert.deepEqual(answer(cmd, r.stdout), baseline(layout, cmd, tensor), `${what}: answers differ from the undamaged checkpoint's`);
  }

  type Verdict = 'refuse' | 'same' | 'either' | 'clean';
  /** Refused cleanly naming `name`, or the same answers as the base ('either'), or any clean outcome ('clean'). */
  function judge(verdict: Verdict, r: CliResult, name: string, layout: Layout, cmd: 'inspect' | 'stats', tensor: string, what: string): void {
    if (verdict === 'refuse') return assertRefused(r, name, what);
    if (verdict === 'same') return assertSame(r, layout, cmd, tensor, what);
    if (r.status !== 0) return assertRefused(r, name, what);
    if (verdict === 'either') return assertSame(r, layout, cmd, tensor, what);
    assertCleanText(r.stderr + r.stdout, what);
  }

  /** Runs one generated case: damage a copy, run the CLI, check the common promise and the family's verdict. */
  function trial(family: string, layout: Layout, damage: (ckpt: string, root: string) => void, check: (r: CliResult, ckpt: string) => void, cmd: 'inspect' | 'stats', tensor: string, what: string): void {
    const t = tally.get(family) ?? { cases: 0, passed: 0 };
    tally.set(family, t);
    t.cases++;
    const { root, ckpt } = copyOf(layout);
    damage(ckpt, root);
    const before = fingerprint(ckpt);
    const r = cli(cmd, ckpt, tensor);
    try {
      check(r, ckpt);
      assertUnchanged(before, ckpt, `${what}: the checkpoint`);
      canary.assertNotLeaked(r, [root]);
    } catch (e) {
      (e as Error).message = `[${family}] ${layout} ${cmd} ${tensor}: ${what}\n${(e as Error).message}`;
      throw e;
    }
    rmSync(root, { recursive: true, force: true });
    t.passed++;
  }

  // endOnFailure: shrinking would rerun the CLI many times over; the failing case is printed as generated.
  const run = <Ts extends unknown[]>(prop: fc.IRawProperty<Ts>, base: number) => fc.assert(prop, { seed: fuzzSeed, numRuns: fuzzRuns(base), endOnFailure: true });
  const layoutArb = fc.constantFrom(...LAYOUTS);
  const cmdArb = fc.constantFrom<'inspect' | 'stats'>('inspect', 'stats');
  const tensorArb = fc.constantFrom(...TENSORS);

  function ocdbtEdit(ckpt: string, ops: ({ put: string; bytes: Uint8Array } | { delete: string })[]): void {
    const json = ops.map((o) => ('put' in o ? { put: o.put, hex: Buffer.from(o.bytes).toString('hex') } : o));
    execFileSync(python, [FIXTURES, 'ocdbt', ckpt, '-'], { input: JSON.stringify(json), stdio: ['pipe', 'ignore', 'pipe'] });
  }

  it('refuses a file replaced by a symlink out of the folder (to the canary, a copy of the real file, /dev/zero), naming the link', () => {
    run(
      fc.property(layoutArb, fc.nat(), fc.constantFrom('canary', 'copy', 'dev-zero'), fc.boolean(), cmdArb, tensorArb, (layout, i, target, rel, cmd, tensor) => {
        const file = pick(trees[layout].files, i);
        trial('symlink out (file)', layout, (ckpt, root) => {
          const abs = join(ckpt, file);
          let to = target === 'canary' ? canary.file : target === 'dev-zero' ? '/dev/zero' : join(root, `outside-${basename(file)}`);
          if (target === 'copy') writeFileSync(to, readFileSync(abs));
          if (rel && target !== 'dev-zero') to = relative(dirname(abs), to);
          rmSync(abs);
          symlinkSync(to, abs);
        }, (r, ckpt) => assertRefused(r, join(ckpt, file), `${file} -> ${target}`), cmd, tensor, `${file} -> ${target}`);
      }),
      8,
    );
  });

  it('refuses a folder of the checkpoint replaced by a symlink to a folder outside, naming the link', () => {
    run(
      fc.property(layoutArb, fc.nat(), fc.boolean(), cmdArb, tensorArb, (layout, i, rel, cmd, tensor) => {
        const d = pick(trees[layout].dirs, i);
        trial('symlink out (folder)', layout, (ckpt, root) => {
          const abs = join(ckpt, d);
          const out = join(root, `outside-${basename(d)}`);
          renameSync(abs, out);
          symlinkSync(rel ? relative(dirname(abs), out) : out, abs);
        }, (r, ckpt) => assertRefused(r, join(ckpt, d), `${d}/ -> outside`), cmd, tensor, `${d}/ -> outside`);
      }),
      5,
    );
  });

  it('refuses a FIFO or a socket anywhere in the checkpoint (also behind a link inside) before reading a byte: no hang', () => {
    run(
      fc.property(layoutArb, fc.nat(), fc.constantFrom('fifo', 'socket', 'fifo behind a link'), cmdArb, tensorArb, (layout, i, kind, cmd, tensor) => {
        const file = pick(trees[layout].files, i);
        trial('FIFO / socket', layout, (ckpt) => {
          const abs = join(ckpt, file);
          rmSync(abs);
          const at = kind === 'fifo behind a link' ? join(dirname(abs), `.fifo-${basename(abs)}`) : abs;
          if (kind === 'socket') execFileSync(python, ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', basename(at)], { cwd: dirname(at) });
          else execFileSync('mkfifo', [at]);
          if (at !== abs) symlinkSync(basename(at), abs);
        }, (r, ckpt) => assertRefused(r, join(ckpt, file), `${file} as a ${kind}`), cmd, tensor, `${file} as a ${kind}`);
      }),
      8,
    );
  });

  /**
   * What a lost or truncated file must give: structure and values gone are refused; an informational
   * file gone leaves the same answers; an OCDBT data file (d/) holds some arrays' chunks and B-tree
   * nodes, so the answer is the same or a refusal, never different values.
   */
  function verdictFor(layout: Layout, file: string, cmd: 'inspect' | 'stats', tensor: string, how: 'delete' | 'truncate', kept?: Buffer): Verdict {
    if (SIDE_FILES.includes(file)) return 'same';
    if (file === '_METADATA' && how === 'delete') return cmd === 'stats' ? 'same' : 'clean'; // listed from the store then
    if (isArrayMetadata(file) || CORE_JSON.includes(file)) {
      if (how === 'truncate' && kept) {
        try {
          JSON.parse(kept.toString('utf8'));
          return 'either';
        } catch {
          return 'refuse';
        }
      }
      return 'refuse';
    }
    if (file === 'manifest.ocdbt') return 'refuse';
    const array = arrayOf(layout, file);
    // A chunk gone: orbax refuses the array (NOT_FOUND), and jax-serve refuses the checkpoint on opening it.
    if (array && how === 'delete') return 'refuse';
    if (array && cmd === 'stats' && array === tensor) return 'refuse';
    return 'either';
  }

  it('refuses a checkpoint with a file or chunk deleted (as orbax does: NOT_FOUND, not zeros), and reads on without an informational file', () => {
    run(
      fc.property(layoutArb, fc.nat(), fc.boolean(), cmdArb, tensorArb, (layout, i, storeKey, cmd, tensor) => {
        // In an OCDBT layout, half the cases delete a key inside the store (a chunk or an array's metadata) through tensorstore.
        const keys = manifest[layout].ocdbtKeys;
        if (storeKey && keys) {
          const key = pick(keys, i);
          const array = key.slice(0, key.lastIndexOf('/'));
          trial('missing chunk / file', layout, (ckpt) => ocdbtEdit(ckpt, [{ delete: key }]), (r) => assertRefused(r, array, `store key ${key} deleted`), cmd, tensor, `store key ${key} deleted`);
          return;
        }
        const file = pick(trees[layout].files, i);
        const verdict = verdictFor(layout, file, cmd, tensor, 'delete');
        trial('missing chunk / file', layout, (ckpt) => rmSync(join(ckpt, file)), (r, ckpt) => judge(verdict, r, arrayOf(layout, file) ?? (verdict === 'refuse' ? join(ckpt, file) : ckpt), layout, cmd, tensor, `${file} deleted`), cmd, tensor, `${file} deleted`);
      }),
      8,
    );
  });

  it('refuses a truncated file where the checkpoint needs it; never gives different values', () => {
    run(
      fc.property(layoutArb, fc.nat(), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), cmdArb, tensorArb, (layout, i, frac, cmd, tensor) => {
        const file = pick(trees[layout].files, i);
        const size = statSync(join(bases[layout], file)).size;
        const keep = Math.floor(frac * size);
        const kept = readFileSync(join(bases[layout], file)).subarray(0, keep);
        // An empty file has nothing to cut: it stays as orbax wrote it.
        const verdict = size === 0 ? 'same' : verdictFor(layout, file, cmd, tensor, 'truncate', kept);
        // A refusal names the file, its array, or (an OCDBT data file, shared by arrays) the checkpoint.
        const name = (ckpt: string) => (verdict === 'refuse' && !arrayOf(layout, file) ? join(ckpt, file) : arrayOf(layout, file) ?? ckpt);
        trial('truncated', layout, (ckpt) => truncateSync(join(ckpt, file), keep), (r, ckpt) => judge(verdict, r, name(ckpt), layout, cmd, tensor, `${file} cut to ${keep} of ${size} bytes`), cmd, tensor, `${file} cut to ${keep} of ${size} bytes`);
      }),
      6,
    );
  });

  /** The JSON files of a layout: the structure, string values, side files, and each array's zarr metadata (in the OCDBT store or its folder). */
  function jsonTargets(layout: Layout): string[] {
    const inFolder = trees[layout].files.filter((f) => f.startsWith('_') || isArrayMetadata(f)).filter((f) => f !== 'commit_success.txt');
    const inStore = Object.keys(manifest[layout].arrayMetadata ?? {}).map((a) => `store:${a}`);
    return [...inFolder, ...inStore];
  }

  const corruption = fc.oneof(
    fc.record({ kind: fc.constant('deep' as const), depth: fc.integer({ min: 129, max: 200_000 }), inside: fc.boolean() }),
    fc.record({ kind: fc.constant('bad UTF-8' as const), at: fc.nat(), bytes: fc.constantFrom([0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80]) }),
    fc.record({ kind: fc.constant('wrong type' as const), at: fc.nat(), value: fc.constantFrom<unknown>(null, true, 7, -1, 1.5, 'x', [], {}, [1, 2], { a: 1 }) }),
    fc.record({ kind: fc.constant('huge number' as const), at: fc.nat(), text: fc.constantFrom('1e400', '-1e400', '9'.repeat(5000), '123456789012345678901234567890') }),
    fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }) }),
  );
  type Corruption = typeof corruption extends fc.Arbitrary<infer T> ? T : never;

  /** Every JSON value of `v` as a path of keys, in document order. */
  function nodes(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    out.push(at);
    if (Array.isArray(v)) v.forEach((x, i) => nodes(x, [...at, i], out));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) nodes(x, [...at, k], out);
    return out;
  }

  function corrupt(text: string, c: Corruption): Buffer {
    switch (c.kind) {
      case 'deep': {
        const deep = '['.repeat(c.depth) + ']'.repeat(c.depth);
        return Buffer.from(c.inside && text.trimStart().startsWith('{') ? `{"deep": ${deep}, ${text.trimStart().slice(1)}` : deep);
      }
      case 'bad UTF-8': {
        // Inside a string when there is one, so only the encoding is wrong.
        const b = Buffer.from(text);
        const quotes = [...b.keys()].filter((k) => b[k] === 0x22);
        const at = quotes.length ? quotes[c.at % quotes.length]! + 1 : c.at % (b.length + 1);
        return Buffer.concat([b.subarray(0, at), Buffer.from(c.bytes), b.subarray(at)]);
      }
      case 'wrong type':
      case 'huge number': {
        const v = JSON.parse(text) as unknown;
        const paths = nodes(v).filter((p) => p.length > 0);
        const path = pick(paths, c.at);
        const marker = '"__JAX_SERVE_SLOT__"';
        let parent = v as Record<string | number, unknown>;
        for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
        const old = parent[path.at(-1)!];
        if (c.kind === 'wrong type') {
          // A value of another JSON type than the one orbax wrote there.
          const type = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
          parent[path.at(-1)!] = type(c.value) === type(old) ? (type(old) === 'string' ? 0 : 'x') : c.value;
          return Buffer.from(JSON.stringify(v));
        }
        parent[path.at(-1)!] = '__JAX_SERVE_SLOT__';
        return Buffer.from(JSON.stringify(v).replace(marker, c.text));
      }
      case 'garbage':
        return Buffer.from(c.bytes);
    }
  }

  it('refuses corrupted JSON (deep nesting, bad UTF-8, wrong types, huge numbers, garbage) with its own one-line error, never a raw Python exception', () => {
    run(
      fc.property(layoutArb, fc.nat(), corruption, cmdArb, tensorArb, (layout, i, c, cmd, tensor) => {
        const target = pick(jsonTargets(layout), i);
        const inStore = target.startsWith('store:');
        const array = inStore ? target.slice(6) : arrayOf(layout, target);
        const marker = layout.endsWith('zarr3') ? 'zarr.json' : '.zarray';
        const original = inStore ? manifest[layout].arrayMetadata![array!]! : readFileSync(join(bases[layout], target), 'utf8');
        const bytes = corrupt(original, c);
        // Structure, strings and array metadata that do not parse are refused; informational files are read on without.
        const side = SIDE_FILES.includes(target);
        const verdict: Verdict = c.kind === 'wrong type' || c.kind === 'huge number' ? 'clean' : side ? 'same' : 'refuse';
        const what = `${target}: ${c.kind}`;
        // What an informational file says shows in `inspect` only.
        const command = side ? 'inspect' : cmd;
        trial('corrupted JSON', layout, (ckpt) => (inStore ? ocdbtEdit(ckpt, [{ put: `${array}/${marker}`, bytes }]) : writeFileSync(join(ckpt, target), bytes)),
          (r, ckpt) => judge(verdict, r, array ?? join(ckpt, target), layout, command, tensor, what), command, tensor, what);
      }),
      8,
    );
  });

  const hugeArb = fc.oneof(
    fc.record({ kind: fc.constant('dim' as const), dim: fc.nat(), log2: fc.integer({ min: 8, max: 62 }) }),
    fc.record({ kind: fc.constant('dim and chunk' as const), dim: fc.nat(), log2: fc.integer({ min: 24, max: 62 }) }),
    fc.record({ kind: fc.constant('wide dtype' as const), log2: fc.integer({ min: 5, max: 40 }) }),
    fc.record({ kind: fc.constant('64 GiB scalar' as const) }),
    fc.record({ kind: fc.constant('rank' as const), rank: fc.integer({ min: 65, max: 2000 }) }),
    fc.record({ kind: fc.constant('shard index' as const), log2: fc.integer({ min: 20, max: 40 }) }),
  );
  type Huge = typeof hugeArb extends fc.Arbitrary<infer T> ? T : never;

  /** Array metadata that declares what no real array has; `stats` must refuse it fast, not hang or abort. */
  function enlarge(text: string, zarr3: boolean, h: Huge): string {
    const md = JSON.parse(text) as Record<string, unknown> & { shape: number[] };
    const grid = zarr3 ? ((md.chunk_grid as { configuration: { chunk_shape: number[] } }).configuration) : undefined;
    const chunks = zarr3 ? grid!.chunk_shape : (md.chunks as number[]);
    const inner = zarr3 ? (md.codecs as { name: string; configuration: { chunk_shape: number[] } }[]).find((c) => c.name === 'sharding_indexed')?.configuration : undefined;
    const setChunks = (c: number[]) => {
      if (zarr3) {
        grid!.chunk_shape = c;
        if (inner) inner.chunk_shape = c;
      } else md.chunks = c;
    };
    const big = (log2: number) => 2 ** log2;
    switch (h.kind) {
      case 'dim':
      case 'dim and chunk': {
        if (md.shape.length === 0) {
          md.shape = [big(h.log2)];
          setChunks([h.kind === 'dim' ? 1 : big(h.log2)]);
          break;
        }
        const d = h.dim % md.shape.length;
        md.shape[d] = md.shape[d]! * big(h.log2);
        if (h.kind === 'dim and chunk') setChunks(chunks.map((c, k) => (k === d ? c * big(h.log2) : c)));
        break;
      }
      case 'wide dtype':
        if (zarr3) md.data_type = `r${8 * big(h.log2)}`;
        else md.dtype = `|V${big(h.log2)}`;
        break;
      case '64 GiB scalar':
        md.shape = [];
        setChunks([]);
        if (zarr3) md.data_type = `r${8 * 2 ** 36}`;
        else md.dtype = `|V${2 ** 36}`;
        break;
      case 'rank':
        md.shape = new Array<number>(h.rank).fill(1);
        setChunks(new Array<number>(h.rank).fill(1));
        break;
      case 'shard index':
        // An outer chunk (shard) of 2^k along every axis over inner chunks of 1: an index of 16 bytes each.
        md.shape = (md.shape.length ? md.shape : [0]).map(() => big(h.log2));
        if (zarr3) grid!.chunk_shape = md.shape.map(() => big(h.log2));
        if (inner) inner.chunk_shape = md.shape.map(() => 1);
        if (!zarr3) md.chunks = md.shape.map(() => big(h.log2));
        break;
    }
    return JSON.stringify(md);
  }

  it('refuses huge declared shapes, dtypes, ranks and chunk layouts fast (no hang, no SIGABRT), naming the array', () => {
    run(
      fc.property(layoutArb, fc.constantFrom('params.big', 'params.dense.kernel', 'params.f8', 'params.layers.1'), hugeArb, cmdArb, (layout, array, h, cmd) => {
        const zarr3 = layout.endsWith('zarr3');
        const marker = zarr3 ? 'zarr.json' : '.zarray';
        const inStore = layout.startsWith('ocdbt');
        const original = inStore ? manifest[layout].arrayMetadata![array]! : readFileSync(join(bases[layout], array, marker), 'utf8');
        const text = enlarge(original, zarr3, h);
        const what = `${array}: ${JSON.stringify(h)}`;
        // A chunk (or shard) grown with its dimension, under the size jax-serve decodes, keeps the chunk
        // count: only reading it shows the lie, so `inspect` may list the declared shape (as orbax's
        // metadata does); `stats` must refuse it.
        const verdict: Verdict = (h.kind === 'dim and chunk' || h.kind === 'shard index') && cmd === 'inspect' ? 'clean' : 'refuse';
        trial('huge declared shape/dtype', layout, (ckpt) => (inStore ? ocdbtEdit(ckpt, [{ put: `${array}/${marker}`, bytes: Buffer.from(text) }]) : writeFileSync(join(ckpt, array, marker), text)),
          (r) => judge(verdict, r, array, layout, cmd, array, what), cmd, array, what);
      }),
      7,
    );
  });

  it('reads a checkpoint whose files or folders are symlinks that stay inside it (also through a folder that is itself a link) with the same answers', () => {
    run(
      fc.property(layoutArb, fc.nat(), fc.boolean(), fc.boolean(), fc.boolean(), cmdArb, tensorArb, (layout, i, folder, rel, viaLink, cmd, tensor) => {
        const entries = folder ? trees[layout].dirs : trees[layout].files;
        const moved = pick(entries, i);
        const t = tally.get('symlink inside (accepted)') ?? { cases: 0, passed: 0 };
        tally.set('symlink inside (accepted)', t);
        t.cases++;
        const { root, ckpt } = copyOf(layout);
        const abs = join(ckpt, moved);
        const stash = join(ckpt, '.stash', moved.replace(/\//g, '__'));
        mkdirSync(dirname(stash), { recursive: true });
        renameSync(abs, stash);
        symlinkSync(rel ? relative(dirname(abs), stash) : stash, abs);
        let named = ckpt;
        if (viaLink) {
          named = join(root, 'named-link');
          symlinkSync(ckpt, named);
        }
        const r = cli(cmd, named, tensor);
        assertSame(r, layout, cmd, tensor, `${moved} linked inside${viaLink ? ', folder named through a link' : ''}`);
        rmSync(root, { recursive: true, force: true });
        t.passed++;
      }),
      6,
    );
  });

  it('opens a CheckpointManager root and a MaxText run folder inside what was named; a step or checkpoints/ link leading out is refused', () => {
    const { root, ckpt } = copyOf('ocdbt');
    const mgr = join(root, 'manager');
    mkdirSync(join(mgr, '5'), { recursive: true });
    renameSync(ckpt, join(mgr, '5', 'default'));
    cpSync(join(bases.ocdbt, '_CHECKPOINT_METADATA'), join(mgr, '5', '_CHECKPOINT_METADATA'));
    assertSame(cli('stats', mgr, 'params.big'), 'ocdbt', 'stats', 'params.big', 'a manager root');
    // A newer step that is a link inside the root: read; one that leads out: refused, naming both paths.
    symlinkSync('5', join(mgr, '7'));
    assertSame(cli('stats', mgr, 'params.big'), 'ocdbt', 'stats', 'params.big', 'a step linked inside');
    execFileSync('cp', ['-r', join(mgr, '5'), join(root, 'elsewhere')]);
    symlinkSync(join(root, 'elsewhere'), join(mgr, '9'));
    const before = fingerprint(mgr);
    const out = cli('inspect', mgr, '');
    assertRefused(out, join(mgr, '9'), 'a step linked out');
    assert.match(out.stderr, /manager\/9 leads to .*elsewhere, outside the checkpoint folder/);
    assertUnchanged(before, mgr, 'the manager root');
    rmSync(join(mgr, '9'));
    // The step folder's _CHECKPOINT_METADATA is read too: a FIFO there is refused, not waited on.
    rmSync(join(mgr, '5', '_CHECKPOINT_METADATA'));
    execFileSync('mkfifo', [join(mgr, '5', '_CHECKPOINT_METADATA')]);
    assertRefused(cli('inspect', mgr, ''), join(mgr, '5', '_CHECKPOINT_METADATA'), 'a FIFO step metadata file');
    rmSync(join(mgr, '5', '_CHECKPOINT_METADATA'));
    // A MaxText run folder: checkpoints/ inside is read; checkpoints/ as a link out of the run folder is refused.
    const run1 = join(root, 'run1');
    mkdirSync(run1);
    renameSync(mgr, join(run1, 'checkpoints'));
    assertSame(cli('stats', run1, 'params.big'), 'ocdbt', 'stats', 'params.big', 'a MaxText run folder');
    const run2 = join(root, 'run2');
    mkdirSync(run2);
    symlinkSync(join(run1, 'checkpoints'), join(run2, 'checkpoints'));
    assertRefused(cli('inspect', run2, ''), join(run2, 'checkpoints'), 'checkpoints/ linked out of the run folder');
  });

  it('judges missing chunks as orbax itself does: refused where orbax raises NOT_FOUND, the fill value where an older checkpoint skipped them', () => {
    const { root, ckpt } = copyOf('per-array');
    const legacy = join(root, 'legacy');
    execFileSync('cp', ['-r', ckpt, legacy]);
    // An older orbax wrote no store_array_data_equal_to_fill_value and skipped chunks equal to the fill value.
    const md = JSON.parse(readFileSync(join(legacy, '_METADATA'), 'utf8')) as Record<string, unknown>;
    delete md.store_array_data_equal_to_fill_value;
    writeFileSync(join(legacy, '_METADATA'), JSON.stringify(md));
    for (const d of [ckpt, legacy]) rmSync(join(d, 'params.big', '0.0.1'));
    const orbax = (d: string) => JSON.parse(execFileSync(python, [FIXTURES, 'restore', d], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { ok: boolean; error?: string; zeros?: Record<string, number> };
    const strict = orbax(ckpt);
    assert.equal(strict.ok, false);
    assert.match(strict.error ?? '', /NOT_FOUND/);
    assertRefused(cli('stats', ckpt, 'params.big'), 'params.big', 'a missing chunk');
    const lenient = orbax(legacy);
    assert.equal(lenient.ok, true, lenient.error);
    const r = cli('stats', legacy, 'params.big');
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { zeros: number }).zeros, lenient.zeros!['params.big']);
    assert.ok(lenient.zeros!['params.big']! >= 1500, 'the missing chunk reads as zeros in both');
  });

  it('refuses two key paths in _METADATA that join to one name ("params.big" beside params -> big), naming both', () => {
    for (const layout of ['ocdbt', 'per-array'] as const) {
      const { ckpt } = copyOf(layout);
      const md = JSON.parse(readFileSync(join(ckpt, '_METADATA'), 'utf8')) as { tree_metadata: Record<string, unknown> };
      md.tree_metadata["('params.big',)"] = { key_metadata: [{ key: 'params.big', key_type: 2 }], value_metadata: { value_type: 'np.ndarray', skip_deserialize: false } };
      writeFileSync(join(ckpt, '_METADATA'), JSON.stringify(md));
      const r = cli('inspect', ckpt, '');
      assertRefused(r, join(ckpt, '_METADATA'), `${layout}: colliding key paths`);
      assert.match(r.stderr, /\['params', 'big'\].*\['params\.big'\]|\['params\.big'\].*\['params', 'big'\]/);
    }
  });

  it('reports a sidecar that dies of a signal as one line naming what it was reading', () => {
    const { root, ckpt } = copyOf('ocdbt');
    // A "python" that speaks the protocol's hello, then aborts on open, as tensorstore did on a 64 GiB scalar.
    const script = join(root, 'crash.py');
    writeFileSync(script, [
      'import json, os, sys',
      'for line in sys.stdin:',
      '    req = json.loads(line)',
      '    if req["op"] == "hello":',
      '        print(json.dumps({"id": req["id"], "ok": True, "result": {"protocol": 1}}), flush=True)',
      '    else:',
      '        sys.stderr.write("terminate called after throwing an instance of \'std::bad_alloc\'\\n  what():  std::bad_alloc\\x1b[31m\\n")',
      '        sys.stderr.flush()',
      '        os.abort()',
    ].join('\n'));
    const fake = join(root, 'fake-python');
    writeFileSync(fake, `#!/bin/sh\nexec ${JSON.stringify(python)} ${JSON.stringify(script)}\n`);
    chmodSync(fake, 0o755);
    const r = runCli(['inspect', ckpt, '--python', fake]);
    assertRefused(r, ckpt, 'a crashed sidecar');
    assert.match(r.stderr, /crashed: it exited \(SIGABRT\) while reading it\..*check it with orbax.*std::bad_alloc/);
  });
});
