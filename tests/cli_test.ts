// The sluice command run as a subprocess against real local things: help and
// bad arguments, get, seal / open / serve, the demo, progress output, and the
// module graph `deno compile` needs.

import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, jsonOf, sluice, spawnSluice } from "./_cli.ts";
import { MiB, randomBytes, sha256 } from "./_data.ts";
import { serveFaults } from "./_fault_server.ts";
import { names, tempDir } from "./_fs.ts";

const ROOT = new URL("../", import.meta.url);

/** Asserts a bad-arguments run: exit 2, one line on stderr naming the help, nothing on stdout. */
function assertUsage(
  run: { code: number; stdout: string; stderr: string },
  pattern: RegExp,
) {
  assert.equal(run.code, 2, run.stderr);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, pattern);
  assert.match(lines[0]!, /\(see sluice .*--help\)$/);
  assert.doesNotMatch(run.stderr, /^\s+at /m); // no stack trace
  assert.equal(run.stdout, "");
}

Deno.test("every command has --help on stdout with exit 0, and the overview lists them all", async () => {
  const overview = await sluice(["--help"]);
  assert.equal(overview.code, 0);
  const commands = [
    ...overview.stdout.matchAll(/^ {2}([a-z]+(?: [a-z]+)?) {2,}/gm),
  ].map((m) => m[1]!);
  assert.deepEqual(commands, [
    "demo",
    "get",
    "queue add",
    "queue run",
    "queue ls",
    "queue cancel",
    "queue retry",
    "seal",
    "open",
    "serve",
    "install",
    "spill gc",
  ]);
  const runs = await Promise.all(
    commands.map((c) => sluice([...c.split(" "), "--help"])),
  );
  for (const [i, run] of runs.entries()) {
    assert.equal(run.code, 0, commands[i]);
    assert.ok(
      run.stdout.startsWith(`Usage: sluice ${commands[i]}`),
      run.stdout,
    );
    assert.match(run.stdout, /--json/);
    assert.equal(run.stderr, "");
  }
  const viaHelp = await sluice(["help", "seal"]);
  assert.equal(viaHelp.stdout, runs[commands.indexOf("seal")]!.stdout);
  const group = await sluice(["queue", "--help"]);
  assert.equal(group.code, 0);
  assert.match(group.stdout, /queue cancel/);
  assert.doesNotMatch(group.stdout, /^ {2}seal/m);
  const version = await sluice(["--version"]);
  assert.match(version.stdout, /^sluice \d+\.\d+\.\d+\n$/);
});

