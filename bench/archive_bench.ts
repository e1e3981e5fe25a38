/**
 * Benchmarks {@linkcode install} fed by {@linkcode untar} and
 * {@linkcode unzip} against GNU `tar -x` and Info-ZIP `unzip` extracting the
 * same archive, in the same run, into the same file system.
 *
 * Setup, once, in one temp directory: the source trees are written and the
 * archives made from them with the real tools (never checked in):
 *
 * - "large": 4 files of 256 MiB of pseudo-random bytes in one directory,
 *   `tar -cf large.tar large` (1 GiB).
 * - "small": 20 000 files of 100 B – 8 KiB (sizes from a seeded PRNG) of
 *   random hex text, spread over 40 directories, `tar -cf small.tar small`
 *   and `zip -q -r small.zip small` (deflate: hex text compresses to about
 *   60%, so unlike random bytes it is deflated, not stored).
 *
 * The groups, each with the tool as the baseline:
 *
 * 1. "untar 1 GiB, 4 files": `tar -xf large.tar -C dir` against
 *    `install(untar(file.readable), dir)`.
 * 2. "untar 20 000 small files": the same on `small.tar`.
 * 3. "unzip 20 000 small files": `unzip -q small.zip -d dir` against
 *    `install(unzip(file.readable), dir)`.
 *
 * Each group also has "tool, then `sync -f`": the same extraction followed by
 * one `syncfs` of the file system, a lower bound of what making the tool's
 * output durable costs.
 *
 * Not the same work on both sides, so read the ratios with this in mind:
 *
 * - `install` fsyncs every file and directory before the rename that
 *   publishes the tree (and the parent after it), stages into a private
 *   directory and renames it in, hashes every file (SHA-256, for the
 *   manifest), checks every name against its path policy, and applies modes
 *   and mtimes. `tar -x` and `unzip` write into the target in place and never
 *   fsync: their bytes are still dirty pages in the page cache when the clock
 *   stops. The "then `sync -f`" rows show the flush they skip; one `syncfs`
 *   for the whole file system is much cheaper than the per-file `fdatasync`
 *   `install` needs to know each of its own files is on disk.
 * - The tools run as subprocesses (`new Deno.Command`), so their times
 *   include starting a process (a few ms; noise next to these times).
 *   `install` runs in the bench process, which is already warm.
 * - The tool's target directory is made just before the clock starts;
 *   `install` makes its target (and staging directory) inside the timed part.
 * - `unzip` and `tar` read the archive with large `read()`s; `install` reads
 *   it through `file.readable`, as a user would write it, which delivers
 *   64 KiB chunks.
 *
 * Only the extraction is timed (`b.start()` / `b.end()`). Before it, untimed,
 * every iteration reads the archive through once (this VM reclaims cold page
 * cache within seconds, so it would otherwise read from the disk on one side
 * and from memory on the other) and runs `sync`, so no writeback left from an
 * earlier iteration runs while the clock does. After it, untimed, the first
 * iteration of each bench checks its tree: the file and directory counts, the
 * total bytes and the SHA-256 of a sample file must be those of the source
 * (for `install`, also its result and manifest), and so equal to the tool's.
 * Every iteration extracts into a new directory.
 *
 * Removing the trees: the large trees are removed after each iteration. The
 * small-file trees are kept until the process exits: on ext4 without a
 * journal (as in this VM), the kernel skips inodes freed in the last 60 s
 * (300 s while their inode table block is dirty) when it allocates new ones,
 * scanning past each of them for every file it creates, so extracting 20 000
 * files right after removing 20 000 took `tar -x` 8–22 s instead of 1 s here,
 * whichever side ran next. For the same reason the directory the trees go in
 * is marked with `chattr +T` (best effort; ignored where it fails), which
 * makes ext4 place each new tree in a group of its own rather than beside
 * directories removed earlier. The remaining trees (24 of them, about
 * 3 GiB and 480 000 files) are removed when the process exits, so on such a
 * file system leave 5 minutes between two runs: the next run's trees land in
 * the groups just freed (a "tar -x" of the small files taking 8 s instead of
 * 1 s, with the kernel's time in `recently_deleted`, is the sign).
 *
 * With `ARCHIVE_BENCH_SMALL=1` everything shrinks for a quick smoke test:
 * 4 × 16 MiB and 2 000 files.
 *
 * Disk times swing from one iteration to the next (in a VM, several-fold), so
 * compare runs by their ratios and look at the min column too. It needs GNU
 * tar, Info-ZIP zip and unzip, and coreutils `sync`; about 5 GiB free (1 GiB
 * with `ARCHIVE_BENCH_SMALL=1`).
 *
 * ```sh
 * deno bench -A bench/archive_bench.ts
 * ARCHIVE_BENCH_SMALL=1 deno bench -A bench/archive_bench.ts
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { install, type InstallResult, untar, unzip } from "../archive/mod.ts";
import {
  benchTempDir,
  MiB,
  run,
  warmCache,
  writeRandomFile,
} from "./_process.ts";

/** Smoke-test sizes: `ARCHIVE_BENCH_SMALL=1`. */
const SMALL = Deno.env.get("ARCHIVE_BENCH_SMALL") === "1";
/** Files in the large tree. */
const LARGE_FILES = 4;
/** Bytes per file in the large tree: 256 MiB (16 MiB small). */
const LARGE_FILE_SIZE = (SMALL ? 16 : 256) * MiB;
/** Files in the small tree. */
const SMALL_FILES = SMALL ? 2_000 : 20_000;
/** Directories the small files are spread over. */
const SMALL_DIRS = 40;
/** The smallest and largest small file. */
const SMALL_MIN = 100;
const SMALL_MAX = 8 * 1024;
/** Few samples: each iteration writes up to 1 GiB or 20 000 files. */
const SAMPLES = { n: 3, warmup: 1 };

