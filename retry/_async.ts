// Async plumbing shared by retry(), the semaphore and mapConcurrent: timers
// that survive delays beyond setTimeout's 2^31 − 1 ms limit, an abort-aware
// race, and a thenable check.

/** The longest delay setTimeout honours; longer ones fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Calls `fn` after `ms` milliseconds, chaining timers past setTimeout's
 * limit, and returns a function that cancels the call.
 */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  let id: ReturnType<typeof setTimeout>;
  let remaining = Math.max(0, ms);
  const arm = () => {
    const step = Math.min(remaining, MAX_TIMEOUT_MS);
    remaining -= step;
    id = setTimeout(remaining > 0 ? arm : fn, step);
  };
  arm();
  return () => clearTimeout(id);
}

/** Waits `ms` milliseconds; rejects with `signal.reason` as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      cancel();
      reject(signal!.reason);
    };
    const cancel = setLongTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as the
 * signal aborts, whichever comes first. A later rejection of `promise` is
 * handled, so abandoning it leaves no unhandled rejection.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Whether `value` is a promise or another thenable. */
export function isPromiseLike<T>(
  value: T | PromiseLike<T>,
): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
