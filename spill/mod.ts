/**
 * Spill to disk what is too big to keep in memory but must be read again.
 *
 * - {@linkcode SpillStore}: a private, locked directory of values that is
 *   deleted with the store; quotas on bytes held and on free space.
 * - {@linkcode spillStream}: make a one-shot stream replayable.
 * - {@linkcode cleanupStale}: collect the directories of stores whose
 *   process died, without ever touching anything else.
 *
 * Needs `--allow-read --allow-write` on the root.
 *
 * @example
 * ```ts
 * import { SpillStore, spillStream } from "@sluice/sluice/spill";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * {
 *   await using store = await SpillStore.open({ root, maxBytes: 64 * 1024 * 1024 });
 *   const body = await spillStream(ReadableStream.from([new Uint8Array(10)]), store);
 *   assert.equal((await new Response(body.replay()).bytes()).length, 10);
 * }
 * assert.deepEqual(await Array.fromAsync(Deno.readDir(root)), []);
 * await Deno.remove(root);
 * ```
 *
 * @module
 */

export * from "./cleanup.ts";
export * from "./spill.ts";
export * from "./spill_stream.ts";
