// Hostile archives: every way a tar, tar.gz or zip can try to write outside
// its target, smuggle entries past the checks, lie about its structure or
// blow up on extraction. Each case must fail with its exact typed error and
// leave the directory around the target as it was: no target, no staging
// directory, an existing target untouched, and the victims next to it
// unchanged. The corpus is written at test time by tests/_hostile.py.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type ArchiveEntries,
  install,
  type InstallOptions,
  openArchive,
  untar,
  unzip,
} from "../archive/mod.ts";
import {
  FormatError,
  IncompleteStreamError,
  IntegrityError,
  LimitError,
  type SluiceError,
  UnsafeEntryError,
  UnsupportedError,
} from "../core/errors.ts";
import { MiB, sha256 } from "./_data.ts";
import { names, tempDir } from "./_fs.ts";

// ------------------------------------------------------------ the corpus

let corpusDir: Promise<string> | undefined;

/** Runs tests/_hostile.py once, into a directory removed when the module unloads. */
function corpus(): Promise<string> {
  corpusDir ??= (async () => {
    const dir = await tempDir("sluice_hostile_corpus_");
    globalThis.addEventListener("unload", () => {
      Deno.removeSync(dir.path, { recursive: true });
    });
    const script = new URL("./_hostile.py", import.meta.url).pathname;
    const { code, stderr } = await new Deno.Command("python3", {
      args: [script, dir.path],
      stdout: "inherit",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(
        `_hostile.py failed (${code}): ${new TextDecoder().decode(stderr)}`,
      );
    }
    return dir.path;
  })();
  return corpusDir;
}

/** A stream of a file's bytes; the caller closes the file. */
function fileStream(file: Deno.FsFile): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(64 * 1024);
      const n = await file.read(buffer);
      if (n === null) controller.close();
      else controller.enqueue(buffer.subarray(0, n));
    },
  }, { highWaterMark: 0 });
}

type Provider = "open" | "untar" | "unzip";

function entriesOf(
  provider: Provider,
  source: ReadableStream<Uint8Array>,
): ArchiveEntries {
  if (provider === "untar") return untar(source);
  if (provider === "unzip") return unzip(source);
  return openArchive(source);
}

// ------------------------------------------------------------ the world around the target

/** Every path under `root`, with its type, permissions, content hash and link count. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string, rel: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      const key = rel ? `${rel}/${entry.name}` : entry.name;
      const info = await Deno.lstat(path);
      const mode = ((info.mode ?? 0) & 0o7777).toString(8);
      if (info.isSymlink) {
        out[key] = `symlink -> ${await Deno.readLink(path)}`;
      } else if (info.isDirectory) {
        out[key] = `dir ${mode}`;
        await walk(path, key);
      } else if (info.isFile) {
        out[key] =
          `file ${mode} nlink=${info.nlink} mtime=${info.mtime?.getTime()} ${
            sha256(await Deno.readFile(path))
          }`;
      } else {
        out[key] = `other ${mode}`;
      }
    }
  }
  await walk(root, "");
  return out;
}

/** What lies outside the temporary directory that an escape could reach. */
async function farOutside(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of ["/tmp/evil", "/tmp/x", "/tmp/pwned", "/evil"]) {
    try {
      const info = await Deno.lstat(path);
      out[path] = `${
        info.isSymlink ? "symlink" : "present"
      } ${info.mtime?.getTime()}`;
    } catch {
      out[path] = "absent";
    }
  }
  const passwd = await Deno.lstat("/etc/passwd");
  out["/etc/passwd"] = `nlink=${passwd.nlink} ${
    sha256(await Deno.readFile("/etc/passwd"))
  }`;
  return out;
}

type Mode = "into a new target" | "replacing an existing target";

/**
 * Installs the corpus file `name` into `<tmp>/target` beside a victim file
 * and an outside directory, checks that nothing around (or, with `replace`,
 * in) the target changed, and returns what install threw (or `undefined`).
 */
