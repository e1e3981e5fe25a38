// The `sluice queue …`, `sluice install` and `sluice spill gc` commands, run
// as subprocesses the way a user runs them: against SQLite files in temp
// dirs, loopback servers (one that cuts a connection mid-body), archives made
// at test time by GNU tar, Info-ZIP and python3's tarfile, and spill roots
// with stale, young, locked and unrelated entries. Every case checks what is
// on disk afterwards, not just the exit code.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliRun, jsonOf, sluice } from "./_cli.ts";
import { MiB, randomBytes, sha256 } from "./_data.ts";
import { serveFaults } from "./_fault_server.ts";
import { exists, names, tempDir } from "./_fs.ts";
import { serveLoopback } from "./_loopback.ts";
import { assertSameTree, run, sh, snapshot } from "./_trees.ts";

// ------------------------------------------------------------ helpers

/** A served file set: path (without the leading slash) → bytes; 404 otherwise. */
function serveFiles(files: Record<string, Uint8Array>) {
  return serveLoopback((request) => {
    const body = files[new URL(request.url).pathname.slice(1)];
    return body
      ? new Response(body.slice())
      : new Response("not here", { status: 404 });
  });
}

/** Asserts exit `code`, empty stdout and exactly one line on stderr matching `pattern`. */
function assertOneLineError(result: CliRun, code: number, pattern: RegExp) {
  assert.equal(result.code, code, `exit code; stderr: ${result.stderr}`);
  assert.equal(result.stdout, "", "nothing on stdout");
  assert.match(result.stderr, /^[^\n]+\n$/, "exactly one line on stderr");
  assert.match(result.stderr, pattern);
}

/** Asserts a usage error: exit 2, one stderr line that points at `topic`'s help. */
function assertUsage(result: CliRun, topic: string, pattern?: RegExp) {
  assertOneLineError(
    result,
    2,
    new RegExp(`\\(see sluice ${topic ? `${topic} ` : ""}--help\\)\\n$`),
  );
  if (pattern) assert.match(result.stderr, pattern);
}

/** The `.part` and `.part.json` files left in `dir`. */
async function partsIn(dir: string): Promise<string[]> {
  return (await names(dir)).filter((name) => name.includes(".part"));
}

const enc = new TextEncoder();

/**
 * The source tree of the install tests, under `<parent>/src`: nested
 * directories (one empty), a few files, an executable and a 1 MiB random file.
 */
async function buildSource(parent: string): Promise<string> {
  const src = join(parent, "src");
  await Deno.mkdir(join(src, "a/b/c"), { recursive: true });
  await Deno.mkdir(join(src, "a/empty"));
  await Deno.writeFile(join(src, "top.txt"), enc.encode("top\n"));
  await Deno.writeFile(join(src, "run.sh"), enc.encode("#!/bin/sh\necho\n"));
  await Deno.chmod(join(src, "run.sh"), 0o755);
  await Deno.writeFile(join(src, "a/notes.md"), enc.encode("# notes\n"));
  await Deno.writeFile(join(src, "a/b/c/deep.txt"), enc.encode("deep\n"));
  await Deno.writeFile(join(src, "a/big.bin"), randomBytes(MiB));
  return src;
}

/** What `install --json` must report for the tree at `src`. */
async function expectedResult(src: string) {
  const tree = await snapshot(src);
  const manifest = [];
  let directories = 0;
  for (const [path, node] of tree) {
    if (node.type === "directory") directories++;
    if (node.type === "file") {
      manifest.push({ path, size: node.size, sha256: node.sha256 });
    }
  }
  return {
    files: manifest.length,
    directories,
    bytes: manifest.reduce((n, m) => n + m.size, 0),
    manifest,
  };
}

/** Asserts the `install --json` output against `src` and the tree at `into`. */
async function assertInstalled(
  result: CliRun,
  into: string,
  cwd: string,
  src: string,
) {
  assert.equal(result.code, 0, result.stderr);
  const report = jsonOf(result) as {
    into: string;
    files: number;
    directories: number;
    bytes: number;
    manifest: { path: string; size: number; sha256: string }[];
  };
  const expected = await expectedResult(src);
  assert.deepEqual(
    {
      ...report,
      manifest: report.manifest.toSorted((a, b) =>
        a.path < b.path ? -1 : a.path > b.path ? 1 : 0
      ),
    },
    { into, ...expected },
  );
  assert.deepEqual(Object.keys(report).sort(), [
    "bytes",
    "directories",
    "files",
    "into",
    "manifest",
  ]);
  await assertSameTree(join(cwd, into), src);
}

