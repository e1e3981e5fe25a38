/**
 * Compares decrypting a sealed file from disk with `decryptStream` against
 * `age -d` on the same plaintext, and checks that `decryptStream`'s memory
 * stays flat as the file grows.
 *
 * For each size (default 256 MiB, 1 GiB and 2 GiB), in a fresh temp dir:
 *
 * 1. a plaintext file of pseudo-random bytes is written, 1 MiB at a time;
 * 2. it is sealed with `seal` into a `dirStore` (1 MiB chunks,
 *    `aes-256-gcm`), and the data map (JSON) and the key (hex) are saved;
 * 3. it is encrypted with `age -r <recipient>` under a key from `age-keygen`;
 * 4. the plaintext is deleted, everything is flushed to disk (`sync`), and
 *    the chunk files and the `.age` file are read once so both tools find
 *    them in the page cache: this compares decryption and plumbing, not the
 *    disk;
 * 5. each decryption runs `--runs` times (default 3, alternating which goes
 *    first) in its own process under `/usr/bin/time -v`:
 *    `deno run -A bench/_decrypt_child.ts …` (`decryptStream` piped into
 *    `/dev/null`, byte count checked) and
 *    `age -d -i key.txt -o /dev/null file.age`;
 * 6. the size's files are deleted before the next size.
 *
 * The first table gives, per size, the median over the runs of GNU time's
 * "Elapsed (wall clock)" (10 ms resolution, process start-up included;
 * Deno's is tens of ms) as MB/s (10^6 bytes per second), and the median of
 * the runs' "Maximum resident set size". The details add the child's own
 * timing (start-up excluded), CPU use, the range of the peaks, the child's
 * RSS sampled every 32 chunks and its JS heap, and the speed of `seal` (which
 * fsyncs every chunk) and `age -e`. The last line compares sluice's peak RSS
 * at the largest size with the smallest: flat means within 10%.
 *
 * A default run takes about 90 s on 2 cores and needs about three times the
 * largest size free in the temp dir (plaintext, chunks and `.age` file).
 * Needs `age`, `age-keygen` and GNU `/usr/bin/time` (Debian/Ubuntu:
 * `apt-get install -y age time`). It is a script, not a `deno bench` file
 * (`deno bench bench/` does not pick it up):
 *
 * ```sh
 * deno run -A bench/decrypt_vs_age.ts                  # 256M,1G,2G
 * deno run -A bench/decrypt_vs_age.ts --sizes 256M,1G --runs 5
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { dirStore, seal } from "../core/chunks.ts";
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

const CHUNK_SIZE = MiB;
const CHILD = new URL("./_decrypt_child.ts", import.meta.url).pathname;

/** What `bench/_decrypt_child.ts` prints. */
interface ChildReport {
  bytes: number;
  ms: number;
  rssMeanMiB: number;
  rssMaxMiB: number;
  heapMaxMiB: number;
}

/** One size's figures, every run kept. */
interface Row {
  label: string;
  bytes: number;
  sealSeconds: number;
  ageEncryptSeconds: number;
  sluice: (Measured & { child: ChildReport })[];
  age: Measured[];
}

// ---------------------------------------------------------------------------
// Arguments

const { sizes, runs } = parseBenchArgs(
  "bench/decrypt_vs_age.ts",
  "256M,1G,2G",
);

// ---------------------------------------------------------------------------
// Files

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Seals `plainPath` into `dir/store`; saves `dir/map.json` and `dir/key.hex`. */
async function sealFile(
  plainPath: string,
  dir: string,
  expected: number,
): Promise<{ store: string; map: string; key: string }> {
  const paths = {
    store: join(dir, "store"),
    map: join(dir, "map.json"),
    key: join(dir, "key.hex"),
  };
  const plain = await Deno.open(plainPath, { read: true });
  const { dataMap, key } = await seal(plain.readable, dirStore(paths.store), {
    chunkSize: CHUNK_SIZE,
    suite: "aes-256-gcm",
  });
  if (dataMap.size !== expected) {
    throw new Error(`Sealed ${dataMap.size} bytes, expected ${expected}`);
  }
  await Deno.writeTextFile(paths.map, JSON.stringify(dataMap));
  await Deno.writeTextFile(paths.key, toHex(key) + "\n");
  return paths;
}

// ---------------------------------------------------------------------------
// Main

