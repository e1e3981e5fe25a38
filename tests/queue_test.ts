// TransferQueue against real SQLite files in temp dirs, the fault server of
// the range tests, a counting loopback server, and a child process that is
// SIGKILLed mid-transfer.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { migrate } from "../core/_queue_schema.ts";
import { UnsupportedError } from "../core/errors.ts";
import {
  type QueueEvent,
  TransferQueue,
  type TransferQueueOptions,
} from "../core/queue.ts";
import { MiB, randomBytes, sha256 } from "./_data.ts";
import { type Fault, serveFaults } from "./_fault_server.ts";
import { names, tempDir } from "./_fs.ts";
import { serveLoopback } from "./_loopback.ts";

const CHILD = new URL("./_queue_child.ts", import.meta.url).pathname;
const FAST = { baseDelayMs: 1, maxDelayMs: 5 };
/** Each queue attempt is one request: download()'s own retries are off. */
const ONE_REQUEST = { retry: { maxAttempts: 1 } };
const DEAD_OWNER = "00000000deadbeef";
const status = (code: number): Fault => ({ kind: "status", status: code });

function open(
  db: string,
  options: Omit<TransferQueueOptions, "db"> = {},
): Promise<TransferQueue> {
  return TransferQueue.open({ db, retry: FAST, ...options });
}

/** Resolves once `check` holds, polling; rejects after `ms`. */
async function waitFor(check: () => Promise<boolean>, ms = 20_000) {
  const until = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > until) throw new Error("Cannot wait any longer");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The durable offset in a .part's manifest, 0 when there is none yet. */
