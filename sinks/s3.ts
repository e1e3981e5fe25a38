/**
 * Object storage that speaks the S3 API (AWS S3, Ceph RGW, MinIO, R2, …):
 *
 * - {@linkcode s3Sink}: a sink that streams a delivery as a multipart
 *   upload, parts cut as the stream flows and sent concurrently, each
 *   retried; on any failure or cancel the upload is aborted, so no object
 *   appears and no parts are left behind.
 * - {@linkcode s3Object}: an object as a stream, read with signed ranged
 *   GETs that resume after a cut and are pinned to the object's ETag.
 * - {@linkcode s3Store}: a bucket as a chunk store for sealed chunks, so
 *   `seal`, `decryptStream` and `multiStore` work against object storage.
 * - {@linkcode parseS3Url}: an `s3://bucket/key` URL plus the AWS_*
 *   environment variables as a location.
 *
 * Requests are signed with AWS Signature Version 4 and use path-style URLs
 * (`<endpoint>/<bucket>/<key>`), which every S3 implementation accepts.
 * Needs `--allow-net` to the endpoint (and `--allow-env` for
 * {@linkcode parseS3Url}).
 *
 * @example Upload a stream, read part of it back
 * ```ts ignore
 * import { s3Object, s3Sink } from "@sluice/sluice/s3";
 *
 * const bucket = {
 *   endpoint: "http://127.0.0.1:7480",
 *   region: "default",
 *   bucket: "backups",
 *   credentials: { accessKeyId: "…", secretAccessKey: "…" },
 * };
 * const file = await Deno.open("./big.tar");
 * const receipt = await s3Sink({ ...bucket, key: "2026/big.tar" }).deliver(file.readable);
 * console.log(receipt.detail?.etag, receipt.bytes, receipt.sha256);
 * const head = s3Object({ ...bucket, key: "2026/big.tar", start: 0, end: 512 });
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type ChunkStore, verifyAddress } from "../core/chunk_store.ts";
import {
  CancelledError,
  HttpError,
  type HttpErrorInit,
  IntegrityError,
  LimitError,
} from "../core/errors.ts";
import { httpStore } from "../core/http_store.ts";
import {
  type RangeEvent,
  rangeStream,
  ResourceChangedError,
} from "../core/range_stream.ts";
import { isRetryable } from "../retry/classify.ts";
import { retry, RetryError, type RetryOptions } from "../retry/retry.ts";
import { parseRetryAfter } from "../retry/retry_after.ts";
import { Semaphore } from "../retry/semaphore.ts";
import type { SpillStore } from "../spill/mod.ts";
import {
  EMPTY_SHA256,
  type S3Credentials,
  signRequest,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from "./_sigv4.ts";
import { checkSize, drain, receiptOf, sinkOf, Tally } from "./_tally.ts";
import type { Sink } from "./types.ts";

export type { S3Credentials } from "./_sigv4.ts";

/** A bucket and how to reach it. */
export interface S3Bucket {
  /** The service's base URL: `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:7480`. */
  endpoint: string | URL;
  /** The signing region: `eu-west-1`; `us-east-1` or `auto` for many other services. */
  region: string;
  /** The bucket: 3 to 63 lowercase letters, digits, dots and hyphens. */
  bucket: string;
  /** The access keys. */
  credentials: S3Credentials;
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
}

/** An object in a bucket. */
export interface S3Location extends S3Bucket {
  /** The object key: 1 to 1024 bytes of UTF-8, without `.` or `..` path segments. */
  key: string;
}

/** The smallest part S3 accepts (the last part may be smaller). */
export const MIN_PART_SIZE: number = 5 * 1024 * 1024;
/** The largest part S3 accepts. */
export const MAX_PART_SIZE: number = 5 * 1024 * 1024 * 1024;
/** The most parts one multipart upload may have. */
export const MAX_PARTS = 10_000;

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const encoder = new TextEncoder();

// A validated bucket: its base URL, signing scope and fetch.
interface Target {
  base: string; // "<endpoint>/<bucket>/"
  bucket: string;
  scope: { credentials: S3Credentials; region: string };
  fetch: typeof fetch;
}

