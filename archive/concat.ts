/**
 * Several archives read as one stream of entries.
 *
 * @module
 */

import type { ArchiveEntries, ArchiveEntry } from "./types.ts";

/**
 * Joins the entries of several archives into one iterable, source after
 * source in the order given, so that {@linkcode install} puts them into one
 * tree with one naming policy: a name in the second archive that collides
 * with one in the first is refused like a collision inside one archive.
 * Give the parts in their intended order (for example sorted by part name).
 * `bytesRead` is the sum over the sources that report it.
 *
 * @example Two archives, one tree
 * ```ts
 * import { concatEntries, install, untar } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const tarOf = async (name: string) => {
 *   await Deno.writeTextFile(`${dir}/${name}`, name);
 *   const { stdout } = await new Deno.Command("tar", { args: ["-cf", "-", "-C", dir, name], stdout: "piped" }).output();
 *   return untar(ReadableStream.from([stdout]));
 * };
 * const result = await install(concatEntries(await tarOf("part1.txt"), await tarOf("part2.txt")), `${dir}/out`);
 * assert.deepEqual(result.manifest.map((file) => file.path), ["part1.txt", "part2.txt"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param sources The archives' entries, in order.
 * @returns All their entries as one iterable.
 */
export function concatEntries(
  ...sources: (AsyncIterable<ArchiveEntry> & Partial<ArchiveEntries>)[]
): ArchiveEntries {
  return {
    get bytesRead() {
      return sources.reduce((sum, source) => sum + (source.bytesRead ?? 0), 0);
    },
    async *[Symbol.asyncIterator]() {
      for (const source of sources) yield* source;
    },
  };
}
