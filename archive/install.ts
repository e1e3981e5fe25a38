/**
 * A staged, verified, atomic install of archive entries into a directory.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import {
  CancelledError,
  IntegrityError,
  LimitError,
  TargetExistsError,
  UnsafeEntryError,
} from "../core/errors.ts";
import { foldKey, NameTable, segmentsOf } from "./_policy.ts";
import type { ArchiveEntries, ArchiveEntry } from "./types.ts";

/** Options for {@linkcode install}. */
export interface InstallOptions {
  /** Replace an existing `targetDir` (swapped in, old tree removed after). Defaults to `false`. */
  replace?: boolean;
  /** Create symlink and hardlink entries (confined to the tree). Defaults to `false`: links are refused. */
  allowLinks?: boolean;
  /** The most file bytes to write in all. Defaults to no limit. */
  maxBytes?: number;
  /** The most bytes one file may hold. Defaults to no limit. */
  maxFileBytes?: number;
  /** The most entries. Defaults to 100 000. */
  maxEntries?: number;
  /** The most path segments in a name. Defaults to 64. */
  maxDepth?: number;
  /**
   * The most bytes written per byte read from the archive source (its
   * `bytesRead`), checked once more than 8 MiB are written. Defaults to 250.
   */
  maxRatio?: number;
  /**
   * A trusted catalog: path → SHA-256 (hex). When given, every file must be
   * listed with a matching hash and every listed file must arrive.
   */
  expected?: Record<string, string>;
  /** Cancels the install; nothing is left behind. */
  signal?: AbortSignal;
}

/** One installed file. */
export interface ManifestEntry {
  /** The path inside the target, `/`-separated. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its SHA-256, lowercase hex. */
  sha256: string;
}

/** What {@linkcode install} put in place. */
export interface InstallResult {
  /** Files installed, hardlinks included (each is also in the manifest). */
  files: number;
  /** Directories created (the target itself not included). */
  directories: number;
  /** File bytes written (a hardlinked file counts once). */
  bytes: number;
  /** Every file with its size and SHA-256: regular files in archive order, then hardlinks (with their target's size and hash). */
  manifest: ManifestEntry[];
}

const RATIO_GRACE = 8 * 1024 * 1024;
const SYNC_BATCH = 64;
const SMALL_FILE = 1024 * 1024;
const STAGING = ".installing-";

interface StagedFile {
  entry: ArchiveEntry;
  path: string;
  manifest: ManifestEntry;
}

interface StagedDir {
  path: string;
  mode: number;
  mtime: Date | undefined;
}

/**
 * Installs archive entries into `targetDir`, all or nothing.
 *
 * Everything is written into a private staging directory beside the target
 * (`<targetDir>.installing-<random>`, mode 0700). Only when every entry has
 * been written, checked and fsynced is the staging directory renamed to
 * `targetDir`; on any error (a typed error from the provider, a broken
 * budget, an unsafe name, a cancelled signal) it is removed and `targetDir`
 * is exactly as it was. Staging directories left by a crashed install are
 * removed by the next one (a live install holds a lock on its own).
 *
 * The rules, the same for every provider:
 *
 * - Names: absolute paths, `..`, backslashes, drive letters, control
 *   characters and empty names are `UnsafeEntryError`s, and so are two names
 *   that are equal after Unicode NFC normalisation and case folding, and any
 *   entry beneath a file or a link.
 * - Links are refused unless `allowLinks`; then a symlink must resolve inside
 *   the tree without passing through another link, a hardlink must name a
 *   file already in the archive, and links are made after every file, so no
 *   write ever goes through one.
 * - Setuid and setgid bits are `UnsafeEntryError`s; devices and fifos never
 *   get here (the providers refuse them); sticky bits are dropped.
 * - Budgets (`maxBytes`, `maxFileBytes`, `maxEntries`, `maxDepth`,
 *   `maxRatio`) are `LimitError`s raised before the budget is passed.
 * - Sizes are always checked, zip CRC-32s by the provider, and `expected`
 *   hashes per file; the result's manifest has every file's SHA-256.
 *
 * An existing `targetDir` is a `TargetExistsError` unless `replace` is set;
 * then the old tree is moved aside, the new one renamed in and the old one
 * removed. (Linux cannot exchange two directories in one rename without
 * `renameat2`, so for the instant between those two renames `targetDir` is
 * absent.)
 *
 * Permissions: `--allow-read` and `--allow-write` on the target's parent.
 *
 * @example Install a tar made by GNU tar
 * ```ts
 * import { install, untar } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/src/bin`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/src/bin/run.sh`, "echo hi\n", { mode: 0o755 });
 * await new Deno.Command("tar", { args: ["-cf", `${dir}/app.tar`, "-C", `${dir}/src`, "bin"] }).output();
 *
 * const archive = await Deno.open(`${dir}/app.tar`);
 * const result = await install(untar(archive.readable), `${dir}/app`);
 * assert.equal(result.files, 1);
 * assert.equal(result.manifest[0]!.path, "bin/run.sh");
 * assert.equal((await Deno.stat(`${dir}/app/bin/run.sh`)).mode! & 0o777, 0o755);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param entries The entries, from {@linkcode untar}, {@linkcode unzip},
 *   {@linkcode openArchive}, {@linkcode decodeFrames} or {@linkcode concatEntries}.
 * @param targetDir The directory to create (or replace).
 * @param options Budgets, link policy, the expected catalog and a `signal`.
 * @returns Counts and the manifest of what was installed.
 */
