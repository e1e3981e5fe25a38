/**
 * Build a sink from configuration: a short string from a command line
 * (`./out.bin`, `file:…`, `https://…`, `sqlite:./db.sqlite#table`,
 * `s3://bucket/key`) or a JSON
 * object from a config file (`{ "type": "webhook", "url": … }`), each
 * validated with a precise message.
 *
 * @example
 * ```ts
 * import { parseSinkConfig } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const sink = parseSinkConfig({ type: "file", path: `${dir}/out.txt` });
 * const receipt = await sink.deliver(ReadableStream.from([new TextEncoder().encode("configured")]));
 * assert.equal(receipt.sink, "file");
 * assert.throws(() => parseSinkConfig({ type: "file" }), TypeError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { SpillStore } from "../spill/mod.ts";
import { fileSink, type FileSinkOptions } from "./file.ts";
import { parseS3Url, s3Sink, type S3SinkOptions } from "./s3.ts";
import { sqliteSink } from "./sqlite.ts";
import type { Sink } from "./types.ts";
import { webhookSink, type WebhookSinkOptions } from "./webhook.ts";

/** What {@linkcode parseSinkConfig} adds that configuration cannot say. */
export interface SinkConfigOptions {
  /**
   * A spill store: webhook bodies of any size can then be retried, and S3
   * parts waiting for a retry wait on disk.
   */
  spill?: SpillStore;
  /** Reads an environment variable (S3 credentials, endpoint, region); defaults to `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

type Json = Record<string, unknown>;

const NOT_YET = new Map([
  ["database", "databases other than SQLite are"],
]);

function fail(config: unknown, problem: string): never {
  const text = typeof config === "string"
    ? JSON.stringify(config)
    : JSON.stringify(config)?.slice(0, 120) ?? String(config);
  throw new TypeError(`Cannot use ${text} as a sink: ${problem}`);
}

/** Reads the fields of `config` that `fields` allows, checking their types. */
function fields<T extends Json>(
  config: Json,
  allowed: Record<
    string,
    "string" | "number" | "boolean" | "object" | "string[]"
  >,
  required: readonly string[],
): T {
  for (const name of required) {
    if (config[name] === undefined) fail(config, `"${name}" is required`);
  }
  for (const [name, value] of Object.entries(config)) {
    if (name === "type") continue;
    const kind = allowed[name];
    if (kind === undefined) {
      fail(config, `unknown field "${name}" for type "${config.type}"`);
    }
    const ok = kind === "string[]"
      ? Array.isArray(value) && value.every((v) => typeof v === "string")
      : kind === "object"
      ? typeof value === "object" && value !== null && !Array.isArray(value)
      : kind === "number"
      ? typeof value === "number" && Number.isFinite(value)
      : kind === "boolean"
      ? typeof value === "boolean"
      : typeof value === "string";
    if (!ok) {
      fail(
        config,
        `"${name}" must be ${
          kind === "string[]" ? "a list of strings" : `a ${kind}`
        }`,
      );
    }
  }
  return config as T;
}

function headersOf(
  config: Json,
  value: unknown,
): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const entries = Object.entries(value as Json);
  for (const [name, v] of entries) {
    if (typeof v !== "string") {
      fail(config, `header "${name}" must be a string`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function fromObject(config: Json, options: SinkConfigOptions): Sink {
  const type = config.type;
  if (typeof type !== "string") fail(config, `"type" must be a string`);
  const notYet = NOT_YET.get(type);
  if (notYet) fail(config, `${notYet} not supported yet`);
  switch (type) {
    case "file": {
      const c = fields<Json & FileSinkOptions & { path: string }>(config, {
        path: "string",
        root: "string",
        overwrite: "boolean",
        mode: "number",
      }, ["path"]);
      const { path, type: _, ...rest } = c;
      return fileSink(path, rest);
    }
    case "webhook": {
      const c = fields<Json>(config, {
        url: "string",
        method: "string",
        headers: "object",
        contentType: "string",
        metadataHeaders: "boolean",
        timeoutMs: "number",
        maxAttempts: "number",
        maxBufferBytes: "number",
        maxRedirects: "number",
        allowPrivateNetwork: "boolean",
        allowedHosts: "string[]",
      }, ["url"]);
      let url: URL;
      try {
        url = new URL(c.url as string);
      } catch {
        fail(config, `"url" is not a valid URL`);
      }
      const { type: _, url: __, maxAttempts, headers, ...rest } = c;
      const webhook = {
        ...rest,
        ...(headers === undefined
          ? {}
          : { headers: headersOf(config, headers) }),
        ...(maxAttempts === undefined
          ? {}
          : { retry: { maxAttempts: maxAttempts as number } }),
        ...(options.spill ? { spill: options.spill } : {}),
      } as WebhookSinkOptions;
      return webhookSink(url, webhook);
    }
    case "sqlite": {
      const c = fields<Json & { path: string; table?: string }>(config, {
        path: "string",
        table: "string",
      }, ["path"]);
      return sqliteSink(
        c.path,
        c.table === undefined ? {} : { table: c.table },
      );
    }
    case "s3": {
      const c = fields<Json & { bucket: string; key: string }>(config, {
        bucket: "string",
        key: "string",
        endpoint: "string",
        region: "string",
        partSize: "number",
        concurrency: "number",
        maxAttempts: "number",
        contentType: "string",
      }, ["bucket", "key"]);
      const query = new URLSearchParams();
      if (c.endpoint !== undefined) query.set("endpoint", c.endpoint as string);
      if (c.region !== undefined) query.set("region", c.region as string);
      const { type: _, bucket, key, endpoint: __, region: ___, ...rest } = c;
      return s3SinkOf(config, `s3://${bucket}/?${query}`, key, rest, options);
    }
    case "channel":
      return fail(
        config,
        `a channel has a reader in this process; make it in code with channel()`,
      );
    default:
      return fail(
        config,
        `unknown type "${type}" (expected file, webhook, sqlite or s3)`,
      );
  }
}

function fromString(text: string, options: SinkConfigOptions): Sink {
  if (text.length === 0) fail(text, "it is empty");
  if (text.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      fail(text, `it is not valid JSON (${(error as Error).message})`);
    }
    return parseSinkConfig(parsed, options);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined || /^[a-z]$/i.test(scheme)) {
    return fileSink(text); // a path (a one-letter "scheme" is a Windows drive)
  }
  switch (scheme) {
    case "file":
      return fileSink(
        text.startsWith("file://") ? fileURLToPath(text) : text.slice(5),
      );
    case "http":
    case "https":
      return fromObject({ type: "webhook", url: text }, options);
    case "sqlite": {
      const [path, table, ...more] = text.slice(7).split("#");
      if (!path) fail(text, "the database path is empty");
      if (more.length > 0) fail(text, `more than one "#"`);
      return fromObject(
        { type: "sqlite", path, ...(table ? { table } : {}) },
        options,
      );
    }
    case "s3": {
      const key = /^s3:\/\/[^/?#]*\/([^?#]*)/i.exec(text)?.[1] ?? "";
      return s3SinkOf(text, text, key, {}, options);
    }
    default:
      return fail(
        text,
        `unknown scheme "${scheme}:" (expected a path, file:, http:, https:, sqlite: or s3:)`,
      );
  }
}

// An s3Sink from an s3:// URL (the key given apart) and the environment.
function s3SinkOf(
  config: unknown,
  url: string,
  key: string,
  rest: Json,
  options: SinkConfigOptions,
): Sink {
  if (key === "") fail(config, "the object key is empty");
  try {
    const at = parseS3Url(url, options.env ? { env: options.env } : {});
    const { maxAttempts, ...tuning } = rest;
    return s3Sink({
      ...at,
      key,
      ...tuning as Partial<S3SinkOptions>,
      ...(maxAttempts === undefined
        ? {}
        : { retry: { maxAttempts: maxAttempts as number } }),
      ...(options.spill ? { spill: options.spill } : {}),
    });
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError)) {
      throw error;
    }
    return fail(config, error.message.replace(/^Cannot [^:]*: /, ""));
  }
}

/**
 * Makes a sink from configuration.
 *
 * Strings: a path (`./out.bin`, `/srv/out.bin`), `file:<path>` or a
 * `file://` URL (file sink); `http://…` or `https://…` (webhook sink with its
 * defaults); `sqlite:<path>` or `sqlite:<path>#<table>` (SQLite sink);
 * `s3://<bucket>/<key>?endpoint=<url>&region=<name>` (S3 sink; the options
 * are optional, see `parseS3Url` in `@sluice/sluice/s3` for the
 * environment it reads); a string starting with `{` is parsed as JSON.
 *
 * Objects, by `type`:
 * - `file`: `path` (required), `root`, `overwrite`, `mode`;
 * - `webhook`: `url` (required), `method`, `headers`, `contentType`,
 *   `metadataHeaders`, `timeoutMs`, `maxAttempts`, `maxBufferBytes`,
 *   `maxRedirects`, `allowPrivateNetwork`, `allowedHosts`;
 * - `sqlite`: `path` (required), `table`;
 * - `s3`: `bucket` and `key` (required), `endpoint`, `region`, `partSize`,
 *   `concurrency`, `maxAttempts`, `contentType`. Credentials come only from
 *   the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
 *   `AWS_SESSION_TOKEN`), never from configuration.
 *
 * `channel` exists only in code; `database` is recognised and refused as
 * not supported yet.
 *
 * @param config The string or object.
 * @param options What configuration cannot carry (a spill store, the environment).
 * @returns The sink; nothing is opened or written until it delivers.
 * @throws {TypeError} On anything it cannot use, naming the field and the problem.
 *
 * @example Short strings
 * ```ts
 * import { parseSinkConfig } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * parseSinkConfig("./out.bin");
 * parseSinkConfig("https://hooks.example.com/in");
 * parseSinkConfig("sqlite:./deliveries.db#inbox");
 * const env = { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret" } as Record<string, string>;
 * parseSinkConfig("s3://backups/db.gz?endpoint=http://127.0.0.1:7480&region=default", { env: (name) => env[name] });
 * assert.throws(() => parseSinkConfig("s3://backups/", { env: (name) => env[name] }), /the object key is empty/);
 * assert.throws(() => parseSinkConfig({ type: "webhook", url: "https://a.example", retries: 3 }), /unknown field "retries"/);
 * ```
 */
export function parseSinkConfig(
  config: unknown,
  options: SinkConfigOptions = {},
): Sink {
  if (typeof config === "string") return fromString(config.trim(), options);
  if (typeof config === "object" && config !== null && !Array.isArray(config)) {
    return fromObject(config as Json, options);
  }
  return fail(config, "expected a string or an object");
}
