/**
 * The queue's overhead measured with the two arms interleaved in one
 * process: `deno bench` runs every iteration of one case before the next
 * case, and on this kind of VM the disk drifts over a run, so the case that
 * runs later pays for it. Here each round runs both arms (in alternating
 * order), each on a fresh directory after a `sync -f`, and the overhead is
 * the median of the per-round ratios. The arms are those of
 * `queue_bench.ts`: 200 downloads of 16 KiB, 3 at once, with
 * `mapConcurrent(download)` and with a `TransferQueue` (open, `addAll`,
 * `run`, close, on a fresh database).
 *
 * ```sh
 * deno run -A bench/queue_interleaved.ts [rounds, default 16]
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { download } from "../core/download.ts";
import { TransferQueue } from "../core/queue.ts";
import { mapConcurrent } from "../retry/map_concurrent.ts";
import { benchTempDir } from "./_process.ts";

const COUNT = 200;
const CONCURRENCY = 3;
const ROUNDS = Number(Deno.args[0] ?? 16);
const payload = crypto.getRandomValues(new Uint8Array(16 * 1024));

const { dir, remove } = await benchTempDir("sluice_queue_interleaved_");
await using server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () => new Response(payload, { headers: { etag: '"q1"' } }),
);
const urls = Array.from(
  { length: COUNT },
  (_, i) => `http://127.0.0.1:${server.addr.port}/f${i}`,
);

let fresh = 0;
/** A new directory for one arm's files (and database), after a sync. */
async function freshDirectory(): Promise<string> {
  const root = join(dir, `r${fresh++}`);
  await Deno.mkdir(join(root, "files"), { recursive: true });
  await new Deno.Command("sync", { args: ["-f", root] }).output();
  return root;
}

async function baseline(root: string): Promise<number> {
  const started = performance.now();
  let done = 0;
  const items = urls.map((url, i) => [url, join(root, "files", `f${i}`)]);
  for await (
    const _ of mapConcurrent(items, ([url, dest]) => download(url!, dest!), {
      concurrency: CONCURRENCY,
      ordered: false,
    })
  ) done++;
  if (done !== COUNT) throw new Error(`baseline: ${done} of ${COUNT}`);
  return performance.now() - started;
}

async function queue(root: string): Promise<number> {
  const started = performance.now();
  const queue = await TransferQueue.open({
    db: join(root, "queue.db"),
    maxConcurrent: CONCURRENCY,
  });
  await queue.addAll(
    urls.map((url, i) => ({ urls: url, dest: join(root, "files", `f${i}`) })),
  );
  const report = await queue.run();
  await queue.close();
  if (report.done !== COUNT) throw new Error(JSON.stringify(report));
  return performance.now() - started;
}

async function measure(arm: (root: string) => Promise<number>) {
  const root = await freshDirectory();
  const ms = await arm(root);
  await Deno.remove(root, { recursive: true });
  return ms;
}

try {
  for (let i = 0; i < 2; i++) await measure(baseline), await measure(queue);
  const ratios: number[] = [];
  const times = { baseline: [] as number[], queue: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    const first = round % 2 === 0;
    const a = first ? await measure(baseline) : await measure(queue);
    const b = first ? await measure(queue) : await measure(baseline);
    const [base, q] = first ? [a, b] : [b, a];
    times.baseline.push(base);
    times.queue.push(q);
    ratios.push(q / base);
  }
  const median = (values: number[]) =>
    [...values].sort((x, y) => x - y)[values.length >> 1]!;
  console.log(
    `${ROUNDS} rounds: mapConcurrent(download) median ${
      median(times.baseline).toFixed(0)
    } ms, TransferQueue median ${median(times.queue).toFixed(0)} ms`,
  );
  console.log(
    `queue overhead, median of the per-round ratios: ${
      ((median(ratios) - 1) * 100).toFixed(1)
    } % (rounds from ${((Math.min(...ratios) - 1) * 100).toFixed(0)} % to ${
      ((Math.max(...ratios) - 1) * 100).toFixed(0)
    } %)`,
  );
} finally {
  remove();
}
