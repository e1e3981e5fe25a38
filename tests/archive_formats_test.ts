// Benign archives made at test time by real tools (GNU tar, bsdtar, Info-ZIP
// zip, gzip, python3 tarfile and zipfile), installed with sluice and compared
// with what the real extractors (tar -x, unzip) produce; and install's
// refusals, budgets, replacement and clean-up on real archives.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  concatEntries,
  install,
  openArchive,
  untar,
  unzip,
} from "../archive/mod.ts";
import type { ArchiveEntry } from "../archive/types.ts";
import {
  CancelledError,
  FormatError,
  IntegrityError,
  LimitError,
  TargetExistsError,
  UnsafeEntryError,
  UnsupportedError,
} from "../core/errors.ts";
import { concat, MiB, sha256 } from "./_data.ts";
import { names, tempDir } from "./_fs.ts";
import {
  assertSameTree,
  buildTree,
  type Node,
  run,
  sh,
  snapshot,
  type TreeOptions,
} from "./_trees.ts";

type InstallOptions = NonNullable<Parameters<typeof install>[2]>;
type InstallResult = Awaited<ReturnType<typeof install>>;

/** Installs the archive at `archive` (any format openArchive sniffs) into `target`. */
async function installFile(
  archive: string,
  target: string,
  options: InstallOptions = {},
): Promise<InstallResult> {
  using file = await Deno.open(archive);
  return await install(openArchive(file.readable), target, options);
}

/**
 * Checks an InstallResult against the installed tree: the manifest lists
 * every file once with its size and SHA-256, the paths the archive gives as
 * hardlinks included (with their target's size and hash), and the counts and
 * the byte total (a hardlinked file written once) agree with it and the tree.
 */
function assertResult(
  result: InstallResult,
  tree: Map<string, Node>,
  hardlinks: readonly string[] = [],
) {
  const files = [...tree].filter(([, node]) => node.type === "file");
  const directories = [...tree].filter(([, n]) => n.type === "directory");
  for (const path of hardlinks) {
    assert.equal(tree.get(path)?.type, "file", `hardlink ${path} installed`);
  }
  const listed = result.manifest.map((m) => m.path).sort();
  assert.equal(new Set(listed).size, listed.length, "manifest paths unique");
  assert.deepEqual(
    listed,
    files.map(([path]) => path).sort(),
    "manifest: every file, hardlinks included",
  );
  for (const item of result.manifest) {
    const node = tree.get(item.path);
    assert.ok(node?.type === "file", item.path);
    assert.equal(item.size, node.size, `size of ${item.path}`);
    assert.equal(item.sha256, node.sha256, `sha256 of ${item.path}`);
  }
  assert.equal(result.files, files.length, "files");
  assert.equal(result.directories, directories.length, "directories");
  assert.equal(
    result.bytes,
    result.manifest.filter((m) => !hardlinks.includes(m.path))
      .reduce((n, m) => n + m.size, 0),
    "bytes: a hardlinked file counts once",
  );
}

const PY_TAR_HARDLINKS = `
import json, sys, tarfile
names = []
for path in sys.argv[1:]:
    with tarfile.open(path) as t:
        names += [m.name.removeprefix("./") for m in t.getmembers() if m.islnk()]
print(json.dumps(names))
`;

/** The names of the hardlink members of the tars at `paths`, as python's tarfile reads them. */
async function tarHardlinks(...paths: string[]): Promise<string[]> {
  return JSON.parse(
    new TextDecoder().decode(
      await run("python3", ["-c", PY_TAR_HARDLINKS, ...paths]),
    ),
  );
}

/** In an installed tree from buildTree, the hardlink and its target hold the same bytes. */
function assertHardlink(tree: Map<string, Node>, root = "pkg") {
  const prefix = root === "" ? "" : `${root}/`;
  const link = tree.get(`${prefix}hard.bin`);
  const target = tree.get(`${prefix}b513.bin`);
  assert.ok(link?.type === "file" && target?.type === "file");
  assert.equal(link.sha256, target.sha256);
  assert.equal(link.size, 513);
}

