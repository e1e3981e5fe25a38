/**
 * The `sluice` command: every module of the toolkit behind one command line.
 *
 * ```sh
 * deno run -A jsr:@sluice/sluice/cli demo          # the whole path, on this machine
 * deno run -A jsr:@sluice/sluice/cli get https://example.com/big.iso
 * deno compile -A -o sluice jsr:@sluice/sluice/cli # a single binary
 * ```
 *
 * Commands: `get`, `queue add|run|ls|cancel|retry`, `seal`, `open`, `serve`,
 * `install`, `spill gc`, `demo`; `sluice <command> --help` tells more.
 * Results go to stdout (one JSON object with `--json`), progress and notes to
 * stderr. Exit codes: 0 done, 1 failed, 2 bad arguments, 3 an integrity check
 * failed, 4 the input was refused (malformed, unsafe, over a limit or
 * unsupported), 130 interrupted.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { RetryError } from "./retry/retry.ts";
import {
  CancelledError,
  FormatError,
  IntegrityError,
  LimitError,
  PartialFailureError,
  UnsafeEntryError,
  UnsupportedError,
} from "./core/errors.ts";
import { parseCommandLine, UsageError } from "./cli/_args.ts";
import { openCommand, sealCommand, serveCommand } from "./cli/_chunks.ts";
import { type Command, COMMON_HELP, Failure } from "./cli/_command.ts";
import { demo } from "./cli/_demo.ts";
import { installCommand, spillGc } from "./cli/_install.ts";
import { jsonReplacer, Output } from "./cli/_output.ts";
import {
  get,
  queueAdd,
  queueCancel,
  queueLs,
  queueRetry,
  queueRun,
} from "./cli/_transfer.ts";

const COMMANDS: readonly Command[] = [
  demo,
  get,
  queueAdd,
  queueRun,
  queueLs,
  queueCancel,
  queueRetry,
  sealCommand,
  openCommand,
  serveCommand,
  installCommand,
  spillGc,
];

const GROUPS = new Set(
  COMMANDS.filter((c) => c.name.includes(" ")).map((c) =>
    c.name.split(" ")[0]!
  ),
);

function overview(group?: string): string {
  const shown = COMMANDS.filter((c) =>
    !group || c.name.startsWith(`${group} `)
  );
  const width = Math.max(...shown.map((c) => c.name.length));
  return [
    group
      ? `Usage: sluice ${group} <command> [options]`
      : `sluice ${denoJson.version}: move bytes reliably\n\nUsage: sluice <command> [options]`,
    "",
    "Commands:",
    ...shown.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    `Run "sluice <command> --help" for a command's options.`,
    "",
    COMMON_HELP,
    "",
    "Exit codes: 0 done, 1 failed, 2 bad arguments, 3 integrity check failed,",
    "4 input refused (malformed, unsafe, over a limit, unsupported), 130 interrupted.",
  ].join("\n");
}

function helpOf(command: Command): string {
  return `${command.help}\n\n${COMMON_HELP}\n`;
}

/** The exit code for an error a command threw. */
function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return 2;
  if (error instanceof Failure) return error.exitCode;
  const cause = error instanceof RetryError && error.reason === "attempts"
    ? error.cause
    : error;
  if (cause instanceof CancelledError) return 130;
  if (cause instanceof IntegrityError) return 3;
  if (
    cause instanceof LimitError || cause instanceof UnsafeEntryError ||
    cause instanceof FormatError || cause instanceof UnsupportedError
  ) {
    return 4;
  }
  if (cause instanceof PartialFailureError && cause.failed.length > 0) {
    return exitCodeOf(cause.failed[0]!.error);
  }
  return 1;
}

/** One line saying what went wrong. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let text = error.message;
  if (error instanceof PartialFailureError && error.failed.length > 0) {
    text += `: ${describe(error.failed[0]!.error)}`;
  } else if (
    !(error instanceof Failure) && error.cause instanceof Error &&
    !text.includes(error.cause.message)
  ) {
    text += ` (${error.cause.message})`;
  }
  return text.replace(/\s*\n\s*/g, " ");
}

function stackOf(error: unknown): string {
  const lines: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 8; depth++) {
    lines.push(
      depth === 0 ? "" : "caused by:",
      e instanceof Error ? e.stack ?? String(e) : String(e),
    );
    e = e instanceof Error ? e.cause : undefined;
  }
  return lines.join("\n").trim();
}

function findCommand(args: readonly string[]): [Command | undefined, number] {
  const two = COMMANDS.find((c) => c.name === `${args[0]} ${args[1]}`);
  if (two) return [two, 2];
  const one = COMMANDS.find((c) => c.name === args[0]);
  return [one, one ? 1 : 0];
}