async function attempt(
  name: string,
  mode: Mode,
  options: InstallOptions,
  provider: Provider,
): Promise<unknown> {
  await using tmp = await tempDir("sluice_hostile_");
  const root = tmp.path;
  await Deno.mkdir(join(root, "victim"));
  await Deno.writeTextFile(join(root, "victim", "secret"), "victim secret\n");
  await Deno.mkdir(join(root, "outside"));
  const target = join(root, "target");
  const replace = mode === "replacing an existing target";
  if (replace) {
    await Deno.mkdir(join(target, "old"), { recursive: true });
    await Deno.writeTextFile(join(target, "old.txt"), "old contents\n");
    await Deno.writeTextFile(
      join(target, "ok"),
      "old file where ok/ would go\n",
    );
    await Deno.writeFile(join(target, "old", "keep.bin"), new Uint8Array(4096));
    await Deno.symlink("old.txt", join(target, "old-link"));
  }
  const before = await snapshot(root);
  const farBefore = await farOutside();

  const file = await Deno.open(join(await corpus(), name));
  // A hung install must fail the test, not the suite.
  const watchdog = new AbortController();
  const timer = setTimeout(
    () => watchdog.abort(new Error("install took over 30 s")),
    30_000,
  );
  let error: unknown;
  try {
    await install(entriesOf(provider, fileStream(file)), target, {
      ...options,
      replace,
      signal: watchdog.signal,
    });
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
    file.close();
  }

  const after = await snapshot(root);
  assert.deepEqual(
    after,
    before,
    `${name} (${mode}, ${describe(error)}): the tree around the target changed`,
  );
  assert.deepEqual(
    await names(root),
    replace ? ["outside", "target", "victim"] : ["outside", "victim"],
  );
  assert.deepEqual(await farOutside(), farBefore);
  return error;
}

/** Reads every entry and body of `name` with one provider; returns what it threw. */
async function readAll(name: string, provider: Provider): Promise<unknown> {
  const file = await Deno.open(join(await corpus(), name));
  try {
    for await (const entry of entriesOf(provider, fileStream(file))) {
      for await (const _ of entry.body) { /* drain, which also verifies */ }
    }
  } catch (e) {
    return e;
  } finally {
    file.close();
  }
  return undefined;
}

function describe(error: unknown): string {
  if (error === undefined) return "no error";
  if (!(error instanceof Error)) return `a non-error ${String(error)}`;
  const fields = Object.entries(error)
    .filter(([key]) => key !== "cause")
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(", ");
  return `${error.name}: ${error.message}${fields ? ` {${fields}}` : ""}`;
}

type ErrorClass<E extends SluiceError> = new (...args: never[]) => E;

/** Fails unless `error` is exactly one of `classes` (not a subclass). */
function assertExactly<E extends SluiceError>(
  error: unknown,
  classes: readonly ErrorClass<E>[],
  label: string,
): asserts error is E {
  const ok = classes.some((C) =>
    error instanceof C && (error as object).constructor === C
  );
  if (!ok) {
    assert.fail(
      `${label}: expected ${classes.map((C) => C.name).join(" or ")}, got ${
        describe(error)
      }`,
    );
  }
}

interface Case<E extends SluiceError> {
  /** The corpus file. */
  file: string;
  /** The exact error class (or the accepted classes). */
  error: ErrorClass<E> | readonly ErrorClass<E>[];
  /** Install options, one run per set; defaults to one run with none. */
  options?: readonly InstallOptions[];
  /** The provider install reads through; defaults to openArchive. */
  via?: Provider;
  /** Also read the file with this provider alone and expect the same error. */
  alone?: Provider;
  /** Further checks of the error. */
  check?: (error: E) => void;
}

/** Registers a test that installs `c.file` every way and expects `c.error` each time. */
function refuses<E extends SluiceError>(title: string, c: Case<E>): void {
  Deno.test(title, async (t) => {
    const classes: readonly ErrorClass<E>[] = typeof c.error === "function"
      ? [c.error]
      : c.error;
    for (const options of c.options ?? [{}]) {
      const how = Object.keys(options).length
        ? ` with ${JSON.stringify(options)}`
        : "";
      for (
        const mode of [
          "into a new target",
          "replacing an existing target",
        ] as const
      ) {
        await t.step(`${mode}${how}`, async () => {
          const error = await attempt(c.file, mode, options, c.via ?? "open");
          assertExactly(error, classes, `install ${c.file}`);
          c.check?.(error);
        });
      }
    }
    if (c.alone) {
      const alone = c.alone;
      await t.step(`${alone} alone`, async () => {
        const error = await readAll(c.file, alone);
        assertExactly(error, classes, `${alone} ${c.file}`);
        c.check?.(error);
      });
    }
  });
}