/**
 * Extracts `archive` into `<work>/A` with `extract`, installs it into
 * `<work>/out/B`, and checks the two trees are the same, nothing else is
 * left beside B, and the InstallResult describes B.
 */
async function compareWithExtractor(
  work: string,
  archive: string,
  extract: (into: string) => Promise<unknown>,
  hardlinks: readonly string[] = [],
): Promise<Map<string, Node>> {
  const a = join(work, "A");
  await Deno.mkdir(a);
  await extract(a);
  const out = join(work, "out");
  await Deno.mkdir(out);
  const b = join(out, "B");
  const result = await installFile(archive, b, { allowLinks: true });
  const tree = await assertSameTree(b, a);
  assert.deepEqual(await names(out), ["B"], "nothing left beside the target");
  assertResult(result, tree, hardlinks);
  return tree;
}

/** How to make one archive from `<src>/pkg` (or from anything under `src`). */
interface Case {
  name: string;
  tree?: TreeOptions;
  make: (src: string, archive: string) => Promise<unknown>;
  /** The tree holds pkg/hard.bin as a file (default true). */
  hardlink?: boolean;
}

const PY_TAR = `
import sys, tarfile
fmt = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}[sys.argv[1]]
with tarfile.open(sys.argv[2], "w", format=fmt) as t:
    t.add(sys.argv[3], arcname="pkg")
`;

const tarCases: Case[] = [
  {
    name: "GNU tar --format=ustar",
    tree: { long: false },
    make: (src, out) =>
      run("tar", ["--format=ustar", "-C", src, "-cf", out, "pkg"]),
  },
  {
    name: "GNU tar --format=pax",
    make: (src, out) =>
      run("tar", ["--format=pax", "-C", src, "-cf", out, "pkg"]),
  },
  {
    name: "GNU tar --format=gnu",
    make: (src, out) =>
      run("tar", ["--format=gnu", "-C", src, "-cf", out, "pkg"]),
  },
  {
    name: "bsdtar (default restricted pax)",
    make: (src, out) => run("bsdtar", ["-C", src, "-cf", out, "pkg"]),
  },
  {
    name: "bsdtar --format ustar",
    tree: { long: false },
    make: (src, out) =>
      run("bsdtar", ["--format", "ustar", "-C", src, "-cf", out, "pkg"]),
  },
  {
    name: "GNU tar -czf (gzip)",
    make: (src, out) => run("tar", ["-C", src, "-czf", out, "pkg"]),
  },
  {
    name: "a tar.gz of two concatenated gzip members",
    make: async (src, out) => {
      const tar = `${out}.tar`;
      await run("tar", ["--format=pax", "-C", src, "-cf", tar, "pkg"]);
      // Split in the middle of a block, so neither member holds whole blocks.
      const bytes = await Deno.readFile(tar);
      const half = Math.floor(bytes.length / 2) + 77;
      await Deno.writeFile(`${tar}.1`, bytes.subarray(0, half));
      await Deno.writeFile(`${tar}.2`, bytes.subarray(half));
      const first = await run("gzip", ["-c", `${tar}.1`]);
      const second = await run("gzip", ["-c", `${tar}.2`]);
      assert.deepEqual([...second.subarray(0, 3)], [0x1f, 0x8b, 8]);
      await Deno.writeFile(out, concat([first, second]));
      await Deno.remove(tar);
      await Deno.remove(`${tar}.1`);
      await Deno.remove(`${tar}.2`);
    },
  },
  {
    name: "python3 tarfile PAX_FORMAT",
    make: (src, out) =>
      run("python3", ["-c", PY_TAR, "pax", out, `${src}/pkg`]),
  },
  {
    name: "python3 tarfile GNU_FORMAT",
    make: (src, out) =>
      run("python3", ["-c", PY_TAR, "gnu", out, `${src}/pkg`]),
  },
  {
    name: "tar -C pkg -czf . (./-prefixed names and a ./ entry)",
    make: (src, out) => run("tar", ["-C", `${src}/pkg`, "-czf", out, "."]),
    hardlink: false,
  },
];