/** Writes a tar with python3's tarfile: `entries` are [name, kind, data-or-link]. */
async function pythonTar(
  path: string,
  entries: [string, "file" | "symlink", string][],
): Promise<void> {
  await run("python3", [
    "-c",
    `import io, json, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, kind, value in json.loads(sys.argv[2]):
        info = tarfile.TarInfo(name)
        info.mtime = 1700000000
        if kind == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = value
            t.addfile(info)
        else:
            data = value.encode()
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))`,
    path,
    JSON.stringify(entries),
  ]);
}

// ------------------------------------------------------------ queue

Deno.test("queue add prints the id, ls lists it queued, run downloads every file with its SHA-256, and a destination keeps one id", async () => {
  await using dir = await tempDir();
  const cwd = await Deno.realPath(dir.path);
  const one = randomBytes(64 * 1024);
  const two = randomBytes(MiB + 17);
  await using server = serveFiles({ one, two });
  const db = join(cwd, "q.db");

  const first = await sluice(
    ["queue", "add", `${server.url}one`, "-o", "one.bin", "--db", db],
    { cwd },
  );
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, `#1 queued: ${join(cwd, "one.bin")}\n`);

  const second = await sluice([
    "queue",
    "add",
    `${server.url}two`,
    "-o",
    "two.bin",
    "--sha256",
    sha256(two).toUpperCase(),
    "--size",
    String(two.length),
    "--db",
    db,
    "--json",
  ], { cwd });
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(jsonOf(second), {
    id: 2,
    dest: join(cwd, "two.bin"),
    state: "queued",
  });

  // The same destination, spelled differently, is the same transfer.
  const again = await sluice(
    [
      "queue",
      "add",
      `${server.url}one`,
      "-o",
      "./one.bin",
      "--db",
      db,
      "--json",
    ],
    { cwd },
  );
  assert.deepEqual(jsonOf(again), {
    id: 1,
    dest: join(cwd, "one.bin"),
    state: "queued",
  });

  const queued = await sluice(["queue", "ls", "--db", db, "--json"], { cwd });
  assert.equal(queued.code, 0, queued.stderr);
  const listed = JSON.parse(queued.stdout) as Record<string, unknown>[];
  assert.deepEqual(
    listed.map((t) => [t.id, t.state, t.dest, t.urls, t.sha256]),
    [
      [1, "queued", join(cwd, "one.bin"), [`${server.url}one`], undefined],
      [2, "queued", join(cwd, "two.bin"), [`${server.url}two`], sha256(two)],
    ],
  );
  assert.equal(await exists(join(cwd, "one.bin")), false, "not run yet");

  const ran = await sluice(["queue", "run", "--db", db, "--json"], { cwd });
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(jsonOf(ran), {
    done: 2,
    failed: 0,
    cancelled: 0,
    stopped: 0,
    aborted: false,
  });
  assert.equal(sha256(await Deno.readFile(join(cwd, "one.bin"))), sha256(one));
  assert.equal(sha256(await Deno.readFile(join(cwd, "two.bin"))), sha256(two));
  assert.deepEqual(await partsIn(cwd), []);

  const done = await sluice(["queue", "ls", "--db", db], { cwd });
  assert.equal(done.code, 0, done.stderr);
  const lines = done.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 2, done.stdout);
  assert.match(lines[0]!, /^#1\s+done\s+64\.0 KiB of 64\.0 KiB\s+\S*one\.bin$/);
  assert.match(lines[1]!, /^#2\s+done\s+.*two\.bin$/);

  // A finished destination added again (without --replace) keeps its id and
  // its state; nothing is downloaded again.
  const finished = await sluice(
    ["queue", "add", `${server.url}one`, "-o", "one.bin", "--db", db, "--json"],
    { cwd },
  );
  assert.deepEqual(jsonOf(finished), {
    id: 1,
    dest: join(cwd, "one.bin"),
    state: "done",
  });
});

