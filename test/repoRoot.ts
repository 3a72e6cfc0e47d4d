import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root (the folder with our package.json), wherever the bundled test runs from. */
export function repoRoot(from = __dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json')) || !readFileSync(join(dir, 'package.json'), 'utf8').includes('"name": "jax-serve"')) {
    const up = join(dir, '..');
    if (up === dir) throw new Error(`no jax-serve package.json above ${from}`);
    dir = up;
  }
  return dir;
}
