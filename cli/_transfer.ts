// `sluice get` and `sluice queue …`: downloads, alone or from the durable queue.

import { basename } from "node:path";
import { CancelledError } from "../core/errors.ts";
import {
  type RunReport,
  type Transfer,
  TRANSFER_STATES,
  TransferQueue,
  type TransferQueueOptions,
  type TransferState,
} from "../core/queue.ts";
import { download } from "../core/range.ts";
import {
  expectPositionals,
  flag,
  parseHex32,
  parseHttpUrl,
  parseInteger,
  parseSize,
  stringOf,
  UsageError,
} from "./_args.ts";
import { type Command, exists, Failure } from "./_command.ts";
import { formatBytes } from "./_output.ts";

function nameFromUrl(url: URL): string {
  let name = "";
  try {
    name = decodeURIComponent(url.pathname.split("/").at(-1) ?? "");
  } catch {
    // a malformed escape: no usable name
  }
  if (!name || name === "." || name === ".." || /[/\\\0]/.test(name)) {
    throw new UsageError(
      `cannot name the file after ${url.href}; give one with -o FILE`,
    );
  }
  return name;
}

/** `sluice get` */
export const get: Command = {
  name: "get",
  summary:
    "download a URL (several URLs are mirrors), resuming where it left off",
  help:
    `Usage: sluice get <url>... [-o FILE] [--sha256 HEX] [--size N] [--max-bytes N] [--force]

Downloads the file to FILE (by default the last segment of the first URL's
path) through FILE.part. An interrupted download, even of a killed process,
resumes from the .part when the same command runs again. Several URLs are
mirrors of one file, tried in order. The file is checked against --sha256 and
--size before it is renamed into place; a mismatch removes the .part.

Options:
  -o, --output FILE    where to save the file
  --sha256 HEX         the expected SHA-256
  --size N             the expected size in bytes (suffixes: KiB, MiB, GiB)
  --max-bytes N        refuse a larger file (default 100GiB)
  --force              replace FILE if it exists`,
  options: {
    output: { type: "string", short: "o" },
    sha256: { type: "string" },
    size: { type: "string" },
    "max-bytes": { type: "string" },
    force: { type: "boolean" },
  },
  async run(parsed, { output, signal }) {
    const urls = expectPositionals(parsed, ["a URL"], true).map((u) =>
      parseHttpUrl(u, "a URL")
    );
    const path = stringOf(parsed, "output") ?? nameFromUrl(urls[0]!);
    if ((await Deno.stat(path).catch(() => undefined))?.isDirectory) {
      throw new UsageError(`-o ${path} is a directory; give the file's path`);
    }
    const sha = stringOf(parsed, "sha256");
    const size = stringOf(parsed, "size");
    const maxBytes = stringOf(parsed, "max-bytes");
    const options = {
      ...(sha ? { sha256: parseHex32(sha, "--sha256") } : {}),
      ...(size ? { size: parseSize(size, "--size") } : {}),
      ...(maxBytes ? { maxBytes: parseSize(maxBytes, "--max-bytes") } : {}),
    };
    if (!flag(parsed, "force") && await exists(path)) {
      throw new Failure(
        `Cannot write ${path}: it already exists (--force replaces it)`,
      );
    }
    const progress = output.progress(`get ${basename(path)}`);
    let receipt;
    try {
      receipt = await download(urls, path, {
        ...options,
        signal,
        retry: { onRetry: () => progress.retry() },
        onProgress(event) {
          if (event.type === "start") progress.resumeAt(event.offset);
          else if (event.type === "progress") {
            progress.update(event.bytes, event.total);
          } else if (event.type === "failover") {
            progress.note(`trying the next mirror, ${event.url}`);
          } else if (event.type === "restart") {
            progress.note(`the file changed on the server; starting again`);
          }
        },
      });
    } catch (error) {
      if (error instanceof CancelledError && signal.aborted) {
        throw new Failure(
          `stopped; ${path}.part is kept and the same command resumes it`,
          130,
          { cause: error },
        );
      }
      throw error;
    } finally {
      progress.done();
    }
    output.result(receipt, () => [
      `saved ${receipt.path} (${
        formatBytes(receipt.bytes)
      }) from ${receipt.url}`,
      `sha256 ${receipt.sha256}`,
      ...(receipt.resumedFrom > 0
        ? [`resumed at byte ${receipt.resumedFrom}`]
        : []),
    ]);
  },
};

