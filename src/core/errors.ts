/**
 * Errors core throws. Each has a stable `code` that the CLI maps to an exit status and the
 * extension to a message; `message` always names the file and what is wrong.
 */
import { stripControls } from './text';

export type ErrorCode =
  | 'E_FORMAT' // the file is not what its name says, or is malformed (permanent)
  | 'E_LIMIT' // a configured limit tripped (permanent unless the limit is raised)
  | 'E_NOT_FOUND' // a file, tensor or path does not exist (permanent)
  | 'E_UNSAFE_PATH' // a name would read or write outside the folder it was given (permanent)
  | 'E_IO' // the operating system refused a read or write (may be retryable)
  | 'E_USAGE' // the caller asked for something that makes no sense (permanent)
  | 'E_UNSUPPORTED' // valid input that this version cannot handle yet (permanent)
  | 'E_SERVER' // an inference server refused a request or failed mid-stream (its message is kept)
  | 'E_CANCELLED'; // the caller aborted (not an error to show)

const ERROR_CODES: readonly ErrorCode[] = ['E_FORMAT', 'E_LIMIT', 'E_NOT_FOUND', 'E_UNSAFE_PATH', 'E_IO', 'E_USAGE', 'E_UNSUPPORTED', 'E_SERVER', 'E_CANCELLED'];

/** True for a code this version knows (a sidecar's reply is checked before it is trusted). */
export function isErrorCode(s: string): s is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(s);
}

export class JaxServeError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JaxServeError';
  }
}

/** "Failed to parse <file>: <reason>", the one shape every format error takes. */
export function formatError(file: string, reason: string): JaxServeError {
  return new JaxServeError('E_FORMAT', `Failed to parse ${file}: ${reason}`);
}

export function limitError(file: string, what: string, value: number | bigint, limit: number, option: string): JaxServeError {
  return new JaxServeError(
    'E_LIMIT',
    `Failed to parse ${file}: ${what} is ${value}, over the limit of ${limit} (raise it with the ${option} option if the file is trusted).`,
  );
}

export function cancelled(): JaxServeError {
  return new JaxServeError('E_CANCELLED', 'Cancelled.');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled();
}

export function isJaxServeError(e: unknown): e is JaxServeError {
  return e instanceof JaxServeError;
}

/**
 * The message for a person: our own messages as they are, anything else with its type; escape
 * sequences and control characters (a name read from a file can carry them) are removed.
 */
export function describeError(e: unknown): string {
  if (e instanceof JaxServeError) return stripControls(e.message);
  if (e instanceof Error) return stripControls(`${e.name}: ${e.message}`);
  return stripControls(String(e));
}
