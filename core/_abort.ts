// Ties a caller's signal to a source stream: its abort cancels the work and
// errors the stream with a CancelledError.

import { CancelledError } from "./errors.ts";

/**
 * When `signal` aborts (or already has), aborts `aborter` and errors
 * `controller` with a `CancelledError`; stops listening once `aborter`
 * aborts for any reason.
 *
 * @returns Whether `signal` had already aborted.
 */
export function cancelOnAbort(
  signal: AbortSignal | undefined,
  aborter: AbortController,
  controller: ReadableStreamDefaultController<Uint8Array>,
): boolean {
  if (signal === undefined) return false;
  const onAbort = () => {
    const error = CancelledError.fromSignal(signal);
    aborter.abort(error);
    controller.error(error);
  };
  if (signal.aborted) {
    onAbort();
    return true;
  }
  signal.addEventListener("abort", onAbort, { once: true });
  aborter.signal.addEventListener(
    "abort",
    () => signal.removeEventListener("abort", onAbort),
    { once: true },
  );
  return false;
}
