// `sluice install` and `sluice spill gc`: archives into directories, and the
// cleanup of spill stores that crashed processes left behind.

import { install } from "../archive/install.ts";
import { openArchive } from "../archive/open.ts";
import { TargetExistsError } from "../core/errors.ts";
import { rangeStream } from "../core/range.ts";
import { cleanupStale } from "../spill/cleanup.ts";
import {
  expectPositionals,
  flag,
  parseDuration,
  parseSize,
  stringOf,
  UsageError,
} from "./_args.ts";
import { type Command, Failure } from "./_command.ts";
import { formatBytes, plural, type Progress } from "./_output.ts";

function counted(
  source: ReadableStream<Uint8Array>,
  progress: Progress,
): ReadableStream<Uint8Array> {
  let bytes = 0;
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.length;
        progress.update(bytes);
        controller.enqueue(chunk);
      },
    }),
  );
}

/** `sluice install` */
export const installCommand: Command = {
  name: "install",
  summary: "unpack a tar, tar.gz or zip into a directory, all or nothing",
  help:
    `Usage: sluice install <archive|url|-> --into DIR [--replace] [--allow-links] [--max-bytes N]

Reads a tar, tar.gz or zip archive (a file, an http(s) URL whose download
resumes after a cut, or stdin with -) in one pass, and installs it into DIR:
entries are staged beside DIR, checked (no path leaves DIR, no duplicates, no
device files, sizes and CRCs verified), and DIR appears only when the whole
archive is good. On any error nothing is left behind.

Options:
  --into DIR           the directory to create
  --replace            replace DIR if it exists (swapped in at the end)
  --allow-links        create symlinks and hardlinks that stay inside DIR
  --max-bytes N        refuse archives that unpack to more than N bytes`,
  options: {
    into: { type: "string" },
    replace: { type: "boolean" },
    "allow-links": { type: "boolean" },
    "max-bytes": { type: "string" },
  },
  async run(parsed, { output, signal }) {
    const [source] = expectPositionals(parsed, [
      "the archive (a file, a URL or -)",
    ]);
    const into = stringOf(parsed, "into");
    if (!into) throw new UsageError("missing --into DIR");
    const maxText = stringOf(parsed, "max-bytes");
    const maxBytes = maxText ? parseSize(maxText, "--max-bytes") : undefined;
    let stream: ReadableStream<Uint8Array>;
    let total: number | undefined;
    if (source === "-") stream = Deno.stdin.readable;
    else if (/^https?:\/\//i.test(source!)) {
      stream = rangeStream(source!, { signal });
    } else {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(source!);
        const info = await file.stat();
        if (!info.isFile) {
          file.close();
          throw new Error("it is not a file");
        }
        total = info.size;
      } catch (error) {
        throw new Failure(
          `Cannot read the archive ${source}: ${(error as Error).message}`,
          1,
          { cause: error },
        );
      }
      stream = file.readable;
    }
    const progress = output.progress("install", total);
    let result;
    try {
      result = await install(
        openArchive(counted(stream, progress), { signal }),
        into,
        {
          replace: flag(parsed, "replace"),
          allowLinks: flag(parsed, "allow-links"),
          ...(maxBytes !== undefined ? { maxBytes } : {}),
          signal,
        },
      );
    } catch (error) {
      if (error instanceof TargetExistsError) {
        throw new Failure(`${error.message} (--replace replaces it)`, 1, {
          cause: error,
        });
      }
      throw error;
    } finally {
      progress.done();
    }
    output.result({ into, ...result }, () => [
      `installed ${plural(result.files, "file")} in ${
        plural(result.directories, "directory", "directories")
      } ` +
      `(${formatBytes(result.bytes)}) into ${into}`,
    ]);
  },
};

/** `sluice spill gc` */
export const spillGc: Command = {
  name: "spill gc",
  summary: "delete spill stores that dead processes left behind",
  help: `Usage: sluice spill gc <root> [--max-age DURATION]

Deletes the spill_* directories under <root> that are older than the age and
whose lock no live process holds. Nothing else under <root> is touched.

Options:
  --max-age DURATION   how old a store must be to go (default 24h; 90s, 15m, 7d)`,
  options: { "max-age": { type: "string" } },
  async run(parsed, { output }) {
    const [root] = expectPositionals(parsed, ["the spill root"]);
    const ageText = stringOf(parsed, "max-age");
    const maxAgeMs = ageText ? parseDuration(ageText, "--max-age") : undefined;
    let report;
    try {
      report = await cleanupStale(
        root!,
        maxAgeMs !== undefined ? { maxAgeMs } : {},
      );
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Failure(
          `Cannot clean ${root}: there is no such directory`,
          1,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    output.result(report, () => [
      `removed ${plural(report.removed.length, "stale store")}` +
      `, kept ${report.skippedLocked.length} in use and ${report.skippedYoung.length} younger than the age` +
      `, ignored ${
        plural(report.ignored.length, "other entry", "other entries")
      }`,
      ...report.removed.map((name) => `removed ${name}`),
      ...(report.brokenClock
        ? ["the clock reads before 2020, so nothing was removed"]
        : []),
    ]);
  },
};
