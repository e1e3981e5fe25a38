/**
 * The contract every sink keeps: {@linkcode Sink.deliver} consumes a whole
 * stream and resolves with a {@linkcode DeliveryReceipt} only once the bytes
 * are durable and committed where they were sent; a failed, cancelled or
 * aborted delivery rejects with a typed error and leaves nothing half-written
 * where a reader would look.
 *
 * @example A sink of your own
 * ```ts
 * import type { DeliveryReceipt, Sink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const counter: Sink = {
 *   async deliver(source): Promise<DeliveryReceipt> {
 *     const startedAt = new Date();
 *     const bytes = (await new Response(source).bytes()).length;
 *     return { sink: "counter", location: "memory", bytes, sha256: "", startedAt, finishedAt: new Date(), attempts: 1 };
 *   },
 * };
 * const receipt = await counter.deliver(ReadableStream.from([new Uint8Array(3)]));
 * assert.equal(receipt.bytes, 3);
 * ```
 *
 * @module
 */

/** What the caller knows about the bytes being delivered. */
export interface DeliveryMetadata {
  /** A name for the delivery: a file name, an object key, a label. */
  name?: string;
  /** The media type, for sinks that record or send one. */
  contentType?: string;
  /** The length in bytes, when known in advance; a delivery of any other length fails with `IntegrityError`. */
  size?: number;
  /** Extra HTTP headers, for the sinks that send some (webhook). */
  headers?: Record<string, string>;
  /** Anything else to record with the delivery (kept as JSON where stored). */
  extra?: Record<string, unknown>;
}

/** Options for one {@linkcode Sink.deliver} call. */
export interface DeliverOptions {
  /** Aborting it cancels the source and rejects with `CancelledError`; nothing is committed. */
  signal?: AbortSignal;
}

/** What a sink returns once the bytes are committed. */
export interface DeliveryReceipt {
  /** The kind of sink: `"file"`, `"webhook"`, `"sqlite"`, `"channel"`, `"writable"`, … */
  sink: string;
  /** Where the bytes went: a path, a URL, `<db>#<table>/<id>`. */
  location: string;
  /** How many bytes were delivered. */
  bytes: number;
  /** Their SHA-256, lowercase hex. */
  sha256: string;
  /** When the delivery started. */
  startedAt: Date;
  /** When it was committed. */
  finishedAt: Date;
  /** How many attempts it took (more than 1 only for sinks that retry). */
  attempts: number;
  /** Sink-specific facts: an HTTP status, a row id. */
  detail?: Record<string, unknown>;
}

/**
 * Where bytes end up. `deliver` consumes the whole stream and resolves once
 * the bytes are durable and committed; on failure, cancel or abort it
 * rejects with a typed error, cancels the source and commits nothing.
 */
export interface Sink {
  /**
   * Consumes `source` and commits it.
   *
   * @param source The bytes; read to the end, or cancelled on failure.
   * @param meta What the caller knows about them.
   * @param options An abort signal.
   * @returns Where the bytes went, how many, their SHA-256 and timings.
   */
  deliver(
    source: ReadableStream<Uint8Array>,
    meta?: DeliveryMetadata,
    options?: DeliverOptions,
  ): Promise<DeliveryReceipt>;
}
