/**
 * The error taxonomy that every sluice module throws.
 *
 * Every toolkit error extends {@linkcode SluiceError} and says whether trying
 * again may help through `retryable` (and, when the peer said so,
 * `retryAfterMs`). The `retry/` module reads those two properties by duck
 * typing, so `retry()` does the right thing with these errors out of the box.
 * Bad arguments are reported with the built-in `TypeError` and `RangeError`.
 *
 * @example Classify a failed response
 * ```ts
 * import { HttpError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const response = new Response("busy", {
 *   status: 503,
 *   headers: { "retry-after": "2" },
 * });
 * const error = HttpError.fromResponse(response, { url: "http://127.0.0.1/a" });
 * assert.equal(error.retryable, true);
 * assert.equal(error.retryAfterMs, 2000);
 * ```
 *
 * @module
 */

import { parseRetryAfter } from "../retry/retry_after.ts";

/** Options every {@linkcode SluiceError} constructor accepts. */
export interface SluiceErrorOptions {
  /** The error that led to this one. */
  cause?: unknown;
  /** How long the other side asked us to wait before trying again. */
  retryAfterMs?: number;
}

/**
 * The base class of every error the toolkit throws on purpose.
 *
 * `retryable` tells a retry policy whether the same operation may succeed if
 * tried again; `retryAfterMs`, when set, is how long the other side asked us
 * to wait first. Catch `SluiceError` to tell the toolkit's own failures from
 * programming errors.
 *
 * @example Tell toolkit failures from bugs
 * ```ts
 * import { LimitError, SluiceError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error: unknown = new LimitError({ what: "entries", limit: 10, actual: 11 });
 * assert.ok(error instanceof SluiceError);
 * assert.equal(error.retryable, false);
 * ```
 */
export abstract class SluiceError extends Error {
  /** Whether trying the same operation again may succeed. */
  abstract readonly retryable: boolean;
  /** How long the other side asked us to wait before trying again, if it did. */
  readonly retryAfterMs?: number;

  /**
   * Makes a toolkit error.
   *
   * @param message What could not be done and why, as "Cannot X: Y".
   * @param options The `cause` and `retryAfterMs`, when known.
   */
  constructor(message: string, options?: SluiceErrorOptions) {
    super(
      message,
      options && "cause" in options ? { cause: options.cause } : undefined,
    );
    this.name = new.target.name;
    if (options?.retryAfterMs !== undefined) {
      this.retryAfterMs = options.retryAfterMs;
    }
  }
}

/**
 * The caller cancelled, or the consumer of a stream went away.
 *
 * Thrown when an `AbortSignal` given to a toolkit function aborts or a
 * stream's reader cancels it. It is never retryable: nobody is waiting for
 * the result any more.
 *
 * @example Cancel from a signal
 * ```ts
 * import { CancelledError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * controller.abort();
 * const error = CancelledError.fromSignal(controller.signal);
 * assert.equal(error.retryable, false);
 * assert.equal(error.cause, controller.signal.reason);
 * ```
 */
export class CancelledError extends SluiceError {
  /** Always `false`: a cancelled operation must not be tried again. */
  readonly retryable: boolean = false;

  /**
   * Makes a cancellation error.
   *
   * @param message Defaults to "Cannot continue: the operation was cancelled".
   * @param options The `cause`, usually the signal's reason.
   */
  constructor(
    message = "Cannot continue: the operation was cancelled",
    options?: SluiceErrorOptions,
  ) {
    super(message, options);
  }

  /**
   * Returns the signal's reason when it already is a `CancelledError`, and
   * otherwise a new `CancelledError` whose `cause` is the reason.
   *
   * @param signal An aborted signal.
   * @returns The cancellation to throw.
   */
  static fromSignal(signal: AbortSignal): CancelledError {
    const reason: unknown = signal.reason;
    if (reason instanceof CancelledError) return reason;
    return new CancelledError(undefined, { cause: reason });
  }
}

/** What an {@linkcode HttpError} knows about the failed exchange. */
export interface HttpErrorInit extends SluiceErrorOptions {
  /** The HTTP status code. */
  status: number;
  /** The URL that was requested. */
  url: string;
  /** The status text, when the server sent one. */
  statusText?: string;
  /** The request method; defaults to `GET`. */
  method?: string;
}