function targetOf(options: S3Bucket): Target {
  const endpoint = new URL(options.endpoint);
  const where = `s3 endpoint ${endpoint.href}`;
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") {
    throw new TypeError(`Cannot use ${where}: it must be an http(s) URL`);
  }
  if (endpoint.search || endpoint.hash || endpoint.username) {
    throw new TypeError(
      `Cannot use ${where}: it must not have a query, fragment or user`,
    );
  }
  if (!BUCKET_NAME.test(options.bucket) || options.bucket.includes("..")) {
    throw new TypeError(
      `Cannot use bucket ${
        JSON.stringify(options.bucket)
      }: a bucket name has 3 to 63 lowercase letters, digits, dots and hyphens, and starts and ends with a letter or digit`,
    );
  }
  if (typeof options.region !== "string" || options.region === "") {
    throw new TypeError(`Cannot use ${where}: region must not be empty`);
  }
  const { accessKeyId, secretAccessKey } = options.credentials ?? {};
  if (!accessKeyId || !secretAccessKey) {
    throw new TypeError(
      `Cannot use ${where}: credentials need an accessKeyId and a secretAccessKey`,
    );
  }
  const path = endpoint.pathname.endsWith("/")
    ? endpoint.pathname
    : `${endpoint.pathname}/`;
  return {
    base: `${endpoint.origin}${path}${options.bucket}/`,
    bucket: options.bucket,
    scope: { credentials: options.credentials, region: options.region },
    fetch: options.fetch ?? fetch,
  };
}

// An object key as it goes into a URL. WHATWG URLs collapse "." and ".."
// segments (encoded or not), which would send the request to another key.
function keyPath(key: string, what = "key"): string {
  const bytes = encoder.encode(key).length;
  if (typeof key !== "string" || bytes === 0 || bytes > 1024) {
    throw new TypeError(
      `Cannot use object ${what} ${
        JSON.stringify(key)?.slice(0, 80)
      }: it must be 1 to 1024 bytes of UTF-8`,
    );
  }
  if (key.split("/").some((s) => s === "." || s === "..")) {
    throw new TypeError(
      `Cannot use object ${what} ${
        JSON.stringify(key).slice(0, 80)
      }: "." and ".." path segments cannot be sent in a URL`,
    );
  }
  return uriEncode(key, true);
}

function objectUrl(
  target: Target,
  path: string,
  query: Record<string, string> = {},
): URL {
  const url = new URL(target.base + path);
  for (const [name, value] of Object.entries(query)) {
    url.searchParams.set(name, value);
  }
  return url;
}

// The payload hash to sign. Over https TLS protects the bytes, so bodies go
// unsigned, as the AWS SDKs send them; over plain http each body's SHA-256
// is signed, so the server refuses bytes changed on the way.
function payloadHash(url: URL, body: Uint8Array | undefined): string {
  if (!body) return EMPTY_SHA256;
  if (url.protocol === "https:") return UNSIGNED_PAYLOAD;
  return createHash("sha256").update(body).digest("hex");
}

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

// The text of the first <tag> in an S3 XML answer, entities decoded.
function xmlValue(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return match?.[1]?.replace(
    /&(#x[0-9a-f]+|#\d+|[a-z]+);/gi,
    (whole, name: string) =>
      name.startsWith("#x") || name.startsWith("#X")
        ? String.fromCodePoint(parseInt(name.slice(2), 16))
        : name.startsWith("#")
        ? String.fromCodePoint(Number(name.slice(1)))
        : ENTITIES[name] ?? whole,
  );
}

function xmlEscape(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => `&${Object.entries(ENTITIES).find(([, v]) => v === c)![0]};`,
  );
}

// An HttpError naming S3's error code, from a failed response.
async function s3Error(
  response: Response,
  method: string,
  url: URL,
): Promise<HttpError> {
  const text = method === "HEAD" ? "" : await response.text().catch(() => "");
  return errorOf(response, method, url, text);
}

function errorOf(
  response: Response,
  method: string,
  url: URL,
  xml: string,
  status = response.status,
): HttpError {
  const code = xmlValue(xml, "Code");
  const message = xmlValue(xml, "Message");
  const init: HttpErrorInit = {
    status,
    statusText: response.statusText,
    url: url.href,
    method,
  };
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
  if (retryAfterMs !== undefined) init.retryAfterMs = retryAfterMs;
  const because = code
    ? ` (${code}${message && message !== code ? `: ${message}` : ""})`
    : "";
  return new HttpError(
    init,
    `Cannot ${method} ${url.href}: server answered ${status}${
      response.statusText ? ` ${response.statusText}` : ""
    }${because}`,
  );
}

