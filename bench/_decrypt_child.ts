/**
 * The sluice side of `bench/decrypt_vs_age.ts`, run in its own process so
 * its peak RSS and wall time can be measured with `/usr/bin/time -v`.
 *
 * It reads a data map (JSON) and a file key (hex), streams the file out of a
 * `dirStore` with {@linkcode decryptStream} into `/dev/null`, counting the
 * bytes on the way, and exits non-zero unless the count matches the map's
 * size. On success it prints one JSON line to stdout: `bytes` (the count),
 * `ms` (from asking for the first byte to writing the last), and what
 * `Deno.memoryUsage()` said every 32 chunks: `rssMeanMiB`, `rssMaxMiB` and
 * `heapMaxMiB` (the JS heap in use). `/usr/bin/time -v` gives the true peak
 * RSS; the samples show whether memory climbs during the run or only swings
 * while garbage chunk buffers wait for the collector.
 *
 * Not a benchmark itself (its name starts with `_`, so `deno bench` skips it):
 *
 * ```sh
 * deno run -A bench/_decrypt_child.ts <store dir> <map.json> <key.hex>
 * ```
 *
 * @module
 */

import { decryptStream, dirStore, parseDataMap } from "../core/chunks.ts";

const [storeDir, mapPath, keyPath] = Deno.args;
if (keyPath === undefined) {
  console.error(
    "usage: deno run -A bench/_decrypt_child.ts <store dir> <map.json> <key.hex>",
  );
  Deno.exit(2);
}

const dataMap = parseDataMap(await Deno.readTextFile(mapPath!));
const keyHex = (await Deno.readTextFile(keyPath)).trim();
if (!/^[0-9a-f]{64}$/.test(keyHex)) {
  console.error(`${keyPath}: expected 64 lowercase hex characters`);
  Deno.exit(2);
}
const key = Uint8Array.from(
  keyHex.match(/../g)!,
  (byte) => parseInt(byte, 16),
);

const SAMPLE_EVERY = 32;
let count = 0;
let chunks = 0;
const rss: number[] = [];
let heapMax = 0;
const sample = () => {
  const usage = Deno.memoryUsage();
  rss.push(usage.rss);
  heapMax = Math.max(heapMax, usage.heapUsed);
};
const counter = new TransformStream<Uint8Array, Uint8Array>({
  transform(chunk, controller) {
    count += chunk.length;
    if (++chunks % SAMPLE_EVERY === 0) sample();
    controller.enqueue(chunk);
  },
});
const sink = await Deno.open("/dev/null", { write: true });

const started = performance.now();
await decryptStream(dataMap, key, dirStore(storeDir!))
  .pipeThrough(counter)
  .pipeTo(sink.writable); // closes the file
const ms = performance.now() - started;

if (count !== dataMap.size) {
  console.error(`decrypted ${count} bytes, expected ${dataMap.size}`);
  Deno.exit(1);
}
sample();
const MiB = 1024 * 1024;
console.log(JSON.stringify({
  bytes: count,
  ms,
  rssMeanMiB: rss.reduce((a, b) => a + b, 0) / rss.length / MiB,
  rssMaxMiB: Math.max(...rss) / MiB,
  heapMaxMiB: heapMax / MiB,
}));
