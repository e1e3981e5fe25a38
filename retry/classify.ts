/**
 * Decide whether an error is worth another try, without knowing its class.
 *
 * The toolkit's errors carry `retryable`; `fetch` reports network faults as
 * a plain `TypeError`; Deno reports socket faults by error name. This module
 * reads all three so `retry()` does the right thing by default.
 *
 * @example
 * ```ts
 * import { isRetryable } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isRetryable(new TypeError("fetch failed")), true);
 * assert.equal(isRetryable(new TypeError("x is not a function")), false);
 * assert.equal(isRetryable(new DOMException("stop", "AbortError")), false);
 * ```
 *
 * @module
 */

// How fetch implementations report a network fault (Deno, undici, browsers).
// "fetch failed: …" is left out on purpose: Deno uses it for blocked ports.
const NETWORK_MESSAGES = new Set([
  "fetch failed",
  "failed to fetch",
  "networkerror when attempting to fetch resource.",
  "load failed",
  "network request failed",
  "network error",
  "terminated",
  "the internet connection appears to be offline.",
]);
const NETWORK_PREFIXES = [
  "error sending request",
  "error reading a body from connection",
  "connection closed before message completed",
];

/**
 * The default retry decision of `retry()`.
 *
 * In order:
 * 1. An error with a boolean `retryable` property (every toolkit error) is
 *    judged by it.
 * 2. A cancellation (`AbortError`, or an error named `CancelledError`) is
 *    never retried.
 * 3. A `TimeoutError` (an attempt timeout, `AbortSignal.timeout`) is retried.
 * 4. A `TypeError` is retried only when it is a network fault reported by
 *    `fetch`; any other `TypeError`, and every `RangeError`, `SyntaxError` and
 *    `ReferenceError`, is a bug that another try cannot fix.
 * 5. Anything else, Deno's socket errors (`ConnectionReset`, `TimedOut`, …)
 *    included, is retried, as p-retry and `@std/async` do.
 *
 * @param error What an attempt threw.
 * @returns Whether another attempt may succeed.
 *
 * @example
 * ```ts
 * import { isRetryable } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isRetryable({ retryable: false }), false);
 * assert.equal(isRetryable(new RangeError("bad size")), false);
 * assert.equal(isRetryable(new Error("flaky")), true);
 * ```
 */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return true;
  const { retryable, name, message } = error as {
    retryable?: unknown;
    name?: unknown;
    message?: unknown;
  };
  if (typeof retryable === "boolean") return retryable;
  if (name === "AbortError" || name === "CancelledError") return false;
  if (name === "TimeoutError") return true;
  if (error instanceof TypeError) return isNetworkMessage(message);
  if (
    error instanceof RangeError || error instanceof SyntaxError ||
    error instanceof ReferenceError
  ) return false;
  return true;
}

function isNetworkMessage(message: unknown): boolean {
  if (typeof message !== "string") return false;
  const text = message.toLowerCase();
  return NETWORK_MESSAGES.has(text) ||
    NETWORK_PREFIXES.some((prefix) => text.startsWith(prefix));
}
