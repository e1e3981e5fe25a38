// What every sink does on the way: count and hash the bytes, read the source
// with abort support, check a declared size, and make the receipt.

import { createHash, type Hash } from "node:crypto";
import { CancelledError, IntegrityError } from "../core/errors.ts";
import type { DeliveryMetadata, DeliveryReceipt, Sink } from "./types.ts";

/** Counts and hashes the bytes of one delivery. */
export class Tally {
  readonly startedAt: Date = new Date();
  bytes = 0;
  readonly #hash: Hash = createHash("sha256");

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
  }

  /** The SHA-256, once all bytes are in. */
  digest(): string {
    return this.#hash.digest("hex");
  }
}

/** Throws `IntegrityError` when `meta.size` is set and `bytes` differs. */
export function checkSize(
  bytes: number,
  meta: DeliveryMetadata | undefined,
  subject: string,
): void {
  if (meta?.size !== undefined && meta.size !== bytes) {
    throw new IntegrityError({
      check: "size",
      subject,
      expected: String(meta.size),
      actual: String(bytes),
    });
  }
}

/** Throws a `RangeError` unless `meta.size` is absent or a byte count. */
export function validateMeta(meta: DeliveryMetadata | undefined): void {
  const size = meta?.size;
  if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) {
    throw new RangeError(
      `Cannot deliver: meta.size must be a byte count, got ${size}`,
    );
  }
}

/**
 * Reads `source` to the end, handing each chunk to `onChunk` and awaiting
 * it (backpressure). If `onChunk` throws, the source is cancelled with the
 * error and it is rethrown; if `signal` aborts, the source is cancelled and a
 * `CancelledError` thrown.
 */
export async function drain(
  source: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const reader = source.getReader();
  const onAbort = () => {
    reader.cancel(CancelledError.fromSignal(signal!)).catch(() => {});
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      if (signal?.aborted) throw CancelledError.fromSignal(signal);
      const { done, value } = await reader.read();
      if (signal?.aborted) throw CancelledError.fromSignal(signal);
      if (done) return;
      await onChunk(value);
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

/** The receipt for a delivery that has just been committed. */
export function receiptOf(
  sink: string,
  location: string,
  tally: Tally,
  sha256: string,
  extra: { attempts?: number; detail?: Record<string, unknown> } = {},
): DeliveryReceipt {
  return {
    sink,
    location,
    bytes: tally.bytes,
    sha256,
    startedAt: tally.startedAt,
    finishedAt: new Date(),
    attempts: extra.attempts ?? 1,
    ...(extra.detail ? { detail: extra.detail } : {}),
  };
}

/**
 * A sink from its delivery: checks `meta`, refuses a signal that has already
 * aborted, and cancels the source whenever the delivery fails, so each sink
 * only says how it commits.
 */
export function sinkOf(
  deliver: (
    source: ReadableStream<Uint8Array>,
    meta: DeliveryMetadata | undefined,
    signal: AbortSignal | undefined,
  ) => Promise<DeliveryReceipt>,
): Sink {
  return {
    async deliver(source, meta, options = {}) {
      const { signal } = options;
      try {
        validateMeta(meta);
        if (signal?.aborted) throw CancelledError.fromSignal(signal);
        return await deliver(source, meta, signal);
      } catch (error) {
        await source.cancel(error).catch(() => {}); // a no-op once drained
        throw error;
      }
    },
  };
}
