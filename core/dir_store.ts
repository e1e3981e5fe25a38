/**
 * A chunk store in a directory: one file per chunk, sharded by the first two
 * hex digits of the address, each written atomically and fsynced.
 *
 * Needs `--allow-read` and `--allow-write` on the directory.
 *
 * @example
 * ```ts
 * import { decryptStream, dirStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = dirStore(dir);
 * const { dataMap, key } = await seal(new Blob(["on disk"]).stream(), store);
 * const address = dataMap.chunks[0]!.address;
 * assert.ok((await Deno.stat(`${dir}/${address.slice(0, 2)}/${address}`)).isFile);
 * assert.equal(await new Response(decryptStream(dataMap, key, store)).text(), "on disk");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "./_atomic.ts";
import {
  assertAddress,
  ChunkNotFoundError,
  type ChunkStore,
  verifyAddress,
} from "./chunk_store.ts";

/** Options of {@linkcode dirStore}. */
export interface DirStoreOptions {
  /**
   * Check each chunk read against its address (a retryable `IntegrityError`
   * on mismatch). Defaults to `false`: a reader with the key authenticates
   * every chunk anyway, and `put` verified it on the way in.
   */
  verifyOnRead?: boolean;
}

/** A {@linkcode dirStore}: a chunk store, and where it keeps the chunks. */
export interface DirStore extends ChunkStore {
  /** The directory. */
  readonly path: string;
  /** The file a chunk lives in. */
  pathOf(address: string): string;
}

/**
 * A chunk store in the directory `path` (created on the first write).
 *
 * `put` verifies the address, writes to a temp file beside the target,
 * fsyncs it, renames it into place and fsyncs the directory, so a chunk file
 * is either absent or complete. Putting a chunk that exists is a no-op.
 *
 * @param path The directory.
 * @param options Whether reads verify addresses.
 * @returns The store.
 *
 * @example A chunk whose bytes do not match its address is refused
 * ```ts
 * import { dirStore } from "@sluice/sluice/chunks";
 * import { IntegrityError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(dirStore(dir).put("00".repeat(32), new Uint8Array(8)), IntegrityError);
 * assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function dirStore(
  path: string,
  options: DirStoreOptions = {},
): DirStore {
  const pathOf = (address: string): string => {
    assertAddress(address);
    return join(path, address.slice(0, 2), address);
  };
  return {
    path,
    pathOf,
    async get(address, opts) {
      const file = pathOf(address);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(
          file,
          opts?.signal ? { signal: opts.signal } : {},
        );
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          throw new ChunkNotFoundError(address, { cause: error });
        }
        throw error;
      }
      if (options.verifyOnRead) await verifyAddress(address, bytes, true);
      return bytes;
    },
    async put(address, bytes, opts) {
      const file = pathOf(address);
      opts?.signal?.throwIfAborted();
      if (await exists(file)) return;
      await verifyAddress(address, bytes);
      await Deno.mkdir(join(path, address.slice(0, 2)), { recursive: true });
      await writeFileAtomic(file, bytes, { signal: opts?.signal });
    },
    async has(address, opts) {
      const file = pathOf(address);
      opts?.signal?.throwIfAborted();
      return await exists(file);
    },
  };
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await Deno.lstat(file)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
