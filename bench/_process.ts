// What the comparison scripts (decrypt_vs_age.ts, range_vs_curl.ts) share:
// their arguments, running a command and measuring it under GNU
// `/usr/bin/time -v`, random files and the page cache, and the figures and
// markdown tables they print. Not a benchmark (its name starts with `_`).

import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** Bytes in a mebibyte. */
export const MiB = 1024 * 1024;
/** GNU time, whose `-v` report {@linkcode measure} reads. */
export const TIME = "/usr/bin/time";
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;

/** What `/usr/bin/time -v` reported about one process. */
export interface Measured {
  wallSeconds: number;
  maxRssKiB: number;
  cpuPercent: number;
}

/** One size from `--sizes`: as written, and in bytes. */
export interface Size {
  label: string;
  bytes: number;
}

// ---------------------------------------------------------------------------
// Arguments

/**
 * Reads `--sizes` (default `defaultSizes`), `--runs` (default 3) and `--help`
 * from `Deno.args`; prints the usage of `script` and exits on `--help`.
 */
export function parseBenchArgs(
  script: string,
  defaultSizes: string,
): { sizes: Size[]; runs: number } {
  const args = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: defaultSizes },
      runs: { type: "string", default: "3" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (args.values.help) {
    console.log(
      `usage: deno run -A ${script} [--sizes ${defaultSizes}] [--runs 3]`,
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
  return { sizes, runs };
}

/** `256M`, `1G`, `512K` or plain bytes; suffixes are binary (MiB, GiB). */
export function parseSize(text: string): number {
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

/**
 * Runs a command, returns its stdout, throws with its stderr if it fails.
 * Aborting `signal` kills the command.
 */
export async function run(
  cmd: string,
  cmdArgs: string[],
  signal?: AbortSignal,
): Promise<string> {
  const output = await new Deno.Command(cmd, {
    args: cmdArgs,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(signal === undefined ? {} : { signal }),
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

/**
 * Runs a command under `/usr/bin/time -v -o statsFile` and returns its stdout
 * and figures. Aborting `signal` kills it.
 */
export async function measure(
  statsFile: string,
  cmd: string,
  cmdArgs: string[],
  signal?: AbortSignal,
): Promise<{ stdout: string; measured: Measured }> {
  const stdout = await run(
    TIME,
    ["-v", "-o", statsFile, cmd, ...cmdArgs],
    signal,
  );
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

/**
 * Runs each `[tool, versionArgs]` once; if one cannot be started, says to
 * `apt-get install -y <packages>` and exits with status 1.
 */
export async function requireTools(
  tools: [tool: string, versionArgs: string[]][],
  packages: string,
): Promise<void> {
  for (const [tool, versionArgs] of tools) {
    try {
      await new Deno.Command(tool, {
        args: versionArgs,
        stdout: "null",
        stderr: "null",
      }).output();
    } catch {
      console.error(
        `Cannot run ${tool}: install it first (apt-get install -y ${packages})`,
      );
      Deno.exit(1);
    }
  }
}

// ---------------------------------------------------------------------------
// Files

/**
 * Writes `bytes` pseudo-random bytes to `path`, 1 MiB at a time, and returns
 * their SHA-256 (hex). Checks `signal` before each MiB.
 */
export async function writeRandomFile(
  path: string,
  bytes: number,
  signal?: AbortSignal,
): Promise<string> {
  using file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  const hash = createHash("sha256");
  const buffer = new Uint8Array(MiB);
  for (let left = bytes; left > 0;) {
    signal?.throwIfAborted();
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

/**
 * Reads every file in `paths` once, and every file below those that are
 * directories, so timed runs find them in the page cache.
 */
export async function warmCache(paths: string[]): Promise<void> {
  const buffer = new Uint8Array(MiB);
  for (const path of paths) {
    const info = await Deno.stat(path);
    if (info.isDirectory) {
      const inside: string[] = [];
      for await (const entry of Deno.readDir(path)) {
        inside.push(join(path, entry.name));
      }
      await warmCache(inside);
      continue;
    }
    using file = await Deno.open(path, { read: true });
    while (await file.read(buffer) !== null);
  }
}

// ---------------------------------------------------------------------------
// Figures

/** The median of `pick` over `items`. */
export function median<T>(items: T[], pick: (item: T) => number): number {
  const sorted = items.map(pick).toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `bytes` in `seconds` as MB/s (10^6 bytes per second). */
export function mbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e6;
}

/** KiB (as `/usr/bin/time` counts) in MiB. */
export function mib(kib: number): number {
  return kib / 1024;
}

/** `min–max` of `values`, each rounded to a whole number. */
export function range(values: number[]): string {
  return `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;
}

/**
 * A markdown table: the first column left-aligned, the others right-aligned,
 * every column as wide as its widest cell.
 */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const line = (cells: string[]): string =>
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

/**
 * The smallest and largest of `rows` (by bytes), and the line comparing the
 * sluice peak RSS `rssMiB` of the largest with the smallest: flat means within
 * 10%. Undefined with fewer than two rows.
 */
export function rssFlatness<T extends Size>(
  rows: T[],
  rssMiB: (row: T) => number,
): { small: T; large: T; line: string } | undefined {
  if (rows.length < 2) return undefined;
  const bySize = rows.toSorted((a, b) => a.bytes - b.bytes);
  const small = bySize[0]!;
  const large = bySize.at(-1)!;
  const ratio = rssMiB(large) / rssMiB(small);
  const line = `sluice peak RSS ${large.label} / ${small.label}: ${
    rssMiB(large).toFixed(1)
  } / ${rssMiB(small).toFixed(1)} MiB = ${ratio.toFixed(3)} (${
    Math.abs(ratio - 1) <= 0.1 ? "flat" : "NOT flat"
  }: within 10% is flat)`;
  return { small, large, line };
}

/**
 * `total time … s; load average before …, after … (N CPUs)`, timed from
 * `startedMs` (a `performance.now()`) to now; the loads are `Deno.loadavg()`s.
 */
export function totals(
  startedMs: number,
  loadBefore: number[],
  loadAfter: number[],
): string {
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(" ");
  return `total time ${
    ((performance.now() - startedMs) / 1000).toFixed(0)
  } s; load average before ${load(loadBefore)}, after ${
    load(loadAfter)
  } (${navigator.hardwareConcurrency} CPUs)`;
}

/**
 * Makes a temp directory that is removed when the process unloads and on
 * SIGINT/SIGTERM; call `remove` yourself when the module fails to load, as
 * "unload" is not dispatched then.
 */
export async function benchTempDir(
  prefix: string,
): Promise<{ dir: string; remove: () => void }> {
  const dir = await Deno.makeTempDir({ prefix });
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    Deno.removeSync(dir, { recursive: true });
  };
  globalThis.addEventListener("unload", remove);
  for (
    const signal of Deno.build.os === "windows"
      ? ["SIGINT"] as const
      : ["SIGINT", "SIGTERM"] as const
  ) {
    Deno.addSignalListener(signal, () => {
      remove();
      Deno.exit(130);
    });
  }
  return { dir, remove };
}
