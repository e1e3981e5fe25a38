// How the CLI talks: results on stdout (one JSON line with --json), progress
// and notes on stderr (a redrawn bar on a terminal, a plain line a second
// otherwise), nothing but errors with --quiet.

const encoder = new TextEncoder();

/** `"1 file"`, `"2 files"`. */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** `1536` → `"1.5 KiB"`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Bytes over milliseconds → `"85.3 MiB/s"`. */
export function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(ms > 0 ? Math.round((bytes * 1000) / ms) : 0)}/s`;
}

/** `65_000` → `"1m05s"`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** Bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Turns values JSON cannot hold (bytes, errors) into ones it can. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return toHex(value);
  if (value instanceof Error) {
    return { type: value.name, message: value.message };
  }
  return value;
}

/** What one progress line or bar shows. */
export interface ProgressState {
  label: string;
  bytes: number;
  total: number | undefined;
  /** Bytes that were already there (a resumed download); not counted in the rate. */
  base: number;
  elapsedMs: number;
  retries: number;
}

/** One progress line: label, bytes, percentage, rate, ETA, retries. */
export function progressLine(state: ProgressState, width?: number): string {
  const { label, bytes, total, base, elapsedMs, retries } = state;
  const moved = Math.max(0, bytes - base);
  const rate = elapsedMs > 0 ? (moved * 1000) / elapsedMs : 0;
  const parts = [
    total === undefined
      ? formatBytes(bytes)
      : `${formatBytes(bytes)} of ${formatBytes(total)}`,
    formatRate(moved, elapsedMs),
  ];
  if (total !== undefined && rate > 0 && bytes < total) {
    parts.push(`ETA ${formatDuration(((total - bytes) / rate) * 1000)}`);
  }
  if (retries > 0) {
    parts.push(`${retries} ${retries === 1 ? "retry" : "retries"}`);
  }
  const text = parts.join("  ");
  if (width === undefined) {
    const percent = total ? ` (${Math.floor((bytes / total) * 100)}%)` : "";
    return `${label}: ${parts[0]}${percent}, ${parts.slice(1).join(", ")}`;
  }
  const percent = total
    ? `${Math.floor((bytes / total) * 100)}%`.padStart(4)
    : "";
  const room = width - Math.max(8, label.length) - text.length -
    percent.length - 6;
  if (total === undefined || room < 10) {
    return `${label} ${percent} ${text}`.slice(0, width - 1);
  }
  const barWidth = Math.min(room, 40);
  const filled = Math.min(barWidth, Math.floor((bytes / total) * barWidth));
  const bar = "#".repeat(filled) + "-".repeat(barWidth - filled);
  return `${label} [${bar}] ${percent}  ${text}`;
}

/** A progress display for one operation; a no-op when quiet or with --json. */
export class Progress {
  readonly #output: Output;
  readonly #state: ProgressState;
  readonly #started = performance.now();
  #lastDraw = 0;
  #drawn = false;

  /** Starts a display for `label`, of `total` bytes when known. */
  constructor(output: Output, label: string, total?: number) {
    this.#output = output;
    this.#state = { label, bytes: 0, total, base: 0, elapsedMs: 0, retries: 0 };
  }

  /** The retries counted so far. */
  get retries(): number {
    return this.#state.retries;
  }

  /** The bytes reported so far. */
  get bytes(): number {
    return this.#state.bytes;
  }

  /** Bytes already present when the work started (excluded from the rate). */
  resumeAt(bytes: number): void {
    this.#state.base = bytes;
    this.#state.bytes = Math.max(this.#state.bytes, bytes);
  }

  /** Reports `bytes` done so far, and the total once known. */
  update(bytes: number, total?: number): void {
    this.#state.bytes = bytes;
    if (total !== undefined) this.#state.total = total;
    this.#draw(false);
  }

  /** Counts a retry. */
  retry(): void {
    this.#state.retries++;
    this.#draw(true);
  }

  /** Erases the bar (on a terminal); the caller prints the result. */
  done(): void {
    if (this.#drawn && this.#output.tty) this.#output.stderr("\r\x1b[2K");
    this.#drawn = false;
  }

  /** Writes a note on its own line, keeping the bar below it. */
  note(text: string): void {
    if (!this.#output.chatty) return;
    if (this.#drawn && this.#output.tty) this.#output.stderr("\r\x1b[2K");
    this.#output.stderr(`${text}\n`);
    if (this.#drawn && this.#output.tty) this.#draw(true);
  }

  #draw(force: boolean): void {
    if (!this.#output.chatty) return;
    const now = performance.now();
    const every = this.#output.tty ? 100 : 1000;
    if (!force && now - this.#lastDraw < every) return;
    if (!this.#drawn && !force && now - this.#started < every) return;
    this.#lastDraw = now;
    this.#state.elapsedMs = now - this.#started;
    if (this.#output.tty) {
      this.#output.stderr(
        `\r\x1b[2K${progressLine(this.#state, this.#output.columns())}`,
      );
    } else {
      this.#output.stderr(`${progressLine(this.#state)}\n`);
    }
    this.#drawn = true;
  }
}

/** How a command reports: the common flags and the two streams. */
export class Output {
  /** `--json`: one JSON object on stdout, no human text. */
  readonly json: boolean;
  /** `--quiet`: no progress, no notes, no human result. */
  readonly quiet: boolean;
  /** `--debug`: errors with their stacks and causes. */
  readonly debug: boolean;
  /** Whether stderr is a terminal (progress as a redrawn bar). */
  readonly tty: boolean;
  /** Results go to stderr, because stdout carries data (`open` without `-o`). */
  stdoutTaken = false;

  /** Reads the common flags. */
  constructor(flags: { json: boolean; quiet: boolean; debug: boolean }) {
    this.json = flags.json;
    this.quiet = flags.quiet;
    this.debug = flags.debug;
    this.tty = Deno.stderr.isTerminal();
  }

  /** Whether progress and notes are shown. */
  get chatty(): boolean {
    return !this.quiet && !this.json;
  }

  /** The terminal's width, or 80. */
  columns(): number {
    try {
      return Deno.consoleSize().columns || 80;
    } catch {
      return 80;
    }
  }

  /** Writes to stderr. */
  stderr(text: string): void {
    writeAll(Deno.stderr, encoder.encode(text));
  }

  /** Writes to stdout. */
  stdout(text: string): void {
    writeAll(Deno.stdout, encoder.encode(text));
  }

  /** A note on stderr (not with --quiet or --json). */
  note(text: string): void {
    if (this.chatty) this.stderr(`${text}\n`);
  }

  /** A progress display. */
  progress(label: string, total?: number): Progress {
    return new Progress(this, label, total);
  }

  /** The result: `data` as one JSON line with --json, else `lines` (not with --quiet). */
  result(data: unknown, lines: () => string[]): void {
    const write = (text: string) =>
      this.stdoutTaken ? this.stderr(text) : this.stdout(text);
    if (this.json) write(`${JSON.stringify(data, jsonReplacer)}\n`);
    else if (!this.quiet) write(lines().map((l) => `${l}\n`).join(""));
  }
}

function writeAll(
  file: { writeSync(p: Uint8Array): number },
  bytes: Uint8Array,
) {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}
