/**
 * Benchmarks {@linkcode SpillStore} against the raw `Deno.writeFile` /
 * `Deno.readFile` a user would call instead, on 1 GiB held as 1024 values of
 * 1 MiB, in one temp directory (so on one file system).
 *
 * Setup, once, before any bench runs: 16 distinct 1 MiB buffers of
 * pseudo-random bytes, reused round-robin for the 1024 values, and their
 * SHA-256 (from `crypto.subtle`, not the store's `node:crypto`). The "get"
 * group's copies are written by its first iteration (a warmup, not timed),
 * after the "put" group is done: the 1024 values with `Deno.writeFile` into
 * a plain directory and with `put` into a store, both (2 GiB) fsynced so
 * that the kernel does not write them back while a bench is timed; they stay
 * in the page cache until the end. So at most 2 GiB is on disk at a time.
 *
 * - "put 1 GiB": `store.put(key, bytes)` for each value, against the
 *   baseline `Deno.writeFile(path, bytes)`. `put` does more than the
 *   baseline: it writes a temp file, renames it into place and computes the
 *   SHA-256 of the bytes on the way (neither side calls fsync). Only the 1024
 *   writes are timed (`b.start()` / `b.end()`); after them, untimed, the
 *   iteration checks the outcome and deletes the 1024 values (`delete` /
 *   `Deno.remove`). So every iteration of either side creates 1024 new files
 *   in an empty directory (spilling is writing new values, and overwriting
 *   would let `Deno.writeFile` reuse the inodes while `put` always makes a
 *   new one), neither side pays for freeing old data, and at most 1 GiB of it
 *   exists at a time. The values are deleted seconds after being written,
 *   long before the kernel would write the dirty pages back, so what is
 *   measured is file creation and the copy into the page cache, plus the
 *   store's own work.
 * - "get 1 GiB": every value read back whole from the setup copies:
 *   `store.get(key)` drained with a reader, and `new Response(store.get(key))
 *   .bytes()`, against the baseline `Deno.readFile(path)`.
 *
 * Every iteration checks its result and throws if it is wrong, so a broken
 * path cannot look fast: each `put` must return size 1 MiB and the SHA-256
 * of its buffer, the store must then hold exactly 1 GiB, and every raw file
 * must stat at 1 MiB; every read must give 1 MiB per value, 1 GiB in all,
 * with sampled bytes equal to the buffer it was written from. Throughput in
 * GB/s is 1 073 741 824 bytes divided by the time per iteration.
 *
 * The times depend much on how fast the machine creates a file and hands
 * out fresh pages for the page cache; in a VM that returns freed memory to
 * its host both can swing several-fold from one iteration to the next, so
 * compare runs by their ratios and look at the min column too.
 *
 * The temp directory is removed when the process unloads (also after a
 * failed bench), when the module's setup fails, and on SIGINT/SIGTERM.
 *
 * Run it with:
 *
 * ```sh
 * deno bench -A bench/spill_bench.ts
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { SpillStore } from "../spill/mod.ts";
import { benchTempDir } from "./_process.ts";

/** Bytes per value. */
const VALUE_SIZE = 1024 * 1024;
/** Values per iteration. */
const COUNT = 1024;
/** Bytes per iteration: 1 GiB. */
const SIZE = VALUE_SIZE * COUNT;
/** Distinct buffers, reused round-robin. */
const DISTINCT = 16;
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;
/** Few samples: each iteration moves 1 GiB, so one run stays short. */
const SAMPLES = { n: 5, warmup: 1 };

/** `VALUE_SIZE` pseudo-random bytes. */
function randomValue(): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(VALUE_SIZE);
  for (let at = 0; at < bytes.length; at += RANDOM_PIECE) {
    crypto.getRandomValues(bytes.subarray(at, at + RANDOM_PIECE));
  }
  return bytes;
}

