/**
 * Compares sluice's S3 code with `aws s3 cp` (awscli) on a real Ceph RGW:
 * 1 GiB uploaded with {@linkcode s3Sink} and with `aws s3 cp <file> s3://…`,
 * and downloaded with `s3Object` and with `aws s3 cp s3://… <file>`,
 * in the same run, each transfer in its own process.
 *
 * The cluster: with `SLUICE_S3_ENDPOINT` set, the RGW there (it must have
 * `scripts/local_s3.sh`'s keys); otherwise the bench starts its own with
 * `scripts/local_s3.sh start` in its temp dir, on free ports (7490 and 6799
 * when free), and stops it when the process unloads, when setup fails, and
 * on SIGINT/SIGTERM. Without `aws` (or, for its own cluster, without
 * `ceph-mon`, `ceph-osd` and `radosgw`) it prints why and registers no
 * benches, so `deno task bench` still passes.
 *
 * Setup, untimed, in a fresh temp dir:
 *
 * 1. 1 GiB of pseudo-random bytes is written to a file, its SHA-256 taken on
 *    the way; a second pass takes the MD5 of each 8 MiB part, which gives
 *    the ETag S3 computes for a multipart upload in 8 MiB parts (and leaves
 *    the file in the page cache, so the uploads read memory, not the disk);
 * 2. the bucket `bench` is created (a signed PUT; "already owned" is fine)
 *    and the file uploaded once with `s3Sink`, in this process, as the
 *    object the downloads read;
 * 3. each client uploads and downloads 1 MiB twice, so Deno's module cache
 *    and Python's are warm; the second round's wall times are each client's
 *    fixed cost (process start-up, one small request).
 *
 * The benches, every call a full measured transfer (`deno bench` calls each
 * function three times with `n: 1`; the summary keeps every call):
 *
 * - upload: `deno run -A bench/_s3_child.ts upload …` (`s3Sink`, 8 MiB parts,
 *   4 at once, `deliver(file.readable)`, receipt's size and SHA-256
 *   checked in the child) and `aws s3 cp <file> s3://bench/<key>` with
 *   `multipart_chunksize = 8MB`, `max_concurrent_requests = 4` and
 *   `multipart_threshold = 8MB` in a temp `AWS_CONFIG_FILE` (the user's
 *   `~/.aws` is not read). After each upload, untimed: a signed HEAD must give
 *   1 GiB and the expected multipart ETag (the server's MD5 of each part
 *   received, so it checks every byte of both clients' uploads), then a
 *   signed DELETE.
 * - download: `deno run -A bench/_s3_child.ts download …`
 *   (`Deno.writeFile(out, s3Object(…))`: one streaming GET) and
 *   `aws s3 cp s3://bench/<key> <out>` (ranged GETs of 8 MiB, 4 at once, into
 *   the file). Both write the same path in the temp dir, to the page cache,
 *   without fsync; afterwards, untimed, the file's SHA-256 must be the
 *   source's, and the file is deleted.
 *
 * Each iteration's time is the whole process, start-up included, as a user
 * running either command would see it. The summary printed at the end gives,
 * per case, the median MiB/s over the calls, sluice/aws ratios (above 1 means
 * sluice is faster) on that wall time and on the transfer alone (sluice's
 * in-process time; aws's wall time minus its fixed cost from the warm-up),
 * and the peak RSS: `VmHWM` of the sluice child at its end, and GNU time's
 * `%M` for `aws` (when `/usr/bin/time` is installed).
 *
 * The OSD keeps objects in memory (memstore, 4 GiB), and RGW only frees a
 * deleted multipart object's parts in its garbage collection, two hours
 * later by default. So after each DELETE the bench runs
 * `radosgw-admin gc process --include-all` against the cluster's
 * `ceph.conf`: its own cluster's, or with `SLUICE_S3_ENDPOINT` the one in
 * `SLUICE_S3_DIR` (default `/tmp/sluice-s3`, `local_s3.sh`'s default) when
 * it serves that endpoint. Without one it warns: each run then leaves 3 GiB
 * waiting for RGW's collector. The source object is deleted at unload.
 *
 * About 2 minutes on 2 cores; needs about 2 GiB free in the temp dir and, for
 * its own cluster, up to 4 GiB of RAM for the OSD:
 *
 * ```sh
 * deno bench -A bench/s3_bench.ts                                       # own cluster
 * SLUICE_S3_ENDPOINT=http://127.0.0.1:7480 deno bench -A bench/s3_bench.ts
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { signRequest } from "../sinks/_sigv4.ts";
import { s3Sink } from "../sinks/s3.ts";
import {
  type ChildReport,
  CONCURRENCY,
  CREDENTIALS,
  MiB,
  PART_SIZE,
  REGION,
} from "./_s3_child.ts";
import { median, table, TIME, totals, writeRandomFile } from "./_process.ts";

/** Bytes per transfer: 1 GiB. */
const SIZE = 1024 * MiB;
/** Bytes of the warm-up transfers. */
const WARM_SIZE = MiB;
const BUCKET = "bench";
/** `deno bench` still calls each function three times: each is 1 GiB. */
const SAMPLES = { n: 1, warmup: 0 };
const CHILD = new URL("./_s3_child.ts", import.meta.url).pathname;
const LOCAL_S3 = new URL("../scripts/local_s3.sh", import.meta.url).pathname;
/** The environment of the Ceph tools (run with a cleared environment). */
const CEPH_ENV = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };

