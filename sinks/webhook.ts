/**
 * Deliver a stream as the body of an HTTP request, with retries, and with a
 * guard against server-side request forgery (SSRF) that is on by default:
 * only `http:` and `https:` URLs, and only hosts whose every address is
 * public. Loopback, private, link-local (cloud metadata), CGNAT, multicast
 * and other special addresses are refused, as are redirects to them.
 *
 * Needs `--allow-net` for the receiver's host (and for DNS resolution).
 *
 * @example
 * ```ts
 * import { webhookSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * let received = "";
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
 *   received = await request.text();
 *   return new Response(null, { status: 204 });
 * });
 * const sink = webhookSink(`http://127.0.0.1:${server.addr.port}/hook`, {
 *   allowPrivateNetwork: true, // a local receiver; refused by default
 * });
 * const receipt = await sink.deliver(ReadableStream.from([new TextEncoder().encode("event")]), { name: "e1" });
 * assert.equal(received, "event");
 * assert.equal(receipt.detail?.status, 204);
 * ```
 *
 * @module
 */

import {
  CancelledError,
  HttpError,
  IncompleteStreamError,
  SluiceError,
} from "../core/errors.ts";
import { isRetryable } from "../retry/classify.ts";
import { retry, RetryError, type RetryOptions } from "../retry/retry.ts";
import { type SpillStore, spillStream } from "../spill/mod.ts";
import { blockedReason, parseIpLiteral } from "./_address.ts";
import { checkSize, receiptOf, sinkOf, Tally } from "./_tally.ts";
import type { Sink } from "./types.ts";

const DEFAULT_MAX_BUFFER_BYTES = 8 * 1024 * 1024;

/** What a {@linkcode BlockedDestinationError} knows. */
export interface BlockedDestinationErrorInit {
  /** The URL that was refused. */
  url: string;
  /** Why: "it is not http or https", "127.0.0.1 is loopback (127.0.0.0/8)", … */
  reason: string;
  /** The refused address, when the refusal is about one. */
  address?: string;
}

/**
 * A webhook URL (or a redirect's target) was refused by the SSRF guard: not
 * `http:`/`https:`, or its host is or resolves to an address that is not
 * public. Permanent: nothing is sent.
 *
 * @example
 * ```ts
 * import { BlockedDestinationError } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const error = new BlockedDestinationError({
 *   url: "http://169.254.169.254/latest",
 *   address: "169.254.169.254",
 *   reason: "169.254.169.254 is link-local (169.254.0.0/16)",
 * });
 * assert.equal(error.retryable, false);
 * assert.equal(error.message, "Cannot send to http://169.254.169.254/latest: 169.254.169.254 is link-local (169.254.0.0/16)");
 * ```
 */
export class BlockedDestinationError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The URL that was refused. */
  readonly url: string;
  /** Why it was refused. */
  readonly reason: string;
  /** The refused address, when there is one. */
  readonly address?: string;

  /**
   * Makes the error.
   *
   * @param init The URL, the reason and the address.
   */
  constructor(init: BlockedDestinationErrorInit) {
    super(`Cannot send to ${init.url}: ${init.reason}`);
    this.url = init.url;
    this.reason = init.reason;
    if (init.address !== undefined) this.address = init.address;
  }
}

