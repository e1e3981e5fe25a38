/**
 * Compares downloading a large file from a real nginx on 127.0.0.1 with
 * sluice's `download()` against `curl -o`, and checks that `download()`'s
 * memory stays flat as the file grows.
 *
 * For each size (default 256 MiB and 1 GiB), in a fresh temp dir:
 *
 * 1. a file of pseudo-random bytes is written into `www/`, 1 MiB at a time,
 *    and its SHA-256 computed on the way; everything is flushed to disk
 *    (`sync`) and the file is read once, so nginx serves it from the page
 *    cache: this compares the clients, not the disk;
 * 2. nginx (`tests/_nginx.ts`: sendfile on, one worker) serves `www/` on a
 *    free loopback port, and each client fetches a 1 MiB file once, untimed,
 *    so Deno's module cache and the binaries are warm;
 * 3. each download runs `--runs` times (default 3, rotating which goes
 *    first) in its own process under `/usr/bin/time -v`, writing into the
 *    same temp dir (so the same file system):
 *    `deno run -A bench/_download_child.ts <url> <out> <sha256>`
 *    (`download(url, out, { sha256 })` with default options: 8 MiB
 *    checkpoints with fsync, SHA-256 verified, fsync and atomic rename at
 *    the end; receipt checked); `curl -sS -o <out> <url>` (size checked),
 *    which neither verifies nor fsyncs; and the same by hand,
 *    `curl -o` then `sha256sum` and `sync <out>` (digest checked); the
 *    output file is deleted after every run;
 * 4. nginx is stopped and the size's files deleted before the next size.
 *
 * The first table gives, per size, the median over the runs of GNU time's
 * "Elapsed (wall clock)" (10 ms resolution, process start-up included;
 * Deno's is tens of ms) as MB/s (10^6 bytes per second), sluice's in-process
 * MB/s (from calling `download` to its resolution, start-up excluded), the
 * ratio of the wall-clock speeds (above 1 means sluice is faster), and the
 * median of the runs' "Maximum resident set size". The details add wall
 * times, CPU use, the range of the peaks and the child's own RSS samples.
 * The last line compares sluice's peak RSS at the largest size with the
 * smallest: flat means within 10%.
 *
 * A default run takes about a minute on 2 cores and needs about twice the
 * largest size free in the temp dir (the served file and one download).
 * Needs nginx, `curl` and GNU `/usr/bin/time` (Debian/Ubuntu:
 * `apt-get install -y nginx-light curl time`). It is a script, not a
 * `deno bench` file (`deno bench bench/` does not pick it up):
 *
 * ```sh
 * deno run -A bench/range_vs_curl.ts                   # 256M,1G
 * deno run -A bench/range_vs_curl.ts --sizes 256M,1G,2G --runs 5
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startNginx } from "../tests/_nginx.ts";

const MiB = 1024 * 1024;
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;
const WARM_UP_FILE = "warm-up";
const CHILD = new URL("./_download_child.ts", import.meta.url).pathname;
const TIME = "/usr/bin/time";

/** What `/usr/bin/time -v` reported about one process. */
interface Measured {
  wallSeconds: number;
  maxRssKiB: number;
  cpuPercent: number;
}

/** What `bench/_download_child.ts` prints. */
interface ChildReport {
  bytes: number;
  ms: number;
  rssMaxMiB: number;
}

/** One size's figures, every run kept. */
interface Row {
  label: string;
  bytes: number;
  sluice: (Measured & { child: ChildReport })[];
  curl: Measured[];
  /** `curl -o`, then `sha256sum` and `sync` on the file: what download() does by hand. */
  verified: Measured[];
}

/** A file served by nginx, and where a client should write it. */
interface Target {
  url: string;
  out: string;
  sha256: string;
}

// ---------------------------------------------------------------------------
// Arguments

const args = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "256M,1G" },
    runs: { type: "string", default: "3" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.values.help) {
  console.log(
    "usage: deno run -A bench/range_vs_curl.ts [--sizes 256M,1G] [--runs 3]",
  );
  Deno.exit(0);
}
const sizes = args.values.sizes.split(",").map((text) => ({
  label: text.trim(),
  bytes: parseSize(text.trim()),
}));
const runs = Number(args.values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  throw new RangeError(`--runs must be an integer >= 1, got ${runs}`);
}

