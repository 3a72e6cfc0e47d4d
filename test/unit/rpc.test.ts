import * as assert from 'node:assert/strict';
import { isHostToWebview, isWebviewToHost, type CheckpointSummaryView, type HostToWebview, type WebviewToHost } from '../../src/shared/checkpointProtocol';
import { Rpc, RpcError, type Envelope } from '../../src/shared/rpc';

/** Two ends wired back to back, as host and webview are, with messages delivered asynchronously. */
function pair(hostHandle: (m: WebviewToHost) => HostToWebview | undefined | Promise<HostToWebview | undefined>, timeoutMs = 1000) {
  const toHost: Envelope<WebviewToHost>[] = [];
  const pageReceived: HostToWebview[] = [];
  // Each end posts to the other, so each needs the other to exist: deliver through a late-bound box.
  const ends: { host?: Rpc<HostToWebview, WebviewToHost>; page?: Rpc<WebviewToHost, HostToWebview> } = {};
  const host = new Rpc<HostToWebview, WebviewToHost>((e) => setTimeout(() => void ends.page!.receive(JSON.parse(JSON.stringify(e)))), hostHandle, isWebviewToHost, timeoutMs);
  const page = new Rpc<WebviewToHost, HostToWebview>(
    (e) => {
      toHost.push(e);
      setTimeout(() => void ends.host!.receive(JSON.parse(JSON.stringify(e))));
    },
    (m) => void pageReceived.push(m) as undefined,
    isHostToWebview,
    timeoutMs,
  );
  Object.assign(ends, { host, page });
  return { host, page, toHost, pageReceived };
}

const summary = (): CheckpointSummaryView => ({ location: 'i.json', format: 'safetensors-sharded', files: 2, tensorCount: 1, parameterCount: null, bytes: null, parametersByDtype: [], metadata: [], values: [], valueCount: 0 });

describe('webview RPC (both ends of the shared protocol)', () => {
  it('answers a request with the reply, matched by id, through a JSON round trip', async () => {
    const { page } = pair((m) => (m.type === 'listRows' ? { type: 'rows', start: m.start, total: 10, tensors: 10, rows: [] } : undefined));
    const [a, b] = await Promise.all([page.request({ type: 'listRows', start: 5, count: 2, filter: '' }), page.request({ type: 'listRows', start: 7, count: 2, filter: '' })]);
    assert.deepEqual([a, b], [{ type: 'rows', start: 5, total: 10, tensors: 10, rows: [] }, { type: 'rows', start: 7, total: 10, tensors: 10, rows: [] }]);
  });

  it('rejects on the requesting side when the handler throws, with its code and message', async () => {
    const { page } = pair(() => {
      throw Object.assign(new Error('Failed to parse x: nope'), { code: 'E_FORMAT' });
    });
    await assert.rejects(page.request({ type: 'ready', filter: '' }), (e: RpcError) => e.code === 'E_FORMAT' && /nope/.test(e.message));
  });

  it('times out a request that gets no reply', async () => {
    const { page } = pair(() => new Promise(() => undefined), 50);
    await assert.rejects(page.request({ type: 'ready', filter: '' }), (e: RpcError) => e.code === 'E_TIMEOUT');
  });

  it('answers malformed requests with a protocol error instead of acting on them', async () => {
    const replies: Envelope<HostToWebview>[] = [];
    let called = false;
    const host = new Rpc<HostToWebview, WebviewToHost>((e) => void replies.push(e), () => ((called = true), { type: 'ack' }), isWebviewToHost);
    await host.receive({ id: 1, body: { type: 'listRows', start: -1, count: 1, filter: '' } });
    await host.receive({ id: 2, body: { type: 'eval', code: 'x' } });
    await host.receive('not an envelope');
    assert.equal(called, false);
    assert.deepEqual(replies.map((r) => [r.replyTo, r.error?.code]), [[1, 'E_PROTOCOL'], [2, 'E_PROTOCOL']]);
  });

  it('takes a page\'s saved view with ready (a new tab leaves tree and open groups to the host), and refuses a malformed one', () => {
    assert.ok(isWebviewToHost({ type: 'ready', filter: '' }));
    assert.ok(isWebviewToHost({ type: 'ready', filter: 'proj', sort: { key: 'bytes', descending: true }, tree: true, expansion: { open: 'listed', ids: ['["model"]'] } }));
    for (const bad of [{ filter: 3 }, { filter: '', tree: 'yes' }, { filter: '', expansion: { open: 'some', ids: [] } }, { filter: '', sort: { key: 'size', descending: false } }, {}]) {
      assert.equal(isWebviewToHost({ type: 'ready', ...bad }), false, JSON.stringify(bad));
    }
  });

  it('carries the first rows with init, and how the validation of an index\'s shards ended with loaded', async () => {
    const { page, pageReceived, host } = pair((m) =>
      m.type === 'ready' ? { type: 'init', protocolVersion: 4, pageSize: 2, view: 'tree', content: { kind: 'checkpoint', summary: summary(), validating: true }, first: { total: 1, tensors: 1, rows: [{ name: 'a', dtype: '', shape: [], parameters: 0, bytes: 0, pending: true }] } } : undefined,
    );
    const init = await page.request({ type: 'ready', filter: '' });
    assert.ok(init.type === 'init' && init.first?.rows[0]?.pending === true);
    host.send({ type: 'loaded', content: { kind: 'error', message: 'Failed to parse b.safetensors: bad header', listed: summary() } });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(pageReceived.map((m) => m.type), ['loaded']);
  });

  it('rejects pending requests when disposed, and sends nothing after', async () => {
    const { page, toHost } = pair(() => new Promise(() => undefined));
    const p = page.request({ type: 'ready', filter: '' });
    page.dispose();
    await assert.rejects(p, (e: RpcError) => e.code === 'E_DISPOSED');
    page.send({ type: 'ready', filter: '' });
    assert.equal(toHost.length, 1);
  });
});