export async function install(
  entries:
    & AsyncIterable<ArchiveEntry>
    & Partial<Pick<ArchiveEntries, "bytesRead">>,
  targetDir: string,
  options: InstallOptions = {},
): Promise<InstallResult> {
  const limits = {
    maxBytes: budget(options.maxBytes, Infinity, "maxBytes"),
    maxFileBytes: budget(options.maxFileBytes, Infinity, "maxFileBytes"),
    maxEntries: budget(options.maxEntries, 100_000, "maxEntries"),
    maxDepth: budget(options.maxDepth, 64, "maxDepth"),
    maxRatio: budget(options.maxRatio, 250, "maxRatio"),
  };
  const { signal } = options;
  const target = resolve(targetDir);
  const parent = dirname(target);
  const name = basename(target);
  if (signal?.aborted) throw CancelledError.fromSignal(signal);
  const existing = await lstatOrNull(target);
  if (existing && !options.replace) {
    throw new TargetExistsError({ path: target });
  }
  await removeStale(parent, name);

  const staging = join(parent, `${name}${STAGING}${randomHex()}`);
  await Deno.mkdir(staging, { mode: 0o700 });
  const lock = await Deno.open(staging, { read: true });
  let installed = false;
  try {
    await lock.lock(true);
    const result = await stage(entries, staging, options, limits, signal);
    if (signal?.aborted) throw CancelledError.fromSignal(signal);
    await swapIn(staging, target, options.replace === true);
    installed = true;
    return result;
  } finally {
    lock.close();
    if (!installed) await removeTree(staging);
  }
}