/** Options for {@linkcode webhookSink}. */
export interface WebhookSinkOptions {
  /** The request method (default `"POST"`). */
  method?: string;
  /** Headers sent with every request; `meta.headers` add to them. */
  headers?: Record<string, string>;
  /** The `Content-Type` when the delivery's `meta.contentType` gives none (default `application/octet-stream`). */
  contentType?: string;
  /** Send `X-Sluice-Name`, `X-Sluice-Size` and `X-Sluice-Sha256` when known (default `true`). */
  metadataHeaders?: boolean;
  /** Each attempt (request, redirects and response headers) must finish within this (default 30 000 ms). */
  timeoutMs?: number;
  /**
   * The retry policy (default: 3 attempts, backoff from `retry/`). Responses
   * 408, 425, 429 and 5xx, network faults and timeouts are retried, honouring
   * `Retry-After`; other 4xx fail at once. `{ maxAttempts: 1 }` turns retries off.
   */
  retry?: Omit<RetryOptions, "signal">;
  /**
   * Spill the body here first, then send it from disk on every attempt and
   * redirect. The size and SHA-256 are then known before sending (and sent
   * as headers), and a body of any size can be retried.
   */
  spill?: SpillStore;
  /**
   * Without `spill`, the body streams straight from the source and is also
   * kept in memory up to this many bytes so that it can be sent again
   * (default 8 MiB). A larger body is sent once: if that attempt fails, the
   * delivery fails, as there is nothing to send again.
   */
  maxBufferBytes?: number;
  /** Redirects (307 and 308 only) followed at most (default 5). */
  maxRedirects?: number;
  /** Turn the SSRF guard's address check off (default `false`); the scheme check stays. */
  allowPrivateNetwork?: boolean;
  /** Host names (or IP literals) exempt from the address check, e.g. an internal receiver. */
  allowedHosts?: readonly string[];
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
}

function normalizeHost(host: string): string {
  const bare = host.startsWith("[") ? host.slice(1, -1) : host;
  return (parseIpLiteral(bare) ?? bare.replace(/\.$/, "")).toLowerCase();
}

async function resolveAll(host: string): Promise<string[]> {
  const results = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  const addresses = results.flatMap((r) =>
    r.status === "fulfilled" ? r.value : []
  );
  if (addresses.length === 0) {
    const failure = results.find((r) => r.status === "rejected");
    throw failure?.reason ??
      new Deno.errors.NotFound(`Cannot resolve ${host}: no addresses`);
  }
  return addresses;
}

/** The SSRF guard: throws unless `url` may be sent to. */
async function checkDestination(
  url: URL,
  allowPrivateNetwork: boolean,
  allowedHosts: ReadonlySet<string>,
): Promise<void> {
  const blocked = (reason: string, address?: string) =>
    new BlockedDestinationError({
      url: url.href,
      reason,
      ...(address === undefined ? {} : { address }),
    });
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw blocked(`${url.protocol} is not http: or https:`);
  }
  if (url.username || url.password) {
    throw blocked("credentials in the URL are refused; use headers");
  }
  const host = normalizeHost(url.hostname);
  if (allowPrivateNetwork || allowedHosts.has(host)) return;
  const literal = parseIpLiteral(host);
  const addresses = literal ? [literal] : await resolveAll(host);
  for (const address of addresses) {
    const reason = blockedReason(address);
    if (reason !== undefined) {
      throw blocked(
        literal
          ? `${address} is ${reason}`
          : `${host} resolves to ${address}, which is ${reason}`,
        address,
      );
    }
  }
}

/** A header value for a name that may hold anything: percent-encoded unless plain visible ASCII. */
function headerText(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/**
 * The body of a delivery that was not spilled: read from the source once,
 * counted and hashed on the way, and kept in memory up to a bound so that a
 * retry or redirect can send it again.
 */
class MemoryReplay {
  readonly tally: Tally = new Tally();
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #bound: number;
  #kept: Uint8Array[] | undefined = [];
  #done = false;
  #sent = false;

  constructor(source: ReadableStream<Uint8Array>, bound: number) {
    this.#reader = source.getReader();
    this.#bound = bound;
  }

  /** Whether the whole source has been read. */
  get done(): boolean {
    return this.#done;
  }

  /** Whether everything read so far is kept, so the body may be sent again. */
  get kept(): boolean {
    return this.#kept !== undefined;
  }

  async #read(): Promise<Uint8Array | undefined> {
    const { done, value } = await this.#reader.read();
    if (done) {
      this.#done = true;
      return undefined;
    }
    this.tally.update(value);
    if (this.#kept && this.tally.bytes > this.#bound) this.#kept = undefined;
    this.#kept?.push(value);
    return value;
  }

  /**
   * A stream of the body for the next request: the first one reads from the
   * source; later ones read the rest of the source into memory and replay it.
   * Undefined when the body was too large to keep.
   */
  async body(): Promise<ReadableStream<Uint8Array> | undefined> {
    if (!this.#sent) {
      this.#sent = true;
      return new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          const chunk = await this.#read();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
        // A failed request cancels its body; the source stays, for a retry.
      }, { highWaterMark: 0 });
    }
    while (!this.#done && this.#kept) await this.#read();
    return this.#kept && ReadableStream.from(this.#kept);
  }

  cancel(reason: unknown): Promise<void> {
    return this.#reader.cancel(reason).catch(() => {});
  }
}