async function durableOffset(dest: string): Promise<number> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dest}.part.json`)).offset;
  } catch {
    return 0;
  }
}

/** A promise that resolves on the first event `match` accepts. */
function firstEvent(match: (event: QueueEvent) => boolean) {
  const { promise, resolve } = Promise.withResolvers<void>();
  return {
    seen: promise,
    onEvent: (event: QueueEvent) => match(event) && resolve(),
  };
}

/** The `N` of the `bytes=N-` range a request asked for (-1: none). */
function rangeStart(range: string | null): number {
  return range === null ? -1 : Number(/^bytes=(\d+)-$/.exec(range)?.[1]);
}

Deno.test("TransferQueue never runs more than maxConcurrent transfers at once, counted by the server", async () => {
  const body = randomBytes(64 * 1024);
  let active = 0;
  let peak = 0;
  await using server = serveLoopback(() => {
    active++;
    peak = Math.max(peak, active);
    let sent = 0;
    let open = true;
    const finish = () => {
      if (open) active--;
      open = false;
    };
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 15));
        controller.enqueue(body.slice(sent, sent + 16 * 1024));
        sent += 16 * 1024;
        // Counted out before the client can see the last byte.
        if (sent >= body.length) {
          finish();
          controller.close();
        }
      },
      cancel: finish,
    }, { highWaterMark: 0 });
    return new Response(stream, {
      headers: { "content-length": String(body.length), etag: '"c1"' },
    });
  });
  for (const maxConcurrent of [3, 1]) {
    await using dir = await tempDir();
    peak = 0;
    const events: QueueEvent[] = [];
    await using queue = await open(`${dir.path}/queue.db`, {
      maxConcurrent,
      onEvent: (e) => events.push(e),
    });
    for (let i = 0; i < 8; i++) {
      await queue.add({ urls: `${server.url}${i}`, dest: `${dir.path}/f${i}` });
    }
    const report = await queue.run();
    assert.deepEqual(report, {
      done: 8,
      failed: 0,
      cancelled: 0,
      stopped: 0,
      aborted: false,
    });
    assert.equal(peak, maxConcurrent);
    for (let i = 0; i < 8; i++) {
      assert.equal(
        sha256(await Deno.readFile(`${dir.path}/f${i}`)),
        sha256(body),
      );
      const mine = events.filter((e) => "id" in e && e.id === i + 1);
      assert.equal(mine[0]?.type, "start");
      assert.equal(mine.at(-1)?.type, "done");
      assert.ok(mine.some((e) => e.type === "progress"));
    }
    assert.ok(
      queue.list().every((t) => t.state === "done" && t.attempts === 1),
    );
  }
});

Deno.test("TransferQueue: a SIGKILLed queue's transfers are re-driven by the next open() and resume from their .part", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  const contents = [0, 1, 2].map(() => randomBytes(3 * MiB));
  const dests = contents.map((_, i) => `${dir.path}/f${i}`);
  await using s0 = await serveFaults(contents[0]!, [], {}, {
    bytesPerSecond: MiB,
  });
  await using s1 = await serveFaults(contents[1]!, [], {}, {
    bytesPerSecond: MiB,
  });
  await using s2 = await serveFaults(contents[2]!, [], {}, {
    bytesPerSecond: MiB,
  });
  const servers = [s0, s1, s2];
  {
    await using queue = await open(db);
    for (const [i, server] of servers.entries()) {
      await queue.add({
        urls: server.url,
        dest: dests[i]!,
        sha256: sha256(contents[i]!),
      });
    }
  }

  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, db],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  // Killed once every transfer has a durable checkpoint past 0.
  await waitFor(async () =>
    (await Promise.all(dests.map(durableOffset))).every((n) => n > 0)
  );
  child.kill("SIGKILL");
  const [stdout, stderr] = await output;
  assert.equal((await child.status).signal, "SIGKILL", stderr);
  assert.equal(stdout.match(/"type":"start"/g)?.length, 3, stdout);
  const seenBefore = servers.map((s) => s.requests.length);

  const events: QueueEvent[] = [];
  const queue = await open(db, { onEvent: (e) => events.push(e) });
  assert.deepEqual(
    events,
    [1, 2, 3].map((id) => ({
      type: "redrive",
      id,
      state: "queued",
    })),
  );
  // The dead child's lock file went with its rows; only ours is left.
  assert.equal((await names(`${db}-owners`)).length, 1);
  const report = await queue.run();
  assert.equal(report.done, 3);
  for (const [i, server] of servers.entries()) {
    const transfer = queue.get(i + 1)!;
    const resumedAt = rangeStart(server.requests[seenBefore[i]!]!.range);
    assert.ok(resumedAt > 0, `transfer ${i + 1} resumed at ${resumedAt}`);
    assert.equal(transfer.resumedFrom, resumedAt);
    assert.equal(transfer.state, "done");
    assert.equal(transfer.attempts, 2);
    assert.equal(transfer.result?.sha256, sha256(contents[i]!));
    assert.deepEqual(
      queue.history(i + 1).map((a) => [a.attempt, a.outcome]),
      [[1, "interrupted"], [2, "done"]],
    );
    assert.equal(sha256(await Deno.readFile(dests[i]!)), sha256(contents[i]!));
  }
  await queue.close();
  assert.deepEqual(await names(`${db}-owners`), []);
  assert.deepEqual(await names(dir.path), [
    "f0",
    "f1",
    "f2",
    "queue.db",
    "queue.db-owners",
  ]);
});

Deno.test("TransferQueue.open() re-drives one of several stale rows for a destination and fails the others", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  const content = randomBytes(100_000);
  await using server = await serveFaults(content);
  const [a, b, c] = ["a", "b", "c"].map((n) => `${dir.path}/${n}`);
  {
    await using queue = await open(db);
    for (const dest of [a!, b!, c!]) {
      await queue.add({ urls: server.url, dest });
    }
  }
  // What a crashed process of a version without the destination check, or
  // another tool, could leave: rows 1 and 2 running, a later duplicate of
  // row 1 (4), and a stale row for c while c's own transfer (3) is queued.
  const raw = new DatabaseSync(db);
  raw.prepare(
    "UPDATE transfers SET state = 'running', owner = ?, updated_at = 1000 WHERE id IN (1, 2)",
  ).run(DEAD_OWNER);
  const insert = raw.prepare(
    `INSERT INTO transfers (dest, urls, state, owner, created_at, updated_at)
     VALUES (?, ?, 'running', ?, 2000, 2000)`,
  );
  insert.run(a!, JSON.stringify([server.url]), DEAD_OWNER);
  insert.run(c!, JSON.stringify([server.url]), DEAD_OWNER);
  raw.close();

  const events: QueueEvent[] = [];
  await using queue = await open(db, { onEvent: (e) => events.push(e) });
  assert.deepEqual(
    events.map((e) => e.type === "redrive" && [e.id, e.state]).sort(),
    [[1, "failed"], [2, "queued"], [4, "queued"], [5, "failed"]],
  );
  assert.equal(queue.get(1)?.error?.type, "DuplicateDestination");
  assert.match(
    queue.get(1)!.error!.message,
    /^Cannot re-drive transfer 1: transfer 4 downloads to the same destination .*\/a, and the two would share one \.part$/,
  );
  assert.match(queue.get(5)!.error!.message, /transfer 3 downloads/);
  const report = await queue.run();
  assert.equal(report.done, 3);
  assert.deepEqual(
    queue.list({ state: "done" }).map((t) => t.id),
    [2, 3, 4],
  );
  assert.equal(server.requests.length, 3);
  for (const dest of [a!, b!, c!]) {
    assert.equal(sha256(await Deno.readFile(dest)), sha256(content));
  }
});

Deno.test("TransferQueue.open() leaves the running rows of a live queue alone", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  const content = randomBytes(100_000);
  await using server = await serveFaults(content, [
    { kind: "stall", afterBytes: 10_000, ms: 60_000 },
  ]);
  const started = firstEvent((e) => e.type === "progress");
  await using first = await open(db, {
    download: { stallTimeoutMs: 60_000 },
    onEvent: started.onEvent,
  });
  const id = await first.add({ urls: server.url, dest: `${dir.path}/f` });
  const stop = new AbortController();
  const running = first.run({ signal: stop.signal });
  await started.seen;

  const events: QueueEvent[] = [];
  await using second = await open(db, { onEvent: (e) => events.push(e) });
  assert.deepEqual(events, []);
  assert.equal(second.get(id)?.state, "running");
  assert.equal((await second.run()).done, 0);
  assert.equal(server.requests.length, 1);

  stop.abort();
  const report = await running;
  assert.deepEqual(report, {
    done: 0,
    failed: 0,
    cancelled: 0,
    stopped: 1,
    aborted: true,
  });
  assert.equal(second.get(id)?.state, "queued");
  assert.equal(
    second.get(id)?.attempts,
    0,
    "a clean stop gives the attempt back",
  );
});

Deno.test("TransferQueue.add() returns the live transfer of a destination however it is spelled, and replace adds a new one", async () => {
  await using dir = await tempDir();
  const content = randomBytes(50_000);
  await using server = await serveFaults(content);
  await Deno.mkdir(`${dir.path}/sub`);
  await Deno.symlink(`${dir.path}/sub`, `${dir.path}/link`);
  await using queue = await open(`${dir.path}/queue.db`);
  const id = await queue.add({ urls: server.url, dest: `${dir.path}/sub/f` });
  for (
    const dest of [
      `${dir.path}/sub/./f`,
      `${dir.path}/link/f`,
      "sub/../x/../sub/f",
    ]
  ) {
    const spelled = dest.startsWith("/") ? dest : `${dir.path}/${dest}`;
    assert.equal(
      await queue.add({ urls: `${server.url}?other`, dest: spelled }),
      id,
    );
  }
  assert.deepEqual(
    await queue.addAll([
      { urls: server.url, dest: `${dir.path}/link/f` },
      { urls: server.url, dest: `${dir.path}/g` },
      { urls: server.url, dest: `${dir.path}/./g` },
    ]),
    [id, id + 1, id + 1],
  );
  assert.equal(await queue.cancel(id + 1), true);
  assert.equal(queue.get(id)?.dest, `${await Deno.realPath(dir.path)}/sub/f`);
  assert.deepEqual(queue.get(id)?.urls, [server.url]);
  assert.equal((await queue.run()).done, 1);

  // Finished: adding again returns it, and nothing is downloaded again.
  assert.equal(
    await queue.add({ urls: server.url, dest: `${dir.path}/sub/f` }),
    id,
  );
  assert.equal((await queue.run()).done, 0);
  assert.equal(server.requests.length, 1);

  const again = await queue.add(
    { urls: server.url, dest: `${dir.path}/sub/f` },
    { replace: true },
  );
  assert.equal(again, id + 2);
  assert.equal(
    await queue.add({ urls: server.url, dest: `${dir.path}/sub/f` }, {
      replace: true,
    }),
    again,
    "replace never replaces a live transfer",
  );
  assert.equal((await queue.run()).done, 1);
  assert.equal(server.requests.length, 2);
  assert.deepEqual(queue.list({ state: "done" }).map((t) => t.id), [
    id,
    again,
  ]);
});

Deno.test("TransferQueue.cancel() stops a running transfer and removes its .part, and retry() runs it again", async () => {
  await using dir = await tempDir();
  const content = randomBytes(2 * MiB);
  await using server = await serveFaults(content, [], {}, {
    bytesPerSecond: MiB,
  });
  const dest = `${dir.path}/f`;
  const moving = firstEvent((e) =>
    e.type === "progress" && e.bytes > 256 * 1024
  );
  const events: QueueEvent[] = [];
  await using queue = await open(`${dir.path}/queue.db`, {
    download: { checkpointBytes: 64 * 1024 },
    onEvent(event) {
      events.push(event);
      moving.onEvent(event);
    },
  });
  const id = await queue.add({
    urls: server.url,
    dest,
    sha256: sha256(content),
  });
  const running = queue.run();
  await moving.seen;
  assert.equal(await queue.cancel(id), true);
  const report = await running;
  assert.equal(report.cancelled, 1);
  assert.equal(report.done, 0);
  assert.equal(queue.get(id)?.state, "cancelled");
  assert.ok(events.some((e) => e.type === "cancelled" && e.id === id));
  assert.deepEqual(queue.history(id).map((a) => a.outcome), ["cancelled"]);
  assert.deepEqual(await names(dir.path), [
    "queue.db",
    "queue.db-owners",
    "queue.db-shm",
    "queue.db-wal",
  ]);

  // A queued transfer is cancelled without a request.
  const other = await queue.add({ urls: server.url, dest: `${dir.path}/g` });
  assert.equal(await queue.cancel(other), true);
  assert.equal(await queue.cancel(other), false);
  assert.equal(await queue.cancel(999), false);
  assert.equal(queue.retry(999), false);
  const requests = server.requests.length;
  assert.equal((await queue.run()).done, 0);
  assert.equal(server.requests.length, requests);

  assert.equal(queue.retry(id), true);
  assert.equal(queue.retry(id), false, "it is queued now");
  assert.equal(queue.get(id)?.attempts, 0);
  assert.equal((await queue.run()).done, 1);
  assert.equal(
    server.requests.at(-1)?.range,
    null,
    "the .part was gone: from 0",
  );
  assert.equal(sha256(await Deno.readFile(dest)), sha256(content));
  assert.deepEqual(queue.history(id).map((a) => [a.attempt, a.outcome]), [
    [1, "cancelled"],
    [1, "done"],
  ]);
  assert.equal(queue.retry(id), false, "done transfers are not retried");
});

Deno.test("TransferQueue.run() stopped by its signal queues the transfer again and the next run resumes it", async () => {
  await using dir = await tempDir();
  const content = randomBytes(2 * MiB);
  await using server = await serveFaults(content, [], {}, {
    bytesPerSecond: 2 * MiB,
  });
  const dest = `${dir.path}/f`;
  const stop = new AbortController();
  await using queue = await open(`${dir.path}/queue.db`, {
    download: { checkpointBytes: 64 * 1024 },
    onEvent: (e) =>
      e.type === "progress" && e.bytes > 512 * 1024 && stop.abort(),
  });
  const id = await queue.add({
    urls: server.url,
    dest,
    sha256: sha256(content),
  });
  const report = await queue.run({ signal: stop.signal });
  assert.equal(report.stopped, 1);
  assert.equal(report.aborted, true);
  const stopped = queue.get(id)!;
  assert.equal(stopped.state, "queued");
  assert.equal(stopped.attempts, 0);
  assert.ok(stopped.bytesDone > 512 * 1024);
  assert.ok(await durableOffset(dest) > 0);

  assert.equal((await queue.run()).done, 1);
  const resumedAt = rangeStart(server.requests.at(-1)!.range);
  assert.ok(resumedAt > 0);
  assert.equal(queue.get(id)?.resumedFrom, resumedAt);
  assert.equal(queue.get(id)?.attempts, 1);
  assert.deepEqual(queue.history(id).map((a) => [a.attempt, a.outcome]), [
    [1, "stopped"],
    [1, "done"],
  ]);
  assert.equal(sha256(await Deno.readFile(dest)), sha256(content));
});

Deno.test("TransferQueue fails 404, integrity and limit errors at once and removes their .part", async () => {
  await using dir = await tempDir();
  const content = randomBytes(64 * 1024);
  await using missing = await serveFaults(content, [status(404)]);
  await using tampered = await serveFaults(content);
  await using large = await serveFaults(randomBytes(2 * MiB));
  await using queue = await open(`${dir.path}/queue.db`, {
    download: { maxBytes: MiB },
  });
  await queue.add({ urls: missing.url, dest: `${dir.path}/a` });
  await queue.add({
    urls: tampered.url,
    dest: `${dir.path}/b`,
    sha256: "0".repeat(64),
  });
  await queue.add({ urls: large.url, dest: `${dir.path}/c` });
  const report = await queue.run();
  assert.equal(report.failed, 3);
  assert.deepEqual(
    queue.list().map((t) => [t.state, t.attempts, t.error?.type]),
    [
      ["failed", 1, "HttpError"],
      ["failed", 1, "IntegrityError"],
      ["failed", 1, "LimitError"],
    ],
  );
  assert.match(queue.get(1)!.error!.message, /404/);
  for (const server of [missing, tampered, large]) {
    assert.equal(server.requests.length, 1);
  }
  assert.deepEqual(await names(dir.path), [
    "queue.db",
    "queue.db-owners",
    "queue.db-shm",
    "queue.db-wal",
  ]);
});

Deno.test("TransferQueue retries transient errors within maxAttempts, counted across processes", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  const content = randomBytes(64 * 1024);
  await using flaky = await serveFaults(content, [status(503), status(503)]);
  await using down = await serveFaults(content, Array(10).fill(status(503)));
  await using downToo = await serveFaults(content, Array(10).fill(status(503)));
  await using never = await serveFaults(content);
  const options = {
    retry: { ...FAST, maxAttempts: 3 },
    download: ONE_REQUEST,
  };
  {
    await using queue = await open(db, options);
    await queue.add({ urls: flaky.url, dest: `${dir.path}/a` });
    await queue.add({ urls: down.url, dest: `${dir.path}/b` });
    await queue.add({ urls: downToo.url, dest: `${dir.path}/c` });
    await queue.add({ urls: never.url, dest: `${dir.path}/d` });
  }
  // c used 2 of its 3 attempts and d all 3 in processes that died.
  const raw = new DatabaseSync(db);
  raw.prepare(
    "UPDATE transfers SET state = 'running', owner = ?, attempts = ? WHERE id = ?",
  ).run(DEAD_OWNER, 2, 3);
  raw.prepare(
    "UPDATE transfers SET state = 'running', owner = ?, attempts = ? WHERE id = ?",
  ).run(DEAD_OWNER, 3, 4);
  raw.close();

  const events: QueueEvent[] = [];
  await using queue = await open(db, {
    ...options,
    onEvent: (e) => events.push(e),
  });
  const report = await queue.run();
  assert.equal(report.done, 1);
  assert.equal(report.failed, 3);
  const [a, b, c, d] = queue.list();
  assert.deepEqual([a!.state, a!.attempts], ["done", 3]);
  assert.deepEqual(
    queue.history(1).map((x) => [x.outcome, x.error?.type]),
    [["retried", "HttpError"], ["retried", "HttpError"], ["done", undefined]],
  );
  assert.deepEqual(
    events.filter((e) => e.type === "retry" && e.id === 1).map((e) =>
      e.type === "retry" && e.attempt
    ),
    [1, 2],
  );
  assert.deepEqual([b!.state, b!.attempts, b!.error?.type], [
    "failed",
    3,
    "HttpError",
  ]);
  assert.match(b!.error!.message, /503/);
  assert.equal(down.requests.length, 3);
  assert.ok(
    !(await names(dir.path)).some((n) => n.startsWith("b.")),
    "a failure before any byte arrived leaves no .part",
  );
  assert.deepEqual([c!.state, c!.attempts], ["failed", 3]);
  assert.equal(downToo.requests.length, 1);
  assert.deepEqual([d!.state, d!.attempts, d!.error?.type], [
    "failed",
    3,
    "RetryError",
  ]);
  assert.match(
    d!.error!.message,
    /all 3 attempts are used up, the last cut off when its process died/,
  );
  assert.equal(never.requests.length, 0);
});

Deno.test("TransferQueue.open() migrates a version 1 database and keeps its rows", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  const content = randomBytes(10_000);
  await using server = await serveFaults(content);
  const raw = new DatabaseSync(db);
  migrate(raw, db, 1);
  raw.prepare(
    `INSERT INTO transfers (dest, urls, state, attempts, bytes_done, total, result_url, result_sha256,
       created_at, updated_at, finished_at)
     VALUES (?, ?, 'done', 1, 10000, 10000, ?, ?, 1000, 2000, 2000)`,
  ).run(
    `${dir.path}/old`,
    JSON.stringify([server.url]),
    server.url,
    sha256(content),
  );
  raw.prepare(
    `INSERT INTO transfers (dest, urls, sha256, state, created_at, updated_at)
     VALUES (?, ?, ?, 'queued', 3000, 3000)`,
  ).run(`${dir.path}/new`, JSON.stringify([server.url]), sha256(content));
  raw.close();

  await using queue = await open(db);
  const check = new DatabaseSync(db, { readOnly: true });
  assert.deepEqual(
    check.prepare("SELECT version FROM sluice_queue_schema ORDER BY version")
      .all()
      .map((r) => r.version),
    [1, 2],
  );
  check.close();
  const old = queue.get(1)!;
  assert.equal(old.state, "done");
  assert.deepEqual(old.result, { url: server.url, sha256: sha256(content) });
  assert.equal(old.createdAt.getTime(), 1000);
  assert.deepEqual(queue.history(1), []);
  assert.equal((await queue.run()).done, 1);
  assert.deepEqual(queue.history(2).map((a) => a.outcome), ["done"]);
  assert.equal(sha256(await Deno.readFile(`${dir.path}/new`)), sha256(content));
});

Deno.test("TransferQueue.open() refuses a database with a newer schema and leaves it as it was", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  await (await open(db)).close();
  const raw = new DatabaseSync(db);
  raw.exec(
    "INSERT INTO sluice_queue_schema (version, applied_at) VALUES (3, 0)",
  );
  raw.close();
  const before = sha256(await Deno.readFile(db));
  const entries = await names(dir.path);
  await assert.rejects(open(db), (error) => {
    assert.ok(error instanceof UnsupportedError);
    assert.match(error.message, /schema versions above 2 are not supported/);
    assert.match(error.message, /has version 3/);
    return true;
  });
  assert.equal(sha256(await Deno.readFile(db)), before);
  assert.deepEqual(await names(dir.path), entries);
  assert.deepEqual(await names(`${db}-owners`), []);
});

Deno.test("TransferQueue rejects bad specs and options with TypeError or RangeError and records nothing", async () => {
  await using dir = await tempDir();
  for (
    const options of [{ maxConcurrent: 0 }, { maxConcurrent: 1.5 }, {
      retry: { maxAttempts: 0 },
    }]
  ) {
    await assert.rejects(open(`${dir.path}/queue.db`, options), RangeError);
  }
  assert.deepEqual(await names(dir.path), []);

  await using queue = await open(`${dir.path}/queue.db`);
  const url = "http://127.0.0.1:9/f";
  const dest = `${dir.path}/f`;
  const bad: [Parameters<TransferQueue["add"]>[0], typeof TypeError][] = [
    [{ urls: [], dest }, TypeError],
    [{ urls: "ftp://127.0.0.1/f", dest }, TypeError],
    [{ urls: [url, "not a url"], dest }, TypeError],
    [{ urls: url, dest: "" }, TypeError],
    [{ urls: url, dest, sha256: "abc" }, TypeError],
    [{ urls: url, dest, headers: { "bad header": "x" } }, TypeError],
    [{ urls: url, dest, size: -1 }, RangeError],
    [{ urls: url, dest, size: 1.5 }, RangeError],
  ];
  for (const [spec, type] of bad) {
    await assert.rejects(queue.add(spec), type, JSON.stringify(spec));
  }
  assert.deepEqual(queue.list(), []);
  assert.throws(() => queue.list({ state: "paused" as "queued" }), TypeError);
  assert.deepEqual(await names(dir.path), [
    "queue.db",
    "queue.db-owners",
    "queue.db-shm",
    "queue.db-wal",
  ]);

  await assert.rejects(
    queue.addAll([{ urls: url, dest }, { urls: url, dest: "" }]),
    TypeError,
  );
  assert.deepEqual(queue.list(), [], "addAll() queues all or nothing");
  const running = queue.run();
  await assert.rejects(queue.run(), TypeError);
  await running;
  const closing = queue.close();
  assert.equal(queue.close(), closing, "a second close() waits for the first");
  await closing;
  await assert.rejects(queue.add({ urls: url, dest }), TypeError);
  await assert.rejects(queue.run(), TypeError);
  assert.throws(() => queue.get(1), TypeError);
  await assert.rejects(queue.cancel(1), TypeError);
});

Deno.test("TransferQueue: a cancel by another queue stops a transfer waiting to retry, without using up its attempts", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/queue.db`;
  await using down = await serveFaults(
    randomBytes(1000),
    Array(20).fill(status(503)),
  );
  const failing = firstEvent((e) => e.type === "retry");
  const events: QueueEvent[] = [];
  await using runner = await open(db, {
    retry: {
      baseDelayMs: 300,
      maxDelayMs: 300,
      jitter: "none",
      maxAttempts: 10,
    },
    download: ONE_REQUEST,
    onEvent(event) {
      events.push(event);
      failing.onEvent(event);
    },
  });
  const id = await runner.add({ urls: down.url, dest: `${dir.path}/f` });
  const started = Date.now();
  const running = runner.run();
  await failing.seen;
  await using other = await open(db);
  assert.equal(await other.cancel(id), true);
  const report = await running;
  assert.equal(report.cancelled, 1);
  assert.ok(
    Date.now() - started < 2_000,
    "stopped at the next attempt, not after ten",
  );
  assert.equal(events.filter((e) => e.type === "retry").length, 1);
  assert.equal(down.requests.length, 1);
  assert.equal(runner.get(id)?.state, "cancelled");
  assert.deepEqual(await names(dir.path), [
    "queue.db",
    "queue.db-owners",
    "queue.db-shm",
    "queue.db-wal",
  ]);
});
