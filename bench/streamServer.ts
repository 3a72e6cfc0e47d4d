/**
 * A local server that answers every request with one SSE body: as fast as it can, in 4 KiB writes as
 * a server's socket hands them out, or paced (`events` SSE events every `everyMs`), as an engine
 * decoding at a steady rate sends them.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Pace {
  readonly events: number;
  readonly everyMs: number;
}

export async function serveStream(body: Buffer, pace?: Pace): Promise<{ url: string; close: () => void }> {
  const events = pace ? body.toString('utf8').split(/(?<=\n\n)/) : [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (!pace) {
        for (let i = 0; i < body.length; i += 4096) res.write(body.subarray(i, i + 4096));
        res.end();
        return;
      }
      // Each tick catches up to where the clock says the stream should be, so timer slack does not slow the rate.
      const t0 = Date.now();
      let sent = 0;
      const timer = setInterval(() => {
        const due = Math.min(events.length, Math.floor((Date.now() - t0) / pace.everyMs + 1) * pace.events);
        if (due > sent) res.write(events.slice(sent, due).join(''));
        sent = due;
        if (sent === events.length) {
          clearInterval(timer);
          res.end();
        }
      }, pace.everyMs);
      res.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}
