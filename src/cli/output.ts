/**
 * What the CLI prints. Names from checkpoints and text from files and servers can carry escape
 * sequences; everything goes out with its control characters shown as `\uXXXX` escapes, so nothing
 * read from a file can drive the terminal (JSON output keeps its value: the escape means the same
 * character inside a JSON string).
 */
import { escapeControls } from '../core/index';

export function print(text: string): void {
  process.stdout.write(escapeControls(text));
}

export function printErr(text: string): void {
  process.stderr.write(escapeControls(text));
}

/** What the CLI tells a user whose server wants an API key (generate and check-served read it from the environment). */
export const API_KEY_HINT = 'set JAX_SERVE_API_KEY to the key the server was started with';
