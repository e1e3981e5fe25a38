/**
 * Archives, streamed straight into an installed directory: one-pass tar,
 * tar.gz and zip readers, a framed format for sending install entries from a
 * peer, and a staged, verified, atomic {@linkcode install} that no archive
 * can make write outside its target.
 *
 * - {@linkcode untar}, {@linkcode unzip}, {@linkcode openArchive}: bytes to
 *   {@linkcode ArchiveEntry}s, in one pass and bounded memory; {@linkcode gunzip}
 *   for gzip with concatenated members.
 * - {@linkcode install}: entries to a directory, all or nothing.
 * - {@linkcode concatEntries}: several archives installed as one tree.
 * - {@linkcode encodeFrames}, {@linkcode decodeFrames}: entries over the wire.
 *
 * Permissions: none to read archives from streams; `--allow-read` and
 * `--allow-write` on the target's parent directory to install.
 *
 * @example Download-free install from a stream
 * ```ts
 * import { install, openArchive } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/site`);
 * await Deno.writeTextFile(`${dir}/site/index.html`, "<h1>hi</h1>");
 * await new Deno.Command("zip", { args: ["-qr", "site.zip", "site"], cwd: dir }).output();
 * const zip = await Deno.open(`${dir}/site.zip`);
 * const result = await install(openArchive(zip.readable), `${dir}/www`);
 * assert.equal(await Deno.readTextFile(`${dir}/www/site/index.html`), "<h1>hi</h1>");
 * assert.equal(result.manifest[0]!.size, 11);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export { concatEntries } from "./concat.ts";
export {
  decodeFrames,
  type DecodeFramesOptions,
  encodeFrames,
  type EncodeFramesOptions,
} from "./frames.ts";
export { gunzip } from "./gunzip.ts";
export {
  install,
  type InstallOptions,
  type InstallResult,
  type ManifestEntry,
} from "./install.ts";
export { type ArchiveKind, openArchive } from "./open.ts";
export { untar, type UntarOptions } from "./untar.ts";
export { unzip } from "./unzip.ts";
export type {
  ArchiveEntries,
  ArchiveEntry,
  EntryType,
  ReadArchiveOptions,
} from "./types.ts";
