// servePeer, httpStore and multiStore against real loopback servers: the
// peer protocol, error mapping of hostile peers, retries, failover, hedging,
// replicated writes and cancellation over HTTP.
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  ChunkNotFoundError,
  type ChunkStore,
  type DecryptEvent,
  decryptStream,
  dirStore,
  httpStore,
  memoryStore,
  multiStore,
  seal,
  SealIncompleteError,
  servePeer,
} from "../core/chunks.ts";
import {
  HttpError,
  IncompleteStreamError,
  IntegrityError,
  LimitError,
  PartialFailureError,
} from "../core/errors.ts";
import { isRetryable } from "../retry/classify.ts";
import { concat, drain, randomBytes } from "./_data.ts";
import { serveLoopback } from "./_loopback.ts";
import { tempDir } from "./_fs.ts";

// The largest sealed chunk: 16 MiB of plaintext plus the 16-byte tag.
const MAX_SEALED_CHUNK = 16 * 1024 * 1024 + 16;
const CHUNK_SIZE = 65536;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// --- helpers ---------------------------------------------------------------

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Random bytes and their address. */
async function makeChunk(
  length: number,
): Promise<{ bytes: Uint8Array<ArrayBuffer>; address: string }> {
  const bytes = randomBytes(length);
  return { bytes, address: await sha256Hex(bytes) };
}

function chunkUrl(base: string, address: string): URL {
  return new URL(`chunks/${address}`, base);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects when `promise` has not settled after `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Seals `plain` into a fresh memory store in 64 KiB chunks. */
async function sealInMemory(plain: Uint8Array) {
  const store = memoryStore();
  const sealed = await seal(
    new Blob([plain as Uint8Array<ArrayBuffer>]).stream(),
    store,
    { chunkSize: CHUNK_SIZE },
  );
  return { store, ...sealed };
}

/** The address in a `/chunks/<address>` request, or undefined. */
function addressOf(request: Request): string | undefined {
  return /^\/chunks\/([0-9a-f]{64})$/.exec(new URL(request.url).pathname)?.[1];
}

// A raw TCP server on 127.0.0.1 that hands each connection to `onConnection`,
// for responses Deno.serve would refuse to send.
interface RawServer extends AsyncDisposable {
  url: string;
  readonly connections: number;
}

function serveRaw(
  onConnection: (conn: Deno.Conn, index: number) => Promise<void>,
): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  let connections = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const index = connections++;
        open.add(conn);
        handlers.push(
          onConnection(conn, index).catch(() => {}).finally(() => {
            open.delete(conn);
            try {
              conn.close();
            } catch { /* already closed */ }
          }),
        );
      }
    } catch { /* the listener was closed */ }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}/`,
    get connections() {
      return connections;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      open.clear();
      await accepting;
      await Promise.all(handlers);
    },
  };
}

/** Reads from `conn` up to the end of an HTTP head; returns the head. */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(16384);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n));
  }
  return text;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

// --- 1. servePeer protocol --------------------------------------------------

Deno.test("servePeer() GET answers 200 with the exact bytes and a strong ETag of the address", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(5000);
  await store.put(address, bytes);
  await using peer = servePeer(store);
  const response = await fetch(chunkUrl(peer.url, address));
  assert.equal(response.status, 200);
  const etag = response.headers.get("etag");
  assert.equal(etag, `"${address}"`);
  assert.ok(!etag!.startsWith("W/"), "the ETag must be strong");
  assert.equal(
    response.headers.get("content-type"),
    "application/octet-stream",
  );
  assert.match(response.headers.get("cache-control") ?? "", /immutable/);
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
});

Deno.test("servePeer() GET answers 404 for an absent chunk", async () => {
  await using peer = servePeer(memoryStore());
  const response = await fetch(chunkUrl(peer.url, "ab".repeat(32)));
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("servePeer() HEAD answers 200 for a present chunk and 404 for an absent one, without a body", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(100);
  await store.put(address, bytes);
  await using peer = servePeer(store);
  const present = await fetch(chunkUrl(peer.url, address), { method: "HEAD" });
  assert.equal(present.status, 200);
  assert.equal((await present.arrayBuffer()).byteLength, 0);
  const absent = await fetch(chunkUrl(peer.url, "cd".repeat(32)), {
    method: "HEAD",
  });
  assert.equal(absent.status, 404);
  await absent.body?.cancel();
});

Deno.test("servePeer() PUT of a matching body answers 204 and the store then holds the bytes", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(3000);
  await using peer = servePeer(store);
  const response = await fetch(chunkUrl(peer.url, address), {
    method: "PUT",
    body: bytes,
  });
  assert.equal(response.status, 204);
  await response.body?.cancel();
  assert.equal(store.size, 1);
  assert.deepEqual(await store.get(address), bytes);
});

