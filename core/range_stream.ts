/**
 * A byte stream over HTTP that survives dropped connections: when a
 * connection resets, stalls or ends early, {@linkcode rangeStream} asks for
 * the rest with a `Range` request, pinned to the first response's validator
 * with `If-Range`, checks every 206 strictly, and hands the consumer one
 * continuous stream. A server that changes the resource or ignores the range
 * after bytes were delivered gets a typed error, never spliced bytes.
 *
 * Needs `--allow-net` to the server.
 *
 * @example Stream a byte range
 * ```ts
 * import { rangeStream } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const [, a, b] = /bytes=(\d+)-(\d+)/.exec(req.headers.get("range") ?? "") ?? [];
 *   return new Response("0123456789".slice(Number(a), Number(b) + 1), {
 *     status: 206,
 *     headers: { "content-range": `bytes ${a}-${b}/10`, etag: '"v1"' },
 *   });
 * });
 * const url = `http://127.0.0.1:${server.addr.port}/digits`;
 * assert.equal(await new Response(rangeStream(url, { start: 2, end: 5 })).text(), "234");
 * ```
 *
 * @module
 */

import { retry, type RetryOptions } from "../retry/retry.ts";
import { cancelOnAbort } from "./_abort.ts";
import { unwrapRetryError } from "./_retry.ts";
import {
  CancelledError,
  HttpError,
  IncompleteStreamError,
  LimitError,
  SluiceError,
} from "./errors.ts";

/** What {@linkcode rangeStream} reports. */
export type RangeEvent =
  | {
    /** A response was accepted. */
    type: "response";
    /** Its status: 200 or 206. */
    status: number;
    /** The offset it starts at. */
    offset: number;
    /** The resource's total size, when known. */
    total: number | undefined;
    /** The validator resumes are pinned to, if the resource has a strong one. */
    validator: StrongValidator | undefined;
  }
  | {
    /** Bytes were handed to the consumer. */
    type: "progress";
    /** Bytes delivered so far. */
    delivered: number;
    /** Bytes the stream will deliver in all, when known. */
    expected: number | undefined;
  }
  | {
    /** The connection failed; the stream will ask again from `offset`. */
    type: "resume";
    /** The next byte to fetch. */
    offset: number;
    /** Why the last connection ended. */
    error: unknown;
  };

/** Options of {@linkcode rangeStream}. */
export interface RangeStreamOptions {
  /** The first byte to fetch. Defaults to 0. */
  start?: number;
  /** One past the last byte to fetch (like `subarray`). Defaults to the end of the resource. */
  end?: number;
  /** Aborting it stops the stream with a `CancelledError`. */
  signal?: AbortSignal;
  /** Extra request headers (`Range`, `If-Range` and `Accept-Encoding` are set by the stream). */
  headers?: HeadersInit;
  /**
   * The retry policy while no bytes arrive; any progress starts it afresh.
   * Defaults to 5 attempts with the `retry()` backoff.
   */
  retry?: Omit<RetryOptions, "signal">;
  /** A connection that delivers nothing for this long is dropped and resumed. Defaults to 30 000 ms. */
  stallTimeoutMs?: number;
  /** No byte at or past this offset is read, and a larger declared size fails at once. Defaults to 100 GiB. */
  maxBytes?: number;
  /** Called on responses, progress and resumes. */
  onProgress?: (event: RangeEvent) => void;
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
  /**
   * Pin the first request too: a validator saved by an earlier stream of the
   * same resource (sent as `If-Range`), so a resumed download notices a
   * change at once.
   */
  validator?: StrongValidator;
  /** The resource's total size as an earlier stream saw it; any other total is a change. */
  total?: number;
}

/**
 * The server ignored or misanswered a range request after bytes were
 * delivered (a 200 instead of a 206, a 206 at another offset or of another
 * length, a malformed `Content-Range`), or sent an encoded body (gzip, br)
 * although `Accept-Encoding: identity` was asked for. Not retryable within
 * the stream: delivered bytes cannot be taken back; a downloader can restart
 * from 0.
 *
 * @example
 * ```ts
 * import { RangeNotHonoredError } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * const error = new RangeNotHonoredError({ url: "http://127.0.0.1/f", offset: 10, reason: "the server answered 200" });
 * assert.equal(error.retryable, false);
 * ```
 */
