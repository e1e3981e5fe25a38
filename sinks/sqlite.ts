/**
 * Deliver streams into an embedded SQLite database with `node:sqlite`, and
 * read them back. Each delivery is one row of `<table>` plus its bytes in
 * fixed-size chunk rows of `<table>_chunks`, written in one transaction as
 * the stream flows, so memory stays flat and a failed delivery leaves no row.
 * The database is switched to WAL mode, so readers are never blocked by a
 * delivery in progress.
 *
 * Needs `--allow-read --allow-write` on the database file and its directory
 * (SQLite keeps `-wal` and `-shm` files beside it).
 *
 * @example Deliver and read back
 * ```ts
 * import { readDelivery, sqliteSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/deliveries.db`;
 * const receipt = await sqliteSink(path).deliver(
 *   ReadableStream.from([new TextEncoder().encode("hello")]),
 *   { name: "greeting.txt", contentType: "text/plain" },
 * );
 * assert.equal(receipt.location, `${path}#deliveries/1`);
 * const text = await new Response(readDelivery(path, 1)).text();
 * assert.equal(text, "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  CancelledError,
  IntegrityError,
  SluiceError,
  type SluiceErrorOptions,
} from "../core/errors.ts";
import { checkSize, drain, receiptOf, sinkOf, Tally } from "./_tally.ts";
import type { DeliveryMetadata, Sink } from "./types.ts";

const DEFAULT_TABLE = "deliveries";
const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Well under SQLite's default blob limit of 1,000,000,000 bytes. */
const MAX_CHUNK_BYTES = 512 * 1024 * 1024;
const DEFAULT_BUSY_TIMEOUT_MS = 30_000;
const FIRST_BUSY_WAIT_MS = 5;
const LAST_BUSY_WAIT_MS = 200;
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Options for {@linkcode sqliteSink}. */
export interface SqliteSinkOptions {
  /**
   * The table of deliveries (default `"deliveries"`); their bytes go in
   * `<table>_chunks`. Both are created if missing. A letter or `_`, then up
   * to 62 letters, digits or `_`, not starting with `sqlite_`.
   */
  table?: string;
  /**
   * The size of each chunk row in bytes (default 1 MiB, at most 512 MiB); the
   * last row of a delivery may be shorter. A delivery holds one such buffer
   * in memory.
   */
  chunkBytes?: number;
  /**
   * How long to wait for another writer to release the database before
   * failing with {@linkcode DatabaseBusyError} (default 30 000 ms; `0` tries
   * once, `Infinity` waits until the signal aborts). The wait never blocks
   * the event loop.
   */
  busyTimeoutMs?: number;
}

/** Options for {@linkcode readDelivery}. */
export interface ReadDeliveryOptions {
  /** The table the delivery was written to (default `"deliveries"`). */
  table?: string;
  /** Aborting it errors the stream with `CancelledError` and closes the database. */
  signal?: AbortSignal;
}

/**
 * Another connection held the database's write lock for longer than the
 * sink's `busyTimeoutMs`. SQLite allows one writer at a time, and a delivery
 * holds the lock for as long as its stream flows.
 *
 * It is retryable: the other writer will finish.
 *
 * @example
 * ```ts
 * import { DatabaseBusyError } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const error = new DatabaseBusyError({ path: "/srv/deliveries.db" });
 * assert.equal(error.retryable, true);
 * assert.equal(
 *   error.message,
 *   "Cannot deliver to /srv/deliveries.db: the database is locked by another writer",
 * );
 * ```
 */
export class DatabaseBusyError extends SluiceError {
  /** Always `true`: the lock is released when the other writer finishes. */
  readonly retryable: boolean = true;
  /** The database file. */
  readonly path: string;

  /**
   * Makes the error.
   *
   * @param init The database file, and SQLite's error as `cause`.
   * @param message Defaults to "Cannot deliver to <path>: the database is locked by another writer".
   */
  constructor(init: { path: string } & SluiceErrorOptions, message?: string) {
    super(
      message ??
        `Cannot deliver to ${init.path}: the database is locked by another writer`,
      init,
    );
    this.path = init.path;
  }
}

