// Kill -9 in the middle of a download, several times: every rerun must pick
// up from the last durable checkpoint, and the file that finally lands must
// be exact, with no .part or manifest left behind.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { serveFaults } from "./_fault_server.ts";
import { MiB, randomBytes } from "./_data.ts";

const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;
const SIZE = 24 * MiB;
const CHECKPOINT = MiB;
const KILLS = 4;

interface Run {
  /** The checkpoints the child reported, in order. */
  checkpoints: number[];
  /** The receipt, when the child finished. */
  receipt?: { resumedFrom: number; sha256: string; bytes: number };
  killed: boolean;
}

/** Runs the child; with `killAt`, SIGKILLs it once a checkpoint reaches that offset. */
async function runChild(
  args: string[],
  killAt?: number,
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const run: Run = { checkpoints: [], killed: false };
  const lines = child.stdout.pipeThrough(new TextDecoderStream());
  let buffered = "";
  for await (const text of lines) {
    buffered += text;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    for (const line of parts) {
      const checkpoint = /^checkpoint (\d+)$/.exec(line);
      if (checkpoint === null) {
        run.receipt = JSON.parse(line);
        continue;
      }
      run.checkpoints.push(Number(checkpoint[1]));
      if (
        !run.killed && killAt !== undefined && Number(checkpoint[1]) >= killAt
      ) {
        run.killed = true;
        // Up to 10 ms later: mid-write, mid-fsync or mid-manifest-rename.
        setTimeout(() => child.kill("SIGKILL"), Math.random() * 10);
      }
    }
  }
  const status = await child.status;
  const log = await stderr;
  assert.equal(status.signal, run.killed ? "SIGKILL" : null, log);
  if (!run.killed) assert.equal(status.code, 0, log);
  return run;
}

Deno.test("download() killed with SIGKILL at random points resumes each time and lands the exact file", async () => {
  const content = randomBytes(SIZE);
  const digest = createHash("sha256").update(content).digest("hex");
  // Paced so that a kill lands mid-transfer rather than after it.
  await using server = await serveFaults(content, [], {}, {
    bytesPerSecond: 48 * MiB,
  });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.bin`;
    const args = [server.url, path, digest, String(CHECKPOINT)];
    let durable = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      // A random checkpoint between this run's start and the end.
      const room = (SIZE - durable) / CHECKPOINT - 3;
      const killAt = durable +
        CHECKPOINT * (1 + Math.floor(Math.random() * room / (KILLS - kill)));
      const before = server.requests.length;
      const run = await runChild(args, killAt);
      assert.ok(run.killed, `run ${kill} was killed`);
      if (kill > 0) {
        // It resumed from the last durable checkpoint with If-Range.
        const first = server.requests[before]!;
        assert.equal(first.range, `bytes=${durable}-`);
        assert.ok(first.ifRange?.startsWith('"'));
      }
      const manifest = JSON.parse(await Deno.readTextFile(`${path}.part.json`));
      assert.ok(manifest.offset >= killAt, `checkpoint ${manifest.offset}`);
      durable = manifest.offset;
      const part = await Deno.readFile(`${path}.part`);
      assert.deepEqual(
        part.subarray(0, durable),
        content.subarray(0, durable),
        "the durable prefix is the file's",
      );
    }
    const last = await runChild(args);
    assert.equal(last.receipt?.resumedFrom, durable);
    assert.ok(last.receipt!.resumedFrom > 0);
    assert.equal(last.receipt?.sha256, digest);
    assert.equal(
      createHash("sha256").update(await Deno.readFile(path)).digest("hex"),
      digest,
    );
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["big.bin"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
