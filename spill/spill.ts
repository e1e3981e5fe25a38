// SpillStore: a private, locked directory of values, deleted with the store.

import { createHash } from "node:crypto";
import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { cleanupStale } from "./cleanup.ts";
import {
  CancelledError,
  LimitError,
  LockedError,
  SluiceError,
} from "../core/errors.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
/** The longest key, in UTF-8 bytes (file names allow 255). */
export const MAX_KEY_BYTES = 200;
const READ_PIECE = 1024 * 1024;
/** How often a streamed put looks at the free space again. */
const FREE_CHECK_BYTES = 8 * 1024 * 1024;

/** Options for {@linkcode SpillStore.open}. */
export interface SpillStoreOptions {
  /** The directory the store's own directory goes in; created (mode 0700) if missing. */
  root: string;
  /** The most bytes the store may hold; a put that would pass it fails with `LimitError`. */
  maxBytes?: number;
  /** Fail a put with `LimitError` rather than leave less than this free on the file system. */
  minFreeBytes?: number;
  /** Run {@linkcode cleanupStale} on `root` first (default `true`). */
  cleanupStale?: boolean;
  /** The age after which a dead store's directory is stale (default 24 h). */
  staleAfterMs?: number;
}

/** What {@linkcode SpillStore.put} wrote. */
export interface SpillPutResult {
  /** Bytes stored. */
  size: number;
  /** SHA-256 of the bytes, lowercase hex. */
  sha256: string;
}

/** Options for a single store operation. */
export interface SpillOperationOptions {
  /** Aborting cancels the operation; a put leaves nothing behind. */
  signal?: AbortSignal;
}

/**
 * A key that the store does not hold.
 *
 * @example
 * ```ts
 * import { SpillNotFoundError } from "@sluice/sluice/spill";
 * import assert from "node:assert/strict";
 *
 * const error = new SpillNotFoundError("body");
 * assert.equal(error.key, "body");
 * assert.equal(error.retryable, false);
 * ```
 */
export class SpillNotFoundError extends SluiceError {
  /** Always `false`. */
  readonly retryable: boolean = false;
  /** The key asked for. */
  readonly key: string;

  /**
   * Makes the error.
   *
   * @param key The key asked for.
   */
  constructor(key: string) {
    super(`Cannot read spilled value ${JSON.stringify(key)}: no such key`);
    this.key = key;
  }
}

/**
 * Throws a `TypeError` unless `key` can name a value: a non-empty string of
 * at most {@linkcode MAX_KEY_BYTES} UTF-8 bytes, without `/`, `\` or NUL,
 * and not `.` or `..`.
 *
 * @param key The key to check.
 *
 * @example
 * ```ts
 * import { assertSpillKey } from "@sluice/sluice/spill";
 * import assert from "node:assert/strict";
 *
 * assertSpillKey("chunk-0001");
 * assert.throws(() => assertSpillKey("../escape"), TypeError);
 * ```
 */
