/**
 * The source that `bench/sinks_bench.ts` delivers, and that script's child
 * process for `--memory`: one delivery in its own process, so its peak RSS
 * can be measured with `/usr/bin/time -v`.
 *
 * The source is `size` bytes in 1 MiB chunks taken round-robin from a few
 * pre-filled buffers of pseudo-random bytes, pulled one chunk at a time
 * (`highWaterMark: 0`), so it holds nothing but those buffers however large
 * it is.
 *
 * As a child it makes that source and delivers it one way:
 *
 * - `file`: `fileSink(out, { overwrite: true }).deliver(source)`;
 * - `writeFile`: `Deno.writeFile(out, source)`, the baseline;
 * - `channel`: `channel({ highWaterMark: 1 MiB })`, drained by a reader
 *   that counts the bytes;
 * - `count`: the source drained by the same counting reader, the baseline.
 *
 * It exits non-zero unless every byte arrived: the file on disk (or the
 * reader's count) must be `size` bytes, and a sink's receipt must give
 * `size` bytes and the SHA-256 of the source, which the child computes
 * before it starts the clock. It leaves the file in place (the parent
 * deletes it). On success it prints one JSON line to stdout: `bytes`, `ms`
 * (from starting the delivery to its end, fsyncs included) and `rssMaxMiB`,
 * the largest `Deno.memoryUsage().rss` sampled every 64 MiB pulled from the
 * source and once at the end. `/usr/bin/time -v` gives the true peak RSS;
 * the samples show whether memory climbs during the run.
 *
 * Not a benchmark itself (its name starts with `_`, so `deno bench` skips it):
 *
 * ```sh
 * deno run -A bench/_sinks_child.ts <file|writeFile|channel|count> <size in bytes> [<out path>]
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { channel, fileSink } from "../sinks/mod.ts";

/** Bytes in a mebibyte, and in one chunk of the source. */
export const MiB = 1024 * 1024;
/** Distinct buffers the source takes its chunks from, round-robin. */
const DISTINCT = 4;
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;

/** `DISTINCT` buffers of 1 MiB pseudo-random bytes. */
export function randomBuffers(): Uint8Array<ArrayBuffer>[] {
  return Array.from({ length: DISTINCT }, () => {
    const bytes = new Uint8Array(MiB);
    for (let at = 0; at < bytes.length; at += RANDOM_PIECE) {
      crypto.getRandomValues(bytes.subarray(at, at + RANDOM_PIECE));
    }
    return bytes;
  });
}

/** The chunks of a `size`-byte source, in order: the buffers round-robin. */
function* chunksOf(
  buffers: Uint8Array<ArrayBuffer>[],
  size: number,
): Generator<Uint8Array<ArrayBuffer>> {
  for (let i = 0, left = size; left > 0; i++) {
    const buffer = buffers[i % buffers.length]!;
    const chunk = left >= buffer.length ? buffer : buffer.subarray(0, left);
    left -= chunk.length;
    yield chunk;
  }
}

/** The SHA-256 (hex) of the bytes {@linkcode roundRobinSource} gives. */
export function expectedSha256(
  buffers: Uint8Array<ArrayBuffer>[],
  size: number,
): string {
  const hash = createHash("sha256");
  for (const chunk of chunksOf(buffers, size)) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * `size` bytes as a stream of (at most) 1 MiB chunks, the buffers
 * round-robin, one chunk made per pull. `onChunk` sees each chunk's end
 * offset as it is handed out.
 */
export function roundRobinSource(
  buffers: Uint8Array<ArrayBuffer>[],
  size: number,
  onChunk?: (end: number) => void,
): ReadableStream<Uint8Array> {
  const chunks = chunksOf(buffers, size);
  let end = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.next();
      if (next.done) return controller.close();
      end += next.value.length;
      onChunk?.(end);
      controller.enqueue(next.value);
    },
  }, { highWaterMark: 0 });
}

/** Reads `readable` to the end and returns how many bytes it gave. */
export async function countBytes(
  readable: ReadableStream<Uint8Array>,
): Promise<number> {
  let count = 0;
  for await (const chunk of readable) count += chunk.length;
  return count;
}

// ---------------------------------------------------------------------------
// The child

/** The ways the child can deliver the source (see the module doc). */
export const KINDS = ["file", "writeFile", "channel", "count"] as const;
/** One of {@linkcode KINDS}. */
export type Kind = typeof KINDS[number];
const SAMPLE_EVERY = 64 * MiB;

/** Delivers `source` the `kind` way; returns the bytes that arrived. */
async function deliver(
  kind: Kind,
  source: ReadableStream<Uint8Array>,
  out: string,
  sha256: string,
): Promise<number> {
  switch (kind) {
    case "file": {
      const receipt = await fileSink(out, { overwrite: true }).deliver(source);
      if (receipt.sha256 !== sha256) {
        throw new Error(`fileSink receipt: sha256 ${receipt.sha256}`);
      }
      return receipt.bytes;
    }
    case "writeFile":
      await Deno.writeFile(out, source);
      return (await Deno.stat(out)).size;
    case "channel": {
      const { sink, readable } = channel({ highWaterMark: MiB });
      const [receipt, count] = await Promise.all([
        sink.deliver(source),
        countBytes(readable),
      ]);
      if (receipt.sha256 !== sha256 || receipt.bytes !== count) {
        throw new Error(
          `channel receipt: ${receipt.bytes} bytes, sha256 ${receipt.sha256}; the reader counted ${count}`,
        );
      }
      return count;
    }
    case "count":
      return await countBytes(source);
  }
}

async function main(): Promise<void> {
  const [kind, sizeArg, out] = Deno.args;
  const size = Number(sizeArg);
  if (
    !KINDS.includes(kind as Kind) || !Number.isSafeInteger(size) ||
    size < 1 || ((kind === "file" || kind === "writeFile") && !out)
  ) {
    console.error(
      `usage: deno run -A bench/_sinks_child.ts <${
        KINDS.join("|")
      }> <size in bytes> [<out path>]`,
    );
    Deno.exit(2);
  }
  const buffers = randomBuffers();
  const sha256 = expectedSha256(buffers, size);

  let rssMax = 0;
  let nextSample = 0;
  const sample = () => {
    rssMax = Math.max(rssMax, Deno.memoryUsage().rss);
  };
  const source = roundRobinSource(buffers, size, (end) => {
    if (end < nextSample) return;
    sample();
    nextSample = end + SAMPLE_EVERY;
  });

  const started = performance.now();
  const bytes = await deliver(kind as Kind, source, out ?? "", sha256);
  const ms = performance.now() - started;
  sample();

  const onDisk = kind === "file" || kind === "writeFile"
    ? (await Deno.stat(out!)).size
    : bytes;
  if (bytes !== size || onDisk !== size) {
    console.error(`${kind}: ${bytes} bytes delivered, ${onDisk} on disk`);
    Deno.exit(1);
  }
  console.log(JSON.stringify({ bytes, ms, rssMaxMiB: rssMax / MiB }));
}

if (import.meta.main) await main();