for (const c of tarCases) {
  Deno.test(`${c.name}: install gives the same tree as tar -x, and a manifest of it`, async () => {
    await using work = await tempDir();
    const src = join(work.path, "src");
    await buildTree(src, "pkg", c.tree);
    const archive = join(work.path, "archive");
    await c.make(src, archive);
    const tree = await compareWithExtractor(
      work.path,
      archive,
      (into) => run("tar", ["-xf", archive, "-C", into]),
      await tarHardlinks(archive),
    );
    if (c.hardlink ?? true) {
      assertHardlink(tree);
      assert.deepEqual(tree.get("pkg/dir/sub/link"), {
        type: "symlink",
        target: "../../one.bin",
      });
      assert.equal((tree.get("pkg/run.sh") as { mode: number }).mode, 0o755);
      assert.equal((tree.get("pkg/big.bin") as { size: number }).size, 3 * MiB);
    } else {
      assertHardlink(tree, "");
    }
  });
}

const PY_ZIP = `
import os, sys, zipfile
root = sys.argv[1]
with zipfile.ZipFile(sys.stdout.buffer, "w", zipfile.ZIP_DEFLATED) as z:
    for d, dirs, files in os.walk(root):
        dirs.sort(); files.sort()
        rel = os.path.relpath(d, os.path.dirname(root))
        z.write(d, rel)
        for f in files:
            z.write(os.path.join(d, f), os.path.join(rel, f))
`;

const zipCases: Case[] = [
  {
    name: "Info-ZIP zip -r (deflate)",
    make: (src, out) => run("zip", ["-q", "-r", out, "pkg"], src),
  },
  {
    name: "Info-ZIP zip -0 -r (stored)",
    make: (src, out) => run("zip", ["-q", "-0", "-r", out, "pkg"], src),
  },
  {
    name: "Info-ZIP zip -r -fz (zip64)",
    make: async (src, out) => {
      await run("zip", ["-q", "-r", "-fz", out, "pkg"], src);
      const listing = new TextDecoder().decode(
        await run("unzip", ["-Zv", out]),
      );
      assert.match(listing, /PKWARE 64-bit sizes/);
    },
  },
  {
    name: "Info-ZIP zip -r -y (symlinks stored as links)",
    make: (src, out) => run("zip", ["-q", "-r", "-y", out, "pkg"], src),
  },
  {
    name:
      "Info-ZIP zip -r - to a pipe (deflate + data descriptors, no empty file)",
    tree: { empty: false },
    make: (src, out) => sh(`zip -q -r - pkg | cat > "${out}"`, src),
  },
  {
    name:
      "Info-ZIP zip - - with a file on stdin, to a pipe (deflate + data descriptor)",
    make: (src, out) =>
      sh(`seq 1 20000 > seq.txt && zip -q - - < seq.txt | cat > "${out}"`, src),
    hardlink: false,
  },
  {
    name:
      "Info-ZIP echo data | zip out.zip - (a stdin entry zip marks as a fifo)",
    make: (src, out) => sh(`echo data | zip -q "${out}" -`, src),
    hardlink: false,
  },
  {
    name:
      "Info-ZIP echo data | zip - - to a pipe (fifo-marked stdin entry, deflate + data descriptor)",
    make: (src, out) => sh(`echo data | zip -q - - | cat > "${out}"`, src),
    hardlink: false,
  },
  {
    name: "python3 zipfile to a pipe (deflate + data descriptors)",
    make: (src, out) => sh(`python3 -c '${PY_ZIP}' pkg | cat > "${out}"`, src),
  },
];

for (const c of zipCases) {
  Deno.test(`${c.name}: install gives the same tree as unzip, and a manifest of it`, async () => {
    await using work = await tempDir();
    const src = join(work.path, "src");
    await buildTree(src, "pkg", c.tree);
    const archive = join(work.path, "archive.zip");
    await c.make(src, archive);
    const tree = await compareWithExtractor(
      work.path,
      archive,
      (into) => run("unzip", ["-q", archive, "-d", into]),
    );
    if (c.hardlink ?? true) {
      assertHardlink(tree);
      assert.equal((tree.get("pkg/run.sh") as { mode: number }).mode, 0o755);
    } else {
      assert.equal(tree.get("-")?.type, "file");
    }
  });
}

