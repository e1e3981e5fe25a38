/**
 * Benchmarks {@linkcode fileSink} and {@linkcode channel} on 1 GiB against
 * what a user would write instead, and (with `--memory`) checks that their
 * memory stays flat as the stream grows.
 *
 * The source, in every case, is a `ReadableStream` of 1 GiB in 1 MiB chunks
 * taken round-robin from 4 pre-filled buffers of pseudo-random bytes, one
 * chunk per pull (`highWaterMark: 0`), so nothing is buffered ahead and the
 * bench never holds 1 GiB (`bench/_sinks_child.ts` makes it). Setup, once,
 * computes the SHA-256 of that exact byte sequence with `node:crypto`.
 *
 * - "file 1 GiB", into one temp directory: the baseline
 *   `Deno.writeFile(path, stream)` (which opens the file and pipes the stream
 *   to `file.writable`, no fsync); "Deno.writeFile + fsync", the same by hand
 *   with `syncData()` before the close, so the difference shows what making
 *   1 GiB durable costs here; and `fileSink(path, { overwrite: true })
 *   .deliver(stream)`, which on top of that computes the SHA-256, writes a
 *   temp file through a write-behind queue, renames it into place and fsyncs
 *   the directory. Only the write is timed (`b.start()` / `b.end()`); after
 *   it, untimed, the iteration checks that the file is 1 GiB (and, for
 *   `fileSink`, that the receipt gives 1 GiB and the expected SHA-256) and
 *   deletes it. Without fsync the kernel is still holding the bytes as dirty
 *   pages when the file is deleted, so the baseline measures the copy into
 *   the page cache, not the disk.
 * - "channel 1 GiB": the baseline, a reader that counts the bytes with
 *   `for await` straight over the source; the same reader also hashing
 *   (`node:crypto` SHA-256), which is the work a sink adds to every byte;
 *   and `channel({ highWaterMark: 1 MiB })`, its `deliver(stream)` running
 *   while the counting reader drains its `readable`. Each iteration checks
 *   the count, the digest and the receipt (1 GiB, the expected SHA-256).
 *
 * Every iteration checks its result and throws if it is wrong, so a broken
 * path cannot look fast. Throughput in GB/s is 1 073 741 824 bytes divided by
 * the time per iteration. Disk times swing from one iteration to the next
 * (in a VM, several-fold), so compare runs by their ratios and look at the
 * min column too. 1 GiB is below the kernel's usual dirty-page threshold, so
 * nothing reaches the disk before the fsync: with fsync, the time is the
 * write phase plus the whole flush, one after the other.
 *
 * The temp directory is removed when the process unloads (also after a
 * failed bench), when the module's setup fails, and on SIGINT/SIGTERM. It
 * needs 1 GiB free.
 *
 * With `--memory` it is a script instead (`deno bench` never passes it):
 * each delivery runs `--runs` times (default 3, rotating which goes first)
 * per size (default 256 MiB and 1 GiB) in its own process under GNU
 * `/usr/bin/time -v` (`bench/_sinks_child.ts`: `fileSink`,
 * `Deno.writeFile`, `channel` into a counting reader, and `for await`
 * counting), and it prints the median peak RSS of each, its range, the
 * child's in-process MB/s, each sink's peak RSS above its baseline's (Deno's
 * own RSS drifts up a few MiB with the size, sink or not), and whether the
 * sinks' peak RSS at the largest size is within 10% of the smallest (flat).
 * Needs GNU time (`apt-get install -y time`) and the largest size free (each
 * file is deleted after its run).
 *
 * ```sh
 * deno bench -A bench/sinks_bench.ts
 * deno run -A bench/sinks_bench.ts --memory                   # 256M,1G
 * deno run -A bench/sinks_bench.ts --memory --sizes 256M,1G,4G --runs 5
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { channel, fileSink } from "../sinks/mod.ts";
import {
  countBytes,
  expectedSha256,
  type Kind,
  KINDS,
  MiB,
  randomBuffers,
  roundRobinSource,
} from "./_sinks_child.ts";
import {
  benchTempDir,
  mbps,
  measure,
  type Measured,
  median,
  mib,
  parseSize,
  range,
  requireTools,
  rssFlatness,
  type Size,
  table,
  TIME,
  totals,
} from "./_process.ts";

/** Bytes per iteration: 1 GiB. */
const SIZE = 1024 * MiB;
/** Few samples: each iteration moves 1 GiB, so one run stays short. */
const SAMPLES = { n: 5, warmup: 1 };

// ---------------------------------------------------------------------------
// The benches

/** Throws unless `count` is exactly 1 GiB. */
function checkTotal(name: string, count: number): void {
  if (count !== SIZE) {
    throw new Error(`${name}: got ${count} bytes, expected ${SIZE}`);
  }
}

