// Raw deflate decoding that knows where the compressed data ends.
//
// Deno's DecompressionStream cannot say how much of its input a deflate
// stream used (it rejects what follows), and zip entries with a data
// descriptor and concatenated gzip members both need that boundary. The
// node:zlib inflater reports the input it consumed (`bytesWritten`) and stops
// at the end of the deflate stream, so the archive reader can hand the rest
// back.

import zlib from "node:zlib";
import { FormatError, IncompleteStreamError } from "../core/errors.ts";
import type { ByteReader } from "./_reader.ts";

/** Compressed bytes fed per step: bounds the output of one step (deflate expands at most ~1032×). */
const FEED = 16 * 1024;

/** Inflates one raw deflate stream from `reader`, leaving the bytes after it unread. */
export class RawInflater {
  #z = zlib.createInflateRaw();
  #out: Uint8Array[] = [];
  #ended = false;
  #failure: Error | undefined;
  #reader: ByteReader;
  #format: string;
  #limit: number;
  /** Compressed bytes consumed so far. */
  consumed = 0;

  /**
   * @param reader Where the compressed bytes come from.
   * @param format The container, for errors.
   * @param limit The most compressed bytes the stream may use (Infinity when unknown).
   */
  constructor(reader: ByteReader, format: string, limit = Infinity) {
    this.#reader = reader;
    this.#format = format;
    this.#limit = limit;
    this.#z.on("data", (piece: Uint8Array) => this.#out.push(piece));
    this.#z.on("end", () => this.#ended = true);
    this.#z.on("error", (error: Error) => this.#failure = error);
  }

  /** The next decompressed piece, or `null` once the deflate stream has ended. */
  async next(): Promise<Uint8Array | null> {
    while (this.#out.length === 0) {
      if (this.#ended) return null;
      const room = this.#limit - this.consumed;
      const piece = room > 0
        ? await this.#reader.readSome(Math.min(FEED, room))
        : null;
      if (piece === null) {
        // The input stops here: fine if the deflate stream ended right at it.
        if (await this.#finish()) continue;
        this.close();
        const at = this.#reader.position;
        if (room > 0) {
          throw new IncompleteStreamError(
            {
              expected: Number.isFinite(room) ? at + room : at + 1,
              received: at,
              source: `${this.#format} stream`,
            },
            `Cannot read ${this.#format}: the input ends inside compressed data (after ${at} bytes)`,
          );
        }
        throw new FormatError({
          format: this.#format,
          reason: "the deflate stream is longer than its declared size",
          offset: at,
        });
      }
      const before = this.#z.bytesWritten;
      await new Promise<void>((resolve) =>
        this.#z.write(piece, () => resolve())
      );
      if (this.#failure) {
        this.close();
        throw new FormatError({
          format: this.#format,
          reason: `invalid deflate data (${this.#failure.message})`,
          offset: this.#reader.position,
          cause: this.#failure,
        });
      }
      const used = this.#z.bytesWritten - before;
      this.consumed += used;
      if (used < piece.length) {
        // The deflate stream ended inside this piece: the rest is not ours.
        this.#ended = true;
        this.#reader.unread(piece.subarray(used));
      }
    }
    return this.#out.shift()!;
  }

  #finish(): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#ended) return resolve(true);
      this.#z.once("end", () => resolve(true));
      this.#z.once("error", () => resolve(false));
      this.#z.end();
    });
  }

  /** Releases the inflater. */
  close(): void {
    this.#z.destroy();
  }
}