Deno.test("queue run exits 1 when transfers fail, records each error type, and leaves nothing at their destinations", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const good = randomBytes(200 * 1024);
  await using server = serveFiles({ good });
  // Bytes arrive, the connection is cut, and the resume gets a 404: a
  // permanent failure with a .part on disk.
  await using gone = await serveFaults(good, [
    { kind: "reset", afterBytes: 100_000 },
    { kind: "status", status: 404 },
  ]);
  const db = join(cwd, "q.db");
  const wrong = sha256(randomBytes(16));
  for (
    const args of [
      [`${server.url}good`, "-o", "good.bin"],
      [`${server.url}missing`, "-o", "missing.bin"],
      [`${server.url}good`, "-o", "bad.bin", "--sha256", wrong],
      [gone.url, "-o", "gone.bin"],
    ]
  ) {
    const added = await sluice(["queue", "add", ...args, "--db", db], { cwd });
    assert.equal(added.code, 0, added.stderr);
  }

  const ran = await sluice(["queue", "run", "--db", db, "--json"], { cwd });
  assert.equal(ran.code, 1, ran.stderr);
  assert.deepEqual(jsonOf(ran), {
    done: 1,
    failed: 3,
    cancelled: 0,
    stopped: 0,
    aborted: false,
  });
  assert.deepEqual(await Deno.readFile(join(cwd, "good.bin")), good);
  const left = await names(cwd);
  assert.ok(
    !left.some((name) => /^(missing|bad|gone)/.test(name)),
    `nothing left of the failed transfers: ${left}`,
  );
  assert.deepEqual(await partsIn(cwd), []);

  const failed = await sluice(
    ["queue", "ls", "--state", "failed", "--db", db, "--json"],
    { cwd },
  );
  assert.equal(failed.code, 0, failed.stderr);
  const rows = JSON.parse(failed.stdout) as {
    id: number;
    state: string;
    error?: { type: string; message: string };
  }[];
  assert.deepEqual(
    rows.map((t) => [t.id, t.state, t.error?.type]),
    [
      [2, "failed", "HttpError"],
      [3, "failed", "IntegrityError"],
      [4, "failed", "HttpError"],
    ],
  );
  assert.equal(gone.requests.length, 2, "a cut, then a resume that got 404");
  assert.match(gone.requests[1]!.range ?? "", /^bytes=[1-9]\d*-$/);
  assert.match(rows[0]!.error!.message, /404/);

  // The human listing shows the error beside the transfer.
  const human = await sluice(["queue", "ls", "--db", db], { cwd });
  const lines = human.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4, human.stdout);
  assert.match(lines[0]!, /^#1\s+done\s/);
  assert.match(lines[1]!, /^#2\s+failed\s.*missing\.bin\s+HttpError: .*404/);
  assert.match(lines[2]!, /^#3\s+failed\s.*bad\.bin\s+IntegrityError: /);
  assert.match(lines[3]!, /^#4\s+failed\s.*gone\.bin\s+HttpError: /);
});

Deno.test("queue cancel stops a queued transfer, refuses done and unknown ids with one line, and retry queues it for the next run", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const a = randomBytes(32 * 1024);
  const b = randomBytes(48 * 1024);
  await using server = serveFiles({ a, b });
  const db = join(cwd, "q.db");
  const q = (...args: string[]) =>
    sluice(["queue", ...args, "--db", db], { cwd });

  assert.equal((await q("add", `${server.url}a`, "-o", "a.bin")).code, 0);
  assert.equal((await q("add", `${server.url}b`, "-o", "b.bin")).code, 0);

  const cancelled = await q("cancel", "2");
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.equal(cancelled.stdout, "#2 cancelled\n");
  const listed = JSON.parse((await q("ls", "--json")).stdout) as {
    id: number;
    state: string;
  }[];
  assert.deepEqual(listed.map((t) => [t.id, t.state]), [
    [1, "queued"],
    [2, "cancelled"],
  ]);

  // The run skips the cancelled one: it is not a run's cancellation.
  const ran = await q("run", "--json");
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(jsonOf(ran), {
    done: 1,
    failed: 0,
    cancelled: 0,
    stopped: 0,
    aborted: false,
  });
  assert.deepEqual(await Deno.readFile(join(cwd, "a.bin")), a);
  assert.equal(await exists(join(cwd, "b.bin")), false);

  const [ofDone, ofUnknown, ofUnknownJson, retryDone] = await Promise.all([
    q("cancel", "1"),
    q("cancel", "#99"),
    q("cancel", "99", "--json"),
    q("retry", "1"),
  ]);
  assertOneLineError(
    ofDone,
    1,
    /^sluice queue cancel: Cannot cancel #1: it is done\n$/,
  );
  assertOneLineError(
    ofUnknown,
    1,
    /^sluice queue cancel: Cannot cancel #99: there is no such transfer\n$/,
  );
  assert.equal(ofUnknownJson.code, 1);
  assert.deepEqual(jsonOf(ofUnknownJson), {
    error: {
      type: "Failure",
      message: "Cannot cancel #99: there is no such transfer",
      exitCode: 1,
    },
  });
  assertOneLineError(
    retryDone,
    1,
    /^sluice queue retry: Cannot retry #1: it is done\n$/,
  );
  // Refusals changed nothing.
  assert.deepEqual(await Deno.readFile(join(cwd, "a.bin")), a);

  const retried = await q("retry", "2", "--json");
  assert.equal(retried.code, 0, retried.stderr);
  assert.deepEqual(jsonOf(retried), { id: 2, state: "queued" });
  assert.deepEqual(
    (JSON.parse((await q("ls", "--state", "queued", "--json")).stdout) as {
      id: number;
    }[]).map((t) => t.id),
    [2],
  );

  const rerun = await q("run", "--json");
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.equal(jsonOf(rerun).done, 1);
  assert.deepEqual(await Deno.readFile(join(cwd, "b.bin")), b);
  const all = JSON.parse((await q("ls", "--json")).stdout) as {
    id: number;
    state: string;
  }[];
  assert.deepEqual(all.map((t) => [t.id, t.state]), [[1, "done"], [2, "done"]]);
  assert.deepEqual(await partsIn(cwd), []);
});

Deno.test("queue ls, run, cancel and retry on a database that does not exist exit 1 and create no file", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const runs = await Promise.all([
    sluice(["queue", "ls", "--db", "nope.db"], { cwd }),
    sluice(["queue", "run", "--db", "nope.db"], { cwd }),
    sluice(["queue", "cancel", "1", "--db", "nope.db"], { cwd }),
    sluice(["queue", "retry", "1", "--db", "nope.db"], { cwd }),
    sluice(["queue", "ls"], { cwd }), // the default sluice.db
  ]);
  for (const [i, verb] of ["ls", "run", "cancel", "retry"].entries()) {
    assertOneLineError(
      runs[i]!,
      1,
      new RegExp(
        `^sluice queue ${verb}: Cannot open the queue nope\\.db: there is no such file`,
      ),
    );
  }
  assertOneLineError(runs[4]!, 1, /Cannot open the queue sluice\.db/);
  assert.deepEqual(await names(cwd), []);
});

