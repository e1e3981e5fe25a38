// Atomic, durable small-file writes: temp file in the same directory, fsync,
// rename, fsync the directory. A reader sees the old state or the new one.

import { basename, dirname, join } from "node:path";
import { toHex } from "./_bytes.ts";

/** A fresh temp name beside `path`: `.<name>.<16 hex>.tmp`. */
export function tempPathFor(path: string): string {
  const random = toHex(crypto.getRandomValues(new Uint8Array(8)));
  return join(dirname(path), `.${basename(path)}.${random}.tmp`);
}

/** Fsyncs a directory so a rename inside it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}

/** Writes all of `bytes` at the file's position (a write may be short), checking `signal` between writes. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    signal?.throwIfAborted();
    at += await file.write(bytes.subarray(at));
  }
}

/**
 * Writes `bytes` to `path` atomically. The temp file is removed on every
 * failure, including an abort of `signal` between steps.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: { signal?: AbortSignal | undefined; mode?: number } = {},
): Promise<void> {
  const temp = tempPathFor(path);
  let renamed = false;
  try {
    {
      using file = await Deno.open(temp, {
        write: true,
        createNew: true,
        mode: options.mode ?? 0o644,
      });
      await writeAll(file, bytes, options.signal);
      await file.syncData();
    }
    options.signal?.throwIfAborted();
    await Deno.rename(temp, path);
    renamed = true;
    await syncDirectory(dirname(path));
  } finally {
    if (!renamed) await Deno.remove(temp).catch(() => {});
  }
}
