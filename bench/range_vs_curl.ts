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

import { join } from "node:path";
import { startNginx } from "../tests/_nginx.ts";
import {
  mbps,
  measure,
  type Measured,
  median,
  MiB,
  mib,
  parseBenchArgs,
  range,
  requireTools,
  rssFlatness,
  run,
  table,
  TIME,
  totals,
  warmCache,
  writeRandomFile,
} from "./_process.ts";

const WARM_UP_FILE = "warm-up";
const CHILD = new URL("./_download_child.ts", import.meta.url).pathname;

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

const { sizes, runs } = parseBenchArgs("bench/range_vs_curl.ts", "256M,1G");

// ---------------------------------------------------------------------------
// Processes

/** Aborted on SIGINT: kills the running process, so clean-up still runs. */
const interrupt = new AbortController();

/** The child's arguments to download `target`. */
function childArgs(target: Target): string[] {
  return ["run", "-A", CHILD, target.url, target.out, target.sha256];
}

/** Downloads `target` with each client, untimed, deleting the result. */
async function warmUp(target: Target): Promise<void> {
  await run(Deno.execPath(), childArgs(target), interrupt.signal);
  await Deno.remove(target.out);
  await run(
    "curl",
    ["-sS", "-o", target.out, target.url],
    interrupt.signal,
  );
  await Deno.remove(target.out);
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
  const sha256 = await writeRandomFile(
    join(www, "file"),
    bytes,
    interrupt.signal,
  );
  const warmSha256 = await writeRandomFile(
    join(www, WARM_UP_FILE),
    MiB,
    interrupt.signal,
  );
  await run("sync", [], interrupt.signal);
  await warmCache([join(www, "file")]);

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
      interrupt.signal,
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
    ], interrupt.signal);
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
    ], interrupt.signal);
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
// Main

await requireTools(
  [["curl", ["--version"]], [TIME, ["-V"]]],
  "curl time",
);
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
const sluiceMBps = (r: Row) =>
  mbps(r.bytes, median(r.sluice, (m) => m.wallSeconds));
const curlMBps = (r: Row) =>
  mbps(r.bytes, median(r.curl, (m) => m.wallSeconds));
const verifiedMBps = (r: Row) =>
  mbps(r.bytes, median(r.verified, (m) => m.wallSeconds));
const sluiceRss = (r: Row) => mib(median(r.sluice, (m) => m.maxRssKiB));
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
    mbps(r.bytes, median(r.sluice, (m) => m.child.ms) / 1000).toFixed(0),
    curlMBps(r).toFixed(0),
    (sluiceMBps(r) / curlMBps(r)).toFixed(2) + "x",
    verifiedMBps(r).toFixed(0),
    (sluiceMBps(r) / verifiedMBps(r)).toFixed(2) + "x",
    sluiceRss(r).toFixed(1),
    mib(median(r.curl, (m) => m.maxRssKiB)).toFixed(1),
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
    median(r.sluice, (m) => m.wallSeconds).toFixed(2),
    `${median(r.sluice, (m) => m.cpuPercent)}%`,
    range(r.sluice.map((m) => mib(m.maxRssKiB))),
    median(r.sluice, (m) => m.child.rssMaxMiB).toFixed(1),
    median(r.curl, (m) => m.wallSeconds).toFixed(2),
    `${median(r.curl, (m) => m.cpuPercent)}%`,
    range(r.curl.map((m) => mib(m.maxRssKiB))),
  ]),
));

const flatness = rssFlatness(rows, sluiceRss);
if (flatness !== undefined) console.log(`\n${flatness.line}`);
console.log(`\n${totals(startedAll, loadBefore, loadAfter)}`);