/** Throws unless a receipt gives 1 GiB and the source's SHA-256. */
function checkReceipt(
  name: string,
  receipt: { bytes: number; sha256: string },
  sha256: string,
): void {
  checkTotal(name, receipt.bytes);
  if (receipt.sha256 !== sha256) {
    throw new Error(`${name}: sha256 ${receipt.sha256}, expected ${sha256}`);
  }
}

async function defineBenches(): Promise<void> {
  const { dir, remove } = await benchTempDir("sluice_sinks_bench_");
  let buffers: Uint8Array<ArrayBuffer>[];
  let sha256: string;
  try {
    buffers = randomBuffers();
    sha256 = expectedSha256(buffers, SIZE);
  } catch (error) {
    remove(); // "unload" is not dispatched when the module fails to load
    throw error;
  }
  const source = () => roundRobinSource(buffers, SIZE);
  defineFileGroup(join(dir, "out.bin"), source, sha256);
  defineChannelGroup(source, sha256);
}

/** Group 1: 1 GiB into a file at `path`. */
function defineFileGroup(
  path: string,
  source: () => ReadableStream<Uint8Array>,
  sha256: string,
): void {
  const group = "file 1 GiB";
  /** Untimed: throws unless `path` holds 1 GiB, then deletes it. */
  const checkAndRemove = async (name: string) => {
    checkTotal(name, (await Deno.stat(path)).size);
    await Deno.remove(path);
  };

  Deno.bench({
    name: "Deno.writeFile(path, stream)",
    group,
    baseline: true,
    ...SAMPLES,
    async fn(b) {
      const stream = source();
      b.start();
      await Deno.writeFile(path, stream);
      b.end();
      await checkAndRemove("Deno.writeFile");
    },
  });

  Deno.bench({
    name: "Deno.writeFile + fsync",
    group,
    ...SAMPLES,
    async fn(b) {
      const stream = source();
      b.start();
      {
        using file = await Deno.open(path, {
          write: true,
          create: true,
          truncate: true,
        });
        await stream.pipeTo(file.writable, { preventClose: true });
        await file.syncData();
      }
      b.end();
      await checkAndRemove("Deno.writeFile + fsync");
    },
  });

  Deno.bench({
    name: "fileSink (+ SHA-256, fsync, rename, dir fsync)",
    group,
    ...SAMPLES,
    async fn(b) {
      const stream = source();
      const sink = fileSink(path, { overwrite: true });
      b.start();
      const receipt = await sink.deliver(stream);
      b.end();
      checkReceipt("fileSink", receipt, sha256);
      await checkAndRemove("fileSink");
    },
  });
}

/** Group 2: 1 GiB to a reader that counts it. */
function defineChannelGroup(
  source: () => ReadableStream<Uint8Array>,
  sha256: string,
): void {
  const group = "channel 1 GiB";

  Deno.bench({
    name: "for await, counting",
    group,
    baseline: true,
    ...SAMPLES,
    async fn() {
      checkTotal("for await", await countBytes(source()));
    },
  });

  Deno.bench({
    name: "for await, counting + SHA-256",
    group,
    ...SAMPLES,
    async fn() {
      const hash = createHash("sha256");
      let count = 0;
      for await (const chunk of source()) {
        hash.update(chunk);
        count += chunk.length;
      }
      checkReceipt("for await + SHA-256", {
        bytes: count,
        sha256: hash.digest("hex"),
      }, sha256);
    },
  });

  Deno.bench({
    name: "channel (1 MiB) → counting reader (+ SHA-256)",
    group,
    ...SAMPLES,
    async fn() {
      const { sink, readable } = channel({ highWaterMark: MiB });
      const [receipt, count] = await Promise.all([
        sink.deliver(source()),
        countBytes(readable),
      ]);
      checkTotal("channel reader", count);
      checkReceipt("channel", receipt, sha256);
    },
  });
}

// ---------------------------------------------------------------------------
// --memory: each delivery in a child process under /usr/bin/time -v

const CHILD = new URL("./_sinks_child.ts", import.meta.url).pathname;

/** What `bench/_sinks_child.ts` prints. */
interface ChildReport {
  bytes: number;
  ms: number;
  rssMaxMiB: number;
}

/** One size's figures, every run of every delivery kept. */
interface Row extends Size {
  runs: Record<Kind, (Measured & { child: ChildReport })[]>;
}

/** How the tables call each kind of delivery. */
const LABELS: Record<Kind, string> = {
  file: "fileSink",
  writeFile: "Deno.writeFile",
  channel: "channel",
  count: "for await",
};

/** Reads `--memory`, `--sizes` (default 256M,1G), `--runs` (default 3), `--help`. */
function parseMemoryArgs(): { sizes: Size[]; runs: number } {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      memory: { type: "boolean", default: false },
      sizes: { type: "string", default: "256M,1G" },
      runs: { type: "string", default: "3" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/sinks_bench.ts --memory [--sizes 256M,1G] [--runs 3]",
    );
    Deno.exit(0);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(`--runs must be an integer >= 1, got ${runs}`);
  }
  const sizes = values.sizes.split(",").map((text) => ({
    label: text.trim(),
    bytes: parseSize(text.trim()),
  }));
  return { sizes, runs };
}

