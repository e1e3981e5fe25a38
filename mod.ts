/**
 * sluice: move bytes reliably. Resilience policies (`retry`, `Semaphore`,
 * `mapConcurrent`), sealed chunks (`seal`, `decryptStream`, chunk stores and
 * peers), resumable HTTP (`rangeStream`, `download`), a disk spill store
 * (`SpillStore`, `spillStream`, `cleanupStale`), sinks that deliver a stream
 * with a receipt (`fileSink`, `channel`, `writableSink`, `webhookSink`,
 * `sqliteSink`, `parseSinkConfig`, `deliverAll`), atomic files
 * (`AtomicFile`), archives read in one pass and installed all or nothing
 * (`untar`, `unzip`, `openArchive`, `install`), a durable download queue on
 * SQLite (`TransferQueue`) and the typed errors every module throws.
 *
 * Each module also has its own entry point (`@sluice/sluice/retry`,
 * `@sluice/sluice/semaphore`, `@sluice/sluice/chunks`,
 * `@sluice/sluice/range`, `@sluice/sluice/spill`, `@sluice/sluice/sinks`,
 * `@sluice/sluice/atomic`, `@sluice/sluice/archive`, `@sluice/sluice/queue`,
 * `@sluice/sluice/errors`),
 * so an application can import only what it uses.
 *
 * @example
 * ```ts
 * import { HttpError, retry } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const value = await retry(() => {
 *   if (++calls < 2) throw new HttpError({ status: 503, url: "http://127.0.0.1/", retryAfterMs: 1 });
 *   return "done";
 * });
 * assert.equal(value, "done");
 * ```
 *
 * @module
 */

export * from "./archive/mod.ts";
export * from "./core/atomic_file.ts";
export * from "./core/chunks.ts";
export * from "./core/errors.ts";
export * from "./core/queue.ts";
export * from "./core/range.ts";
export * from "./retry/mod.ts";
export * from "./sinks/mod.ts";
export * from "./spill/mod.ts";