await requireTools(
  [["age", ["--version"]], [TIME, ["-V"]]],
  "age time",
);
const loadBefore = Deno.loadavg();
const tmp = await Deno.makeTempDir({ prefix: "sluice-vs-age-" });
const cleanUp = () => Deno.removeSync(tmp, { recursive: true });
const onInterrupt = () => {
  cleanUp();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", onInterrupt);
const startedAll = performance.now();
const rows: Row[] = [];
try {
  const ageKey = join(tmp, "age-key.txt");
  await run("age-keygen", ["-o", ageKey]);
  const recipient = (await run("age-keygen", ["-y", ageKey])).trim();
  const stats = join(tmp, "time.txt");
  const child = (files: { store: string; map: string; key: string }) => [
    "run",
    "-A",
    CHILD,
    files.store,
    files.map,
    files.key,
  ];

  // Warm Deno's module cache so the first measured child does not pay for it.
  {
    const dir = join(tmp, "warm-up");
    await Deno.mkdir(dir);
    await writeRandomFile(join(dir, "plain"), MiB);
    const files = await sealFile(join(dir, "plain"), dir, MiB);
    await run(Deno.execPath(), child(files));
    await Deno.remove(dir, { recursive: true });
  }

  for (const { label, bytes } of sizes) {
    const dir = join(tmp, label);
    await Deno.mkdir(dir);
    const plain = join(dir, "plain");
    const encrypted = join(dir, "plain.age");
    console.error(`${label}: writing ${bytes} bytes of plaintext…`);
    await writeRandomFile(plain, bytes);

    console.error(`${label}: sealing…`);
    let t = performance.now();
    const files = await sealFile(plain, dir, bytes);
    const sealSeconds = (performance.now() - t) / 1000;

    console.error(`${label}: age -e…`);
    t = performance.now();
    await run("age", ["-r", recipient, "-o", encrypted, plain]);
    const ageEncryptSeconds = (performance.now() - t) / 1000;
    await Deno.remove(plain);
    await run("sync", []);
    await warmCache([files.store, encrypted]);

    const row: Row = {
      label,
      bytes,
      sealSeconds,
      ageEncryptSeconds,
      sluice: [],
      age: [],
    };
    const runSluice = async () => {
      const { stdout, measured } = await measure(
        stats,
        Deno.execPath(),
        child(files),
      );
      const report = JSON.parse(stdout) as ChildReport;
      if (report.bytes !== bytes) {
        throw new Error(`sluice decrypted ${report.bytes} bytes of ${bytes}`);
      }
      row.sluice.push({ ...measured, child: report });
    };
    const runAge = async () => {
      const { measured } = await measure(stats, "age", [
        "-d",
        "-i",
        ageKey,
        "-o",
        "/dev/null",
        encrypted,
      ]);
      row.age.push(measured);
    };
    for (let r = 0; r < runs; r++) {
      console.error(`${label}: decrypt run ${r + 1} of ${runs}…`);
      if (r % 2 === 0) {
        await runSluice();
        await runAge();
      } else {
        await runAge();
        await runSluice();
      }
    }
    rows.push(row);
    await Deno.remove(dir, { recursive: true });
  }
} finally {
  Deno.removeSignalListener("SIGINT", onInterrupt);
  cleanUp();
}

const loadAfter = Deno.loadavg();
const sluiceMBps = (r: Row) =>
  mbps(r.bytes, median(r.sluice, (m) => m.wallSeconds));
const ageMBps = (r: Row) => mbps(r.bytes, median(r.age, (m) => m.wallSeconds));
const sluiceRss = (r: Row) => mib(median(r.sluice, (m) => m.maxRssKiB));

console.log(
  `\ndecryptStream (aes-256-gcm, 1 MiB chunks, dirStore, deno ${Deno.version.deno}) vs age -d ${
    (await run("age", ["--version"])).trim()
  }: ${runs} run(s) each; wall time and peak RSS are medians of the runs\n`,
);
console.log(table(
  [
    "size",
    "sluice MB/s",
    "age -d MB/s",
    "sluice/age",
    "sluice RSS MiB",
    "age RSS MiB",
  ],
  rows.map((r) => [
    r.label,
    sluiceMBps(r).toFixed(0),
    ageMBps(r).toFixed(0),
    (sluiceMBps(r) / ageMBps(r)).toFixed(2) + "x",
    sluiceRss(r).toFixed(1),
    mib(median(r.age, (m) => m.maxRssKiB)).toFixed(1),
  ]),
));
console.log("\nDetails (ranges are min–max over the runs)\n");
console.log(table(
  [
    "size",
    "sluice wall s",
    "in-process MB/s",
    "CPU",
    "peak RSS MiB",
    "sampled RSS mean",
    "JS heap max",
    "age wall s",
    "age CPU",
    "age peak RSS",
    "seal MB/s",
    "age -e MB/s",
  ],
  rows.map((r) => [
    r.label,
    median(r.sluice, (m) => m.wallSeconds).toFixed(2),
    mbps(r.bytes, median(r.sluice, (m) => m.child.ms) / 1000).toFixed(0),
    `${median(r.sluice, (m) => m.cpuPercent)}%`,
    range(r.sluice.map((m) => mib(m.maxRssKiB))),
    median(r.sluice, (m) => m.child.rssMeanMiB).toFixed(1),
    median(r.sluice, (m) => m.child.heapMaxMiB).toFixed(1),
    median(r.age, (m) => m.wallSeconds).toFixed(2),
    `${median(r.age, (m) => m.cpuPercent)}%`,
    range(r.age.map((m) => mib(m.maxRssKiB))),
    mbps(r.bytes, r.sealSeconds).toFixed(0),
    mbps(r.bytes, r.ageEncryptSeconds).toFixed(0),
  ]),
));

const flatness = rssFlatness(rows, sluiceRss);
if (flatness !== undefined) {
  const { small, large, line } = flatness;
  const sampled = median(large.sluice, (m) => m.child.rssMeanMiB) /
    median(small.sluice, (m) => m.child.rssMeanMiB);
  console.log(`\n${line}; sampled mean RSS ratio ${sampled.toFixed(3)}`);
}
console.log(`\n${totals(startedAll, loadBefore, loadAfter)}`);
