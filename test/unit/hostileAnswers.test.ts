/**
 * Cases a red-team run found beyond the generated families, each now a family member of its own:
 * values read in the wrong element order (Fortran-order npy members, in any rank and dtype), bool
 * bytes other than 0 and 1, a link to nothing where a file is copied, a full output device, an HF
 * cache snapshot's subfolder, and a server that ignores max_tokens.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { rawSafetensors, tempDir, venvPython } from './helpers';
import { assertRefused, cli, fuzzRuns, fuzzSeed, runCli } from './hostile';

describe(`hostile answers: order, bools, links to nothing, full devices, servers past max_tokens (seed ${fuzzSeed})`, function () {
  this.timeout(300_000);
  let python: string;
  let fx: Canonical;
  let dir: ReturnType<typeof tempDir>;
  before(function () {
    python = venvPython(this);
    fx = canonicalFixtures(python);
    dir = tempDir('jax-serve-answers-');
  });
  after(() => dir?.remove());

  it('reads Fortran-order npy members in numpy\'s element order: diff --values and convert agree with C order', () => {
    // Shapes of rank 2-4 and dtypes, each array saved twice: C order and Fortran order.
    const cases = fc.sample(
      fc.record({ shape: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 2, maxLength: 4 }), dtype: fc.constantFrom('float32', 'float16', 'int8', 'int64', 'bool') }),
      { seed: fuzzSeed, numRuns: fuzzRuns(12) },
    );
    const spec = JSON.stringify(cases);
    const c = join(dir.path, 'c.npz');
    const f = join(dir.path, 'f.npz');
    execFileSync(python, ['-c', `
import io, json, sys, zipfile, numpy as np
rng = np.random.default_rng(7)
cases = json.loads(sys.argv[1])
arrays = {f"a{i}": (rng.standard_normal(c["shape"]) * 50).astype(c["dtype"]) for i, c in enumerate(cases)}
np.savez(sys.argv[2], **arrays)
with zipfile.ZipFile(sys.argv[3], "w") as z:
    for k, v in arrays.items():
        b = io.BytesIO(); np.lib.format.write_array(b, np.asfortranarray(v)); z.writestr(k + ".npy", b.getvalue())
a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
assert all(np.array_equal(a[k], b[k]) and b[k].flags.f_contiguous for k in a.files)
`, spec, c, f]);
    const r = runCli(['diff', c, f, '--values']);
    assert.equal(r.status, 0, `diff says C and Fortran order differ: ${r.stdout.slice(-400)}${r.stderr}`);
    // And a whole conversion: the talk model saved in Fortran order exports the same bytes.
    const nnxC = join(dir.path, 'nnx_c.npz');
    const nnxF = join(dir.path, 'nnx_f.npz');
    execFileSync(python, ['-c', `
import io, sys, zipfile, numpy as np
from flax import serialization
from flax.traverse_util import flatten_dict
d = {".".join(map(str, k)): np.asarray(v) for k, v in flatten_dict(serialization.msgpack_restore(open(sys.argv[1], "rb").read())).items()}
np.savez(sys.argv[2], **d)
with zipfile.ZipFile(sys.argv[3], "w") as z:
    for k, v in d.items():
        b = io.BytesIO(); np.lib.format.write_array(b, np.asfortranarray(v)); z.writestr(k + ".npy", b.getvalue())
`, join(fx.dir, 'jax/nnx.msgpack'), nnxC, nnxF]);
    const hf = join(fx.dir, 'hf');
    for (const [src, out] of [[nnxC, 'oc'], [nnxF, 'of']]) {
      const x = runCli(['convert', src!, '-o', join(dir.path, out!), '--config-from', hf, '--tokenizer-from', hf]);
      assert.equal(x.status, 0, x.stderr);
    }
    assert.deepEqual(readFileSync(join(dir.path, 'of', 'model.safetensors')), readFileSync(join(dir.path, 'oc', 'model.safetensors')), 'the Fortran-order source exports the same bytes');
  });

  it('reads any nonzero bool byte as True, as numpy, torch and flax do', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const file = join(dir.path, 'bool.safetensors');
        writeFileSync(file, rawSafetensors(JSON.stringify({ w: { dtype: 'BOOL', shape: [bytes.length], data_offsets: [0, bytes.length] } }), bytes));
        const r = runCli(['stats', file, 'w', '--json']);
        assert.equal(r.status, 0, r.stderr);
        const s = JSON.parse(r.stdout) as { max: number; mean: number; zeros: number };
        const trues = bytes.filter((b) => b !== 0).length;
        assert.equal(s.max, trues > 0 ? 1 : 0);
        assert.ok(Math.abs(s.mean - trues / bytes.length) < 1e-12, `mean ${s.mean}, want ${trues / bytes.length}`);
        assert.equal(s.zeros, bytes.length - trues);
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns(20) },
    );
  });

  it('refuses a tokenizer, chat template or shard that links to nothing, naming it, instead of leaving it out', () => {
    for (const name of ['chat_template.jinja', 'tokenizer.json', 'merges.txt', 'tokenizer_config.json']) {
      const tok = join(dir.path, `tok-${name}`);
      cpSync(join(fx.dir, 'hf'), tok, { recursive: true });
      rmSync(join(tok, name), { force: true });
      symlinkSync(join(dir.path, 'nothing-here'), join(tok, name));
      const out = join(dir.path, `out-${name}`);
      const r = runCli(['convert', join(fx.dir, 'jax/nnx.msgpack'), '-o', out, '--config-from', join(fx.dir, 'hf'), '--tokenizer-from', tok]);
      assertRefused(r, join(tok, name), `convert with ${name} linked to nothing`);
      assert.ok(!existsSync(out));
    }
  });

  it('says in one line when the output cannot be written (a full device), with no stack', () => {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cli}" inspect "${join(fx.dir, 'hf')}" >/dev/full; echo "status=$?" >&2`], { encoding: 'utf8' });
    assert.match(r.stderr, /^jax-serve: cannot write the output: ENOSPC[^\n]*\nstatus=2\n$/);
  });

  it('opens an HF cache snapshot\'s subfolder whose files link into the repository\'s blobs/', () => {
    const repo = join(dir.path, 'hub', 'models--org--tiny');
    const sub = join(repo, 'snapshots', 'rev1', 'original');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(sub, { recursive: true });
    for (const f of ['model.safetensors', 'config.json']) {
      cpSync(join(fx.dir, 'hf', f), join(repo, 'blobs', `b-${f}`));
      symlinkSync(join('..', '..', '..', 'blobs', `b-${f}`), join(sub, f));
    }
    const r = runCli(['inspect', sub]);
    assert.equal(r.status, 0, r.stderr);
    // A link from the snapshot to another repository's blobs is still outside.
    const other = join(dir.path, 'hub', 'models--org--other', 'blobs');
    mkdirSync(other, { recursive: true });
    cpSync(join(fx.dir, 'hf', 'model.safetensors'), join(other, 'x'));
    rmSync(join(sub, 'model.safetensors'));
    symlinkSync(join(other, 'x'), join(sub, 'model.safetensors'));
    assertRefused(runCli(['inspect', sub]), /outside/, 'a link into another repository');
  });

  it('cuts off a server that streams past max_tokens, in one line', async () => {
    // A server that sends a one-token chunk every 20 ms and never ends the stream.
    const server = spawn(process.execPath, ['-e', `
const http = require('node:http');
const s = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const t = setInterval(() => res.write('data: ' + JSON.stringify({ choices: [{ index: 0, text: 'x', finish_reason: null }] }) + '\\n\\n'), 20);
  req.on('close', () => clearInterval(t));
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<string>((res) => server.stdout!.once('data', (d: Buffer) => res(d.toString().trim())));
      for (const max of fc.sample(fc.integer({ min: 1, max: 40 }), { seed: fuzzSeed, numRuns: fuzzRuns(3) })) {
        const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
          const p = spawn(process.execPath, [cli, 'generate', '--url', `http://127.0.0.1:${port}`, '--model', 'm', '--max-tokens', String(max), 'hi'], { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
          const kill = setTimeout(() => p.kill('SIGKILL'), 20_000);
          p.on('exit', (status) => {
            clearTimeout(kill);
            res({ status, stderr });
          });
        });
        assertRefused({ status: r.status, signal: null, stdout: '', stderr: r.stderr }, `127.0.0.1:${port}`, `generate --max-tokens ${max} against a server that never stops`);
        assert.match(r.stderr, /ignores the limit/);
      }
    } finally {
      server.kill();
    }
  });

  it('says in one line what a broken HTTP reply is: corrupt gzip, a 1xx first, huge headers, not HTTP at all', async () => {
    // Raw replies a real server (or a proxy in front of it) can send; Node's client meets each differently.
    const replies: Record<string, string> = {
      'gzip-error-page': 'HTTP/1.1 500 Oops\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n\r\nnotgzip',
      'gzip-json': 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\r\nnotgzip',
      'gzip-stream': 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n\r\nnotgzip',
      'early-hints': 'HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
      'huge-header': 'HUGE', // 200 KB of one header, built by the server
      'not-http': 'SSH-2.0-OpenSSH_9.6\r\n',
      'bad-chunk': 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nxx\r\n',
    };
    const server = spawn(process.execPath, ['-e', `
const net = require('node:net');
const replies = ${JSON.stringify(replies)};
const s = net.createServer((c) => {
  c.on('error', () => {});
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    const m = /^POST \\/(?:[^/ ]+\\/)*?([a-z-]+)\\/v1\\//.exec(buf);
    if (!m || !buf.includes('\\r\\n\\r\\n')) return;
    const reply = replies[m[1]] || 'HTTP/1.1 404 x\\r\\n\\r\\n';
    c.end(reply === 'HUGE' ? 'HTTP/1.1 200 OK\\r\\nx-big: ' + 'a'.repeat(200000) + '\\r\\n\\r\\n' : reply);
  });
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<string>((res) => server.stdout!.once('data', (d: Buffer) => res(d.toString().trim())));
      for (const name of Object.keys(replies)) {
        const url = `http://127.0.0.1:${port}/${name}`;
        const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => {
          const p = spawn(process.execPath, [cli, 'generate', '--url', url, '--model', 'm', '--idle-timeout', '2', 'hi'], { stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
          p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
          const kill = setTimeout(() => p.kill('SIGKILL'), 30_000);
          p.on('exit', (status) => {
            clearTimeout(kill);
            res({ status, stdout, stderr });
          });
        });
        // An early hint before a good reply may be taken or refused; either way, never a silent exit 0 with nothing.
        if (name === 'early-hints' && r.status === 0) continue;
        assertRefused({ ...r, signal: null }, `127.0.0.1:${port}`, `generate against ${name}`);
      }
    } finally {
      server.kill();
    }
  });

  it('shows invisible characters in names as escapes, so two names never look alike', async () => {
    const invisible = ['\u200b', '\u200d', '\u2060', '\u00ad', '\u034f', '\u180e', '\u0600', '\ufff9', '\u{1d173}', '\u{e0041}', '\u3164', '\uffa0', '\u115f', '\u{f0000}', '\u202e', '\u2028'];
    for (const ch of fc.sample(fc.constantFrom(...invisible), { seed: fuzzSeed, numRuns: fuzzRuns(8) })) {
      const file = join(dir.path, 'names.safetensors');
      const header = JSON.stringify({ wq: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, [`w${ch}q`]: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } });
      writeFileSync(file, rawSafetensors(header, new Uint8Array(8)));
      const r = runCli(['inspect', file]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!r.stdout.includes(ch), `U+${ch.codePointAt(0)!.toString(16)} reached the terminal raw`);
      const rows = r.stdout.split('\n').filter((l) => /^w/.test(l)).map((l) => l.split(/\s+/)[0]);
      assert.equal(new Set(rows).size, 2, `the two names look alike: ${JSON.stringify(rows)}`);
      const j = runCli(['inspect', file, '--json']);
      assert.deepEqual(JSON.parse(j.stdout).tensors.map((t: { name: string }) => t.name).sort(), ['wq', `w${ch}q`].sort(), '--json keeps the names exactly');
    }
  });

  it('preflight refuses an export holding a FIFO, a link out or a link to nothing', () => {
    for (const kind of ['fifo', 'out', 'nothing'] as const) {
      const pf = join(dir.path, `pf-${kind}`);
      cpSync(join(fx.dir, 'hf'), pf, { recursive: true });
      const f = join(pf, 'chat_template.jinja');
      rmSync(f, { force: true });
      if (kind === 'fifo') execFileSync('mkfifo', [f]);
      else symlinkSync(kind === 'out' ? join(fx.dir, 'hf', 'tokenizer.json') : join(dir.path, 'nothing-at-all'), f);
      const r = runCli(['preflight', pf], { timeoutMs: 20_000 });
      assert.notEqual(r.status, 0, `preflight passed an export whose chat template is ${kind}`);
      assert.match(r.stdout + r.stderr, /chat_template\.jinja/);
    }
  });

  it('names an Orbax step item that links out of the CheckpointManager root, instead of saying it is no checkpoint', () => {
    const mgr = join(dir.path, 'mgr');
    mkdirSync(join(mgr, '5'), { recursive: true });
    mkdirSync(join(mgr, '10'));
    cpSync(join(fx.dir, 'jax/orbax'), join(mgr, '5', 'default'), { recursive: true });
    const elsewhere = join(dir.path, 'elsewhere-item');
    cpSync(join(fx.dir, 'jax/orbax'), elsewhere, { recursive: true });
    symlinkSync(elsewhere, join(mgr, '10', 'default'));
    const r = runCli(['inspect', mgr, '--python', python], { timeoutMs: 60_000 });
    assertRefused(r, join(mgr, '10', 'default'), 'inspect of a manager root whose latest item links out');
    assert.ok(r.stderr.includes(elsewhere), r.stderr);
  });

  it('health and diff --values over 100,000 tiny tensors stop at --max-seconds in one line, and on Ctrl-C', async () => {
    const file = join(dir.path, 'many.safetensors');
    const n = 100_000;
    const header: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) header[`t${i}`] = { dtype: 'F32', shape: [1], data_offsets: [4 * i, 4 * i + 4] };
    writeFileSync(file, rawSafetensors(JSON.stringify(header), new Uint8Array(4 * n)));
    for (const args of [['health', file], ['diff', file, file, '--values']]) {
      const r = runCli([...args, '--max-seconds', '0.3'], { timeoutMs: 60_000 });
      assertRefused(r, file, `${args[0]} past its time budget`);
      assert.match(r.stderr, /time budget of 0\.3 s after \d+ of 100000 tensors/);
    }
    // Ctrl-C: the scan stops at once with "Cancelled." and exit 130.
    // Sent once the scan has reported progress, so it is the scan that is stopped.
    const p = spawn(process.execPath, [cli, 'health', file, '--progress-json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => {
      if (stderr === '') p.kill('SIGINT');
      stderr += d.toString();
    });
    const status = await new Promise<number | null>((res) => p.on('exit', (code) => res(code)));
    assert.equal(status, 130, stderr);
    assert.equal(stderr.trimEnd().split('\n').pop(), 'jax-serve: Cancelled.');
  });
});

