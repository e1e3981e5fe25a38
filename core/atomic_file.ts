/**
 * Write a file so that readers see either nothing (or the old file) or the
 * whole new one, never a part: the bytes go to a temp file beside the target,
 * which is fsynced and renamed into place, and the directory is fsynced so
 * the rename survives a crash. Leaving the `await using` scope before
 * {@linkcode AtomicFile.commit} (an error, an abort) removes the temp file.
 *
 * Needs `--allow-read --allow-write` on the target's directory.
 *
 * @example
 * ```ts
 * import { AtomicFile } from "@sluice/sluice/atomic";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   await using file = await AtomicFile.create(`${dir}/report.txt`);
 *   await file.write(new TextEncoder().encode("all or nothing"));
 *   await file.commit();
 * }
 * assert.equal(await Deno.readTextFile(`${dir}/report.txt`), "all or nothing");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { dirname } from "node:path";
import { syncDirectory, tempPathFor } from "./_atomic.ts";
import { WriteBehind } from "./_write_behind.ts";
import { TargetExistsError } from "./errors.ts";

/** Options for {@linkcode AtomicFile.create}. */
export interface AtomicFileOptions {
  /** Replace a file already at the path (default `false`: fail with `TargetExistsError`). */
  overwrite?: boolean;
  /** The new file's permission bits, before the umask (default `0o644`). */
  mode?: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * A file being written under a temp name beside its final path, renamed into
 * place by {@linkcode AtomicFile.commit}. Writes are gathered into 1 MiB
 * buffers and run behind the caller, so producing the next bytes overlaps
 * with the disk.
 *
 * Without `overwrite`, an existing file fails `create` at once, and the
 * final step links the temp file to the path (which fails if another writer
 * got there first) instead of renaming over it, so nothing is ever replaced.
 *
 * @example Abandon a write
 * ```ts
 * import { AtomicFile } from "@sluice/sluice/atomic";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(async () => {
 *   await using file = await AtomicFile.create(`${dir}/out.bin`);
 *   await file.write(new Uint8Array(100));
 *   throw new Error("the source failed");
 * });
 * assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
 * await Deno.remove(dir);
 * ```
 */
export class AtomicFile implements AsyncDisposable {
  /** The final path. */
  readonly path: string;
  /** Where the bytes are until the commit: `.<name>.<random>.tmp` beside `path`. */
  readonly tempPath: string;
  readonly #overwrite: boolean;
  readonly #file: Deno.FsFile;
  readonly #writer: WriteBehind;
  #state: "open" | "committed" | "abandoned" = "open";
  #size = 0;

  private constructor(
    path: string,
    file: Deno.FsFile,
    temp: string,
    overwrite: boolean,
  ) {
    this.path = path;
    this.tempPath = temp;
    this.#file = file;
    this.#overwrite = overwrite;
    this.#writer = new WriteBehind(file, {
      offset: 0,
      syncEvery: Infinity,
      onDurable: () => Promise.resolve(),
    });
  }

  /**
   * Creates the temp file beside `path`.
   *
   * @param path The final path; its directory must exist.
   * @param options Whether to replace an existing file, and the mode.
   * @returns The open file; commit it, or dispose of it to remove it.
   * @throws {TargetExistsError} When `path` exists and `overwrite` is not set.
   */
  static async create(
    path: string,
    options: AtomicFileOptions = {},
  ): Promise<AtomicFile> {
    const overwrite = options.overwrite ?? false;
    if (!overwrite && await exists(path)) throw new TargetExistsError({ path });
    const temp = tempPathFor(path);
    const file = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode: options.mode ?? 0o644,
    });
    return new AtomicFile(path, file, temp, overwrite);
  }

  /** Bytes given to {@linkcode AtomicFile.write} so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends `bytes`. They are copied, so the caller may reuse the buffer;
   * a disk error surfaces here or on `commit`.
   *
   * @param bytes The bytes.
   */
  async write(bytes: Uint8Array): Promise<void> {
    this.#throwUnlessOpen();
    this.#size += bytes.length;
    await this.#writer.write(bytes);
  }

  /**
   * Flushes and fsyncs the temp file, moves it to `path` and fsyncs the
   * directory. After it, disposal leaves the file in place.
   *
   * @throws {TargetExistsError} When `overwrite` is not set and a file
   * appeared at `path` meanwhile; the temp file is removed on disposal.
   */
  async commit(): Promise<void> {
    this.#throwUnlessOpen();
    await this.#writer.flush();
    await this.#file.syncData();
    this.#file.close();
    this.#state = "abandoned"; // until the rename has happened
    if (this.#overwrite) {
      await Deno.rename(this.tempPath, this.path);
    } else {
      try {
        await Deno.link(this.tempPath, this.path);
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) {
          throw new TargetExistsError({ path: this.path, cause: error });
        }
        throw error;
      }
      await Deno.remove(this.tempPath);
    }
    this.#state = "committed";
    await syncDirectory(dirname(this.path));
  }

  /** Removes the temp file unless committed. Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === "committed") return;
    if (this.#state === "open") {
      this.#state = "abandoned";
      await this.#writer.flush().catch(() => {});
      this.#file.close();
    }
    await Deno.remove(this.tempPath).catch(() => {});
  }

  #throwUnlessOpen(): void {
    if (this.#state !== "open") {
      throw new TypeError(
        `Cannot write ${this.path}: the file was already committed or abandoned`,
      );
    }
  }
}