interface SendOptions {
  headers?: Record<string, string>;
  body?: Uint8Array;
  signal?: AbortSignal;
}

// One signed request; a failure status becomes an HttpError.
async function send(
  target: Target,
  method: string,
  url: URL,
  options: SendOptions = {},
): Promise<Response> {
  const body = options.body;
  const headers = signRequest({
    method,
    url,
    headers: options.headers ?? {},
    payloadHash: payloadHash(url, body),
  }, target.scope);
  const response = await target.fetch(url, {
    method,
    headers,
    ...(body ? { body: body as Uint8Array<ArrayBuffer> } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!response.ok) throw await s3Error(response, method, url);
  return response;
}

// A fetch for core/ helpers that signs every request it makes.
function signingFetch(
  target: Target,
  adjust: (headers: Headers) => void = () => {},
): typeof fetch {
  return (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const method = init.method ?? "GET";
    const headers = new Headers(init.headers);
    adjust(headers);
    const body = init.body;
    if (body != null && !(body instanceof Uint8Array)) {
      throw new TypeError(`Cannot sign a ${method} body that is not bytes`);
    }
    const signed = signRequest({
      method,
      url,
      headers: Object.fromEntries(headers),
      payloadHash: payloadHash(
        url,
        (body ?? undefined) as Uint8Array | undefined,
      ),
    }, target.scope);
    return target.fetch(url, { ...init, headers: signed });
  };
}

// retry(), throwing the last attempt's error when attempts ran out.
async function retried<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  policy: RetryOptions,
): Promise<T> {
  try {
    return await retry(({ signal }) => fn(signal), policy);
  } catch (error) {
    throw error instanceof RetryError && error.reason === "attempts"
      ? error.cause
      : error;
  }
}

/** Options of {@linkcode s3Sink}. */
export interface S3SinkOptions extends S3Location {
  /**
   * The size of each part (default 8 MiB; at least {@linkcode MIN_PART_SIZE}).
   * A delivery whose `meta.size` would need more than
   * {@linkcode MAX_PARTS} parts uses larger ones.
   */
  partSize?: number;
  /** Parts uploaded at once (default 4). The part buffers take `partSize × (concurrency + 1)`. */
  concurrency?: number;
  /**
   * The retry policy of each request (default: 5 attempts with the `retry()`
   * backoff, 120 s per attempt). 408, 429, 5xx and network faults are
   * retried, honouring `Retry-After`; other 4xx fail at once.
   */
  retry?: Omit<RetryOptions, "signal">;
  /**
   * While a failed part waits for its next attempt, keep it here instead of
   * in memory, so a long outage (`Retry-After: 120`) holds disk, not RAM.
   */
  spill?: SpillStore;
  /** The `Content-Type` when `meta.contentType` gives none (default `application/octet-stream`). */
  contentType?: string;
}

/**
 * A sink that uploads each delivery to `key` in an S3 bucket.
 *
 * A delivery smaller than one part is sent with a single `PUT`. Anything
 * larger becomes a multipart upload: parts are cut as the stream flows,
 * at most `concurrency` are in flight (the source waits for a free slot,
 * so the part buffers stay at `partSize × (concurrency + 1)` whatever the
 * object's size; `fetch` copies each body it sends on top of that), over
 * plain http each part's SHA-256 is signed so the server checks its bytes
 * (over https, TLS does, and parts go as `UNSIGNED-PAYLOAD`), and each request is retried per `retry`. The upload is completed
 * with the part ETags once the source ends and every part is stored. On any
 * failure or cancel the parts in flight are stopped and
 * `AbortMultipartUpload` is sent: no object appears, no parts are left.
 *
 * The receipt's `location` is the object's URL; `detail` holds `bucket`,
 * `key`, `etag`, `parts` (0 for a single PUT), `retries` and, on a
 * versioned bucket, `versionId`.
 *
 * @param options Where to upload, part size, concurrency, retries, spill.
 * @returns The sink.
 * @throws {TypeError} On a bad endpoint, bucket, key or credentials.
 * @throws {RangeError} On a bad part size or concurrency.
 *
 * @example Deliver to a bucket
 * ```ts ignore
 * import { s3Sink } from "@sluice/sluice/s3";
 *
 * const sink = s3Sink({
 *   endpoint: "https://s3.eu-west-1.amazonaws.com",
 *   region: "eu-west-1",
 *   bucket: "my-backups",
 *   key: "db/2026-11-21.sql.gz",
 *   credentials: { accessKeyId: Deno.env.get("AWS_ACCESS_KEY_ID")!, secretAccessKey: Deno.env.get("AWS_SECRET_ACCESS_KEY")! },
 *   partSize: 16 * 1024 * 1024,
 * });
 * const dump = await Deno.open("./dump.sql.gz");
 * const receipt = await sink.deliver(dump.readable, { contentType: "application/gzip" });
 * console.log(receipt.location, receipt.detail?.etag);
 * ```
 *
 * @example Options are checked before anything is sent
 * ```ts
 * import { s3Sink } from "@sluice/sluice/s3";
 * import assert from "node:assert/strict";
 *
 * const credentials = { accessKeyId: "id", secretAccessKey: "secret" };
 * const at = { endpoint: "http://127.0.0.1:7480", region: "default", credentials };
 * assert.throws(() => s3Sink({ ...at, bucket: "ab", key: "k" }), /3 to 63/);
 * assert.throws(() => s3Sink({ ...at, bucket: "logs", key: "a/../b" }), /path segments/);
 * assert.throws(() => s3Sink({ ...at, bucket: "logs", key: "k", partSize: 1024 }), RangeError);
 * ```
 */
export function s3Sink(options: S3SinkOptions): Sink {
  const target = targetOf(options);
  const path = keyPath(options.key);
  const basePartSize = options.partSize ?? 8 * 1024 * 1024;
  const concurrency = options.concurrency ?? 4;
  if (
    !Number.isSafeInteger(basePartSize) || basePartSize < MIN_PART_SIZE ||
    basePartSize > MAX_PART_SIZE
  ) {
    throw new RangeError(
      `Cannot upload to s3: partSize must be an integer from ${MIN_PART_SIZE} to ${MAX_PART_SIZE}, got ${basePartSize}`,
    );
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot upload to s3: concurrency must be an integer >= 1, got ${concurrency}`,
    );
  }
  const url = objectUrl(target, path);
  const location = url.href;

  return sinkOf(async (source, meta, signal) => {
    const tally = new Tally();
    let partSize = basePartSize;
    if (meta?.size !== undefined && meta.size > partSize * MAX_PARTS) {
      const mib = 1024 * 1024;
      partSize = Math.ceil(meta.size / MAX_PARTS / mib) * mib;
      if (partSize > MAX_PART_SIZE) {
        throw new LimitError({
          what: "object bytes",
          limit: MAX_PART_SIZE * MAX_PARTS,
          actual: meta.size,
        });
      }
    }
    const stop = new AbortController(); // stops the parts in flight
    const linked = signal
      ? AbortSignal.any([signal, stop.signal])
      : stop.signal;
    let retries = 0;
    let attempts = 1;
    const policy = (): RetryOptions => ({
      attemptTimeoutMs: 120_000,
      ...options.retry,
      signal: linked,
      onRetry(event) {
        retries++;
        attempts = Math.max(attempts, event.attempt + 1);
        options.retry?.onRetry?.(event);
      },
    });
    const contentType = meta?.contentType ?? options.contentType ??
      "application/octet-stream";

    const free: Uint8Array[] = [];
    const slots = new Semaphore(concurrency);
    const etags: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let uploadId: string | undefined;
    let parts = 0;
    let buffer: Uint8Array = new Uint8Array(partSize);
    let filled = 0;

    const uploadPart = async (
      id: string,
      number: number,
      bytes: Uint8Array,
    ): Promise<string> => {
      const partUrl = objectUrl(target, path, {
        partNumber: String(number),
        uploadId: id,
      });
      const spillKey = `s3part_${id.replace(/[^A-Za-z0-9_-]/g, "")}_${number}`
        .slice(0, 190);
      let held: Uint8Array | undefined = bytes;
      let spilled = false;
      try {
        const response = await retried(async (attemptSignal) => {
          held ??= await new Response(options.spill!.get(spillKey)).bytes();
          try {
            return await send(target, "PUT", partUrl, {
              body: held,
              signal: attemptSignal,
            });
          } catch (error) {
            if (options.spill && isRetryable(error) && !linked.aborted) {
              await options.spill.put(spillKey, held, { signal: linked });
              spilled = true;
              held = undefined;
            }
            throw error;
          }
        }, policy());
        await response.body?.cancel();
        const etag = response.headers.get("etag");
        if (etag === null) {
          throw new TypeError(
            `Cannot upload part ${number} of ${location}: the answer has no ETag`,
          );
        }
        return etag;
      } finally {
        if (spilled) await options.spill!.delete(spillKey).catch(() => {});
      }
    };

    // Sends a full part once a slot is free; the source waits meanwhile.
    const dispatch = async (bytes: Uint8Array) => {
      const number = ++parts;
      if (number > MAX_PARTS) {
        throw new LimitError({
          what: "parts",
          limit: MAX_PARTS,
          actual: number,
        });
      }
      uploadId ??= await createUpload();
      const id = uploadId;
      const permit = await slots.acquire(1, { signal: linked });
      const task = uploadPart(id, number, bytes).then(
        (etag) => {
          etags[number - 1] = etag;
          if (bytes.length === partSize) free.push(bytes);
        },
        (error) => {
          failure ??= error;
          stop.abort(error);
        },
      ).finally(() => {
        permit.release();
        inFlight.delete(task);
      });
      inFlight.add(task);
    };

    const createUpload = async (): Promise<string> => {
      const response = await retried(
        (s) =>
          send(target, "POST", objectUrl(target, path, { uploads: "" }), {
            headers: { "content-type": contentType },
            signal: s,
          }),
        policy(),
      );
      const id = xmlValue(await response.text(), "UploadId");
      if (!id) {
        throw new TypeError(
          `Cannot upload to ${location}: CreateMultipartUpload gave no UploadId`,
        );
      }
      return id;
    };

    const complete = async (id: string) => {
      const xml = `<CompleteMultipartUpload>${
        etags.map((etag, i) =>
          `<Part><PartNumber>${i + 1}</PartNumber><ETag>${
            xmlEscape(etag)
          }</ETag></Part>`
        ).join("")
      }</CompleteMultipartUpload>`;
      const completeUrl = objectUrl(target, path, { uploadId: id });
      return await retried(async (s) => {
        const response = await send(target, "POST", completeUrl, {
          body: encoder.encode(xml),
          headers: { "content-type": "application/xml" },
          signal: s,
        });
        // S3 may answer 200 and report the failure in the body.
        const text = await response.text();
        if (/<Error>/.test(text)) {
          throw errorOf(response, "POST", completeUrl, text, 500);
        }
        return response.headers.get("x-amz-version-id");
      }, policy());
    };

    // The object as stored: its ETag (some servers leave it out of the
    // completion answer) and a check that it holds every byte sent.
    const stored = async (versionId: string | null) => {
      const head = versionId ? objectUrl(target, path, { versionId }) : url;
      const response = await retried(
        (s) => send(target, "HEAD", head, { signal: s }),
        policy(),
      );
      const length = Number(response.headers.get("content-length"));
      if (length !== tally.bytes) {
        // Not what was sent: take it back rather than leave it for readers.
        await send(target, "DELETE", head).then((r) => r.body?.cancel())
          .catch(() => {});
        throw new IntegrityError({
          check: "size",
          subject: location,
          expected: String(tally.bytes),
          actual: String(length),
        });
      }
      return response.headers.get("etag");
    };

    try {
      await drain(source, async (chunk) => {
        tally.update(chunk);
        let rest = chunk;
        while (rest.length > 0) {
          if (failure !== undefined) throw failure;
          if (filled === partSize) {
            // More bytes after a full part: it is not the last one.
            await dispatch(buffer);
            buffer = free.pop() ?? new Uint8Array(partSize);
            filled = 0;
          }
          const n = Math.min(rest.length, partSize - filled);
          buffer.set(rest.subarray(0, n), filled);
          filled += n;
          rest = rest.subarray(n);
        }
      }, linked);
      checkSize(tally.bytes, meta, location);
      const sha256 = tally.digest();
      if (uploadId === undefined) {
        const response = await retried(
          (s) =>
            send(target, "PUT", url, {
              body: buffer.subarray(0, filled),
              headers: { "content-type": contentType },
              signal: s,
            }),
          policy(),
        );
        await response.body?.cancel();
        return receipt(
          sha256,
          response.headers.get("etag"),
          response.headers.get("x-amz-version-id"),
        );
      }
      await dispatch(buffer.subarray(0, filled));
      while (inFlight.size > 0) await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      const versionId = await complete(uploadId);
      uploadId = undefined; // nothing is left to abort
      return receipt(sha256, await stored(versionId), versionId);
    } catch (error) {
      stop.abort(error);
      await Promise.allSettled([...inFlight]);
      if (uploadId !== undefined) await abortUpload(uploadId);
      if (signal?.aborted) throw CancelledError.fromSignal(signal);
      throw failure ?? error;
    }

    // `parts` counts the multipart upload's parts: 0 for a single PUT.
    function receipt(
      sha256: string,
      etag: string | null,
      versionId: string | null,
    ) {
      return receiptOf("s3", location, tally, sha256, {
        attempts,
        detail: {
          bucket: target.bucket,
          key: options.key,
          etag,
          parts,
          retries,
          ...(versionId ? { versionId } : {}),
        },
      });
    }

    // Best effort, with its own short retry: the delivery has failed already.
    async function abortUpload(id: string): Promise<void> {
      await retried(
        (s) =>
          send(target, "DELETE", objectUrl(target, path, { uploadId: id }), {
            signal: s,
          }).then((r) => r.body?.cancel()),
        { maxAttempts: 3, attemptTimeoutMs: 30_000 },
      ).catch(() => {});
    }
  });
}

/** Options of {@linkcode s3Object}. */
export interface S3ObjectOptions extends S3Location {
  /** The first byte to read. Defaults to 0. */
  start?: number;
  /** One past the last byte to read (like `subarray`). Defaults to the end of the object. */
  end?: number;
  /**
   * The ETag the object must have (from an earlier read or a receipt). By
   * default the first response's ETag pins every later request.
   */
  etag?: string;
  /** The retry policy while no bytes arrive (default 5 attempts); progress starts it afresh. */
  retry?: Omit<RetryOptions, "signal">;
  /** A connection that delivers nothing for this long is dropped and resumed. Defaults to 30 000 ms. */
  stallTimeoutMs?: number;
  /** No byte at or past this offset is read. Defaults to 100 GiB. */
  maxBytes?: number;
  /** Aborting it stops the stream with a `CancelledError`. */
  signal?: AbortSignal;
  /** Called on responses, progress and resumes. */
  onProgress?: (event: RangeEvent) => void;
}

/**
 * An object (or a byte range of it) as a stream, read with signed GETs.
 *
 * This is `rangeStream` from `@sluice/sluice/range` with S3 signing: a
 * connection that is cut, stalls or ends early is resumed with a `Range`
 * request from the next byte, and every request carries `If-Match` with
 * the object's ETag (the given `etag`, or the first response's), so an
 * object overwritten mid-read fails with `ResourceChangedError` instead of
 * splicing two versions. A missing object or bucket is an `HttpError` 404.
 *
 * @param options The object, the range, retries and a signal.
 * @returns The bytes.
 * @throws {TypeError} On a bad endpoint, bucket, key or credentials.
 * @throws {RangeError} On a bad range.
 *
 * @example Read a byte range
 * ```ts ignore
 * import { s3Object } from "@sluice/sluice/s3";
 *
 * const header = await new Response(s3Object({
 *   endpoint: "http://127.0.0.1:7480",
 *   region: "default",
 *   bucket: "backups",
 *   key: "2026/big.tar",
 *   credentials: { accessKeyId: "…", secretAccessKey: "…" },
 *   start: 0,
 *   end: 512,
 * })).bytes();
 * ```
 *
 * @example Keys are checked before anything is sent
 * ```ts
 * import { s3Object } from "@sluice/sluice/s3";
 * import assert from "node:assert/strict";
 *
 * const credentials = { accessKeyId: "id", secretAccessKey: "secret" };
 * assert.throws(
 *   () => s3Object({ endpoint: "http://127.0.0.1:7480", region: "default", credentials, bucket: "logs", key: "" }),
 *   TypeError,
 * );
 * ```
 */
export function s3Object(options: S3ObjectOptions): ReadableStream<Uint8Array> {
  const target = targetOf(options);
  const url = objectUrl(target, keyPath(options.key));
  let pinned = options.etag;
  const signed = signingFetch(target, (headers) => {
    // S3 pins with If-Match; an If-Range would turn a change into a 200.
    headers.delete("if-range");
    if (pinned !== undefined) headers.set("if-match", pinned);
  });
  const pinningFetch: typeof fetch = async (input, init) => {
    const expected = pinned;
    const response = await signed(input, init);
    if (response.status === 412 && expected !== undefined) {
      await response.body?.cancel();
      throw new ResourceChangedError({
        url: url.href,
        what: "ETag",
        expected,
        actual: undefined,
      });
    }
    if (!response.ok && response.status !== 416) {
      throw await s3Error(response, "GET", url);
    }
    pinned ??= response.headers.get("etag") ?? undefined;
    return response;
  };
  return rangeStream(url, {
    fetch: pinningFetch,
    ...(options.start !== undefined ? { start: options.start } : {}),
    ...(options.end !== undefined ? { end: options.end } : {}),
    ...(options.etag !== undefined
      ? { validator: { header: "etag", value: options.etag } }
      : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.stallTimeoutMs !== undefined
      ? { stallTimeoutMs: options.stallTimeoutMs }
      : {}),
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}

/** Options of {@linkcode s3Store}. */
export interface S3StoreOptions extends S3Bucket {
  /** A key prefix, such as `"vault/"`; chunks go to `<prefix>chunks/<address>`. */
  prefix?: string;
  /**
   * A retry policy for each request. Off by default, since `seal` and
   * `decryptStream` already retry per chunk and retries would multiply.
   */
  retry?: Omit<RetryOptions, "signal">;
}

/**
 * A bucket as a chunk store: sealed chunks are objects at
 * `<prefix>chunks/<address>`, the layout of a peer (`servePeer`), so a
 * bucket published over HTTP is also readable with `httpStore`.
 *
 * `put` checks the address before uploading (a signed `PUT`, idempotent),
 * `get` is a signed `GET` (a missing chunk is `ChunkNotFoundError`, a
 * missing bucket an `HttpError`), and `has` a signed `HEAD`. It works
 * wherever a store does: `seal`, `decryptStream`, `multiStore` beside peers
 * and directories.
 *
 * @param options The bucket, a key prefix and a retry policy.
 * @returns The store.
 * @throws {TypeError} On a bad endpoint, bucket, prefix or credentials.
 *
 * @example Seal into a bucket, decrypt from it
 * ```ts ignore
 * import { decryptStream, seal } from "@sluice/sluice/chunks";
 * import { s3Store } from "@sluice/sluice/s3";
 *
 * const store = s3Store({
 *   endpoint: "http://127.0.0.1:7480",
 *   region: "default",
 *   bucket: "vault",
 *   credentials: { accessKeyId: "…", secretAccessKey: "…" },
 * });
 * const { dataMap, key } = await seal((await Deno.open("./notes.txt")).readable, store);
 * const text = await new Response(decryptStream(dataMap, key, store)).text();
 * ```
 *
 * @example Prefixes are checked before anything is sent
 * ```ts
 * import { s3Store } from "@sluice/sluice/s3";
 * import assert from "node:assert/strict";
 *
 * const credentials = { accessKeyId: "id", secretAccessKey: "secret" };
 * const at = { endpoint: "http://127.0.0.1:7480", region: "default", bucket: "vault", credentials };
 * s3Store({ ...at, prefix: "team/" });
 * assert.throws(() => s3Store({ ...at, prefix: "../" }), TypeError);
 * ```
 */
export function s3Store(options: S3StoreOptions): ChunkStore {
  const target = targetOf(options);
  const prefix = options.prefix ?? "";
  const base = prefix === "" ? target.base : objectUrl(
    target,
    keyPath(prefix.endsWith("/") ? prefix : `${prefix}/`, "prefix"),
  ).href;
  const sign = signingFetch(target);
  const checked: typeof fetch = async (input, init) => {
    const response = await sign(input, init);
    // A 404 for a missing bucket is not a missing chunk.
    if (response.status === 404 && init?.method !== "HEAD") {
      const text = await response.text();
      const code = xmlValue(text, "Code");
      if (code !== undefined && code !== "NoSuchKey") {
        throw errorOf(
          response,
          init?.method ?? "GET",
          new URL(input as URL),
          text,
        );
      }
      return new Response(null, { status: 404 });
    }
    return response;
  };
  const store = httpStore(base, {
    fetch: checked,
    ...(options.retry ? { retry: options.retry } : {}),
  });
  return {
    get: store.get,
    has: store.has,
    async put(address, bytes, opts) {
      await verifyAddress(address, bytes);
      await store.put(address, bytes, opts);
    },
  };
}

/** What {@linkcode parseS3Url} reads besides the URL. */
export interface ParseS3UrlOptions {
  /** Reads an environment variable; defaults to `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/** A bucket and key from {@linkcode parseS3Url}. */
export interface ParsedS3Url extends S3Bucket {
  /** The endpoint, as a URL. */
  endpoint: URL;
  /** Everything after the bucket, as written (may be empty). */
  key: string;
}

/**
 * Reads `s3://bucket/key?endpoint=…&region=…` with the AWS_* environment:
 * credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
 * `AWS_SESSION_TOKEN`; the endpoint from the `endpoint` option, else
 * `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else AWS's regional endpoint;
 * the region from the `region` option, else `AWS_REGION` or
 * `AWS_DEFAULT_REGION`, else `us-east-1`. The key is taken as written (no
 * percent-decoding), as `aws s3` does.
 *
 * @param url The `s3://` URL.
 * @param options Where to read the environment.
 * @returns The bucket, key, endpoint, region and credentials.
 * @throws {TypeError} On a malformed URL, an unknown option, a bad bucket or endpoint, or missing credentials.
 *
 * @example
 * ```ts
 * import { parseS3Url } from "@sluice/sluice/s3";
 * import assert from "node:assert/strict";
 *
 * const env = { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret" } as Record<string, string>;
 * const at = parseS3Url("s3://backups/db/today.gz?endpoint=http://127.0.0.1:7480&region=default", { env: (name) => env[name] });
 * assert.equal(at.bucket, "backups");
 * assert.equal(at.key, "db/today.gz");
 * assert.equal(at.endpoint.href, "http://127.0.0.1:7480/");
 * assert.throws(() => parseS3Url("s3://backups/x", { env: () => undefined }), /AWS_ACCESS_KEY_ID/);
 * ```
 */
export function parseS3Url(
  url: string,
  options: ParseS3UrlOptions = {},
): ParsedS3Url {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const fail = (problem: string): never => {
    throw new TypeError(`Cannot use ${JSON.stringify(url)}: ${problem}`);
  };
  const match = /^s3:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (match === null) return fail("expected s3://bucket/key");
  const bucket = match[1]!;
  const key = match[2]!.replace(/^\//, "");
  const query = new URLSearchParams(match[3] ?? "");
  for (const name of query.keys()) {
    if (name !== "endpoint" && name !== "region") {
      fail(`unknown option "${name}" (expected endpoint or region)`);
    }
  }
  if (!BUCKET_NAME.test(bucket) || bucket.includes("..")) {
    fail(
      `the bucket ${
        JSON.stringify(bucket)
      } must have 3 to 63 lowercase letters, digits, dots and hyphens`,
    );
  }
  const region = query.get("region") || env("AWS_REGION") ||
    env("AWS_DEFAULT_REGION") || "us-east-1";
  const endpointText = query.get("endpoint") || env("AWS_ENDPOINT_URL_S3") ||
    env("AWS_ENDPOINT_URL") || `https://s3.${region}.amazonaws.com`;
  let endpoint: URL;
  try {
    endpoint = new URL(endpointText);
  } catch {
    return fail(`the endpoint ${JSON.stringify(endpointText)} is not a URL`);
  }
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") {
    fail(`the endpoint ${endpoint.href} must be an http(s) URL`);
  }
  const accessKeyId = env("AWS_ACCESS_KEY_ID");
  const secretAccessKey = env("AWS_SECRET_ACCESS_KEY");
  if (!accessKeyId || !secretAccessKey) {
    fail("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for object storage");
  }
  const sessionToken = env("AWS_SESSION_TOKEN");
  return {
    endpoint,
    region,
    bucket,
    key,
    credentials: {
      accessKeyId: accessKeyId!,
      secretAccessKey: secretAccessKey!,
      ...(sessionToken ? { sessionToken } : {}),
    },
  };
}
