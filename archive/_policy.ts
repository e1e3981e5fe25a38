// The one naming policy install applies to every entry, whatever provider it
// came from: safe relative names, no collisions after Unicode NFC
// normalisation and case folding, nothing beneath a link.

import { LimitError, UnsafeEntryError } from "../core/errors.ts";

/** What a name in the tree is. */
export type Kind = "file" | "directory" | "link";

interface Node {
  kind: Kind;
  /** The spelling that claimed the name first. */
  path: string;
  /** Declared by an entry (not only implied by a deeper path). */
  declared: boolean;
}

// Control characters: C0, DEL and C1.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Splits an archive name into safe segments; `[]` is the archive root.
 * Throws {@linkcode UnsafeEntryError} for absolute names, `..`, backslashes,
 * drive letters, control characters and empty names.
 */
export function segmentsOf(raw: string, what = "name"): string[] {
  const unsafe = (reason: string): never => {
    throw new UnsafeEntryError({ path: raw, reason });
  };
  if (raw === "") unsafe(`empty ${what}`);
  if (CONTROL.test(raw)) unsafe(`control character in the ${what}`);
  if (raw.includes("\\")) unsafe(`backslash in the ${what}`);
  if (/^[A-Za-z]:/.test(raw)) unsafe(`drive letter in the ${what}`);
  if (raw.startsWith("/")) unsafe(`absolute ${what}`);
  const segments = raw.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) unsafe(`".." in the ${what}`);
  return segments;
}

/** The key two names collide on: NFC, then full case folding. */
export function foldKey(path: string): string {
  return path.normalize("NFC").toUpperCase().toLowerCase().normalize("NFC");
}

/** The names admitted so far, and the checks each new one must pass. */
export class NameTable {
  #nodes = new Map<string, Node>();
  #maxDepth: number;

  constructor(maxDepth: number) {
    this.#maxDepth = maxDepth;
  }

  /**
   * Admits an entry's name as `kind`; returns its segments (`[]` for the
   * root directory), or throws for an unsafe or colliding name.
   */
  admit(raw: string, kind: Kind): string[] {
    const segments = segmentsOf(raw);
    if (segments.length === 0) {
      if (kind === "directory") return segments;
      throw new UnsafeEntryError({ path: raw, reason: "empty name" });
    }
    if (segments.length > this.#maxDepth) {
      throw new LimitError({
        what: "path segments",
        limit: this.#maxDepth,
        actual: segments.length,
      });
    }
    for (let i = 1; i < segments.length; i++) {
      const prefix = segments.slice(0, i).join("/");
      const node = this.#nodes.get(foldKey(prefix));
      if (node === undefined) {
        this.#nodes.set(foldKey(prefix), {
          kind: "directory",
          path: prefix,
          declared: false,
        });
      } else if (node.kind !== "directory") {
        throw new UnsafeEntryError({
          path: raw,
          reason: node.kind === "link"
            ? `it lies beneath the link ${JSON.stringify(node.path)}`
            : `its parent ${JSON.stringify(node.path)} is a file`,
        });
      } else if (node.path !== prefix) {
        this.#collision(raw, prefix, node);
      }
    }
    const path = segments.join("/");
    const node = this.#nodes.get(foldKey(path));
    if (node === undefined) {
      this.#nodes.set(foldKey(path), { kind, path, declared: true });
    } else if (
      kind === "directory" && node.kind === "directory" && node.path === path
    ) {
      node.declared = true;
    } else if (node.path === path) {
      throw new UnsafeEntryError({ path: raw, reason: "duplicate name" });
    } else {
      this.#collision(raw, path, node);
    }
    return segments;
  }

  /** What `path` (already split and joined) is, if anything. */
  kindOf(path: string): Kind | undefined {
    const node = this.#nodes.get(foldKey(path));
    return node && node.path === path ? node.kind : undefined;
  }

  /** Marks an admitted file as a link (a zip symlink learnt from the central directory). */
  relabel(path: string, kind: Kind): void {
    const node = this.#nodes.get(foldKey(path));
    if (node) node.kind = kind;
  }

  /** The first proper prefix of `segments` that is a link, if any. */
  linkAbove(segments: string[]): string | undefined {
    for (let i = 1; i < segments.length; i++) {
      const node = this.#nodes.get(foldKey(segments.slice(0, i).join("/")));
      if (node?.kind === "link") return node.path;
    }
    return undefined;
  }

  #collision(raw: string, path: string, node: Node): never {
    throw new UnsafeEntryError({
      path: raw,
      reason: `${JSON.stringify(path)} collides with ${
        JSON.stringify(node.path)
      } after Unicode normalisation and case folding`,
    });
  }
}
