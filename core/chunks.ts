/**
 * Sealed chunks: seal a byte stream into content-addressed encrypted chunks
 * plus a data map, keep the chunks in stores (memory, a directory, HTTP
 * peers, several at once), and stream the plaintext back out in constant
 * memory with {@linkcode decryptStream}. The byte format is specified in
 * `docs/FORMAT.md`.
 *
 * Permissions: none for memory stores; `--allow-read`/`--allow-write` for
 * `dirStore`; `--allow-net` for `httpStore` and `servePeer`.
 *
 * @example Seal, then stream back a range
 * ```ts
 * import { decryptStream, memoryStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const store = memoryStore();
 * const { dataMap, key } = await seal(new Blob(["hello, sealed world"]).stream(), store);
 * const text = await new Response(decryptStream(dataMap, key, store, { start: 7 })).text();
 * assert.equal(text, "sealed world");
 * ```
 *
 * @module
 */

export * from "./chunk_store.ts";
export * from "./data_map.ts";
export * from "./decrypt_stream.ts";
export * from "./dir_store.ts";
export * from "./http_store.ts";
export * from "./multi_store.ts";
export * from "./peer.ts";
export * from "./seal.ts";
