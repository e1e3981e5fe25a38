/**
 * The sluice side of `bench/range_vs_curl.ts`, run in its own process so its
 * peak RSS and wall time can be measured with `/usr/bin/time -v`.
 *
 * It downloads `<url>` to `<out path>` with {@linkcode download} and its
 * default options (plus `checkpointBytes` when a fourth argument gives it),
 * passing the expected SHA-256 so `download` verifies the file itself, and
 * exits non-zero unless the receipt's `sha256` is the expected one and its
 * `bytes` is the size of the file on disk. On success it prints one JSON
 * line to stdout: `bytes` (the receipt's), `ms` (from calling `download` to
 * its resolution: request, writes, checkpoints, hashing, the final fsync and
 * rename) and `rssMaxMiB`, the largest `Deno.memoryUsage().rss` sampled
 * every 64 MiB of progress and once at the end. `/usr/bin/time -v` gives the
 * true peak RSS; the samples show whether memory climbs during the run.
 *
 * Not a benchmark itself (its name starts with `_`, so `deno bench` skips it):
 *
 * ```sh
 * deno run -A bench/_download_child.ts <url> <out path> <sha256> [checkpoint bytes]
 * ```
 *
 * @module
 */

import { download, type DownloadEvent } from "../core/range.ts";

const MiB = 1024 * 1024;
const SAMPLE_EVERY = 64 * MiB;

const [url, outPath, sha256, checkpointArg] = Deno.args;
if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) {
  console.error(
    "usage: deno run -A bench/_download_child.ts <url> <out path> <sha256 hex> [checkpoint bytes]",
  );
  Deno.exit(2);
}
const checkpointBytes = checkpointArg === undefined
  ? undefined
  : Number(checkpointArg);
if (
  checkpointBytes !== undefined &&
  (!Number.isSafeInteger(checkpointBytes) || checkpointBytes < 1)
) {
  console.error(
    `checkpoint bytes must be an integer >= 1, got ${checkpointArg}`,
  );
  Deno.exit(2);
}

let rssMax = 0;
let nextSample = 0;
const sample = () => {
  rssMax = Math.max(rssMax, Deno.memoryUsage().rss);
};
const onProgress = (event: DownloadEvent) => {
  if (event.type !== "progress" || event.bytes < nextSample) return;
  sample();
  nextSample = event.bytes + SAMPLE_EVERY;
};

const started = performance.now();
const receipt = await download(url!, outPath!, {
  sha256,
  onProgress,
  ...(checkpointBytes !== undefined ? { checkpointBytes } : {}),
});
const ms = performance.now() - started;
sample();

const onDisk = (await Deno.stat(receipt.path)).size;
if (receipt.sha256 !== sha256 || receipt.bytes !== onDisk) {
  console.error(
    `receipt says ${receipt.bytes} bytes, sha256 ${receipt.sha256}; ` +
      `expected ${onDisk} bytes (on disk), sha256 ${sha256}`,
  );
  Deno.exit(1);
}
console.log(JSON.stringify({
  bytes: receipt.bytes,
  ms,
  rssMaxMiB: rssMax / MiB,
}));
