/**
 * Download a URL to a file that survives dropped connections, restarts of
 * the process and misbehaving servers, and never leaves a corrupt file at
 * its final path.
 *
 * {@linkcode download} writes `path.part` beside a manifest (`path.part.json`)
 * that records the resource's validator, size and the last durable offset;
 * a later call resumes from there. Data is fsynced before the manifest that
 * covers it; the finished file is verified, renamed into place atomically
 * and the directory fsynced.
 *
 * Needs `--allow-net` to the server and `--allow-read --allow-write` on the
 * destination's directory.
 *
 * @example
 * ```ts
 * import { download } from "@sluice/sluice/range";
 * import assert from "node:assert/strict";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("file contents", { headers: { etag: '"v1"' } }));
 * const dir = await Deno.makeTempDir();
 * const receipt = await download(`http://127.0.0.1:${server.addr.port}/f`, `${dir}/f`);
 * assert.equal(await Deno.readTextFile(`${dir}/f`), "file contents");
 * assert.equal(receipt.bytes, 13);
 * assert.equal(receipt.resumedFrom, 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { dirname } from "node:path";
import type { RetryOptions } from "../retry/retry.ts";
import { syncDirectory, writeFileAtomic } from "./_atomic.ts";
import { partPaths } from "./_part.ts";
import { WriteBehind } from "./_write_behind.ts";
import {
  CancelledError,
  HttpError,
  IntegrityError,
  LockedError,
  SluiceError,
} from "./errors.ts";
import {
  RangeNotHonoredError,
  rangeStream,
  ResourceChangedError,
  type StrongValidator,
} from "./range_stream.ts";

/** What {@linkcode download} reports. */
export type DownloadEvent =
  | {
    /** The download begins, from 0 or from the durable offset of a `.part` it resumes. */
    type: "start";
    /** The first byte asked for. */
    offset: number;
  }
  | {
    /** Bytes are durable up to `offset` (a checkpoint was written). */
    type: "checkpoint";
    /** The durable offset. */
    offset: number;
  }
  | {
    /** Bytes arrived; they reach the `.part` shortly after, and are durable at the next checkpoint. */
    type: "progress";
    /** Bytes received so far, counting from the start of the file. */
    bytes: number;
    /** The file's size, when known. */
    total: number | undefined;
  }
  | {
    /** The `.part` was discarded and the download starts again from 0. */
    type: "restart";
    /** Why. */
    error: unknown;
  }
  | {
    /** The download moved on to the next mirror. */
    type: "failover";
    /** The mirror now used. */
    url: string;
    /** Why the previous one was left. */
    error: unknown;
  };

/** Options of {@linkcode download}. */
export interface DownloadOptions {
  /** Aborting it stops with a `CancelledError` and keeps the `.part` to resume. */
  signal?: AbortSignal;
  /** Extra request headers. */
  headers?: HeadersInit;
  /** The retry policy while no bytes arrive (see `rangeStream`). */
  retry?: Omit<RetryOptions, "signal">;
  /** A connection silent for this long is dropped and resumed. Defaults to 30 000 ms. */
  stallTimeoutMs?: number;
  /** The largest file accepted, declared or streamed. Defaults to 100 GiB. */
  maxBytes?: number;
  /** The expected SHA-256 (hex); a mismatch discards the `.part` and throws `IntegrityError`. */
  sha256?: string;
  /** The expected size in bytes; checked like `sha256`. */
  size?: number;
  /** Fsync and write the manifest after this many new bytes. Defaults to 8 MiB. */
  checkpointBytes?: number;
  /** How many times the `.part` may be discarded (resource changed, range ignored) before giving up. Defaults to 3. */
  maxRestarts?: number;
  /** Called at the start and on progress, checkpoints, restarts and failovers. */
  onProgress?: (event: DownloadEvent) => void;
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
}

/** What a finished {@linkcode download} returns. */
export interface DownloadReceipt {
  /** The final path. */
  path: string;
  /** The URL the bytes came from last. */
  url: string;
  /** The file's size. */
  bytes: number;
  /** Its SHA-256, hex, over the whole file (the resumed prefix too). */
  sha256: string;
  /** The durable offset this call resumed from (0 for a fresh start). */
  resumedFrom: number;
  /** How many times the `.part` was discarded and started again. */
  restarts: number;
  /** How many streams were opened (one per start, restart or failover). */
  attempts: number;
}