Deno.test("servePeer() PUT whose body does not hash to the address answers 400 and stores nothing", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(3000);
  const tampered = bytes.slice();
  tampered[0]! ^= 1;
  await using peer = servePeer(store);
  const response = await fetch(chunkUrl(peer.url, address), {
    method: "PUT",
    body: tampered,
  });
  assert.equal(response.status, 400);
  assert.match(await response.text(), /address mismatch/);
  assert.equal(store.size, 0);
  assert.equal(await store.has(address), false);
});

Deno.test("servePeer() PUT over maxChunkBytes with a Content-Length answers 413 and stores nothing", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(1025);
  await using peer = servePeer(store, { maxChunkBytes: 1024 });
  const response = await fetch(chunkUrl(peer.url, address), {
    method: "PUT",
    body: bytes,
  });
  assert.equal(response.status, 413);
  await response.body?.cancel();
  assert.equal(store.size, 0);
});

Deno.test("servePeer() PUT over maxChunkBytes as a chunked body without a length answers 413 and stores nothing", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(4096);
  await using peer = servePeer(store, { maxChunkBytes: 1024 });
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 512) {
        controller.enqueue(bytes.slice(at, at + 512));
      }
      controller.close();
    },
  });
  const response = await fetch(chunkUrl(peer.url, address), {
    method: "PUT",
    body,
  });
  assert.equal(response.status, 413);
  await response.body?.cancel();
  assert.equal(store.size, 0);
});

Deno.test("servePeer() answers 413 before reading a body whose Content-Length is over maxChunkBytes", async () => {
  // The head declares 2048 bytes and no body follows: a peer that waited for
  // the body would never answer.
  const store = memoryStore();
  await using peer = servePeer(store, { maxChunkBytes: 1024 });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: peer.port });
  await writeAll(
    conn,
    encoder.encode(
      `PUT /chunks/${"ab".repeat(32)} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
        "content-length: 2048\r\n\r\n",
    ),
  );
  const head = await within(2000, "the 413 answer", readHead(conn));
  assert.match(head, /^HTTP\/1\.1 413 /);
  assert.equal(store.size, 0);
});

Deno.test("servePeer() answers 413 as soon as a chunked body passes maxChunkBytes, before it ends", async () => {
  // One 1025-byte chunk of a chunked body that never ends.
  const store = memoryStore();
  await using peer = servePeer(store, { maxChunkBytes: 1024 });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: peer.port });
  await writeAll(
    conn,
    encoder.encode(
      `PUT /chunks/${"ab".repeat(32)} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
        "transfer-encoding: chunked\r\n\r\n" + (1025).toString(16) + "\r\n",
    ),
  );
  await writeAll(conn, randomBytes(1025));
  await writeAll(conn, encoder.encode("\r\n"));
  const head = await within(2000, "the 413 answer", readHead(conn));
  assert.match(head, /^HTTP\/1\.1 413 /);
  assert.equal(store.size, 0);
});

Deno.test("servePeer() accepts a PUT of exactly maxChunkBytes, with a length and chunked", async () => {
  const store = memoryStore();
  await using peer = servePeer(store, { maxChunkBytes: 1024 });
  const sized = await makeChunk(1024);
  const byLength = await fetch(chunkUrl(peer.url, sized.address), {
    method: "PUT",
    body: sized.bytes,
  });
  assert.equal(byLength.status, 204);
  await byLength.body?.cancel();
  const streamed = await makeChunk(1024);
  const chunked = await fetch(chunkUrl(peer.url, streamed.address), {
    method: "PUT",
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(streamed.bytes.slice(0, 300));
        controller.enqueue(streamed.bytes.slice(300));
        controller.close();
      },
    }),
  });
  assert.equal(chunked.status, 204);
  await chunked.body?.cancel();
  assert.deepEqual(await store.get(sized.address), sized.bytes);
  assert.deepEqual(await store.get(streamed.address), streamed.bytes);
});

