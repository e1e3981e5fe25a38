// A file server for range-client tests that misbehaves on cue. Without a
// script it is a correct RFC 9110 byte-range server for one file; request N
// (0-based, counting every request) is answered by script[N] instead when
// that entry exists: cut connections, stalls, lying headers, chosen statuses.
//
// It speaks HTTP/1.1 by hand on raw TCP, because most faults break framing
// in ways Deno.serve refuses to produce. One request per connection, and
// every response says `connection: close`. The sockets are node:net ones:
// closing a Deno.Conn always sends a FIN first, and only node's
// socket.resetAndDestroy() aborts a connection with a bare TCP RST.

import { createHash } from "node:crypto";
import net from "node:net";

/** What request N gets instead of the correct answer. */
export type Fault =
  /**
   * Correct status and headers (Content-Length included), `afterBytes` of the
   * body, then a TCP RST 10 ms later (an RST discards what the kernel has not
   * sent yet; the pause lets a reading client receive every byte written).
   */
  | { kind: "reset"; afterBytes: number }
  /** Correct status and headers, `afterBytes` of the body, silence for `ms` (or until disposal), then a TCP RST. */
  | { kind: "stall"; afterBytes: number; ms: number }
  /** This status, these headers and this body (default empty); only Content-Length and `connection: close` are added. */
  | {
    kind: "status";
    status: number;
    headers?: Record<string, string>;
    body?: string;
  }
  /** 200 with the full body whatever Range said, and no Accept-Ranges header. */
  | { kind: "ignoreRange" }
  /** 206 whose Content-Range and body start at the requested start + `shift` (clamped to the file). */
  | { kind: "wrongOffset"; shift: number }
  /**
   * 206 with an honest Content-Range but Content-Length one more than the
   * range, and a body of that declared length: the range and then one byte
   * that differs from the file's next byte. Framing is intact; only comparing
   * Content-Length (or the bytes received) with Content-Range shows the lie.
   */
  | { kind: "wrongLength" }
  /** 206 with this Content-Range value (null: none), body the requested range. */
  | { kind: "contentRange"; value: string | null }
  /** An honest 206 for only the first `bytes` bytes (at least 1) of the requested range. */
  | { kind: "shortRange"; bytes: number }
  /** The correct 200 or 206, its body gzipped and sent with Content-Encoding: gzip. Content-Range keeps the unencoded span. */
  | { kind: "gzip" }
  /**
   * The correct status and headers, `afterBytes` of the body, then a clean
   * FIN. withLength: the full Content-Length is declared, so the body is
   * visibly short. Without: no Content-Length (the body ends at the close),
   * so a 200 looks complete and only a 206's Content-Range tells.
   */
  | { kind: "closeEarly"; afterBytes: number; withLength: boolean }
  /** 200 with the full body, plus a Content-Range for the requested span (bytes 0-last/total if none). */
  | { kind: "contentRangeOn200" }
  /** 416 with `Content-Range: bytes *\/<total>`, total defaulting to the real size. */
  | { kind: "status416"; total?: number }
  /** Anything else: the handler's Response is written as given (see writeResponse). */
  | {
    kind: "respond";
    handler: (request: Request) => Response | Promise<Response>;
  };

/** One request as the server received it. */
export interface RecordedRequest {
  method: string;
  range: string | null;
  ifRange: string | null;
  acceptEncoding: string | null;
  headers: Headers;
}

/** The validators sent with the content. */
export interface Validators {
  /** The entity-tag, quotes included; null sends none. Default: `"<first 16 hex digits of the SHA-256>"`. */
  etag?: string | null;
  /** Send the entity-tag as weak (`W/"…"`); a weak tag never matches If-Range. */
  weak?: boolean;
  /** null sends none. Default: a fixed date in 2015, one day later after each setContent. */
  lastModified?: string | null;
}