/** The manifest beside a `.part`: what the bytes in it are, and how many are durable. */
interface Manifest {
  version: 1;
  url: string;
  validator: StrongValidator | null;
  total: number | null;
  offset: number;
}

const DEFAULT_MAX_BYTES = 100 * 1024 ** 3;

async function readManifest(path: string): Promise<Manifest | undefined> {
  try {
    const value = JSON.parse(await Deno.readTextFile(path));
    const ok = value?.version === 1 && typeof value.url === "string" &&
      Number.isSafeInteger(value.offset) && value.offset >= 0 &&
      (value.total === null || Number.isSafeInteger(value.total)) &&
      (value.validator === null ||
        (["etag", "last-modified"].includes(value.validator?.header) &&
          typeof value.validator.value === "string"));
    return ok ? value as Manifest : undefined;
  } catch {
    return undefined; // missing or torn: the .part cannot be trusted
  }
}

// Whether an error means the .part no longer matches the resource.
function needsRestart(error: unknown): boolean {
  return error instanceof ResourceChangedError ||
    error instanceof RangeNotHonoredError ||
    (error instanceof HttpError &&
      (error.status === 412 || error.status === 416));
}

/**
 * Downloads `url` (or the first of several mirrors that works) to `path`.
 *
 * Resuming: an existing `path.part` with a valid manifest is truncated back
 * to the manifest's durable offset, its bytes are hashed, and the transfer
 * continues with a range request pinned by `If-Range` to the saved
 * validator. A correct 206 appends; a 200, a changed size or validator, a
 * 412, a 416 (other than one confirming the file is complete) or a range
 * the server will not honour discards the `.part` and starts from 0, at most
 * `maxRestarts` times.
 *
 * On success the file is fsynced, checked against `size` and `sha256`,
 * renamed to `path`, the directory fsynced and the manifest removed. On
 * error or abort the `.part` and manifest stay (after a final checkpoint),
 * so the next call resumes; when no byte arrived (a 404, say), or the digest
 * does not match, they are removed. Two downloads of
 * one `path` at once: the second fails with `LockedError`.
 *
 * @param source The URL, or mirrors in order of preference.
 * @param path The destination file.
 * @param options Expected digest and size, limits, checkpoints, signal.
 * @returns The receipt.
 * @throws {IntegrityError} When the file does not match `sha256` or `size`.
 * @throws {LockedError} When another download holds `path.part`.
 * @throws {CancelledError} When `signal` aborts.
 *
 * @example Check the digest
 * ```ts
 * import { download } from "@sluice/sluice/range";
 * import { IntegrityError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("tampered"));
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(
 *   download(`http://127.0.0.1:${server.addr.port}/f`, `${dir}/f`, { sha256: "00".repeat(32) }),
 *   IntegrityError,
 * );
 * assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function download(
  source: string | URL | readonly (string | URL)[],
  path: string,
  options: DownloadOptions = {},
): Promise<DownloadReceipt> {
  const urls = (Array.isArray(source) ? source : [source]).map((u) =>
    new URL(u).href
  );
  if (urls.length === 0) throw new TypeError("Cannot download: no URL given");
  const checkpointBytes = options.checkpointBytes ?? 8 * 1024 * 1024;
  const maxRestarts = options.maxRestarts ?? 3;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const emit = options.onProgress ?? (() => {});
  const signal = options.signal;
  const { part: partPath, manifest: manifestPath } = partPaths(path);

  using part = await Deno.open(partPath, {
    read: true,
    write: true,
    create: true,
  });
  if (!await part.tryLock(true)) throw new LockedError({ path: partPath });

  const saved = await readManifest(manifestPath);
  let mirror = saved ? Math.max(0, urls.indexOf(saved.url)) : 0;
  let validator = saved?.validator ?? undefined;
  let total = saved?.total ?? undefined;
  let offset = saved && (await part.stat()).size >= saved.offset
    ? saved.offset
    : 0;
  const resumedFrom = offset;
  let restarts = 0;
  let attempts = 0;
  let hash = await hashPrefix(part, offset);

  // Called with every byte up to `at` fsynced.
  const saveManifest = async (at: number) => {
    const manifest: Manifest = {
      version: 1,
      url: urls[mirror]!,
      validator: validator ?? null,
      total: total ?? null,
      offset: at,
    };
    await writeFileAtomic(
      manifestPath,
      new TextEncoder().encode(JSON.stringify(manifest)),
    );
    emit({ type: "checkpoint", offset: at });
  };
  // Disk writes and the fsync-then-manifest checkpoints every
  // `checkpointBytes` run behind the network, in order.
  const writer = new WriteBehind(part, {
    offset,
    syncEvery: checkpointBytes,
    onDurable: saveManifest,
  });
  const checkpoint = async () => {
    const at = await writer.flush();
    await part.syncData();
    await saveManifest(at);
  };
  const restart = async (error: unknown) => {
    if (++restarts > maxRestarts) throw error;
    emit({ type: "restart", error });
    offset = 0;
    validator = undefined;
    total = undefined;
    hash = createHash("sha256");
    await part.truncate(0);
    writer.reset(0);
    await checkpoint();
  };

  // On the way out with an error: the bytes so far are checkpointed for the
  // next call, or, when none arrived, the .part and manifest go, since there
  // is nothing to resume (a 404 leaves nothing behind).
  const keepOrDrop = async () => {
    if (offset > 0) return await checkpoint().catch(() => {});
    await Deno.remove(partPath).catch(() => {});
    await Deno.remove(manifestPath).catch(() => {});
  };

  await part.truncate(offset);
  emit({ type: "start", offset });
  while (true) {
    attempts++;
    const url = urls[mirror]!;
    try {
      const stream = rangeStream(url, {
        start: offset,
        maxBytes,
        ...(signal ? { signal } : {}),
        ...(options.headers ? { headers: options.headers } : {}),
        ...(options.retry ? { retry: options.retry } : {}),
        ...(options.stallTimeoutMs
          ? { stallTimeoutMs: options.stallTimeoutMs }
          : {}),
        ...(options.fetch ? { fetch: options.fetch } : {}),
        ...(validator ? { validator } : {}),
        ...(total !== undefined ? { total } : {}),
        onProgress(event) {
          if (event.type !== "response") return;
          validator = event.validator;
          total = event.total;
        },
      });
      await part.seek(offset, Deno.SeekMode.Start);
      for await (const piece of stream) {
        hash.update(piece);
        offset += piece.length;
        await writer.write(piece);
        emit({ type: "progress", bytes: offset, total });
      }
      await writer.flush();
      break;
    } catch (error) {
      // What arrived before the fault is good: it goes to the file first.
      await writer.flush();
      if (signal?.aborted) {
        await keepOrDrop();
        throw CancelledError.fromSignal(signal);
      }
      // Restarting helps only when there are bytes to discard; from 0 the
      // same answer would come again.
      if (offset > 0 && needsRestart(error)) {
        await restart(error);
        continue;
      }
      if (
        mirror + 1 < urls.length &&
        !(error instanceof SluiceError && error.retryable)
      ) {
        // Another mirror: its If-Range check (or the digest) decides whether the .part fits.
        await checkpoint();
        mirror++;
        emit({ type: "failover", url: urls[mirror]!, error });
        // Mirrors rarely share ETags; with a digest to check at the end, the
        // new mirror pins its own validator instead of forcing a restart.
        if (options.sha256 !== undefined) validator = undefined;
        continue;
      }
      await keepOrDrop();
      throw error;
    }
  }

  await part.syncData();
  const digest = hash.digest("hex");
  const problem = options.size !== undefined && offset !== options.size
    ? { check: "size", expected: String(options.size), actual: String(offset) }
    : options.sha256 !== undefined && digest !== options.sha256.toLowerCase()
    ? {
      check: "sha256",
      expected: options.sha256.toLowerCase(),
      actual: digest,
    }
    : undefined;
  if (problem) {
    // The bytes are wrong, not merely incomplete: nothing of them is kept.
    await Deno.remove(partPath).catch(() => {});
    await Deno.remove(manifestPath).catch(() => {});
    throw new IntegrityError({ ...problem, subject: urls[mirror]! });
  }
  await Deno.rename(partPath, path);
  await syncDirectory(dirname(path));
  await Deno.remove(manifestPath).catch(() => {});
  return {
    path,
    url: urls[mirror]!,
    bytes: offset,
    sha256: digest,
    resumedFrom,
    restarts,
    attempts,
  };
}

// Hashes the first `length` bytes of the .part (the prefix a resume keeps).
async function hashPrefix(file: Deno.FsFile, length: number): Promise<Hash> {
  const hash = createHash("sha256");
  await file.seek(0, Deno.SeekMode.Start);
  const buffer = new Uint8Array(1024 * 1024);
  let left = length;
  while (left > 0) {
    const n = await file.read(
      buffer.subarray(0, Math.min(left, buffer.length)),
    );
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    left -= n;
  }
  return hash;
}
