/**
 * Deliver into any `WritableStream<Uint8Array>`: a file's `writable`, a
 * socket, a compression pipeline, a test's collector. The delivery resolves
 * once the writable has closed, which is as durable as that writable makes
 * it; on failure or abort the writable is aborted.
 *
 * @example
 * ```ts
 * import { writableSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const chunks: Uint8Array[] = [];
 * const sink = writableSink(new WritableStream({ write: (c) => { chunks.push(c); } }));
 * const receipt = await sink.deliver(ReadableStream.from([new Uint8Array(3), new Uint8Array(4)]));
 * assert.equal(receipt.bytes, 7);
 * assert.equal(chunks.length, 2);
 * ```
 *
 * @module
 */

import { checkSize, drain, receiptOf, sinkOf, Tally } from "./_tally.ts";
import type { Sink } from "./types.ts";

/** Options for {@linkcode writableSink}. */
export interface WritableSinkOptions {
  /** What the receipt's `location` says (default `"writable"`). */
  location?: string;
}

/**
 * A sink that writes one delivery into `writable` and closes it. Writes wait
 * for the writable's backpressure (`writer.ready`), so a slow writable slows
 * the source. If the writable errors, the source is cancelled and the
 * delivery rejects with the writable's error; if the delivery fails, the
 * writable is aborted with the error. A second delivery throws `TypeError`.
 *
 * @param writable Where the bytes go.
 * @param options The receipt's location.
 * @returns The sink.
 *
 * @example Write a file through its writable
 * ```ts
 * import { writableSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * const file = await Deno.open(path, { write: true, truncate: true });
 * await writableSink(file.writable, { location: path })
 *   .deliver(ReadableStream.from([new TextEncoder().encode("via writable")]));
 * assert.equal(await Deno.readTextFile(path), "via writable");
 * await Deno.remove(path);
 * ```
 */
export function writableSink(
  writable: WritableStream<Uint8Array>,
  options: WritableSinkOptions = {},
): Sink {
  const location = options.location ?? "writable";
  let used = false;
  return sinkOf(async (source, meta, signal) => {
    if (used) throw new TypeError("Cannot deliver to a writable sink twice");
    used = true;
    const writer = writable.getWriter();
    try {
      const tally = new Tally();
      await drain(source, async (chunk) => {
        await writer.ready;
        tally.update(chunk);
        writer.write(chunk).catch(() => {}); // a failure shows in ready or close
      }, signal);
      checkSize(tally.bytes, meta, location);
      await writer.close();
      return receiptOf("writable", location, tally, tally.digest());
    } catch (error) {
      await writer.abort(error).catch(() => {});
      throw error;
    } finally {
      writer.releaseLock();
    }
  });
}
