// The reading contract every provider shares: aborts reach a stalled source,
// and a body left behind by the iterator cannot be read as if it were empty.

import assert from "node:assert/strict";
import { untar, unzip } from "../archive/mod.ts";
import { CancelledError } from "../core/errors.ts";

Deno.test("an abort stops a provider waiting on a stalled source and cancels it", async () => {
  for (const read of [untar, unzip]) {
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({
      pull: () => new Promise(() => {}),
      cancel: () => {
        cancelled = true;
      },
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(async () => {
      for await (const _ of read(stalled, { signal: controller.signal })) {
        assert.fail("no entry can arrive");
      }
    }, CancelledError);
    assert.ok(cancelled, `${read.name} cancelled its source`);
  }
});

Deno.test("a body the iterator has moved past errors instead of reading as empty", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "alpha");
    await Deno.writeTextFile(`${dir}/b.txt`, "bravo");
    const { stdout } = await new Deno.Command("tar", {
      args: ["-cf", "-", "-C", dir, "a.txt", "b.txt"],
      stdout: "piped",
    }).output();
    const bodies: ReadableStream<Uint8Array>[] = [];
    const paths: string[] = [];
    for await (const entry of untar(ReadableStream.from([stdout]))) {
      paths.push(entry.path);
      bodies.push(entry.body);
    }
    assert.deepEqual(paths, ["a.txt", "b.txt"]);
    await assert.rejects(new Response(bodies[0]).bytes(), TypeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