/** `256M`, `1G`, `512K` or plain bytes; suffixes are binary (MiB, GiB). */
function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text);
  if (match === null) {
    throw new TypeError(`Cannot read size ${JSON.stringify(text)}: try 256M`);
  }
  const unit = { "": 1, K: 1024, M: MiB, G: 1024 * MiB }[
    match[2]!.toUpperCase() as "" | "K" | "M" | "G"
  ];
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes < 1) throw new RangeError(`Size ${text} is empty`);
  return bytes;
}

// ---------------------------------------------------------------------------
// Processes

/** Aborted on SIGINT: kills the running process, so clean-up still runs. */
const interrupt = new AbortController();

/** Runs a command, returns its stdout, throws with its stderr if it fails. */
async function run(cmd: string, cmdArgs: string[]): Promise<string> {
  const output = await new Deno.Command(cmd, {
    args: cmdArgs,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: interrupt.signal,
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `${cmd} ${cmdArgs.join(" ")} exited with ${output.code}:\n${
        decoder.decode(output.stderr)
      }`,
    );
  }
  return decoder.decode(output.stdout);
}

/** Runs a command under `/usr/bin/time -v` and returns its stdout and figures. */
async function measure(
  statsFile: string,
  cmd: string,
  cmdArgs: string[],
): Promise<{ stdout: string; measured: Measured }> {
  const stdout = await run(TIME, ["-v", "-o", statsFile, cmd, ...cmdArgs]);
  const stats = await Deno.readTextFile(statsFile);
  const field = (name: string): string => {
    const line = stats.split("\n").find((l) => l.trim().startsWith(name));
    if (line === undefined) {
      throw new Error(`No "${name}" in /usr/bin/time output:\n${stats}`);
    }
    return line.slice(line.lastIndexOf(": ") + 2).trim();
  };
  // "h:mm:ss" or "m:ss.cc"
  const wallSeconds = field("Elapsed (wall clock) time").split(":")
    .reduce((total, part) => total * 60 + Number(part), 0);
  return {
    stdout,
    measured: {
      wallSeconds,
      maxRssKiB: Number(field("Maximum resident set size")),
      cpuPercent: Number(field("Percent of CPU this job got").replace("%", "")),
    },
  };
}

async function requireTools(): Promise<void> {
  for (const [tool, versionArgs] of [["curl", ["--version"]], [TIME, ["-V"]]]) {
    try {
      await new Deno.Command(tool as string, {
        args: versionArgs as string[],
        stdout: "null",
        stderr: "null",
      }).output();
    } catch {
      console.error(
        `Cannot run ${tool}: install it first (apt-get install -y curl time)`,
      );
      Deno.exit(1);
    }
  }
}

/** The child's arguments to download `target`. */
function childArgs(target: Target): string[] {
  return ["run", "-A", CHILD, target.url, target.out, target.sha256];
}

/** Downloads `target` with each client, untimed, deleting the result. */
async function warmUp(target: Target): Promise<void> {
  await run(Deno.execPath(), childArgs(target));
  await Deno.remove(target.out);
  await run("curl", ["-sS", "-o", target.out, target.url]);
  await Deno.remove(target.out);
}

// ---------------------------------------------------------------------------
// Files

/**
 * Writes `bytes` pseudo-random bytes to `path`, 1 MiB at a time, and returns
 * their SHA-256 (hex).
 */
async function writeRandomFile(path: string, bytes: number): Promise<string> {
  using file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  const hash = createHash("sha256");
  const buffer = new Uint8Array(MiB);
  for (let left = bytes; left > 0;) {
    interrupt.signal.throwIfAborted();
    const piece = buffer.subarray(0, Math.min(MiB, left));
    for (let at = 0; at < piece.length; at += RANDOM_PIECE) {
      crypto.getRandomValues(piece.subarray(at, at + RANDOM_PIECE));
    }
    hash.update(piece);
    for (let at = 0; at < piece.length;) {
      at += await file.write(piece.subarray(at));
    }
    left -= piece.length;
  }
  return hash.digest("hex");
}