/**
 * A sink that sends each delivery as the body of one HTTP request to `url`,
 * streamed (the request body is a `ReadableStream`).
 *
 * Each request carries `Content-Type` (from `meta.contentType`, else the
 * option), and with `metadataHeaders` `X-Sluice-Name` (`meta.name`,
 * percent-encoded unless plain ASCII), `X-Sluice-Size` when the size is
 * known first (`meta.size`, or a spilled body) and `X-Sluice-Sha256` only
 * when the body was spilled, since only then is the digest known before
 * sending. A 2xx response completes the delivery; its status is the
 * receipt's `detail.status`. 307 and 308 redirects are followed with the
 * same method and body; 301, 302 and 303 would drop the body and fail.
 *
 * The SSRF guard runs before every request, on the URL and on every
 * redirect target: the host is resolved (`Deno.resolveDns`, A and AAAA) and
 * every address must be public. Its limit: `fetch` resolves the name again
 * when it connects, so a DNS server that answers differently the second time
 * (DNS rebinding) can slip past it. Deno closes that gap when run with
 * `--deny-net` and address ranges (`--deny-net=127.0.0.0/8,10.0.0.0/8,…`),
 * which it checks against every resolved address at connect time;
 * `--allow-net=<host>` alone does not, as it is matched against the name.
 *
 * @param url The receiver.
 * @param options Method, headers, retries, spilling and the SSRF guard.
 * @returns The sink.
 * @throws {TypeError} When `url` is not a valid URL.
 *
 * @example Refused before anything is sent
 * ```ts
 * import { BlockedDestinationError, webhookSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const sink = webhookSink("http://169.254.169.254/latest/meta-data");
 * await assert.rejects(
 *   sink.deliver(ReadableStream.from([new Uint8Array(1)])),
 *   BlockedDestinationError,
 * );
 * ```
 */