Deno.test("queue: bad arguments exit 2 with one line on stderr naming the help, and create nothing", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const url = "http://127.0.0.1:9/file";
  const cases: [string[], string, RegExp][] = [
    [["queue", "add", url, "--db", "q.db"], "queue add", /missing -o FILE/],
    [["queue", "add", "--db", "q.db", "-o", "f"], "queue add", /missing a URL/],
    [
      ["queue", "add", "ftp://example.com/f", "-o", "f", "--db", "q.db"],
      "queue add",
      /must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/example\.com\/f"/,
    ],
    [
      ["queue", "add", "not a url", "-o", "f", "--db", "q.db"],
      "queue add",
      /must be an http/,
    ],
    [
      ["queue", "add", url, "-o", "f", "--db", "q.db", "--frob"],
      "queue add",
      /unknown option --frob/,
    ],
    [
      ["queue", "ls", "--state", "bogus", "--db", "q.db"],
      "queue ls",
      /--state must be one of queued, running, done, failed, cancelled, got "bogus"/,
    ],
    [["queue", "ls", "extra", "--db", "q.db"], "queue ls", /unexpected/],
    [
      ["queue", "cancel", "abc", "--db", "q.db"],
      "queue cancel",
      /the id must be a whole number of at least 1, got "abc"/,
    ],
    [["queue", "cancel", "--db", "q.db"], "queue cancel", /missing the/],
    [["queue", "retry", "0", "--db", "q.db"], "queue retry", /at least 1/],
    [
      ["queue", "run", "--concurrency", "0", "--db", "q.db"],
      "queue run",
      /--concurrency must be a whole number of at least 1, got "0"/,
    ],
    [["queue", "run", "--db"], "queue run", /option --db needs a value/],
    [["queue"], "queue", /^sluice: missing a queue command/],
    [
      ["queue", "frobnicate"],
      "queue",
      /^sluice: unknown command "queue frobnicate"/,
    ],
  ];
  const runs = await Promise.all(
    cases.map(([args]) => sluice(args, { cwd })),
  );
  for (const [i, [args, topic, pattern]] of cases.entries()) {
    assertUsage(runs[i]!, topic, pattern);
    const prefix = topic === "queue" ? "sluice: " : `sluice ${topic}: `;
    assert.ok(
      runs[i]!.stderr.startsWith(prefix),
      `${args.join(" ")}: ${runs[i]!.stderr}`,
    );
  }
  // Also with --json: the error object on stdout, the line on stderr.
  const json = await sluice(
    ["queue", "run", "--concurrency", "0", "--db", "q.db", "--json"],
    { cwd },
  );
  assert.equal(json.code, 2);
  assert.deepEqual(jsonOf(json), {
    error: {
      type: "UsageError",
      message: '--concurrency must be a whole number of at least 1, got "0"',
      exitCode: 2,
    },
  });
  assert.match(json.stderr, /^[^\n]+\(see sluice queue run --help\)\n$/);
  assert.deepEqual(await names(cwd), [], "no database, no file");
});

