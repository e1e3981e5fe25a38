/**
 * Benchmarks the bookkeeping of {@linkcode TransferQueue}: 200 small
 * downloads from a local server run through the queue, against the same
 * downloads run with {@linkcode mapConcurrent} directly. The target
 * is a queue overhead (queue ÷ baseline − 1) under 10 %.
 *
 * Setup, once, before any bench runs: a `Deno.serve` server on 127.0.0.1
 * (an ephemeral port) that answers every path with the same 16 KiB of
 * pseudo-random bytes and a strong ETag, and the SHA-256 of those bytes
 * (from `crypto.subtle`, not `download`'s `node:crypto`). The server is shut
 * down when the process unloads.
 *
 * - "200 small transfers, 3 at once": 200 distinct URLs
 *   (`/f000` … `/f199`) to 200 distinct destination files, at most 3 at once.
 *   The baseline drains `mapConcurrent(items, (i) => download(url_i, dest_i),
 *   { concurrency: 3, ordered: false })`. `ordered: false` keeps 3 downloads
 *   in flight whenever 3 are left, as the queue does: in input order, a slow
 *   download holds back the start of the next one while the results after it
 *   wait to be consumed, which would slow the baseline and flatter the queue.
 *   The queue cases open `TransferQueue.open({ db, maxConcurrent: 3 })` on a
 *   fresh database file, add the 200 (with one `addAll`, one fsynced
 *   commit, or with 200 `add` calls, one fsynced commit each), `run()` them
 *   and close the queue, all timed: opening (schema creation, WAL, the
 *   owner lock) and closing (the last WAL checkpoint) are part of what the
 *   queue costs, like the adds. Its `onEvent` only keeps the receipts of
 *   the "done" events, for the checks. Each download does the same in all
 *   cases (`download`'s defaults: a fresh `.part`, an fsync of the file, a
 *   rename and an fsync of the directory); the queue adds the SQLite writes
 *   of its run (WAL, `synchronous = NORMAL`: not fsynced at commit, only at
 *   WAL checkpoints; one commit to claim a transfer, and one that ends it
 *   and claims the next), `retry`, and its event plumbing.
 *
 * Every iteration writes into a fresh, empty directory, made before the
 * timed region (`b.start()` / `b.end()`); the queue's database is in a
 * sibling directory, so both cases fsync a directory that holds only the
 * downloads. After the timed region, untimed, the iteration checks its
 * outcome and throws if it is wrong, so a broken path cannot look fast:
 * every receipt must give 16 KiB and the payload's SHA-256, the queue's
 * report must say 200 done and nothing else, the directory must hold
 * exactly the 200 files (no `.part` or manifest left), and one of them
 * (a different one each iteration) must hold the payload's bytes. Then it
 * deletes the iteration's directory, so deletions stay small and spread out
 * (on ext4 without a journal, mass deletions slow the file creations after
 * them).
 *
 * Most of an iteration is 400 fsyncs (a file and a directory per download),
 * so times follow the disk: in a VM they swing by ±20 % and more from run to
 * run, and can drift within a run. Compare the two cases within one run, run
 * it a few times, and look at the min column too.
 *
 * The temp directory is removed when the process unloads (also after a
 * failed bench), when the module's setup fails, and on SIGINT/SIGTERM.
 *
 * Run it with:
 *
 * ```sh
 * deno bench -A bench/queue_bench.ts
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { download, type DownloadReceipt } from "../core/download.ts";
import { TransferQueue } from "../core/queue.ts";
import { mapConcurrent } from "../retry/map_concurrent.ts";
import { benchTempDir } from "./_process.ts";

/** Transfers per iteration. */
const COUNT = 200;
/** Downloads at once, in both cases. */
const CONCURRENCY = 3;
/** Bytes per transfer. */
const PAYLOAD_SIZE = 16 * 1024;
/**
 * Each iteration makes 200 files and fsyncs 400 times; a few seconds per
 * case keep a run well under a minute.
 */
const SAMPLES = { n: 15, warmup: 3 };