async function stage(
  entries: AsyncIterable<ArchiveEntry> & { bytesRead?: number },
  staging: string,
  options: InstallOptions,
  limits: {
    maxBytes: number;
    maxFileBytes: number;
    maxEntries: number;
    maxDepth: number;
    maxRatio: number;
  },
  signal: AbortSignal | undefined,
): Promise<InstallResult> {
  const names = new NameTable(limits.maxDepth);
  const files: StagedFile[] = [];
  const dirs = new Map<string, StagedDir>([["", {
    path: "",
    mode: 0o755,
    mtime: undefined,
  }]]);
  const links: { entry: ArchiveEntry; path: string }[] = [];
  const pending: Deno.FsFile[] = [];
  let total = 0;
  let count = 0;
  const expected = options.expected
    ? new Map(Object.entries(options.expected))
    : undefined;

  const flush = async () => {
    const batch = pending.splice(0);
    try {
      await Promise.all(batch.map((file) => file.syncData()));
    } finally {
      for (const file of batch) file.close();
    }
  };
  const ensureDir = async (segments: string[]) => {
    for (let i = 1; i <= segments.length; i++) {
      const path = segments.slice(0, i).join("/");
      if (dirs.has(path)) continue;
      await Deno.mkdir(join(staging, path), { mode: 0o700 });
      dirs.set(path, { path, mode: 0o755, mtime: undefined });
    }
  };

  try {
    for await (const entry of entries) {
      if (signal?.aborted) throw CancelledError.fromSignal(signal);
      if (++count > limits.maxEntries) {
        throw new LimitError({ what: "entries", limit: limits.maxEntries });
      }
      checkMode(entry);
      if (entry.type === "directory") {
        await entry.body.cancel();
        const segments = names.admit(entry.path, "directory");
        await ensureDir(segments);
        const dir = dirs.get(segments.join("/"))!;
        dir.mode = entry.mode;
        dir.mtime = entry.mtime;
        continue;
      }
      if (entry.type !== "file") {
        await entry.body.cancel();
        if (!options.allowLinks) {
          throw new UnsafeEntryError({
            path: entry.path,
            reason: `it is a ${entry.type} and links are not allowed`,
          });
        }
        const segments = names.admit(entry.path, "link");
        await ensureDir(segments.slice(0, -1));
        links.push({ entry, path: segments.join("/") });
        continue;
      }
      const segments = names.admit(entry.path, "file");
      await ensureDir(segments.slice(0, -1));
      const path = segments.join("/");
      if (entry.size > limits.maxFileBytes) {
        throw new LimitError({
          what: `bytes in ${JSON.stringify(path)}`,
          limit: limits.maxFileBytes,
          actual: entry.size,
        });
      }
      if (total + Math.max(entry.size, 0) > limits.maxBytes) {
        throw new LimitError({
          what: "bytes",
          limit: limits.maxBytes,
          actual: total + entry.size,
        });
      }
      const hash = createHash("sha256");
      const small = entry.size >= 0 && entry.size <= SMALL_FILE;
      const file = small
        ? Deno.openSync(join(staging, path), {
          write: true,
          createNew: true,
          mode: 0o600,
        })
        : await Deno.open(join(staging, path), {
          write: true,
          createNew: true,
          mode: 0o600,
        });
      pending.push(file);
      let size = 0;
      // One write in flight while the next piece is read: the read and the
      // write of a large file overlap instead of taking turns.
      let writing: Promise<void> = Promise.resolve();
      try {
        for await (const piece of entry.body) {
          if (signal?.aborted) throw CancelledError.fromSignal(signal);
          size += piece.length;
          total += piece.length;
          if (size > limits.maxFileBytes) {
            throw new LimitError({
              what: `bytes in ${JSON.stringify(path)}`,
              limit: limits.maxFileBytes,
            });
          }
          if (total > limits.maxBytes) {
            throw new LimitError({ what: "bytes", limit: limits.maxBytes });
          }
          const read = entries.bytesRead;
          if (
            read !== undefined && total > RATIO_GRACE &&
            total > limits.maxRatio * Math.max(read, 1)
          ) {
            throw new LimitError(
              { what: "compression ratio", limit: limits.maxRatio },
              `Cannot continue: ${total} bytes written from ${read} bytes read exceeds the compression ratio limit of ${limits.maxRatio}`,
            );
          }
          if (small) {
            hash.update(piece);
            writeAllSync(file, piece);
          } else {
            await writing;
            writing = writeAll(file, piece);
            hash.update(piece);
          }
        }
      } finally {
        // Settled before the file is synced or closed, also on failure.
        await writing.catch(() => {});
      }
      await writing;
      if (entry.size >= 0 && size !== entry.size) {
        throw new IntegrityError({
          check: "size",
          subject: path,
          expected: String(entry.size),
          actual: String(size),
        });
      }
      const sha256 = hash.digest("hex");
      const manifest = { path, size, sha256 };
      files.push({ entry, path, manifest });
      if (entry.mtime) file.utimeSync(entry.mtime, entry.mtime);
      if (pending.length >= SYNC_BATCH) await flush();
    }
    await flush();

    // Zip readers learn modes and symlinks only from the central directory,
    // at the end: re-read the entries now that the iteration is over.
    const kept: StagedFile[] = [];
    for (const staged of files) {
      checkMode(staged.entry);
      if (staged.entry.type === "symlink") {
        if (!options.allowLinks) {
          throw new UnsafeEntryError({
            path: staged.path,
            reason: "it is a symlink and links are not allowed",
          });
        }
        names.relabel(staged.path, "link");
        links.push({ entry: staged.entry, path: staged.path });
        total -= staged.manifest.size;
      } else kept.push(staged);
    }
    const hardlinks = resolveHardlinks(
      links,
      names,
      new Map(kept.map((staged) => [staged.path, staged.manifest])),
    );
    const manifest = [
      ...kept.map((staged) => staged.manifest),
      ...hardlinks.map((link) => link.manifest),
    ];
    if (expected) checkCatalog(manifest, expected);
    await makeLinks(hardlinks, links, names, staging);
    for (const staged of kept) {
      Deno.chmodSync(join(staging, staged.path), staged.entry.mode & 0o777);
    }
    const ordered = [...dirs.values()].sort((a, b) =>
      depth(b.path) - depth(a.path)
    );
    await Promise.all(ordered.map(async (dir) => {
      const path = join(staging, dir.path);
      const handle = await Deno.open(path, { read: true });
      try {
        await handle.sync();
      } finally {
        handle.close();
      }
    }));
    for (const dir of ordered) {
      const path = join(staging, dir.path);
      await Deno.chmod(path, (dir.mode & 0o777) | 0o700);
      if (dir.mtime) await Deno.utime(path, dir.mtime, dir.mtime);
    }
    return {
      files: manifest.length,
      directories: dirs.size - 1,
      bytes: total,
      manifest,
    };
  } finally {
    for (const file of pending.splice(0)) file.close();
  }
}

