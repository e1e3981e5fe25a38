/**
 * A download queue that survives its own crashes. {@linkcode TransferQueue}
 * records every transfer in an embedded SQLite database (`node:sqlite`),
 * runs them through {@linkcode download} with at most `maxConcurrent` at
 * once, retries transient failures with the `retry/` policies, and on start
 * puts every transfer that a dead process left running back in the queue, so
 * it resumes from its `.part` instead of starting over or hanging forever.
 *
 * Needs `--allow-read --allow-write` on the database's directory (SQLite
 * keeps `-wal` and `-shm` files beside it, and the queue keeps its lock
 * files in `<db>-owners/`) and on the destinations, and `--allow-net` to the
 * servers.
 *
 * @example
 * ```ts
 * import { TransferQueue } from "@sluice/sluice/queue";
 * import assert from "node:assert/strict";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) =>
 *   new Response(`contents of ${new URL(request.url).pathname}`));
 * const dir = await Deno.makeTempDir();
 * {
 *   await using queue = await TransferQueue.open({ db: `${dir}/queue.db` });
 *   for (const name of ["a", "b", "c"]) {
 *     await queue.add({ urls: `http://127.0.0.1:${server.addr.port}/${name}`, dest: `${dir}/${name}` });
 *   }
 *   const report = await queue.run();
 *   assert.equal(report.done, 3);
 *   assert.deepEqual(queue.list({ state: "done" }).map((t) => t.id), [1, 2, 3]);
 * }
 * assert.equal(await Deno.readTextFile(`${dir}/b`), "contents of /b");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { isRetryable } from "../retry/classify.ts";
import { retry, type RetryOptions } from "../retry/retry.ts";
import { Semaphore } from "../retry/semaphore.ts";
import { toHex } from "./_bytes.ts";
import { discardPart } from "./_part.ts";
import { knownVersion, migrate } from "./_queue_schema.ts";
import { unwrapRetryError } from "./_retry.ts";
import {
  download,
  type DownloadEvent,
  type DownloadOptions,
  type DownloadReceipt,
} from "./download.ts";
import { IntegrityError, LimitError } from "./errors.ts";

/** Where a transfer is in its life. */
export type TransferState =
  | "queued"
  | "running"
  | "done"
  | "failed"
  | "cancelled";

/** What to download, for {@linkcode TransferQueue.add}. */
export interface TransferSpec {
  /** The URL, or mirrors in order of preference (`http:` or `https:`). */
  urls: string | URL | readonly (string | URL)[];
  /** The destination file; its directory must exist when the transfer runs. */
  dest: string;
  /** The expected SHA-256 (64 hex digits); a mismatch fails the transfer. */
  sha256?: string;
  /** The expected size in bytes; a mismatch fails the transfer. */
  size?: number;
  /** Extra request headers. They are stored in the database as given. */
  headers?: HeadersInit;
}

/** Options of {@linkcode TransferQueue.add}. */
export interface AddOptions {
  /**
   * When the destination's latest transfer has finished (done, failed or
   * cancelled), queue a new one instead of returning the finished one's id.
   * A live transfer (queued or running) is never replaced.
   */
  replace?: boolean;
}

/** The error a transfer last met, as recorded. */
export interface TransferError {
  /** The error's name (`"HttpError"`, `"IntegrityError"`, `"TypeError"`, …), or `"DuplicateDestination"`. */
  type: string;
  /** Its message. */
  message: string;
}

/** A transfer as recorded in the queue's database. */
export interface Transfer {
  /** Its id, from 1, in the order transfers were added. */
  id: number;
  /** The destination, absolute, with its directory's symlinks resolved. */
  dest: string;
  /** The URLs, in order of preference. */
  urls: string[];
  /** The expected SHA-256, lowercase, if one was given. */
  sha256?: string;
  /** The expected size, if one was given. */
  size?: number;
  /** The extra request headers, names lowercased. */
  headers: [string, string][];
  /** Where it is. */
  state: TransferState;
  /** Attempts made and counted, across processes (a clean stop gives its attempt back). */
  attempts: number;
  /** Bytes of the file received, as last recorded (at most once a second while running). */
  bytesDone: number;
  /** The file's size, once a server declared it. */
  total?: number;
  /** The offset the latest attempt started from (above 0 when it resumed a `.part`). */
  resumedFrom?: number;
  /** How many times the `.part` was discarded and the file started again. */
  restarts: number;
  /** The latest error; cleared when the transfer is done. */
  error?: TransferError;
  /** For a done transfer: the mirror the bytes came from last, and the file's SHA-256. */
  result?: { url: string; sha256: string };
  /** When it was added. */
  createdAt: Date;
  /** When its row last changed. */
  updatedAt: Date;
  /** When it first ran. */
  startedAt?: Date;
  /** When it was done, failed or cancelled. */
  finishedAt?: Date;
}

/** How an attempt ended; `"running"` while it runs, `"interrupted"` when its process died. */
export type AttemptOutcome =
  | "running"
  | "done"
  | "failed"
  | "retried"
  | "stopped"
  | "cancelled"
  | "interrupted";

/** One attempt of a transfer, from {@linkcode TransferQueue.history}. */
export interface AttemptRecord {
  /** The attempt's number (a stopped attempt's number is used again). */
  attempt: number;
  /** How it ended. */
  outcome: AttemptOutcome;
  /** The offset it started from, when it got that far. */
  resumedFrom?: number;
  /** Bytes of the file received when it ended. */
  bytes?: number;
  /** The error it ended with. */
  error?: TransferError;
  /** When it started. */
  startedAt: Date;
  /** When it ended. */
  finishedAt?: Date;
}

/** What a {@linkcode TransferQueue} reports through `onEvent`. */
export type QueueEvent =
  | {
    /** An attempt began, from `offset` (above 0 when it resumes a `.part`). */
    type: "start";
    /** The transfer. */
    id: number;
    /** The attempt's number, counted across processes. */
    attempt: number;
    /** The first byte asked for. */
    offset: number;
  }
  | {
    /** Bytes arrived. */
    type: "progress";
    /** The transfer. */
    id: number;
    /** Bytes of the file received so far. */
    bytes: number;
    /** The file's size, when known. */
    total: number | undefined;
  }
  | {
    /** An attempt failed with a transient error; the next follows after `delayMs`. */
    type: "retry";
    /** The transfer. */
    id: number;
    /** The number of the attempt that failed. */
    attempt: number;
    /** The wait before the next one. */
    delayMs: number;
    /** Why it failed. */
    error: unknown;
  }
  | {
    /** The `.part` was discarded (the resource changed or ignored the range) and the file starts again from 0. */
    type: "restart";
    /** The transfer. */
    id: number;
    /** Why. */
    error: unknown;
  }
  | {
    /** The transfer moved on to its next mirror. */
    type: "failover";
    /** The transfer. */
    id: number;
    /** The mirror now used. */
    url: string;
    /** Why the previous one was left. */
    error: unknown;
  }
  | {
    /** The file is complete, verified and in place. */
    type: "done";
    /** The transfer. */
    id: number;
    /** What {@linkcode download} returned. */
    receipt: DownloadReceipt;
  }
  | {
    /** The transfer failed for good (a permanent error, or attempts used up). */
    type: "failed";
    /** The transfer. */
    id: number;
    /** The error, as recorded. */
    error: TransferError;
  }
  | {
    /** The transfer was cancelled and its `.part` removed. */
    type: "cancelled";
    /** The transfer. */
    id: number;
  }
  | {
    /** `run()` was stopped by its signal: the transfer is queued again and resumes from its `.part`. */
    type: "stopped";
    /** The transfer. */
    id: number;
    /** Bytes of the file received. */
    bytes: number;
  }
  | {
    /** A transfer left running by a process that died was found: queued again, or failed as a duplicate. */
    type: "redrive";
    /** The transfer. */
    id: number;
    /** Its state now. */
    state: "queued" | "failed";
  };

