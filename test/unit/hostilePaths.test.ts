/**
 * The "nothing lost, nothing read outside, nothing hangs" families, generated:
 * - outputs that are, contain or lie inside a source, in every spelling (`..`, `/.`, `//`, a
 *   symlink, a relative path from elsewhere), with and without --overwrite, for convert and import;
 * - links out of the folder the user named (a shard, a side file, a tokenizer file, a config
 *   folder's config.json, a linked directory, chains of links), each leading to a canary;
 * - files that are not regular files (FIFO, socket, device) wherever a reader expects a file;
 * and the layouts that must keep working: links inside the folder, an HF cache snapshot, a folder
 * or file that is itself a link, an output beside the source.
 * Every refusal: exit 2, one line naming the file, the source's bytes unchanged, no output written,
 * and the canary's bytes nowhere.
 */
import * as assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import * as fc from 'fast-check';
import { JaxServeError, writeSafetensors } from '../../src/core/index';
import { assertOutputOutsideSources, openAtomicFileSink, type IdentityFs, type NodeId } from '../../src/core/node/index';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';
import { assertCleanText, assertRefused, assertUnchanged, Canary, fingerprint, fuzzRuns, fuzzSeed, runCli } from './hostile';

const TALK = 'jax/nnx.msgpack';

/** --config-from and --tokenizer-from for the canonical model, with any of them replaced. */
function sideArgs(hfDir: string, over: { config?: string; tokenizer?: string } = {}): string[] {
  return ['--config-from', over.config ?? hfDir, '--tokenizer-from', over.tokenizer ?? hfDir];
}