Deno.test("servePeer() answers 400 to GET, HEAD and PUT of an address that is not 64 lowercase hex", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(64);
  await using peer = servePeer(store);
  const bad = [
    "..%2Fx",
    "..%2F..%2Fetc%2Fpasswd",
    address.toUpperCase(),
    address.slice(1),
    `${address}0`,
    "zz".repeat(32),
    "",
  ];
  for (const candidate of bad) {
    for (const method of ["GET", "HEAD", "PUT"]) {
      const response = await fetch(new URL(`chunks/${candidate}`, peer.url), {
        method,
        ...(method === "PUT" ? { body: bytes } : {}),
      });
      assert.equal(
        response.status,
        400,
        `${method} /chunks/${candidate} should be 400`,
      );
      await response.body?.cancel();
    }
  }
  assert.equal(store.size, 0);
});

Deno.test("servePeer() answers 404 for paths outside /chunks/<address>", async () => {
  const { address } = await makeChunk(64);
  await using peer = servePeer(memoryStore());
  for (
    const path of [
      "",
      "chunks",
      `chunk/${address}`,
      `chunks/${address}/extra`,
      `other/chunks/${address}`,
    ]
  ) {
    const response = await fetch(new URL(path, peer.url));
    assert.equal(response.status, 404, `/${path} should be 404`);
    await response.body?.cancel();
  }
});

Deno.test("servePeer() answers 405 with an Allow header to DELETE and POST, and keeps the chunk", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(64);
  await store.put(address, bytes);
  await using peer = servePeer(store);
  for (const method of ["DELETE", "POST"]) {
    const response = await fetch(chunkUrl(peer.url, address), { method });
    assert.equal(response.status, 405);
    const allow = (response.headers.get("allow") ?? "").split(/\s*,\s*/);
    assert.deepEqual(allow.sort(), ["GET", "HEAD", "PUT"]);
    await response.body?.cancel();
  }
  assert.equal(await store.has(address), true);
});

// --- 2. httpStore against servePeer -----------------------------------------

Deno.test("httpStore() through servePeer round-trips a multi-chunk seal and decryptStream", async () => {
  const backing = memoryStore();
  await using peer = servePeer(backing);
  const store = httpStore(peer.url);
  const plain = randomBytes(300_000);
  const { dataMap, key, stored } = await seal(
    new Blob([plain]).stream(),
    store,
    { chunkSize: CHUNK_SIZE },
  );
  assert.equal(dataMap.chunks.length, 5);
  assert.equal(stored, 5);
  assert.equal(backing.size, 5, "every chunk reached the peer");
  const parts: Uint8Array[] = [];
  for await (const part of decryptStream(dataMap, key, store)) parts.push(part);
  assert.ok(parts.length >= 2, `expected several parts, got ${parts.length}`);
  assert.ok(parts.every((p) => p.length > 0), "no empty parts");
  const total = parts.reduce((n, p) => n + p.length, 0);
  assert.equal(total, dataMap.size);
  assert.deepEqual(concat(parts), plain);
});

Deno.test("httpStore() has() and get() map a servePeer's 404 to false and ChunkNotFoundError", async () => {
  await using peer = servePeer(memoryStore());
  const store = httpStore(peer.url);
  const address = "ef".repeat(32);
  assert.equal(await store.has(address), false);
  const error = await store.get(address).catch((e) => e);
  assert.ok(error instanceof ChunkNotFoundError);
  assert.equal(error.address, address);
});

Deno.test("servePeer() over a dirStore writes good PUTs to disk, serves them back and writes nothing for a mismatch", async () => {
  await using dir = await tempDir();
  const disk = dirStore(dir.path);
  await using peer = servePeer(disk);
  const store = httpStore(peer.url);
  const { bytes, address } = await makeChunk(10_000);
  await store.put(address, bytes);
  assert.deepEqual(await Deno.readFile(disk.pathOf(address)), bytes);
  assert.deepEqual(await store.get(address), bytes);
  const other = await makeChunk(10_000);
  const error = await store.put(other.address, bytes).catch((e) => e);
  assert.ok(error instanceof HttpError, String(error));
  assert.equal(error.status, 400);
  assert.equal(error.retryable, false);
  assert.equal(await store.has(other.address), false);
  const shards = await Array.fromAsync(Deno.readDir(dir.path));
  assert.deepEqual(shards.map((e) => e.name), [address.slice(0, 2)]);
});

// --- 3. httpStore error mapping against hostile servers ---------------------