const PY_ZIP_LIST = `
import hashlib, json, sys, zipfile
out = []
with zipfile.ZipFile(sys.argv[1]) as z:
    for i in z.infolist():
        # Info-ZIP on Unix writes UTF-8 names without the UTF-8 flag; unzip
        # takes the bytes as they are, and so do we here.
        raw = i.filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437")
        out.append({"path": raw.decode("utf-8").rstrip("/"), "crc32": i.CRC,
                    "size": i.file_size, "dir": i.is_dir(),
                    "sha256": hashlib.sha256(z.read(i)).hexdigest()})
print(json.dumps(out))
`;

for (
  const [name, make] of [
    ["zip -r -y", "zip -q -r -y ../a.zip pkg"],
    [
      "python3 zipfile to a pipe",
      `python3 -c '${PY_ZIP}' pkg | cat > ../a.zip`,
    ],
  ] as const
) {
  Deno.test(`unzip (${name}): entries in central-directory order with paths, sizes, bytes and crc32 as python's zipfile reads them`, async () => {
    await using work = await tempDir();
    const src = join(work.path, "src");
    await buildTree(src, "pkg", { big: false });
    await sh(make, src);
    const archive = join(work.path, "a.zip");
    const expected = JSON.parse(
      new TextDecoder().decode(
        await run("python3", ["-c", PY_ZIP_LIST, archive]),
      ),
    ) as {
      path: string;
      crc32: number;
      size: number;
      dir: boolean;
      sha256: string;
    }[];
    using file = await Deno.open(archive);
    const seen = [];
    for await (const entry of unzip(file.readable)) {
      const bytes = new Uint8Array(
        await new Response(entry.body).arrayBuffer(),
      );
      seen.push({ entry, bytes });
    }
    assert.deepEqual(
      seen.map(({ entry }) => entry.path.replace(/\/$/, "")),
      expected.map((e) => e.path),
    );
    for (const [i, { entry, bytes }] of seen.entries()) {
      const want = expected[i]!;
      assert.equal(entry.type === "directory", want.dir, entry.path);
      if (entry.type === "directory") continue;
      assert.equal(entry.crc32, want.crc32, `crc32 of ${entry.path}`);
      assert.equal(entry.size, want.size, `size of ${entry.path}`);
      assert.equal(bytes.length, want.size, `bytes of ${entry.path}`);
      assert.equal(sha256(bytes), want.sha256, `sha256 of ${entry.path}`);
      // A zip symlink is known only from the central directory, after its
      // body (the target) was read: it has no linkTarget (documented).
      if (entry.type === "symlink") assert.equal(entry.linkTarget, undefined);
    }
    if (name === "zip -r -y") {
      const link = seen.find(({ entry }) => entry.path === "pkg/dir/sub/link");
      assert.equal(link?.entry.type, "symlink");
      assert.equal(new TextDecoder().decode(link?.bytes), "../../one.bin");
    }
  });
}

/** Reads every entry of `entries`, consuming each body. */
async function readAll(entries: AsyncIterable<ArchiveEntry>) {
  for await (const entry of entries) {
    await new Response(entry.body).arrayBuffer();
  }
}

const PY_STORED_PIPE = `
import sys, zipfile
with zipfile.ZipFile(sys.stdout.buffer, "w", zipfile.ZIP_STORED) as z:
    z.writestr("a.txt", b"hello world\\n")
    z.writestr("b.txt", b"second\\n")
`;

Deno.test("a stored entry with a data descriptor (python3 zipfile, ZIP_STORED to a pipe) is refused as ambiguous with FormatError", async () => {
  await using work = await tempDir();
  const archive = join(work.path, "stored.zip");
  await sh(`python3 -c '${PY_STORED_PIPE}' | cat > "${archive}"`);
  // It is what the test means: method 0 with general-purpose bit 3.
  const header = await Deno.readFile(archive);
  assert.equal(header[6]! & 0x08, 0x08, "data descriptor flag");
  assert.equal(header[8], 0, "stored");
  await run("unzip", ["-tq", archive]);
  {
    using file = await Deno.open(archive);
    await assert.rejects(readAll(unzip(file.readable)), FormatError);
  }
  const out = join(work.path, "out");
  await Deno.mkdir(out);
  await assert.rejects(installFile(archive, join(out, "B")), FormatError);
  assert.deepEqual(await names(out), []);
});