const DB_OPTION = { db: { type: "string" } } as const;
const DB_HELP =
  `  --db FILE            the queue's SQLite database (default sluice.db)`;

async function openQueue(
  parsed: Parameters<Command["run"]>[0],
  mustExist: boolean,
  extra: Pick<TransferQueueOptions, "maxConcurrent" | "onEvent"> = {},
): Promise<TransferQueue> {
  const db = stringOf(parsed, "db") ?? "sluice.db";
  if (mustExist && !await exists(db)) {
    throw new Failure(
      `Cannot open the queue ${db}: there is no such file (sluice queue add creates it)`,
    );
  }
  return await TransferQueue.open({ db, ...extra });
}

function transferLine(t: Transfer): string {
  const size = t.total ?? t.size;
  const done = size !== undefined
    ? `${formatBytes(t.bytesDone)} of ${formatBytes(size)}`
    : formatBytes(t.bytesDone);
  const error = t.error ? `  ${t.error.type}: ${t.error.message}` : "";
  return `#${t.id}  ${t.state.padEnd(9)}  ${
    done.padEnd(22)
  }  ${t.dest}${error}`;
}

/** `sluice queue add` */
export const queueAdd: Command = {
  name: "queue add",
  summary: "record a download in the queue",
  help:
    `Usage: sluice queue add <url>... -o FILE [--sha256 HEX] [--size N] [--replace] [--db FILE]

Records a download of FILE from the URLs (mirrors, in order) in the queue's
database and prints its id; "sluice queue run" downloads it. A destination has
one transfer: adding it again prints the existing id, unless it has finished
and --replace is given. A file already at FILE is replaced when the download
completes.

Options:
  -o, --output FILE    where to save the file (required)
  --sha256 HEX         the expected SHA-256
  --size N             the expected size in bytes
  --replace            replace a finished transfer of the same FILE
${DB_HELP}`,
  options: {
    ...DB_OPTION,
    output: { type: "string", short: "o" },
    sha256: { type: "string" },
    size: { type: "string" },
    replace: { type: "boolean" },
  },
  async run(parsed, { output }) {
    const urls = expectPositionals(parsed, ["a URL"], true).map((u) =>
      parseHttpUrl(u, "a URL").href
    );
    const dest = stringOf(parsed, "output");
    if (!dest) throw new UsageError("missing -o FILE, the destination");
    const sha = stringOf(parsed, "sha256");
    const size = stringOf(parsed, "size");
    const expected = {
      ...(sha ? { sha256: parseHex32(sha, "--sha256") } : {}),
      ...(size ? { size: parseSize(size, "--size") } : {}),
    };
    if ((await Deno.stat(dest).catch(() => undefined))?.isDirectory) {
      throw new UsageError(`-o ${dest} is a directory; give the file's path`);
    }
    await using queue = await openQueue(parsed, false);
    const id = await queue.add({ urls, dest, ...expected }, {
      replace: flag(parsed, "replace"),
    });
    const transfer = queue.get(id)!;
    output.result(
      { id, dest: transfer.dest, state: transfer.state },
      () => [`#${id} ${transfer.state}: ${transfer.dest}`],
    );
  },
};