Deno.test("queue add: a bad --sha256 or --size exits 2 with one line and creates no database", async () => {
  await using dir = await tempDir();
  const add = (db: string, ...extra: string[]) =>
    sluice(
      ["queue", "add", "http://127.0.0.1:9/f", "-o", "f", "--db", db, ...extra],
      { cwd: dir.path },
    );
  const [sha, size] = await Promise.all([
    add("a.db", "--sha256", "xyz"),
    add("b.db", "--size", "lots"),
  ]);
  assertUsage(sha, "queue add", /--sha256 must be 64 hex digits/);
  assertUsage(size, "queue add", /--size must be a size/);
  assert.deepEqual(await names(dir.path), []); // no database, no -owners directory
});

// ------------------------------------------------------------ install

Deno.test("install puts a GNU tar.gz, an Info-ZIP zip and a tar from stdin into --into, identical, with a manifest of SHA-256s", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const src = await buildSource(cwd);
  await sh(`tar -czf ../app.tar.gz . && zip -qr ../app.zip .`, src);
  const tar = await run("tar", ["-cf", "-", "top.txt", "run.sh", "a"], src);

  const [fromTgz, fromZip, fromStdin] = await Promise.all([
    sluice(["install", "app.tar.gz", "--into", "from-tgz", "--json"], { cwd }),
    sluice(["install", "app.zip", "--into", "from-zip", "--json"], { cwd }),
    sluice(["install", "-", "--into", "from-stdin", "--json"], {
      cwd,
      stdin: tar,
    }),
  ]);
  await assertInstalled(fromTgz, "from-tgz", cwd, src);
  await assertInstalled(fromZip, "from-zip", cwd, src);
  await assertInstalled(fromStdin, "from-stdin", cwd, src);
  assert.equal(
    (await Deno.stat(join(cwd, "from-zip/a/empty"))).isDirectory,
    true,
  );

  // The human result, and nothing but the targets and inputs in the parent.
  const human = await sluice(["install", "app.tar.gz", "--into", "human"], {
    cwd,
  });
  assert.equal(human.code, 0, human.stderr);
  assert.equal(
    human.stdout,
    "installed 5 files in 4 directories (1.0 MiB) into human\n",
  );
  await assertSameTree(join(cwd, "human"), src);
  assert.deepEqual(await names(cwd), [
    "app.tar.gz",
    "app.zip",
    "from-stdin",
    "from-tgz",
    "from-zip",
    "human",
    "src",
  ]);
});

