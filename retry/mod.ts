/**
 * Resilience policies: retry with backoff, jitter, `Retry-After`, deadlines
 * and a shared budget; a FIFO, weighted, abortable semaphore; and a bounded,
 * backpressured concurrent map.
 *
 * This module imports nothing else of sluice. It understands the toolkit's
 * errors by duck typing: any error with a boolean `retryable` (and optional
 * `retryAfterMs`) is judged by it.
 *
 * @example
 * ```ts
 * import { mapConcurrent, retry, Semaphore } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const host = new Semaphore(2);
 * const results: number[] = [];
 * for await (const n of mapConcurrent([1, 2, 3], (n, { signal }) =>
 *   host.run(() => retry(() => n * 10, { signal }), { signal }), { concurrency: 3 })) {
 *   results.push(n);
 * }
 * assert.deepEqual(results, [10, 20, 30]);
 * ```
 *
 * @module
 */

export * from "./backoff.ts";
export * from "./budget.ts";
export * from "./classify.ts";
export * from "./map_concurrent.ts";
export * from "./retry.ts";
export * from "./retry_after.ts";
export * from "./semaphore.ts";