function checkMode(entry: ArchiveEntry): void {
  if (entry.mode & 0o6000) {
    throw new UnsafeEntryError({
      path: entry.path,
      reason: `mode ${
        (entry.mode & 0o7777).toString(8)
      } has a setuid or setgid bit`,
    });
  }
}

function checkCatalog(
  files: ManifestEntry[],
  expected: Map<string, string>,
): void {
  const byKey = new Map(
    [...expected].map(([path, sha]) => [
      foldKey(segmentsOf(path, "catalog path").join("/")),
      { path, sha: sha.toLowerCase() },
    ]),
  );
  for (const manifest of files) {
    const { path } = manifest;
    const want = byKey.get(foldKey(path));
    if (want === undefined) {
      throw new IntegrityError(
        { check: "sha256", subject: path },
        `Cannot verify ${path}: it is not in the expected catalog`,
      );
    }
    if (want.sha !== manifest.sha256) {
      throw new IntegrityError({
        check: "sha256",
        subject: path,
        expected: want.sha,
        actual: manifest.sha256,
      });
    }
    byKey.delete(foldKey(path));
  }
  for (const { path } of byKey.values()) {
    throw new IntegrityError(
      { check: "sha256", subject: path },
      `Cannot verify ${path}: it is in the expected catalog but not in the archive`,
    );
  }
}

/** Checks each hardlink names a file of the archive; returns the pairs, with the manifest entry each link shares. */
function resolveHardlinks(
  links: { entry: ArchiveEntry; path: string }[],
  names: NameTable,
  files: Map<string, ManifestEntry>,
): { path: string; target: string; manifest: ManifestEntry }[] {
  const out = [];
  for (const { entry, path } of links) {
    if (entry.type !== "hardlink") continue;
    const unsafe = (reason: string): never => {
      throw new UnsafeEntryError({ path: entry.path, reason });
    };
    let target = "";
    try {
      target = segmentsOf(entry.linkTarget ?? "", "link target").join("/");
    } catch (error) {
      if (!(error instanceof UnsafeEntryError)) throw error;
      unsafe(`its target ${JSON.stringify(entry.linkTarget)}: ${error.reason}`);
    }
    const linked = files.get(target);
    if (names.kindOf(target) !== "file" || linked === undefined) {
      unsafe(
        `its target ${
          JSON.stringify(entry.linkTarget)
        } is not a file of the archive`,
      );
    }
    out.push({ path, target, manifest: { ...linked!, path } });
  }
  return out;
}