/** Reads `path` once, so timed runs find it in the page cache. */
async function warmCache(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(MiB);
  while (await file.read(buffer) !== null);
}

// ---------------------------------------------------------------------------
// Measuring

/** Downloads every size `runs` times with each client. */
async function measureAll(tmp: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const { label, bytes } of sizes) {
    const dir = join(tmp, label);
    rows.push(await measureSize(dir, label, bytes));
    await Deno.remove(dir, { recursive: true });
  }
  return rows;
}

/** Serves `bytes` random bytes from `dir/www`; downloads them `runs` times. */
async function measureSize(
  dir: string,
  label: string,
  bytes: number,
): Promise<Row> {
  const www = join(dir, "www");
  await Deno.mkdir(www, { recursive: true });
  console.error(`${label}: writing ${bytes} bytes…`);
  const sha256 = await writeRandomFile(join(www, "file"), bytes);
  const warmSha256 = await writeRandomFile(join(www, WARM_UP_FILE), MiB);
  await run("sync", []);
  await warmCache(join(www, "file"));

  await using server = await startNginx(www);
  const out = join(dir, "out");
  const stats = join(dir, "time.txt");
  await warmUp({ url: server.url + WARM_UP_FILE, out, sha256: warmSha256 });
  const target: Target = { url: server.url + "file", out, sha256 };
  const row: Row = { label, bytes, sluice: [], curl: [], verified: [] };
  const runSluice = async () => {
    const { stdout, measured } = await measure(
      stats,
      Deno.execPath(),
      childArgs(target),
    );
    await Deno.remove(out);
    const report = JSON.parse(stdout) as ChildReport;
    if (report.bytes !== bytes) {
      throw new Error(`sluice downloaded ${report.bytes} bytes of ${bytes}`);
    }
    row.sluice.push({ ...measured, child: report });
  };
  const runCurl = async () => {
    const { measured } = await measure(stats, "curl", [
      "-sS",
      "-o",
      out,
      target.url,
    ]);
    const got = (await Deno.stat(out)).size;
    await Deno.remove(out);
    if (got !== bytes) {
      throw new Error(`curl downloaded ${got} bytes of ${bytes}`);
    }
    row.curl.push(measured);
  };
  const runVerified = async () => {
    const { stdout, measured } = await measure(stats, "sh", [
      "-c",
      'curl -sS -o "$1" "$2" && sha256sum "$1" && sync "$1"',
      "sh",
      out,
      target.url,
    ]);
    await Deno.remove(out);
    if (!stdout.startsWith(sha256)) {
      throw new Error(`curl + sha256sum printed ${stdout}`);
    }
    row.verified.push(measured);
  };
  const clients = [runSluice, runCurl, runVerified];
  for (let r = 0; r < runs; r++) {
    console.error(`${label}: download run ${r + 1} of ${runs}…`);
    // Rotate which client goes first.
    for (let i = 0; i < clients.length; i++) {
      await clients[(r + i) % clients.length]!();
    }
  }
  return row;
}

// ---------------------------------------------------------------------------
// Figures

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const mbps = (bytes: number, seconds: number) => bytes / seconds / 1e6;
const mib = (kib: number) => kib / 1024;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const line = (cells: string[]) =>
    "| " +
    cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))
      .join(" | ") +
    " |";
  return [
    line(header),
    "|" +
    widths.map((w, i) =>
      "-".repeat(i === 0 ? w + 2 : w + 1) + (i === 0 ? "" : ":")
    )
      .join("|") +
    "|",
    ...rows.map(line),
  ].join("\n");
}

// ---------------------------------------------------------------------------
// Main

