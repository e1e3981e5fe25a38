/**
 * Deliver a stream into a file atomically: the bytes go to a temp file in the
 * same directory, which is fsynced and renamed into place, and the directory
 * is fsynced. A failed, cancelled or aborted delivery removes the temp file,
 * so a reader of the path sees the old state or the whole new file.
 *
 * Needs `--allow-read --allow-write` on the file's directory (and on `root`).
 *
 * @example
 * ```ts
 * import { fileSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const sink = fileSink("report.txt", { root: dir });
 * const receipt = await sink.deliver(ReadableStream.from([new TextEncoder().encode("hello")]));
 * assert.equal(receipt.bytes, 5);
 * assert.equal(await Deno.readTextFile(`${dir}/report.txt`), "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import {
  basename,
  dirname,
  isAbsolute,
  relative,
  resolve,
  sep,
} from "node:path";
import { AtomicFile } from "../core/atomic_file.ts";
import { CancelledError, UnsafeEntryError } from "../core/errors.ts";
import { checkSize, drain, receiptOf, sinkOf, Tally } from "./_tally.ts";
import type { Sink } from "./types.ts";

/** Options for {@linkcode fileSink}. */
export interface FileSinkOptions {
  /**
   * Confine the file to this directory: a relative path is taken from it,
   * and a path that leaves it (`..`, an absolute path elsewhere, a parent
   * directory that is a symlink pointing out) fails with `UnsafeEntryError`
   * before anything is written.
   */
  root?: string;
  /** Replace an existing file (default `false`: fail with `TargetExistsError`). */
  overwrite?: boolean;
  /** The file's permission bits, before the umask (default `0o644`). */
  mode?: number;
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) &&
    !isAbsolute(rel);
}

/**
 * Where `path` lands under `root`, checked lexically and then through the
 * real (symlink-resolved) paths of the root and of the file's directory.
 */
async function confine(path: string, root: string): Promise<string> {
  const unsafe = (reason: string) =>
    new UnsafeEntryError(
      { path, reason },
      `Cannot write ${JSON.stringify(path)} under ${root}: ${reason}`,
    );
  const base = resolve(root);
  const target = resolve(base, path);
  if (!isInside(base, target)) throw unsafe("it is outside the root");
  const realBase = await Deno.realPath(base);
  let realParent: string;
  try {
    realParent = await Deno.realPath(dirname(target));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw error;
    throw unsafe("its directory cannot be resolved");
  }
  if (realParent !== realBase && !isInside(realBase, realParent)) {
    throw unsafe("a parent directory is a link that leads outside the root");
  }
  return resolve(realParent, basename(target));
}

/**
 * A sink that writes each delivery to `path`, atomically and durably.
 *
 * The receipt's `location` is the absolute path written. The directory must
 * exist. With `root`, the path is confined to it; the check runs at each
 * delivery, on the file system as it is then.
 *
 * @param path The file to write (relative to `root` when given, else to the working directory).
 * @param options The root to stay inside, whether to overwrite, and the mode.
 * @returns The sink.
 *
 * @example Refuse to replace a file, and to leave the root
 * ```ts
 * import { fileSink } from "@sluice/sluice/sinks";
 * import { TargetExistsError, UnsafeEntryError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const body = () => ReadableStream.from([new Uint8Array(4)]);
 * await fileSink(`${dir}/a.bin`).deliver(body());
 * await assert.rejects(fileSink(`${dir}/a.bin`).deliver(body()), TargetExistsError);
 * await fileSink(`${dir}/a.bin`, { overwrite: true }).deliver(body());
 * await assert.rejects(fileSink("../escape.bin", { root: dir }).deliver(body()), UnsafeEntryError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fileSink(path: string, options: FileSinkOptions = {}): Sink {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError("Cannot make a file sink: the path is empty");
  }
  const { root, overwrite = false, mode } = options;
  return sinkOf(async (source, meta, signal) => {
    const target = root === undefined
      ? resolve(path)
      : await confine(path, root);
    await using file = await AtomicFile.create(target, {
      overwrite,
      ...(mode === undefined ? {} : { mode }),
    });
    const tally = new Tally();
    await drain(source, async (chunk) => {
      tally.update(chunk);
      await file.write(chunk);
    }, signal);
    checkSize(tally.bytes, meta, target);
    if (signal?.aborted) throw CancelledError.fromSignal(signal);
    await file.commit();
    return receiptOf("file", target, tally, tally.digest());
  });
}