export function assertSpillKey(key: string): void {
  const problem = typeof key !== "string"
    ? "it is not a string"
    : key.length === 0
    ? "it is empty"
    : key === "." || key === ".."
    ? "it names a directory"
    : /[/\\\0]/.test(key)
    ? "it contains a path separator or NUL"
    : new TextEncoder().encode(key).length > MAX_KEY_BYTES
    ? `it is longer than ${MAX_KEY_BYTES} bytes`
    : undefined;
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot use ${
        JSON.stringify(String(key)).slice(0, 80)
      } as a spill key: ${problem}`,
    );
  }
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

function endedEarly(key: string): Error {
  return new Error(
    `Cannot read spilled value ${JSON.stringify(key)}: it ended early`,
  );
}

async function freeBytes(path: string): Promise<number> {
  const stats = await statfs(path);
  return stats.bavail * stats.bsize;
}

/**
 * A private directory of values on disk, locked for its whole life and
 * deleted when disposed of. Values are written to a temp file and renamed
 * into place, so a reader never sees half of one; `get` reads the value as
 * it was when called, even if it is replaced or deleted meanwhile.
 *
 * @example Spill a stream and read it twice
 * ```ts
 * import { SpillStore } from "@sluice/sluice/spill";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await using store = await SpillStore.open({ root, maxBytes: 1024 * 1024 });
 * const { size, sha256 } = await store.put("upload", ReadableStream.from([new Uint8Array(1000)]));
 * assert.equal(size, 1000);
 * assert.equal(sha256.length, 64);
 * for (let i = 0; i < 2; i++) {
 *   assert.equal((await new Response(store.get("upload")).bytes()).length, 1000);
 * }
 * assert.deepEqual([...store.keys()], ["upload"]);
 * ```
 */
export class SpillStore implements AsyncDisposable {
  /** The store's own directory, `root/spill_<seconds>_<random>`. */
  readonly path: string;
  readonly #lock: Deno.FsFile;
  readonly #maxBytes: number;
  readonly #minFreeBytes: number;
  readonly #values = new Map<string, number>();
  #size = 0;
  #reserved = 0;
  #closed: Promise<void> | undefined;

  private constructor(
    path: string,
    lock: Deno.FsFile,
    options: SpillStoreOptions,
  ) {
    this.path = path;
    this.#lock = lock;
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#minFreeBytes = options.minFreeBytes ?? 0;
  }

  /**
   * Creates the store's directory under `options.root` and locks it.
   *
   * @param options The root, limits and stale cleanup.
   * @returns The open store; dispose of it (or `close()`) to delete it.
   * @throws {RangeError} On a negative limit.
   */
  static async open(options: SpillStoreOptions): Promise<SpillStore> {
    for (const name of ["maxBytes", "minFreeBytes"] as const) {
      const value = options[name];
      if (value !== undefined && !(value >= 0)) {
        throw new RangeError(
          `Cannot open a spill store: ${name} must be >= 0, got ${value}`,
        );
      }
    }
    await Deno.mkdir(options.root, { recursive: true, mode: 0o700 });
    if (options.cleanupStale ?? true) {
      await cleanupStale(options.root, {
        maxAgeMs: options.staleAfterMs ?? DAY_MS,
      });
    }
    const seconds = Math.floor(Date.now() / 1000);
    const path = join(options.root, `spill_${seconds}_${randomHex(8)}`);
    await Deno.mkdir(path, { mode: 0o700 });
    try {
      await Deno.mkdir(join(path, "data"), { mode: 0o700 });
      await Deno.mkdir(join(path, "tmp"), { mode: 0o700 });
      const lock = await Deno.open(join(path, ".lock"), {
        read: true,
        write: true,
        createNew: true,
        mode: 0o600,
      });
      if (!await lock.tryLock(true)) {
        lock.close();
        throw new LockedError({ path: join(path, ".lock") });
      }
      return new SpillStore(path, lock, options);
    } catch (error) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  /** Bytes held in committed values. */
  get size(): number {
    return this.#size;
  }

  /** Whether `key` is held. */
  has(key: string): boolean {
    assertSpillKey(key);
    return this.#values.has(key);
  }

  /** The keys held, in the order they were first put. */
  keys(): IterableIterator<string> {
    return this.#values.keys();
  }

  /**
   * Stores `data` under `key`, replacing any value it had. The bytes go to a
   * temp file that is renamed into place once complete; on any failure,
   * limit or abort the temp file is removed and the old value stays.
   *
   * @param key The key (see {@linkcode assertSpillKey}).
   * @param data The bytes, or a stream of them (consumed, or cancelled on failure).
   * @param options An abort signal.
   * @returns The size and SHA-256 of what was stored.
   * @throws {LimitError} When the value would pass `maxBytes` or leave less than `minFreeBytes` free.
   * @throws {CancelledError} When `signal` aborts.
   */
  async put(
    key: string,
    data: Uint8Array | ReadableStream<Uint8Array>,
    options: SpillOperationOptions = {},
  ): Promise<SpillPutResult> {
    assertSpillKey(key);
    this.#throwIfClosed();
    const signal = options.signal;
    const known = data instanceof Uint8Array ? data.length : 0;
    const replaced = this.#values.get(key) ?? 0; // freed if this put lands
    const reserve = (bytes: number) => {
      const after = this.#size - replaced + this.#reserved + bytes;
      if (after > this.#maxBytes) {
        throw new LimitError({
          what: "spilled bytes",
          limit: this.#maxBytes,
          actual: after,
        });
      }
      this.#reserved += bytes;
    };
    const checkFree = async (coming: number) => {
      if (this.#minFreeBytes === 0) return;
      const free = await freeBytes(this.path);
      if (free - coming < this.#minFreeBytes) {
        throw new LimitError(
          {
            what: "free bytes",
            limit: this.#minFreeBytes,
            actual: free - coming,
          },
          `Cannot spill ${JSON.stringify(key)}: it would leave ${
            free - coming
          } bytes free, below the minimum of ${this.#minFreeBytes}`,
        );
      }
    };

    let held = 0; // bytes reserved by this put
    const temp = join(this.path, "tmp", `${randomHex(8)}.part`);
    try {
      signal?.throwIfAborted();
      reserve(known);
      held = known;
      await checkFree(known);
      const hash = createHash("sha256");
      let size = 0;
      if (data instanceof Uint8Array) {
        // The kernel copies the bytes while this thread hashes them.
        const writing = Deno.writeFile(temp, data, {
          createNew: true,
          mode: 0o600,
          ...(signal ? { signal } : {}),
        });
        hash.update(data);
        await writing;
        size = data.length;
      } else {
        using file = await Deno.open(temp, {
          write: true,
          createNew: true,
          mode: 0o600,
        });
        const writeAll = async (bytes: Uint8Array) => {
          for (let at = 0; at < bytes.length;) {
            signal?.throwIfAborted();
            at += await file.write(bytes.subarray(at));
          }
        };
        const reader = data.getReader();
        let sinceCheck = 0;
        try {
          while (true) {
            signal?.throwIfAborted();
            const { done, value } = await reader.read();
            if (done) break;
            reserve(value.length);
            held += value.length;
            sinceCheck += value.length;
            if (sinceCheck >= FREE_CHECK_BYTES) {
              sinceCheck = 0;
              await checkFree(0);
            }
            const writing = writeAll(value);
            hash.update(value);
            await writing;
            size += value.length;
          }
        } catch (error) {
          await reader.cancel(error).catch(() => {});
          throw error;
        } finally {
          reader.releaseLock();
        }
      }
      this.#throwIfClosed();
      await Deno.rename(temp, join(this.path, "data", key));
      this.#size += size - (this.#values.get(key) ?? 0);
      this.#values.set(key, size);
      return { size, sha256: hash.digest("hex") };
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      if (signal?.aborted && error === signal.reason) {
        throw CancelledError.fromSignal(signal);
      }
      throw error;
    } finally {
      this.#reserved -= held;
    }
  }

  /**
   * Reads the value under `key` as it is now: replacing or deleting it
   * afterwards does not change what this stream yields. A value of up to
   * 1 MiB is read whole at once (so an unread stream may hold that much);
   * a larger one is read in 1 MiB pieces as the stream is pulled.
   *
   * @param key The key.
   * @param options An abort signal, which errors the stream.
   * @returns The bytes.
   * @throws {SpillNotFoundError} When the key is not held.
   */
  get(
    key: string,
    options: SpillOperationOptions = {},
  ): ReadableStream<Uint8Array> {
    assertSpillKey(key);
    this.#throwIfClosed();
    const size = this.#values.get(key);
    if (size === undefined) throw new SpillNotFoundError(key);
    const signal = options.signal;
    const path = join(this.path, "data", key);
    const mapError = (error: unknown) =>
      signal?.aborted && error === signal.reason
        ? CancelledError.fromSignal(signal)
        : error;
    if (size <= READ_PIECE) {
      // Read whole at once: the stream holds this version of the value (at
      // most one piece) and the first pull hands it over.
      const reading = Deno.readFile(path, signal ? { signal } : {});
      reading.catch(() => {}); // reported by the first pull
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const bytes = await reading;
            if (bytes.length !== size) throw endedEarly(key);
            if (bytes.length > 0) controller.enqueue(bytes);
            controller.close();
          } catch (error) {
            throw mapError(error);
          }
        },
      });
    }
    // Opened at once, so the stream holds this version of the value.
    const opening = Deno.open(path, { read: true });
    opening.catch(() => {}); // reported by the first pull
    let file: Deno.FsFile | undefined;
    let left = size;
    const close = () => {
      file?.close();
      file = undefined;
    };
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          signal?.throwIfAborted();
          file ??= await opening;
          if (left === 0) {
            close();
            return controller.close();
          }
          const buffer = new Uint8Array(Math.min(left, READ_PIECE));
          const n = await file.read(buffer);
          if (n === null) throw endedEarly(key);
          left -= n;
          controller.enqueue(buffer.subarray(0, n));
        } catch (error) {
          close();
          throw mapError(error);
        }
      },
      cancel() {
        close();
        opening.then((f) => f.close(), () => {});
      },
    });
  }

  /**
   * Deletes the value under `key`.
   *
   * @param key The key.
   * @returns Whether there was one.
   */
  async delete(key: string): Promise<boolean> {
    assertSpillKey(key);
    this.#throwIfClosed();
    const size = this.#values.get(key);
    if (size === undefined) return false;
    this.#values.delete(key);
    this.#size -= size;
    await Deno.remove(join(this.path, "data", key)).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    return true;
  }

  /**
   * Deletes the store's directory and releases its lock. Idempotent; after
   * it, every method but `close` throws.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await Deno.remove(this.path, { recursive: true });
      } finally {
        this.#values.clear();
        this.#size = 0;
        this.#lock.close(); // closing releases the lock
      }
    })();
    return this.#closed;
  }

  /** Same as {@linkcode SpillStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #throwIfClosed(): void {
    if (this.#closed !== undefined) {
      throw new TypeError(
        `Cannot use the spill store ${this.path}: it is closed`,
      );
    }
  }
}