Deno.test("bad arguments give one line on stderr and exit 2, before anything is touched", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  await Deno.writeFile(join(cwd, "in.bin"), randomBytes(1000));
  const cases: [string[], RegExp][] = [
    [[], /missing a command/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["queue"], /missing a queue command/],
    [["get"], /missing a URL/],
    [["get", "ftp://example.com/f"], /must be an http/],
    [["get", "http://127.0.0.1:9/"], /cannot name the file.*-o FILE/],
    [
      ["get", "http://127.0.0.1:9/f", "--sha256", "abc"],
      /--sha256 must be 64 hex digits/,
    ],
    [
      ["get", "http://127.0.0.1:9/f", "--max-bytes", "lots"],
      /--max-bytes must be a size/,
    ],
    [["get", "http://127.0.0.1:9/f", "--frob"], /unknown option --frob/],
    [["get", "http://127.0.0.1:9/f", "-o"], /option -o needs a value/],
    [["get", "http://127.0.0.1:9/f", "-o", "a", "-o", "b"], /more than once/],
    [["get", "http://127.0.0.1:9/f", "--json=yes"], /--json takes no value/],
    [["seal", "in.bin"], /missing --store/],
    [
      ["seal", "in.bin", "--store", "s", "--suite", "rot13"],
      /--suite must be one of/,
    ],
    [
      ["seal", "in.bin", "--store", "s", "--chunk-size", "1KiB"],
      /--chunk-size must be from 64KiB/,
    ],
    [
      ["seal", "-", "--store", "s", "--convergent", "-o", "m.json"],
      /--convergent reads the input twice/,
    ],
    [["seal", "-", "--store", "s"], /missing -o DATAMAP/],
    [["seal", "in.bin", "--store", "s", "-o", "-"], /--key-file FILE/],
    [
      ["seal", "in.bin", "--store", "s", "--replicas", "2"],
      /needs as many --store/,
    ],
    [
      ["seal", "in.bin", "--store", "ftp://peer/x"],
      /--store must be a directory, an http\(s\):\/\/ peer or an s3/,
    ],
    [
      ["seal", "in.bin", "--store", "s3://b/x"],
      /--store: .*3 to 63/,
    ],
    [
      ["seal", "in.bin", "--store", "s3://bucket/x"],
      /--store: .*set AWS_ACCESS_KEY_ID/,
    ],
    [
      ["open", "m.json", "--key", "k", "--store", "s", "--to", "s3://bucket"],
      /--to: .*the object key is empty/,
    ],
    [["open", "m.json", "--store", "s"], /missing --key FILE/],
    [
      ["open", "m.json", "--key", "k", "--store", "s", "--range", "9-3"],
      /--range must be/,
    ],
    [
      ["open", "m.json", "--key", "k", "--store", "s", "-o", "x", "--to", "y"],
      /not both/,
    ],
    [
      ["open", "m.json", "--key", "k", "--store", "s", "--to", "ftp://x"],
      /--to: .*unknown scheme/,
    ],
    [["serve", "s", "--port", "99999"], /--port must be at most 65535/],
    [["serve"], /missing the directory to serve/],
    [["install", "a.tar"], /missing --into DIR/],
    [["spill", "gc", ".", "--max-age", "soon"], /--max-age must be a duration/],
    [["demo", "--size", "0"], /--size must be at least 1 byte/],
    [["demo", "extra"], /unexpected argument "extra"/],
  ];
  const runs = await Promise.all(cases.map(([args]) => sluice(args, { cwd })));
  for (const [i, run] of runs.entries()) assertUsage(run, cases[i]![1]);
  assert.deepEqual(await names(cwd), ["in.bin"]);

  const json = await sluice(["get", "--frob", "--json"], { cwd });
  assert.equal(json.code, 2);
  assert.deepEqual(jsonOf(json), {
    error: {
      type: "UsageError",
      message: "unknown option --frob",
      exitCode: 2,
    },
  });
});

Deno.test("get downloads with --json, checks --sha256, and refuses to overwrite without --force", async () => {
  await using dir = await tempDir();
  const content = randomBytes(300_000);
  await using server = await serveFaults(content);
  const cwd = dir.path;

  const run = await sluice([
    "get",
    server.url,
    "--json",
    "--sha256",
    sha256(content),
  ], { cwd });
  assert.equal(run.code, 0, run.stderr);
  const receipt = jsonOf(run);
  assert.deepEqual(
    { ...receipt, path: undefined },
    {
      path: undefined,
      url: server.url,
      bytes: content.length,
      sha256: sha256(content),
      resumedFrom: 0,
      restarts: 0,
      attempts: 1,
    },
  );
  assert.equal(receipt.path, "file"); // named after the URL
  assert.deepEqual(await Deno.readFile(join(cwd, "file")), content);

  const again = await sluice(["get", server.url], { cwd });
  assert.equal(again.code, 1);
  assert.match(
    again.stderr,
    /^sluice get: Cannot write file: it already exists \(--force replaces it\)\n$/,
  );
  const forced = await sluice(["get", server.url, "--force", "--quiet"], {
    cwd,
  });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout + forced.stderr, "");

  const wrong = await sluice([
    "get",
    server.url,
    "-o",
    "bad.bin",
    "--sha256",
    "0".repeat(64),
  ], { cwd });
  assert.equal(wrong.code, 3);
  assert.match(wrong.stderr, /^sluice get: Cannot verify .*sha256 mismatch/);
  assert.deepEqual(await names(cwd), ["file"]); // no bad.bin, no .part
});

Deno.test("get with mirrors fails over from a dead one, and a 404 exits 1 leaving nothing", async () => {
  await using dir = await tempDir();
  const content = randomBytes(50_000);
  await using server = await serveFaults(content);
  const cwd = dir.path;
  const dead = "http://127.0.0.1:9/file";
  const run = await sluice(["get", dead, server.url, "-o", "m.bin"], { cwd });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /trying the next mirror/);
  assert.match(
    run.stdout,
    /^saved m\.bin \(48\.8 KiB\) from http:\/\/127\.0\.0\.1:\d+\/file\n/,
  );
  assert.deepEqual(await Deno.readFile(join(cwd, "m.bin")), content);

  await using missing = await serveFaults(content, [{
    kind: "status",
    status: 404,
  }]);
  const gone = await sluice(["get", missing.url, "-o", "gone.bin", "--debug"], {
    cwd,
  });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /sluice get: Cannot GET .*404/);
  assert.match(gone.stderr, /^\s+at /m); // --debug shows the stack
  assert.deepEqual(await names(cwd), ["m.bin"]);
});