export class RangeNotHonoredError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The resource. */
  readonly url: string;
  /** The offset that was asked for. */
  readonly offset: number;

  /**
   * Makes the error.
   *
   * @param init The URL, the offset asked for and what went wrong.
   */
  constructor(init: { url: string; offset: number; reason: string }) {
    super(
      `Cannot resume ${init.url} at byte ${init.offset}: ${init.reason}`,
    );
    this.url = init.url;
    this.offset = init.offset;
  }
}

/**
 * The resource changed between two requests of one stream (a new validator
 * or total size). Not retryable within the stream.
 *
 * @example
 * ```ts
 * import { ResourceChangedError } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * const error = new ResourceChangedError({ url: "http://127.0.0.1/f", what: "ETag", expected: '"a"', actual: '"b"' });
 * assert.match(error.message, /ETag changed/);
 * ```
 */
export class ResourceChangedError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The resource. */
  readonly url: string;
  /** What changed: `"ETag"`, `"Last-Modified"`, `"size"`, `"content"`. */
  readonly what: string;

  /**
   * Makes the error.
   *
   * @param init The URL, what changed, and both values when known.
   */
  constructor(
    init: {
      url: string;
      what: string;
      expected?: string | undefined;
      actual?: string | undefined;
    },
  ) {
    const values = init.expected !== undefined
      ? ` (was ${init.expected}, now ${init.actual ?? "absent"})`
      : "";
    super(`Cannot resume ${init.url}: its ${init.what} changed${values}`);
    this.url = init.url;
    this.what = init.what;
  }
}