/** What a {@linkcode DeliveryNotFoundError} knows. */
export interface DeliveryNotFoundErrorInit extends SluiceErrorOptions {
  /** The database file. */
  path: string;
  /** The table of deliveries. */
  table: string;
  /** The delivery id asked for. */
  id: number;
}

/**
 * The database holds no delivery with that id in that table (or no such
 * table at all).
 *
 * @example
 * ```ts
 * import { DeliveryNotFoundError } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const error = new DeliveryNotFoundError({ path: "app.db", table: "deliveries", id: 7 });
 * assert.equal(error.id, 7);
 * assert.equal(error.retryable, false);
 * assert.equal(error.message, "Cannot read delivery 7 from app.db#deliveries: no such delivery");
 * ```
 */
export class DeliveryNotFoundError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The database file. */
  readonly path: string;
  /** The table of deliveries. */
  readonly table: string;
  /** The delivery id asked for. */
  readonly id: number;

  /**
   * Makes the error.
   *
   * @param init The database file, the table and the id.
   */
  constructor(init: DeliveryNotFoundErrorInit) {
    super(
      `Cannot read delivery ${init.id} from ${init.path}#${init.table}: no such delivery`,
      init,
    );
    this.path = init.path;
    this.table = init.table;
    this.id = init.id;
  }
}

function assertPath(path: string, action: string): void {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`Cannot ${action}: the path is empty`);
  }
  if (path === ":memory:") {
    throw new TypeError(
      `Cannot ${action}: ":memory:" would give each connection a database of its own`,
    );
  }
}