/** Options of {@linkcode TransferQueue.open}. */
export interface TransferQueueOptions {
  /** The database file, created if missing. Defaults to `"sluice.db"`; `":memory:"` keeps nothing. */
  db?: string;
  /** The most transfers this queue runs at once. Defaults to 3. */
  maxConcurrent?: number;
  /**
   * The policy for a transfer's attempts: `maxAttempts` (default 5) counts
   * attempts across processes; the backoff, `deadlineMs` (per `run()`),
   * `shouldRetry`, `onRetry` and `budget` apply as in `retry()`.
   * Integrity and limit errors are never retried.
   */
  retry?: Omit<RetryOptions, "signal">;
  /** Options for every {@linkcode download}: `maxBytes`, `checkpointBytes`, `stallTimeoutMs`, its own `retry` while no bytes arrive, `fetch`, … */
  download?: Omit<
    DownloadOptions,
    "signal" | "headers" | "sha256" | "size" | "onProgress"
  >;
  /**
   * Called on every {@linkcode QueueEvent}. It should not throw: an error it
   * throws is reported with `reportError`, like one from an event listener.
   */
  onEvent?: (event: QueueEvent) => void;
}

/** Options of {@linkcode TransferQueue.run}. */
export interface QueueRunOptions {
  /** Aborting it stops every running transfer cleanly (queued again, resumable) and resolves `run()`. */
  signal?: AbortSignal;
}

/** What one {@linkcode TransferQueue.run} did. */
export interface RunReport {
  /** Transfers it completed. */
  done: number;
  /** Transfers that failed for good. */
  failed: number;
  /** Running transfers that were cancelled. */
  cancelled: number;
  /** Transfers stopped by the signal and queued again. */
  stopped: number;
  /** Whether the signal (or `close()`) ended the run. */
  aborted: boolean;
}

/** Options of {@linkcode TransferQueue.list}. */
export interface ListOptions {
  /** Only transfers in this state, or in one of these. */
  state?: TransferState | readonly TransferState[];
}

interface Row {
  id: number;
  dest: string;
  urls: string;
  sha256: string | null;
  size: number | null;
  headers: string;
  state: TransferState;
  attempts: number;
  bytes_done: number;
  total: number | null;
  resumed_from: number | null;
  restarts: number;
  error_type: string | null;
  error_message: string | null;
  owner: string | null;
  result_url: string | null;
  result_sha256: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempt_started_at: number | null;
}

interface AttemptRow {
  attempt: number;
  outcome: AttemptOutcome;
  resumed_from: number | null;
  bytes: number | null;
  error_type: string | null;
  error_message: string | null;
  started_at: number;
  finished_at: number | null;
}

/** A transfer failed while claiming, because its attempts were used up. */
interface Failed {
  id: number;
  error: TransferError;
}

/** A row this process claimed. */
interface Claim {
  row: Row;
}

/** How far a running transfer got. */
interface Progress {
  bytes: number;
  total: number | undefined;
  resumedFrom: number | undefined;
  restarts: number;
}

/** A transfer this process runs, and its attempt under way. */
interface Running {
  id: number;
  attempt: number;
  /** When the attempt under way started. */
  attemptStartedAt: number;
  /** Whether an attempt is under way (not between a failure and the next). */
  inAttempt: boolean;
  progress: Progress;
  /** When progress was last written (`performance.now()`). */
  lastWrite: number;
  /** Aborted when the row is taken from this process (cancelled). */
  controller: AbortController;
}

/**
 * Every {@linkcode TransferState}, in the order a transfer can pass through
 * them.
 *
 * @example Check a state read from a command line
 * ```ts
 * import { TRANSFER_STATES, type TransferState } from "@sluice/sluice/queue";
 * import assert from "node:assert/strict";
 *
 * const isState = (text: string): text is TransferState =>
 *   (TRANSFER_STATES as readonly string[]).includes(text);
 * assert.equal(isState("failed"), true);
 * assert.equal(isState("paused"), false);
 * ```
 */
export const TRANSFER_STATES: readonly TransferState[] = [
  "queued",
  "running",
  "done",
  "failed",
  "cancelled",
];
const DEFAULT_MAX_ATTEMPTS = 5;
const PROGRESS_WRITE_MS = 1000;
const BUSY_TIMEOUT_MS = 10_000;
const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** The row is no longer this process's to write: cancelled, or taken over. */
class RowLost extends Error {
  readonly retryable = false;
  constructor() {
    super("Cannot go on: the transfer's row changed under this process");
  }
}