function toHex(bytes: ArrayBuffer): string {
  return Array.from(
    new Uint8Array(bytes),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

const buffers: Uint8Array<ArrayBuffer>[] = Array.from(
  { length: DISTINCT },
  randomValue,
);
const hashes: string[] = await Promise.all(
  buffers.map(async (b) => toHex(await crypto.subtle.digest("SHA-256", b))),
);
/** Key (and file name) of value `i`. */
const names: string[] = Array.from(
  { length: COUNT },
  (_, i) => `v${String(i).padStart(4, "0")}`,
);
const buffer = (i: number): Uint8Array<ArrayBuffer> => buffers[i % DISTINCT]!;

// ---------------------------------------------------------------------------
// Checks

/** Throws unless a put of value `i` gave its size and SHA-256. */
function checkPut(
  i: number,
  result: { size: number; sha256: string },
): void {
  if (result.size !== VALUE_SIZE || result.sha256 !== hashes[i % DISTINCT]) {
    throw new Error(
      `put ${names[i]}: size ${result.size}, sha256 ${result.sha256}`,
    );
  }
}

/** Throws unless `bytes` (at `offset` in value `i`) match its buffer there. */
function checkSample(
  name: string,
  i: number,
  offset: number,
  bytes: Uint8Array,
): void {
  const expected = buffer(i);
  const last = bytes.length - 1;
  if (
    offset + bytes.length > VALUE_SIZE ||
    bytes[0] !== expected[offset] ||
    bytes[last] !== expected[offset + last]
  ) {
    throw new Error(`${name}: value ${names[i]} has the wrong bytes`);
  }
}

/** Throws unless `count` is exactly 1 GiB. */
function checkTotal(name: string, count: number): void {
  if (count !== SIZE) {
    throw new Error(`${name}: got ${count} bytes, expected ${SIZE}`);
  }
}

/**
 * Flushes every non-empty file under `path` to disk (the store's empty lock
 * file is skipped), so that the kernel does not write the setup's 2 GiB back
 * while a bench is timed.
 */
async function syncFiles(path: string): Promise<void> {
  for await (const entry of Deno.readDir(path)) {
    const child = join(path, entry.name);
    if (entry.isDirectory) {
      await syncFiles(child);
    } else if (entry.isFile && (await Deno.stat(child)).size > 0) {
      using file = await Deno.open(child, { read: true });
      await file.syncData();
    }
  }
}

// ---------------------------------------------------------------------------
// The temp directory, and its removal however the run ends

const { dir, remove: removeDir } = await benchTempDir("sluice_spill_bench_");

const storeRoot = join(dir, "stores");
const rawGetDir = join(dir, "raw_get");
const rawPutDir = join(dir, "raw_put");
const rawGetPaths = names.map((name) => join(rawGetDir, name));
const rawPutPaths = names.map((name) => join(rawPutDir, name));

/** The store the "put" group writes to, emptied after every iteration. */
let putStore: SpillStore;
try {
  await Deno.mkdir(rawPutDir);
  putStore = await SpillStore.open({ root: storeRoot, cleanupStale: false });
} catch (error) {
  removeDir(); // "unload" is not dispatched when the module fails to load
  throw error;
}

/**
 * Writes the two copies the "get" group reads (raw files and a store) and
 * fsyncs them. Called by the first "get" iteration to run, a warmup, so the
 * put group has finished and at most 2 GiB is on disk at a time.
 */
async function writeGetFixtures(): Promise<SpillStore> {
  await Deno.mkdir(rawGetDir);
  const store = await SpillStore.open({ root: storeRoot, cleanupStale: false });
  for (let i = 0; i < COUNT; i++) {
    await Deno.writeFile(rawGetPaths[i]!, buffer(i));
    checkPut(i, await store.put(names[i]!, buffer(i)));
  }
  if (store.size !== SIZE) {
    throw new Error(`setup: the get store holds ${store.size} bytes`);
  }
  await syncFiles(rawGetDir);
  await syncFiles(store.path);
  return store;
}
let getFixtures: Promise<SpillStore> | undefined;
/** The store the "get" group reads from, once the fixtures are written. */
function getStore(): Promise<SpillStore> {
  return getFixtures ??= writeGetFixtures();
}

// ---------------------------------------------------------------------------
// Group 1: put 1 GiB

const PUT = "put 1 GiB";

Deno.bench({
  name: "Deno.writeFile",
  group: PUT,
  baseline: true,
  ...SAMPLES,
  async fn(b) {
    b.start();
    for (let i = 0; i < COUNT; i++) {
      await Deno.writeFile(rawPutPaths[i]!, buffer(i));
    }
    b.end();
    let count = 0;
    for (const path of rawPutPaths) {
      count += (await Deno.stat(path)).size;
      await Deno.remove(path);
    }
    checkTotal("Deno.writeFile", count);
  },
});

Deno.bench({
  name: "SpillStore put (+ SHA-256, rename)",
  group: PUT,
  ...SAMPLES,
  async fn(b) {
    b.start();
    for (let i = 0; i < COUNT; i++) {
      checkPut(i, await putStore.put(names[i]!, buffer(i)));
    }
    b.end();
    checkTotal("SpillStore put", putStore.size);
    for (const name of names) await putStore.delete(name);
    if (putStore.size !== 0) {
      throw new Error(`SpillStore put: ${putStore.size} bytes left`);
    }
  },
});

// ---------------------------------------------------------------------------
// Group 2: get 1 GiB

const GET = "get 1 GiB";

/**
 * Reads every value with `read`, which checks its bytes and returns how many
 * it got, and throws unless each gave 1 MiB and all together 1 GiB.
 */
async function readEvery(
  name: string,
  read: (i: number) => Promise<number>,
): Promise<void> {
  let count = 0;
  for (let i = 0; i < COUNT; i++) {
    const got = await read(i);
    if (got !== VALUE_SIZE) {
      throw new Error(`${name}: ${names[i]} has ${got} bytes`);
    }
    count += got;
  }
  checkTotal(name, count);
}

Deno.bench({
  name: "Deno.readFile",
  group: GET,
  baseline: true,
  ...SAMPLES,
  async fn() {
    await getStore();
    await readEvery("Deno.readFile", async (i) => {
      const bytes = await Deno.readFile(rawGetPaths[i]!);
      checkSample("Deno.readFile", i, 0, bytes);
      return bytes.length;
    });
  },
});

Deno.bench({
  name: "SpillStore get, drained",
  group: GET,
  ...SAMPLES,
  async fn() {
    const store = await getStore();
    await readEvery("SpillStore get", async (i) => {
      const reader = store.get(names[i]!).getReader();
      let offset = 0;
      while (true) {
        const { done, value } = await reader.read();
        if (done) return offset;
        checkSample("SpillStore get", i, offset, value);
        offset += value.length;
      }
    });
  },
});

Deno.bench({
  name: "SpillStore get, new Response(…).bytes()",
  group: GET,
  ...SAMPLES,
  async fn() {
    const store = await getStore();
    await readEvery("Response.bytes", async (i) => {
      const bytes = await new Response(store.get(names[i]!)).bytes();
      checkSample("Response.bytes", i, 0, bytes);
      return bytes.length;
    });
  },
});