/** A running fault server; `await using` closes it and every connection. */
export interface FaultServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>/file` (every path serves the same file). */
  readonly url: string;
  /** Every request, in the order their heads arrived. */
  readonly requests: RecordedRequest[];
  /**
   * Replaces the served content and its validators (omitted ones get their
   * defaults again): simulates the file changing on the server. Responses
   * already under way keep the old content.
   */
  setContent(content: Uint8Array, validators?: Validators): void;
}

/** How the server sends correct answers. */
export interface ServeOptions {
  /** Pace every correct answer to about this rate (default: as fast as the socket takes it). */
  bytesPerSecond?: number;
}

/**
 * Serves `content` at `url`, answering request N with `script[N]` when that
 * entry exists; an undefined entry (or a hole) gets the correct answer.
 */
export async function serveFaults(
  content: Uint8Array,
  script: readonly (Fault | undefined)[] = [],
  validators: Validators = {},
  options: ServeOptions = {},
): Promise<FaultServer> {
  const requests: RecordedRequest[] = [];
  const connections = new Set<Connection>();
  const handlers = new Set<Promise<void>>();
  const disposal = new AbortController();
  let changes = 0;
  let file = fileOf(content, validators, changes);

  const server = net.createServer((socket) => {
    const connection = new Connection(socket);
    if (disposal.signal.aborted) return connection.destroy();
    connections.add(connection);
    const handler = handle(connection)
      .catch(() => {}) // the peer went away or the server closed: nothing to report
      .finally(() => {
        connection.destroy();
        connections.delete(connection);
        handlers.delete(handler);
      });
    handlers.add(handler);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", () => {}); // accept errors only cost that connection
  const { port } = server.address() as net.AddressInfo;
  const url = `http://127.0.0.1:${port}/file`;

  async function handle(connection: Connection): Promise<void> {
    const head = await connection.readHead();
    if (head === null) return;
    const parsed = parseHead(head);
    if (parsed === null) {
      await connection.write(plainReply(400, "bad request").wire());
      return await connection.end();
    }
    const index = requests.length;
    requests.push({
      method: parsed.method,
      range: parsed.headers.get("range"),
      ifRange: parsed.headers.get("if-range"),
      acceptEncoding: parsed.headers.get("accept-encoding"),
      headers: new Headers(parsed.headers),
    });
    const fault = script[index];
    const snapshot = file;
    const isHead = parsed.method === "HEAD";

    if (fault?.kind === "reset" || fault?.kind === "stall") {
      const reply = correctReply(parsed, snapshot);
      await connection.write(reply.wire(isHead ? 0 : fault.afterBytes));
      // An RST discards whatever the kernel has not sent yet, so give a
      // reading client time to take it all; a stall waits anyway.
      const ms = fault.kind === "stall" ? fault.ms : RESET_GRACE_MS;
      await sleep(ms, AbortSignal.any([disposal.signal, connection.signal]));
      return connection.reset();
    }
    if (fault?.kind === "respond") {
      const body = await connection.readBody(parsed.headers);
      const request = new Request(new URL(parsed.target, url), {
        method: parsed.method,
        headers: parsed.headers,
        ...(body.length > 0 && !isHead && parsed.method !== "GET"
          ? { body }
          : {}),
        signal: disposal.signal,
      });
      await writeResponse(connection, isHead, await fault.handler(request));
      return await connection.end();
    }
    if (fault?.kind === "closeEarly") {
      const reply = correctReply(parsed, snapshot);
      if (!fault.withLength) reply.headers.delete("content-length");
      await connection.write(reply.wire(isHead ? 0 : fault.afterBytes));
      return await connection.end();
    }
    const reply = fault === undefined
      ? correctReply(parsed, snapshot)
      : await faultyReply(fault, parsed, snapshot);
    const wire = reply.wire(isHead ? 0 : undefined);
    const rate = fault === undefined ? options.bytesPerSecond : undefined;
    if (rate === undefined) await connection.write(wire);
    else {
      const stop = AbortSignal.any([disposal.signal, connection.signal]);
      for (let at = 0; at < wire.length && !stop.aborted; at += WRITE_PIECE) {
        await connection.write(wire.subarray(at, at + WRITE_PIECE));
        await sleep(WRITE_PIECE / rate * 1000, stop);
      }
    }
    await connection.end();
  }

  return {
    url,
    requests,
    setContent(content: Uint8Array, validators: Validators = {}): void {
      file = fileOf(content, validators, ++changes);
    },
    async [Symbol.asyncDispose](): Promise<void> {
      disposal.abort();
      const closed = new Promise<void>((resolve) =>
        server.close(() => resolve())
      );
      for (const connection of connections) connection.destroy();
      await Promise.all(handlers);
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------
// The file and its validators

/** The served bytes and the validator headers that go with them. */
interface ServedFile {
  content: Uint8Array;
  /** As sent, `W/` included when weak; null: no ETag header. */
  etag: string | null;
  lastModified: string | null;
}

const FIRST_LAST_MODIFIED = Date.UTC(2015, 9, 21, 7, 28, 0);
const DAY_MS = 86_400_000;

function fileOf(
  content: Uint8Array,
  validators: Validators,
  changes: number,
): ServedFile {
  const copy = content.slice();
  let etag = validators.etag === undefined
    ? `"${createHash("sha256").update(copy).digest("hex").slice(0, 16)}"`
    : validators.etag;
  if (etag !== null && validators.weak && !etag.startsWith("W/")) {
    etag = `W/${etag}`;
  }
  const lastModified = validators.lastModified === undefined
    ? new Date(FIRST_LAST_MODIFIED + changes * DAY_MS).toUTCString()
    : validators.lastModified;
  return { content: copy, etag, lastModified };
}

// ---------------------------------------------------------------------------
// Requests

/** A parsed request head. */
interface ParsedHead {
  method: string;
  target: string;
  headers: Headers;
}

/** Parses `METHOD target HTTP/1.x` and header lines; null when malformed. */
function parseHead(head: string): ParsedHead | null {
  const lines = head.split("\r\n");
  const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]$/
    .exec(lines[0] ?? "");
  if (requestLine === null) return null;
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    } catch {
      return null; // an invalid header name or value
    }
  }
  return { method: requestLine[1]!, target: requestLine[2]!, headers };
}

