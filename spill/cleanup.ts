// Collecting the directories of spill stores whose process died.

import { join } from "node:path";

const DAY_MS = 24 * 60 * 60 * 1000;
/** A clock before this is broken: no age computed from it can be trusted. */
const SANE_CLOCK_MS = Date.UTC(2020, 0, 1);
/** `spill_<unix seconds>_<random hex>`, as {@linkcode SpillStore.open} names them. */
const STORE_NAME = /^spill_(\d{1,12})_([0-9a-f]{8,64})$/;

/** Options for {@linkcode cleanupStale}. */
export interface CleanupStaleOptions {
  /** How old (by the time in its name) a store's directory must be to go (default 24 h). */
  maxAgeMs?: number;
  /** The current time in ms since the epoch (default `Date.now()`); for tests. */
  now?: number;
}

/** What {@linkcode cleanupStale} did, by entry name within the root. */
export interface CleanupReport {
  /** Stale store directories that were deleted. */
  removed: string[];
  /** Store directories whose lock a live process holds. */
  skippedLocked: string[];
  /** Store directories younger than `maxAgeMs`, from the future, or all of them when the clock is broken. */
  skippedYoung: string[];
  /** Everything else: other names, files, symlinks (even named like a store). */
  ignored: string[];
  /** The clock read before 2020, so nothing was aged or removed. */
  brokenClock: boolean;
}

/**
 * Deletes the directories of spill stores left by processes that died.
 *
 * Only entries of `root` named `spill_<seconds>_<random hex>` are looked at,
 * with `lstat`: only real directories are candidates (a symlink is never
 * followed nor removed). A candidate goes only when it is older than
 * `maxAgeMs` by the time in its name, and no process holds the lock on its
 * `.lock` file; the lock is held while the directory is deleted. A clock
 * before 2020 removes nothing, and names from the future are skipped. Nothing
 * outside `root` is touched.
 *
 * @param root The directory holding store directories.
 * @param options Age and clock.
 * @returns What was removed, skipped and ignored.
 *
 * @example
 * ```ts
 * import { cleanupStale } from "@sluice/sluice/spill";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/spill_1700000000_0123456789abcdef`); // a crash in 2023
 * await Deno.mkdir(`${root}/keep-me`);
 * const report = await cleanupStale(root);
 * assert.deepEqual(report.removed, ["spill_1700000000_0123456789abcdef"]);
 * assert.deepEqual(report.ignored, ["keep-me"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function cleanupStale(
  root: string,
  options: CleanupStaleOptions = {},
): Promise<CleanupReport> {
  const maxAgeMs = options.maxAgeMs ?? DAY_MS;
  const now = options.now ?? Date.now();
  const report: CleanupReport = {
    removed: [],
    skippedLocked: [],
    skippedYoung: [],
    ignored: [],
    brokenClock: now < SANE_CLOCK_MS,
  };
  const names: string[] = [];
  for await (const entry of Deno.readDir(root)) names.push(entry.name);
  names.sort();
  for (const name of names) {
    const match = STORE_NAME.exec(name);
    const path = join(root, name);
    const info = match ? await lstatOrUndefined(path) : undefined;
    if (match === null || info === undefined || !info.isDirectory) {
      report.ignored.push(name);
      continue;
    }
    const bornMs = Number(match[1]) * 1000;
    if (report.brokenClock || bornMs > now || now - bornMs < maxAgeMs) {
      report.skippedYoung.push(name);
      continue;
    }
    const lock = await lockOf(path);
    if (lock === "held") {
      report.skippedLocked.push(name);
      continue;
    }
    try {
      // Removing a path that is (or became) a symlink removes the link
      // only; a recursive removal never follows links inside.
      await Deno.remove(path, { recursive: true });
      report.removed.push(name);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    } finally {
      lock?.close();
    }
  }
  return report;
}

async function lstatOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Takes the lock of a store directory: the open `.lock` file on success,
 * "held" when a live process has it, undefined when there is no regular
 * `.lock` file to lock (a store that died before making it).
 */
async function lockOf(dir: string): Promise<Deno.FsFile | "held" | undefined> {
  const path = join(dir, ".lock");
  const info = await lstatOrUndefined(path);
  if (info === undefined || !info.isFile) return undefined;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  if (await file.tryLock(true)) return file;
  file.close();
  return "held";
}
