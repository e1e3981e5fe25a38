// `sluice seal`, `sluice open` and `sluice serve`: sealed chunks in stores and
// peers.

import { basename } from "node:path";
import { AtomicFile } from "../core/atomic_file.ts";
import {
  type ChunkStore,
  type DataMap,
  decryptStream,
  dirStore,
  httpStore,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  multiStore,
  parseDataMap,
  seal,
  servePeer,
  type Suite,
  SUITES,
} from "../core/chunks.ts";
import { TargetExistsError } from "../core/errors.ts";
import { fileSink } from "../sinks/file.ts";
import { parseSinkConfig } from "../sinks/config.ts";
import { parseS3Url, s3Store } from "../sinks/s3.ts";
import type { Sink } from "../sinks/types.ts";
import { writableSink } from "../sinks/writable.ts";
import {
  expectPositionals,
  flag,
  parseHex32,
  parseInteger,
  parseRange,
  parseSize,
  stringOf,
  stringsOf,
  UsageError,
} from "./_args.ts";
import { type Command, exists, Failure } from "./_command.ts";
import { formatBytes, formatRate, toHex } from "./_output.ts";

/** A store from `--store`: an s3:// URL is a bucket, another URL a peer, anything else a directory. */
export function storeOf(spec: string): ChunkStore {
  if (/^s3:\/\//i.test(spec)) {
    try {
      const at = parseS3Url(spec);
      return s3Store({ ...at, prefix: at.key });
    } catch (error) {
      if (error instanceof TypeError) {
        throw new UsageError(`--store: ${error.message}`);
      }
      throw error;
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    if (!/^https?:\/\//i.test(spec)) {
      throw new UsageError(
        `--store must be a directory, an http(s):// peer or an s3:// bucket, got "${spec}"`,
      );
    }
    return httpStore(spec);
  }
  return dirStore(spec);
}

function storesOf(specs: readonly string[]): ChunkStore[] {
  if (specs.length === 0) {
    throw new UsageError(
      "missing --store, a directory, an http(s):// peer or an s3:// bucket",
    );
  }
  return specs.map(storeOf);
}

/** `sluice seal` */
export const sealCommand: Command = {
  name: "seal",
  summary: "encrypt a file into content-addressed chunks in a store",
  help:
    `Usage: sluice seal <file|-> --store <dir|url>... [-o DATAMAP] [--key-file FILE | --print-key]
                   [--chunk-size N] [--suite SUITE] [--convergent] [--replicas N] [--force]

Splits the file (or stdin, with -) into chunks, encrypts each, and stores them
by the SHA-256 of their sealed bytes in a directory, on an HTTP peer
("sluice serve") or in an S3 bucket. Writes the data map (the list of chunks; no secret) to
DATAMAP and the 32-byte key, as hex, to a separate file created with mode 0600.
Both are written only once every chunk is stored.

Options:
  --store DIR|URL      where the chunks go; repeat it to spread them over several.
                       A URL is a peer (http://…) or a bucket and key prefix
                       (s3://bucket/prefix?endpoint=URL&region=NAME; keys from
                       AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
  -o, --output FILE    the data map (default <file>.datamap.json; - prints it)
  --key-file FILE      the key (default: the data map's name with .key for .json)
  --print-key          print the key on stdout instead of writing a key file
  --chunk-size N       plaintext bytes per chunk, 64KiB to 16MiB (default 1MiB)
  --suite SUITE        aes-256-gcm (default) or xchacha20-poly1305
  --convergent         derive the key from the content, so identical files give
                       identical chunks (needs a file, not stdin)
  --replicas N         with several stores, keep each chunk on N of them
  --force              replace existing data map and key files`,
  options: {
    store: { type: "string", multiple: true },
    output: { type: "string", short: "o" },
    "key-file": { type: "string" },
    "print-key": { type: "boolean" },
    "chunk-size": { type: "string" },
    suite: { type: "string" },
    convergent: { type: "boolean" },
    replicas: { type: "string" },
    force: { type: "boolean" },
  },
  async run(parsed, { output, signal }) {
    const [input] = expectPositionals(parsed, ["the file to seal (or -)"]);
    const stores = storesOf(stringsOf(parsed, "store"));
    const fromStdin = input === "-";
    const convergent = flag(parsed, "convergent");
    if (convergent && fromStdin) {
      throw new UsageError(
        "--convergent reads the input twice: give a file, not -",
      );
    }
    const mapPath = stringOf(parsed, "output") ??
      (fromStdin ? undefined : `${basename(input!)}.datamap.json`);
    if (mapPath === undefined) {
      throw new UsageError(
        "missing -o DATAMAP (reading stdin, there is no name to derive it from)",
      );
    }
    const printKey = flag(parsed, "print-key");
    const keyOption = stringOf(parsed, "key-file");
    if (printKey && keyOption) {
      throw new UsageError("give --key-file or --print-key, not both");
    }
    if (mapPath === "-" && (printKey || !keyOption)) {
      throw new UsageError(
        "with -o - the data map takes stdout: give --key-file FILE for the key",
      );
    }
    const keyPath = printKey
      ? undefined
      : keyOption ?? `${mapPath.replace(/\.json$/i, "")}.key`;
    const suite = stringOf(parsed, "suite") ?? "aes-256-gcm";
    if (!SUITES.includes(suite as Suite)) {
      throw new UsageError(
        `--suite must be one of ${SUITES.join(", ")}, got "${suite}"`,
      );
    }
    const chunkText = stringOf(parsed, "chunk-size");
    const chunkSize = chunkText
      ? parseSize(chunkText, "--chunk-size")
      : undefined;
    if (
      chunkSize !== undefined &&
      (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE)
    ) {
      throw new UsageError("--chunk-size must be from 64KiB to 16MiB");
    }
    const replicasText = stringOf(parsed, "replicas");
    const replicas = replicasText
      ? parseInteger(replicasText, "--replicas", 1)
      : 1;
    if (replicas > stores.length) {
      throw new UsageError(
        `--replicas ${replicas} needs as many --store options, got ${stores.length}`,
      );
    }
    const force = flag(parsed, "force");
    for (const path of [mapPath === "-" ? undefined : mapPath, keyPath]) {
      if (path && !force && await exists(path)) {
        throw new Failure(
          `Cannot write ${path}: it already exists (--force replaces it)`,
        );
      }
    }

    let total: number | undefined;
    if (!fromStdin) {
      const info = await Deno.stat(input!).catch((error) => {
        throw new Failure(`Cannot seal ${input}: ${error.message}`, 1, {
          cause: error,
        });
      });
      if (!info.isFile) {
        throw new Failure(`Cannot seal ${input}: it is not a file`);
      }
      total = info.size;
    }
    const openSource = () =>
      fromStdin ? Deno.stdin.readable : openReadable(input!);
    const progress = output.progress("seal", total);
    let sealed = 0;
    const started = performance.now();
    let result;
    try {
      result = await seal(
        convergent ? openSource : openSource(),
        stores.length === 1 ? stores[0]! : stores,
        {
          suite: suite as Suite,
          ...(chunkSize ? { chunkSize } : {}),
          convergent,
          replicas,
          signal,
          retry: { onRetry: () => progress.retry() },
          onProgress(event) {
            sealed += event.bytes;
            progress.update(sealed);
          },
        },
      );
    } finally {
      progress.done();
    }
    const elapsed = performance.now() - started;
    const { dataMap, key, stored, skipped } = result;
    const mapText = `${JSON.stringify(dataMap, null, 2)}\n`;
    if (keyPath) await writeFile(keyPath, `${toHex(key)}\n`, 0o600, force);
    if (mapPath === "-") {
      output.stdoutTaken = true;
      output.stdout(mapText);
    } else {
      await writeFile(mapPath, mapText, 0o644, force);
    }
    output.result({
      dataMap: mapPath === "-" ? null : mapPath,
      keyFile: keyPath ?? null,
      ...(printKey ? { key: toHex(key) } : {}),
      size: dataMap.size,
      chunks: dataMap.chunks.length,
      stored,
      skipped,
      suite: dataMap.suite,
      chunkSize: dataMap.chunkSize,
      ms: Math.round(elapsed),
    }, () => [
      `sealed ${
        formatBytes(dataMap.size)
      } into ${dataMap.chunks.length} chunks ` +
      `(${stored} stored, ${skipped} already there) at ${
        formatRate(dataMap.size, elapsed)
      }`,
      ...(mapPath === "-" ? [] : [`data map  ${mapPath}`]),
      ...(keyPath
        ? [`key       ${keyPath} (mode 0600; keep it apart from the data map)`]
        : []),
      ...(printKey ? [`key       ${toHex(key)}`] : []),
    ]);
  },
};

function openReadable(path: string): ReadableStream<Uint8Array> {
  // Opened lazily, so a convergent seal opens it once per pass.
  let file: Deno.FsFile | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      file ??= await Deno.open(path);
      reader ??= file.readable.getReader();
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader?.cancel(reason);
      if (!reader) file?.close();
    },
  }, { highWaterMark: 0 });
}

