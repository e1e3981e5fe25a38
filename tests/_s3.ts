// The S3 tests' server: the Ceph RGW that scripts/local_s3.sh starts (.ci/run
// does, and exports SLUICE_S3_ENDPOINT), fresh buckets, listings, and a
// loopback proxy in front of RGW that injects faults.

import http from "node:http";
import { signRequest } from "../sinks/_sigv4.ts";
import type { S3Bucket } from "../sinks/s3.ts";

/** The keys scripts/local_s3.sh creates. */
export const credentials = {
  accessKeyId: "sluicetestaccesskey",
  secretAccessKey: "sluicetestsecretkey0123456789",
};
export const region = "default";

const configured = Deno.env.get("SLUICE_S3_ENDPOINT");
/** The RGW endpoint, or undefined when no cluster was started. */
export const endpoint: string | undefined = configured;
/** Tests that need RGW are ignored without one, except in CI, where they fail. */
export const ignore = configured === undefined && !Deno.env.get("CI");

/** The environment the CLI and parseSinkConfig read. */
export const awsEnv: Record<string, string> = {
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
};

function base(): string {
  if (endpoint === undefined) {
    throw new Error(
      "SLUICE_S3_ENDPOINT is not set: start scripts/local_s3.sh and export the endpoint it prints",
    );
  }
  return endpoint;
}

/** A signed request to RGW, outside the code under test. */
export async function s3Request(
  method: string,
  path: string,
  at: string = base(),
): Promise<Response> {
  const url = new URL(path, at);
  const headers = signRequest({ method, url }, { credentials, region });
  return await fetch(url, { method, headers });
}

/** A new, empty bucket with a unique name; returns where it is. */
export async function freshBucket(): Promise<S3Bucket & { endpoint: string }> {
  const bucket = `t-${crypto.randomUUID().slice(0, 18)}`;
  const response = await s3Request("PUT", `/${bucket}`);
  await response.body?.cancel();
  if (!response.ok) {
    throw new Error(`cannot create ${bucket}: ${response.status}`);
  }
  return { endpoint: base(), region, bucket, credentials };
}

function all(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, "g"))].map((
    m,
  ) => m[1]!);
}

/** The keys in a bucket (ListObjectsV2). */
export async function listKeys(bucket: string): Promise<string[]> {
  const response = await s3Request("GET", `/${bucket}?list-type=2`);
  const xml = await response.text();
  if (!response.ok) throw new Error(`cannot list ${bucket}: ${xml}`);
  return all(xml, "Key");
}

/** The keys of the multipart uploads still open in a bucket (ListMultipartUploads). */
export async function listUploads(bucket: string): Promise<string[]> {
  const response = await s3Request("GET", `/${bucket}?uploads`);
  const xml = await response.text();
  if (!response.ok) throw new Error(`cannot list uploads of ${bucket}: ${xml}`);
  return all(xml, "UploadId");
}

/** What the fault proxy saw of one request. */
export interface ProxiedRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
}

/**
 * A loopback HTTP proxy in front of RGW. `fault` may answer a request
 * itself (a status, and headers) instead of forwarding it. The Host header
 * is forwarded as sent, so signatures made for the proxy's address hold.
 */
export async function faultProxy(
  fault: (
    request: ProxiedRequest,
  ) => { status: number; headers?: Record<string, string> } | undefined,
): Promise<{ endpoint: string; requests: ProxiedRequest[] } & AsyncDisposable> {
  const upstream = new URL(base());
  const requests: ProxiedRequest[] = [];
  const server = http.createServer((req, res) => {
    const seen: ProxiedRequest = {
      method: req.method!,
      url: new URL(req.url!, "http://proxy"),
      headers: req.headers,
    };
    requests.push(seen);
    const answer = fault(seen);
    if (answer !== undefined) {
      req.resume(); // read and drop the body
      req.on("end", () => {
        res.writeHead(answer.status, {
          "content-type": "application/xml",
          ...answer.headers,
        });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InjectedFault</Code><Message>the proxy failed this request</Message></Error>`,
        );
      });
      return;
    }
    const forward = http.request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