const LINKS: readonly InstallOptions[] = [{}, { allowLinks: true }];

/** Checks an UnsafeEntryError names the offending entry (one of `paths`, when the order of checks may pick either). */
const unsafe = (...paths: string[]) => (error: UnsafeEntryError) => {
  if (paths.length === 1) assert.equal(error.path, paths[0]);
  else if (paths.length > 1) {
    assert.ok(
      paths.includes(error.path),
      `path ${JSON.stringify(error.path)} is none of ${JSON.stringify(paths)}`,
    );
  }
  assert.ok(error.reason.length > 0);
};
const format = (name: string) => (error: FormatError | UnsupportedError) =>
  assert.equal(error.format, name);

// ------------------------------------------------------------ controls

/** Installs a control archive and returns the target, for checks. */
async function installControl(
  name: string,
  options: InstallOptions,
  check: (target: string) => Promise<void>,
): Promise<void> {
  await using tmp = await tempDir("sluice_hostile_");
  await Deno.mkdir(join(tmp.path, "victim"));
  const target = join(tmp.path, "target");
  const file = await Deno.open(join(await corpus(), name));
  try {
    await install(openArchive(fileStream(file)), target, options);
  } finally {
    file.close();
  }
  await check(target);
  assert.deepEqual(await names(tmp.path), ["target", "victim"]);
}

Deno.test("the generator's control tar installs, so the hostile tars fail for what they hold", async () => {
  await installControl("tar_good.tar", {}, async (target) => {
    assert.equal(
      await Deno.readTextFile(join(target, "ok/hello.txt")),
      "hello\n",
    );
    const data = await Deno.readFile(join(target, "ok/sub/data.bin"));
    assert.equal(data.length, 10240);
    assert.equal(data[255], 255);
    assert.equal(
      await Deno.readTextFile(join(target, "ok/run.sh")),
      "#!/bin/sh\n",
    );
  });
});

Deno.test("the generator's control tar with in-tree links installs with allowLinks", async () => {
  await installControl(
    "tar_good_links.tar",
    { allowLinks: true },
    async (t) => {
      assert.equal(await Deno.readLink(join(t, "ok/link")), "hello.txt");
      assert.equal(await Deno.readTextFile(join(t, "ok/link")), "hello\n");
      assert.equal(await Deno.readTextFile(join(t, "ok/up")), "hello\n");
      assert.equal(await Deno.readTextFile(join(t, "ok/hard")), "hello\n");
    },
  );
});

Deno.test("the generator's control tar.gz installs", async () => {
  await installControl("tar_good.tgz", {}, async (target) => {
    assert.equal(
      await Deno.readTextFile(join(target, "ok/more.txt")),
      "x".repeat(5000),
    );
  });
});

Deno.test("the generator's control zips install, stored, deflated and with a data descriptor", async () => {
  const text = "the quick brown fox jumps over the lazy dog\n".repeat(50);
  await installControl("zip_good.zip", {}, async (target) => {
    assert.equal(
      await Deno.readTextFile(join(target, "ok/hello.txt")),
      "hello\n",
    );
    assert.equal(await Deno.readTextFile(join(target, "ok/stored.txt")), text);
    assert.equal(
      await Deno.readTextFile(join(target, "ok/deflated.txt")),
      text,
    );
  });
  await installControl("zip_good_dd.zip", {}, async (target) => {
    assert.equal(await Deno.readTextFile(join(target, "ok/dd.txt")), text);
  });
});

// ------------------------------------------------------------ tar: names that climb out

refuses("install refuses a tar entry named ../evil", {
  file: "tar_dotdot.tar",
  error: UnsafeEntryError,
  check: unsafe("../evil"),
});

refuses("install refuses a tar entry named ok/../../evil", {
  file: "tar_nested_dotdot.tar",
  error: UnsafeEntryError,
  check: unsafe("ok/../../evil"),
});

refuses("install refuses an absolute tar entry /tmp/evil", {
  file: "tar_absolute.tar",
  error: UnsafeEntryError,
  check: unsafe("/tmp/evil"),
});

refuses(
  "install refuses a pax path override to ../x on an innocent ustar name",
  {
    file: "tar_pax_path.tar",
    error: UnsafeEntryError,
    check: unsafe("../x"),
  },
);