/**
 * A durable queue of downloads on embedded SQLite, run with bounded
 * concurrency, retried, and re-driven after a crash.
 *
 * - **One transfer per destination.** Adding a destination that has a live
 *   (queued or running) transfer returns that transfer's id, since two would
 *   share one `.part`; so does adding one whose latest transfer finished,
 *   unless `{ replace: true }` asks for a new one.
 * - **Crash re-drive.** Each open queue holds a lock file in `<db>-owners/`
 *   and stamps the rows it runs with its owner id. `open()` and `run()` put
 *   the rows of owners whose lock is free (the process died) back in the
 *   queue; when several such rows share a destination, the one updated last
 *   is re-driven and the others fail as `"DuplicateDestination"`.
 * - **Attempts.** An attempt is counted in the database before it starts, so
 *   a crash counts too; a clean stop by the signal gives it back. Permanent
 *   errors (an `HttpError` such as 404, `IntegrityError`, `LimitError`) fail
 *   the transfer at once and remove its `.part`; transient ones (5xx,
 *   resets, stalls) are retried until `maxAttempts` is used up, and the
 *   `.part` stays for {@linkcode TransferQueue.retry} to resume.
 * - **Several processes** may share one database: each claims queued rows in
 *   a transaction and runs at most its own `maxConcurrent`. SQLite calls are
 *   synchronous and short; one that finds the database locked waits up to
 *   10 s (blocking).
 *
 * The database runs in WAL mode. What a caller is told is recorded (an
 * add, a cancel, a retry) is fsynced before the call returns; the run's own
 * bookkeeping is committed without an fsync (`synchronous = NORMAL`), so a
 * killed process loses none of it, and a power cut may roll back the last
 * state changes, which re-drive and resume repair (a done transfer may run
 * once more). The run writes one transaction per transfer: the one that
 * ends a transfer also claims the next. Add many transfers with
 * {@linkcode TransferQueue.addAll}: one fsynced commit for all.
 *
 * @example Cancel, then retry
 * ```ts
 * import { TransferQueue } from "@sluice/sluice/queue";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using queue = await TransferQueue.open({ db: `${dir}/queue.db` });
 * const id = await queue.add({ urls: "http://127.0.0.1:9/never", dest: `${dir}/file` });
 * assert.equal(await queue.cancel(id), true);
 * assert.equal(queue.get(id)?.state, "cancelled");
 * assert.equal(queue.retry(id), true);
 * assert.equal(queue.get(id)?.state, "queued");
 * assert.equal(await queue.add({ urls: "http://127.0.0.1:9/other", dest: `${dir}/file` }), id);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class TransferQueue implements AsyncDisposable {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #owner: string;
  readonly #ownerLock: OwnerLock | undefined;
  readonly #semaphore: Semaphore;
  readonly #retry: Omit<RetryOptions, "signal">;
  readonly #maxAttempts: number;
  readonly #download: TransferQueueOptions["download"];
  readonly #onEvent: ((event: QueueEvent) => void) | undefined;
  readonly #statements: Map<string, StatementSync> = new Map();
  /** Transfers this process runs, by id. */
  readonly #live: Map<
    number,
    { controller: AbortController; settled: Promise<void> }
  > = new Map();
  #run: { stop: AbortController; done: Promise<RunReport> } | undefined;
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    db: DatabaseSync,
    path: string,
    ownerLock: OwnerLock | undefined,
    options: TransferQueueOptions,
    maxConcurrent: number,
    maxAttempts: number,
  ) {
    this.#db = db;
    this.#path = path;
    this.#ownerLock = ownerLock;
    this.#owner = ownerLock?.owner ?? randomOwner();
    this.#semaphore = new Semaphore(maxConcurrent);
    this.#retry = options.retry ?? {};
    this.#maxAttempts = maxAttempts;
    this.#download = options.download;
    this.#onEvent = options.onEvent;
  }

  /**
   * Opens (creating or migrating) the queue database at `options.db`, takes
   * this queue's owner lock, and re-drives transfers that a dead process
   * left running.
   *
   * @param options The database, the concurrency, the retry policy, download options and the event callback.
   * @returns The open queue; close it with `await using` or {@linkcode TransferQueue.close}.
   * @throws {RangeError} When `maxConcurrent` or `retry.maxAttempts` is not an integer >= 1.
   * @throws {UnsupportedError} When the database was written by a newer version with a newer schema.
   *
   * @example Crash re-drive
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const db = `${dir}/queue.db`;
   * {
   *   await using queue = await TransferQueue.open({ db });
   *   await queue.add({ urls: "http://127.0.0.1:9/f", dest: `${dir}/f` });
   * }
   * // A queue opened later finds the transfer still queued.
   * await using queue = await TransferQueue.open({ db });
   * assert.equal(queue.list({ state: "queued" }).length, 1);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async open(
    options: TransferQueueOptions = {},
  ): Promise<TransferQueue> {
    const maxConcurrent = options.maxConcurrent ?? 3;
    const maxAttempts = options.retry?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    for (
      const [name, value] of [
        ["maxConcurrent", maxConcurrent],
        ["retry.maxAttempts", maxAttempts],
      ] as const
    ) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot open the transfer queue: ${name} must be an integer >= 1, got ${value}`,
        );
      }
    }
    const inMemory = (options.db ?? "sluice.db") === ":memory:";
    const path = inMemory ? ":memory:" : resolve(options.db ?? "sluice.db");
    const db = new DatabaseSync(path);
    let ownerLock: OwnerLock | undefined;
    try {
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // A database this code refuses is left as it was.
      knownVersion(db, path);
      if (!inMemory) db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      migrate(db, path);
      if (!inMemory) ownerLock = await OwnerLock.take(`${path}-owners`);
      const queue = new TransferQueue(
        db,
        path,
        ownerLock,
        options,
        maxConcurrent,
        maxAttempts,
      );
      queue.#redrive();
      ownerLock?.pruneDead();
      return queue;
    } catch (error) {
      db.close();
      ownerLock?.release();
      throw error;
    }
  }

  /** The database file (absolute), or `":memory:"`. */
  get path(): string {
    return this.#path;
  }

  /**
   * Queues a download and returns its id, or returns the id of the
   * destination's live transfer (see the class notes on `replace`).
   *
   * The destination is made absolute and its directory's symlinks resolved,
   * so two spellings of one file are one transfer.
   *
   * @param spec The URLs, the destination, and the expected digest, size and headers.
   * @param options `replace` to queue again after a finished transfer.
   * @returns The transfer's id.
   * @throws {TypeError} When a URL is invalid or not `http:`/`https:`, `dest` is empty, `sha256` is not 64 hex digits or a header is invalid.
   * @throws {RangeError} When `size` is not an integer >= 0.
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * await using queue = await TransferQueue.open({ db: `${dir}/queue.db` });
   * const id = await queue.add({ urls: ["http://127.0.0.1:9/a", "http://127.0.0.1:10/a"], dest: `${dir}/a`, size: 5 });
   * assert.equal(await queue.add({ urls: "http://127.0.0.1:9/a", dest: `${dir}/./a` }), id);
   * assert.deepEqual(queue.get(id)?.urls, ["http://127.0.0.1:9/a", "http://127.0.0.1:10/a"]);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  add(spec: TransferSpec, options: AddOptions = {}): Promise<number> {
    return this.addAll([spec], options).then(([id]) => id!);
  }

  /**
   * Queues several downloads in one transaction, all or none, and returns
   * their ids in order: much cheaper than one {@linkcode TransferQueue.add}
   * per transfer when there are many. Each spec is treated as `add()` treats
   * it, so two specs for one destination get one id.
   *
   * @param specs What to download.
   * @param options `replace` to queue again after finished transfers.
   * @returns The transfers' ids, one per spec.
   * @throws {TypeError} When a spec is invalid (see {@linkcode TransferQueue.add}); nothing is queued.
   * @throws {RangeError} When a `size` is not an integer >= 0; nothing is queued.
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using queue = await TransferQueue.open({ db: ":memory:" });
   * const ids = await queue.addAll([
   *   { urls: "http://127.0.0.1:9/a", dest: "/tmp/a" },
   *   { urls: "http://127.0.0.1:9/b", dest: "/tmp/b" },
   *   { urls: "http://127.0.0.1:9/a", dest: "/tmp/a" },
   * ]);
   * assert.deepEqual(ids, [1, 2, 1]);
   * await assert.rejects(queue.addAll([{ urls: "http://127.0.0.1:9/c", dest: "/tmp/c" }, { urls: [], dest: "/tmp/d" }]), TypeError);
   * assert.equal(queue.list().length, 2);
   * ```
   */
  // deno-lint-ignore require-await -- errors reject, as callers of an async API expect
  async addAll(
    specs: readonly TransferSpec[],
    options: AddOptions = {},
  ): Promise<number[]> {
    this.#assertOpen("add a transfer");
    const directories = new Map<string, string>();
    const rows = specs.map((spec) => checkSpec(spec, directories));
    // The caller's word that these are recorded: this commit is fsynced.
    const ids = this.#transaction(() =>
      rows.map((row) => {
        const live = this.#sql(
          "SELECT id FROM transfers WHERE dest = ? AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
        ).get(row.dest) as { id: number } | undefined;
        if (live) return live.id;
        if (!options.replace) {
          const latest = this.#sql(
            "SELECT id FROM transfers WHERE dest = ? ORDER BY id DESC LIMIT 1",
          ).get(row.dest) as { id: number } | undefined;
          if (latest) return latest.id;
        }
        const now = Date.now();
        const { id } = this.#sql(
          `INSERT INTO transfers (dest, urls, sha256, size, headers, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'queued', ?, ?) RETURNING id`,
        ).get(
          row.dest,
          row.urls,
          row.sha256,
          row.size,
          row.headers,
          now,
          now,
        ) as { id: number };
        return id;
      }), { durable: true });
    this.#notify();
    return ids;
  }

  /**
   * Runs queued transfers, at most `maxConcurrent` at once, until none is
   * left or the signal aborts. Transfers added while it runs are picked up.
   *
   * On abort, running downloads stop after a last checkpoint, go back to
   * `queued` with their attempt given back, and resume from their `.part` on
   * the next run; `run()` resolves once they have stopped.
   *
   * @param options The signal that stops the run.
   * @returns What the run did.
   * @throws {TypeError} When the queue is closed or already running.
   *
   * @example Stop and resume
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
   *   new Response("payload"));
   * const dir = await Deno.makeTempDir();
   * await using queue = await TransferQueue.open({ db: `${dir}/queue.db` });
   * await queue.add({ urls: `http://127.0.0.1:${server.addr.port}/`, dest: `${dir}/f` });
   * const stopped = await queue.run({ signal: AbortSignal.abort() });
   * assert.equal(stopped.aborted, true);
   * assert.equal((await queue.run()).done, 1);
   * assert.equal(await Deno.readTextFile(`${dir}/f`), "payload");
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  // deno-lint-ignore require-await -- errors reject, as callers of an async API expect
  async run(options: QueueRunOptions = {}): Promise<RunReport> {
    this.#assertOpen("run the queue");
    if (this.#run) {
      throw new TypeError("Cannot run the queue: it is already running");
    }
    const stop = new AbortController();
    const { signal } = options;
    const onAbort = () => stop.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    const done = this.#loop(stop.signal).finally(() => {
      signal?.removeEventListener("abort", onAbort);
      this.#run = undefined;
    });
    this.#run = { stop, done };
    return done;
  }

  /**
   * Cancels a queued or running transfer and removes its `.part`. A
   * transfer this queue runs is stopped before `cancel()` resolves; one run
   * by another process stops at its next progress record (within about a
   * second while bytes flow).
   *
   * @param id The transfer.
   * @returns `true` when it was queued or running, `false` otherwise (unknown, or already finished).
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using queue = await TransferQueue.open({ db: ":memory:" });
   * const id = await queue.add({ urls: "http://127.0.0.1:9/f", dest: "/tmp/never-downloaded" });
   * assert.equal(await queue.cancel(id), true);
   * assert.equal(await queue.cancel(id), false);
   * assert.equal((await queue.run()).done, 0);
   * ```
   */
  async cancel(id: number): Promise<boolean> {
    this.#assertOpen("cancel a transfer");
    const now = Date.now();
    const before = this.#transaction(() => {
      const row = this.#sql(
        "SELECT state, owner, dest FROM transfers WHERE id = ?",
      ).get(id) as Pick<Row, "state" | "owner" | "dest"> | undefined;
      if (row?.state !== "queued" && row?.state !== "running") return undefined;
      this.#sql(
        `UPDATE transfers SET state = 'cancelled', owner = NULL, finished_at = ?, updated_at = ?
         WHERE id = ?`,
      ).run(now, now, id);
      return row;
    }, { durable: true });
    if (before === undefined) return false;
    const live = this.#live.get(id);
    if (live) {
      // The drive sees its row gone, removes the .part and reports.
      live.controller.abort(new RowLost());
      await live.settled;
    } else if (before.state === "queued") {
      await discardPart(before.dest);
      this.#emit({ type: "cancelled", id });
    }
    return true;
  }

  /**
   * Queues a failed or cancelled transfer again, with a fresh attempt
   * budget. A failed transfer resumes from its `.part` when one is left.
   *
   * @param id The transfer.
   * @returns `true` when it was queued again; `false` when it is unknown, not failed or cancelled, or another live transfer now has its destination.
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using queue = await TransferQueue.open({ db: ":memory:" });
   * const id = await queue.add({ urls: "http://127.0.0.1:9/f", dest: "/tmp/never-downloaded" });
   * assert.equal(queue.retry(id), false); // still queued
   * ```
   */
  retry(id: number): boolean {
    this.#assertOpen("retry a transfer");
    const now = Date.now();
    const queued = this.#transaction(() => {
      const row = this.#sql("SELECT state, dest FROM transfers WHERE id = ?")
        .get(id) as Pick<Row, "state" | "dest"> | undefined;
      if (row?.state !== "failed" && row?.state !== "cancelled") return false;
      const other = this.#sql(
        "SELECT id FROM transfers WHERE dest = ? AND state IN ('queued', 'running') LIMIT 1",
      ).get(row.dest);
      if (other !== undefined) return false;
      // Its last attempt goes to the history first.
      this.#sql(
        `INSERT INTO transfer_attempts (transfer_id, attempt, outcome, resumed_from, bytes,
           error_type, error_message, started_at, finished_at)
         SELECT id, attempts, state, resumed_from, bytes_done, error_type, error_message,
           attempt_started_at, coalesce(finished_at, updated_at)
         FROM transfers WHERE id = ? AND attempt_started_at IS NOT NULL`,
      ).run(id);
      this.#sql(
        `UPDATE transfers SET state = 'queued', attempts = 0, error_type = NULL, error_message = NULL,
           owner = NULL, attempt_started_at = NULL, finished_at = NULL, updated_at = ?
         WHERE id = ?`,
      ).run(now, id);
      return true;
    }, { durable: true });
    if (queued) this.#notify();
    return queued;
  }

  /**
   * The transfer with this id, as recorded.
   *
   * @param id The transfer.
   * @returns It, or `undefined` when there is none.
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using queue = await TransferQueue.open({ db: ":memory:" });
   * const id = await queue.add({ urls: "http://127.0.0.1:9/f", dest: "/tmp/f", sha256: "AB".repeat(32) });
   * const transfer = queue.get(id)!;
   * assert.equal(transfer.state, "queued");
   * assert.equal(transfer.sha256, "ab".repeat(32));
   * assert.equal(transfer.attempts, 0);
   * assert.equal(queue.get(id + 1), undefined);
   * ```
   */
  get(id: number): Transfer | undefined {
    this.#assertOpen("read the queue");
    const row = this.#sql("SELECT * FROM transfers WHERE id = ?").get(id) as
      | Row
      | undefined;
    return row && transferOf(row);
  }

  /**
   * The transfers, oldest first, optionally only those in some states.
   *
   * @param options The states to list.
   * @returns The transfers.
   * @throws {TypeError} When a state is not a {@linkcode TransferState}.
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using queue = await TransferQueue.open({ db: ":memory:" });
   * await queue.add({ urls: "http://127.0.0.1:9/a", dest: "/tmp/a" });
   * const b = await queue.add({ urls: "http://127.0.0.1:9/b", dest: "/tmp/b" });
   * await queue.cancel(b);
   * assert.equal(queue.list().length, 2);
   * assert.deepEqual(queue.list({ state: ["cancelled", "failed"] }).map((t) => t.id), [b]);
   * ```
   */
  list(options: ListOptions = {}): Transfer[] {
    this.#assertOpen("read the queue");
    const states = options.state === undefined
      ? TRANSFER_STATES
      : typeof options.state === "string"
      ? [options.state]
      : options.state;
    for (const state of states) {
      if (!TRANSFER_STATES.includes(state)) {
        throw new TypeError(
          `Cannot list transfers: unknown state ${JSON.stringify(state)}`,
        );
      }
    }
    const rows = this.#sql(
      `SELECT * FROM transfers WHERE state IN (SELECT value FROM json_each(?)) ORDER BY id`,
    ).all(JSON.stringify(states)) as unknown as Row[];
    return rows.map(transferOf);
  }

  /**
   * Every attempt of a transfer, oldest first: when it ran, from which
   * offset, how far it got and how it ended. The last is the one under way
   * (`"running"`) or the one that ended the transfer; a stopped attempt's
   * number comes again, since a stop gives its attempt back.
   *
   * @param id The transfer.
   * @returns Its attempts (empty for an unknown id or one never run).
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
   *   new Response("gone", { status: 404 }));
   * await using queue = await TransferQueue.open({ db: ":memory:" });
   * const dir = await Deno.makeTempDir();
   * const id = await queue.add({ urls: `http://127.0.0.1:${server.addr.port}/`, dest: `${dir}/f` });
   * await queue.run();
   * const [attempt] = queue.history(id);
   * assert.equal(attempt?.outcome, "failed");
   * assert.equal(attempt?.error?.type, "HttpError");
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  history(id: number): AttemptRecord[] {
    this.#assertOpen("read the queue");
    const rows = this.#sql(
      `SELECT attempt, outcome, resumed_from, bytes, error_type, error_message, started_at, finished_at
       FROM transfer_attempts WHERE transfer_id = ? ORDER BY id`,
    ).all(id) as unknown as AttemptRow[];
    // The attempt under way, or the last one, lives in the transfer's row.
    const current = this.#sql(
      `SELECT attempts AS attempt, state AS outcome, resumed_from, bytes_done AS bytes,
         error_type, error_message, attempt_started_at AS started_at, finished_at
       FROM transfers WHERE id = ? AND attempt_started_at IS NOT NULL`,
    ).get(id) as AttemptRow | undefined;
    if (current) rows.push(current);
    return rows.map((row) => ({
      attempt: row.attempt,
      outcome: row.outcome,
      ...(row.resumed_from === null ? {} : { resumedFrom: row.resumed_from }),
      ...(row.bytes === null ? {} : { bytes: row.bytes }),
      ...(row.error_type === null || row.outcome === "done" ? {} : {
        error: { type: row.error_type, message: row.error_message ?? "" },
      }),
      startedAt: new Date(row.started_at),
      ...(row.finished_at === null || row.outcome === "running"
        ? {}
        : { finishedAt: new Date(row.finished_at) }),
    }));
  }

  /**
   * Stops a run in progress (as its signal would), closes the database and
   * releases the owner lock. Closing twice does nothing.
   *
   * @example
   * ```ts
   * import { TransferQueue } from "@sluice/sluice/queue";
   * import assert from "node:assert/strict";
   *
   * const queue = await TransferQueue.open({ db: ":memory:" });
   * await queue.close();
   * await assert.rejects(queue.add({ urls: "http://127.0.0.1:9/", dest: "/tmp/f" }), TypeError);
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#run) {
        this.#run.stop.abort(
          new DOMException("The queue was closed", "AbortError"),
        );
        await this.#run.done.catch(() => {});
      }
      this.#db.close();
      this.#ownerLock?.release();
    })();
    return this.#closing;
  }

  /** Same as {@linkcode TransferQueue.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // -------------------------------------------------------------------------
  // Running

  async #loop(signal: AbortSignal): Promise<RunReport> {
    const report: RunReport = {
      done: 0,
      failed: 0,
      cancelled: 0,
      stopped: 0,
      aborted: false,
    };
    const workers = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    this.#redrive();
    try {
      while (!signal.aborted && failure === undefined) {
        const permit = await this.#semaphore.acquire(1, { signal }).catch(
          () => undefined,
        );
        if (permit === undefined) break;
        // A worker may have failed or the signal aborted while we waited.
        if (signal.aborted || failure !== undefined) {
          permit.release();
          break;
        }
        const claim = this.#claim(report);
        if (claim === undefined) {
          permit.release();
          if (workers.size === 0) break;
          await this.#idle(workers, signal);
          continue;
        }
        const worker = this.#work(claim, signal, report)
          .catch((error) => {
            failure ??= { error };
          })
          .finally(() => {
            permit.release();
            workers.delete(worker);
          });
        workers.add(worker);
      }
    } finally {
      await Promise.all(workers);
    }
    if (failure) throw failure.error;
    report.aborted = signal.aborted;
    return report;
  }

  /**
   * Drives transfers one after another on one permit: the transaction that
   * ends a transfer also claims the next, one commit instead of two.
   */
  async #work(claim: Claim, signal: AbortSignal, report: RunReport) {
    let next: Claim | undefined = claim;
    while (next !== undefined) next = await this.#drive(next, signal, report);
  }

  /** Waits until a worker ends, a transfer is added or the run stops. */
  async #idle(workers: Set<Promise<void>>, signal: AbortSignal): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const onAbort = () => resolve();
    this.#wake = resolve;
    signal.addEventListener("abort", onAbort, { once: true });
    await Promise.race([promise, ...workers]);
    signal.removeEventListener("abort", onAbort);
    this.#wake = undefined;
  }

  #notify(): void {
    this.#wake?.();
  }

  /** Claims the next transfer in a transaction of its own. */
  #claim(report: RunReport): Claim | undefined {
    const failed: Failed[] = [];
    const claim = this.#transaction(() => this.#claimNext(failed));
    this.#reportFailed(failed, report);
    return claim;
  }

  /**
   * Inside a transaction: takes the oldest queued transfer for this owner,
   * failing on the way those whose attempts are used up (into `failed`).
   */
  #claimNext(failed: Failed[]): Claim | undefined {
    while (true) {
      const row = this.#sql(
        "SELECT * FROM transfers WHERE state = 'queued' ORDER BY id LIMIT 1",
      ).get() as Row | undefined;
      if (row === undefined) return undefined;
      const now = Date.now();
      if (row.attempts >= this.#maxAttempts) {
        const error = {
          type: "RetryError",
          message:
            `Cannot download ${row.dest}: all ${row.attempts} attempts are used up, the last ${
              row.error_message === null
                ? "cut off when its process died"
                : `failed with: ${row.error_message}`
            }`,
        };
        this.#sql(
          `UPDATE transfers SET state = 'failed', error_type = ?, error_message = ?,
             finished_at = ?, updated_at = ? WHERE id = ?`,
        ).run(error.type, error.message, now, now, row.id);
        failed.push({ id: row.id, error });
        continue;
      }
      this.#sql(
        `UPDATE transfers SET state = 'running', owner = ?, attempts = attempts + 1,
           resumed_from = NULL, started_at = coalesce(started_at, ?),
           attempt_started_at = ?, updated_at = ? WHERE id = ?`,
      ).run(this.#owner, now, now, now, row.id);
      return {
        row: {
          ...row,
          state: "running",
          attempts: row.attempts + 1,
          attempt_started_at: now,
        },
      };
    }
  }

  #reportFailed(failed: readonly Failed[], report: RunReport): void {
    for (const { id, error } of failed) {
      report.failed++;
      this.#emit({ type: "failed", id, error });
    }
  }

  /**
   * Runs one claimed transfer to its end: done, failed, cancelled or
   * stopped. Returns the next transfer, claimed as this one ended, while the
   * run goes on.
   */
  async #drive(
    claim: Claim,
    runSignal: AbortSignal,
    report: RunReport,
  ): Promise<Claim | undefined> {
    const { row } = claim;
    const controller = new AbortController();
    const { promise: settled, resolve: settle } = Promise.withResolvers<void>();
    this.#live.set(row.id, { controller, settled });
    const run: Running = {
      id: row.id,
      attempt: row.attempts,
      attemptStartedAt: row.attempt_started_at ?? Date.now(),
      inAttempt: true,
      progress: {
        bytes: row.bytes_done,
        total: row.total ?? undefined,
        resumedFrom: undefined,
        restarts: row.restarts,
      },
      lastWrite: performance.now(),
      controller,
    };
    try {
      const ended = await this.#attempts(row, run, runSignal);
      return await this.#end(row, run, ended, runSignal, report);
    } finally {
      this.#live.delete(row.id);
      settle();
    }
  }

  /** Calls download() until it succeeds, fails for good or is stopped. */
  async #attempts(
    row: Row,
    run: Running,
    runSignal: AbortSignal,
  ): Promise<{ receipt: DownloadReceipt } | { thrown: unknown }> {
    const headers = JSON.parse(row.headers) as [string, string][];
    const policy = this.#retry;
    const shouldRetry = policy.shouldRetry ?? isRetryable;
    let first = true;
    let attemptRun: Promise<DownloadReceipt> | undefined;
    try {
      const receipt = await retry(({ signal }) => {
        if (!first) Object.assign(run, this.#nextAttempt(row.id));
        first = false;
        run.inAttempt = true;
        attemptRun = download(JSON.parse(row.urls) as string[], row.dest, {
          ...this.#download,
          signal,
          ...(headers.length > 0 ? { headers } : {}),
          ...(row.sha256 === null ? {} : { sha256: row.sha256 }),
          ...(row.size === null ? {} : { size: row.size }),
          onProgress: (event) => this.#follow(run, event),
        });
        return attemptRun;
      }, {
        ...policy,
        maxAttempts: this.#maxAttempts - row.attempts + 1,
        signal: AbortSignal.any([runSignal, run.controller.signal]),
        shouldRetry: (error, context) =>
          !(error instanceof IntegrityError || error instanceof LimitError ||
            error instanceof RowLost) && shouldRetry(error, context),
        onRetry: (event) => {
          this.#transaction(() =>
            this.#archiveAttempt(run, "retried", event.error)
          );
          run.inAttempt = false;
          const { delayMs, error } = event;
          const attempt = run.attempt;
          this.#emit({ type: "retry", id: row.id, attempt, delayMs, error });
          policy.onRetry?.(event);
        },
      });
      return { receipt };
    } catch (thrown) {
      // retry() rejects as soon as the signal aborts; the download still
      // holds its .part until its last checkpoint is written.
      await attemptRun?.catch(() => {});
      return { thrown };
    }
  }

  /** Records how a transfer ended, reports it, and claims the next while the run goes on. */
  async #end(
    row: Row,
    run: Running,
    ended: { receipt: DownloadReceipt } | { thrown: unknown },
    runSignal: AbortSignal,
    report: RunReport,
  ): Promise<Claim | undefined> {
    const { id } = row;
    const failed: Failed[] = [];
    if ("receipt" in ended) {
      const { receipt } = ended;
      Object.assign(run.progress, {
        bytes: receipt.bytes,
        total: receipt.bytes,
        resumedFrom: receipt.resumedFrom,
      });
      const next = this.#finish(run, "done", { receipt, failed, runSignal });
      if (next === false) return await this.#lost(id, report);
      report.done++;
      this.#emit({ type: "done", id, receipt });
      this.#reportFailed(failed, report);
      return next;
    }
    const error = unwrapRetryError(ended.thrown);
    const outcome = runSignal.aborted ? "stopped" : "failed";
    const next = run.controller.signal.aborted
      ? false
      : this.#finish(run, outcome, { error, failed, runSignal });
    if (next === false) return await this.#lost(id, report);
    if (outcome === "stopped") {
      report.stopped++;
      this.#emit({ type: "stopped", id, bytes: run.progress.bytes });
      return undefined;
    }
    // A permanent error will come again: its .part is only litter. After
    // transient ones it stays, for retry() to resume.
    if (!isRetryable(error)) await discardPart(row.dest);
    report.failed++;
    this.#emit({ type: "failed", id, error: recordOf(error) });
    this.#reportFailed(failed, report);
    return next;
  }

  /** Follows a download's events: reports them, and records progress about once a second. */
  #follow(run: Running, event: DownloadEvent): void {
    const { id, progress } = run;
    switch (event.type) {
      case "start":
        progress.resumedFrom = event.offset;
        progress.bytes = event.offset;
        this.#emit({
          type: "start",
          id,
          attempt: run.attempt,
          offset: event.offset,
        });
        break;
      case "progress": {
        progress.bytes = event.bytes;
        progress.total = event.total;
        if (this.#onEvent) {
          const { bytes, total } = event;
          this.#emit({ type: "progress", id, bytes, total });
        }
        const now = performance.now();
        if (now - run.lastWrite < PROGRESS_WRITE_MS) break;
        run.lastWrite = now;
        // Cancelled, here or by another process: stop now.
        if (!this.#recordProgress(id, progress)) {
          run.controller.abort(new RowLost());
        }
        break;
      }
      case "restart":
        progress.restarts++;
        this.#emit({ type: "restart", id, error: event.error });
        break;
      case "failover": {
        const { url, error } = event;
        this.#emit({ type: "failover", id, url, error });
        break;
      }
    }
  }

  /** Counts the next attempt of a transfer this process runs. */
  #nextAttempt(id: number): { attempt: number; attemptStartedAt: number } {
    const now = Date.now();
    const row = this.#sql(
      `UPDATE transfers SET attempts = attempts + 1, resumed_from = NULL,
         attempt_started_at = ?, updated_at = ?
       WHERE id = ? AND owner = ? AND state = 'running' RETURNING attempts`,
    ).get(now, now, id, this.#owner) as { attempts: number } | undefined;
    if (row === undefined) throw new RowLost();
    return { attempt: row.attempts, attemptStartedAt: now };
  }

  /** Records how far a running transfer got; `false` when the row is no longer this process's. */
  #recordProgress(id: number, progress: Progress): boolean {
    const { changes } = this.#sql(
      `UPDATE transfers SET bytes_done = ?, total = ?, resumed_from = ?, restarts = ?, updated_at = ?
       WHERE id = ? AND owner = ? AND state = 'running'`,
    ).run(
      progress.bytes,
      progress.total ?? null,
      progress.resumedFrom ?? null,
      progress.restarts,
      Date.now(),
      id,
      this.#owner,
    );
    return changes > 0;
  }

  /**
   * Inside a transaction: moves the attempt under way to the history, when
   * it ends without ending the transfer (retried, stopped), with its error.
   */
  #archiveAttempt(
    run: Running,
    outcome: "retried" | "stopped",
    error?: unknown,
  ): void {
    const record = error === undefined ? undefined : recordOf(error);
    const now = Date.now();
    const { progress } = run;
    this.#sql(
      `INSERT INTO transfer_attempts (transfer_id, attempt, owner, outcome, resumed_from, bytes,
         error_type, error_message, started_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      run.id,
      run.attempt,
      this.#owner,
      outcome,
      progress.resumedFrom ?? null,
      progress.bytes,
      record?.type ?? null,
      record?.message ?? null,
      run.attemptStartedAt,
      now,
    );
    this.#sql(
      `UPDATE transfers SET attempt_started_at = NULL,
         error_type = coalesce(?, error_type), error_message = coalesce(?, error_message),
         updated_at = ? WHERE id = ?`,
    ).run(record?.type ?? null, record?.message ?? null, now, run.id);
  }

  /**
   * Moves a transfer this process runs to its end state (`stopped` means
   * queued again, with an attempt under way given back) and, after a done
   * or failed one while the run goes on, claims the next in the same
   * transaction. Returns that claim, or `false`, changing nothing, when the
   * row is no longer this process's.
   */
  #finish(
    run: Running,
    outcome: "done" | "failed" | "stopped",
    end: {
      error?: unknown;
      receipt?: DownloadReceipt;
      failed: Failed[];
      runSignal: AbortSignal;
    },
  ): Claim | undefined | false {
    const { progress, inAttempt } = run;
    const { receipt } = end;
    const error = outcome === "failed" ? end.error : undefined;
    const record = outcome === "failed" ? recordOf(error) : undefined;
    return this.#transaction(() => {
      const now = Date.now();
      const { changes } = this.#sql(
        `UPDATE transfers SET
           state = ?, owner = NULL, attempts = attempts - ?,
           bytes_done = ?, total = ?, resumed_from = ?, restarts = ?,
           error_type = CASE WHEN ? THEN NULL ELSE coalesce(?, error_type) END,
           error_message = CASE WHEN ? THEN NULL ELSE coalesce(?, error_message) END,
           result_url = ?, result_sha256 = ?,
           finished_at = ?, updated_at = ?
         WHERE id = ? AND owner = ? AND state = 'running'`,
      ).run(
        outcome === "stopped" ? "queued" : outcome,
        outcome === "stopped" && inAttempt ? 1 : 0,
        progress.bytes,
        progress.total ?? null,
        progress.resumedFrom ?? null,
        progress.restarts,
        outcome === "done" ? 1 : 0,
        record?.type ?? null,
        outcome === "done" ? 1 : 0,
        record?.message ?? null,
        receipt?.url ?? null,
        receipt?.sha256 ?? null,
        outcome === "stopped" ? null : now,
        now,
        run.id,
        this.#owner,
      );
      if (changes === 0) return false;
      if (outcome === "stopped" && inAttempt) {
        this.#archiveAttempt(run, "stopped");
      }
      if (outcome === "stopped" || end.runSignal.aborted) return undefined;
      return this.#claimNext(end.failed);
    });
  }

  /** The row was taken from this process mid-run: when it was cancelled, the `.part` goes. */
  async #lost(id: number, report: RunReport): Promise<undefined> {
    const row = this.#sql("SELECT state, dest FROM transfers WHERE id = ?")
      .get(id) as Pick<Row, "state" | "dest"> | undefined;
    if (row?.state !== "cancelled") return;
    await discardPart(row.dest);
    report.cancelled++;
    this.#emit({ type: "cancelled", id });
  }

  // -------------------------------------------------------------------------
  // Re-drive

  /**
   * Puts rows left `running` by owners whose lock is free back in the
   * queue; of several such rows for one destination only one, and none when
   * the destination has another live transfer.
   */
  #redrive(): void {
    const lock = this.#ownerLock;
    if (lock === undefined) return;
    const events: QueueEvent[] = [];
    this.#transaction(() => {
      const owners = this.#sql(
        "SELECT DISTINCT owner FROM transfers WHERE state = 'running' AND owner IS NOT NULL",
      ).all() as { owner: string }[];
      const dead = owners.map((o) => o.owner).filter((owner) =>
        owner !== this.#owner && !lock.isAlive(owner)
      );
      if (dead.length === 0) return;
      const deadJson = JSON.stringify(dead);
      const stale = this.#sql(
        `SELECT id, dest FROM transfers
         WHERE state = 'running' AND owner IN (SELECT value FROM json_each(?))
         ORDER BY dest, updated_at DESC, id`,
      ).all(deadJson) as { id: number; dest: string }[];
      const now = Date.now();
      this.#sql(
        `INSERT INTO transfer_attempts (transfer_id, attempt, owner, outcome, resumed_from, bytes,
           started_at, finished_at)
         SELECT id, attempts, owner, 'interrupted', resumed_from, bytes_done,
           coalesce(attempt_started_at, updated_at), updated_at
         FROM transfers WHERE state = 'running' AND attempt_started_at IS NOT NULL
           AND owner IN (SELECT value FROM json_each(?))`,
      ).run(deadJson);
      let keeper: { id: number; dest: string } | undefined;
      for (const row of stale) {
        if (keeper?.dest !== row.dest) {
          const live = this.#sql(
            `SELECT id FROM transfers WHERE dest = ? AND (state = 'queued'
               OR (state = 'running' AND owner NOT IN (SELECT value FROM json_each(?))))
             LIMIT 1`,
          ).get(row.dest, deadJson) as { id: number } | undefined;
          keeper = live ? { id: live.id, dest: row.dest } : row;
          if (live === undefined) {
            this.#sql(
              `UPDATE transfers SET state = 'queued', owner = NULL, attempt_started_at = NULL,
                 updated_at = ? WHERE id = ?`,
            ).run(now, row.id);
            events.push({ type: "redrive", id: row.id, state: "queued" });
            continue;
          }
        }
        this.#sql(
          `UPDATE transfers SET state = 'failed', owner = NULL, error_type = 'DuplicateDestination',
             error_message = ?, attempt_started_at = NULL, finished_at = ?, updated_at = ?
           WHERE id = ?`,
        ).run(
          `Cannot re-drive transfer ${row.id}: transfer ${keeper.id} downloads to the same destination ${row.dest}, and the two would share one .part`,
          now,
          now,
          row.id,
        );
        events.push({ type: "redrive", id: row.id, state: "failed" });
      }
    });
    for (const event of events) this.#emit(event);
  }

  // -------------------------------------------------------------------------
  // Plumbing

  #sql(source: string): StatementSync {
    let statement = this.#statements.get(source);
    if (statement === undefined) {
      statement = this.#db.prepare(source);
      this.#statements.set(source, statement);
    }
    return statement;
  }

  /**
   * Runs `fn` in a write transaction. A `durable` one is fsynced at commit:
   * what a caller was told is recorded (an add, a cancel, a retry). The
   * run's own bookkeeping is not, and re-drive repairs what a power cut
   * rolls back.
   */
  #transaction<T>(fn: () => T, options: { durable?: boolean } = {}): T {
    if (options.durable) this.#db.exec("PRAGMA synchronous = FULL");
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    } finally {
      if (options.durable) this.#db.exec("PRAGMA synchronous = NORMAL");
    }
  }

  #emit(event: QueueEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch (error) {
      reportError(error);
    }
  }

  #assertOpen(what: string): void {
    if (this.#closing) {
      throw new TypeError(`Cannot ${what}: the queue is closed`);
    }
  }
}

/**
 * The lock that tells other processes this queue is alive: an exclusive
 * `flock` on `<dir>/<owner>.lock`, held while the queue is open. The file is
 * locked before it gets its name (it is renamed into place), so every
 * `.lock` file without a lock belongs to a process that died.
 */
class OwnerLock {
  readonly owner: string;
  readonly #dir: string;
  readonly #file: Deno.FsFile;

  private constructor(dir: string, owner: string, file: Deno.FsFile) {
    this.#dir = dir;
    this.owner = owner;
    this.#file = file;
  }

  static async take(dir: string): Promise<OwnerLock> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const owner = randomOwner();
    const temp = join(dir, `${owner}.tmp`);
    const file = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode: 0o600,
    });
    try {
      await file.lock(true);
      await Deno.rename(temp, join(dir, `${owner}.lock`));
    } catch (error) {
      file.close();
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
    return new OwnerLock(dir, owner, file);
  }

  /** Whether `owner`'s lock is held; a free one is removed. */
  isAlive(owner: string): boolean {
    const path = join(this.#dir, `${owner}.lock`);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { write: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
    try {
      if (!file.tryLockSync(true)) return true;
      removeIfThere(path); // another process may be tidying it too
      return false;
    } finally {
      file.close();
    }
  }

  /**
   * Removes the lock files of owners that died without rows left running,
   * and the temp file of one that died before naming its lock (an
   * unlocked one older than a minute).
   */
  pruneDead(): void {
    for (const entry of Deno.readDirSync(this.#dir)) {
      const match = /^([0-9a-f]{16})\.(lock|tmp)$/.exec(entry.name);
      if (match === null || match[1] === this.owner) continue;
      if (match[2] === "lock") {
        this.isAlive(match[1]!);
        continue;
      }
      const path = join(this.#dir, entry.name);
      const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
      if (age < 60_000) continue;
      using file = Deno.openSync(path, { write: true });
      if (file.tryLockSync(true)) removeIfThere(path);
    }
  }

  release(): void {
    removeIfThere(join(this.#dir, `${this.owner}.lock`));
    this.#file.close();
  }
}

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function randomOwner(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(8)));
}

/** A spec checked and made ready for its row. */
interface CheckedSpec {
  dest: string;
  urls: string;
  sha256: string | null;
  size: number | null;
  headers: string;
}

/**
 * Checks a spec and makes its destination canonical; `directories` caches
 * real paths of directories across one call.
 */
function checkSpec(
  spec: TransferSpec,
  directories: Map<string, string>,
): CheckedSpec {
  const urls = urlsOf(spec.urls);
  if (typeof spec.dest !== "string" || spec.dest === "") {
    throw new TypeError("Cannot add a transfer: dest is empty");
  }
  if (spec.sha256 !== undefined && !SHA256_HEX.test(spec.sha256)) {
    throw new TypeError(
      `Cannot add a transfer: sha256 must be 64 hex digits, got ${
        JSON.stringify(spec.sha256)
      }`,
    );
  }
  if (
    spec.size !== undefined &&
    (!Number.isSafeInteger(spec.size) || spec.size < 0)
  ) {
    throw new RangeError(
      `Cannot add a transfer: size must be an integer >= 0, got ${spec.size}`,
    );
  }
  return {
    dest: canonicalPath(spec.dest, directories),
    urls: JSON.stringify(urls),
    sha256: spec.sha256?.toLowerCase() ?? null,
    size: spec.size ?? null,
    headers: JSON.stringify([...new Headers(spec.headers)]),
  };
}

function urlsOf(urls: TransferSpec["urls"]): string[] {
  const list = typeof urls === "string" || urls instanceof URL
    ? [urls]
    : [...urls];
  if (list.length === 0) {
    throw new TypeError("Cannot add a transfer: no URL given");
  }
  return list.map((url) => {
    const parsed = URL.parse(url);
    if (parsed === null || !["http:", "https:"].includes(parsed.protocol)) {
      throw new TypeError(
        `Cannot add a transfer: ${
          JSON.stringify(String(url))
        } is not an http or https URL`,
      );
    }
    return parsed.href;
  });
}

/**
 * `path` made absolute, with its directory's symlinks resolved when it
 * exists. Synchronous: one cheap system call, where an async one costs more
 * than the rest of an `add()`.
 */
function canonicalPath(path: string, directories: Map<string, string>): string {
  const absolute = resolve(path);
  const directory = dirname(absolute);
  let real = directories.get(directory);
  if (real === undefined) {
    try {
      real = Deno.realPathSync(directory);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      real = directory;
    }
    directories.set(directory, real);
  }
  return join(real, basename(absolute));
}

function recordOf(error: unknown): TransferError {
  if (!(error instanceof Error)) {
    return { type: typeof error, message: String(error) };
  }
  const cause = error.cause instanceof Error &&
      !error.message.includes(error.cause.message)
    ? `: ${error.cause.message}`
    : "";
  return { type: error.name, message: `${error.message}${cause}` };
}

function transferOf(row: Row): Transfer {
  return {
    id: row.id,
    dest: row.dest,
    urls: JSON.parse(row.urls),
    ...(row.sha256 === null ? {} : { sha256: row.sha256 }),
    ...(row.size === null ? {} : { size: row.size }),
    headers: JSON.parse(row.headers),
    state: row.state,
    attempts: row.attempts,
    bytesDone: row.bytes_done,
    ...(row.total === null ? {} : { total: row.total }),
    ...(row.resumed_from === null ? {} : { resumedFrom: row.resumed_from }),
    restarts: row.restarts,
    ...(row.error_type === null
      ? {}
      : { error: { type: row.error_type, message: row.error_message ?? "" } }),
    ...(row.result_url === null || row.result_sha256 === null
      ? {}
      : { result: { url: row.result_url, sha256: row.result_sha256 } }),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    ...(row.started_at === null ? {} : { startedAt: new Date(row.started_at) }),
    ...(row.finished_at === null
      ? {}
      : { finishedAt: new Date(row.finished_at) }),
  };
}
