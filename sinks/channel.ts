/**
 * A bounded in-process queue between a delivery and a reader: the answer to
 * "stream the download into an HTTP response body". The delivery pulls from
 * its source only while the queue has room, so a slow reader slows the
 * source; if the reader cancels, the delivery rejects with `CancelledError`
 * and the source is cancelled.
 *
 * @example Serve a delivery as a response body
 * ```ts
 * import { channel } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const { sink, readable } = channel({ highWaterMark: 64 * 1024 });
 * const response = new Response(readable);
 * const delivered = sink.deliver(ReadableStream.from([new TextEncoder().encode("streamed")]));
 * assert.equal(await response.text(), "streamed");
 * assert.equal((await delivered).bytes, 8);
 * ```
 *
 * @module
 */

import { CancelledError } from "../core/errors.ts";
import { checkSize, drain, receiptOf, sinkOf, Tally } from "./_tally.ts";
import type { Sink } from "./types.ts";

/** Options for {@linkcode channel}. */
export interface ChannelOptions {
  /** Bytes queued for the reader at most before the source is paused (default 1 MiB). */
  highWaterMark?: number;
}

/** The two ends of a {@linkcode channel}. */
export interface Channel {
  /** Delivers one stream into `readable`; a second delivery throws `TypeError`. */
  sink: Sink;
  /** What the reader consumes; it errors if the delivery fails, so a reader never mistakes a failure for the end. */
  readable: ReadableStream<Uint8Array>;
}

/**
 * Makes a one-shot, bounded channel. The delivery resolves once the reader
 * has received every byte (not merely once they are queued), so the
 * receipt means the bytes were handed over.
 *
 * @param options The queue bound.
 * @returns The sink and the stream its delivery comes out of.
 * @throws {RangeError} When `highWaterMark` is not a positive number.
 *
 * @example The reader goes away
 * ```ts
 * import { channel } from "@sluice/sluice/sinks";
 * import { CancelledError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const { sink, readable } = channel({ highWaterMark: 1 });
 * let cancelled = false;
 * const endless = new ReadableStream<Uint8Array>({
 *   pull: (c) => c.enqueue(new Uint8Array(1024)),
 *   cancel: () => { cancelled = true; },
 * });
 * const delivered = sink.deliver(endless);
 * const reader = readable.getReader();
 * await reader.read();
 * await reader.cancel();
 * await assert.rejects(delivered, CancelledError);
 * assert.ok(cancelled);
 * ```
 */
export function channel(options: ChannelOptions = {}): Channel {
  const highWaterMark = options.highWaterMark ?? 1024 * 1024;
  if (!(highWaterMark > 0)) {
    throw new RangeError(
      `Cannot make a channel: highWaterMark must be > 0, got ${highWaterMark}`,
    );
  }
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let cancelled: CancelledError | undefined;
  let used = false;
  // One waiter at a time on each side: the reader for data, the delivery for room.
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  const wake = () => {
    wakeReader?.();
    wakeWriter?.();
    wakeReader = wakeWriter = undefined;
  };
  let handedOver = false;

  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (queue.length === 0 && !ended && !failure) {
        await new Promise<void>((r) => wakeReader = r);
      }
      if (failure) return controller.error(failure.error);
      const chunk = queue.shift();
      if (chunk) {
        queued -= chunk.length;
        controller.enqueue(chunk);
        wake();
      }
      if (queue.length === 0 && ended) {
        controller.close();
        handedOver = true;
        wake();
      }
    },
    cancel(reason) {
      cancelled = new CancelledError(
        "Cannot deliver to the channel: its reader cancelled",
        { cause: reason },
      );
      queue.length = 0;
      wake();
    },
  }, { highWaterMark: 0 });

  const sink = sinkOf(async (source, meta, signal) => {
    if (used) throw new TypeError("Cannot deliver to a channel twice");
    used = true;
    const stop = () => {
      if (cancelled) throw cancelled;
      if (signal?.aborted) throw CancelledError.fromSignal(signal);
    };
    signal?.addEventListener("abort", wake);
    try {
      const tally = new Tally();
      await drain(source, async (chunk) => {
        while (queued >= highWaterMark) {
          stop();
          await new Promise<void>((r) => wakeWriter = r);
        }
        stop();
        tally.update(chunk);
        queue.push(chunk);
        queued += chunk.length;
        wake();
      }, signal);
      checkSize(tally.bytes, meta, "channel");
      ended = true;
      wake();
      while (!handedOver) {
        stop();
        await new Promise<void>((r) => wakeWriter = r);
      }
      return receiptOf("channel", "channel", tally, tally.digest());
    } catch (error) {
      if (!cancelled) {
        failure = { error }; // the reader must not mistake it for the end
        wake();
      }
      throw error;
    } finally {
      signal?.removeEventListener("abort", wake);
    }
  });
  return { sink, readable };
}