Deno.test("httpStore() maps a 503 with Retry-After to a retryable HttpError carrying retryAfterMs", async () => {
  let requests = 0;
  await using server = serveLoopback(() => {
    requests++;
    return new Response("busy", {
      status: 503,
      headers: { "retry-after": "7" },
    });
  });
  const error = await httpStore(server.url).get("12".repeat(32)).catch((e) =>
    e
  );
  assert.ok(error instanceof HttpError, String(error));
  assert.equal(error.status, 503);
  assert.equal(error.method, "GET");
  assert.equal(error.retryable, true);
  assert.equal(error.retryAfterMs, 7000);
  assert.equal(requests, 1, "httpStore does not retry by default");
});

Deno.test("httpStore() maps a hand-written 404 to ChunkNotFoundError, not HttpError", async () => {
  await using server = serveLoopback(() =>
    new Response("nope", { status: 404 })
  );
  const address = "34".repeat(32);
  const error = await httpStore(server.url).get(address).catch((e) => e);
  assert.ok(error instanceof ChunkNotFoundError, String(error));
  assert.equal(error.retryable, false);
  assert.equal(error.address, address);
});

Deno.test("httpStore() maps a PUT answered 413 to a permanent HttpError", async () => {
  await using server = serveLoopback(() =>
    new Response("too big", { status: 413 })
  );
  const { bytes, address } = await makeChunk(64);
  const error = await httpStore(server.url).put(address, bytes).catch((e) => e);
  assert.ok(error instanceof HttpError, String(error));
  assert.equal(error.status, 413);
  assert.equal(error.method, "PUT");
  assert.equal(error.retryable, false);
});

Deno.test("httpStore() refuses a Content-Length over 16 MiB + 16 with LimitError without reading the body", async () => {
  // Only the head and 1 KiB are ever sent: reading the body would hang.
  let hungUp = false;
  await using server = serveRaw(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      encoder.encode(
        `HTTP/1.1 200 OK\r\ncontent-length: ${MAX_SEALED_CHUNK + 1}\r\n\r\n`,
      ),
    );
    await writeAll(conn, new Uint8Array(1024));
    hungUp = await conn.read(new Uint8Array(1024)) === null;
  });
  const error = await within(
    5000,
    "httpStore().get()",
    httpStore(server.url).get("56".repeat(32)).catch((e) => e),
  );
  assert.ok(error instanceof LimitError, String(error));
  assert.equal(error.limit, MAX_SEALED_CHUNK);
  assert.equal(error.actual, MAX_SEALED_CHUNK + 1);
  for (let i = 0; i < 100 && !hungUp; i++) await sleep(10);
  assert.ok(hungUp, "the client dropped the connection instead of reading on");
});

Deno.test("httpStore() refuses an unbounded chunked body with LimitError once it passes 16 MiB + 16", async () => {
  let sent = 0;
  await using server = serveRaw(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      encoder.encode("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
    );
    const piece = new Uint8Array(1 << 20);
    const frame = concat([
      encoder.encode(`${piece.length.toString(16)}\r\n`),
      piece,
      encoder.encode("\r\n"),
    ]);
    // Never ends; stops when the client goes away or after 64 MiB.
    while (sent < 64 * (1 << 20)) {
      await writeAll(conn, frame);
      sent += piece.length;
    }
  });
  const error = await within(
    20_000,
    "httpStore().get()",
    httpStore(server.url).get("78".repeat(32)).catch((e) => e),
  );
  assert.ok(error instanceof LimitError, String(error));
  assert.equal(error.limit, MAX_SEALED_CHUNK);
  assert.ok(error.actual! > MAX_SEALED_CHUNK);
  assert.ok(error.actual! <= MAX_SEALED_CHUNK + (1 << 20));
});

Deno.test("httpStore() reports a body cut short of its Content-Length as a retryable error", async () => {
  await using server = serveRaw(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      encoder.encode("HTTP/1.1 200 OK\r\ncontent-length: 65552\r\n\r\n"),
    );
    await writeAll(conn, new Uint8Array(1000));
    // Returning closes the connection 64 551 bytes early.
  });
  const error = await within(
    5000,
    "httpStore().get()",
    httpStore(server.url).get("9a".repeat(32)).catch((e) => e),
  );
  assert.ok(
    error instanceof TypeError || error instanceof IncompleteStreamError,
    `expected a network TypeError or IncompleteStreamError, got ${error}`,
  );
  assert.equal(isRetryable(error), true, `${error} should be retryable`);
});

