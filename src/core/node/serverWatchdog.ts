/**
 * The watchdog beside a server (dist/serverWatchdog.js): started with the server's process group
 * id and a pipe on stdin from whoever started it. When that pipe closes — the extension host or
 * CLI exited, even by SIGKILL — it stops the group: SIGTERM, then SIGKILL after a grace period.
 * It exits on its own when the group is gone.
 */
export {};

const pgid = Number(process.argv[2]);
const graceMs = Number(process.argv[3] ?? 5000);
if (!Number.isInteger(pgid) || pgid <= 1) {
  process.stderr.write('serverWatchdog: needs the process group id of the server\n');
  process.exit(2);
}

const alive = () => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

const stop = () => {
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    process.exit(0);
  }
  const deadline = Date.now() + graceMs;
  const t = setInterval(() => {
    if (!alive()) process.exit(0);
    if (Date.now() > deadline) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone between the check and the kill
      }
      clearInterval(t);
      setTimeout(() => process.exit(0), 200);
    }
  }, 100);
};

process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
// The group may end first (stopped by its owner): then there is nothing to watch.
setInterval(() => {
  if (!alive()) process.exit(0);
}, 1000);
