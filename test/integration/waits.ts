/**
 * Waiting on conditions, shared by the extension-host suites and the UI tests: a poll until a value
 * comes, and the live processes whose command line holds a string (how tests see that a server's
 * processes are gone; zombies not yet reaped do not count).
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Polls `f` every 50 ms until it returns a value (not undefined); throws after `timeoutMs`, with
 * `lastSeen()` (what the last poll saw, recorded by `f`) in the message when given.
 */
export async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, lastSeen?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastSeen ? `; last seen: ${lastSeen()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Live processes (not this one) whose command line holds `fragment`. */
export function processesWith(fragment: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat[stat.lastIndexOf(')') + 2];
      if (state !== 'Z' && state !== 'X' && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(fragment)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The live processes whose environment holds `NAME=value` (e.g. one code-server's, through JAX_SERVE_CODE_SERVER). */
export function processesWithEnv(pids: readonly number[], name: string, value: string): number[] {
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${name}=${value}`);
    } catch {
      return false; // gone meanwhile
    }
  });
}
