/**
 * Resumable HTTP: {@linkcode rangeStream} streams a resource and resumes
 * with pinned range requests when connections fail, and rejects servers
 * that change the resource or ignore ranges with typed errors;
 * {@linkcode download} writes it to a file that survives restarts of the
 * process, with checkpoints, verification and an atomic rename.
 *
 * Needs `--allow-net` to the server.
 *
 * @example
 * ```ts
 * import { rangeStream } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("whole body", { headers: { etag: '"v1"' } }));
 * const url = `http://127.0.0.1:${server.addr.port}/`;
 * assert.equal(await new Response(rangeStream(url)).text(), "whole body");
 * ```
 *
 * @module
 */

export * from "./download.ts";
export * from "./range_stream.ts";