async function writeFile(
  path: string,
  text: string,
  mode: number,
  overwrite: boolean,
): Promise<void> {
  await using file = await AtomicFile.create(path, { mode, overwrite });
  await file.write(new TextEncoder().encode(text));
  await file.commit();
}

async function readDataMap(path: string): Promise<DataMap> {
  let text;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Failure(
      `Cannot read the data map ${path}: ${(error as Error).message}`,
      1,
      { cause: error },
    );
  }
  try {
    return parseDataMap(text);
  } catch (error) {
    throw new Failure(
      `Cannot use the data map ${path}: ${(error as Error).message}`,
      4,
      { cause: error },
    );
  }
}

async function readKey(path: string): Promise<Uint8Array> {
  let text;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Failure(
      `Cannot read the key ${path}: ${(error as Error).message}`,
      1,
      { cause: error },
    );
  }
  if (!/^\s*[0-9a-fA-F]{64}\s*$/.test(text)) {
    throw new UsageError(`--key ${path} does not hold a key (64 hex digits)`);
  }
  const digits = parseHex32(text, "--key");
  return Uint8Array.from(digits.match(/../g)!, (h) => parseInt(h, 16));
}

/** `sluice open` */
export const openCommand: Command = {
  name: "open",
  summary:
    "decrypt a sealed file from stores or peers to a file, stdout or a sink",
  help:
    `Usage: sluice open <datamap.json> --key FILE --store <dir|url>... [--range A-B]
                   [-o FILE | --to SINK] [--concurrency N] [--force]

Fetches the chunks of the data map (from the first store that has each, failing
over to the next), checks and decrypts them, and delivers the plaintext to
FILE, to a sink, or to stdout. Prints the delivery receipt (on stderr when the
plaintext goes to stdout).

Options:
  --key FILE           the key file that "sluice seal" wrote
  --store DIR|URL      where the chunks are (a directory, http://… peer or
                       s3://bucket/prefix); repeat it for failover
  --range A-B          only bytes A to B, both included (A- for A to the end)
  -o, --output FILE    write a file (atomically: it appears complete or not at all)
  --to SINK            a sink: a path, sqlite:DB#TABLE, an https:// webhook,
                       s3://bucket/key?endpoint=URL&region=NAME, or a JSON sink
                       configuration
  --concurrency N      chunks fetched ahead (default 4)
  --force              replace FILE if it exists`,
  options: {
    key: { type: "string" },
    store: { type: "string", multiple: true },
    range: { type: "string" },
    output: { type: "string", short: "o" },
    to: { type: "string" },
    concurrency: { type: "string" },
    force: { type: "boolean" },
  },
  async run(parsed, { output, signal }) {
    const [mapPath] = expectPositionals(parsed, ["the data map"]);
    const keyPath = stringOf(parsed, "key");
    if (!keyPath) throw new UsageError("missing --key FILE");
    const stores = storesOf(stringsOf(parsed, "store"));
    const rangeText = stringOf(parsed, "range");
    const range = rangeText ? parseRange(rangeText, "--range") : undefined;
    const concurrencyText = stringOf(parsed, "concurrency");
    const concurrency = concurrencyText
      ? parseInteger(concurrencyText, "--concurrency", 1)
      : 4;
    const to = stringOf(parsed, "to");
    const file = stringOf(parsed, "output");
    if (to && file) throw new UsageError("give -o FILE or --to SINK, not both");
    let sink: Sink;
    if (file) sink = fileSink(file, { overwrite: flag(parsed, "force") });
    else if (to) {
      try {
        sink = parseSinkConfig(to);
      } catch (error) {
        if (error instanceof TypeError) {
          throw new UsageError(`--to: ${error.message}`);
        }
        throw error;
      }
    } else {
      if (Deno.stdout.isTerminal()) {
        throw new UsageError(
          "the plaintext would go to the terminal: give -o FILE or --to SINK, or redirect stdout",
        );
      }
      output.stdoutTaken = true;
      sink = writableSink(Deno.stdout.writable, { location: "stdout" });
    }
    const dataMap = await readDataMap(mapPath!);
    const key = await readKey(keyPath);
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? dataMap.size, dataMap.size);
    if (start > dataMap.size) {
      throw new UsageError(
        `--range starts at ${start}, past the end of the ${dataMap.size}-byte file`,
      );
    }
    const progress = output.progress("open", end - start);
    const started = performance.now();
    let receipt;
    try {
      const plaintext = decryptStream(
        dataMap,
        key,
        stores.length === 1 ? stores[0]! : multiStore(stores),
        {
          start,
          end,
          concurrency,
          signal,
          onProgress(event) {
            if (event.type === "progress") progress.update(event.delivered);
            else if (event.type === "retry") progress.retry();
          },
        },
      );
      receipt = await sink.deliver(plaintext, {
        name: basename(mapPath!).replace(/\.datamap\.json$|\.json$/i, ""),
        size: end - start,
      }, { signal });
    } catch (error) {
      if (error instanceof TargetExistsError) {
        throw new Failure(`${error.message} (--force replaces it)`, 1, {
          cause: error,
        });
      }
      throw error;
    } finally {
      progress.done();
    }
    const elapsed = performance.now() - started;
    output.result({ ...receipt, retries: progress.retries }, () => [
      `delivered ${formatBytes(receipt.bytes)} to ` +
      (receipt.sink === "writable"
        ? receipt.location
        : `${receipt.sink} ${receipt.location}`) +
      " " +
      `at ${formatRate(receipt.bytes, elapsed)}` +
      (progress.retries ? `, after ${progress.retries} chunk retries` : ""),
      `sha256 ${receipt.sha256}`,
    ]);
  },
};