/**
 * A server answered with a status that means failure.
 *
 * `retryable` is `true` for 408, 425, 429 and every 5xx status, where the
 * same request may succeed later; any other status is permanent.
 * `retryAfterMs` carries the server's `Retry-After`, which `retry()` waits
 * for instead of its own backoff.
 *
 * @example Permanent and transient statuses
 * ```ts
 * import { HttpError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const missing = new HttpError({ status: 404, url: "http://127.0.0.1/x" });
 * const limited = new HttpError({ status: 429, url: "http://127.0.0.1/x", retryAfterMs: 1000 });
 * assert.equal(missing.retryable, false);
 * assert.equal(limited.retryable, true);
 * assert.equal(missing.message, "Cannot GET http://127.0.0.1/x: server answered 404");
 * ```
 */
export class HttpError extends SluiceError {
  /** Whether the status is one where a later try may succeed. */
  readonly retryable: boolean;
  /** The HTTP status code. */
  readonly status: number;
  /** The status text, or `""`. */
  readonly statusText: string;
  /** The URL that was requested. */
  readonly url: string;
  /** The request method. */
  readonly method: string;

  /**
   * Makes an HTTP error.
   *
   * @param init The status, URL and what else is known.
   * @param message Defaults to "Cannot GET <url>: server answered <status>".
   * @throws {RangeError} If `status` is not an integer from 100 to 599.
   */
  constructor(init: HttpErrorInit, message?: string) {
    if (
      !Number.isInteger(init.status) || init.status < 100 || init.status > 599
    ) {
      throw new RangeError(
        `Cannot make HttpError: status must be an integer from 100 to 599, got ${init.status}`,
      );
    }
    const method = init.method ?? "GET";
    const statusText = init.statusText ?? "";
    super(
      message ??
        `Cannot ${method} ${init.url}: server answered ${init.status}${
          statusText ? ` ${statusText}` : ""
        }`,
      init,
    );
    this.status = init.status;
    this.statusText = statusText;
    this.url = init.url;
    this.method = method;
    this.retryable = isRetryableStatus(init.status);
  }

  /**
   * Makes an `HttpError` from a response, reading its `Retry-After` header
   * and cancelling its body so the connection is freed.
   *
   * @param response The failed response.
   * @param options The request's `url` (when the response has none) and `method`.
   * @returns The error to throw.
   */
  static fromResponse(
    response: Response,
    options: { url?: string; method?: string } = {},
  ): HttpError {
    response.body?.cancel().catch(() => {});
    const init: HttpErrorInit = {
      status: response.status,
      statusText: response.statusText,
      url: response.url || options.url || "",
    };
    if (options.method !== undefined) init.method = options.method;
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
    if (retryAfterMs !== undefined) init.retryAfterMs = retryAfterMs;
    return new HttpError(init);
  }
}

/**
 * Whether an HTTP status means a later try of the same request may succeed:
 * 408, 425, 429 and every 5xx.
 *
 * @param status An HTTP status code.
 * @returns `true` for transient statuses.
 *
 * @example
 * ```ts
 * import { isRetryableStatus } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isRetryableStatus(503), true);
 * assert.equal(isRetryableStatus(404), false);
 * ```
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 ||
    (status >= 500 && status <= 599);
}

/** What an {@linkcode IncompleteStreamError} knows. */
export interface IncompleteStreamErrorInit extends SluiceErrorOptions {
  /** How many bytes were promised. */
  expected: number;
  /** How many bytes arrived. */
  received: number;
  /** What was being read, for the message (a URL, a path, an entry name). */
  source?: string;
}

/**
 * A stream ended before it delivered the bytes it promised.
 *
 * Thrown when a body, file or entry is shorter than its declared length. It
 * is retryable: the connection or the writer most likely stopped early, and
 * a resumable reader can carry on from `received`.
 *
 * @example
 * ```ts
 * import { IncompleteStreamError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new IncompleteStreamError({ expected: 100, received: 60 });
 * assert.equal(error.retryable, true);
 * assert.equal(error.message, "Cannot finish reading: stream ended after 60 of 100 bytes");
 * ```
 */
export class IncompleteStreamError extends SluiceError {
  /** Always `true`: a shorter stream is usually a transient fault. */
  readonly retryable: boolean = true;
  /** How many bytes were promised. */
  readonly expected: number;
  /** How many bytes arrived. */
  readonly received: number;