refuses(
  "install refuses a GNU longname (L) to ../x on an innocent ustar name",
  {
    file: "tar_gnu_longname.tar",
    error: UnsafeEntryError,
    check: unsafe("../x"),
  },
);

refuses(
  "install refuses a GNU longlink (K) that points a symlink at ../outside",
  {
    file: "tar_gnu_longlink.tar",
    error: UnsafeEntryError,
    options: LINKS,
    check: unsafe("l"),
  },
);

// ------------------------------------------------------------ tar: links

refuses(
  "install refuses a directory d replaced by a symlink d and a file d/x written through it",
  {
    file: "tar_dir_then_symlink.tar",
    error: UnsafeEntryError,
    options: LINKS,
    check: unsafe(),
  },
);

refuses("install refuses a lone symlink l -> ../outside", {
  file: "tar_symlink_escape_alone.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("l"),
});

refuses("install refuses a symlink l -> ../outside and l/pwned through it", {
  file: "tar_symlink_escape.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("l", "l/pwned"),
});

refuses("install refuses an absolute symlink l -> /etc", {
  file: "tar_symlink_absolute.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("l"),
});

refuses("install refuses a lone symlink l -> ..", {
  file: "tar_symlink_dotdot_alone.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("l"),
});

refuses("install refuses a symlink l -> .. and then l/secret", {
  file: "tar_symlink_dotdot.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("l", "l/secret"),
});

refuses(
  "install refuses a symlink that only escapes through another symlink (b -> a/a/../.. with a -> .)",
  {
    file: "tar_symlink_chain.tar",
    error: UnsafeEntryError,
    options: LINKS,
    check: unsafe(),
  },
);

refuses("install refuses a hardlink to ../victim/secret", {
  file: "tar_hardlink_victim.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("h"),
});

refuses("install refuses a hardlink to /etc/passwd", {
  file: "tar_hardlink_passwd.tar",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("h"),
});

refuses("install refuses in-tree links unless allowLinks", {
  file: "tar_good_links.tar",
  error: UnsafeEntryError,
  check: unsafe("ok/link"),
});

// ------------------------------------------------------------ tar: collisions

refuses("install refuses a case collision README + readme", {
  file: "tar_case_collision.tar",
  error: UnsafeEntryError,
  check: unsafe("readme"),
});

refuses("install refuses an NFC/NFD collision (precomposed é vs e + U+0301)", {
  file: "tar_nfc_collision.tar",
  error: UnsafeEntryError,
  check: unsafe("cafe\u0301.txt"),
});

refuses("install refuses a duplicate file name", {
  file: "tar_duplicate.tar",
  error: UnsafeEntryError,
  check: unsafe("dup.txt"),
});

refuses("install refuses a file replaced by a directory of the same name", {
  file: "tar_file_then_dir.tar",
  error: UnsafeEntryError,
  check: unsafe(),
});

// ------------------------------------------------------------ tar: types and modes

refuses("install refuses a fifo", {
  file: "tar_fifo.tar",
  error: UnsupportedError,
  alone: "untar",
  check: format("tar"),
});

refuses("install refuses a character device", {
  file: "tar_chardev.tar",
  error: UnsupportedError,
  alone: "untar",
  check: format("tar"),
});

refuses("install refuses a block device", {
  file: "tar_blockdev.tar",
  error: UnsupportedError,
  alone: "untar",
  check: format("tar"),
});

refuses("install refuses a GNU sparse file", {
  file: "tar_sparse.tar",
  error: UnsupportedError,
  alone: "untar",
  check: format("tar"),
});

refuses("install refuses a setuid file (mode 0o4755)", {
  file: "tar_setuid.tar",
  error: UnsafeEntryError,
  check: unsafe("suid"),
});

refuses("install refuses a setgid file (mode 0o2755)", {
  file: "tar_setgid.tar",
  error: UnsafeEntryError,
  check: unsafe("sgid"),
});

// ------------------------------------------------------------ tar: structure

refuses(
  "install refuses a symlink header with a size whose data is a second tar header",
  {
    file: "tar_symlink_with_data.tar",
    error: FormatError,
    options: LINKS,
    alone: "untar",
    check: format("tar"),
  },
);

refuses(
  "install refuses a directory header with a size whose data is a second tar header",
  {
    file: "tar_dir_with_data.tar",
    error: FormatError,
    alone: "untar",
    check: format("tar"),
  },
);

