/**
 * One entry point for any supported archive: gzip-compressed tar, tar or zip,
 * told apart by their first bytes.
 *
 * @module
 */

import { FormatError } from "../core/errors.ts";
import { gunzipFrom } from "./gunzip.ts";
import { ByteReader } from "./_reader.ts";
import { checksumProblem, tarEntries, type UntarOptions } from "./untar.ts";
import { zipEntries } from "./unzip.ts";
import type { ArchiveEntries, ArchiveEntry } from "./types.ts";

/** The kinds of archive {@linkcode openArchive} recognises. */
export type ArchiveKind = "tar" | "tar.gz" | "zip";

/**
 * Sniffs what kind of archive `source` holds and reads it with the right
 * provider: gzip (decompressed with {@linkcode gunzip}, concatenated members
 * included) around a tar, a plain tar, or a zip.
 *
 * `bytesRead` counts the bytes of `source` itself, compressed or not. Input
 * that is none of these is a `FormatError` on the first step of the
 * iteration.
 *
 * @example Install whatever archive arrives
 * ```ts
 * import { install, openArchive } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/src`);
 * await Deno.writeTextFile(`${dir}/src/notes.txt`, "hello");
 * await new Deno.Command("tar", { args: ["-czf", `${dir}/src.tar.gz`, "-C", `${dir}/src`, "."] }).output();
 * const archive = await Deno.open(`${dir}/src.tar.gz`);
 * const result = await install(openArchive(archive.readable), `${dir}/out`);
 * assert.equal(result.files, 1);
 * assert.equal(await Deno.readTextFile(`${dir}/out/notes.txt`), "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param source The archive bytes.
 * @param options A `signal`, and the tar metadata cap.
 * @returns The entries, read once, front to back.
 */
export function openArchive(
  source: ReadableStream<Uint8Array>,
  options: UntarOptions = {},
): ArchiveEntries {
  const reader = new ByteReader(source, "archive", options.signal);
  const maxMetadata = options.maxMetadataBytes ?? 1024 * 1024;
  return {
    get bytesRead() {
      return reader.position;
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<ArchiveEntry> {
      const kind = await sniff(reader);
      if (kind === "zip") return yield* zipEntries(reader);
      if (kind === "tar") return yield* tarEntries(reader, maxMetadata);
      const inner = new ByteReader(
        gunzipFrom(reader),
        "tar archive",
        options.signal,
      );
      return yield* tarEntries(inner, maxMetadata);
    },
  };
}

/** Tells a gzip, tar or zip stream apart from its first bytes, without taking them. */
async function sniff(reader: ByteReader): Promise<ArchiveKind> {
  await reader.fill(512);
  const head = reader.peek(Math.min(reader.buffered, 512));
  if (head[0] === 0x1f && head[1] === 0x8b) return "tar.gz";
  // Local header, empty archive, or a split-archive marker (which the zip
  // reader refuses as unsupported).
  const zip = ["PK\x03\x04", "PK\x05\x06", "PK\x07\x08", "PK00"];
  if (zip.includes(String.fromCharCode(...head.subarray(0, 4)))) return "zip";
  if (head.length === 512 && looksLikeTar(head)) return "tar";
  await reader.cancel();
  throw new FormatError({
    format: "archive",
    reason: "not a tar, tar.gz or zip archive",
    offset: 0,
  });
}

function looksLikeTar(block: Uint8Array): boolean {
  return block.every((b) => b === 0) || checksumProblem(block) === undefined ||
    String.fromCharCode(...block.subarray(257, 262)) === "ustar";
}