async function makeLinks(
  hardlinks: { path: string; target: string }[],
  links: { entry: ArchiveEntry; path: string }[],
  names: NameTable,
  staging: string,
): Promise<void> {
  // Hardlinks first (they name files), then symlinks, so nothing is ever
  // written or linked through a symlink.
  for (const { path, target } of hardlinks) {
    await Deno.link(join(staging, target), join(staging, path));
  }
  for (const { entry, path } of links) {
    if (entry.type !== "symlink") continue;
    const unsafe = (reason: string): never => {
      throw new UnsafeEntryError({ path: entry.path, reason });
    };
    let linkTarget = entry.linkTarget;
    if (linkTarget === undefined) {
      // A zip symlink: its target is the body, already staged as a file.
      const staged = join(staging, path);
      if ((await Deno.lstat(staged)).size > 4096) {
        unsafe("its target is too long");
      }
      linkTarget = await Deno.readTextFile(staged);
      await Deno.remove(staged);
    }
    if (linkTarget === "" || linkTarget.includes("\0")) {
      unsafe("empty link target");
    }
    if (linkTarget.startsWith("/")) unsafe("its target is an absolute path");
    const resolved = path.split("/").slice(0, -1);
    for (const segment of linkTarget.split("/")) {
      if (segment === "" || segment === ".") continue;
      if (segment !== "..") resolved.push(segment);
      else if (resolved.pop() === undefined) {
        unsafe(
          `its target ${
            JSON.stringify(linkTarget)
          } leaves the target directory`,
        );
      }
    }
    const through = names.linkAbove(resolved);
    if (through !== undefined) {
      unsafe(`its target passes through the link ${JSON.stringify(through)}`);
    }
    await Deno.symlink(linkTarget, join(staging, path));
  }
}

async function swapIn(
  staging: string,
  target: string,
  replace: boolean,
): Promise<void> {
  const parent = dirname(target);
  if (!replace) {
    try {
      // rename() would replace an empty directory that appeared meanwhile.
      await Deno.mkdir(target, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new TargetExistsError({ path: target });
      }
      throw error;
    }
    await Deno.rename(staging, target);
  } else {
    const old = `${staging}-old`;
    let moved = false;
    try {
      await Deno.rename(target, old);
      moved = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    try {
      await Deno.rename(staging, target);
    } catch (error) {
      if (moved) await Deno.rename(old, target);
      throw error;
    }
    if (moved) await removeTree(old);
  }
  await syncDir(parent);
}

async function removeStale(parent: string, name: string): Promise<void> {
  let listing: Deno.DirEntry[];
  try {
    listing = await Array.fromAsync(Deno.readDir(parent));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  const stale = new RegExp(
    `^${escape(name)}${escape(STAGING)}[0-9a-f]{16}(-old)?$`,
  );
  for (const item of listing) {
    if (!item.isDirectory || item.isSymlink || !stale.test(item.name)) continue;
    const path = join(parent, item.name);
    let handle: Deno.FsFile;
    try {
      handle = await Deno.open(path, { read: true });
    } catch {
      continue;
    }
    try {
      // A live install holds the lock on its staging directory.
      if (item.name.endsWith("-old") || await handle.tryLock(true)) {
        await removeTree(path);
      }
    } finally {
      handle.close();
    }
  }
}

async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
    // A read-only directory from the archive: make directories writable, then retry.
    await makeWritable(path);
    await Deno.remove(path, { recursive: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const info = await Deno.lstat(path);
  if (!info.isDirectory) return;
  await Deno.chmod(path, 0o700);
  for await (const item of Deno.readDir(path)) {
    await makeWritable(join(path, item.name));
  }
}

async function syncDir(path: string): Promise<void> {
  const handle = await Deno.open(path, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await file.write(bytes.subarray(at));
  }
}

function budget(value: number | undefined, fallback: number, name: string) {
  if (value === undefined) return fallback;
  if (!(value >= 0)) {
    throw new RangeError(
      `Cannot install: ${name} must be a number >= 0, got ${value}`,
    );
  }
  return value;
}

function depth(path: string): number {
  return path === "" ? 0 : path.split("/").length;
}

function randomHex(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
