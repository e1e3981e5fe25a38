/**
 * The sluice side of `bench/s3_bench.ts`, run in its own process so the peak
 * RSS it reports is that one transfer's own.
 *
 * - `upload`: `s3Sink({ …, key, partSize: 8 MiB, concurrency: 4 })
 *   .deliver(file.readable)`, the file opened with `Deno.open`; it exits
 *   non-zero unless the receipt gives the file's size and the expected
 *   SHA-256 (which `s3Sink` computes on the way, as every sink does).
 * - `download`: `Deno.writeFile(out, s3Object({ …, key }))`, the object
 *   streamed to a file (page cache, no fsync, like `aws s3 cp`); the parent
 *   checks the file's SHA-256 afterwards, untimed, as it does for `aws`.
 *
 * The endpoint, bucket and key come from the arguments; the keys and region
 * are the fixed ones `scripts/local_s3.sh` creates. On success it prints one
 * JSON line to stdout: `bytes`, `ms` (from creating the sink or stream to
 * the end of the transfer, start-up excluded), `peakRssMiB` (`VmHWM` from
 * `/proc/self/status` at the end: the process's peak resident set) and, for
 * an upload, the receipt's `etag` and `parts`.
 *
 * Not a benchmark itself (its name starts with `_`, so `deno bench` skips it):
 *
 * ```sh
 * deno run -A bench/_s3_child.ts upload <endpoint> <bucket> <key> <file> <sha256>
 * deno run -A bench/_s3_child.ts download <endpoint> <bucket> <key> <out file>
 * ```
 *
 * @module
 */

import { s3Object, s3Sink } from "../sinks/s3.ts";

/** Bytes in a mebibyte. */
export const MiB = 1024 * 1024;
/** The part size of both clients' multipart uploads and of aws's ranged GETs. */
export const PART_SIZE = 8 * MiB;
/** Parts (or ranges) in flight at once, for both clients. */
export const CONCURRENCY = 4;
/** The signing region of `scripts/local_s3.sh`'s cluster. */
export const REGION = "default";
/** The keys `scripts/local_s3.sh` creates. */
export const CREDENTIALS = {
  accessKeyId: "sluicetestaccesskey",
  secretAccessKey: "sluicetestsecretkey0123456789",
};

/** What the child prints. */
export interface ChildReport {
  bytes: number;
  ms: number;
  peakRssMiB: number;
  /** The receipt's ETag (uploads only). */
  etag?: string | null;
  /** The receipt's part count (uploads only). */
  parts?: number;
}

/** `VmHWM` of `/proc/<pid>/status` (default: this process) in MiB. */
export function peakRssMiB(pid: number | "self" = "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`No VmHWM in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

async function upload(
  bucket: { endpoint: string; bucket: string; key: string },
  path: string,
  sha256: string,
): Promise<ChildReport> {
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const started = performance.now();
  const receipt = await s3Sink({
    ...bucket,
    region: REGION,
    credentials: CREDENTIALS,
    partSize: PART_SIZE,
    concurrency: CONCURRENCY,
  }).deliver(file.readable);
  const ms = performance.now() - started;
  if (receipt.bytes !== size || receipt.sha256 !== sha256) {
    throw new Error(
      `s3Sink receipt says ${receipt.bytes} bytes, sha256 ${receipt.sha256}; expected ${size} bytes, sha256 ${sha256}`,
    );
  }
  return {
    bytes: receipt.bytes,
    ms,
    peakRssMiB: peakRssMiB(),
    etag: receipt.detail?.etag as string | null,
    parts: receipt.detail?.parts as number,
  };
}

async function download(
  bucket: { endpoint: string; bucket: string; key: string },
  out: string,
): Promise<ChildReport> {
  const started = performance.now();
  await Deno.writeFile(
    out,
    s3Object({ ...bucket, region: REGION, credentials: CREDENTIALS }),
  );
  const ms = performance.now() - started;
  return { bytes: (await Deno.stat(out)).size, ms, peakRssMiB: peakRssMiB() };
}

async function main(): Promise<void> {
  const [kind, endpoint, bucket, key, path, sha256] = Deno.args;
  const usage = () => {
    console.error(
      "usage: deno run -A bench/_s3_child.ts upload <endpoint> <bucket> <key> <file> <sha256>\n" +
        "       deno run -A bench/_s3_child.ts download <endpoint> <bucket> <key> <out file>",
    );
    Deno.exit(2);
  };
  if (!endpoint || !bucket || !key || !path) return usage();
  const at = { endpoint, bucket, key };
  let report: ChildReport;
  if (
    kind === "upload" && sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256)
  ) {
    report = await upload(at, path, sha256);
  } else if (kind === "download") {
    report = await download(at, path);
  } else {
    return usage();
  }
  console.log(JSON.stringify(report));
}

if (import.meta.main) await main();