// ---------------------------------------------------------------------------
// Trees and archives

/** What a tree holds; the source's, and what every extraction must give. */
interface Expected {
  files: number;
  /** Directories, the top one (`large`, `small`) included. */
  dirs: number;
  bytes: number;
  /** A sample file, relative to the extraction directory, and its SHA-256. */
  sample: string;
  sampleSha256: string;
}

/** A small PRNG (mulberry32), so the small tree is the same every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** `size` bytes of random lowercase hex, a newline every 64 characters. */
function hexText(size: number): Uint8Array<ArrayBuffer> {
  const raw = crypto.getRandomValues(new Uint8Array(size));
  const digits = "0123456789abcdef";
  for (let i = 0; i < size; i++) {
    raw[i] = i % 65 === 64 ? 0x0a : digits.charCodeAt(raw[i]! & 15);
  }
  return raw;
}

/** Writes `src/large/f<i>.bin`, 4 files of random bytes. */
async function writeLargeTree(src: string): Promise<Expected> {
  const top = join(src, "large");
  await Deno.mkdir(top, { recursive: true });
  let sampleSha256 = "";
  for (let i = 0; i < LARGE_FILES; i++) {
    sampleSha256 = await writeRandomFile(
      join(top, `f${i}.bin`),
      LARGE_FILE_SIZE,
    );
  }
  return {
    files: LARGE_FILES,
    dirs: 1,
    bytes: LARGE_FILES * LARGE_FILE_SIZE,
    sample: `large/f${LARGE_FILES - 1}.bin`,
    sampleSha256,
  };
}

