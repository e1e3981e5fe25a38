/**
 * The shapes every archive provider produces and {@linkcode install}
 * consumes.
 *
 * @module
 */

/** What an archive entry is. Devices, fifos and sparse files never appear: providers refuse them. */
export type EntryType = "file" | "directory" | "symlink" | "hardlink";

/**
 * One entry of an archive, as a provider yields it.
 *
 * `body` carries the file's bytes (it is empty for every other type). It is
 * read straight from the archive stream, so it must be consumed or cancelled
 * before the next entry is produced; asking the iterator for the next entry
 * while a body is unread drains (and still verifies) what is left of it.
 *
 * @example Read the entries of a tar
 * ```ts
 * import { untar } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello");
 * const tar = new Deno.Command("tar", { args: ["-cf", "-", "-C", dir, "hello.txt"], stdout: "piped" });
 * const { stdout } = await tar.output();
 * for await (const entry of untar(ReadableStream.from([stdout]))) {
 *   assert.equal(entry.path, "hello.txt");
 *   assert.equal(await new Response(entry.body).text(), "hello");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ArchiveEntry {
  /** The entry's name as the archive gives it (after pax and GNU long-name overrides), `/`-separated. */
  readonly path: string;
  /** What the entry is. */
  readonly type: EntryType;
  /**
   * The number of bytes `body` yields (0 for everything but files), or -1
   * when the archive does not say before the body: a zip entry with a data
   * descriptor, whose size is set once its body has been read and checked.
   */
  readonly size: number;
  /** The permission bits, as the archive gives them (including setuid, setgid and sticky bits). */
  readonly mode: number;
  /** The modification time. */
  readonly mtime: Date;
  /**
   * For symlinks, the target as written; for hardlinks, the path of the
   * linked entry. A zip symlink is known to be one only from the central
   * directory, after its body (which holds the target) was read, so it has
   * no `linkTarget`: its body is the target.
   */
  readonly linkTarget?: string;
  /** The CRC-32 the archive declares for the body (zip only); the provider checks it. */
  readonly crc32?: number;
  /** The entry's bytes. Consume or cancel it before asking for the next entry. */
  readonly body: ReadableStream<Uint8Array>;
}

/**
 * The entries of one archive, read once, front to back.
 *
 * `bytesRead` counts the bytes taken from the underlying (possibly
 * compressed) source so far; {@linkcode install} compares it with the bytes
 * it writes to enforce its compression-ratio limit.
 *
 * @example Count the bytes behind the entries
 * ```ts
 * import { untar } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const entries = untar(ReadableStream.from([new Uint8Array(1024)]));
 * for await (const _ of entries) assert.fail("an empty tar has no entries");
 * assert.equal(entries.bytesRead, 1024);
 * ```
 */
export interface ArchiveEntries extends AsyncIterable<ArchiveEntry> {
  /** Bytes taken from the underlying source so far. */
  readonly bytesRead: number;
}

/** Options every provider takes. */
export interface ReadArchiveOptions {
  /** Cancels reading; the iteration then rejects with `CancelledError`. */
  signal?: AbortSignal;
}