  /**
   * Makes an incomplete-stream error.
   *
   * @param init The promised and received byte counts.
   * @param message Defaults to a message with both counts.
   */
  constructor(init: IncompleteStreamErrorInit, message?: string) {
    const what = init.source ? ` ${init.source}` : "";
    super(
      message ??
        `Cannot finish reading${what}: stream ended after ${init.received} of ${init.expected} bytes`,
      init,
    );
    this.expected = init.expected;
    this.received = init.received;
  }
}

/** What an {@linkcode IntegrityError} knows. */
export interface IntegrityErrorInit extends SluiceErrorOptions {
  /** Which check failed: `"sha256"`, `"tag"`, `"crc32"`, `"size"`, … */
  check: string;
  /** What was checked (a URL, a path, a chunk address), for the message. */
  subject?: string;
  /** The expected value, as text. */
  expected?: string;
  /** The value found, as text. */
  actual?: string;
  /**
   * Whether another try may succeed. Defaults to `false`: the same source
   * will most likely serve the same bad bytes. Set it to `true` where the
   * next try reads from another source (another peer or mirror).
   */
  retryable?: boolean;
}

/**
 * Bytes failed a hash, authentication tag, CRC or size check.
 *
 * No bytes that failed the check are handed on. It is not retryable by
 * default, because the same source tends to serve the same bytes; code that
 * fails over to another source sets `retryable: true`.
 *
 * @example
 * ```ts
 * import { IntegrityError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new IntegrityError({
 *   check: "sha256",
 *   subject: "archive.tar",
 *   expected: "ab12",
 *   actual: "cd34",
 * });
 * assert.equal(error.retryable, false);
 * assert.equal(error.message, "Cannot verify archive.tar: sha256 mismatch (expected ab12, got cd34)");
 * ```
 */
export class IntegrityError extends SluiceError {
  /** Whether another try (from another source) may succeed. */
  readonly retryable: boolean;
  /** Which check failed. */
  readonly check: string;
  /** The expected value, when known. */
  readonly expected?: string;
  /** The value found, when known. */
  readonly actual?: string;

  /**
   * Makes an integrity error.
   *
   * @param init The failed check and the values compared.
   * @param message Defaults to a message naming the check and both values.
   */
  constructor(init: IntegrityErrorInit, message?: string) {
    const values = init.expected !== undefined && init.actual !== undefined
      ? ` (expected ${init.expected}, got ${init.actual})`
      : "";
    super(
      message ??
        `Cannot verify ${
          init.subject ?? "data"
        }: ${init.check} mismatch${values}`,
      init,
    );
    this.check = init.check;
    this.retryable = init.retryable ?? false;
    if (init.expected !== undefined) this.expected = init.expected;
    if (init.actual !== undefined) this.actual = init.actual;
  }
}

/** What a {@linkcode LimitError} knows. */
export interface LimitErrorInit extends SluiceErrorOptions {
  /** What was counted: `"bytes"`, `"entries"`, `"path depth"`, … */
  what: string;
  /** The configured limit. */
  limit: number;
  /** The amount seen or declared, when known. */
  actual?: number;
}

/**
 * A configured budget (size, count, depth) was exceeded.
 *
 * Thrown before the budget is passed, so nothing beyond it is written. It is
 * permanent: the same input will exceed the same budget again.
 *
 * @example
 * ```ts
 * import { LimitError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new LimitError({ what: "bytes", limit: 1024, actual: 4096 });
 * assert.equal(error.message, "Cannot continue: 4096 bytes exceeds the limit of 1024");
 * ```
 */
export class LimitError extends SluiceError {
  /** Always `false`: the same input exceeds the same budget again. */
  readonly retryable: boolean = false;
  /** What was counted. */
  readonly what: string;
  /** The configured limit. */
  readonly limit: number;
  /** The amount seen or declared, when known. */
  readonly actual?: number;

  /**
   * Makes a limit error.
   *
   * @param init What was counted, the limit and the amount seen.
   * @param message Defaults to a message with the amount and the limit.
   */
  constructor(init: LimitErrorInit, message?: string) {
    super(
      message ??
        (init.actual === undefined
          ? `Cannot continue: ${init.what} exceed the limit of ${init.limit}`
          : `Cannot continue: ${init.actual} ${init.what} exceeds the limit of ${init.limit}`),
      init,
    );
    this.what = init.what;
    this.limit = init.limit;
    if (init.actual !== undefined) this.actual = init.actual;
  }
}

