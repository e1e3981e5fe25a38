// AWS Signature Version 4 for S3 requests and presigned URLs, on node:crypto
// HMAC-SHA-256 (synchronous and native). Checked against botocore's signer in
// tests/s3_sigv4_test.ts.

import { createHash, createHmac } from "node:crypto";

/** Access keys, as the environment's AWS_* variables give them. */
export interface S3Credentials {
  /** AWS_ACCESS_KEY_ID */
  accessKeyId: string;
  /** AWS_SECRET_ACCESS_KEY */
  secretAccessKey: string;
  /** AWS_SESSION_TOKEN, for temporary credentials. */
  sessionToken?: string;
}

/** What a request is signed for. */
export interface SigningScope {
  credentials: S3Credentials;
  region: string;
  /** Defaults to `"s3"`. */
  service?: string;
}

/** The payload hash S3 accepts when the body is not hashed in advance. */
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** The SHA-256 of the empty string, the payload hash of bodiless requests. */
export const EMPTY_SHA256 =
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const encoder = new TextEncoder();

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ */
export function uriEncode(text: string, keepSlash = false): string {
  let out = "";
  for (const byte of encoder.encode(text)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** `20261121T234200Z` */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function hmac(key: string | Uint8Array, data: string): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The canonical URI: each path segment decoded, then encoded once. */
function canonicalPath(url: URL): string {
  return url.pathname.split("/").map((segment) =>
    uriEncode(decodeURIComponent(segment))
  ).join("/") || "/";
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params].map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort(([a, x], [b, y]) =>
      a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : x! > y! ? 1 : 0
    )
    .map(([k, v]) => `${k}=${v}`).join("&");
}

function signature(
  scope: SigningScope,
  stamp: string,
  canonicalRequest: string,
): { credential: string; signature: string } {
  const day = stamp.slice(0, 8);
  const service = scope.service ?? "s3";
  const credentialScope = `${day}/${scope.region}/${service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    stamp,
    credentialScope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  let key = hmac(`AWS4${scope.credentials.secretAccessKey}`, day);
  for (const part of [scope.region, service, "aws4_request"]) {
    key = hmac(key, part);
  }
  return {
    credential: `${scope.credentials.accessKeyId}/${credentialScope}`,
    signature: hex(hmac(key, stringToSign)),
  };
}

/** A request to sign. */
export interface SignInput {
  method: string;
  url: URL;
  /** Headers to send and sign (host and the x-amz-* ones are added). */
  headers?: Record<string, string>;
  /** The body's SHA-256 (hex), or {@linkcode UNSIGNED_PAYLOAD}. Defaults to the empty body's. */
  payloadHash?: string;
  /** The signing time. Defaults to now. */
  date?: Date;
}

/**
 * Signs a request with an `Authorization` header; returns every header to
 * send (the given ones, `x-amz-date`, `x-amz-content-sha256`, and
 * `x-amz-security-token` with a session token). `host` is signed but left
 * for `fetch` to send.
 */
export function signRequest(
  input: SignInput,
  scope: SigningScope,
): Record<string, string> {
  const stamp = amzDate(input.date ?? new Date());
  const payloadHash = input.payloadHash ?? EMPTY_SHA256;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    headers[name.toLowerCase()] = value;
  }
  headers["x-amz-date"] = stamp;
  headers["x-amz-content-sha256"] = payloadHash;
  if (scope.credentials.sessionToken) {
    headers["x-amz-security-token"] = scope.credentials.sessionToken;
  }
  const signed: Record<string, string> = { ...headers, host: input.url.host };
  const names = Object.keys(signed).sort();
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalPath(input.url),
    canonicalQuery(input.url.searchParams),
    ...names.map((n) => `${n}:${signed[n]!.trim().replace(/\s+/g, " ")}`),
    "",
    names.join(";"),
    payloadHash,
  ].join("\n");
  const { credential, signature: sig } = signature(
    scope,
    stamp,
    canonicalRequest,
  );
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credential}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${sig}`;
  return headers;
}

/** A presigned URL: anyone holding it may make this one request until it expires. */
export function presignUrl(
  input: { method: string; url: URL; expiresIn: number; date?: Date },
  scope: SigningScope,
): URL {
  const stamp = amzDate(input.date ?? new Date());
  const url = new URL(input.url);
  const day = stamp.slice(0, 8);
  const service = scope.service ?? "s3";
  url.searchParams.set("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  url.searchParams.set(
    "X-Amz-Credential",
    `${scope.credentials.accessKeyId}/${day}/${scope.region}/${service}/aws4_request`,
  );
  url.searchParams.set("X-Amz-Date", stamp);
  url.searchParams.set("X-Amz-Expires", String(input.expiresIn));
  url.searchParams.set("X-Amz-SignedHeaders", "host");
  if (scope.credentials.sessionToken) {
    url.searchParams.set(
      "X-Amz-Security-Token",
      scope.credentials.sessionToken,
    );
  }
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalPath(url),
    canonicalQuery(url.searchParams),
    `host:${url.host}`,
    "",
    "host",
    UNSIGNED_PAYLOAD,
  ].join("\n");
  const { signature: sig } = signature(scope, stamp, canonicalRequest);
  url.search = `${canonicalQuery(url.searchParams)}&X-Amz-Signature=${sig}`;
  return url;
}
