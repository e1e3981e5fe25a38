// sluice's SigV4 signer against botocore's (Debian's python3-botocore), for
// fixed credentials, times and requests: query strings, non-ASCII and
// reserved characters in keys, session tokens, unsigned payloads, presigning.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  presignUrl,
  type SigningScope,
  signRequest,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from "../sinks/_sigv4.ts";

const BOTO = new URL("./_boto_sign.py", import.meta.url).pathname;
const PYTHON = await Deno.stat("/usr/bin/python3").then(
  () => "/usr/bin/python3",
  () => "python3",
);

interface Case {
  date: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  expiresIn?: number;
  unsigned?: boolean;
}

async function botocore(cases: Case[]): Promise<Record<string, string>[]> {
  const child = new Deno.Command(PYTHON, {
    args: [BOTO],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(cases)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** The signing scope of a case: its credentials and region. */
function scopeOf(c: Case): SigningScope {
  return {
    credentials: {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
    },
    region: c.region,
  };
}

const base = {
  date: "20261121T234200Z",
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  region: "us-east-1",
};
const key = (k: string) => k.split("/").map((s) => uriEncode(s)).join("/");
const endpoint = "http://127.0.0.1:7480";

const headerCases: Case[] = [
  {
    ...base,
    method: "GET",
    url: `${endpoint}/my-bucket/${key("dir/naïve file (1)!*'.txt")}`,
    headers: { Range: "bytes=0-9", "If-Match": '"abc"' },
  },
  {
    ...base,
    region: "default",
    method: "PUT",
    url: `${endpoint}/my-bucket/${
      key("日本/データ+more.bin")
    }?partNumber=3&uploadId=2~Ab%2Fc`,
    headers: { "Content-Type": "application/octet-stream" },
    body: "hello, parts",
  },
  {
    ...base,
    method: "POST",
    url: `${endpoint}/my-bucket/a%20b?uploads`,
    sessionToken: "FwoGZXIvYXdzE//session+token=",
  },
  {
    ...base,
    method: "GET",
    url:
      `${endpoint}/my-bucket?list-type=2&prefix=a%2Fb&max-keys=5&continuation-token=x%3D%3D`,
  },
  { ...base, method: "HEAD", url: `${endpoint}/bkt/${"a".repeat(200)}` },
];

Deno.test("signRequest gives botocore's Authorization for queries, non-ASCII keys, tokens and payload hashes", async () => {
  const expected = await botocore(headerCases);
  for (const [i, c] of headerCases.entries()) {
    const want = expected[i]!;
    const payloadHash = want["x-amz-content-sha256"]!;
    if (c.body) {
      assert.equal(
        payloadHash,
        createHash("sha256").update(c.body).digest("hex"),
      );
    }
    const got = signRequest({
      method: c.method,
      url: new URL(c.url),
      headers: c.headers ?? {},
      payloadHash,
      date: new Date("2026-11-21T23:42:00Z"),
    }, scopeOf(c));
    assert.equal(got.authorization, want.authorization, c.url);
    assert.equal(got["x-amz-date"], want["x-amz-date"]);
    assert.equal(got["x-amz-security-token"], want["x-amz-security-token"]);
  }
});

Deno.test("signRequest with UNSIGNED-PAYLOAD, for bodies streamed without a hash, matches botocore", async () => {
  // botocore leaves a payload unsigned only over https.
  const https: Case = {
    ...base,
    method: "PUT",
    url: "https://s3.example.com/bucket/streamed.bin",
    body: "a body that is not hashed",
    unsigned: true,
  };
  const [want] = await botocore([https]);
  const got = signRequest({
    method: "PUT",
    url: new URL(https.url),
    payloadHash: want!["x-amz-content-sha256"]!,
    date: new Date("2026-11-21T23:42:00Z"),
  }, { credentials: base, region: base.region });
  assert.equal(want!["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
  assert.equal(got.authorization, want!.authorization);
});

Deno.test("presignUrl gives botocore's signature, for keys with spaces, non-ASCII and a session token", async () => {
  const cases: Case[] = [
    {
      ...base,
      method: "GET",
      url: `${endpoint}/bucket/${key("a b/ü€.txt")}`,
      expiresIn: 3600,
    },
    {
      ...base,
      method: "PUT",
      url: `${endpoint}/bucket/k%21`,
      expiresIn: 60,
      sessionToken: "tok/en+=",
    },
  ];
  const expected = await botocore(cases);
  for (const [i, c] of cases.entries()) {
    const want = new URL(expected[i]!.url!);
    const got = presignUrl({
      method: c.method,
      url: new URL(c.url),
      expiresIn: c.expiresIn!,
      date: new Date("2026-11-21T23:42:00Z"),
    }, scopeOf(c));
    assert.equal(got.pathname, want.pathname);
    assert.deepEqual(
      [...got.searchParams].sort(),
      [...want.searchParams].sort(),
      c.url,
    );
  }
});
