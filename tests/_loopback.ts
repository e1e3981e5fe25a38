// A Deno.serve server on 127.0.0.1 for tests, closed with `await using`.

/** A running loopback server and the base URL it answers on. */
export interface LoopbackServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>/` */
  url: string;
}

/** Starts `handler` on a free loopback port. */
export function serveLoopback(
  handler: (request: Request) => Response | Promise<Response>,
): LoopbackServer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
