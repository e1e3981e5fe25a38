/**
 * Where bytes end up. Every sink implements one interface,
 * `deliver(source, meta?, { signal })`, and either commits the whole stream
 * and returns a {@linkcode DeliveryReceipt} (where, how many bytes, their
 * SHA-256, timings, attempts) or rejects with a typed error and leaves
 * nothing half-written.
 *
 * - {@linkcode fileSink}: an atomic, fsynced file, optionally confined to a root.
 * - {@linkcode channel}: a bounded in-process queue to a reader (an HTTP response body).
 * - {@linkcode writableSink}: any `WritableStream`.
 * - {@linkcode webhookSink}: an HTTP request, retried, with an SSRF guard on by default.
 * - {@linkcode sqliteSink}: rows in an embedded SQLite database, in one transaction.
 * - {@linkcode parseSinkConfig}: a sink from a string or a JSON object.
 * - `s3Sink` (in `@sluice/sluice/s3`): a multipart upload to S3-compatible object storage.
 * - {@linkcode deliverAll}: one source to several sinks, in bounded memory.
 *
 * Permissions: files need `--allow-read --allow-write` on their directory;
 * webhooks `--allow-net` for the receiver (and DNS); SQLite read and write on
 * the database file.
 *
 * @example
 * ```ts
 * import { deliverAll, fileSink, sqliteSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const receipts = await deliverAll(
 *   ReadableStream.from([new TextEncoder().encode("one source, two places")]),
 *   [fileSink(`${dir}/copy.txt`), sqliteSink(`${dir}/deliveries.db`)],
 *   { name: "copy.txt", contentType: "text/plain" },
 * );
 * assert.equal(receipts[0]!.sha256, receipts[1]!.sha256);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export * from "./channel.ts";
export * from "./config.ts";
export * from "./deliver_all.ts";
export * from "./file.ts";
export * from "./sqlite.ts";
export * from "./types.ts";
export * from "./webhook.ts";
export * from "./writable.ts";
