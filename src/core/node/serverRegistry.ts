/**
 * A file listing the process groups of the servers we started, so that servers outliving their
 * owner are stopped on the next activation. The watchdog beside each server normally stops it when
 * the owner dies; this covers the case where the watchdog died too (the whole tree SIGKILLed, the
 * OOM killer). Several windows may share the file: an entry is swept only when its owner is gone,
 * and a group only when its leader is the very process we started (same start time), so a recycled
 * pid is never signalled. While any member of a group lives, Linux does not reuse its id.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { groupAlive } from './serverProcess';

export interface RegisteredServer {
  /** The server's process group (its leader's pid). */
  readonly pgid: number;
  /** The leader's start time (clock ticks since boot, /proc/PID/stat field 22); undefined off Linux. */
  readonly startTicks?: string;
  /** The process that started it (the extension host), and its start time. */
  readonly owner: number;
  readonly ownerStartTicks?: string;
  readonly title: string;
  readonly url: string;
}

/** A process's start time, which with its pid identifies it; undefined when it is gone (or not Linux). */
export function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm) " start at field 3 (state); the start time is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(pid: number, ticks: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Alive, but is it the same process? Only /proc can tell.
  const now = startTicks(pid);
  return ticks === undefined || now === undefined || now === ticks;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ServerRegistry {
  constructor(private readonly file: string) {}

  private read(): RegisteredServer[] {
    if (!existsSync(this.file)) return [];
    try {
      const v = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      return Array.isArray(v) ? v.filter((e): e is RegisteredServer => typeof e === 'object' && e !== null && Number.isInteger(e.pgid) && e.pgid > 1 && Number.isInteger(e.owner)) : [];
    } catch {
      return []; // a torn or foreign file: start over
    }
  }

  private write(entries: readonly RegisteredServer[]): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entries, null, 1));
    renameSync(tmp, this.file);
  }

  list(): RegisteredServer[] {
    return this.read();
  }

  add(pgid: number, title: string, url: string): void {
    const entry: RegisteredServer = { pgid, startTicks: startTicks(pgid), owner: process.pid, ownerStartTicks: startTicks(process.pid), title, url };
    this.write([...this.read().filter((e) => e.pgid !== pgid), entry]);
  }

  remove(pgid: number): void {
    this.write(this.read().filter((e) => e.pgid !== pgid));
  }

  /**
   * Stops every listed group whose owner is gone (SIGTERM, then SIGKILL after `graceMs`) and drops
   * it; entries of live owners stay. Returns the servers it stopped.
   */
  async sweep(graceMs = 3000): Promise<RegisteredServer[]> {
    const entries = this.read();
    const orphaned = entries.filter((e) => !alive(e.owner, e.ownerStartTicks));
    const stopped: RegisteredServer[] = [];
    for (const e of orphaned) {
      // The leader may have exited leaving workers; if it lives it must be the process we started.
      const leaderTicks = startTicks(e.pgid);
      const same = leaderTicks === undefined || e.startTicks === undefined || leaderTicks === e.startTicks;
      if (!same || !groupAlive(e.pgid)) continue;
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        try {
          process.kill(-e.pgid, signal);
        } catch {
          break;
        }
        const deadline = Date.now() + graceMs;
        while (groupAlive(e.pgid) && Date.now() < deadline) await sleep(50);
        if (!groupAlive(e.pgid)) break;
      }
      stopped.push(e);
    }
    if (orphaned.length) this.write(this.read().filter((e) => !orphaned.some((o) => o.pgid === e.pgid)));
    return stopped;
  }
}