/** Writes `src/small/dNN/fNNNNN.txt`, `SMALL_FILES` files of hex text. */
function writeSmallTree(src: string): Expected {
  const random = prng(20_000);
  const top = join(src, "small");
  const dirName = (d: number) => `d${String(d).padStart(2, "0")}`;
  for (let d = 0; d < SMALL_DIRS; d++) {
    Deno.mkdirSync(join(top, dirName(d)), { recursive: true });
  }
  const sampleIndex = SMALL_FILES >> 1;
  let bytes = 0;
  let sample = "";
  let sampleSha256 = "";
  for (let i = 0; i < SMALL_FILES; i++) {
    const size = SMALL_MIN +
      Math.floor(random() * (SMALL_MAX - SMALL_MIN + 1));
    const content = hexText(size);
    const name = `small/${dirName(i % SMALL_DIRS)}/f${
      String(i).padStart(5, "0")
    }.txt`;
    Deno.writeFileSync(join(src, name), content);
    bytes += size;
    if (i === sampleIndex) {
      sample = name;
      sampleSha256 = createHash("sha256").update(content).digest("hex");
    }
  }
  return {
    files: SMALL_FILES,
    dirs: SMALL_DIRS + 1,
    bytes,
    sample,
    sampleSha256,
  };
}

/** Runs `cmd` in `cwd`; throws with its stderr if it fails. */
async function runIn(cwd: string, cmd: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${output.code}:\n${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
}

/** SHA-256 (hex) of the file at `path`. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const piece of file.readable) hash.update(piece);
  return hash.digest("hex");
}

/** Counts the files, directories and file bytes under `root` (not `root`). */
function summarize(
  root: string,
): { files: number; dirs: number; bytes: number } {
  const out = { files: 0, dirs: 0, bytes: 0 };
  const walk = (dir: string) => {
    for (const item of Deno.readDirSync(dir)) {
      const path = join(dir, item.name);
      if (item.isDirectory) {
        out.dirs++;
        walk(path);
      } else if (item.isFile) {
        out.files++;
        out.bytes += Deno.lstatSync(path).size;
      } else throw new Error(`${path}: neither a file nor a directory`);
    }
  };
  walk(root);
  return out;
}

/**
 * Throws unless the tree at `root` holds what `expected` says (and, for
 * `install`, unless its result says so too).
 */
async function verify(
  name: string,
  root: string,
  expected: Expected,
  result?: InstallResult,
): Promise<void> {
  const got = summarize(root);
  const fail = (what: string) => {
    throw new Error(`${name}: ${what} (in ${root})`);
  };
  if (got.files !== expected.files) {
    fail(`${got.files} files, expected ${expected.files}`);
  }
  if (got.dirs !== expected.dirs) {
    fail(`${got.dirs} directories, expected ${expected.dirs}`);
  }
  if (got.bytes !== expected.bytes) {
    fail(`${got.bytes} bytes, expected ${expected.bytes}`);
  }
  const sha = await sha256File(join(root, expected.sample));
  if (sha !== expected.sampleSha256) {
    fail(`${expected.sample} has SHA-256 ${sha}`);
  }
  if (result === undefined) return;
  if (result.files !== expected.files || result.bytes !== expected.bytes) {
    fail(`install says ${result.files} files and ${result.bytes} bytes`);
  }
  const listed = result.manifest.find((m) => m.path === expected.sample);
  if (listed?.sha256 !== expected.sampleSha256) {
    fail(`the manifest gives ${expected.sample} as ${listed?.sha256}`);
  }
}

// ---------------------------------------------------------------------------
// Setup

const { dir, remove: removeDir } = await benchTempDir("sluice_archive_bench_");
/** Where the extractions go (a fresh directory inside for every iteration). */
const outRoot = join(dir, "out");
const largeTar = join(dir, "large.tar");
const smallTar = join(dir, "small.tar");
const smallZip = join(dir, "small.zip");
let large: Expected;
let small: Expected;
try {
  const src = join(dir, "src");
  large = await writeLargeTree(src);
  await run("tar", ["-cf", largeTar, "-C", src, "large"]);
  await Deno.remove(join(src, "large"), { recursive: true }); // 4 inodes only
  small = writeSmallTree(src);
  await run("tar", ["-cf", smallTar, "-C", src, "small"]);
  await runIn(src, "zip", ["-q", "-r", smallZip, "small"]);
  // The small source tree stays until the end (see the header on ext4).
  await Deno.mkdir(outRoot);
  // Best effort: each new tree in a block group of its own (ext4 only).
  await new Deno.Command("chattr", { args: ["+T", outRoot], stderr: "null" })
    .output().catch(() => {});
  await run("sync", []);
} catch (error) {
  removeDir(); // "unload" is not dispatched when the module fails to load
  throw error;
}

let counter = 0;
/** A new, not yet existing extraction directory. */
function freshDir(label: string): string {
  return join(outRoot, `${label}-${++counter}`);
}

/** Untimed, before every timed part: the archive in the page cache, nothing dirty. */
async function prepare(archive: string): Promise<void> {
  await warmCache([archive]);
  await run("sync", []);
}

/** Untimed, after every timed part: check the first tree, then remove large trees. */
function finisher(expected: Expected, keep: boolean) {
  const checked = new Set<string>();
  return async (name: string, root: string, result?: InstallResult) => {
    if (!checked.has(name)) {
      await verify(name, root, expected, result);
      checked.add(name);
    }
    if (!keep) await Deno.remove(root, { recursive: true });
  };
}

// ---------------------------------------------------------------------------
// The benches

interface Case {
  group: string;
  archive: string;
  expected: Expected;
  /** Keep the trees until the end (small files: see the header on ext4). */
  keep: boolean;
  /** The tool: how the benches call it, its command, its arguments to extract into `out`. */
  tool: { label: string; cmd: string; args: (out: string) => string[] };
  read: typeof untar | typeof unzip;
}

function defineCase(c: Case): void {
  const finish = finisher(c.expected, c.keep);
  const label = c.group.replace(/[^a-z0-9]+/gi, "_");

  Deno.bench({
    name: `${c.tool.label} (subprocess, no fsync)`,
    group: c.group,
    baseline: true,
    ...SAMPLES,
    async fn(b) {
      const out = freshDir(`${label}-tool`);
      await prepare(c.archive);
      await Deno.mkdir(out);
      b.start();
      await run(c.tool.cmd, c.tool.args(out));
      b.end();
      await finish(c.tool.label, out);
    },
  });

  Deno.bench({
    name: `${c.tool.label}, then sync -f (one syncfs)`,
    group: c.group,
    ...SAMPLES,
    async fn(b) {
      const out = freshDir(`${label}-toolsync`);
      await prepare(c.archive);
      await Deno.mkdir(out);
      b.start();
      await run(c.tool.cmd, c.tool.args(out));
      await run("sync", ["-f", out]);
      b.end();
      await finish(`${c.tool.label} + sync -f`, out);
    },
  });

  Deno.bench({
    name: `install(${c.read.name}(file.readable)) (+ fsync, SHA-256)`,
    group: c.group,
    ...SAMPLES,
    async fn(b) {
      const out = freshDir(`${label}-sluice`);
      await prepare(c.archive);
      b.start();
      let result: InstallResult;
      {
        using file = await Deno.open(c.archive);
        result = await install(c.read(file.readable), out);
      }
      b.end();
      await finish("install", out, result);
    },
  });
}

/** GNU tar extracting `archive` into `out`. */
const tar = (archive: string) => ({
  label: "tar -x",
  cmd: "tar",
  args: (out: string) => ["-xf", archive, "-C", out],
});

defineCase({
  group: `untar ${
    LARGE_FILES * LARGE_FILE_SIZE / MiB
  } MiB, ${LARGE_FILES} files`,
  archive: largeTar,
  expected: large,
  keep: false,
  tool: tar(largeTar),
  read: untar,
});

defineCase({
  group: `untar ${SMALL_FILES} small files`,
  archive: smallTar,
  expected: small,
  keep: true,
  tool: tar(smallTar),
  read: untar,
});

defineCase({
  group: `unzip ${SMALL_FILES} small files`,
  archive: smallZip,
  expected: small,
  keep: true,
  tool: {
    label: "unzip",
    cmd: "unzip",
    args: (out) => ["-q", smallZip, "-d", out],
  },
  read: unzip,
});
