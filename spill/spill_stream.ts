// Turning a one-shot stream into one that can be replayed, by way of disk.

import type { SpillOperationOptions, SpillStore } from "./spill.ts";

/** A stream spilled to a {@linkcode SpillStore}, ready to be read again. */
export interface SpilledStream extends AsyncDisposable {
  /** The key it is stored under. */
  readonly key: string;
  /** Its length in bytes. */
  readonly size: number;
  /** Its SHA-256, lowercase hex. */
  readonly sha256: string;
  /** A fresh stream of the same bytes; call it as often as needed. */
  replay(options?: SpillOperationOptions): ReadableStream<Uint8Array>;
}

/** Options for {@linkcode spillStream}. */
export interface SpillStreamOptions extends SpillOperationOptions {
  /** The key to store it under (default: `stream_<random>`). */
  key?: string;
}

/**
 * Reads `source` to the end into `store`, so that it can be replayed any
 * number of times without being held in memory: a webhook body that may be
 * sent again, an upload part that may be retried. The size and SHA-256 are
 * known once it resolves. Disposing of the result deletes the spilled copy.
 *
 * @param source A one-shot stream; it is consumed (or cancelled on failure).
 * @param store Where the bytes go.
 * @param options The key, and an abort signal.
 * @returns The spilled stream.
 * @throws {LimitError} When the store's limits are reached; nothing is left behind.
 *
 * @example
 * ```ts
 * import { SpillStore, spillStream } from "@sluice/sluice/spill";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using store = await SpillStore.open({ root });
 * const once = ReadableStream.from(["a", "b", "c"]).pipeThrough(new TextEncoderStream());
 * await using body = await spillStream(once, store);
 * assert.equal(body.size, 3);
 * assert.equal(await new Response(body.replay()).text(), "abc");
 * assert.equal(await new Response(body.replay()).text(), "abc");
 * ```
 */
export async function spillStream(
  source: ReadableStream<Uint8Array>,
  store: SpillStore,
  options: SpillStreamOptions = {},
): Promise<SpilledStream> {
  const key = options.key ??
    `stream_${crypto.randomUUID().replaceAll("-", "")}`;
  const { size, sha256 } = await store.put(
    key,
    source,
    options.signal ? { signal: options.signal } : {},
  );
  return {
    key,
    size,
    sha256,
    replay: (replayOptions) => store.get(key, replayOptions),
    async [Symbol.asyncDispose]() {
      await store.delete(key).catch(() => {}); // a closed store is already gone
    },
  };
}
