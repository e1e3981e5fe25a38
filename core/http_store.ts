/**
 * A chunk store on an HTTP peer: `GET`, `PUT` and `HEAD` on
 * `<base>/chunks/<address>`, the protocol {@linkcode servePeer} speaks.
 *
 * Needs `--allow-net` to the peer.
 *
 * @example Read and write through a peer
 * ```ts
 * import { decryptStream, httpStore, memoryStore, seal, servePeer } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * await using peer = servePeer(memoryStore());
 * const store = httpStore(peer.url);
 * const { dataMap, key } = await seal(new Blob(["over http"]).stream(), store);
 * assert.equal(await new Response(decryptStream(dataMap, key, store)).text(), "over http");
 * ```
 *
 * @module
 */

import { retry, type RetryOptions } from "../retry/retry.ts";
import { unwrapRetryError } from "./_retry.ts";
import {
  assertAddress,
  ChunkNotFoundError,
  type ChunkStore,
} from "./chunk_store.ts";
import { MAX_SEALED_CHUNK } from "./data_map.ts";
import { HttpError, IncompleteStreamError, LimitError } from "./errors.ts";

/** Options of {@linkcode httpStore}. */
export interface HttpStoreOptions {
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
  /**
   * A retry policy for each request. Off by default, since `seal` and
   * `decryptStream` already retry per chunk and retries would multiply.
   */
  retry?: Omit<RetryOptions, "signal">;
  /** Headers sent with every request (for example `authorization`). */
  headers?: HeadersInit;
}

/**
 * A chunk store on the HTTP peer at `baseUrl`.
 *
 * `get` answers `ChunkNotFoundError` for a 404, `HttpError` for other
 * failures (retryable for 408/425/429/5xx, with `Retry-After`), a
 * `LimitError` for a body larger than any sealed chunk, and an
 * `IncompleteStreamError` for a body shorter than its `Content-Length`.
 *
 * @param baseUrl The peer, for example `http://127.0.0.1:8080/`.
 * @param options `fetch`, retry policy and headers.
 * @returns The store.
 * @throws {TypeError} When `baseUrl` is not an http(s) URL.
 *
 * @example A missing chunk
 * ```ts
 * import { ChunkNotFoundError, httpStore, memoryStore, servePeer } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * await using peer = servePeer(memoryStore());
 * const store = httpStore(peer.url);
 * assert.equal(await store.has("ab".repeat(32)), false);
 * await assert.rejects(store.get("ab".repeat(32)), ChunkNotFoundError);
 * ```
 */
export function httpStore(
  baseUrl: string | URL,
  options: HttpStoreOptions = {},
): ChunkStore {
  const base = new URL(baseUrl);
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new TypeError(`Cannot use peer ${base}: it must be an http(s) URL`);
  }
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const doFetch = options.fetch ?? fetch;
  const policy: RetryOptions = { maxAttempts: 1, ...options.retry };
  const urlOf = (address: string): URL => {
    assertAddress(address);
    return new URL(`chunks/${address}`, base);
  };
  const send = async <T>(
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> => {
    try {
      return await retry(({ signal }) => fn(signal), {
        ...policy,
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      throw unwrapRetryError(error);
    }
  };
  const request = (url: URL, init: RequestInit, signal: AbortSignal) =>
    doFetch(url, { ...init, headers: options.headers ?? {}, signal });

  return {
    get(address, opts) {
      const url = urlOf(address);
      return send(opts?.signal, async (signal) => {
        const response = await request(url, { method: "GET" }, signal);
        if (response.status === 404) {
          await response.body?.cancel();
          throw new ChunkNotFoundError(address);
        }
        if (!response.ok) {
          throw HttpError.fromResponse(response, {
            url: url.href,
            method: "GET",
          });
        }
        return await readBody(response, url.href);
      });
    },
    put(address, bytes, opts) {
      const url = urlOf(address);
      return send(opts?.signal, async (signal) => {
        const response = await request(url, {
          method: "PUT",
          body: bytes as Uint8Array<ArrayBuffer>,
        }, signal);
        if (!response.ok) {
          throw HttpError.fromResponse(response, {
            url: url.href,
            method: "PUT",
          });
        }
        await response.body?.cancel();
      });
    },
    has(address, opts) {
      const url = urlOf(address);
      return send(opts?.signal, async (signal) => {
        const response = await request(url, { method: "HEAD" }, signal);
        await response.body?.cancel();
        if (response.status === 404) return false;
        if (!response.ok) {
          throw HttpError.fromResponse(response, {
            url: url.href,
            method: "HEAD",
          });
        }
        return true;
      });
    },
  };
}

// Reads a chunk body, refusing more than any sealed chunk can hold.
async function readBody(response: Response, url: string): Promise<Uint8Array> {
  const encoding = response.headers.get("content-encoding");
  const encoded = encoding !== null && encoding.toLowerCase() !== "identity";
  // fetch decodes a gzip or br body but keeps the encoded Content-Length:
  // the limit must apply to the decoded bytes, so such a body is counted.
  const declared = encoded ? null : response.headers.get("content-length");
  const expected = declared === null ? undefined : Number(declared);
  if (expected !== undefined && expected > MAX_SEALED_CHUNK) {
    await response.body?.cancel();
    throw new LimitError({
      what: "chunk bytes",
      limit: MAX_SEALED_CHUNK,
      actual: expected,
    });
  }
  if (response.body === null) return new Uint8Array(0);
  if (expected !== undefined) {
    // Deno errors a body cut short of its Content-Length; the check is for other fetches.
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length !== expected) {
      throw new IncompleteStreamError({
        expected,
        received: bytes.length,
        source: url,
      });
    }
    return bytes;
  }
  const parts: Uint8Array[] = [];
  let received = 0;
  for await (const part of response.body) {
    received += part.length;
    if (received > MAX_SEALED_CHUNK) {
      throw new LimitError({
        what: "chunk bytes",
        limit: MAX_SEALED_CHUNK,
        actual: received,
      });
    }
    parts.push(part);
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(received);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