Deno.test("get stopped by SIGINT exits 130 keeping the .part, and the same command resumes it", async () => {
  await using dir = await tempDir();
  const content = randomBytes(4 * MiB);
  await using server = await serveFaults(content, [], undefined, {
    bytesPerSecond: 2 * MiB,
  });
  const cwd = dir.path;
  const child = spawnSluice(["get", server.url, "-o", "big.bin"], { cwd });
  const part = join(cwd, "big.bin.part");
  for (let i = 0; i < 200; i++) {
    const size = await Deno.stat(part).then((s) => s.size, () => 0);
    if (size > 256 * 1024) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGINT");
  const stopped = await child.output();
  const stderr = new TextDecoder().decode(stopped.stderr);
  assert.equal(stopped.code, 130, stderr);
  assert.match(
    stderr,
    /stopped; big\.bin\.part is kept and the same command resumes it/,
  );
  assert.ok((await Deno.stat(part)).size > 0);

  const resumed = await sluice(["get", server.url, "-o", "big.bin", "--json"], {
    cwd,
  });
  assert.equal(resumed.code, 0, resumed.stderr);
  const receipt = jsonOf(resumed);
  assert.ok((receipt.resumedFrom as number) > 0);
  assert.equal(receipt.sha256, sha256(content));
  assert.equal(server.requests.at(-1)!.range, `bytes=${receipt.resumedFrom}-`);
  assert.deepEqual(await names(cwd), ["big.bin"]);
});

Deno.test("without a terminal, long operations print plain progress lines on stderr", async () => {
  await using dir = await tempDir();
  const content = randomBytes(3 * MiB);
  await using server = await serveFaults(content, [], undefined, {
    bytesPerSecond: 1 * MiB,
  });
  const run = await sluice(["get", server.url, "-o", "slow.bin"], {
    cwd: dir.path,
  });
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stderr.trimEnd().split("\n");
  assert.ok(lines.length >= 1, run.stderr);
  for (const line of lines) {
    assert.match(
      line,
      /^get slow\.bin: [\d.]+ (KiB|MiB) of 3\.0 MiB \(\d+%\), [\d.]+ (B|KiB|MiB)\/s(, ETA \d+s)?$/,
    );
  }
  assert.match(run.stderr, /ETA \d+s/); // while bytes were still to come
  assert.doesNotMatch(run.stderr, /\r/);
  const quiet = await sluice(["get", server.url, "-o", "q.bin", "-q"], {
    cwd: dir.path,
  });
  assert.equal(quiet.stderr + quiet.stdout, "");
});

Deno.test("on a terminal, progress is a bar redrawn in place with rate and ETA", async () => {
  await using dir = await tempDir();
  const content = randomBytes(2 * MiB);
  await using server = await serveFaults(content, [], undefined, {
    bytesPerSecond: 2 * MiB,
  });
  const command = [
    Deno.execPath(),
    ...cliCommand(["get", server.url, "-o", "tty.bin"]),
  ]
    .map((a) => `'${a}'`).join(" ");
  // script(1) runs the command on a pseudo-terminal.
  const { code, stdout } = await new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd: dir.path,
    env: { TERM: "xterm" },
    stdin: "null",
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, text);
  assert.match(
    text,
    new RegExp(
      "\r\x1b\\[2Kget tty\\.bin \\[#*-+\\] +\\d+% {2}[\\d.]+ (KiB|MiB) of 2\\.0 MiB {2}" +
        "[\\d.]+ (KiB|MiB)/s {2}ETA \\d+s",
    ),
  );
  assert.match(text, /saved tty\.bin/);
  assert.deepEqual(await Deno.readFile(join(dir.path, "tty.bin")), content);
});