/** An inclusive byte span of the file. */
interface Span {
  start: number;
  end: number;
}

/**
 * Reads a Range header against a file of `total` bytes: a span, "unsatisfiable",
 * or null when the header is to be ignored (absent, invalid, not bytes, or
 * several ranges, which this server does not combine).
 */
function parseRange(
  value: string | null,
  total: number,
): Span | "unsatisfiable" | null {
  if (value === null) return null;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (match === null) return null;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return null;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || total === 0) return "unsatisfiable";
    return { start: Math.max(0, total - suffix), end: total - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return null;
  if (start >= total) return "unsatisfiable";
  const end = last === "" ? total - 1 : Math.min(Number(last), total - 1);
  return { start, end };
}

/** If-Range matches a strong, equal entity-tag, or exactly the Last-Modified text. */
function ifRangeMatches(value: string, file: ServedFile): boolean {
  const condition = value.trim();
  if (condition.startsWith("W/")) return false;
  if (condition.startsWith('"')) {
    return file.etag !== null && !file.etag.startsWith("W/") &&
      condition === file.etag;
  }
  return file.lastModified !== null && condition === file.lastModified;
}

/** The span request asks for, If-Range ignored: the whole file if no usable Range. */
function requestedSpan(
  request: ParsedHead,
  file: ServedFile,
): Span | "unsatisfiable" {
  const total = file.content.length;
  const span = parseRange(request.headers.get("range"), total);
  if (span !== null) return span;
  return total === 0 ? "unsatisfiable" : { start: 0, end: total - 1 };
}

// ---------------------------------------------------------------------------
// Replies

const REASONS: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  412: "Precondition Failed",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const encoder = new TextEncoder();

/** A response with a fully known body. */
class Reply {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly body: Uint8Array,
  ) {}

  /** Status line, headers and the first `bodyBytes` of the body (all of it by default). */
  wire(bodyBytes = this.body.length): Uint8Array {
    return concat([
      encodeHead(this.status, this.headers),
      this.body.subarray(0, bodyBytes),
    ]);
  }
}

function encodeHead(
  status: number,
  headers: Headers,
  reason = REASONS[status] ?? "Unknown",
): Uint8Array {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return encoder.encode(`${head}\r\n`);
}

/** A reply with Content-Length and `connection: close` added. */
function reply(
  status: number,
  headers: Headers,
  body: Uint8Array = new Uint8Array(0),
): Reply {
  headers.set("content-length", String(body.length));
  headers.set("connection", "close");
  return new Reply(status, headers, body);
}

function plainReply(status: number, text: string): Reply {
  return reply(
    status,
    new Headers({ "content-type": "text/plain" }),
    encoder.encode(text),
  );
}