/** The four measured transfers. */
const CASES = ["awsUp", "sluiceUp", "awsDown", "sluiceDown"] as const;
type Case = typeof CASES[number];
const LABELS: Record<Case, string> = {
  awsUp: "upload, aws s3 cp",
  sluiceUp: "upload, s3Sink",
  awsDown: "download, aws s3 cp",
  sluiceDown: "download, s3Object",
};

/** One measured transfer. */
interface Sample {
  /** The process, spawn to exit. */
  wallMs: number;
  /** sluice only: the transfer, start-up excluded. */
  inProcessMs?: number;
  peakRssMiB?: number;
}

/** Where the bench works; filled in by {@linkcode setUp}. */
interface Bench {
  dir: string;
  endpoint: string;
  /** The cluster's ceph.conf, for `radosgw-admin gc`; undefined if unknown. */
  cephConf: string | undefined;
  /** Keys of this run start with it, so runs sharing a cluster do not collide. */
  prefix: string;
  source: string;
  sha256: string;
  /** The multipart ETag of the source in 8 MiB parts, quotes included. */
  etag: string;
  awsEnv: Record<string, string>;
  /** `aws-cli/1.45.11`. */
  awsVersion: string;
  hasTime: boolean;
}

const samples: Record<Case, Sample[]> = {
  awsUp: [],
  sluiceUp: [],
  awsDown: [],
  sluiceDown: [],
};
/** Each case's 1 MiB wall time in the second warm-up round. */
const fixedMs: Partial<Record<Case, number>> = {};

// ---------------------------------------------------------------------------
// Processes