Deno.test("seal writes a data map and a 0600 key file, and open decrypts from the store, ranges and stdout included", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const content = randomBytes(700_000);
  await Deno.writeFile(join(cwd, "in.bin"), content);

  const sealed = await sluice([
    "seal",
    "in.bin",
    "--store",
    "store",
    "--chunk-size",
    "64KiB",
    "--json",
  ], { cwd });
  assert.equal(sealed.code, 0, sealed.stderr);
  const result = jsonOf(sealed);
  assert.deepEqual(
    { ...result, ms: 0 },
    {
      dataMap: "in.bin.datamap.json",
      keyFile: "in.bin.datamap.key",
      size: content.length,
      chunks: 11,
      stored: 11,
      skipped: 0,
      suite: "aes-256-gcm",
      chunkSize: 65536,
      ms: 0,
    },
  );
  const keyInfo = await Deno.stat(join(cwd, "in.bin.datamap.key"));
  assert.equal(keyInfo.mode! & 0o777, 0o600);
  assert.match(
    await Deno.readTextFile(join(cwd, "in.bin.datamap.key")),
    /^[0-9a-f]{64}\n$/,
  );
  const dataMap = JSON.parse(
    await Deno.readTextFile(join(cwd, "in.bin.datamap.json")),
  );
  assert.equal(dataMap.chunks.length, 11);
  assert.doesNotMatch(
    JSON.stringify(dataMap),
    new RegExp(
      await Deno.readTextFile(join(cwd, "in.bin.datamap.key")).then((k) =>
        k.trim()
      ),
    ),
  );

  const opened = await sluice([
    "open",
    "in.bin.datamap.json",
    "--key",
    "in.bin.datamap.key",
    "--store",
    "store",
    "-o",
    "out.bin",
    "--json",
  ], { cwd });
  assert.equal(opened.code, 0, opened.stderr);
  const receipt = jsonOf(opened);
  assert.equal(receipt.sink, "file");
  assert.equal(receipt.bytes, content.length);
  assert.equal(receipt.sha256, sha256(content));
  assert.deepEqual(await Deno.readFile(join(cwd, "out.bin")), content);

  const ranged = await sluice([
    "open",
    "in.bin.datamap.json",
    "--key",
    "in.bin.datamap.key",
    "--store",
    "store",
    "--range",
    "65530-65545",
  ], { cwd });
  assert.equal(ranged.code, 0, ranged.stderr);
  assert.deepEqual(ranged.bytes, content.subarray(65530, 65546));
  assert.match(
    ranged.stderr,
    /^delivered 16 B to stdout at .*\nsha256 [0-9a-f]{64}\n$/,
  );

  const tail = await sluice([
    "open",
    "in.bin.datamap.json",
    "--key",
    "in.bin.datamap.key",
    "--store",
    "store",
    "--range",
    "699990-",
  ], { cwd });
  assert.deepEqual(tail.bytes, content.subarray(699990));

  const exists = await sluice([
    "open",
    "in.bin.datamap.json",
    "--key",
    "in.bin.datamap.key",
    "--store",
    "store",
    "-o",
    "out.bin",
  ], { cwd });
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /already exists \(--force replaces it\)/);

  const again = await sluice(["seal", "in.bin", "--store", "store"], { cwd });
  assert.equal(again.code, 1);
  assert.match(
    again.stderr,
    /Cannot write in\.bin\.datamap\.json: it already exists \(--force replaces it\)/,
  );
  assert.deepEqual(await names(cwd), [
    "in.bin",
    "in.bin.datamap.json",
    "in.bin.datamap.key",
    "out.bin",
    "store",
  ]);
});

Deno.test("seal reads stdin and can print the key; --convergent seals identical files to identical chunks", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const content = randomBytes(200_000);
  const piped = await sluice([
    "seal",
    "-",
    "--store",
    "s",
    "-o",
    "piped.json",
    "--print-key",
    "--json",
    "--suite",
    "xchacha20-poly1305",
  ], { cwd, stdin: content });
  assert.equal(piped.code, 0, piped.stderr);
  const result = jsonOf(piped);
  assert.equal(result.keyFile, null);
  assert.match(result.key as string, /^[0-9a-f]{64}$/);
  assert.equal(result.suite, "xchacha20-poly1305");
  await Deno.writeTextFile(join(cwd, "k"), `${result.key}\n`);
  const back = await sluice([
    "open",
    "piped.json",
    "--key",
    "k",
    "--store",
    "s",
  ], { cwd });
  assert.deepEqual(back.bytes, content);

  await Deno.writeFile(join(cwd, "a.bin"), content);
  await Deno.writeFile(join(cwd, "b.bin"), content);
  const a = jsonOf(
    await sluice(["seal", "a.bin", "--store", "c", "--convergent", "--json"], {
      cwd,
    }),
  );
  const b = jsonOf(
    await sluice(["seal", "b.bin", "--store", "c", "--convergent", "--json"], {
      cwd,
    }),
  );
  assert.deepEqual([a.stored, a.skipped, b.stored, b.skipped], [1, 0, 0, 1]);
  assert.equal(
    await Deno.readTextFile(join(cwd, "a.bin.datamap.key")),
    await Deno.readTextFile(join(cwd, "b.bin.datamap.key")),
  );
});

