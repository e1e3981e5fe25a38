// Source trees for archive tests, external commands to archive and extract
// them, and a comparison of two extracted trees.

import assert from "node:assert/strict";
import { join } from "node:path";
import { randomBytes, sha256 } from "./_data.ts";

/** A 150-character file name. */
export const LONG_FILE = `${"n".repeat(146)}.txt`;
/** Five 60-character directories: with `pkg/long/` in front, a 313-character directory path. */
export const LONG_DIR = Array(5).fill("d".repeat(60)).join("/");
/** A name outside ASCII. */
export const UNICODE_FILE = "häßlich-ü.txt";

/** What to put in a tree besides plain files and directories. */
export interface TreeOptions {
  /** The 3 MiB random file `big.bin` (default true). */
  big?: boolean;
  /** The 0-byte file `empty.bin` (default true). */
  empty?: boolean;
  /** The 150-character name and the > 255-character directory path under `long/` (default true). */
  long?: boolean;
  /** The symlink `dir/sub/link` -> `../../one.bin` (default true). */
  symlink?: boolean;
  /** `hard.bin`, a hardlink of `b513.bin` (default true). */
  hardlink?: boolean;
}

/**
 * Builds the test tree under `<parent>/<name>` and returns that path.
 *
 * Files: `empty.bin` (0 bytes), `one.bin` (1), `b511.bin`, `b512.bin`,
 * `b513.bin` (random), `big.bin` (3 MiB random), `dir/sub/deeper/file.txt`,
 * `häßlich-ü.txt`, `run.sh` (mode 0755; every other file is 0644),
 * `long/<150 chars>.txt`, `long/<LONG_DIR>/end.txt`, the symlink
 * `dir/sub/link` and the hardlink `hard.bin`.
 */
export async function buildTree(
  parent: string,
  name = "pkg",
  options: TreeOptions = {},
): Promise<string> {
  const root = join(parent, name);
  const file = async (path: string, bytes: Uint8Array, mode = 0o644) => {
    await Deno.writeFile(join(root, path), bytes);
    await Deno.chmod(join(root, path), mode);
  };
  await Deno.mkdir(join(root, "dir/sub/deeper"), { recursive: true });
  if (options.empty ?? true) await file("empty.bin", new Uint8Array(0));
  await file("one.bin", new TextEncoder().encode("x"));
  await file("b511.bin", randomBytes(511));
  await file("b512.bin", randomBytes(512));
  await file("b513.bin", randomBytes(513));
  if (options.big ?? true) await file("big.bin", randomBytes(3 * 1024 * 1024));
  await file("dir/sub/deeper/file.txt", new TextEncoder().encode("deep\n"));
  await file(UNICODE_FILE, new TextEncoder().encode("ü\n"));
  await file("run.sh", new TextEncoder().encode("#!/bin/sh\necho hi\n"), 0o755);
  if (options.long ?? true) {
    await Deno.mkdir(join(root, "long", LONG_DIR), { recursive: true });
    await file(`long/${LONG_FILE}`, new TextEncoder().encode("long name\n"));
    await file(`long/${LONG_DIR}/end.txt`, new TextEncoder().encode("end\n"));
  }
  if (options.symlink ?? true) {
    await Deno.symlink("../../one.bin", join(root, "dir/sub/link"));
  }
  if (options.hardlink ?? true) {
    await Deno.link(join(root, "b513.bin"), join(root, "hard.bin"));
  }
  return root;
}

/** One node of a tree, as {@linkcode snapshot} sees it. */
export type Node =
  | { type: "file"; size: number; sha256: string; mode: number }
  | { type: "directory" }
  | { type: "symlink"; target: string }
  | { type: "other" };

/** Every path under `dir` (relative, `/`-separated, sorted) with what it is. */
export async function snapshot(dir: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(rel ? join(dir, rel) : dir)) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const full = join(dir, path);
      const info = await Deno.lstat(full);
      if (info.isSymlink) {
        out.set(path, { type: "symlink", target: await Deno.readLink(full) });
      } else if (info.isDirectory) {
        out.set(path, { type: "directory" });
        await walk(path);
      } else if (info.isFile) {
        const bytes = await Deno.readFile(full);
        out.set(path, {
          type: "file",
          size: bytes.length,
          sha256: sha256(bytes),
          mode: (info.mode ?? 0) & 0o777,
        });
      } else {
        out.set(path, { type: "other" });
      }
    }
  };
  await walk("");
  return new Map([...out].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Asserts that `actual` holds the same paths as `expected`, of the same
 * types, with the same file bytes and permission bits and the same symlink
 * targets. Returns the snapshot of `actual`.
 */
export async function assertSameTree(
  actual: string,
  expected: string,
): Promise<Map<string, Node>> {
  const ours = await snapshot(actual);
  const theirs = await snapshot(expected);
  assert.deepEqual([...ours.keys()], [...theirs.keys()], "the same paths");
  for (const [path, node] of theirs) {
    assert.deepEqual(ours.get(path), node, `the same ${path}`);
  }
  return ours;
}

/** Runs a command; its stdout, or an error with its stderr. */
export async function run(
  command: string,
  args: string[],
  cwd?: string,
): Promise<Uint8Array> {
  const output = await new Deno.Command(command, {
    args,
    ...(cwd === undefined ? {} : { cwd }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C.UTF-8" },
  }).output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} exited with ${output.code}: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  return output.stdout;
}

/** Runs a `bash -c` pipeline in `cwd`; its stdout. */
export function sh(script: string, cwd?: string): Promise<Uint8Array> {
  return run("bash", ["-o", "pipefail", "-c", script], cwd);
}
