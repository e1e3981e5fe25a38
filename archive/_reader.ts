// A pull-based reader over a byte stream, shared by the archive providers:
// exact reads for headers, zero-copy pieces for bodies, and a count of the
// bytes taken so far.

import { CancelledError, IncompleteStreamError } from "../core/errors.ts";

/** Reads a `ReadableStream<Uint8Array>` in exact or bounded pieces. */
export class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #done = false;
  #signal: AbortSignal | undefined;
  #what: string;
  /** Bytes handed out (or skipped) so far. */
  position = 0;

  constructor(
    source: ReadableStream<Uint8Array>,
    what: string,
    signal?: AbortSignal,
  ) {
    this.#reader = source.getReader();
    this.#what = what;
    this.#signal = signal;
  }

  /** Buffers at least `n` bytes unless the stream ends first; returns whether it did. */
  async fill(n: number): Promise<boolean> {
    while (this.#buffered < n && !this.#done) {
      if (this.#signal?.aborted) {
        throw CancelledError.fromSignal(this.#signal);
      }
      const { done, value } = await this.#read();
      if (done) this.#done = true;
      else if (value.length > 0) {
        this.#chunks.push(value);
        this.#buffered += value.length;
      }
    }
    return this.#buffered >= n;
  }

  /** One read of the source; an abort while it waits cancels the source. */
  #read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    const signal = this.#signal;
    if (signal === undefined) return this.#reader.read();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        reject(CancelledError.fromSignal(signal));
        this.#reader.cancel(signal.reason).catch(() => {});
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#reader.read().then(resolve, reject).finally(() =>
        signal.removeEventListener("abort", onAbort)
      );
    });
  }

  /** Whether the stream has no more bytes. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** Bytes buffered and not yet taken. */
  get buffered(): number {
    return this.#buffered;
  }

  /** The next `n` buffered bytes, without taking them; call {@linkcode fill} first. */
  peek(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const chunk of this.#chunks) {
      if (at >= n) break;
      const piece = chunk.subarray(0, n - at);
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }

  /** Exactly `n` bytes; throws {@linkcode IncompleteStreamError} if the stream ends first. */
  async readExact(n: number): Promise<Uint8Array> {
    if (!(await this.fill(n))) this.#short(n);
    const out = this.peek(n);
    this.#drop(n);
    return out;
  }

  /**
   * Up to `max` bytes (at least one), without copying when a buffered piece
   * holds them; `null` at the end of the stream.
   */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (!(await this.fill(1))) return null;
    const first = this.#chunks[0]!;
    const out = first.length <= max ? first : first.subarray(0, max);
    this.#drop(out.length);
    return out;
  }

  /** Takes back the last `bytes` handed out by {@linkcode readSome}, unread. */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.unshift(bytes);
    this.#buffered += bytes.length;
    this.position -= bytes.length;
  }

  /** Skips exactly `n` bytes; throws {@linkcode IncompleteStreamError} if the stream ends first. */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const piece = await this.readSome(Math.min(left, 1 << 20));
      if (piece === null) this.#short(n, n - left);
      left -= piece.length;
    }
  }

  /** Cancels the underlying stream. */
  async cancel(reason?: unknown): Promise<void> {
    this.#chunks = [];
    this.#buffered = 0;
    await this.#reader.cancel(reason).catch(() => {});
  }

  #short(wanted: number, got = this.#buffered): never {
    throw new IncompleteStreamError({
      expected: this.position + wanted,
      received: this.position + got,
      source: this.#what,
    });
  }

  #drop(n: number): void {
    this.position += n;
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0]!;
      if (first.length <= n) {
        this.#chunks.shift();
        n -= first.length;
      } else {
        this.#chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}