refuses(
  "install refuses a 50 MB pax comment record over the 1 MiB metadata cap",
  {
    file: "tar_pax_50mb.tar",
    error: LimitError,
    alone: "untar",
    check: (error) => assert.equal(error.limit, MiB),
  },
);

refuses("install refuses a tar header with a bad checksum", {
  file: "tar_bad_checksum.tar",
  error: FormatError,
  alone: "untar",
  check: format("tar"),
});

refuses("install refuses garbage where the tar end blocks belong", {
  file: "tar_garbage_end.tar",
  error: FormatError,
  alone: "untar",
  check: format("tar"),
});

refuses("install refuses a tar cut inside its first header", {
  file: "tar_trunc_first_header.tar",
  error: IncompleteStreamError,
  via: "untar",
  alone: "untar",
});

refuses("install refuses a tar cut inside a later header", {
  file: "tar_trunc_header.tar",
  error: IncompleteStreamError,
  alone: "untar",
});

refuses("install refuses a tar cut inside an entry's data", {
  file: "tar_trunc_data.tar",
  error: IncompleteStreamError,
  alone: "untar",
});

refuses("install refuses a tar cut inside an entry's padding", {
  file: "tar_trunc_padding.tar",
  error: IncompleteStreamError,
  alone: "untar",
});

refuses("install refuses a tar without its end blocks", {
  file: "tar_no_end_blocks.tar",
  error: IncompleteStreamError,
  alone: "untar",
});

refuses("install refuses a truncated tar.gz", {
  file: "tgz_truncated.tgz",
  error: IncompleteStreamError,
  alone: "open",
});

// ------------------------------------------------------------ tar.gz: bombs

refuses("install stops a 2 GiB gzip bomb at maxBytes 64 MiB", {
  file: "tgz_bomb.tgz",
  error: LimitError,
  options: [{ maxBytes: 64 * MiB }],
  check: (error) => assert.equal(error.limit, 64 * MiB),
});

refuses("install stops a 2 GiB gzip bomb at maxRatio 100", {
  file: "tgz_bomb.tgz",
  error: LimitError,
  options: [{ maxRatio: 100 }],
  check: (error) => assert.equal(error.limit, 100),
});

refuses("install stops a 2 GiB gzip bomb at maxFileBytes 8 MiB", {
  file: "tgz_bomb.tgz",
  error: LimitError,
  options: [{ maxFileBytes: 8 * MiB }],
  check: (error) => assert.equal(error.limit, 8 * MiB),
});

// ------------------------------------------------------------ tar: names no file system should see

refuses("install refuses a backslash in a name (a\\b)", {
  file: "tar_backslash.tar",
  error: UnsafeEntryError,
  check: unsafe("a\\b"),
});

refuses("install refuses backslash climbing (..\\..\\evil)", {
  file: "tar_backslash_dotdot.tar",
  error: UnsafeEntryError,
  check: unsafe("..\\..\\evil"),
});

refuses("install refuses a drive letter (C:/x)", {
  file: "tar_drive.tar",
  error: UnsafeEntryError,
  check: unsafe("C:/x"),
});

refuses("install refuses a control character in a name (a\\x07b)", {
  file: "tar_control.tar",
  error: UnsafeEntryError,
  check: unsafe("a\x07b"),
});

refuses("install refuses a newline in a name (a\\nb)", {
  file: "tar_newline.tar",
  error: UnsafeEntryError,
  check: unsafe("a\nb"),
});

refuses("install refuses a NUL in a pax path (a\\0b)", {
  file: "tar_pax_nul.tar",
  error: UnsafeEntryError,
  check: unsafe("a\0b"),
});

refuses("install refuses an empty name", {
  file: "tar_empty_name.tar",
  error: UnsafeEntryError,
  check: unsafe(""),
});

// ------------------------------------------------------------ zip: structure

refuses("install refuses a zip whose local and central names differ", {
  file: "zip_name_mismatch.zip",
  error: FormatError,
  alone: "unzip",
  check: format("zip"),
});

refuses("install refuses a zip with two central records on one local header", {
  file: "zip_overlap.zip",
  error: FormatError,
  alone: "unzip",
  check: format("zip"),
});

refuses(
  "install refuses a zip whose central directory points a second name at an earlier local header",
  {
    file: "zip_central_points_elsewhere.zip",
    error: FormatError,
    alone: "unzip",
    check: format("zip"),
  },
);

