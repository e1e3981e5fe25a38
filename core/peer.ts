/**
 * A small HTTP peer that serves a chunk store: `GET`, `HEAD` and `PUT` on
 * `/chunks/<address>`, the protocol `httpStore` speaks. For tests, demos,
 * the CLI and small deployments behind a real proxy.
 *
 * Needs `--allow-net` for the listening address.
 *
 * @example Serve a directory store on a free loopback port
 * ```ts
 * import { dirStore, servePeer } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   await using peer = servePeer(dirStore(dir));
 *   const response = await fetch(new URL(`chunks/${"ab".repeat(32)}`, peer.url));
 *   assert.equal(response.status, 404);
 *   await response.body?.cancel();
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { isAddress, sha256Hex } from "./_bytes.ts";
import { ChunkNotFoundError, type ChunkStore } from "./chunk_store.ts";
import { MAX_SEALED_CHUNK } from "./data_map.ts";

/** Options of {@linkcode servePeer}. */
export interface ServePeerOptions {
  /** The address to listen on. Defaults to `127.0.0.1`. */
  hostname?: string;
  /** The port; 0 (the default) picks a free one. */
  port?: number;
  /** The largest chunk a `PUT` may send; larger gets 413. Defaults to the largest sealed chunk (16 MiB + 16). */
  maxChunkBytes?: number;
  /** Aborting it shuts the peer down. */
  signal?: AbortSignal;
}

/** A running peer. Close it with `await using` or {@linkcode Peer.close}. */
export interface Peer extends AsyncDisposable {
  /** The base URL to give `httpStore`, such as `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Stops accepting requests and waits for those in flight. */
  close(): Promise<void>;
}

const CHUNK_PATH = /^\/chunks\/([^/]*)$/;

/**
 * Serves `store` over HTTP.
 *
 * - `GET /chunks/<address>`: 200 with the bytes (an immutable, strongly
 *   tagged response), 404 when absent.
 * - `HEAD /chunks/<address>`: 200 or 404.
 * - `PUT /chunks/<address>`: 204 once stored; 400 when the address is
 *   malformed or the body's SHA-256 does not match it; 413 when the body is
 *   larger than `maxChunkBytes` (checked before and while reading).
 * - Other paths 404, other methods 405; a store failure 500.
 *
 * @param store The store to serve.
 * @param options Where to listen, the size limit, a signal.
 * @returns The running peer.
 *
 * @example A PUT whose body does not match its address is refused
 * ```ts
 * import { memoryStore, servePeer } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * await using peer = servePeer(memoryStore());
 * const response = await fetch(new URL(`chunks/${"00".repeat(32)}`, peer.url), {
 *   method: "PUT",
 *   body: "not those bytes",
 * });
 * assert.equal(response.status, 400);
 * await response.body?.cancel();
 * ```
 */
export function servePeer(
  store: ChunkStore,
  options: ServePeerOptions = {},
): Peer {
  const maxChunkBytes = options.maxChunkBytes ?? MAX_SEALED_CHUNK;
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen() {},
    ...(options.signal ? { signal: options.signal } : {}),
  }, (request) => handle(store, request, maxChunkBytes));
  const hostname = server.addr.hostname.includes(":")
    ? `[${server.addr.hostname}]`
    : server.addr.hostname;
  let closing: Promise<void> | undefined;
  const close = () => closing ??= server.shutdown();
  return {
    url: `http://${hostname}:${server.addr.port}/`,
    port: server.addr.port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function text(
  status: number,
  body: string,
  headers: HeadersInit = {},
): Response {
  return new Response(`${body}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

async function handle(
  store: ChunkStore,
  request: Request,
  maxChunkBytes: number,
): Promise<Response> {
  const match = CHUNK_PATH.exec(new URL(request.url).pathname);
  if (match === null) return text(404, "not found");
  const address = match[1]!;
  const { method } = request;
  if (method !== "GET" && method !== "HEAD" && method !== "PUT") {
    return text(405, "method not allowed", { allow: "GET, HEAD, PUT" });
  }
  if (!isAddress(address)) {
    return text(400, "bad address: it must be 64 lowercase hex characters");
  }
  try {
    if (method === "GET") {
      const bytes = await store.get(address);
      return new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": "application/octet-stream",
          "cache-control": "public, max-age=31536000, immutable",
          etag: `"${address}"`,
        },
      });
    }
    if (method === "HEAD") {
      return new Response(null, {
        status: (await store.has(address)) ? 200 : 404,
      });
    }
    const body = await readLimited(request, maxChunkBytes);
    if (body === undefined) {
      return text(413, `chunk larger than ${maxChunkBytes} bytes`);
    }
    if (await sha256Hex(body) !== address) {
      return text(
        400,
        "address mismatch: the body's SHA-256 is not the address",
      );
    }
    await store.put(address, body);
    return new Response(null, { status: 204 });
  } catch (error) {
    if (error instanceof ChunkNotFoundError) return text(404, "not found");
    return text(500, "store failure");
  }
}

// The request body, or undefined when it is larger than `limit`.
async function readLimited(
  request: Request,
  limit: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > limit) {
    await request.body?.cancel();
    return undefined;
  }
  const out = new Uint8Array(Number.isFinite(declared) ? declared : 0);
  if (request.body === null) return out;
  let buffer = out;
  let length = 0;
  for await (const part of request.body) {
    if (length + part.length > limit) return undefined;
    if (length + part.length > buffer.length) {
      const grown = new Uint8Array(
        Math.min(limit, Math.max(buffer.length * 2, length + part.length)),
      );
      grown.set(buffer.subarray(0, length));
      buffer = grown;
    }
    buffer.set(part, length);
    length += part.length;
  }
  return buffer.subarray(0, length);
}