function toHex(bytes: ArrayBuffer): string {
  return Array.from(
    new Uint8Array(bytes),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

const payload = crypto.getRandomValues(new Uint8Array(PAYLOAD_SIZE));
const payloadSha256 = toHex(await crypto.subtle.digest("SHA-256", payload));
/** A strong ETag: the same bytes on every path, so one validator. */
const etag = `"${payloadSha256.slice(0, 16)}"`;
/** File (and URL path) names: f000 … f199. */
const names: string[] = Array.from(
  { length: COUNT },
  (_, i) => `f${String(i).padStart(3, "0")}`,
);

// ---------------------------------------------------------------------------
// The server, the temp directory, and their removal however the run ends

const { dir, remove: removeDir } = await benchTempDir("sluice_queue_bench_");

let server: Deno.HttpServer<Deno.NetAddr>;
try {
  server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(payload, { headers: { etag } }),
  );
} catch (error) {
  removeDir(); // "unload" is not dispatched when the module fails to load
  throw error;
}
globalThis.addEventListener("unload", () => void server.shutdown());

const urls = names.map((name) =>
  `http://127.0.0.1:${server.addr.port}/${name}`
);

/** A fresh iteration's directories: `files` for the downloads, `db` beside it. */
let iterations = 0;
async function freshIteration(): Promise<
  { root: string; files: string; db: string }
> {
  const root = join(dir, `i${iterations++}`);
  const files = join(root, "files");
  const db = join(root, "db");
  await Deno.mkdir(files, { recursive: true });
  await Deno.mkdir(db);
  // Start from a clean disk: the last iteration's writes and deletions
  // written back, so they do not land in this one's timing.
  await new Deno.Command("sync", { args: ["-f", root] }).output();
  return { root, files, db };
}

// ---------------------------------------------------------------------------
// Checks

/** Throws unless a receipt gives 16 KiB and the payload's SHA-256. */
function checkReceipt(name: string, receipt: DownloadReceipt): void {
  if (receipt.bytes !== PAYLOAD_SIZE || receipt.sha256 !== payloadSha256) {
    throw new Error(
      `${name}: ${receipt.path} got ${receipt.bytes} bytes, sha256 ${receipt.sha256}`,
    );
  }
}

/**
 * Throws unless `files` holds exactly the 200 destinations (nothing else:
 * no `.part`, no manifest) and file `sample` holds the payload.
 */
async function checkFiles(
  name: string,
  files: string,
  sample: number,
): Promise<void> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(files)) found.push(entry.name);
  found.sort();
  if (
    found.length !== COUNT || found.some((entry, i) => entry !== names[i])
  ) {
    throw new Error(
      `${name}: the directory holds ${found.length} entries: ${
        found.slice(0, 5).join(", ")
      }…`,
    );
  }
  const bytes = await Deno.readFile(join(files, names[sample % COUNT]!));
  if (
    bytes.length !== PAYLOAD_SIZE || bytes.some((b, i) => b !== payload[i])
  ) {
    throw new Error(`${name}: ${names[sample % COUNT]} has the wrong bytes`);
  }
}

// ---------------------------------------------------------------------------
// Group: 200 small transfers, 3 at once

const GROUP = `${COUNT} small transfers, ${CONCURRENCY} at once`;

Deno.bench({
  name: "mapConcurrent(download)",
  group: GROUP,
  baseline: true,
  ...SAMPLES,
  async fn(b) {
    const { root, files } = await freshIteration();
    const items = names.map((name, i) => ({
      url: urls[i]!,
      dest: join(files, name),
    }));
    let done = 0;
    b.start();
    for await (
      const receipt of mapConcurrent(
        items,
        ({ url, dest }) => download(url, dest),
        { concurrency: CONCURRENCY, ordered: false },
      )
    ) {
      checkReceipt("mapConcurrent", receipt);
      done++;
    }
    b.end();
    if (done !== COUNT) {
      throw new Error(`mapConcurrent: ${done} of ${COUNT} downloads`);
    }
    await checkFiles("mapConcurrent", files, iterations);
    await Deno.remove(root, { recursive: true });
  },
});

/** The queue case: open, add the 200 (in one `addAll` or one `add` each), run, close. */
function queueBench(batched: boolean): Deno.BenchDefinition {
  const name = `TransferQueue (open, ${
    batched ? "addAll" : "add × 200"
  }, run, close)`;
  return {
    name,
    group: GROUP,
    ...SAMPLES,
    async fn(b) {
      const { root, files, db } = await freshIteration();
      const receipts: DownloadReceipt[] = [];
      const specs = names.map((name, i) => ({
        urls: urls[i]!,
        dest: join(files, name),
      }));
      b.start();
      const queue = await TransferQueue.open({
        db: join(db, "queue.db"),
        maxConcurrent: CONCURRENCY,
        onEvent(event) {
          if (event.type === "done") receipts.push(event.receipt);
        },
      });
      let report;
      try {
        if (batched) await queue.addAll(specs);
        else for (const spec of specs) await queue.add(spec);
        report = await queue.run();
      } finally {
        await queue.close();
      }
      b.end();
      if (
        report.done !== COUNT || report.failed !== 0 ||
        report.cancelled !== 0 || report.stopped !== 0 || report.aborted
      ) {
        throw new Error(`${name}: run() reported ${JSON.stringify(report)}`);
      }
      if (receipts.length !== COUNT) {
        throw new Error(`${name}: ${receipts.length} done events`);
      }
      for (const receipt of receipts) checkReceipt(name, receipt);
      await checkFiles(name, files, iterations);
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.bench(queueBench(true));
Deno.bench(queueBench(false));