/** Date, type, Accept-Ranges and the validators. */
function fileHeaders(file: ServedFile, acceptRanges = true): Headers {
  const headers = new Headers({
    "date": new Date().toUTCString(),
    "content-type": "application/octet-stream",
  });
  if (acceptRanges) headers.set("accept-ranges", "bytes");
  if (file.etag !== null) headers.set("etag", file.etag);
  if (file.lastModified !== null) {
    headers.set("last-modified", file.lastModified);
  }
  return headers;
}

function partialReply(file: ServedFile, span: Span): Reply {
  const headers = fileHeaders(file);
  headers.set(
    "content-range",
    `bytes ${span.start}-${span.end}/${file.content.length}`,
  );
  return reply(
    206,
    headers,
    file.content.subarray(span.start, span.end + 1),
  );
}

function unsatisfiableReply(file: ServedFile, total: number): Reply {
  const headers = fileHeaders(file);
  headers.set("content-range", `bytes */${total}`);
  return reply(416, headers);
}

/** What RFC 9110 says to answer. */
function correctReply(request: ParsedHead, file: ServedFile): Reply {
  if (request.method !== "GET" && request.method !== "HEAD") {
    const answer = plainReply(405, "only GET and HEAD");
    answer.headers.set("allow", "GET, HEAD");
    return answer;
  }
  const ifRange = request.headers.get("if-range");
  const span = ifRange !== null && !ifRangeMatches(ifRange, file)
    ? null
    : parseRange(request.headers.get("range"), file.content.length);
  if (span === null) return reply(200, fileHeaders(file), file.content);
  if (span === "unsatisfiable") {
    return unsatisfiableReply(file, file.content.length);
  }
  return partialReply(file, span);
}

/** The reply for every fault that is one well-framed response. */
async function faultyReply(
  fault: Fault,
  request: ParsedHead,
  file: ServedFile,
): Promise<Reply> {
  const total = file.content.length;
  switch (fault.kind) {
    case "status":
      return reply(
        fault.status,
        new Headers(fault.headers),
        encoder.encode(fault.body ?? ""),
      );
    case "ignoreRange":
      return reply(200, fileHeaders(file, false), file.content);
    case "status416":
      return unsatisfiableReply(file, fault.total ?? total);
    case "contentRangeOn200": {
      const span = requestedSpan(request, file);
      const headers = fileHeaders(file);
      headers.set(
        "content-range",
        span === "unsatisfiable"
          ? `bytes */${total}`
          : `bytes ${span.start}-${span.end}/${total}`,
      );
      return reply(200, headers, file.content);
    }
    case "gzip": {
      const correct = correctReply(request, file);
      if (correct.status !== 200 && correct.status !== 206) return correct;
      correct.headers.set("content-encoding", "gzip");
      return reply(correct.status, correct.headers, await gzip(correct.body));
    }
    default:
      break;
  }
  // The rest answer 206 for the requested span; nothing to answer 206 for is a 416.
  const span = requestedSpan(request, file);
  if (span === "unsatisfiable") return unsatisfiableReply(file, total);
  switch (fault.kind) {
    case "wrongOffset": {
      const length = span.end - span.start + 1;
      const start = Math.min(Math.max(span.start + fault.shift, 0), total - 1);
      return partialReply(file, {
        start,
        end: Math.min(start + length - 1, total - 1),
      });
    }
    case "shortRange":
      return partialReply(file, {
        start: span.start,
        end: Math.min(span.end, span.start + Math.max(1, fault.bytes) - 1),
      });
    case "contentRange": {
      const answer = partialReply(file, span);
      if (fault.value === null) answer.headers.delete("content-range");
      else answer.headers.set("content-range", fault.value);
      return answer;
    }
    case "wrongLength": {
      const answer = partialReply(file, span);
      const next = file.content[span.end + 1] ?? 0xff;
      const body = concat([answer.body, Uint8Array.of(next ^ 0xff)]);
      return reply(206, answer.headers, body);
    }
    default:
      throw new Error(`fault ${fault.kind} is not a single reply`);
  }
}

/**
 * Writes a handler's Response. Its headers go out as given, plus
 * `connection: close`. With Content-Length the body is written as is, even if
 * the length lies; with `transfer-encoding: chunked` it is chunked; with
 * neither, a null body gets `content-length: 0` and any other body ends at
 * the close. The reason phrase is the Response's statusText, if any.
 */