await requireTools();
const loadBefore = Deno.loadavg();
const tmp = await Deno.makeTempDir({ prefix: "sluice-vs-curl-" });
const onInterrupt = () => interrupt.abort(new Error("Interrupted (SIGINT)"));
Deno.addSignalListener("SIGINT", onInterrupt);
const startedAll = performance.now();
let rows: Row[] = [];
try {
  rows = await measureAll(tmp);
} catch (error) {
  if (!interrupt.signal.aborted) throw error;
} finally {
  Deno.removeSignalListener("SIGINT", onInterrupt);
  await Deno.remove(tmp, { recursive: true });
}
if (interrupt.signal.aborted) {
  console.error("Interrupted: nginx stopped, temp dir removed");
  Deno.exit(130);
}

const loadAfter = Deno.loadavg();
const med = <T>(runs: T[], pick: (run: T) => number) => median(runs.map(pick));
const sluiceMBps = (r: Row) =>
  mbps(r.bytes, med(r.sluice, (m) => m.wallSeconds));
const curlMBps = (r: Row) => mbps(r.bytes, med(r.curl, (m) => m.wallSeconds));
const verifiedMBps = (r: Row) =>
  mbps(r.bytes, med(r.verified, (m) => m.wallSeconds));
const sluiceRss = (r: Row) => mib(med(r.sluice, (m) => m.maxRssKiB));
const range = (values: number[]) =>
  `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;
const curlVersion = (await run("curl", ["--version"])).split(" ")[1];

console.log(
  `\ndownload() (default options, sha256 checked, deno ${Deno.version.deno}) vs curl ${curlVersion} -o, from nginx on 127.0.0.1: ${runs} run(s) each; wall time and peak RSS are medians of the runs\n`,
);
console.log(table(
  [
    "size",
    "sluice MB/s",
    "in-process MB/s",
    "curl MB/s",
    "sluice/curl",
    "curl+sha256sum+sync MB/s",
    "sluice/that",
    "sluice RSS MiB",
    "curl RSS MiB",
  ],
  rows.map((r) => [
    r.label,
    sluiceMBps(r).toFixed(0),
    mbps(r.bytes, med(r.sluice, (m) => m.child.ms) / 1000).toFixed(0),
    curlMBps(r).toFixed(0),
    (sluiceMBps(r) / curlMBps(r)).toFixed(2) + "x",
    verifiedMBps(r).toFixed(0),
    (sluiceMBps(r) / verifiedMBps(r)).toFixed(2) + "x",
    sluiceRss(r).toFixed(1),
    mib(med(r.curl, (m) => m.maxRssKiB)).toFixed(1),
  ]),
));
console.log("\nDetails (ranges are min–max over the runs)\n");
console.log(table(
  [
    "size",
    "sluice wall s",
    "sluice CPU",
    "peak RSS MiB",
    "sampled RSS max",
    "curl wall s",
    "curl CPU",
    "curl peak RSS",
  ],
  rows.map((r) => [
    r.label,
    med(r.sluice, (m) => m.wallSeconds).toFixed(2),
    `${med(r.sluice, (m) => m.cpuPercent)}%`,
    range(r.sluice.map((m) => mib(m.maxRssKiB))),
    med(r.sluice, (m) => m.child.rssMaxMiB).toFixed(1),
    med(r.curl, (m) => m.wallSeconds).toFixed(2),
    `${med(r.curl, (m) => m.cpuPercent)}%`,
    range(r.curl.map((m) => mib(m.maxRssKiB))),
  ]),
));

if (rows.length >= 2) {
  const bySize = rows.toSorted((a, b) => a.bytes - b.bytes);
  const small = bySize[0]!;
  const large = bySize.at(-1)!;
  const ratio = sluiceRss(large) / sluiceRss(small);
  console.log(
    `\nsluice peak RSS ${large.label} / ${small.label}: ${
      sluiceRss(large).toFixed(1)
    } / ${sluiceRss(small).toFixed(1)} MiB = ${ratio.toFixed(3)} (${
      Math.abs(ratio - 1) <= 0.1 ? "flat" : "NOT flat"
    }: within 10% is flat)`,
  );
}
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
console.log(
  `\ntotal time ${
    ((performance.now() - startedAll) / 1000).toFixed(0)
  } s; load average before ${load(loadBefore)}, after ${
    load(loadAfter)
  } (${navigator.hardwareConcurrency} CPUs)`,
);
