// Command-line parsing for cli.ts: options, sizes, durations and ranges.
// Every problem is a UsageError, which the CLI prints as one line and exits
// with code 2.

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  /** Makes the error; `message` says what is wrong, without "Cannot". */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option a command accepts. */
export interface OptionSpec {
  /** `string` takes a value; `boolean` does not. */
  type: "string" | "boolean";
  /** A one-letter alias, used as `-x`. */
  short?: string;
  /** The option may be given more than once; its values are kept in order. */
  multiple?: boolean;
}

/** What {@linkcode parseCommandLine} found. */
export interface Parsed {
  /** Option values by name: `string`, `string[]` (multiple) or `true`. */
  values: Record<string, string | string[] | boolean | undefined>;
  /** The arguments that are not options, in order. */
  positionals: string[];
}

/** The options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  debug: { type: "boolean" },
};

/**
 * Parses `args` against `spec`: `--name value`, `--name=value`, `-x value`,
 * boolean flags, `--` ending the options, and `-` as a positional (stdin).
 */
export function parseCommandLine(
  args: readonly string[],
  spec: Record<string, OptionSpec>,
): Parsed {
  const all = { ...COMMON_OPTIONS, ...spec };
  const shorts = new Map(
    Object.entries(all).flatMap(([name, o]) =>
      o.short ? [[o.short, name] as const] : []
    ),
  );
  const values: Parsed["values"] = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = arg.slice(2, eq < 0 ? undefined : eq);
      if (eq >= 0) inline = arg.slice(eq + 1);
      if (!(name in all)) throw new UsageError(`unknown option --${name}`);
    } else {
      name = shorts.get(arg.slice(1, 2));
      if (name === undefined || arg.length > 2) {
        throw new UsageError(`unknown option ${arg}`);
      }
    }
    const option = all[name]!;
    const shown = arg.startsWith("--") ? `--${name}` : arg;
    if (option.type === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(`option ${shown} takes no value`);
      }
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("-") && next !== "-")) {
        throw new UsageError(`option ${shown} needs a value`);
      }
      value = next;
      i++;
    }
    const previous = values[name];
    if (option.multiple) {
      values[name] = [...(previous as string[] | undefined ?? []), value];
    } else if (previous !== undefined) {
      throw new UsageError(`option ${shown} is given more than once`);
    } else {
      values[name] = value;
    }
  }
  return { values, positionals };
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/** `"8MiB"`, `"1.5GiB"`, `"64k"`, `"1000"` → bytes; KB/MB/GB are decimal, the rest binary. */
export function parseSize(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = SIZE_UNITS[match?.[2]?.toLowerCase() ?? "?"];
  const bytes = match && unit !== undefined
    ? Math.round(Number(match[1]) * unit)
    : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(
      `${option} must be a size such as 1024, 64KiB, 8MiB or 1GiB, got "${text}"`,
    );
  }
  return bytes;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `"500ms"`, `"90s"`, `"15m"`, `"24h"`, `"7d"` → milliseconds. */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `${option} must be a duration such as 90s, 15m, 24h or 7d, got "${text}"`,
    );
  }
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!);
}

/** A whole number from `min` up. */
export function parseInteger(text: string, option: string, min = 0): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UsageError(
      `${option} must be a whole number of at least ${min}, got "${text}"`,
    );
  }
  return value;
}

/**
 * `"a-b"` (both included, as in an HTTP Range header) or `"a-"` (to the end)
 * → `{ start, end }` with `end` one past the last byte, or undefined.
 */
export function parseRange(
  text: string,
  option: string,
): { start: number; end?: number } {
  const match = /^(\d+)-(\d*)$/.exec(text.trim());
  const start = Number(match?.[1]);
  const last = match?.[2] ? Number(match[2]) : undefined;
  if (
    !match || !Number.isSafeInteger(start) ||
    (last !== undefined && (!Number.isSafeInteger(last) || last < start))
  ) {
    throw new UsageError(
      `${option} must be FIRST-LAST (both included) or FIRST-, such as 0-1023, got "${text}"`,
    );
  }
  return last === undefined ? { start } : { start, end: last + 1 };
}

/** A lowercase 64-digit hex SHA-256 or key. */
export function parseHex32(text: string, option: string): string {
  const hex = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new UsageError(`${option} must be 64 hex digits`);
  }
  return hex;
}

/** An http(s) URL. */
export function parseHttpUrl(text: string, what: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new UsageError(
      `${what} must be an http:// or https:// URL, got "${text}"`,
    );
  }
  return url;
}

/** The value of a string option, or undefined. */
export function stringOf(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === "string" ? value : undefined;
}

/** The values of a multiple string option. */
export function stringsOf(parsed: Parsed, name: string): string[] {
  const value = parsed.values[name];
  return Array.isArray(value)
    ? value
    : typeof value === "string"
    ? [value]
    : [];
}

/** Whether a boolean flag was given. */
export function flag(parsed: Parsed, name: string): boolean {
  return parsed.values[name] === true;
}

/** Exactly `count` positionals, named in the error by `names`. */
export function expectPositionals(
  parsed: Parsed,
  names: readonly string[],
  rest = false,
): string[] {
  const got = parsed.positionals;
  if (got.length < names.length) {
    throw new UsageError(`missing ${names[got.length]}`);
  }
  if (!rest && got.length > names.length) {
    throw new UsageError(`unexpected argument "${got[names.length]}"`);
  }
  return got;
}
