// `sluice demo`: the whole path on local things. A sample file is sealed
// into a directory store, served by two peers on 127.0.0.1 (one healthy, one
// that cuts connections, answers 503 and corrupts a chunk), read back through
// decryptStream with failover into a file sink and a SQLite sink, and both
// copies are checked against the sample's SHA-256.

import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  ChunkNotFoundError,
  type ChunkStore,
  decryptStream,
  dirStore,
  httpStore,
  multiStore,
  seal,
  servePeer,
} from "../core/chunks.ts";
import { IntegrityError } from "../core/errors.ts";
import { deliverAll } from "../sinks/deliver_all.ts";
import { fileSink } from "../sinks/file.ts";
import { readDelivery, sqliteSink } from "../sinks/sqlite.ts";
import { expectPositionals, parseSize, stringOf, UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { formatBytes, formatRate, type Output } from "./_output.ts";

/** A fault the faulty peer injected, and who served the chunk in the end. */
interface Fault {
  /** The faulty peer's GET count when it happened, from 0. */
  request: number;
  /** The chunk's index in the data map. */
  chunk: number;
  kind: "cut" | "503" | "corrupt";
  /** The store that finally served the chunk. */
  servedBy?: string;
}

const FAULT_TEXT: Record<Fault["kind"], string> = {
  cut: "connection cut mid-body",
  "503": "503 with Retry-After: 1",
  corrupt: "corrupt bytes, caught by the address check",
};

// The first three GETs fail one way each, then every fifth.
function faultFor(request: number): Fault["kind"] | undefined {
  const kinds = ["cut", "503", "corrupt"] as const;
  if (request < 3) return kinds[request];
  return request % 5 === 0 ? kinds[(request / 5) % 3] : undefined;
}

/**
 * A peer for `store` that misbehaves on the schedule of `faultFor`. It speaks
 * HTTP/1.1 by hand, one request per connection, so that it can cut a
 * connection in the middle of a body.
 */
function serveFaultyPeer(
  store: ChunkStore,
  chunkOf: Map<string, number>,
  faults: Fault[],
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let gets = 0;
  const respond = async (conn: Deno.Conn) => {
    const head = await readHead(conn);
    const [method, path] = head?.split(" ") ?? [];
    const address = /^\/chunks\/([0-9a-f]{64})$/.exec(path ?? "")?.[1];
    if (method !== "GET" || !address) return await send(conn, 404);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await store.get(address));
    } catch (error) {
      if (error instanceof ChunkNotFoundError) return await send(conn, 404);
      throw error;
    }
    const n = gets++;
    const kind = faultFor(n);
    if (kind) faults.push({ request: n, chunk: chunkOf.get(address)!, kind });
    if (kind === "503") return await send(conn, 503, "retry-after: 1\r\n");
    if (kind === "corrupt") bytes[bytes.length >> 1]! ^= 0xff;
    // A cut declares the whole length and sends half of it.
    await send(
      conn,
      200,
      "",
      kind === "cut" ? bytes.subarray(0, bytes.length >> 1) : bytes,
      bytes.length,
    );
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      respond(conn).catch(() => {}).finally(() => {
        open.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      });
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of open) conn.close();
      await accepting;
    },
  };
}

/** The request line, once the whole head has arrived (at most 16 KiB). */
async function readHead(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(16384);
  let length = 0;
  while (length < buffer.length) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) return undefined;
    length += n;
    const text = new TextDecoder().decode(buffer.subarray(0, length));
    if (text.includes("\r\n\r\n")) return text.slice(0, text.indexOf("\r\n"));
  }
  return undefined;
}

async function send(
  conn: Deno.Conn,
  status: number,
  headers = "",
  body: Uint8Array = new Uint8Array(0),
  declared = body.length,
): Promise<void> {
  const head = `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Error"}\r\n` +
    `content-length: ${declared}\r\nconnection: close\r\n${headers}\r\n`;
  for (const part of [new TextEncoder().encode(head), body]) {
    for (let w = 0; w < part.length;) w += await conn.write(part.subarray(w));
  }
}

/** `store`, remembering in `servedBy` who served each address last. */
function watched(
  store: ChunkStore,
  name: string,
  servedBy: Map<string, string>,
): ChunkStore {
  return {
    async get(address, options) {
      const bytes = await store.get(address, options);
      servedBy.set(address, name);
      return bytes;
    },
    put: (address, bytes, options) => store.put(address, bytes, options),
    has: (address, options) => store.has(address, options),
  };
}

async function writeSample(
  path: string,
  size: number,
  output: Output,
  signal: AbortSignal,
): Promise<string> {
  const hash = createHash("sha256");
  const progress = output.progress("sample", size);
  using file = await Deno.open(path, { write: true, createNew: true });
  const block = new Uint8Array(1024 * 1024);
  try {
    for (let done = 0; done < size;) {
      signal.throwIfAborted();
      const piece = block.subarray(0, Math.min(block.length, size - done));
      for (let i = 0; i < piece.length; i += 65536) {
        crypto.getRandomValues(piece.subarray(i, i + 65536));
      }
      hash.update(piece);
      for (let w = 0; w < piece.length;) {
        w += await file.write(piece.subarray(w));
      }
      done += piece.length;
      progress.update(done);
    }
  } finally {
    progress.done();
  }
  return hash.digest("hex");
}

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest("hex");
}