Deno.test("httpStore() with a retry policy gets the chunk after a response cut short", async () => {
  const { bytes, address } = await makeChunk(65552);
  await using server = serveRaw(async (conn, index) => {
    await readHead(conn);
    const head = `HTTP/1.1 200 OK\r\ncontent-length: ${bytes.length}\r\n` +
      "connection: close\r\n\r\n";
    await writeAll(conn, encoder.encode(head));
    await writeAll(conn, index === 0 ? bytes.subarray(0, 1000) : bytes);
  });
  const store = httpStore(server.url, {
    retry: { maxAttempts: 2, baseDelayMs: 1 },
  });
  assert.deepEqual(await store.get(address), bytes);
  assert.equal(server.connections, 2);
});

Deno.test("httpStore() reports IncompleteStreamError when a fetch that does not enforce Content-Length returns a short body", async () => {
  // A real server sends 1000 bytes; the injected fetch (standing in for one
  // that does not check lengths) relabels them as 65 552.
  await using server = serveLoopback(() => new Response(new Uint8Array(1000)));
  const lax: typeof fetch = async (input, init) => {
    const real = await fetch(input, init);
    return new Response(real.body, {
      status: real.status,
      headers: { "content-length": "65552" },
    });
  };
  const error = await httpStore(server.url, { fetch: lax }).get("bc".repeat(32))
    .catch((e) => e);
  assert.ok(error instanceof IncompleteStreamError, String(error));
  assert.equal(error.expected, 65552);
  assert.equal(error.received, 1000);
  assert.equal(error.retryable, true);
});

/** A raw peer answering every GET with `body` gzip-encoded; records the request heads. */
function gzipPeer(body: Uint8Array) {
  const compressed = gzipSync(body);
  const heads: string[] = [];
  const server = serveRaw(async (conn) => {
    heads.push((await readHead(conn)).toLowerCase());
    await writeAll(
      conn,
      encoder.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n" +
          `content-encoding: gzip\r\ncontent-length: ${compressed.length}\r\n` +
          "connection: close\r\n\r\n",
      ),
    );
    await writeAll(conn, compressed);
  });
  return { server, heads, compressed };
}

// fetch inflates a gzip body but keeps the compressed Content-Length, so an
// encoded body must not be checked against that length.
Deno.test("httpStore() reads a chunk that a peer sends gzip-encoded, whose Content-Length is the compressed size", async () => {
  const { bytes, address } = await makeChunk(65552);
  bytes.fill(7, 0, 32768); // compressible, so the two lengths differ
  const peer = gzipPeer(bytes);
  await using _peer = peer.server;
  const got = await httpStore(peer.server.url).get(address).catch((e) => e);
  assert.match(peer.heads[0] ?? "", /accept-encoding: [^\r]*gzip/);
  assert.ok(got instanceof Uint8Array, `got ${got}`);
  assert.deepEqual(got, bytes);
});

// A decompression bomb: the size limit applies to the inflated bytes, and
// is enforced while reading, not after inflating the whole body.
Deno.test("httpStore() refuses a gzip body that inflates past 16 MiB + 16 with LimitError", async () => {
  const peer = gzipPeer(new Uint8Array(MAX_SEALED_CHUNK + 1024 * 1024));
  await using _peer = peer.server;
  assert.ok(peer.compressed.length < 65536, "the bomb is small on the wire");
  const error = await httpStore(peer.server.url).get("de".repeat(32)).catch((
    e,
  ) => e);
  assert.ok(error instanceof LimitError, `expected LimitError, got ${error}`);
  assert.equal(error.limit, MAX_SEALED_CHUNK);
});

// --- 4. decryptStream through a flaky peer ----------------------------------