/** Runs the child for `kind` and `bytes` under GNU time; deletes its file. */
async function measureChild(
  dir: string,
  kind: Kind,
  bytes: number,
  signal: AbortSignal,
): Promise<Measured & { child: ChildReport }> {
  const out = join(dir, "out.bin");
  const { stdout, measured } = await measure(
    join(dir, "time.txt"),
    Deno.execPath(),
    ["run", "-A", CHILD, kind, String(bytes), out],
    signal,
  );
  await Deno.remove(out).catch(() => {}); // the channel and count kinds write none
  const child = JSON.parse(stdout) as ChildReport;
  if (child.bytes !== bytes) {
    throw new Error(`${kind}: the child delivered ${child.bytes} of ${bytes}`);
  }
  return { ...measured, child };
}

/** Every kind, `runs` times per size, rotating which goes first. */
async function measureAll(
  dir: string,
  sizes: Size[],
  runs: number,
  signal: AbortSignal,
): Promise<Row[]> {
  for (const kind of KINDS) await measureChild(dir, kind, MiB, signal); // warm-up
  const rows: Row[] = [];
  for (const { label, bytes } of sizes) {
    const row: Row = {
      label,
      bytes,
      runs: { file: [], writeFile: [], channel: [], count: [] },
    };
    for (let r = 0; r < runs; r++) {
      console.error(`${label}: run ${r + 1} of ${runs}…`);
      for (let i = 0; i < KINDS.length; i++) {
        const kind = KINDS[(r + i) % KINDS.length]!;
        row.runs[kind].push(await measureChild(dir, kind, bytes, signal));
      }
    }
    rows.push(row);
  }
  return rows;
}

/** Prints the peak-RSS and throughput tables and the flatness lines. */
function report(rows: Row[], runs: number): void {
  const rss = (kind: Kind) => (r: Row) =>
    mib(median(r.runs[kind], (m) => m.maxRssKiB));
  console.log(
    `\nPeak RSS (GNU time "Maximum resident set size"), MiB: median of ${runs} run(s) [min–max]; deno ${Deno.version.deno}\n`,
  );
  console.log(table(
    ["size", ...KINDS.map((k) => LABELS[k])],
    rows.map((r) => [
      r.label,
      ...KINDS.map((k) =>
        `${rss(k)(r).toFixed(1)} [${
          range(r.runs[k].map((m) => mib(m.maxRssKiB)))
        }]`
      ),
    ]),
  ));
  console.log(
    "\nIn-process MB/s (10^6 bytes/s, start-up excluded), median; sampled RSS max, MiB\n",
  );
  console.log(table(
    ["size", ...KINDS.flatMap((k) => [`${LABELS[k]} MB/s`, "sampled"])],
    rows.map((r) => [
      r.label,
      ...KINDS.flatMap((k) => [
        mbps(r.bytes, median(r.runs[k], (m) => m.child.ms) / 1000).toFixed(0),
        median(r.runs[k], (m) => m.child.rssMaxMiB).toFixed(1),
      ]),
    ]),
  ));
  console.log();
  // Deno's own RSS drifts up a few MiB with the size, sinks or not; the
  // difference from the baseline is what the sink itself holds.
  const pairs = [["file", "writeFile"], ["channel", "count"]] as const;
  for (const [kind, baseline] of pairs) {
    const above = rows.map((r) =>
      `${(rss(kind)(r) - rss(baseline)(r)).toFixed(1)} at ${r.label}`
    );
    console.log(
      `${LABELS[kind]} above ${LABELS[baseline]}: ${above.join(", ")} (MiB)`,
    );
    const flatness = rssFlatness(rows, rss(kind));
    if (flatness !== undefined) {
      console.log(`${LABELS[kind]}: ${flatness.line}`);
    }
  }
}

async function measureMemory(): Promise<void> {
  const { sizes, runs } = parseMemoryArgs();
  await requireTools([[TIME, ["-V"]]], "time");
  const loadBefore = Deno.loadavg();
  const started = performance.now();
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort(new Error("Interrupted"));
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const dir = await Deno.makeTempDir({ prefix: "sluice_sinks_memory_" });
  let rows: Row[] = [];
  try {
    rows = await measureAll(dir, sizes, runs, interrupt.signal);
  } catch (error) {
    if (!interrupt.signal.aborted) throw error;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    await Deno.remove(dir, { recursive: true });
  }
  if (interrupt.signal.aborted) {
    console.error("Interrupted: the child killed, temp dir removed");
    Deno.exit(130);
  }
  report(rows, runs);
  console.log(`\n${totals(started, loadBefore, Deno.loadavg())}`);
}

// ---------------------------------------------------------------------------
// Main (last, so every const above is initialized)

if (Deno.args.includes("--memory")) {
  await measureMemory();
} else {
  await defineBenches();
}