/** `sluice serve` */
export const serveCommand: Command = {
  name: "serve",
  summary: "serve a chunk directory to other machines as an HTTP peer",
  help: `Usage: sluice serve <dir> [--port N] [--hostname HOST]

Serves the chunk store in <dir> over HTTP until Ctrl-C or SIGTERM:
GET and HEAD /chunks/<address> read chunks, and PUT stores one after checking
that its SHA-256 is its address ("sluice seal --store http://…" uses it).
Prints the URL to give other commands' --store.

Options:
  --port N             the port (default: a free one)
  --hostname HOST      the address to listen on (default 127.0.0.1; anyone who
                       can reach it can read and add chunks)`,
  options: {
    port: { type: "string" },
    hostname: { type: "string" },
  },
  async run(parsed, { output, signal }) {
    const [dir] = expectPositionals(parsed, ["the directory to serve"]);
    const portText = stringOf(parsed, "port");
    const port = portText ? parseInteger(portText, "--port") : 0;
    if (port > 65535) throw new UsageError("--port must be at most 65535");
    const info = await Deno.stat(dir!).catch(() => undefined);
    if (!info?.isDirectory) {
      throw new Failure(`Cannot serve ${dir}: it is not a directory`);
    }
    const hostname = stringOf(parsed, "hostname") ?? "127.0.0.1";
    let peer;
    try {
      peer = servePeer(dirStore(dir!), { hostname, port });
    } catch (error) {
      throw new Failure(
        `Cannot listen on ${hostname}:${port}: ${(error as Error).message}`,
        1,
        { cause: error },
      );
    }
    await using _peer = peer;
    output.result(
      { url: peer.url, port: peer.port, dir },
      () => [`serving ${dir} at ${peer.url} (Ctrl-C stops)`],
    );
    await new Promise((resolve) => {
      if (signal.aborted) resolve(undefined);
      signal.addEventListener("abort", resolve, { once: true });
    });
  },
};