/** The validator a resume is pinned to. */
export interface StrongValidator {
  /** Which header it came from. */
  header: "etag" | "last-modified";
  /** Its value, sent as `If-Range`. */
  value: string;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;
const DEFAULT_MAX_BYTES = 100 * 1024 ** 3;

/**
 * The validator of `response` that may go out in `If-Range`: a strong ETag,
 * or a Last-Modified at least 60 s older than the response's Date (RFC 9110
 * §8.8.2.2). A weak ETag never qualifies, and a response with one gets no
 * validator at all.
 *
 * @param response A response to a GET.
 * @returns The header and its value, or `undefined`.
 *
 * @example
 * ```ts
 * import { strongValidator } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(strongValidator(new Response("", { headers: { etag: '"v1"' } })), { header: "etag", value: '"v1"' });
 * assert.equal(strongValidator(new Response("", { headers: { etag: 'W/"v1"' } })), undefined);
 * ```
 */
export function strongValidator(
  response: Response,
): StrongValidator | undefined {
  const etag = response.headers.get("etag");
  if (etag !== null) {
    return etag.startsWith("W/") ? undefined : { header: "etag", value: etag };
  }
  const modified = response.headers.get("last-modified");
  const date = response.headers.get("date");
  if (modified === null || date === null) return undefined;
  const m = Date.parse(modified);
  const d = Date.parse(date);
  if (Number.isNaN(m) || Number.isNaN(d) || d - m < 60_000) return undefined;
  return { header: "last-modified", value: modified };
}

/**
 * Streams `url` from `start` to `end`, resuming with range requests when a
 * connection fails.
 *
 * Every request carries `Accept-Encoding: identity` (ranges count encoded
 * bytes). The first response pins the resource: its strong validator goes
 * out as `If-Range` on every resume, and its total size must not change.
 * Each 206 must start exactly where asked, end within the range and agree
 * with its `Content-Length`, and no body may carry a `Content-Encoding`. A
 * short but valid 206 is followed by more requests until the range is
 * complete. A 200 without a `Content-Length` ends at the connection's close,
 * which looks the same as a cut connection: when the server advertised
 * `Accept-Ranges: bytes`, one more range request confirms the end (a 416 for
 * that total) or carries on (a 206); otherwise the end is taken as given.
 *
 * Failures: 4xx other than 408, 425 and 429 are permanent `HttpError`s; 429
 * and 503 wait for `Retry-After`; network faults, stalls and truncated bodies
 * are resumed. After bytes were delivered, a changed resource rejects with
 * {@linkcode ResourceChangedError} and an ignored range with
 * {@linkcode RangeNotHonoredError}.
 *
 * @param url The resource.
 * @param options Range, retry policy, stall timeout, limits, signal, `fetch`.
 * @returns The bytes, as one stream.
 * @throws {RangeError} On a bad range or limit.
 *
 * @example Survive a connection that drops mid-body
 * ```ts
 * import { rangeStream } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * const body = new TextEncoder().encode("x".repeat(100_000));
 * const headers = { etag: '"v1"', "content-length": "100000" };
 * const requests: (string | null)[] = [];
 * // A server whose first answer breaks after 1000 bytes (fetch is injectable).
 * const flaky = (_url: string | URL | Request, init?: RequestInit) => {
 *   const range = new Headers(init?.headers).get("range");
 *   requests.push(range);
 *   if (range === null) {
 *     let sent = false;
 *     const broken = new ReadableStream({
 *       pull(c) {
 *         if (sent) return c.error(new TypeError("error reading a body from connection"));
 *         sent = true;
 *         c.enqueue(body.slice(0, 1000));
 *       },
 *     });
 *     return Promise.resolve(new Response(broken, { headers }));
 *   }
 *   const start = Number(/bytes=(\d+)-/.exec(range)![1]);
 *   return Promise.resolve(new Response(body.slice(start), {
 *     status: 206,
 *     headers: { etag: '"v1"', "content-range": `bytes ${start}-99999/100000` },
 *   }));
 * };
 * const out = await new Response(
 *   rangeStream("http://127.0.0.1/big", { fetch: flaky as typeof fetch }),
 * ).bytes();
 * assert.deepEqual(out, body);
 * assert.deepEqual(requests, [null, "bytes=1000-"]);
 * ```
 */
export function rangeStream(
  url: string | URL,
  options: RangeStreamOptions = {},
): ReadableStream<Uint8Array> {
  const href = new URL(url).href;
  const start = options.start ?? 0;
  const end = options.end;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RangeError(
      `Cannot fetch ${href}: start must be an integer >= 0, got ${start}`,
    );
  }
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw new RangeError(
      `Cannot fetch ${href}: end must be an integer >= start, got ${end}`,
    );
  }
  const stallMs = options.stallTimeoutMs ?? 30_000;
  const doFetch = options.fetch ?? fetch;
  const emit = options.onProgress ?? (() => {});
  const aborter = new AbortController();

  let pos = start; // the next byte to deliver
  let target = end; // one past the last byte, once known
  let total: number | undefined = options.total;
  let pin: StrongValidator | undefined = options.validator;
  let first = true;
  let body: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let bodyEnd = 0; // one past the last byte the current body should carry
  let attemptAbort: AbortController | undefined;
  let acceptsRanges = false; // the server said Accept-Ranges: bytes
  let probed = false; // the end of a body without a length was checked

  const fail = (reason: string) =>
    new RangeNotHonoredError({ url: href, offset: pos, reason });

  // The stall watchdog: one timer at a time, not one per read. While a
  // response or a piece is awaited, nothing for `stallMs` aborts the attempt
  // and fails the wait (an abort alone does not always wake a pending body
  // read), so that the stream resumes on a new connection.
  let stalled: ((error: unknown) => void) | undefined;
  let readSince = 0;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const watch = () => {
    watchdog = undefined;
    if (stalled === undefined) return;
    const idle = performance.now() - readSince;
    if (idle < stallMs) {
      watchdog = setTimeout(watch, stallMs - idle);
      return;
    }
    const error = new DOMException(
      `no bytes for ${stallMs} ms`,
      "TimeoutError",
    );
    attemptAbort?.abort(error);
    stalled(error);
  };
  aborter.signal.addEventListener("abort", () => clearTimeout(watchdog));

  // Waits for `promise` (a response or a piece) within the stall timeout.
  const watched = async <T>(promise: Promise<T>): Promise<T> => {
    readSince = performance.now();
    watchdog ??= setTimeout(watch, stallMs);
    try {
      return await new Promise<T>((resolve, reject) => {
        stalled = reject;
        promise.then(resolve, reject);
      });
    } finally {
      stalled = undefined;
    }
  };

  // One request; on success `body` is ready to read from `pos`.
  const open = async (signal: AbortSignal): Promise<void> => {
    const headers = new Headers(options.headers);
    headers.set("accept-encoding", "identity");
    // Open-ended unless the caller set an end, as curl -C and wget -c do.
    const ranged = pos > 0 || end !== undefined;
    if (ranged) {
      headers.set("range", `bytes=${pos}-${end === undefined ? "" : end - 1}`);
      if (pin !== undefined) headers.set("if-range", pin.value);
    }
    const response = await watched(doFetch(href, { headers, signal }));
    const accept = (
      status: number,
      bodyEndAt: number,
      totalNow: number | undefined,
    ) => {
      if (total !== undefined && totalNow !== undefined && totalNow !== total) {
        throw new ResourceChangedError({
          url: href,
          what: "size",
          expected: String(total),
          actual: String(totalNow),
        });
      }
      if (totalNow !== undefined && totalNow > maxBytes) {
        throw new LimitError({
          what: "bytes",
          limit: maxBytes,
          actual: totalNow,
        });
      }
      if (pin !== undefined) {
        const now = response.headers.get(pin.header);
        if (now !== pin.value) {
          throw new ResourceChangedError({
            url: href,
            what: pin.header === "etag" ? "ETag" : "Last-Modified",
            expected: pin.value,
            actual: now ?? undefined,
          });
        }
      }
      if (first) pin ??= strongValidator(response);
      total ??= totalNow;
      if (target === undefined && total !== undefined) target = total;
      first = false;
      bodyEnd = bodyEndAt;
      acceptsRanges ||=
        response.headers.get("accept-ranges")?.toLowerCase() === "bytes";
      body = response.body?.getReader();
      emit({ type: "response", status, offset: pos, total, validator: pin });
    };
    try {
      // Byte offsets count encoded bytes, and identity was asked for: an
      // encoded body is not the file, whatever the status.
      const encoding = response.headers.get("content-encoding");
      if (
        response.ok && encoding !== null &&
        encoding.toLowerCase() !== "identity"
      ) {
        throw fail(
          `the server sent a ${encoding}-encoded body although identity was asked for`,
        );
      }
      if (response.status === 206) {
        if (!ranged) {
          throw fail("the server answered 206 to a request without a range");
        }
        const match = CONTENT_RANGE.exec(
          response.headers.get("content-range") ?? "",
        );
        if (match === null) {
          throw fail(
            `malformed Content-Range ${
              JSON.stringify(response.headers.get("content-range"))
            }`,
          );
        }
        const [a, b] = [Number(match[1]), Number(match[2])];
        const totalNow = match[3] === "*" ? undefined : Number(match[3]);
        if (a !== pos) throw fail(`the 206 starts at byte ${a}`);
        if (
          b < a || (target !== undefined && b >= target) ||
          (totalNow !== undefined && b >= totalNow)
        ) {
          throw fail(`the 206 covers bytes ${a}-${b}, outside what was asked`);
        }
        const length = response.headers.get("content-length");
        if (length !== null && Number(length) !== b - a + 1) {
          throw fail(
            `the 206 declares ${length} bytes for a range of ${b - a + 1}`,
          );
        }
        accept(206, b + 1, totalNow);
        return;
      }
      if (response.status === 200) {
        if (pos > 0) {
          // With If-Range, a 200 under another validator means a new resource.
          const now = pin && response.headers.get(pin.header);
          throw pin !== undefined && now !== pin.value
            ? new ResourceChangedError({
              url: href,
              what: "content",
              expected: pin.value,
              actual: now ?? undefined,
            })
            : fail("the server ignored the range and sent the whole resource");
        }
        const length = response.headers.get("content-length");
        const totalNow = length !== null ? Number(length) : undefined;
        // A whole 200 is fine from byte 0; its Content-Range, if any, means nothing.
        accept(200, totalNow ?? Infinity, totalNow);
        return;
      }
      if (response.status === 416) {
        const match = /^bytes \*\/(\d+)$/.exec(
          response.headers.get("content-range") ?? "",
        );
        const totalNow = match ? Number(match[1]) : undefined;
        if (
          totalNow !== undefined && totalNow === pos && end === undefined &&
          (total === undefined || total === totalNow)
        ) {
          // Nothing is left to send: everything up to the total was delivered.
          total = totalNow;
          target = totalNow;
          body = undefined;
          bodyEnd = pos;
          await response.body?.cancel();
          return;
        }
      }
      throw HttpError.fromResponse(response, { url: href });
    } catch (error) {
      await response.body?.cancel().catch(() => {});
      throw error;
    }
  };

  // Reads the next piece of the current body within the stall timeout.
  const readPiece = async (): Promise<Uint8Array | undefined> => {
    const { done, value } = await watched(body!.read());
    return done ? undefined : value;
  };

  // One piece of the current body, or undefined when it ended where it should.
  const take = async (): Promise<Uint8Array | undefined> => {
    const piece = await readPiece();
    if (piece !== undefined) return piece;
    body = undefined;
    if (bodyEnd !== Infinity && pos < bodyEnd) {
      throw new IncompleteStreamError({
        expected: bodyEnd - start,
        received: pos - start,
        source: href,
      });
    }
    return undefined;
  };

  const dropBody = async () => {
    const reader = body;
    body = undefined;
    await reader?.cancel().catch(() => {});
  };

  // Opens a connection and reads its first piece, as one retried attempt: a
  // server that answers and then fails before any byte counts as a failure.
  const reopen = (): Promise<Uint8Array | undefined> =>
    retry(async ({ signal }) => {
      await dropBody();
      attemptAbort = new AbortController();
      // The body outlives the attempt, so it also listens to the stream's own abort.
      await open(
        AbortSignal.any([signal, attemptAbort.signal, aborter.signal]),
      );
      if (body === undefined) return undefined; // a 416 at the end: nothing left
      try {
        return await take();
      } catch (error) {
        await dropBody();
        throw error;
      }
    }, { ...options.retry, signal: aborter.signal });

  // The next piece to deliver, opening and resuming connections as needed.
  const next = async (): Promise<Uint8Array | undefined> => {
    while (true) {
      if (target !== undefined && pos >= target) return undefined;
      let piece: Uint8Array | undefined;
      if (body === undefined) {
        piece = await reopen();
      } else {
        try {
          piece = await take();
        } catch (error) {
          await dropBody();
          if (aborter.signal.aborted) throw aborter.signal.reason;
          if (error instanceof SluiceError && !error.retryable) throw error;
          // A fault after progress: resume from `pos` with a fresh retry budget.
          emit({ type: "resume", offset: pos, error });
          continue;
        }
      }
      if (piece === undefined) {
        // The body ended where it should: the range is done (checked at the
        // top), or a short 206 needs a follow-up.
        if (target !== undefined) continue;
        // A 200 without a length ends at the close, as a cut connection
        // does. Where the server takes ranges, one request at `pos` tells:
        // a 416 for this total ends the stream, a 206 carries on.
        if (!acceptsRanges || pos === 0 || probed) return undefined;
        probed = true;
        continue;
      }
      const room = (target ?? Infinity) - pos;
      const out = piece.length > room ? piece.subarray(0, room) : piece;
      if (pos + out.length > maxBytes) {
        throw new LimitError({
          what: "bytes",
          limit: maxBytes,
          actual: pos + out.length,
        });
      }
      pos += out.length;
      return out;
    }
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      cancelOnAbort(options.signal, aborter, controller);
    },
    async pull(controller) {
      try {
        const piece = await next();
        if (piece === undefined) {
          aborter.abort(
            new CancelledError("Cannot continue: the stream is complete"),
          );
          controller.close();
          return;
        }
        controller.enqueue(piece);
        emit({
          type: "progress",
          delivered: pos - start,
          expected: target === undefined ? undefined : target - start,
        });
      } catch (error) {
        const reason = aborter.signal.aborted
          ? aborter.signal.reason
          : unwrapRetryError(error);
        aborter.abort(reason);
        throw reason;
      }
    },
    async cancel(reason) {
      aborter.abort(
        reason instanceof CancelledError ? reason : new CancelledError(
          "Cannot continue: the consumer cancelled the stream",
          { cause: reason },
        ),
      );
      await body?.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
}