function assertTableName(table: string): void {
  const problem = typeof table !== "string"
    ? "it is not a string"
    : !TABLE_NAME.test(table)
    ? "it must be a letter or _ then up to 62 letters, digits or _"
    : /^sqlite_/i.test(table)
    ? "names starting with sqlite_ are reserved"
    : undefined;
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot use ${
        JSON.stringify(String(table)).slice(0, 80)
      } as a table name: ${problem}`,
    );
  }
}

/** Whether node:sqlite reported SQLITE_BUSY (Deno has no `errcode`; Node does). */
function isBusy(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const errcode = (error as { errcode?: unknown }).errcode;
  if (typeof errcode === "number") return (errcode & 0xff) === 5;
  return (error as { code?: unknown }).code === "ERR_SQLITE_ERROR" &&
    error.message.startsWith("database is locked");
}

function isMissingTable(error: unknown): boolean {
  return error instanceof Error &&
    (error as { code?: unknown }).code === "ERR_SQLITE_ERROR" &&
    error.message.startsWith("no such table");
}

function metadataJson(meta: DeliveryMetadata | undefined): string | null {
  if (meta?.extra === undefined && meta?.headers === undefined) return null;
  const metadata: Record<string, unknown> = {};
  if (meta.extra !== undefined) metadata.extra = meta.extra;
  if (meta.headers !== undefined) metadata.headers = meta.headers;
  try {
    return JSON.stringify(metadata);
  } catch (error) {
    throw new TypeError(
      `Cannot deliver: meta.extra and meta.headers must be JSON-serializable`,
      { cause: error },
    );
  }
}

function schemaSql(table: string): string {
  return `
    CREATE TABLE IF NOT EXISTS "${table}" (
      id INTEGER PRIMARY KEY,
      name TEXT,
      content_type TEXT,
      bytes INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      created TEXT NOT NULL,
      metadata TEXT
    );
    CREATE TABLE IF NOT EXISTS "${table}_chunks" (
      delivery_id INTEGER NOT NULL REFERENCES "${table}"(id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      data BLOB NOT NULL,
      PRIMARY KEY (delivery_id, seq)
    ) WITHOUT ROWID;`;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(CancelledError.fromSignal(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** An open write transaction; disposing of it uncommitted rolls it back. */
interface WriteTransaction extends Disposable {
  commit(): void;
}

/**
 * Takes the write lock with `BEGIN IMMEDIATE`. The connection's busy timeout
 * is 0, because a synchronous wait would block the event loop (and a second
 * delivery in this process would wait for a first that cannot run), so on
 * SQLITE_BUSY this waits asynchronously and tries again until `timeoutMs`.
 */
async function beginImmediate(
  db: DatabaseSync,
  path: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<WriteTransaction> {
  const deadline = performance.now() + timeoutMs;
  for (
    let wait = FIRST_BUSY_WAIT_MS;;
    wait = Math.min(wait * 2, LAST_BUSY_WAIT_MS)
  ) {
    if (signal?.aborted) throw CancelledError.fromSignal(signal);
    try {
      db.exec("PRAGMA journal_mode = WAL"); // needs the lock the first time
      db.exec("BEGIN IMMEDIATE");
      break;
    } catch (error) {
      if (!isBusy(error)) throw error;
      const left = deadline - performance.now();
      if (left <= 0) throw new DatabaseBusyError({ path, cause: error });
      await sleep(Math.min(wait, left), signal);
    }
  }
  return {
    commit: () => db.exec("COMMIT"),
    [Symbol.dispose]: () => {
      try {
        if (db.isOpen && db.isTransaction) db.exec("ROLLBACK");
      } catch {
        // Closing the connection, which comes next, rolls back as well.
      }
    },
  };
}

/**
 * Gathers chunks into pieces of exactly `size` bytes (the last may be
 * shorter) and hands each to `emit`, which must copy what it keeps.
 */
function gather(size: number, emit: (piece: Uint8Array) => void): {
  push(chunk: Uint8Array): void;
  flush(): void;
} {
  let buffer: Uint8Array | undefined;
  let filled = 0;
  return {
    push(chunk) {
      let at = 0;
      while (at < chunk.length) {
        if (filled === 0 && chunk.length - at >= size) {
          emit(chunk.subarray(at, at + size)); // a whole piece: no copy
          at += size;
          continue;
        }
        buffer ??= new Uint8Array(size);
        const n = Math.min(size - filled, chunk.length - at);
        buffer.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === size) {
          emit(buffer);
          filled = 0;
        }
      }
    },
    flush() {
      if (filled > 0) emit(buffer!.subarray(0, filled));
      filled = 0;
    },
  };
}

/**
 * A sink that stores each delivery in the SQLite database at `path`: a row
 * of `table` (id, name, content type, bytes, SHA-256, creation time, and
 * `meta.extra` and `meta.headers` as JSON) and its bytes in `chunkBytes`
 * rows of `<table>_chunks`. The database and tables are created if missing.
 *
 * Each delivery opens its own connection and writes in one transaction as
 * the stream flows, committed once the bytes are counted and hashed; SQLite
 * syncs the commit to disk (`synchronous = FULL`). A failure, an abort or a
 * `meta.size` mismatch rolls the transaction back, so no row of it is ever
 * visible, and cancels the source. SQLite allows one writer at a time: a
 * delivery holds the write lock while its stream flows, and others wait for
 * it (asynchronously) up to `busyTimeoutMs`.
 *
 * The receipt's `location` is `<path>#<table>/<id>`, and its `detail` is
 * `{ table, id }`; read the bytes back with {@linkcode readDelivery}.
 *
 * @param path The database file; created if missing (its directory must exist).
 * @param options The table, the chunk size and how long to wait for the lock.
 * @returns The sink.
 * @throws {TypeError} If `path` is empty or `":memory:"`, or `table` is not a usable name.
 * @throws {RangeError} If `chunkBytes` or `busyTimeoutMs` is out of range.
 *
 * @example Store a delivery with its metadata
 * ```ts
 * import { sqliteSink } from "@sluice/sluice/sinks";
 * import { DatabaseSync } from "node:sqlite";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const sink = sqliteSink(`${dir}/app.db`, { table: "uploads", chunkBytes: 4 });
 * const receipt = await sink.deliver(
 *   ReadableStream.from([new Uint8Array(10)]),
 *   { name: "zeros.bin", size: 10, extra: { owner: "ana" } },
 * );
 * assert.deepEqual(receipt.detail, { table: "uploads", id: 1 });
 * {
 *   using db = new DatabaseSync(`${dir}/app.db`);
 *   const row = db.prepare("SELECT name, bytes, metadata FROM uploads").get();
 *   assert.deepEqual({ ...row }, { name: "zeros.bin", bytes: 10, metadata: '{"extra":{"owner":"ana"}}' });
 *   assert.deepEqual({ ...db.prepare("SELECT count(*) AS n FROM uploads_chunks").get() }, { n: 3 });
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example Nothing is stored when the size is wrong
 * ```ts
 * import { sqliteSink } from "@sluice/sluice/sinks";
 * import { IntegrityError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const sink = sqliteSink(`${dir}/app.db`);
 * await assert.rejects(
 *   sink.deliver(ReadableStream.from([new Uint8Array(3)]), { size: 4 }),
 *   IntegrityError,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function sqliteSink(
  path: string,
  options: SqliteSinkOptions = {},
): Sink {
  assertPath(path, "make a SQLite sink");
  const {
    table = DEFAULT_TABLE,
    chunkBytes = DEFAULT_CHUNK_BYTES,
    busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS,
  } = options;
  assertTableName(table);
  if (
    !Number.isSafeInteger(chunkBytes) || chunkBytes < 1 ||
    chunkBytes > MAX_CHUNK_BYTES
  ) {
    throw new RangeError(
      `Cannot make a SQLite sink: chunkBytes must be an integer from 1 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`,
    );
  }
  if (typeof busyTimeoutMs !== "number" || !(busyTimeoutMs >= 0)) {
    throw new RangeError(
      `Cannot make a SQLite sink: busyTimeoutMs must be a number of milliseconds from 0, got ${busyTimeoutMs}`,
    );
  }
  return sinkOf(async (source, meta, signal) => {
    const metadata = metadataJson(meta);
    const tally = new Tally(); // starts the clock before the lock wait
    using db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 0; PRAGMA synchronous = FULL");
    using transaction = await beginImmediate(
      db,
      path,
      busyTimeoutMs,
      signal,
    );
    db.exec(schemaSql(table));
    const { lastInsertRowid } = db.prepare(
      `INSERT INTO "${table}" (name, content_type, bytes, sha256, created, metadata)
           VALUES (?, ?, 0, '', ?, ?)`,
    ).run(
      meta?.name ?? null,
      meta?.contentType ?? null,
      tally.startedAt.toISOString(),
      metadata,
    );
    const id = Number(lastInsertRowid);
    const insertChunk = db.prepare(
      `INSERT INTO "${table}_chunks" (delivery_id, seq, data) VALUES (?, ?, ?)`,
    );
    let seq = 0;
    const chunks = gather(chunkBytes, (piece) => {
      insertChunk.run(id, seq++, piece);
    });
    await drain(source, (chunk) => {
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(
          "Cannot deliver: the source gave a chunk that is not a Uint8Array",
        );
      }
      tally.update(chunk);
      chunks.push(chunk);
    }, signal);
    chunks.flush();
    const location = `${path}#${table}/${id}`;
    checkSize(tally.bytes, meta, location);
    if (signal?.aborted) throw CancelledError.fromSignal(signal);
    const sha256 = tally.digest();
    db.prepare(`UPDATE "${table}" SET bytes = ?, sha256 = ? WHERE id = ?`)
      .run(tally.bytes, sha256, id);
    transaction.commit();
    return receiptOf("sqlite", location, tally, sha256, {
      detail: { table, id },
    });
  });
}

/**
 * Opens the database read-only in a read transaction, finds the delivery and
 * prepares the query for its chunks.
 */
function openDelivery(path: string, table: string, id: number): {
  db: DatabaseSync;
  chunkQuery: StatementSync;
  bytes: number;
  sha256: string;
} {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec("PRAGMA busy_timeout = 0; BEGIN");
    const row = db.prepare(`SELECT bytes, sha256 FROM "${table}" WHERE id = ?`)
      .get(id);
    if (row === undefined) throw new DeliveryNotFoundError({ path, table, id });
    const chunkQuery = db.prepare(
      `SELECT data FROM "${table}_chunks" WHERE delivery_id = ? AND seq = ?`,
    );
    return {
      db,
      chunkQuery,
      bytes: Number(row.bytes),
      sha256: String(row.sha256),
    };
  } catch (error) {
    db.close();
    throw readError(error, path, table, id);
  }
}

function readError(
  error: unknown,
  path: string,
  table: string,
  id: number,
): unknown {
  if (isMissingTable(error)) {
    return new DeliveryNotFoundError({ path, table, id, cause: error });
  }
  if (isBusy(error)) {
    return new DatabaseBusyError(
      { path, cause: error },
      `Cannot read delivery ${id} from ${path}#${table}: the database is locked by another writer`,
    );
  }
  return error;
}

/**
 * Streams the bytes of a delivery that {@linkcode sqliteSink} stored, one
 * chunk row per pull, and checks them at the end: if their length or
 * SHA-256 differs from the delivery row, the stream errors with
 * `IntegrityError` (a chunk that would pass the recorded length errors it at
 * once).
 *
 * The delivery is looked up before this returns, so a missing one throws
 * right away — in time to answer 404 rather than start a response. The
 * stream then holds a read-only connection and a read transaction, so it
 * sees the delivery as it was when looked up even if it is deleted
 * meanwhile; both are closed when the stream ends, errors or is cancelled.
 * Cancel a stream you do not read. Needs `--allow-read` on the database
 * file only (SQLite may still create the `-shm` file beside it).
 *
 * @param path The database file.
 * @param id The delivery's id (the receipt's `detail.id`).
 * @param options The table and an abort signal.
 * @returns The delivery's bytes.
 * @throws {DeliveryNotFoundError} If there is no such delivery (or no such table).
 * @throws {TypeError} If `path` is empty or `":memory:"`, or `table` is not a usable name.
 * @throws {RangeError} If `id` is not an integer.
 * @throws {CancelledError} If `signal` is already aborted.
 *
 * @example Read a delivery, and a missing one
 * ```ts
 * import { DeliveryNotFoundError, readDelivery, sqliteSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/app.db`;
 * const bytes = new Uint8Array([1, 2, 3, 4, 5]);
 * const { detail } = await sqliteSink(path, { chunkBytes: 2 })
 *   .deliver(ReadableStream.from([bytes]));
 * const pieces = await Array.fromAsync(readDelivery(path, detail!.id as number));
 * assert.deepEqual(pieces.map((p) => p.length), [2, 2, 1]);
 * assert.throws(() => readDelivery(path, 42), DeliveryNotFoundError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function readDelivery(
  path: string,
  id: number,
  options: ReadDeliveryOptions = {},
): ReadableStream<Uint8Array> {
  assertPath(path, "read a delivery");
  const { table = DEFAULT_TABLE, signal } = options;
  assertTableName(table);
  if (!Number.isSafeInteger(id)) {
    throw new RangeError(
      `Cannot read delivery ${id}: the id must be an integer`,
    );
  }
  if (signal?.aborted) throw CancelledError.fromSignal(signal);
  const subject = `${path}#${table}/${id}`;
  const { db, chunkQuery, ...expected } = openDelivery(path, table, id);
  const hash = createHash("sha256");
  let bytes = 0;
  let seq = 0;
  let onAbort = () => {};
  const finish = () => {
    signal?.removeEventListener("abort", onAbort);
    if (db.isOpen) db.close();
  };
  const mismatch = (check: string, expected: string, actual: string) =>
    new IntegrityError({ check, subject, expected, actual });
  return new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        controller.error(CancelledError.fromSignal(signal!));
        finish();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    },
    pull(controller) {
      try {
        const data = chunkQuery.get(id, seq)?.data;
        if (data !== undefined) {
          if (!(data instanceof Uint8Array)) {
            throw mismatch(`chunk ${seq} type`, "blob", typeof data);
          }
          if (bytes + data.length > expected.bytes) {
            throw mismatch(
              "size",
              String(expected.bytes),
              `more than ${expected.bytes}`,
            );
          }
          hash.update(data);
          bytes += data.length;
          seq++;
          controller.enqueue(data);
          return;
        }
        if (bytes !== expected.bytes) {
          throw mismatch("size", String(expected.bytes), String(bytes));
        }
        const sha256 = hash.digest("hex");
        if (sha256 !== expected.sha256) {
          throw mismatch("sha256", expected.sha256, sha256);
        }
        finish();
        controller.close();
      } catch (error) {
        finish();
        throw readError(error, path, table, id);
      }
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 0 });
}