export function webhookSink(
  url: string | URL,
  options: WebhookSinkOptions = {},
): Sink {
  const target = new URL(url);
  const method = options.method ?? "POST";
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxRedirects = options.maxRedirects ?? 5;
  const maxBufferBytes = options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES;
  for (
    const [name, value] of Object.entries({
      timeoutMs,
      maxRedirects,
      maxBufferBytes,
    })
  ) {
    if (!(value >= 0)) {
      throw new RangeError(
        `Cannot make a webhook sink: ${name} must be >= 0, got ${value}`,
      );
    }
  }
  const allowedHosts = new Set((options.allowedHosts ?? []).map(normalizeHost));
  const allowPrivateNetwork = options.allowPrivateNetwork ?? false;
  const doFetch = options.fetch ?? fetch;

  return sinkOf(async (source, meta, signal) => {
    let memory: MemoryReplay | undefined;
    const facts = new Tally(); // the start time, and the bytes once known
    try {
      await checkDestination(target, allowPrivateNetwork, allowedHosts);
      await using spilled = options.spill
        ? await spillStream(source, options.spill, signal ? { signal } : {})
        : undefined;
      if (spilled) checkSize(spilled.size, meta, target.href);
      memory = spilled ? undefined : new MemoryReplay(source, maxBufferBytes);
      const bodies = spilled
        ? () => Promise.resolve(spilled.replay(signal ? { signal } : {}))
        : () => memory!.body();

      const headers = new Headers(options.headers);
      for (const [name, value] of Object.entries(meta?.headers ?? {})) {
        headers.set(name, value);
      }
      headers.set(
        "content-type",
        meta?.contentType ?? options.contentType ??
          "application/octet-stream",
      );
      if (options.metadataHeaders ?? true) {
        if (meta?.name !== undefined) {
          headers.set("x-sluice-name", headerText(meta.name));
        }
        const size = spilled?.size ?? meta?.size;
        if (size !== undefined) headers.set("x-sluice-size", String(size));
        if (spilled) headers.set("x-sluice-sha256", spilled.sha256);
      }

      let attempts = 0;
      const send = async (attemptSignal: AbortSignal) => {
        attempts++;
        let at = target;
        for (let hop = 0;; hop++) {
          if (hop > 0) {
            await checkDestination(at, allowPrivateNetwork, allowedHosts);
          }
          const body = await bodies();
          if (!body) throw new BodyNotKeptError(maxBufferBytes, at.href);
          const response = await doFetch(at, {
            method,
            headers,
            body,
            redirect: "manual",
            signal: attemptSignal,
          });
          const location = response.headers.get("location");
          if (
            [301, 302, 303, 307, 308].includes(response.status) && location
          ) {
            await response.body?.cancel();
            if (response.status < 307) {
              throw new HttpError(
                { status: response.status, url: at.href, method },
                `Cannot ${method} ${at.href}: a ${response.status} redirect would drop the body; only 307 and 308 are followed`,
              );
            }
            if (hop >= maxRedirects) {
              throw new HttpError(
                { status: response.status, url: at.href, method },
                `Cannot ${method} ${target.href}: more than ${maxRedirects} redirects`,
              );
            }
            at = new URL(location, at);
            continue;
          }
          if (!response.ok) {
            await response.body?.cancel();
            throw HttpError.fromResponse(response, { url: at.href, method });
          }
          await response.body?.cancel();
          if (memory && !memory.done) {
            throw new IncompleteStreamError(
              {
                expected: meta?.size ?? memory.tally.bytes + 1,
                received: memory.tally.bytes,
              },
              `Cannot ${method} ${at.href}: the receiver answered ${response.status} before reading the whole body`,
            );
          }
          return { status: response.status, url: at.href };
        }
      };

      let sent: { status: number; url: string };
      try {
        const shouldRetry = options.retry?.shouldRetry ?? isRetryable;
        sent = await retry(({ signal }) => send(signal), {
          maxAttempts: 3,
          ...options.retry,
          // A body that was not kept cannot be sent again.
          shouldRetry: (error, context) =>
            (memory?.kept ?? true) && shouldRetry(error, context),
          attemptTimeoutMs: options.retry?.attemptTimeoutMs ?? timeoutMs,
          ...(signal ? { signal } : {}),
        });
      } catch (error) {
        // When attempts ran out, the last attempt's error says more.
        throw error instanceof RetryError && error.reason === "attempts"
          ? error.cause
          : error;
      }
      let sha256: string;
      if (spilled) {
        facts.bytes = spilled.size;
        sha256 = spilled.sha256;
      } else {
        facts.bytes = memory!.tally.bytes;
        sha256 = memory!.tally.digest();
        checkSize(facts.bytes, meta, target.href);
      }
      return receiptOf("webhook", sent.url, facts, sha256, {
        attempts,
        detail: { status: sent.status },
      });
    } catch (error) {
      const reason = signal?.aborted
        ? CancelledError.fromSignal(signal)
        : error;
      await memory?.cancel(reason); // it holds the source's reader
      throw reason;
    }
  });
}

/** The body was too large to keep in memory, so it cannot be sent again. */
class BodyNotKeptError extends SluiceError {
  readonly retryable: boolean = false;
  constructor(bound: number, url: string) {
    super(
      `Cannot send the body to ${url} again: it is larger than maxBufferBytes (${bound}) and no spill store was given`,
    );
  }
}