/** True if `tool args` can be started. */
async function canRun(tool: string, args: string[]): Promise<boolean> {
  try {
    await new Deno.Command(tool, { args, stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a command and returns its stdout; throws with its stderr if it
 * fails. With `rssFile`, runs it under GNU time and gives its peak RSS.
 */
async function spawn(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; rssFile?: string } = {},
): Promise<{ stdout: string; peakRssMiB: number | undefined }> {
  const { env, rssFile } = options;
  const argv = rssFile === undefined
    ? [cmd, ...args]
    : [TIME, "-f", "%M", "-o", rssFile, cmd, ...args];
  const output = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(env === undefined ? {} : { env, clearEnv: true }),
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${output.code}:\n${
        decoder.decode(output.stderr)
      }`,
    );
  }
  const peakRssMiB = rssFile === undefined
    ? undefined
    : Number((await Deno.readTextFile(rssFile)).trim().split("\n").at(-1)) /
      1024;
  return { stdout: decoder.decode(output.stdout), peakRssMiB };
}

/** The same, synchronously, for clean-up at unload; never throws. */
function spawnSync(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): void {
  try {
    const output = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      ...(env === undefined ? {} : { env, clearEnv: true }),
    }).outputSync();
    if (!output.success) {
      console.error(
        `s3_bench: ${cmd} ${args.join(" ")} failed: ${
          new TextDecoder().decode(output.stderr)
        }`,
      );
    }
  } catch (error) {
    console.error(`s3_bench: ${cmd} ${args.join(" ")} failed: ${error}`);
  }
}

/** `preferred` if nothing listens there on 127.0.0.1, else a free port. */
function freePort(preferred: number): number {
  for (const port of [preferred, 0]) {
    try {
      const listener = Deno.listen({ hostname: "127.0.0.1", port });
      listener.close();
      return listener.addr.port;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new Error("Cannot find a free port");
}

// ---------------------------------------------------------------------------
// S3, outside the code under test

/** A signed request to the bench's bucket; throws unless `ok` says yes. */
async function s3Request(
  endpoint: string,
  method: string,
  path: string,
  ok: (status: number) => boolean = (status) => status < 300,
): Promise<Response> {
  const url = new URL(`${endpoint}/${path}`);
  const headers = signRequest({ method, url }, {
    credentials: CREDENTIALS,
    region: REGION,
  });
  const response = await fetch(url, { method, headers });
  const text = method === "HEAD" ? "" : await response.text();
  if (!ok(response.status)) {
    throw new Error(`${method} ${url.href}: ${response.status} ${text}`);
  }
  return response;
}

/** Frees deleted objects' memory now, instead of in RGW's collector. */
async function collectGarbage(bench: Bench): Promise<void> {
  if (bench.cephConf === undefined) return;
  await spawn("radosgw-admin", [
    "-c",
    bench.cephConf,
    "gc",
    "process",
    "--include-all",
  ], { env: CEPH_ENV });
}

/** Throws unless `key` holds 1 GiB with the source's multipart ETag; deletes it. */
async function checkAndDelete(
  bench: Bench,
  name: string,
  key: string,
): Promise<void> {
  const head = await s3Request(bench.endpoint, "HEAD", `${BUCKET}/${key}`);
  const length = Number(head.headers.get("content-length"));
  const etag = head.headers.get("etag");
  await s3Request(bench.endpoint, "DELETE", `${BUCKET}/${key}`);
  await collectGarbage(bench);
  if (length !== SIZE || etag !== bench.etag) {
    throw new Error(
      `${name}: the object has ${length} bytes, ETag ${etag}; expected ${SIZE}, ${bench.etag}`,
    );
  }
}

// ---------------------------------------------------------------------------
// Files

/** SHA-256 (hex) of a file, and the S3 multipart ETag of its 8 MiB parts. */
async function digestFile(
  path: string,
): Promise<{ sha256: string; etag: string; bytes: number }> {
  using file = await Deno.open(path, { read: true });
  const sha256 = createHash("sha256");
  const partMd5s: Uint8Array[] = [];
  const buffer = new Uint8Array(PART_SIZE);
  let bytes = 0;
  while (true) {
    let filled = 0;
    while (filled < buffer.length) {
      const n = await file.read(buffer.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled === 0) break;
    const part = buffer.subarray(0, filled);
    sha256.update(part);
    partMd5s.push(createHash("md5").update(part).digest());
    bytes += filled;
    if (filled < buffer.length) break;
  }
  const md5OfMd5s = createHash("md5");
  for (const md5 of partMd5s) md5OfMd5s.update(md5);
  return {
    sha256: sha256.digest("hex"),
    etag: `"${md5OfMd5s.digest("hex")}-${partMd5s.length}"`,
    bytes,
  };
}

// ---------------------------------------------------------------------------
// The transfers

/** The command for one transfer: `[cmd, args, env]`. */
function command(
  bench: Bench,
  kind: Case,
  key: string,
  path: string,
): [string, string[], Record<string, string> | undefined] {
  const s3Url = `s3://${BUCKET}/${key}`;
  const aws = (from: string, to: string): string[] => [
    "--endpoint-url",
    bench.endpoint,
    "s3",
    "cp",
    from,
    to,
    "--only-show-errors",
  ];
  switch (kind) {
    case "awsUp":
      return ["aws", aws(path, s3Url), bench.awsEnv];
    case "awsDown":
      return ["aws", aws(s3Url, path), bench.awsEnv];
    case "sluiceUp":
      return [Deno.execPath(), [
        "run",
        "-A",
        CHILD,
        "upload",
        bench.endpoint,
        BUCKET,
        key,
        path,
        bench.sha256,
      ], undefined];
    case "sluiceDown":
      return [Deno.execPath(), [
        "run",
        "-A",
        CHILD,
        "download",
        bench.endpoint,
        BUCKET,
        key,
        path,
      ], undefined];
  }
}

/**
 * Runs one transfer and returns its figures; `b` (when given) times exactly
 * the process. Checks nothing: the callers do.
 */
async function transfer(
  bench: Bench,
  kind: Case,
  key: string,
  path: string,
  b?: Deno.BenchContext,
): Promise<Sample & { report?: ChildReport }> {
  const [cmd, args, env] = command(bench, kind, key, path);
  const isAws = cmd === "aws";
  const rssFile = isAws && bench.hasTime
    ? join(bench.dir, "rss.txt")
    : undefined;
  b?.start();
  const started = performance.now();
  const { stdout, peakRssMiB } = await spawn(cmd, args, {
    ...(env ? { env } : {}),
    ...(rssFile ? { rssFile } : {}),
  });
  const wallMs = performance.now() - started;
  b?.end();
  if (isAws) return { wallMs, ...(peakRssMiB ? { peakRssMiB } : {}) };
  const report = JSON.parse(stdout) as ChildReport;
  return {
    wallMs,
    inProcessMs: report.ms,
    peakRssMiB: report.peakRssMiB,
    report,
  };
}

/** Throws unless the file at `path` is the source; deletes it. */
async function checkDownload(
  bench: Bench,
  name: string,
  path: string,
): Promise<void> {
  const { sha256, bytes } = await digestFile(path);
  await Deno.remove(path);
  if (sha256 !== bench.sha256) {
    throw new Error(
      `${name}: downloaded ${bytes} bytes, sha256 ${sha256}; expected ${SIZE}, ${bench.sha256}`,
    );
  }
}

/** Uploads and downloads 1 MiB with each client, twice; keeps round two's times. */
async function warmUp(bench: Bench): Promise<void> {
  const file = join(bench.dir, "warm.bin");
  const out = join(bench.dir, "warm-out.bin");
  const warm = { ...bench, sha256: await writeRandomFile(file, WARM_SIZE) };
  const pairs = [["awsUp", "awsDown"], ["sluiceUp", "sluiceDown"]] as const;
  for (let round = 0; round < 2; round++) {
    for (const [up, down] of pairs) {
      const key = `${bench.prefix}/warm-${up}`;
      fixedMs[up] = (await transfer(warm, up, key, file)).wallMs;
      fixedMs[down] = (await transfer(warm, down, key, out)).wallMs;
      await Deno.remove(out);
      await s3Request(bench.endpoint, "DELETE", `${BUCKET}/${key}`);
    }
  }
  await Deno.remove(file);
}

// ---------------------------------------------------------------------------
// Setting up, cleaning up

/** The `ceph.conf` of `local_s3.sh`'s cluster serving `endpoint`, if found. */
async function findCephConf(endpoint: string): Promise<string | undefined> {
  const dir = Deno.env.get("SLUICE_S3_DIR") ?? "/tmp/sluice-s3";
  const conf = join(dir, "ceph.conf");
  try {
    const text = await Deno.readTextFile(conf);
    const host = new URL(endpoint).host;
    return text.includes(`endpoint=${host}\n`) ? conf : undefined;
  } catch {
    return undefined;
  }
}

/** Starts `local_s3.sh`'s cluster in `dir`; returns its endpoint. */
async function startCluster(dir: string): Promise<string> {
  const env = {
    ...CEPH_ENV,
    SLUICE_S3_PORT: String(freePort(7490)),
    SLUICE_S3_MON_PORT: String(freePort(6799)),
  };
  console.error(
    `s3_bench: starting a Ceph cluster (RGW on port ${env.SLUICE_S3_PORT})…`,
  );
  let stdout: string;
  try {
    ({ stdout } = await spawn("bash", [LOCAL_S3, "start", dir], { env }));
  } catch (error) {
    // The script logs to the directory, which the clean-up removes.
    const log = await Deno.readTextFile(join(dir, "start.log")).catch(() => "");
    throw new Error(`Cannot start the Ceph cluster; start.log:\n${log}`, {
      cause: error,
    });
  }
  const endpoint = /^endpoint=(.+)$/m.exec(stdout)?.[1];
  if (endpoint === undefined) {
    throw new Error(`local_s3.sh printed no endpoint:\n${stdout}`);
  }
  return endpoint;
}

/** The one clean-up: source object, own cluster, temp dir. Runs once. */
function cleanUpOnce(
  state: { dir: string; cluster?: string; bench?: Bench },
): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const { bench, cluster } = state;
    if (bench !== undefined && cluster === undefined) {
      // A cluster that outlives the bench: delete the object the downloads read.
      spawnSync("aws", [
        "--endpoint-url",
        bench.endpoint,
        "s3",
        "rm",
        `s3://${BUCKET}/${bench.prefix}/source`,
        "--only-show-errors",
      ], bench.awsEnv);
      if (bench.cephConf !== undefined) {
        spawnSync("radosgw-admin", [
          "-c",
          bench.cephConf,
          "gc",
          "process",
          "--include-all",
        ], CEPH_ENV);
      }
    }
    if (cluster !== undefined) {
      spawnSync("bash", [LOCAL_S3, "stop", cluster], CEPH_ENV);
    }
    Deno.removeSync(state.dir, { recursive: true });
  };
}

/** Everything before the benches: cluster, bucket, files, warm-up. */
async function setUp(
  state: { dir: string; cluster?: string; bench?: Bench },
): Promise<Bench> {
  const dir = state.dir;
  let endpoint = Deno.env.get("SLUICE_S3_ENDPOINT")?.replace(/\/+$/, "");
  let cephConf: string | undefined;
  if (endpoint === undefined) {
    state.cluster = join(dir, "ceph");
    endpoint = await startCluster(state.cluster);
    cephConf = join(state.cluster, "ceph.conf");
  } else {
    cephConf = await canRun("radosgw-admin", ["--version"])
      ? await findCephConf(endpoint)
      : undefined;
    if (cephConf === undefined) {
      console.error(
        `s3_bench: no ceph.conf for ${endpoint} (set SLUICE_S3_DIR to local_s3.sh's directory): deleted objects stay in the OSD's memory until RGW's garbage collection (2 h by default)`,
      );
    }
  }
  await s3Request(
    endpoint,
    "PUT",
    BUCKET,
    (status) => status === 200 || status === 409,
  );

  const source = join(dir, "source.bin");
  console.error(`s3_bench: writing ${SIZE} bytes…`);
  const written = await writeRandomFile(source, SIZE);
  const { sha256, etag } = await digestFile(source);
  if (sha256 !== written) throw new Error("The source changed on disk");

  const awsConfig = join(dir, "aws-config");
  await Deno.writeTextFile(
    awsConfig,
    `[default]\ns3 =\n    multipart_threshold = ${
      PART_SIZE / MiB
    }MB\n    multipart_chunksize = ${
      PART_SIZE / MiB
    }MB\n    max_concurrent_requests = ${CONCURRENCY}\n`,
  );
  const awsEnv = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: dir,
    AWS_CONFIG_FILE: awsConfig,
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "aws-credentials"), // none
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_DEFAULT_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: "true",
  };
  const { stdout: version } = await spawn("aws", ["--version"], {
    env: awsEnv,
  });
  const bench: Bench = {
    dir,
    endpoint,
    cephConf,
    prefix: `run-${crypto.randomUUID().slice(0, 8)}`,
    source,
    sha256,
    etag,
    awsEnv,
    awsVersion: version.split(" ")[0]!,
    hasTime: await canRun(TIME, ["-V"]),
  };
  state.bench = bench;

  console.error("s3_bench: uploading the object the downloads read…");
  const receipt = await s3Sink({
    endpoint,
    region: REGION,
    bucket: BUCKET,
    key: `${bench.prefix}/source`,
    credentials: CREDENTIALS,
    partSize: PART_SIZE,
    concurrency: CONCURRENCY,
  }).deliver((await Deno.open(source, { read: true })).readable);
  if (receipt.sha256 !== sha256 || receipt.detail?.etag !== etag) {
    throw new Error(
      `The source upload's receipt says sha256 ${receipt.sha256}, ETag ${receipt.detail?.etag}`,
    );
  }
  console.error("s3_bench: warming up both clients…");
  await warmUp(bench);
  return bench;
}

