// How core/ reports the end of a retry loop.

import { RetryError } from "../retry/retry.ts";

/**
 * When retries ran out, the last attempt's error says more than the
 * `RetryError` around it (an `IntegrityError`, an `HttpError`), so core/
 * throws that; a deadline or an empty budget stays a `RetryError`.
 */
export function unwrapRetryError(error: unknown): unknown {
  if (error instanceof RetryError && error.reason === "attempts") {
    return error.cause;
  }
  return error;
}