/** `sluice queue run` */
export const queueRun: Command = {
  name: "queue run",
  summary: "download everything queued, resuming after crashes",
  help: `Usage: sluice queue run [--concurrency N] [--db FILE]

Downloads the queued transfers, at most N at once, retrying transient
failures, and returns when none is left. Transfers left running by a process
that died are queued again and resume from their .part. Ctrl-C stops the run;
the next run resumes. Exits 1 when a transfer failed.

Options:
  --concurrency N      transfers at once (default 3)
${DB_HELP}`,
  options: { ...DB_OPTION, concurrency: { type: "string" } },
  async run(parsed, { output, signal }) {
    expectPositionals(parsed, []);
    const concurrency = stringOf(parsed, "concurrency");
    const maxConcurrent = concurrency
      ? parseInteger(concurrency, "--concurrency", 1)
      : 3;
    const bytes = new Map<number, number>();
    const progress = output.progress("queue");
    const sum = () => [...bytes.values()].reduce((a, b) => a + b, 0);
    const dests = new Map<number, string>();
    await using queue = await openQueue(parsed, true, {
      maxConcurrent,
      onEvent(event) {
        const dest = () =>
          dests.get(event.id) ??
            dests.set(event.id, queue.get(event.id)?.dest ?? "?").get(event.id);
        switch (event.type) {
          case "progress":
            bytes.set(event.id, event.bytes);
            progress.update(sum());
            break;
          case "retry":
            progress.retry();
            break;
          case "done":
            progress.note(
              `done #${event.id} ${dest()} (${
                formatBytes(event.receipt.bytes)
              })`,
            );
            break;
          case "failed":
            progress.note(
              `failed #${event.id} ${dest()}: ${event.error.message}`,
            );
            break;
          case "cancelled":
            progress.note(`cancelled #${event.id} ${dest()}`);
            break;
          case "redrive":
            progress.note(
              `#${event.id} was left running by a process that died: ${event.state}`,
            );
            break;
        }
      },
    });
    let report: RunReport;
    try {
      report = await queue.run({ signal });
    } finally {
      progress.done();
    }
    output.result(report, () => [
      `${report.done} done, ${report.failed} failed, ${report.cancelled} cancelled` +
      (report.aborted
        ? `, ${report.stopped} stopped (run again to resume)`
        : ""),
    ]);
    if (report.aborted) return 130;
    return report.failed > 0 ? 1 : 0;
  },
};

/** `sluice queue ls` */
export const queueLs: Command = {
  name: "queue ls",
  summary: "list the queue's transfers",
  help: `Usage: sluice queue ls [--state STATE] [--db FILE]

Lists the transfers with their state, bytes and last error.

Options:
  --state STATE        only queued, running, done, failed or cancelled ones
${DB_HELP}`,
  options: { ...DB_OPTION, state: { type: "string" } },
  async run(parsed, { output }) {
    expectPositionals(parsed, []);
    const state = stringOf(parsed, "state");
    if (
      state !== undefined && !TRANSFER_STATES.includes(state as TransferState)
    ) {
      throw new UsageError(
        `--state must be one of ${TRANSFER_STATES.join(", ")}, got "${state}"`,
      );
    }
    await using queue = await openQueue(parsed, true);
    const transfers = queue.list(
      state ? { state: state as TransferState } : {},
    );
    output.result(
      transfers,
      () =>
        transfers.length === 0 ? ["no transfers"] : transfers.map(transferLine),
    );
  },
};

function idOf(parsed: Parameters<Command["run"]>[0]): number {
  const [text] = expectPositionals(parsed, ["the transfer's id"]);
  return parseInteger(text!.replace(/^#/, ""), "the id", 1);
}

function notApplicable(queue: TransferQueue, id: number, verb: string): never {
  const transfer = queue.get(id);
  throw new Failure(
    transfer
      ? `Cannot ${verb} #${id}: it is ${transfer.state}`
      : `Cannot ${verb} #${id}: there is no such transfer`,
  );
}

/** `sluice queue cancel` */
export const queueCancel: Command = {
  name: "queue cancel",
  summary: "cancel a queued or running transfer",
  help: `Usage: sluice queue cancel <id> [--db FILE]

Cancels a queued or running transfer and removes its .part. A run in another
process stops it at its next progress record. Exits 1 when the transfer does
not exist or has already finished.

Options:
${DB_HELP}`,
  options: { ...DB_OPTION },
  async run(parsed, { output }) {
    const id = idOf(parsed);
    await using queue = await openQueue(parsed, true);
    if (!await queue.cancel(id)) notApplicable(queue, id, "cancel");
    output.result({ id, state: "cancelled" }, () => [`#${id} cancelled`]);
  },
};

/** `sluice queue retry` */
export const queueRetry: Command = {
  name: "queue retry",
  summary: "queue a failed or cancelled transfer again",
  help: `Usage: sluice queue retry <id> [--db FILE]

Queues a failed or cancelled transfer again, with fresh attempts; the next
"sluice queue run" resumes it from its .part when one is left.

Options:
${DB_HELP}`,
  options: { ...DB_OPTION },
  async run(parsed, { output }) {
    const id = idOf(parsed);
    await using queue = await openQueue(parsed, true);
    if (!queue.retry(id)) notApplicable(queue, id, "retry");
    output.result({ id, state: "queued" }, () => [`#${id} queued`]);
  },
};