/** Where {@linkcode main} writes and how it is stopped; for embedding. */
export interface MainOptions {
  /** Aborting it stops the command as Ctrl-C would. Defaults to SIGINT and SIGTERM. */
  signal?: AbortSignal;
}

/**
 * Runs the `sluice` command line with `args` (without the program name) and
 * resolves with the exit code; it never calls `Deno.exit`. Results go to
 * stdout, progress and errors to stderr.
 *
 * @param args The arguments, such as `["get", "https://example.com/f"]`.
 * @param options A signal that stops the command; without one, Ctrl-C and
 * SIGTERM do.
 * @returns 0 done, 1 failed, 2 bad arguments, 3 integrity check failed, 4
 * input refused, 130 interrupted.
 *
 * @example Clean up a spill root, and a bad argument
 * ```ts
 * import { main } from "@sluice/sluice/cli";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/spill_1700000000_0123456789abcdef`); // left by a crash in 2023
 * assert.equal(await main(["spill", "gc", root, "--quiet"]), 0);
 * assert.deepEqual(await Array.fromAsync(Deno.readDir(root)), []);
 * assert.equal(await main(["spill", "gc", root, "--max-age", "soon"]), 2);
 * await Deno.remove(root);
 * ```
 */
export async function main(
  args: readonly string[],
  options: MainOptions = {},
): Promise<number> {
  const wantsJson = args.includes("--json");
  const fallback = new Output({
    json: wantsJson,
    quiet: args.includes("--quiet") || args.includes("-q"),
    debug: args.includes("--debug"),
  });
  const [command, used] = findCommand(args);
  const rest = args.slice(used);
  const name = command?.name ?? "sluice";
  const fail = (output: Output, error: unknown): number => {
    const code = exitCodeOf(error);
    const line = `${name === "sluice" ? "sluice" : `sluice ${name}`}: ${
      describe(error)
    }`;
    if (output.debug && !(error instanceof UsageError)) {
      output.stderr(`${stackOf(error)}\n`);
    }
    const topic = command
      ? `${name} `
      : GROUPS.has(args[0] ?? "")
      ? `${args[0]} `
      : "";
    output.stderr(
      code === 2 ? `${line} (see sluice ${topic}--help)\n` : `${line}\n`,
    );
    if (output.json) {
      const type = error instanceof Error ? error.name : "Error";
      output.stdout(
        `${
          JSON.stringify({
            error: { type, message: describe(error), exitCode: code },
          }, jsonReplacer)
        }\n`,
      );
    }
    return code;
  };

  if (!command) {
    const first = args[0];
    if (first === undefined) {
      return fail(fallback, new UsageError("missing a command"));
    }
    if (first === "--version" || first === "-V") {
      fallback.stdout(`sluice ${denoJson.version}\n`);
      return 0;
    }
    if (first === "--help" || first === "-h" || first === "help") {
      const topic = args.slice(1);
      const [subject] = findCommand(topic);
      if (subject) fallback.stdout(helpOf(subject));
      else if (topic.length === 0) fallback.stdout(`${overview()}\n`);
      else if (topic.length === 1 && GROUPS.has(topic[0]!)) {
        fallback.stdout(`${overview(topic[0])}\n`);
      } else {
        return fail(
          fallback,
          new UsageError(`unknown command "${topic.join(" ")}"`),
        );
      }
      return 0;
    }
    if (GROUPS.has(first)) {
      const sub = args[1];
      if (sub === "--help" || sub === "-h") {
        fallback.stdout(`${overview(first)}\n`);
        return 0;
      }
      return fail(
        fallback,
        new UsageError(
          sub === undefined
            ? `missing a ${first} command`
            : `unknown command "${first} ${sub}"`,
        ),
      );
    }
    return fail(fallback, new UsageError(`unknown command "${first}"`));
  }

  let output = fallback;
  const controller = new AbortController();
  const stop = () => {
    if (controller.signal.aborted) Deno.exit(130); // a second Ctrl-C
    controller.abort(new CancelledError("Cannot continue: interrupted"));
  };
  const signals: Deno.Signal[] = options.signal ? [] : ["SIGINT", "SIGTERM"];
  const listening: Deno.Signal[] = [];
  for (const sig of signals) {
    try {
      Deno.addSignalListener(sig, stop);
      listening.push(sig);
    } catch {
      // not available on this platform (SIGTERM on Windows)
    }
  }
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const parsed = parseCommandLine(rest, command.options);
    output = new Output({
      json: parsed.values.json === true,
      quiet: parsed.values.quiet === true,
      debug: parsed.values.debug === true,
    });
    if (parsed.values.help === true) {
      output.stdout(helpOf(command));
      return 0;
    }
    return (await command.run(parsed, { output, signal: controller.signal })) ??
      0;
  } catch (error) {
    return fail(output, error);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    for (const sig of listening) Deno.removeSignalListener(sig, stop);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