Deno.test("install from a URL, also when the connection is cut mid-body once (resumed with a range)", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const src = await buildSource(cwd);
  await sh(`tar -czf ../app.tar.gz .`, src);
  const tgz = await Deno.readFile(join(cwd, "app.tar.gz"));
  assert.ok(tgz.length > 600_000, "big enough to cut");
  await using plain = serveFiles({ "app.tar.gz": tgz });
  await using cut = await serveFaults(tgz, [
    { kind: "reset", afterBytes: 300_000 },
  ]);

  const [direct, resumed, missing] = await Promise.all([
    sluice(
      ["install", `${plain.url}app.tar.gz`, "--into", "direct", "--json"],
      {
        cwd,
      },
    ),
    sluice(["install", cut.url, "--into", "resumed", "--json"], { cwd }),
    sluice(["install", `${plain.url}nothing.tar.gz`, "--into", "missing"], {
      cwd,
    }),
  ]);
  await assertInstalled(direct, "direct", cwd, src);
  await assertInstalled(resumed, "resumed", cwd, src);
  assert.equal(cut.requests.length, 2, "one cut, one resume");
  assert.equal(cut.requests[0]!.range, null);
  const resumedAt = Number(
    /^bytes=(\d+)-$/.exec(cut.requests[1]!.range ?? "")?.[1],
  );
  assert.ok(
    resumedAt > 0 && resumedAt <= 300_000,
    `resumed at ${cut.requests[1]!.range}`,
  );

  assertOneLineError(missing, 1, /^sluice install: .*404/);
  assert.deepEqual(await names(cwd), [
    "app.tar.gz",
    "direct",
    "resumed",
    "src",
  ]);
});

Deno.test("install into an existing directory exits 1 naming --replace and leaves it untouched; --replace swaps the new tree in", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const src = await buildSource(cwd);
  await sh(`tar -czf ../app.tar.gz .`, src);
  await Deno.mkdir(join(cwd, "out/keep"), { recursive: true });
  await Deno.writeTextFile(join(cwd, "out/old.txt"), "old\n");
  const before = await snapshot(join(cwd, "out"));
  const listing = await names(cwd);

  const refused = await sluice(["install", "app.tar.gz", "--into", "out"], {
    cwd,
  });
  assertOneLineError(refused, 1, /^sluice install: .*out.*--replace/);
  assert.deepEqual(await snapshot(join(cwd, "out")), before);
  assert.deepEqual(await names(cwd), listing, "no staging dir left");

  const replaced = await sluice(
    ["install", "app.tar.gz", "--into", "out", "--replace", "--json"],
    { cwd },
  );
  await assertInstalled(replaced, "out", cwd, src);
  assert.equal(await exists(join(cwd, "out/old.txt")), false);
  assert.deepEqual(await names(cwd), listing, "no old tree left beside it");
});

Deno.test("install refuses hostile input with exit 4 and leaves nothing: an escaping name, garbage, links unless allowed, --max-bytes", async () => {
  await using dir = await tempDir();
  const top = dir.path;
  const cwd = join(top, "work");
  await Deno.mkdir(cwd);
  const src = await buildSource(top);
  await sh(`tar -czf ../work/app.tar.gz .`, src);
  await pythonTar(join(cwd, "escape.tar"), [
    ["good.txt", "file", "fine\n"],
    ["../escape", "file", "escaped\n"],
  ]);
  await pythonTar(join(cwd, "link.tar"), [
    ["good.txt", "file", "fine\n"],
    ["sub/inside", "symlink", "../good.txt"],
  ]);
  await pythonTar(join(cwd, "outside.tar"), [
    ["good.txt", "file", "fine\n"],
    ["outside", "symlink", "../app.tar.gz"],
  ]);
  await Deno.writeTextFile(
    join(cwd, "garbage.bin"),
    "this is not an archive\n".repeat(64),
  );
  const listing = await names(cwd);

  const [escape, escapeJson, garbage, garbageStdin, link, outside, tooBig] =
    await Promise.all([
      sluice(["install", "escape.tar", "--into", "out"], { cwd }),
      sluice(["install", "escape.tar", "--into", "out2", "--json"], { cwd }),
      sluice(["install", "garbage.bin", "--into", "out3"], { cwd }),
      sluice(["install", "-", "--into", "out4"], {
        cwd,
        stdin: randomBytes(1000).fill(0x41, 0, 4),
      }),
      sluice(["install", "link.tar", "--into", "out5"], { cwd }),
      sluice(["install", "outside.tar", "--into", "out6", "--allow-links"], {
        cwd,
      }),
      sluice(["install", "app.tar.gz", "--into", "out7", "--max-bytes", "10"], {
        cwd,
      }),
    ]);
  assertOneLineError(escape, 4, /^sluice install: .*\.\.\/escape/);
  assert.equal(escapeJson.code, 4);
  const error = jsonOf(escapeJson).error as Record<string, unknown>;
  assert.equal(error.type, "UnsafeEntryError");
  assert.equal(error.exitCode, 4);
  assertOneLineError(garbage, 4, /not a tar, tar\.gz or zip archive/);
  assertOneLineError(garbageStdin, 4, /not a tar, tar\.gz or zip archive/);
  assertOneLineError(link, 4, /sub\/inside.*links are not allowed/);
  assertOneLineError(outside, 4, /outside.*leaves the target directory/);
  assertOneLineError(tooBig, 4, /^sluice install: .*10/);

  // No target, no staging directory, nothing escaped beside or above.
  assert.deepEqual(await names(cwd), listing);
  assert.deepEqual(await names(top), ["src", "work"]);

  // With --allow-links, the link that stays inside the tree is made.
  const allowed = await sluice(
    ["install", "link.tar", "--into", "linked", "--allow-links", "--json"],
    { cwd },
  );
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.deepEqual(jsonOf(allowed).manifest, [
    { path: "good.txt", size: 5, sha256: sha256(enc.encode("fine\n")) },
  ]);
  assert.equal(
    await Deno.readLink(join(cwd, "linked/sub/inside")),
    "../good.txt",
  );
  assert.equal(
    await Deno.readTextFile(join(cwd, "linked/sub/inside")),
    "fine\n",
  );
  assert.deepEqual(await names(cwd), [...listing, "linked"].sort());
});