describe(`hostile paths: outputs, links out, special files (seed ${fuzzSeed})`, function () {
  this.timeout(600_000);
  let fx: Canonical;
  let root: ReturnType<typeof tempDir>;
  let canary: Canary;
  /** A finished HF export of the canonical model (the source for import cases). */
  let hf: string;
  let n = 0;
  const fresh = (name: string) => {
    const d = join(root.path, `${name}-${n++}`);
    mkdirSync(d, { recursive: true });
    return d;
  };

  before(function () {
    fx = canonicalFixtures(venvPython(this));
    root = tempDir('jax-serve-hostile-');
    canary = new Canary(join(root.path, 'canary-private.key'), fuzzSeed);
    hf = join(root.path, 'hf-export');
    cpSync(join(fx.dir, 'hf'), hf, { recursive: true });
  });
  after(() => root?.remove());

  /** A talk-layout source folder: SRC/model.msgpack, with the HF tokenizer beside it. */
  function talkSource(): { dir: string; file: string } {
    const dir = fresh('src');
    // The HF Flax name, so the folder opens as a checkpoint too.
    const file = join(dir, 'flax_model.msgpack');
    cpSync(join(fx.dir, TALK), file);
    return { dir, file };
  }

  describe('outputs never overlap a source', () => {
    // How the output names the place: each spelling must be seen through.
    const spellings = ['plain', 'dotdot', 'dot', 'slashes', 'link', 'relative'] as const;
    const relations = ['src-file', 'src-dir', 'parent', 'grandparent', 'inside'] as const;

    function spell(target: string, how: (typeof spellings)[number], scratch: string): { out: string; cwd?: string } {
      switch (how) {
        case 'plain':
          return { out: target };
        case 'dotdot':
          return { out: `${target}/x/..` };
        case 'dot':
          return { out: `${target}/.` };
        case 'slashes':
          return { out: target.replace(/\//g, '//') };
        case 'link': {
          const l = join(scratch, `alias-${n++}`);
          symlinkSync(target, l);
          return { out: l };
        }
        case 'relative':
          return { out: relative(scratch, target) || '.', cwd: scratch };
      }
    }

    it('convert refuses every spelling of every overlap, --overwrite or not; the source is unchanged', () => {
      fc.assert(
        fc.property(fc.constantFrom(...relations), fc.constantFrom(...spellings), fc.boolean(), fc.boolean(), (relation, how, overwrite, nameFolder) => {
          const { dir, file } = talkSource();
          const scratch = fresh('scratch');
          const inner = join(dir, 'sub');
          if (relation === 'inside') mkdirSync(inner);
          const target = { 'src-file': file, 'src-dir': dir, parent: dirname(dir), grandparent: dirname(dirname(dir)), inside: inner }[relation];
          const before = fingerprint(dir);
          const listed = readdirSync(root.path).sort();
          const { out, cwd } = spell(target, how, scratch);
          // A folder beside a single-file source is not inside it (`convert w.msgpack -o hf` is the usual call).
          const src = relation === 'inside' || nameFolder ? dir : file;
          const r = runCli(['convert', src, '-o', out, ...(overwrite ? ['--overwrite'] : []), ...sideArgs(join(fx.dir, 'hf'))], { cwd });
          assertRefused(r, /-o /, `convert ${src === dir ? 'FOLDER' : 'FILE'} -o ${relation} (${how}${overwrite ? ', --overwrite' : ''})`);
          assert.match(r.stderr, /is |lies inside|contains|already exists/);
          assertUnchanged(before, dir, 'the source folder');
          assert.deepEqual(readdirSync(root.path).sort(), listed, 'nothing was written beside the source');
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(24) },
      );
    });

    it('convert refuses an output that is --tokenizer-from, --config-from or the rule file folder', () => {
      for (const flag of ['--tokenizer-from', '--config-from'] as const) {
        const { file } = talkSource();
        const tok = fresh('tok');
        cpSync(join(fx.dir, 'hf'), tok, { recursive: true });
        const before = fingerprint(tok);
        const r = runCli(['convert', file, '-o', tok, '--overwrite', ...sideArgs(join(fx.dir, 'hf'), flag === '--config-from' ? { config: tok } : { tokenizer: tok })]);
        assertRefused(r, tok, `convert -o ${flag}`);
        assertUnchanged(before, tok, flag);
      }
    });

    it('import refuses writing over its own HF source, in any spelling', () => {
      for (const how of ['plain', 'dot', 'link'] as const) {
        const src = fresh('hfsrc');
        cpSync(hf, src, { recursive: true });
        const before = fingerprint(src);
        const scratch = fresh('scratch');
        const target = how === 'dot' ? `${src}/./model.safetensors` : how === 'link' ? spell(join(src, 'model.safetensors'), 'link', scratch).out : join(src, 'model.safetensors');
        const r = runCli(['import', src, '-o', target, '--preset', 'talk-nnx-llama', '--overwrite']);
        assertRefused(r, /-o /, `import -o its own source (${how})`);
        assertUnchanged(before, src, 'the HF source');
      }
    });

    it('still converts beside the source, and --overwrite replaces an old export only when the new one is complete', () => {
      const { dir, file } = talkSource();
      const out = join(dirname(dir), `${n++}-export`);
      const first = runCli(['convert', file, '-o', out, ...sideArgs(join(fx.dir, 'hf'))]);
      assert.equal(first.status, 0, first.stderr);
      writeFileSync(join(out, 'old-marker'), 'x');
      const again = runCli(['convert', file, '-o', out, '--overwrite', ...sideArgs(join(fx.dir, 'hf'))]);
      assert.equal(again.status, 0, again.stderr);
      assert.ok(!existsSync(join(out, 'old-marker')), 'the old export was replaced');
      assert.ok(existsSync(join(out, 'config.json')) && existsSync(join(out, 'model.safetensors')));
      assert.deepEqual(readdirSync(dirname(out)).filter((f) => f.includes('.partial')), [], 'no partial folder is left after a good run');
    });

    it('compares by identity: bind-like aliases and case-insensitive file systems cannot slip past (a table of layouts)', async () => {
      // A fake file system: each path maps to a node; aliases share a node, as a bind mount, a
      // hard link or a case-insensitive name does.
      const table: { name: string; nodes: Record<string, number>; out: string; source: string; refused: boolean }[] = [
        { name: 'bind mount of the source folder', nodes: { '/': 1, '/data': 2, '/data/ckpt': 3, '/mnt': 4, '/mnt/alias': 3 }, out: '/mnt/alias', source: '/data/ckpt', refused: true },
        { name: 'inside a bind alias', nodes: { '/': 1, '/data': 2, '/data/ckpt': 3, '/mnt': 4, '/mnt/alias': 3 }, out: '/mnt/alias/export', source: '/data/ckpt', refused: true },
        { name: 'case-insensitive name of the source', nodes: { '/': 1, '/m': 2, '/m/Model': 3, '/m/model': 3 }, out: '/m/MODEL', source: '/m/model', refused: true },
        { name: 'case-insensitive parent of the source', nodes: { '/': 1, '/Work': 2, '/work': 2, '/work/model': 3 }, out: '/WORK', source: '/work/model', refused: true },
        { name: 'hard link of the source file', nodes: { '/': 1, '/a': 2, '/a/w.safetensors': 5, '/b': 3, '/b/w.safetensors': 5 }, out: '/b/w.safetensors', source: '/a/w.safetensors', refused: true },
        { name: 'a sibling', nodes: { '/': 1, '/a': 2, '/a/src': 3, '/a/out': 4 }, out: '/a/out', source: '/a/src', refused: false },
        { name: 'a new folder beside', nodes: { '/': 1, '/a': 2, '/a/src': 3 }, out: '/a/new/deep', source: '/a/src', refused: false },
      ];
      for (const row of table) {
        const fold = (p: string) => (row.nodes[p] !== undefined ? p : (Object.keys(row.nodes).find((k) => k.toLowerCase() === p.toLowerCase() && row.name.startsWith('case')) ?? p));
        const fsys: IdentityFs = {
          identity: async (p): Promise<NodeId | undefined> => (row.nodes[fold(p)] !== undefined ? { dev: 1, ino: row.nodes[fold(p)]! } : undefined),
          realpath: async (p) => p,
        };
        let refused = false;
        try {
          await assertOutputOutsideSources(row.out, [{ path: row.source, role: 'the source' }], fsys);
        } catch (e) {
          assert.ok(e instanceof JaxServeError && e.code === 'E_UNSAFE_PATH', String(e));
          assert.ok(e.message.includes(row.out) && e.message.includes(row.source), e.message);
          refused = true;
        }
        assert.equal(refused, row.refused, row.name);
      }
    });
  });

  describe('nothing is read from outside the folder given', () => {
    /** An "outside" safetensors whose tensor name is the canary: reading it would print the canary. */
    async function outsideWeights(): Promise<string> {
      const f = join(root.path, `outside-${n++}.safetensors`);
      await writeSafetensors(await openAtomicFileSink(f, { sources: [] }), [{ name: canary.text, dtype: 'F32', shape: [1] }], () => new Uint8Array(4));
      return f;
    }
    async function shardedFolder(): Promise<{ dir: string; shards: string[] }> {
      const dir = fresh('sharded');
      const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
      const map: Record<string, string> = {};
      for (const [i, s] of shards.entries()) {
        await writeSafetensors(await openAtomicFileSink(join(dir, s), { sources: [] }), [{ name: `w${i}`, dtype: 'F32', shape: [1] }], () => new Uint8Array(4));
        map[`w${i}`] = s;
      }
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
      return { dir, shards };
    }

    it('refuses a shard that links out (file link, directory link, chains, relative links), naming both paths', async () => {
      const outside = await outsideWeights();
      const kinds = ['absolute', 'relative', 'chain', 'dir'] as const;
      for (const kind of kinds) {
        const { dir, shards } = await shardedFolder();
        const shard = join(dir, shards[1]!);
        rmSync(shard);
        if (kind === 'absolute') symlinkSync(outside, shard);
        if (kind === 'relative') symlinkSync(relative(dir, outside), shard);
        if (kind === 'chain') {
          symlinkSync(outside, join(dir, 'hop'));
          symlinkSync('hop', shard);
        }
        if (kind === 'dir') {
          const outDir = fresh('outdir');
          cpSync(outside, join(outDir, shards[1]!));
          rmSync(join(dir, 'model.safetensors.index.json'));
          writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { w0: shards[0], x: `linked/${shards[1]}` } }));
          symlinkSync(outDir, join(dir, 'linked'));
        }
        const before = fingerprint(dir);
        for (const cmd of [['inspect', dir], ['stats', dir, 'w0'], ['health', dir]]) {
          const r = runCli(cmd);
          assertRefused(r, /outside/, `${cmd[0]} over a ${kind} shard link`);
          assert.ok(r.stderr.includes(dir), `names the folder: ${r.stderr}`);
          canary.assertNotLeaked(r, []);
        }
        assertUnchanged(before, dir, 'the folder');
      }
    });

    it('refuses tokenizer and config files that link out, and never copies the canary into an export', () => {
      const names = ['merges.txt', 'chat_template.jinja', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'vocab.json'];
      fc.assert(
        fc.property(fc.constantFrom(...names), fc.constantFrom('tokenizer', 'config'), (name, which) => {
          const { file } = talkSource();
          const side = fresh('side');
          cpSync(join(fx.dir, 'hf'), side, { recursive: true });
          const linked = which === 'config' ? 'config.json' : name;
          rmSync(join(side, linked), { force: true });
          symlinkSync(canary.file, join(side, linked));
          const out = join(fresh('outparent'), 'export');
          const r = runCli(['convert', file, '-o', out, ...sideArgs(join(fx.dir, 'hf'), which === 'config' ? { config: side } : { tokenizer: side })]);
          assertRefused(r, /outside/, `convert with ${linked} linked out of --${which}-from`);
          canary.assertNotLeaked(r, [dirname(out)]);
          assert.ok(!existsSync(out), 'nothing is written');
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(10) },
      );
    });

    it('keeps working: links inside the folder, an HF cache snapshot, a linked folder or file named by the user', async () => {
      // Inside: a shard that links to another name in the same folder.
      const { dir, shards } = await shardedFolder();
      const real = join(dir, 'real-shard.safetensors');
      cpSync(join(dir, shards[1]!), real);
      rmSync(join(dir, shards[1]!));
      symlinkSync('real-shard.safetensors', join(dir, shards[1]!));
      let r = runCli(['inspect', dir, '--json']);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).tensors.map((t: { name: string }) => t.name), ['w0', 'w1']);
      // An HF cache snapshot: models--org--name/snapshots/REV/* link into ../../blobs/.
      const repo = join(fresh('hub'), 'models--org--tiny');
      const snap = join(repo, 'snapshots', 'abc123');
      mkdirSync(join(repo, 'blobs'), { recursive: true });
      mkdirSync(snap, { recursive: true });
      for (const f of readdirSync(hf)) {
        const blob = join(repo, 'blobs', `sha-${f}`);
        cpSync(join(hf, f), blob);
        symlinkSync(join('..', '..', 'blobs', `sha-${f}`), join(snap, f));
      }
      r = runCli(['inspect', snap, '--json']);
      assert.equal(r.status, 0, r.stderr);
      r = runCli(['preflight', snap]);
      assert.ok(r.status === 0 || r.status === 1, r.stderr);
      assertCleanText(r.stderr, 'preflight');
      const out = join(fresh('o'), 'export');
      r = runCli(['convert', join(fx.dir, TALK), '-o', out, ...sideArgs(snap)]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readFileSync(join(out, 'tokenizer.json')), readFileSync(join(hf, 'tokenizer.json')));
      // The folder named through a link, and a file named through a link.
      const alias = join(root.path, `alias-${n++}`);
      symlinkSync(dir, alias);
      r = runCli(['inspect', alias]);
      assert.equal(r.status, 0, r.stderr);
      const fileAlias = join(root.path, `alias-${n++}.safetensors`);
      symlinkSync(real, fileAlias);
      r = runCli(['inspect', fileAlias]);
      assert.equal(r.status, 0, r.stderr);
    });
  });

  describe('only regular files are read', () => {
    let sock: Server;
    let sockDir: string;
    before(async () => {
      sockDir = fresh('sock');
      sock = createServer();
      await new Promise<void>((res) => sock.listen(join(sockDir, 'model.safetensors'), res));
    });
    after(() => sock?.close());

    const special = (at: string, kind: 'fifo' | 'socket' | 'device') => {
      rmSync(at, { force: true });
      if (kind === 'fifo') execFileSync('mkfifo', [at]);
      else if (kind === 'device') symlinkSync('/dev/zero', at);
      else symlinkSync(join(sockDir, 'model.safetensors'), at);
    };

    it('refuses a FIFO, socket or device wherever a file is read, without blocking', async () => {
      const places = ['named-safetensors', 'shard', 'index', 'npz', 'msgpack', 'config-from', 'tokenizer-from', 'rules'] as const;
      const kinds = ['fifo', 'socket', 'device'] as const;
      const cases = fc.sample(fc.tuple(fc.constantFrom(...places), fc.constantFrom(...kinds)), { seed: fuzzSeed, numRuns: fuzzRuns(16) });
      for (const [place, kind] of cases) {
        const dir = fresh('special');
        let args: string[];
        let named: string;
        if (place === 'named-safetensors' || place === 'npz' || place === 'msgpack') {
          named = join(dir, place === 'npz' ? 'w.npz' : place === 'msgpack' ? 'w.msgpack' : 'w.safetensors');
          special(named, kind);
          args = ['inspect', named];
        } else if (place === 'shard' || place === 'index') {
          await writeSafetensors(await openAtomicFileSink(join(dir, 'a.safetensors'), { sources: [] }), [{ name: 'w', dtype: 'F32', shape: [1] }], () => new Uint8Array(4));
          writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'a.safetensors' } }));
          named = join(dir, place === 'shard' ? 'a.safetensors' : 'model.safetensors.index.json');
          special(named, kind);
          args = ['inspect', dir];
        } else {
          const side = fresh('side');
          cpSync(join(fx.dir, 'hf'), side, { recursive: true });
          named = place === 'rules' ? join(side, 'rules.json') : join(side, place === 'config-from' ? 'config.json' : 'tokenizer.json');
          special(named, kind);
          args = ['convert', join(fx.dir, TALK), '-o', join(fresh('o'), 'x'), ...(place === 'rules' ? ['--rules', named, '--dry-run'] : place === 'config-from' ? ['--config-from', side, '--dry-run'] : sideArgs(join(fx.dir, 'hf'), { tokenizer: side }))];
        }
        const r = runCli(args, { timeoutMs: 15_000 });
        // A device or socket reached through a link out of the folder is refused as outside; named directly, as not a file.
        assertRefused(r, kind === 'fifo' || place === 'named-safetensors' || place === 'npz' || place === 'msgpack' ? named : /outside|not a regular|FIFO|socket|device/, `${args[0]} with a ${kind} as the ${place}`);
      }
    });
  });
});