// ---------------------------------------------------------------------------
// The benches

function defineBenches(bench: Bench): void {
  const up = "upload 1 GiB";
  const down = "download 1 GiB";
  const sourceKey = `${bench.prefix}/source`;
  const out = join(bench.dir, "out.bin");

  const upload =
    (kind: "awsUp" | "sluiceUp") => async (b: Deno.BenchContext) => {
      const key = `${bench.prefix}/${kind}`;
      const sample = await transfer(bench, kind, key, bench.source, b);
      await checkAndDelete(bench, LABELS[kind], key);
      if (sample.report && sample.report.etag !== bench.etag) {
        throw new Error(
          `${
            LABELS[kind]
          }: the receipt's ETag is ${sample.report.etag}, expected ${bench.etag}`,
        );
      }
      samples[kind].push(sample);
    };
  const download =
    (kind: "awsDown" | "sluiceDown") => async (b: Deno.BenchContext) => {
      const sample = await transfer(bench, kind, sourceKey, out, b);
      await checkDownload(bench, LABELS[kind], out);
      samples[kind].push(sample);
    };

  Deno.bench({
    name: `aws s3 cp file s3:// (${
      PART_SIZE / MiB
    } MiB parts, ${CONCURRENCY} at once)`,
    group: up,
    baseline: true,
    ...SAMPLES,
    fn: upload("awsUp"),
  });
  Deno.bench({
    name: `s3Sink.deliver(file.readable) (${
      PART_SIZE / MiB
    } MiB parts, ${CONCURRENCY} at once)`,
    group: up,
    ...SAMPLES,
    fn: upload("sluiceUp"),
  });
  Deno.bench({
    name: `aws s3 cp s3:// file (${
      PART_SIZE / MiB
    } MiB ranges, ${CONCURRENCY} at once)`,
    group: down,
    baseline: true,
    ...SAMPLES,
    fn: download("awsDown"),
  });
  Deno.bench({
    name: "Deno.writeFile(file, s3Object(…)) (one GET)",
    group: down,
    ...SAMPLES,
    fn: download("sluiceDown"),
  });
}