Deno.test("decryptStream() through a flaky peer (503 then a reset, per chunk) succeeds by retrying", async () => {
  const plain = randomBytes(300_000);
  const { store, dataMap, key } = await sealInMemory(plain);
  const attempts = new Map<string, number>();
  await using peer = serveLoopback(async (request) => {
    const address = addressOf(request);
    if (address === undefined || request.method !== "GET") {
      return new Response(null, { status: 404 });
    }
    const attempt = (attempts.get(address) ?? 0) + 1;
    attempts.set(address, attempt);
    if (attempt === 1) {
      return new Response("busy", {
        status: 503,
        headers: { "retry-after": "0" },
      });
    }
    const bytes = await store.get(address);
    if (attempt === 2) {
      // Declares the whole chunk, sends half, then drops the connection.
      const half = bytes.slice(0, bytes.length >> 1);
      return new Response(
        new ReadableStream({
          pull(controller) {
            controller.enqueue(half);
            controller.close();
          },
        }),
        { headers: { "content-length": String(bytes.length) } },
      );
    }
    return new Response(bytes as Uint8Array<ArrayBuffer>);
  });
  const events: DecryptEvent[] = [];
  const stream = decryptStream(dataMap, key, httpStore(peer.url), {
    retry: { baseDelayMs: 1 },
    onProgress: (event) => events.push(event),
  });
  const { parts, error } = await drain(stream);
  assert.equal(error, undefined);
  assert.deepEqual(concat(parts), plain);
  const retries = events.filter((e) => e.type === "retry");
  assert.ok(retries.length > 0);
  const count = dataMap.chunks.length;
  assert.equal(retries.length, 2 * count, "two failed attempts per chunk");
  assert.ok(retries.some((e) => e.error instanceof HttpError));
  assert.ok(retries.some((e) => !(e.error instanceof HttpError)));
  assert.deepEqual([...attempts.values()], Array(count).fill(3));
});

// --- 5. Failover --------------------------------------------------------------

/** A peer that serves `store`, flipping a bit of the chunks `corrupt` picks. */
function corruptingPeer(
  store: ChunkStore,
  corrupt: (address: string) => boolean,
) {
  const served = { corrupted: 0, clean: 0 };
  const server = serveLoopback(async (request) => {
    const address = addressOf(request);
    if (address === undefined || request.method !== "GET") {
      return new Response(null, { status: 404 });
    }
    const bytes = (await store.get(address)).slice();
    if (corrupt(address)) {
      bytes[bytes.length >> 1]! ^= 0x10;
      served.corrupted++;
    } else served.clean++;
    return new Response(bytes as Uint8Array<ArrayBuffer>);
  });
  return { server, served };
}

Deno.test("decryptStream() through multiStore fails over from a peer that corrupts every chunk to a good one", async () => {
  const plain = randomBytes(300_000);
  const { store, dataMap, key } = await sealInMemory(plain);
  const corrupt = corruptingPeer(store, () => true);
  await using _corrupt = corrupt.server;
  await using good = servePeer(store);
  const both = multiStore([
    httpStore(corrupt.server.url),
    httpStore(good.url),
  ]);
  const { parts, error } = await drain(
    decryptStream(dataMap, key, both, { retry: { baseDelayMs: 1 } }),
  );
  assert.equal(error, undefined);
  assert.deepEqual(concat(parts), plain);
  assert.ok(corrupt.served.corrupted > 0, "the corrupt peer was asked first");
});

Deno.test("decryptStream() with multiStore({ verify: false }) and only a corrupt peer errors with IntegrityError and delivers only the whole good chunks before it", async () => {
  const plain = randomBytes(300_000);
  const { store, dataMap, key } = await sealInMemory(plain);
  const bad = 2;
  const badAddress = dataMap.chunks[bad]!.address;
  const corrupt = corruptingPeer(store, (a) => a === badAddress);
  await using _corrupt = corrupt.server;
  const only = multiStore([httpStore(corrupt.server.url)], { verify: false });
  const { parts, error } = await drain(
    decryptStream(dataMap, key, only, { retry: { baseDelayMs: 1 } }),
  );
  assert.ok(error instanceof IntegrityError, String(error));
  assert.equal(error.check, "authentication tag");
  assert.ok(corrupt.served.corrupted >= 1);
  const delivered = concat(parts);
  assert.equal(delivered.length % CHUNK_SIZE, 0, "whole chunks only");
  assert.equal(delivered.length, bad * CHUNK_SIZE);
  assert.deepEqual(delivered, plain.subarray(0, delivered.length));
});

// --- 6. Hedging ---------------------------------------------------------------

/**
 * A 200 whose headers go out at once and whose body waits `ms`, then sends
 * `then()`'s bytes; `counts.cancelled` counts bodies the client abandoned.
 */
function stalledBody(
  ms: number,
  then: () => Uint8Array,
  counts: { cancelled: number; finished: number },
  headers: HeadersInit = {},
): Response {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setTimeout(() => {
        counts.finished++;
        controller.enqueue(then());
        controller.close();
      }, ms);
    },
    cancel() {
      clearTimeout(timer);
      counts.cancelled++;
    },
  });
  return new Response(body, { headers });
}

