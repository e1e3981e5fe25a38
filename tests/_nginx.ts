// A real nginx serving a directory on a loopback port, for checking the range
// client against a production server rather than only against our own fakes.
// Everything nginx writes (pid, error log, temp files) goes to a temporary
// directory removed on dispose; the system nginx and its config are untouched.

/** A running nginx and the base URL of the directory it serves. */
export interface NginxServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>/` */
  url: string;
}

const NGINX_CANDIDATES = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"];
const START_TIMEOUT_MS = 5_000;

/** The nginx binary: /usr/sbin/nginx, /usr/local/sbin/nginx or the first on PATH; undefined if none. */
export function nginxPath(): string | undefined {
  const pathDirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d);
  for (
    const candidate of [
      ...NGINX_CANDIDATES,
      ...pathDirs.map((dir) => `${dir}/nginx`),
    ]
  ) {
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

/**
 * Starts nginx serving `root` (sendfile and ETags on, as in its defaults) on a
 * free loopback port, and resolves once it answers. Throws if nginx is not
 * installed: the tests need it, so CI must install it rather than skip them.
 */
export async function startNginx(root: string): Promise<NginxServer> {
  const binary = nginxPath();
  if (binary === undefined) {
    throw new Error(
      "NGINX IS MISSING: these tests run against a real nginx, and none was " +
        "found at /usr/sbin/nginx or on PATH. CI must install the Debian " +
        "package nginx-light (apt-get install -y nginx-light).",
    );
  }
  // The port is free when picked but only reserved once nginx binds it, so
  // retry with another port if something took it in between.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(binary, await Deno.realPath(root), freePort());
    } catch (error) {
      lastError = error;
      if (!String(error).includes("Address already in use")) throw error;
    }
  }
  throw lastError;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A double-quoted nginx config string. */
function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, "\\$&")}"`;
}

function configFor(dir: string, root: string, port: number): string {
  // master_process off: one process, which never switches to the `user`
  // account, so it can read a 0700 temporary root even when started as root.
  return `daemon off;
master_process off;
worker_processes 1;
pid ${quoted(`${dir}/nginx.pid`)};
error_log ${quoted(`${dir}/error.log`)} warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${quoted(`${dir}/client_body`)};
  proxy_temp_path ${quoted(`${dir}/proxy`)};
  fastcgi_temp_path ${quoted(`${dir}/fastcgi`)};
  uwsgi_temp_path ${quoted(`${dir}/uwsgi`)};
  scgi_temp_path ${quoted(`${dir}/scgi`)};
  default_type application/octet-stream;
  sendfile on;
  etag on;
  server {
    listen 127.0.0.1:${port};
    server_name localhost;
    root ${quoted(root)};
  }
}
`;
}

async function startOnce(
  binary: string,
  root: string,
  port: number,
): Promise<NginxServer> {
  const dir = await Deno.makeTempDir({ prefix: "nginx_test_" });
  const config = `${dir}/nginx.conf`;
  await Deno.writeTextFile(config, configFor(dir, root, port));
  // -e: the error log to use before the config is read (else /var/log/nginx).
  const child = new Deno.Command(binary, {
    args: ["-p", `${dir}/`, "-c", config, "-e", `${dir}/error.log`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.finally(() => exited = true);

  const stop = async (): Promise<string> => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // It exited just now.
      }
    }
    await status;
    let log = await stderr;
    try {
      log += await Deno.readTextFile(`${dir}/error.log`);
    } catch {
      // No log written.
    }
    await Deno.remove(dir, { recursive: true });
    return log;
  };

  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitUntilAnswering(url, () => exited);
  } catch (error) {
    const log = await stop();
    throw new Error(`nginx did not start: ${String(error)}\n${log}`, {
      cause: error,
    });
  }
  return {
    url,
    async [Symbol.asyncDispose](): Promise<void> {
      await stop();
    },
  };
}

/** Polls `url` until nginx answers at all; fails if it exits or times out. */
async function waitUntilAnswering(
  url: string,
  hasExited: () => boolean,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (hasExited()) throw new Error("nginx exited");
    try {
      const response = await fetch(url, { method: "HEAD" });
      await response.body?.cancel();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