// ---------------------------------------------------------------------------
// The summary

/** MiB/s of 1 GiB in `ms`. */
function mibps(ms: number): number {
  return SIZE / MiB / (ms / 1000);
}

function summary(bench: Bench, started: number, loadBefore: number[]): void {
  const ran = CASES.filter((kind) => samples[kind].length > 0);
  if (ran.length === 0) return;
  const wall = (kind: Case) => median(samples[kind], (s) => s.wallMs);
  const alone = (kind: Case) =>
    kind.startsWith("sluice")
      ? median(samples[kind], (s) => s.inProcessMs!)
      : wall(kind) - (fixedMs[kind] ?? 0);
  const ratio = (kind: Case, of: (k: Case) => number) => {
    if (!kind.startsWith("sluice")) return "1";
    const aws: Case = kind === "sluiceUp" ? "awsUp" : "awsDown";
    return samples[aws].length === 0
      ? "–"
      : `${(of(aws) / of(kind)).toFixed(2)}x`;
  };
  const rss = (kind: Case) => {
    const values = samples[kind].flatMap((s) => s.peakRssMiB ?? []);
    return values.length === 0 ? "–" : median(values, (v) => v).toFixed(0);
  };
  const part = `${PART_SIZE / MiB} MiB`;
  console.log([
    "",
    `S3 on Ceph RGW at ${bench.endpoint}, 1 GiB; deno ${Deno.version.deno} vs ${bench.awsVersion}.`,
    `Uploads: both in ${part} parts, ${CONCURRENCY} at once (aws: multipart_chunksize, multipart_threshold`,
    `and max_concurrent_requests set in a temp AWS_CONFIG_FILE). Downloads: aws in ${part} ranged GETs,`,
    `${CONCURRENCY} at once; s3Object in one GET; both into a file in the same temp dir, no fsync.`,
    "Medians over every call; sluice/aws is the speed ratio (above 1: sluice is faster).",
    "",
  ].join("\n"));
  console.log(table(
    [
      "case",
      "calls",
      "wall s",
      "MiB/s",
      "sluice/aws",
      "transfer-only MiB/s",
      "sluice/aws",
      "peak RSS MiB",
    ],
    ran.map((kind) => [
      LABELS[kind],
      String(samples[kind].length),
      (wall(kind) / 1000).toFixed(2),
      mibps(wall(kind)).toFixed(0),
      ratio(kind, wall),
      mibps(alone(kind)).toFixed(0),
      ratio(kind, alone),
      rss(kind),
    ]),
  ));
  const fixed = CASES.map((k) =>
    `${LABELS[k]} ${(fixedMs[k] ?? 0).toFixed(0)}`
  );
  console.log([
    "",
    "wall: the process, start-up included. transfer-only: sluice's in-process time; aws's wall",
    `minus its fixed cost, the wall time of a 1 MiB transfer (ms: ${
      fixed.join(", ")
    }).`,
    `Peak RSS: VmHWM of the sluice child at its end; GNU time's %M for aws.`,
  ].join("\n"));
  console.log(totals(started, loadBefore, Deno.loadavg()));
}