Deno.test("open refuses a wrong key, a tampered chunk and a broken data map with typed exit codes, writing nothing", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  const content = randomBytes(150_000);
  await Deno.writeFile(join(cwd, "in.bin"), content);
  assert.equal(
    (await sluice([
      "seal",
      "in.bin",
      "--store",
      "store",
      "-o",
      "m.json",
      "--chunk-size",
      "64KiB",
    ], { cwd })).code,
    0,
  );
  await Deno.writeTextFile(join(cwd, "wrong.key"), "ab".repeat(32));
  const wrong = await sluice([
    "open",
    "m.json",
    "--key",
    "wrong.key",
    "--store",
    "store",
    "-o",
    "out.bin",
  ], { cwd });
  assert.equal(wrong.code, 3, wrong.stderr);
  assert.match(
    wrong.stderr,
    /^sluice open: Cannot decrypt: the key does not match the data map/,
  );

  const dataMap = JSON.parse(await Deno.readTextFile(join(cwd, "m.json")));
  const address = dataMap.chunks[1].address as string;
  const chunkPath = join(cwd, "store", address.slice(0, 2), address);
  const chunk = await Deno.readFile(chunkPath);
  chunk[100]! ^= 1;
  await Deno.writeFile(chunkPath, chunk);
  const tampered = await sluice([
    "open",
    "m.json",
    "--key",
    "m.key",
    "--store",
    "store",
    "-o",
    "out.bin",
  ], { cwd });
  assert.equal(tampered.code, 3, tampered.stderr);
  assert.match(
    tampered.stderr.trimEnd().split("\n").at(-1)!,
    /^sluice open: Cannot .*tag/,
  );

  await Deno.writeTextFile(join(cwd, "broken.json"), '{"format": "sluice/1"}');
  const broken = await sluice([
    "open",
    "broken.json",
    "--key",
    "m.key",
    "--store",
    "store",
    "-o",
    "out.bin",
  ], { cwd });
  assert.equal(broken.code, 4, broken.stderr);
  assert.match(
    broken.stderr,
    /^sluice open: Cannot use the data map broken\.json: /,
  );

  const notKey = await sluice([
    "open",
    "m.json",
    "--key",
    "in.bin",
    "--store",
    "store",
    "-o",
    "out.bin",
  ], { cwd });
  assert.equal(notKey.code, 2);
  assert.deepEqual(await names(cwd), [
    "broken.json",
    "in.bin",
    "m.json",
    "m.key",
    "store",
    "wrong.key",
  ]);
});

Deno.test("serve makes a directory a peer: seal into it over HTTP, open with failover from a dead peer, stop on SIGTERM", async () => {
  await using dir = await tempDir();
  const cwd = dir.path;
  await Deno.mkdir(join(cwd, "served"));
  const child = spawnSluice(["serve", "served", "--json"], { cwd });
  const errors = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    first += value;
  }
  const { url, port, dir: served } = JSON.parse(first);
  assert.equal(served, "served");
  assert.equal(url, `http://127.0.0.1:${port}/`);
  try {
    const content = randomBytes(300_000);
    await Deno.writeFile(join(cwd, "in.bin"), content);
    const sealed = await sluice([
      "seal",
      "in.bin",
      "--store",
      url,
      "-o",
      "m.json",
    ], { cwd });
    assert.equal(sealed.code, 0, sealed.stderr);
    const dataMap = JSON.parse(await Deno.readTextFile(join(cwd, "m.json")));
    for (const { address } of dataMap.chunks) {
      await Deno.stat(join(cwd, "served", address.slice(0, 2), address)); // on the peer's disk
    }
    const opened = await sluice([
      "open",
      "m.json",
      "--key",
      "m.key",
      "--store",
      "http://127.0.0.1:9/",
      "--store",
      url,
      "--to",
      "sqlite:./d.db#files",
      "--json",
    ], { cwd });
    assert.equal(opened.code, 0, opened.stderr);
    const receipt = jsonOf(opened);
    assert.equal(receipt.sink, "sqlite");
    assert.equal(receipt.location, "./d.db#files/1");
    assert.equal(receipt.sha256, sha256(content));
  } finally {
    await reader.cancel();
    child.kill("SIGTERM");
  }
  const { code } = await child.status;
  assert.equal(code, 0, await errors);
});