Deno.test("multiStore({ hedgeAfterMs }) answers from the fast peer and aborts the slow peer's request", async () => {
  const store = memoryStore();
  const { bytes, address } = await makeChunk(4096);
  await store.put(address, bytes);
  const slow = { started: 0, cancelled: 0, finished: 0 };
  await using slowPeer = serveLoopback(() => {
    slow.started++;
    return stalledBody(2000, () => bytes, slow);
  });
  await using fastPeer = servePeer(store);
  const slowStore = httpStore(slowPeer.url);
  const fastStore = httpStore(fastPeer.url);
  const hedged = multiStore([slowStore, fastStore], { hedgeAfterMs: 20 });
  const started = performance.now();
  const got = await hedged.get(address);
  const elapsed = performance.now() - started;
  assert.deepEqual(got, bytes);
  assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  assert.equal(slow.started, 1, "the slow peer was asked first");
  for (let i = 0; i < 100 && slow.cancelled === 0; i++) await sleep(10);
  assert.equal(slow.cancelled, 1, "the slow request was aborted");
  assert.equal(slow.finished, 0);
  assert.deepEqual(
    hedged.ranking,
    [fastStore, slowStore],
    "the winner moves up",
  );
});

// --- 7. Replicated writes through peers ---------------------------------------

/** A peer that holds nothing and answers 500 to every PUT. */
function failingPeer() {
  const counts = { put: 0 };
  const server = serveLoopback((request) => {
    if (request.method === "PUT") {
      counts.put++;
      return new Response("disk on fire", { status: 500 });
    }
    return new Response(null, { status: 404 });
  });
  return { server, counts };
}

/** A peer on `store` that takes `delayMs` to store each PUT before its 204. */
function slowWritePeer(store: ChunkStore, delayMs: number) {
  return serveLoopback(async (request) => {
    const address = addressOf(request);
    if (address === undefined) return new Response(null, { status: 404 });
    if (request.method === "PUT") {
      const bytes = new Uint8Array(await request.arrayBuffer());
      await sleep(delayMs);
      await store.put(address, bytes);
      return new Response(null, { status: 204 });
    }
    const has = await store.has(address);
    if (request.method === "HEAD" || !has) {
      return new Response(null, { status: has ? 200 : 404 });
    }
    return new Response(await store.get(address) as Uint8Array<ArrayBuffer>);
  });
}

Deno.test("seal({ replicas: 2 }) across three peers, one failing every PUT, keeps every chunk on two peers before it returns", async () => {
  const a = memoryStore();
  const b = memoryStore();
  await using peerA = servePeer(a);
  // The second good peer is slow, so returning after one replica shows.
  await using peerB = slowWritePeer(b, 50);
  const broken = failingPeer();
  await using _broken = broken.server;
  const peers = [peerA.url, broken.server.url, peerB.url].map((u) =>
    httpStore(u)
  );
  const plain = randomBytes(300_000);
  const { dataMap, key } = await seal(new Blob([plain]).stream(), peers, {
    chunkSize: CHUNK_SIZE,
    replicas: 2,
    retry: { baseDelayMs: 1 },
  });
  // Checked on the backing stores at once: both good peers hold every chunk.
  const onA = await Promise.all(dataMap.chunks.map((c) => a.has(c.address)));
  const onB = await Promise.all(dataMap.chunks.map((c) => b.has(c.address)));
  assert.deepEqual(onA, dataMap.chunks.map(() => true));
  assert.deepEqual(onB, dataMap.chunks.map(() => true));
  assert.ok(broken.counts.put > 0, "the failing peer was asked");
  for (const { address } of dataMap.chunks) {
    const holders = await Promise.all(peers.map((p) => p.has(address)));
    assert.equal(holders.filter(Boolean).length, 2, `chunk ${address}`);
  }
  const { parts } = await drain(decryptStream(dataMap, key, multiStore(peers)));
  assert.deepEqual(concat(parts), plain);
});