async function writeResponse(
  connection: Connection,
  isHead: boolean,
  response: Response,
): Promise<void> {
  const headers = new Headers(response.headers);
  headers.set("connection", "close");
  const chunked = /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "");
  const bodiless = response.status === 204 || response.status === 304;
  if (
    response.body === null && !chunked && !bodiless &&
    !headers.has("content-length")
  ) {
    headers.set("content-length", "0");
  }
  await connection.write(
    encodeHead(response.status, headers, response.statusText || undefined),
  );
  if (response.body === null) return;
  if (isHead) return await response.body.cancel();
  for await (const piece of response.body) {
    if (!chunked) await connection.write(piece);
    else if (piece.length > 0) {
      await connection.write(concat([
        encoder.encode(`${piece.length.toString(16)}\r\n`),
        piece,
        encoder.encode("\r\n"),
      ]));
    }
  }
  if (chunked) await connection.write(encoder.encode("0\r\n\r\n"));
}

// ---------------------------------------------------------------------------
// Connections

const MAX_HEAD_BYTES = 65_536;
/** How long a reset waits after its last byte before cutting the connection. */
const RESET_GRACE_MS = 10;
/** Bodies are written in pieces of this size, each awaited. */
const WRITE_PIECE = 65_536;
const HEAD_END = encoder.encode("\r\n\r\n");

/** One accepted socket, read and written with promises. */
class Connection {
  readonly #socket: net.Socket;
  readonly #closing = new AbortController();
  #received: Uint8Array = new Uint8Array(0);
  #peerDone = false;
  #wake: (() => void) | undefined;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    const wake = (): void => this.#wake?.();
    socket.on("error", () => {}); // shows up as a close and failed writes
    socket.on("data", (piece: Uint8Array) => {
      this.#received = concat([this.#received, piece]);
      wake();
    });
    socket.on("end", () => {
      this.#peerDone = true;
      wake();
    });
    socket.on("close", () => {
      this.#peerDone = true;
      this.#closing.abort();
      wake();
    });
  }

  /** Aborted once the socket has closed, for whatever reason. */
  get signal(): AbortSignal {
    return this.#closing.signal;
  }

  /** The request head without its final blank line; null if the peer went away first or it is too long. */
  async readHead(): Promise<string | null> {
    for (;;) {
      const end = indexOf(this.#received, HEAD_END);
      if (end >= 0) {
        const head = this.#received.subarray(0, end);
        this.#received = this.#received.subarray(end + HEAD_END.length);
        return new TextDecoder("latin1").decode(head);
      }
      if (this.#peerDone || this.#received.length > MAX_HEAD_BYTES) return null;
      await this.#more();
    }
  }

  /** The request body of the declared Content-Length, if any. */
  async readBody(headers: Headers): Promise<Uint8Array<ArrayBuffer>> {
    const length = Number(headers.get("content-length") ?? 0) || 0;
    while (this.#received.length < length) {
      if (this.#peerDone) throw new Error("request body cut short");
      await this.#more();
    }
    const body = this.#received.slice(0, length);
    this.#received = this.#received.subarray(length);
    return body;
  }

  #more(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Writes `bytes`, resolving once the kernel has them; rejects if the socket closes first. */
  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; at += WRITE_PIECE) {
      const piece = bytes.subarray(at, at + WRITE_PIECE);
      await new Promise<void>((resolve, reject) => {
        if (this.#socket.destroyed) {
          return reject(new Error("connection closed"));
        }
        const onClose = (): void => reject(new Error("connection closed"));
        this.signal.addEventListener("abort", onClose, { once: true });
        this.#socket.write(piece, (error) => {
          this.signal.removeEventListener("abort", onClose);
          if (error) reject(error);
          else resolve();
        });
      });
    }
  }

  /** Ends cleanly: everything written goes out, then a FIN. */
  async end(): Promise<void> {
    if (this.#socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.signal.addEventListener("abort", () => resolve(), { once: true });
      this.#socket.end(() => resolve());
    });
    this.destroy();
  }

  /** Aborts the connection with a TCP RST. */
  reset(): void {
    if (!this.#socket.destroyed) this.#socket.resetAndDestroy();
  }

  destroy(): void {
    if (!this.#socket.destroyed) this.#socket.destroy();
  }
}

/** Where `needle` first occurs in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  search: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue search;
    }
    return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Small helpers

function concat(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no timer behind. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