// ------------------------------------------------------------ spill gc

Deno.test("spill gc removes only stale unlocked spill stores; --max-age 0s takes the young one too but not one from the future", async () => {
  await using dir = await tempDir();
  const root = join(dir.path, "root");
  const now = Math.floor(Date.now() / 1000);
  const stale = "spill_1700000000_0123456789abcdef";
  const locked = "spill_1700000001_aaaaaaaaaaaaaaaa";
  const young = `spill_${now}_fedcba9876543210`;
  const future = `spill_${now + 3600}_1111111111111111`;
  await Deno.mkdir(join(root, stale, "chunks"), { recursive: true });
  await Deno.writeFile(join(root, stale, "chunks/0"), randomBytes(1000));
  await Deno.writeTextFile(join(root, stale, ".lock"), "");
  await Deno.mkdir(join(root, locked), { recursive: true });
  await Deno.mkdir(join(root, young));
  await Deno.mkdir(join(root, future));
  await Deno.mkdir(join(root, "unrelated"));
  await Deno.writeTextFile(
    join(root, "spill_1700000000_0000000000000000"),
    "a file",
  );
  // A live process (this one) holds the lock of `locked`.
  using lock = await Deno.open(join(root, locked, ".lock"), {
    create: true,
    read: true,
    write: true,
  });
  await lock.lock(true);
  const everything = await names(root);

  const [soon, missing, missingJson] = await Promise.all([
    sluice(["spill", "gc", root, "--max-age", "soon"]),
    sluice(["spill", "gc", join(dir.path, "nope")]),
    sluice(["spill", "gc", join(dir.path, "nope"), "--json"]),
  ]);
  assertUsage(soon, "spill gc", /--max-age must be a duration/);
  assertOneLineError(
    missing,
    1,
    /^sluice spill gc: Cannot clean .*nope: there is no such directory\n$/,
  );
  assert.equal(missingJson.code, 1);
  assert.equal((jsonOf(missingJson).error as { exitCode: number }).exitCode, 1);
  assert.deepEqual(await names(root), everything, "refusals removed nothing");
  assert.equal(await exists(join(dir.path, "nope")), false);

  const gc = await sluice(["spill", "gc", root, "--json"]);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(jsonOf(gc), {
    removed: [stale],
    skippedLocked: [locked],
    skippedYoung: [young, future].sort(),
    ignored: ["spill_1700000000_0000000000000000", "unrelated"],
    brokenClock: false,
  });
  assert.deepEqual(
    await names(root),
    everything.filter((name) => name !== stale),
  );

  // A zero age makes every store from the past stale, the young one too;
  // a name from the future is still skipped, a held lock still kept.
  const zero = await sluice(["spill", "gc", root, "--max-age", "0s"]);
  assert.equal(zero.code, 0, zero.stderr);
  assert.equal(
    zero.stdout,
    "removed 1 stale store, kept 1 in use and 1 younger than the age, ignored 2 other entries\n" +
      `removed ${young}\n`,
  );
  assert.deepEqual(
    await names(root),
    everything.filter((name) => name !== stale && name !== young),
  );
});