refuses(
  "install refuses a stored zip entry whose data disagrees with a consistent CRC-32",
  {
    file: "zip_crc.zip",
    error: IntegrityError,
    alone: "unzip",
    check: (error) => assert.equal(error.check, "crc32"),
  },
);

refuses(
  "install refuses a deflated zip entry whose data disagrees with a consistent CRC-32",
  {
    file: "zip_crc_deflate.zip",
    error: IntegrityError,
    alone: "unzip",
    check: (error) => assert.equal(error.check, "crc32"),
  },
);

refuses(
  "install refuses a deflated zip entry that inflates to more than its declared size",
  {
    file: "zip_size_smaller.zip",
    error: IntegrityError,
    alone: "unzip",
    check: (error) => assert.equal(error.check, "size"),
  },
);

refuses(
  "install refuses a deflated zip entry that inflates to less than its declared size",
  {
    file: "zip_size_bigger.zip",
    error: IntegrityError,
    alone: "unzip",
    check: (error) => assert.equal(error.check, "size"),
  },
);

refuses(
  "install refuses a stored zip entry whose local header claims fewer bytes than the central record",
  {
    file: "zip_stored_size_lie.zip",
    error: FormatError,
    alone: "unzip",
    check: format("zip"),
  },
);

refuses(
  "install refuses a stored zip entry with a data descriptor as ambiguous",
  {
    file: "zip_stored_dd.zip",
    error: FormatError,
    alone: "unzip",
    check: (error) => {
      assert.equal(error.format, "zip");
      assert.match(error.reason, /ambiguous/i);
    },
  },
);

refuses<IntegrityError | FormatError>(
  "install refuses a deflated zip entry whose data descriptor lies",
  {
    file: "zip_fake_dd.zip",
    error: [IntegrityError, FormatError],
    alone: "unzip",
  },
);

refuses("install refuses junk before the first zip local header", {
  file: "zip_prepended.zip",
  error: FormatError,
  alone: "unzip",
});

refuses("install refuses junk after the zip end of central directory", {
  file: "zip_appended.zip",
  error: FormatError,
  alone: "unzip",
  check: format("zip"),
});

refuses("install refuses a zip without its central directory", {
  file: "zip_truncated_no_central.zip",
  error: IncompleteStreamError,
  alone: "unzip",
});

refuses("install refuses a zip cut inside an entry's data", {
  file: "zip_truncated_data.zip",
  error: IncompleteStreamError,
  alone: "unzip",
});

// ------------------------------------------------------------ zip: features

refuses("install refuses an encrypted zip entry", {
  file: "zip_encrypted.zip",
  error: UnsupportedError,
  alone: "unzip",
  check: (error) => {
    assert.equal(error.format, "zip");
    assert.match(error.feature, /encrypt/i);
  },
});

refuses("install refuses a bzip2 (method 12) zip entry", {
  file: "zip_bzip2.zip",
  error: UnsupportedError,
  alone: "unzip",
  check: format("zip"),
});

refuses("install refuses a split zip (spanning signature at the start)", {
  file: "zip_split_marker.zip",
  error: UnsupportedError,
  alone: "unzip",
  check: format("zip"),
});

refuses("install refuses a split zip (disk numbers in the end record)", {
  file: "zip_split_disk.zip",
  error: UnsupportedError,
  alone: "unzip",
  check: format("zip"),
});

// ------------------------------------------------------------ zip: names

refuses("install refuses a zip entry named ../x", {
  file: "zip_dotdot.zip",
  error: UnsafeEntryError,
  check: unsafe("../x"),
});

refuses("install refuses a zip entry named ok/../../x", {
  file: "zip_nested_dotdot.zip",
  error: UnsafeEntryError,
  check: unsafe("ok/../../x"),
});

refuses("install refuses a zip entry named ..\\x", {
  file: "zip_backslash_dotdot.zip",
  error: UnsafeEntryError,
  check: unsafe("..\\x"),
});

refuses("install refuses an absolute zip entry /tmp/evil", {
  file: "zip_absolute.zip",
  error: UnsafeEntryError,
  check: unsafe("/tmp/evil"),
});

refuses("install refuses a zip symlink l -> ../outside", {
  file: "zip_symlink_escape.zip",
  error: UnsafeEntryError,
  options: LINKS,
  check: unsafe("l"),
});