Deno.test("demo --size 8MiB seals, survives the faulty peer, verifies both sinks and removes everything it made", async () => {
  await using tmp = await tempDir();
  const run = await sluice(["demo", "--size", "8MiB", "--json"], {
    env: { TMPDIR: tmp.path },
  });
  assert.equal(run.code, 0, run.stderr);
  const result = jsonOf(run) as {
    size: number;
    sha256: string;
    chunks: number;
    faults: { kind: string; chunk: number; servedBy: string }[];
    failovers: number;
    retries: number;
    receipts: { sink: string; bytes: number; sha256: string }[];
    verified: { file: string; sqlite: string };
  };
  assert.equal(result.size, 8 * MiB);
  assert.equal(result.chunks, 8);
  assert.deepEqual(result.receipts.map((r) => [r.sink, r.bytes, r.sha256]), [
    ["file", 8 * MiB, result.sha256],
    ["sqlite", 8 * MiB, result.sha256],
  ]);
  assert.deepEqual(result.verified, {
    file: result.sha256,
    sqlite: result.sha256,
  });
  // The faulty peer is asked first, so its first requests fail, one way each.
  assert.deepEqual(result.faults.map((f) => f.kind).sort(), [
    "503",
    "corrupt",
    "cut",
  ]);
  for (const fault of result.faults) {
    assert.equal(fault.servedBy, "healthy peer");
  }
  assert.equal(result.failovers, result.faults.length);
  assert.deepEqual(await names(tmp.path), []);

  const human = await sluice(["demo", "--size", "1MiB"], {
    env: { TMPDIR: tmp.path },
  });
  assert.equal(human.code, 0, human.stderr);
  assert.match(
    human.stdout,
    /^verified {2}the file on disk and the SQLite rows/m,
  );
  assert.match(human.stdout, /^receipt {3}sqlite /m);
  assert.match(human.stderr, /^sealed {4}1 chunks? of 1\.0 MiB/m);
  assert.deepEqual(await names(tmp.path), []);
});

Deno.test("demo interrupted by SIGINT exits 130 and leaves nothing behind", async () => {
  await using tmp = await tempDir();
  const child = spawnSluice(["demo", "--size", "2GiB"], {
    env: { TMPDIR: tmp.path },
  });
  for (let i = 0; i < 200 && (await names(tmp.path)).length === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  await new Promise((r) => setTimeout(r, 200));
  child.kill("SIGINT");
  const { code, stderr } = await child.output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 130, text);
  assert.match(text, /^sluice demo: Cannot continue: interrupted$/m);
  assert.deepEqual(await names(tmp.path), []);
});

Deno.test("the CLI's module graph is compile-ready: static local, node: and npm: imports only, no reads of its own files", async () => {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0);
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: {
      specifier: string;
      kind?: string;
      dependencies?: { specifier: string; isDynamic?: boolean }[];
    }[];
  };
  const root = ROOT.href;
  const local = graph.modules.filter((m) => m.specifier.startsWith("file:"));
  assert.ok(local.length > 20);
  for (const module of graph.modules) {
    assert.ok(
      module.specifier.startsWith(root) ||
        module.specifier.startsWith("node:") ||
        module.specifier.startsWith("npm:"),
      `${module.specifier} is neither local, node: nor npm:`,
    );
    for (const dependency of module.dependencies ?? []) {
      assert.ok(
        !dependency.isDynamic,
        `${module.specifier} imports ${dependency.specifier} dynamically`,
      );
    }
  }
  for (const module of local) {
    const source = await Deno.readTextFile(new URL(module.specifier));
    const uses = source.match(
      /import\.meta\.(url|dirname|filename|resolve)|\bimport\(/g,
    );
    assert.equal(uses, null, `${module.specifier} uses ${uses}`);
  }
});
