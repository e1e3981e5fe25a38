// Runs cli.ts as a subprocess, the way a user runs `deno task sluice …`, with
// the permissions that task grants.

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** What a run of the CLI left. */
export interface CliRun {
  /** The exit code. */
  code: number;
  /** stdout, as text. */
  stdout: string;
  /** stderr, as text. */
  stderr: string;
  /** stdout, as bytes. */
  bytes: Uint8Array;
}

/** Options for {@linkcode sluice}. */
export interface CliOptions {
  /** The working directory. */
  cwd?: string;
  /** Bytes for stdin (default: none, stdin is closed). */
  stdin?: Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** The deno arguments that run the CLI as `deno task sluice` does. */
export function cliCommand(args: readonly string[]): string[] {
  return [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-env=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AWS_REGION,AWS_DEFAULT_REGION,AWS_ENDPOINT_URL,AWS_ENDPOINT_URL_S3",
    CLI,
    ...args,
  ];
}

/** Runs `sluice …args` to the end. */
export async function sluice(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: cliCommand(args),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
    bytes: stdout,
  };
}

/** Starts `sluice …args` and leaves it running (for `serve`), stdout piped. */
export function spawnSluice(
  args: readonly string[],
  options: CliOptions = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: cliCommand(args),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The one JSON object a `--json` run printed on stdout. */
export function jsonOf(run: CliRun): Record<string, unknown> {
  const lines = run.stdout.trim().split("\n");
  if (lines.length !== 1) {
    throw new Error(`expected one JSON line on stdout, got:\n${run.stdout}`);
  }
  return JSON.parse(lines[0]!);
}
