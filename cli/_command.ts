// What every CLI command is made of, and the helpers several commands share.

import type { OptionSpec, Parsed } from "./_args.ts";
import type { Output } from "./_output.ts";

/** What a command runs with. */
export interface Context {
  /** Where results, progress and notes go. */
  output: Output;
  /** Aborts on Ctrl-C (SIGINT) or SIGTERM. */
  signal: AbortSignal;
}

/** One command (or subcommand) of `sluice`. */
export interface Command {
  /** Its words after `sluice`, such as `"get"` or `"queue add"`. */
  name: string;
  /** One line for the overview. */
  summary: string;
  /** The help text: a usage line, then what it does and its options. */
  help: string;
  /** The options it takes besides the common ones. */
  options: Record<string, OptionSpec>;
  /** Runs it; resolves with the exit code (0 when it returns nothing). */
  run(parsed: Parsed, context: Context): Promise<number | void>;
}

/**
 * A failure the command has already put into words, with its exit code:
 * 1 failed, 2 bad arguments, 3 integrity, 4 refused input, 130 interrupted.
 */
export class Failure extends Error {
  /** The process's exit code. */
  readonly exitCode: number;

  /** Makes the failure. */
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "Failure";
    this.exitCode = exitCode;
  }
}

/** Whether something exists at `path` (a dangling symlink counts). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The options the common flags add to every help text. */
export const COMMON_HELP = `Common options:
  --json         print the result as one JSON object on stdout
  -q, --quiet    print nothing but errors
  --debug        print errors with their stack traces
  -h, --help     show this help`;
