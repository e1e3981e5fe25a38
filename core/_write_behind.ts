// Write-behind for one file: pieces from the network are gathered into large
// buffers, and the writes and periodic fsyncs run in order behind the
// producer, so that receiving and hashing on the main thread overlap with
// the disk. A bounded number of buffers is queued; memory does not grow with
// the file.

import { writeAll } from "./_atomic.ts";

/** How {@linkcode WriteBehind} batches and makes data durable. */
export interface WriteBehindOptions {
  /** The file's position and length when writing starts. */
  offset: number;
  /** Fsync and call `onDurable` each time this many more bytes are written. */
  syncEvery: number;
  /** Runs after an fsync, with every byte up to `offset` durable; the queue waits for it. */
  onDurable: (offset: number) => Promise<void>;
  /** Bytes per write (default 1 MiB). */
  bufferBytes?: number;
  /** Buffers queued behind the producer at most (default 8). */
  maxQueued?: number;
}

/**
 * Appends to `file` at its current position. Errors from the disk surface on
 * the next `write` or on `flush`.
 */
export class WriteBehind {
  readonly #file: Deno.FsFile;
  readonly #syncEvery: number;
  readonly #onDurable: (offset: number) => Promise<void>;
  readonly #bufferBytes: number;
  readonly #maxQueued: number;
  #buffer: Uint8Array;
  #filled = 0;
  #spare: Uint8Array[] = [];
  #queue: Promise<void>[] = [];
  #tail: Promise<void> = Promise.resolve();
  #failed: { error: unknown } | undefined;
  #written: number;
  #synced: number;

  /**
   * @param file Open for writing, positioned at `options.offset`.
   * @param options Batching and durability.
   */
  constructor(file: Deno.FsFile, options: WriteBehindOptions) {
    this.#file = file;
    this.#syncEvery = options.syncEvery;
    this.#onDurable = options.onDurable;
    this.#bufferBytes = options.bufferBytes ?? 1024 * 1024;
    this.#maxQueued = options.maxQueued ?? 8;
    this.#buffer = new Uint8Array(this.#bufferBytes);
    this.#written = options.offset;
    this.#synced = options.offset;
  }

  /** Bytes on the file (written, not necessarily durable). */
  get written(): number {
    return this.#written;
  }

  /** Copies `piece` into the current buffer, queueing full buffers; waits while the queue is full. */
  async write(piece: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    while (piece.length > 0) {
      const n = Math.min(piece.length, this.#bufferBytes - this.#filled);
      this.#buffer.set(piece.subarray(0, n), this.#filled);
      this.#filled += n;
      piece = piece.subarray(n);
      if (this.#filled === this.#bufferBytes) await this.#enqueue();
    }
  }

  /** Writes everything given so far and waits for it (and any fsync under way); returns `written`. */
  async flush(): Promise<number> {
    if (this.#filled > 0) this.#enqueue();
    await this.#tail;
    this.#queue = [];
    this.#throwIfFailed();
    return this.#written;
  }

  /** After a flush: forget the position (the caller truncated or seeked the file). */
  reset(offset: number): void {
    this.#written = offset;
    this.#synced = offset;
  }

  #enqueue(): Promise<void> | undefined {
    const bytes = this.#buffer.subarray(0, this.#filled);
    this.#buffer = this.#spare.pop() ?? new Uint8Array(this.#bufferBytes);
    this.#filled = 0;
    this.#tail = this.#tail.then(async () => {
      if (this.#failed) return;
      try {
        await writeAll(this.#file, bytes);
        this.#written += bytes.length;
        if (bytes.length === this.#bufferBytes) this.#spare.push(bytes);
        if (this.#written - this.#synced >= this.#syncEvery) {
          await this.#file.syncData();
          this.#synced = this.#written;
          await this.#onDurable(this.#written);
        }
      } catch (error) {
        this.#failed = { error };
      }
    });
    this.#queue.push(this.#tail);
    if (this.#queue.length > this.#maxQueued) return this.#queue.shift();
    return undefined;
  }

  #throwIfFailed(): void {
    if (this.#failed) throw this.#failed.error;
  }
}