// ---------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const ownCluster = Deno.env.get("SLUICE_S3_ENDPOINT") === undefined;
  const needed = ownCluster
    ? ["aws", "ceph-mon", "ceph-osd", "radosgw", "radosgw-admin"]
    : ["aws"];
  const missing: string[] = [];
  for (const tool of needed) {
    if (!await canRun(tool, ["--version"])) missing.push(tool);
  }
  if (missing.length > 0) {
    console.log(
      `s3_bench: skipped, ${
        missing.join(", ")
      } not installed (Debian: apt-get install -y awscli ceph-mon ceph-osd radosgw ceph-common)`,
    );
    return;
  }
  const started = performance.now();
  const loadBefore = Deno.loadavg();
  const state: { dir: string; cluster?: string; bench?: Bench } = {
    dir: await Deno.makeTempDir({ prefix: "sluice_s3_bench_" }),
  };
  const cleanUp = cleanUpOnce(state);
  const onSignal = () => {
    cleanUp();
    Deno.exit(130);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, onSignal);
  }
  let bench: Bench;
  try {
    bench = await setUp(state);
  } catch (error) {
    cleanUp(); // "unload" is not dispatched when the module fails to load
    throw error;
  }
  globalThis.addEventListener("unload", () => {
    summary(bench, started, loadBefore);
    cleanUp();
  });
  defineBenches(bench);
}

await main();