Deno.test("Info-ZIP zip -r - to a pipe stores an empty file with a data descriptor, and that is refused with FormatError", async () => {
  // zip writes a 0-byte file to a pipe as method 0 + bit 3: the same
  // ambiguous shape as above, made by the most common zip on Unix.
  await using work = await tempDir();
  const src = join(work.path, "src");
  await Deno.mkdir(join(src, "pkg"), { recursive: true });
  await Deno.writeTextFile(join(src, "pkg/a.txt"), "alpha\n".repeat(100));
  await Deno.writeFile(join(src, "pkg/empty.bin"), new Uint8Array(0));
  const archive = join(work.path, "piped.zip");
  await sh(`zip -q -r - pkg | cat > "${archive}"`, src);
  const shape = new TextDecoder().decode(
    await run("python3", [
      "-c",
      `import sys, zipfile; print([(i.compress_type, i.flag_bits & 8) for i in zipfile.ZipFile(sys.argv[1]).infolist() if i.filename == "pkg/empty.bin"])`,
      archive,
    ]),
  );
  assert.equal(shape.trim(), "[(0, 8)]");
  using file = await Deno.open(archive);
  await assert.rejects(readAll(unzip(file.readable)), FormatError);
});

for (
  const [name, args] of [
    ["GNU tar -S --format=gnu", ["-S", "--format=gnu"]],
    ["GNU tar -S --format=pax (sparse 0.0)", [
      "-S",
      "--format=pax",
      "--sparse-version=0.0",
    ]],
    ["GNU tar -S --format=pax (sparse 0.1)", [
      "-S",
      "--format=pax",
      "--sparse-version=0.1",
    ]],
    ["GNU tar -S --format=pax (sparse 1.0)", [
      "-S",
      "--format=pax",
      "--sparse-version=1.0",
    ]],
  ] as const
) {
  Deno.test(`untar of a sparse file from ${name} is UnsupportedError`, async () => {
    await using work = await tempDir();
    await sh(
      "truncate -s 10M sparse.img && printf hello | dd of=sparse.img bs=1 seek=5000000 conv=notrunc status=none",
      work.path,
    );
    const archive = join(work.path, "sparse.tar");
    await run("tar", [...args, "-cf", archive, "sparse.img"], work.path);
    // GNU tar really wrote a sparse member (python's tarfile sees through it).
    const listing = new TextDecoder().decode(
      await run("tar", ["-tvf", archive]),
    );
    assert.match(listing, /10485760/);
    assert.ok((await Deno.stat(archive)).size < MiB, "stored sparse");
    {
      using file = await Deno.open(archive);
      await assert.rejects(readAll(untar(file.readable)), (e) => {
        assert.ok(e instanceof UnsupportedError, String(e));
        assert.equal(e.format, "tar");
        return true;
      });
    }
    const out = join(work.path, "out");
    await Deno.mkdir(out);
    await assert.rejects(
      installFile(archive, join(out, "B")),
      UnsupportedError,
    );
    assert.deepEqual(await names(out), []);
  });
}