/** What an {@linkcode UnsafeEntryError} knows. */
export interface UnsafeEntryErrorInit extends SluiceErrorOptions {
  /** The entry's path as the input gave it. */
  path: string;
  /** Why it is unsafe: "absolute path", "escapes the target through ..", … */
  reason: string;
}

/**
 * An entry would write outside its target: an absolute path, a `..` that
 * climbs out, a link that points out, a device file.
 *
 * It is permanent, and nothing of the entry is written.
 *
 * @example
 * ```ts
 * import { UnsafeEntryError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new UnsafeEntryError({ path: "../etc/passwd", reason: "it climbs out of the target" });
 * assert.equal(error.message, 'Cannot extract "../etc/passwd": it climbs out of the target');
 * ```
 */
export class UnsafeEntryError extends SluiceError {
  /** Always `false`: the same input is unsafe again. */
  readonly retryable: boolean = false;
  /** The entry's path as the input gave it. */
  readonly path: string;
  /** Why it is unsafe. */
  readonly reason: string;

  /**
   * Makes an unsafe-entry error.
   *
   * @param init The entry's path and why it is unsafe.
   * @param message Defaults to `Cannot extract "<path>": <reason>`.
   */
  constructor(init: UnsafeEntryErrorInit, message?: string) {
    super(
      message ?? `Cannot extract ${JSON.stringify(init.path)}: ${init.reason}`,
      init,
    );
    this.path = init.path;
    this.reason = init.reason;
  }
}

/**
 * A file is locked by another process (or another handle in this one): a
 * second download into the same `.part`, a spill directory in use.
 *
 * Not retryable by default: the holder may run for hours; wait for it or
 * pick another path.
 *
 * @example
 * ```ts
 * import { LockedError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new LockedError({ path: "/tmp/file.part" });
 * assert.equal(error.message, "Cannot lock /tmp/file.part: another process holds it");
 * ```
 */
export class LockedError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The locked file. */
  readonly path: string;

  /**
   * Makes the error.
   *
   * @param init The locked file, and the `cause` if any.
   */
  constructor(init: { path: string } & SluiceErrorOptions) {
    super(`Cannot lock ${init.path}: another process holds it`, init);
    this.path = init.path;
  }
}

/**
 * The path to write already holds something, and replacing it was not
 * asked for: a file sink without `overwrite`, an install without `replace`.
 *
 * Not retryable: the path stays taken until someone removes it.
 *
 * @example
 * ```ts
 * import { TargetExistsError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new TargetExistsError({ path: "/srv/out.bin" });
 * assert.equal(error.message, "Cannot write /srv/out.bin: it already exists");
 * assert.equal(error.retryable, false);
 * ```
 */
export class TargetExistsError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The path that is taken. */
  readonly path: string;

  /**
   * Makes the error.
   *
   * @param init The taken path, and the `cause` if any.
   */
  constructor(init: { path: string } & SluiceErrorOptions) {
    super(`Cannot write ${init.path}: it already exists`, init);
    this.path = init.path;
  }
}

/** What a {@linkcode FormatError} knows. */
export interface FormatErrorInit extends SluiceErrorOptions {
  /** The format being read: `"tar"`, `"zip"`, `"gzip"`, `"frames"`, … */
  format: string;
  /** What is wrong, for the message: "bad header checksum", … */
  reason: string;
  /** The byte offset in the input where the problem was found, when known. */
  offset?: number;
}

/**
 * The input is not well-formed in the format being read: a bad tar header
 * checksum, garbage where the end blocks belong, a zip central directory
 * that does not describe what was streamed, a corrupt frame.
 *
 * Not retryable: the same bytes are malformed again. (Input that simply
 * stops early is an {@linkcode IncompleteStreamError} instead, since another
 * try may deliver all of it.)
 *
 * @example
 * ```ts
 * import { FormatError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new FormatError({ format: "tar", reason: "bad header checksum", offset: 512 });
 * assert.equal(error.message, "Cannot read tar at byte 512: bad header checksum");
 * assert.equal(error.retryable, false);
 * ```
 */
export class FormatError extends SluiceError {
  /** Always `false`: the same bytes are malformed again. */
  readonly retryable: boolean = false;
  /** The format being read. */
  readonly format: string;
  /** What is wrong. */
  readonly reason: string;
  /** The byte offset where the problem was found, when known. */
  readonly offset?: number;

