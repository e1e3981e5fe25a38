// The files download() keeps beside a destination while it is incomplete,
// and how to throw them away without taking them from a download in flight.

/** The `.part` that collects the bytes, and the manifest saying how many are durable. */
export function partPaths(path: string): { part: string; manifest: string } {
  return { part: `${path}.part`, manifest: `${path}.part.json` };
}

/**
 * Removes the `.part` and manifest of `path`, unless a download holds the
 * `.part`'s lock (it is someone's transfer again). Missing files are fine.
 */
export async function discardPart(path: string): Promise<void> {
  const { part, manifest } = partPaths(path);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(part, { write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  try {
    if (!await file.tryLock(true)) return;
    await Deno.remove(part);
    await Deno.remove(manifest).catch(() => {});
  } finally {
    file.close();
  }
}