Deno.test("untar drains bodies left unread: iterating without reading gives every entry in archive order", async () => {
  await using work = await tempDir();
  const src = join(work.path, "src");
  await buildTree(src);
  const archive = join(work.path, "a.tar");
  await run("tar", ["--format=pax", "-C", src, "-cf", archive, "pkg"]);
  const listed = new TextDecoder().decode(
    await run("tar", ["--quoting-style=literal", "-tf", archive]),
  ).split("\n").filter((line) => line !== "").map((p) => p.replace(/\/$/, ""));
  using file = await Deno.open(archive);
  const entries = untar(file.readable);
  const seen: ArchiveEntry[] = [];
  for await (const entry of entries) seen.push(entry);
  assert.deepEqual(seen.map((e) => e.path.replace(/\/$/, "")), listed);
  assert.equal(entries.bytesRead, (await Deno.stat(archive)).size);
  const byPath = new Map(seen.map((e) => [e.path.replace(/\/$/, ""), e]));
  assert.equal(byPath.get("pkg/big.bin")?.size, 3 * MiB);
  assert.equal(byPath.get("pkg/big.bin")?.type, "file");
  assert.equal(byPath.get("pkg/dir")?.type, "directory");
  assert.equal(byPath.get("pkg/dir/sub/link")?.type, "symlink");
  assert.equal(byPath.get("pkg/dir/sub/link")?.linkTarget, "../../one.bin");
  assert.equal(byPath.get("pkg/run.sh")!.mode & 0o777, 0o755);
  // One of the two names of the hardlinked pair is the link.
  const pair = ["pkg/b513.bin", "pkg/hard.bin"].map((p) => byPath.get(p)!);
  assert.deepEqual(pair.map((e) => e.type).sort(), ["file", "hardlink"]);
  const link = pair.find((e) => e.type === "hardlink")!;
  const target = pair.find((e) => e.type === "file")!;
  assert.equal(link.linkTarget, target.path);
  assert.ok(seen.every((e) => e.crc32 === undefined), "no crc32 in tar");
});

// --- install on real archives -------------------------------------------------

/** A small tree of plain files and directories (no links), as `<work>/small.tar` (ustar). */
async function smallTar(work: string, extra: TreeOptions = {}) {
  const src = join(work, "src");
  await buildTree(src, "pkg", {
    big: false,
    long: false,
    symlink: false,
    hardlink: false,
    ...extra,
  });
  const archive = join(work, "small.tar");
  await run("tar", ["--format=ustar", "-C", src, "-cf", archive, "pkg"]);
  const out = join(work, "out");
  await Deno.mkdir(out);
  return { src, archive, out };
}

Deno.test("install into an existing target without replace is TargetExistsError and leaves the target as it was", async () => {
  await using work = await tempDir();
  const { archive, out } = await smallTar(work.path);
  const target = join(out, "target");
  await Deno.mkdir(target);
  await Deno.writeTextFile(join(target, "keep.txt"), "keep");
  await assert.rejects(installFile(archive, target), (e) => {
    assert.ok(e instanceof TargetExistsError, String(e));
    assert.equal(e.path, target);
    return true;
  });
  assert.deepEqual(await names(out), ["target"]);
  assert.deepEqual(await names(target), ["keep.txt"]);
  assert.equal(await Deno.readTextFile(join(target, "keep.txt")), "keep");
});

Deno.test("install with replace swaps in the new tree, removes the old one, and leaves no staging directory", async () => {
  await using work = await tempDir();
  const { src, archive, out } = await smallTar(work.path);
  const target = join(out, "target");
  await Deno.mkdir(join(target, "olddir"), { recursive: true });
  await Deno.writeTextFile(join(target, "old.txt"), "old");
  await Deno.writeTextFile(join(target, "olddir/x"), "x");
  const result = await installFile(archive, target, { replace: true });
  const tree = await assertSameTree(target, src);
  assertResult(result, tree);
  assert.deepEqual(await names(out), ["target"]);
});

Deno.test("install removes a stale <target>.installing-<hex> left by a crash", async () => {
  await using work = await tempDir();
  const { src, archive, out } = await smallTar(work.path);
  const stale = join(out, "target.installing-0123456789abcdef");
  await Deno.mkdir(stale);
  await Deno.writeTextFile(join(stale, "half-written.bin"), "partial");
  const old = new Date(Date.now() - 30 * 24 * 3600 * 1000);
  await Deno.utime(join(stale, "half-written.bin"), old, old);
  await Deno.utime(stale, old, old);
  const target = join(out, "target");
  await installFile(archive, target);
  await assertSameTree(target, src);
  assert.deepEqual(await names(out), ["target"]);
});