/** `sluice demo` */
export const demo: Command = {
  name: "demo",
  summary:
    "seal, serve through a healthy and a faulty peer, read back and verify",
  help: `Usage: sluice demo [--size N]

Runs the main job end to end on this machine, with nothing to set up:
  1. writes a sample file of random bytes (default 256MiB) in a temporary
     directory, and seals it into a directory store;
  2. starts two peers on 127.0.0.1 serving the store: a healthy one, and a
     faulty one that cuts connections mid-body, answers 503 with Retry-After
     and corrupts a chunk;
  3. streams the file back through decryptStream from both peers (the faulty
     one asked first), failing over and retrying, into a file sink and a
     SQLite sink at once;
  4. checks the SHA-256 of both copies against the sample, prints the
     receipts, the faults and how each was handled, and the throughput;
  5. removes everything it made.

Options:
  --size N             the sample's size (default 256MiB; KiB, MiB, GiB)`,
  options: { size: { type: "string" } },
  async run(parsed, { output, signal }) {
    expectPositionals(parsed, []);
    const size = parseSize(stringOf(parsed, "size") ?? "256MiB", "--size");
    if (size < 1) throw new UsageError("--size must be at least 1 byte");
    const work = await Deno.makeTempDir({ prefix: "sluice-demo-" });
    try {
      const samplePath = join(work, "sample.bin");
      const sha256 = await writeSample(samplePath, size, output, signal);
      output.note(
        `sample    ${formatBytes(size)} of random bytes, sha256 ${sha256}`,
      );

      const storeDir = join(work, "store");
      const sealProgress = output.progress("seal", size);
      let sealedBytes = 0;
      const sealStarted = performance.now();
      let sealed;
      try {
        const sample = await Deno.open(samplePath);
        sealed = await seal(sample.readable, dirStore(storeDir), {
          signal,
          onProgress(event) {
            sealedBytes += event.bytes;
            sealProgress.update(sealedBytes);
          },
        });
      } finally {
        sealProgress.done();
      }
      const sealMs = performance.now() - sealStarted;
      const { dataMap, key } = sealed;
      output.note(
        `sealed    ${dataMap.chunks.length} chunks of ${
          formatBytes(dataMap.chunkSize)
        } ` +
          `into a directory store at ${formatRate(size, sealMs)}`,
      );

      const faults: Fault[] = [];
      const servedBy = new Map<string, string>();
      const chunkOf = new Map(dataMap.chunks.map((c, i) => [c.address, i]));
      const outDir = join(work, "out");
      await Deno.mkdir(outDir);
      const filePath = join(outDir, "sample.bin");
      const dbPath = join(outDir, "deliveries.db");
      let retries = 0;
      const readProgress = output.progress("read", size);
      const readStarted = performance.now();
      let receipts;
      {
        await using healthy = servePeer(dirStore(storeDir));
        await using faulty = serveFaultyPeer(
          dirStore(storeDir),
          chunkOf,
          faults,
        );
        output.note(`peers     healthy ${healthy.url}, faulty ${faulty.url}`);
        const store = multiStore([
          watched(httpStore(faulty.url), "faulty peer", servedBy),
          watched(httpStore(healthy.url), "healthy peer", servedBy),
        ]);
        try {
          const plaintext = decryptStream(dataMap, key, store, {
            signal,
            onProgress(event) {
              if (event.type === "progress") {
                readProgress.update(event.delivered);
              } else if (event.type === "retry") {
                retries++;
                readProgress.retry();
              }
            },
          });
          receipts = await deliverAll(
            plaintext,
            [fileSink(filePath), sqliteSink(dbPath, { table: "demo" })],
            { name: "sample.bin", size },
            { signal },
          );
        } finally {
          readProgress.done();
        }
      }
      const readMs = performance.now() - readStarted;
      for (const fault of faults) {
        const served = servedBy.get(dataMap.chunks[fault.chunk]!.address);
        if (served) fault.servedBy = served;
      }
      const failovers = faults.filter((f) =>
        f.servedBy === "healthy peer"
      ).length;

      const file = await Deno.open(filePath);
      const fileSha = await sha256Of(file.readable);
      const rowId = receipts[1]!.detail!.id as number;
      const dbSha = await sha256Of(
        readDelivery(dbPath, rowId, { table: "demo" }),
      );
      const copies = { file: fileSha, sqlite: dbSha };
      for (const [where, digest] of Object.entries(copies)) {
        if (digest !== sha256) {
          throw new IntegrityError({
            subject: `the demo's ${where} copy`,
            check: "sha256",
            expected: sha256,
            actual: digest,
          });
        }
      }
      output.result({
        size,
        sha256,
        chunks: dataMap.chunks.length,
        seal: {
          ms: Math.round(sealMs),
          bytesPerSecond: Math.round(size / (sealMs / 1000)),
        },
        read: {
          ms: Math.round(readMs),
          bytesPerSecond: Math.round(size / (readMs / 1000)),
        },
        faults,
        failovers,
        retries,
        receipts,
        verified: copies,
      }, () => [
        ...(faults.length === 0
          ? ["faults    none were needed this time"]
          : faults.map((f, i) =>
            `${i === 0 ? "faults   " : "         "} chunk ${f.chunk}: ${
              FAULT_TEXT[f.kind]
            }` +
            ` -> served by the ${f.servedBy ?? "?"}`
          )),
        `retries   ${failovers} failovers to the healthy peer, ${retries} chunk retries`,
        `read      ${formatBytes(size)} into 2 sinks at once at ${
          formatRate(size, readMs)
        }`,
        ...receipts.map((r) =>
          `receipt   ${r.sink.padEnd(6)} ${r.location}  ${
            formatBytes(r.bytes)
          }  sha256 ${r.sha256}`
        ),
        `verified  the file on disk and the SQLite rows both hash to the sample's SHA-256`,
      ]);
    } finally {
      await Deno.remove(work, { recursive: true });
      output.note(`cleaned   removed ${work} and stopped both peers`);
    }
  },
};