  /**
   * Makes a format error.
   *
   * @param init The format, the reason and the offset.
   * @param message Defaults to `Cannot read <format> at byte <offset>: <reason>`.
   */
  constructor(init: FormatErrorInit, message?: string) {
    const where = init.offset === undefined ? "" : ` at byte ${init.offset}`;
    super(
      message ?? `Cannot read ${init.format}${where}: ${init.reason}`,
      init,
    );
    this.format = init.format;
    this.reason = init.reason;
    if (init.offset !== undefined) this.offset = init.offset;
  }
}

/**
 * The input uses a feature sluice deliberately does not handle: an encrypted
 * or split zip, a compression method other than stored and deflate, a sparse
 * file, a device or fifo entry.
 *
 * Not retryable. `feature` names what was found, so a caller can tell the
 * user which tool to use instead.
 *
 * @example
 * ```ts
 * import { UnsupportedError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new UnsupportedError({ format: "zip", feature: "encrypted entries", subject: "secret.txt" });
 * assert.equal(error.message, 'Cannot read zip: encrypted entries are not supported ("secret.txt")');
 * ```
 */
export class UnsupportedError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The format being read. */
  readonly format: string;
  /** The unsupported feature. */
  readonly feature: string;

  /**
   * Makes the error.
   *
   * @param init The format, the feature and the entry it was found in.
   */
  constructor(
    init:
      & { format: string; feature: string; subject?: string }
      & SluiceErrorOptions,
  ) {
    const subject = init.subject === undefined
      ? ""
      : ` (${JSON.stringify(init.subject)})`;
    super(
      `Cannot read ${init.format}: ${init.feature} are not supported${subject}`,
      init,
    );
    this.format = init.format;
    this.feature = init.feature;
  }
}

/** One item that failed inside a {@linkcode PartialFailureError}. */
export interface ItemFailure<T> {
  /** The item that failed. */
  item: T;
  /** Why it failed. */
  error: unknown;
}

/** What a {@linkcode PartialFailureError} knows. */
export interface PartialFailureErrorInit<TSucceeded, TFailed>
  extends SluiceErrorOptions {
  /** The items that succeeded. */
  succeeded: readonly TSucceeded[];
  /** The items that failed, each with its error. */
  failed: readonly ItemFailure<TFailed>[];
  /** What was being done, for the message: "store chunks", … */
  operation?: string;
}

/**
 * Some items of a batch succeeded and some failed; both lists are kept so no
 * progress is lost.
 *
 * `retryable` is `true` when every failure was itself retryable, so trying
 * the failed items again may complete the batch.
 *
 * @typeParam TSucceeded The type of the items that succeeded.
 * @typeParam TFailed The type of the items that failed.
 *
 * @example
 * ```ts
 * import { HttpError, PartialFailureError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const error = new PartialFailureError({
 *   operation: "store chunks",
 *   succeeded: ["a1", "b2"],
 *   failed: [{ item: "c3", error: new HttpError({ status: 503, url: "http://127.0.0.1/c3" }) }],
 * });
 * assert.equal(error.retryable, true);
 * assert.equal(error.message, "Cannot store chunks: 1 of 3 items failed");
 * ```
 */
export class PartialFailureError<TSucceeded, TFailed = TSucceeded>
  extends SluiceError {
  /** Whether every failure was retryable. */
  readonly retryable: boolean;
  /** The items that succeeded. */
  readonly succeeded: readonly TSucceeded[];
  /** The items that failed, each with its error. */
  readonly failed: readonly ItemFailure<TFailed>[];

  /**
   * Makes a partial-failure error.
   *
   * @param init Both lists, and the operation for the message.
   * @param message Defaults to "Cannot <operation>: N of M items failed".
   */
  constructor(
    init: PartialFailureErrorInit<TSucceeded, TFailed>,
    message?: string,
  ) {
    const total = init.succeeded.length + init.failed.length;
    const options: SluiceErrorOptions = {};
    if ("cause" in init) options.cause = init.cause;
    else if (init.failed.length > 0) options.cause = init.failed[0]?.error;
    super(
      message ??
        `Cannot ${
          init.operation ?? "complete the batch"
        }: ${init.failed.length} of ${total} items failed`,
      options,
    );
    this.succeeded = init.succeeded;
    this.failed = init.failed;
    this.retryable = init.failed.length > 0 &&
      init.failed.every((f) => isRetryableError(f.error));
  }
}

function isRetryableError(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { retryable?: unknown }).retryable === true;
}