Deno.test("install checks an expected sha256 catalog: a full match installs, one mismatch is IntegrityError with no target", async () => {
  await using work = await tempDir();
  const { src, archive, out } = await smallTar(work.path);
  const expected: Record<string, string> = {};
  for (const [path, node] of await snapshot(src)) {
    if (node.type === "file") expected[path] = node.sha256;
  }
  assert.ok(Object.keys(expected).length >= 8);
  const good = join(out, "good");
  const result = await installFile(archive, good, { expected });
  assertResult(result, await assertSameTree(good, src));

  const wrong = { ...expected };
  wrong["pkg/b512.bin"] = wrong["pkg/b512.bin"]!.replace(
    /^./,
    (c) => c === "0" ? "1" : "0",
  );
  const bad = join(out, "bad");
  await assert.rejects(installFile(archive, bad, { expected: wrong }), (e) => {
    assert.ok(e instanceof IntegrityError, String(e));
    assert.equal(e.check, "sha256");
    return true;
  });
  assert.deepEqual(await names(out), ["good"]);
});

Deno.test("install accepts an expected catalog of every file on disk (sha256sum of the source tree) when two of them are one hardlinked file", async () => {
  // The catalog a user makes with `find pkg -type f | xargs sha256sum` lists
  // both names of a hardlinked pair; which one tar stores as the link
  // depends on directory order, so the catalog cannot know.
  await using work = await tempDir();
  const { src, archive, out } = await smallTar(work.path, { hardlink: true });
  const expected: Record<string, string> = {};
  for (const [path, node] of await snapshot(src)) {
    if (node.type === "file") expected[path] = node.sha256;
  }
  assert.ok("pkg/hard.bin" in expected && "pkg/b513.bin" in expected);
  assert.equal((await tarHardlinks(archive)).length, 1);
  const target = join(out, "target");
  await installFile(archive, target, { expected, allowLinks: true });
  await assertSameTree(target, src);
});

Deno.test("install budgets: maxEntries, maxDepth, maxFileBytes and maxBytes pass at the exact amount and are LimitError one below, leaving nothing", async () => {
  await using work = await tempDir();
  const { src, archive, out } = await smallTar(work.path);
  const listed = new TextDecoder().decode(
    await run("tar", ["--quoting-style=literal", "-tf", archive]),
  ).split("\n").filter((line) => line !== "").map((p) => p.replace(/\/$/, ""));
  const files = [...await snapshot(src)].flatMap(([, n]) =>
    n.type === "file" ? [n.size] : []
  );
  const amounts = {
    maxEntries: listed.length,
    maxDepth: Math.max(...listed.map((p) => p.split("/").length)),
    maxFileBytes: Math.max(...files),
    maxBytes: files.reduce((a, b) => a + b, 0),
  };
  assert.deepEqual(
    { ...amounts, maxBytes: undefined },
    { maxEntries: 12, maxDepth: 5, maxFileBytes: 513, maxBytes: undefined },
  );
  for (const [key, amount] of Object.entries(amounts)) {
    const ok = join(out, `ok-${key}`);
    await installFile(archive, ok, { [key]: amount });
    await Deno.remove(ok, { recursive: true });
    const target = join(out, `over-${key}`);
    await assert.rejects(
      installFile(archive, target, { [key]: amount - 1 }),
      (e) => {
        assert.ok(e instanceof LimitError, `${key}: ${e}`);
        assert.equal(e.limit, amount - 1, key);
        return true;
      },
    );
    assert.deepEqual(await names(out), [], key);
  }
});

Deno.test("install maxRatio: a tar.gz of 10 MiB of zeros over a ratio of 100 is LimitError, leaving nothing", async () => {
  await using work = await tempDir();
  await Deno.mkdir(join(work.path, "src/pkg"), { recursive: true });
  await Deno.writeFile(
    join(work.path, "src/pkg/zeros"),
    new Uint8Array(10 * MiB),
  );
  const archive = join(work.path, "zeros.tgz");
  await run("tar", ["-C", join(work.path, "src"), "-czf", archive, "pkg"]);
  const out = join(work.path, "out");
  await Deno.mkdir(out);
  await assert.rejects(
    installFile(archive, join(out, "B"), { maxRatio: 100 }),
    LimitError,
  );
  assert.deepEqual(await names(out), []);
});