Deno.test("seal({ replicas: 2 }) with two of three peers failing throws SealIncompleteError listing every chunk", async () => {
  const good = memoryStore();
  await using goodPeer = servePeer(good);
  const broken1 = failingPeer();
  const broken2 = failingPeer();
  await using _b1 = broken1.server;
  await using _b2 = broken2.server;
  const peers = [goodPeer.url, broken1.server.url, broken2.server.url].map(
    (u) => httpStore(u),
  );
  const error = await seal(new Blob([randomBytes(200_000)]).stream(), peers, {
    chunkSize: CHUNK_SIZE,
    replicas: 2,
    retry: { maxAttempts: 2, baseDelayMs: 1 },
  }).catch((e) => e);
  assert.ok(error instanceof SealIncompleteError, String(error));
  assert.ok(error instanceof PartialFailureError);
  const addresses = error.dataMap.chunks.map((c) => c.address);
  assert.equal(addresses.length, 4);
  assert.deepEqual(error.failed.map((f) => f.item), addresses);
  assert.deepEqual(error.succeeded, []);
  for (const failure of error.failed) {
    assert.ok(
      failure.error instanceof PartialFailureError,
      `chunk ${failure.item} failed with ${failure.error}`,
    );
  }
  // The one replica that could be written is kept.
  for (const address of addresses) assert.equal(await good.has(address), true);
});

// Writes start at a store chosen by the address; the error must still name
// stores by their place in the array given to multiStore().
Deno.test("multiStore().put() reports succeeded and failed stores by their index in the array given", async () => {
  const good = memoryStore();
  await using goodPeer = servePeer(good);
  const broken1 = failingPeer();
  const broken2 = failingPeer();
  await using _b1 = broken1.server;
  await using _b2 = broken2.server;
  const stores = [goodPeer.url, broken1.server.url, broken2.server.url].map(
    (u) => httpStore(u),
  );
  const multi = multiStore(stores, { replicas: 2 });
  // One chunk for each store the rotation can start at.
  const byStart = new Map<number, { bytes: Uint8Array; address: string }>();
  while (byStart.size < stores.length) {
    const chunk = await makeChunk(256);
    byStart.set(parseInt(chunk.address.slice(0, 8), 16) % stores.length, chunk);
  }
  const reports: string[] = [];
  for (
    const [start, { bytes, address }] of [...byStart].sort((x, y) =>
      x[0] - y[0]
    )
  ) {
    const error = await multi.put(address, bytes).catch((e) => e);
    assert.ok(error instanceof PartialFailureError, String(error));
    assert.equal(await good.has(address), true);
    const failed = error.failed.map((f) => f.item as number).sort();
    reports.push(
      `start ${start}: succeeded ${JSON.stringify(error.succeeded)}, failed ${
        JSON.stringify(failed)
      }`,
    );
  }
  assert.deepEqual(reports, [
    "start 0: succeeded [0], failed [1,2]",
    "start 1: succeeded [0], failed [1,2]",
    "start 2: succeeded [0], failed [1,2]",
  ]);
});

// --- 8. Cancel over HTTP ------------------------------------------------------

Deno.test("decryptStream() cancelled after the first chunk starts no new fetch: later requests are at most the in-flight ones", async () => {
  const plain = randomBytes(20 * CHUNK_SIZE);
  const { store, dataMap, key } = await sealInMemory(plain);
  const first = dataMap.chunks[0]!.address;
  const requests: string[] = [];
  const stalled = { cancelled: 0, finished: 0 };
  await using peer = serveLoopback(async (request) => {
    const address = addressOf(request);
    if (address === undefined) return new Response(null, { status: 404 });
    requests.push(address);
    const bytes = await store.get(address);
    if (address === first) {
      return new Response(bytes as Uint8Array<ArrayBuffer>);
    }
    // Every other chunk fails slowly and retryably (half its body after 40 ms,
    // then a reset): were the fetches not stopped by the cancel, their retries
    // would show up here.
    return stalledBody(40, () => bytes.slice(0, bytes.length >> 1), stalled, {
      "content-length": String(bytes.length),
    });
  });
  const concurrency = 2;
  const reader = decryptStream(dataMap, key, httpStore(peer.url), {
    concurrency,
    retry: { maxAttempts: 10, baseDelayMs: 1 },
  }).getReader();
  const { value } = await reader.read();
  assert.deepEqual(value, plain.subarray(0, CHUNK_SIZE));
  const atCancel = requests.length;
  await reader.cancel();
  await sleep(150);
  const after = requests.slice(atCancel);
  assert.ok(
    after.length <= concurrency,
    `${after.length} requests after the cancel`,
  );
  assert.ok(
    requests.length <= 1 + concurrency,
    `${requests.length} requests in all`,
  );
  assert.equal(new Set(requests).size, requests.length, "no chunk retried");
  assert.equal(stalled.finished, 0, "no stalled body ran to its end");
  assert.equal(
    stalled.cancelled,
    requests.length - 1,
    "every in-flight fetch was aborted",
  );
});