Deno.test("install refuses links by default: a symlink, a hardlink, a zip -y symlink are UnsafeEntryError, leaving nothing", async () => {
  await using work = await tempDir();
  const src = join(work.path, "src");
  await buildTree(src, "sym", { big: false, hardlink: false });
  await buildTree(src, "hard", { big: false, symlink: false });
  const archives = [
    [
      "sym.tar",
      (to: string) => run("tar", ["--format=pax", "-C", src, "-cf", to, "sym"]),
    ],
    [
      "hard.tar",
      (to: string) =>
        run("tar", ["--format=pax", "-C", src, "-cf", to, "hard"]),
    ],
    ["sym.zip", (to: string) => run("zip", ["-q", "-r", "-y", to, "sym"], src)],
  ] as const;
  const out = join(work.path, "out");
  await Deno.mkdir(out);
  for (const [name, make] of archives) {
    await make(join(work.path, name));
    await assert.rejects(
      installFile(join(work.path, name), join(out, "B")),
      (e) => {
        assert.ok(e instanceof UnsafeEntryError, `${name}: ${e}`);
        return true;
      },
    );
    assert.deepEqual(await names(out), [], name);
  }
});

Deno.test("concatEntries installs two tars into one tree like two tar -x; a path in both is UnsafeEntryError, leaving nothing", async () => {
  await using work = await tempDir();
  const src = join(work.path, "src");
  await buildTree(src, "alpha", { big: false });
  await buildTree(src, "beta", { big: false, long: false });
  const a = join(work.path, "a.tar");
  const b = join(work.path, "b.tar");
  const c = join(work.path, "c.tar");
  await run("tar", ["--format=pax", "-C", src, "-cf", a, "alpha"]);
  await run("tar", ["--format=gnu", "-C", src, "-cf", b, "beta"]);
  await run("tar", ["--format=gnu", "-C", src, "-cf", c, "alpha/one.bin"]);
  const expected = join(work.path, "A");
  await Deno.mkdir(expected);
  await run("tar", ["-xf", a, "-C", expected]);
  await run("tar", ["-xf", b, "-C", expected]);
  const out = join(work.path, "out");
  await Deno.mkdir(out);
  {
    using fa = await Deno.open(a);
    using fb = await Deno.open(b);
    const result = await install(
      concatEntries(untar(fa.readable), untar(fb.readable)),
      join(out, "B"),
      { allowLinks: true },
    );
    const tree = await assertSameTree(join(out, "B"), expected);
    const hardlinks = await tarHardlinks(a, b);
    assert.equal(hardlinks.length, 2);
    assertResult(result, tree, hardlinks);
    assertHardlink(tree, "alpha");
    assertHardlink(tree, "beta");
  }
  {
    using fa = await Deno.open(a);
    using fc = await Deno.open(c);
    await assert.rejects(
      install(
        concatEntries(untar(fa.readable), untar(fc.readable)),
        join(out, "C"),
        { allowLinks: true },
      ),
      (e) => {
        assert.ok(e instanceof UnsafeEntryError, String(e));
        assert.equal(e.path, "alpha/one.bin");
        return true;
      },
    );
  }
  assert.deepEqual(await names(out), ["B"]);
});

Deno.test("install aborted mid-archive is CancelledError and leaves nothing", async () => {
  await using work = await tempDir();
  const src = join(work.path, "src");
  await buildTree(src);
  const archive = join(work.path, "a.tar");
  await run("tar", ["--format=pax", "-C", src, "-cf", archive, "pkg"]);
  const bytes = await Deno.readFile(archive);
  const controller = new AbortController();
  let at = 0;
  let cancelled = false;
  const source = new ReadableStream<Uint8Array>({
    pull(stream) {
      if (at >= bytes.length) return stream.close();
      if (at >= bytes.length / 2 && !controller.signal.aborted) {
        controller.abort();
      }
      stream.enqueue(bytes.slice(at, at + 65536));
      at += 65536;
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const out = join(work.path, "out");
  await Deno.mkdir(out);
  await assert.rejects(
    install(openArchive(source), join(out, "B"), {
      allowLinks: true,
      signal: controller.signal,
    }),
    CancelledError,
  );
  assert.ok(controller.signal.aborted);
  assert.ok(at < bytes.length, "stopped before the end");
  assert.ok(cancelled, "the source was cancelled");
  assert.deepEqual(await names(out), []);
});
