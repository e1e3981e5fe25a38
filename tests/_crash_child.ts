// The child of the crash test in range_crash_test.ts: downloads one URL to
// one path with small checkpoints, printing `checkpoint <offset>` as each
// becomes durable and, on success, the receipt as one JSON line. The parent
// kills it with SIGKILL at checkpoints of its choosing.
//
//   deno run -A tests/_crash_child.ts <url> <path> <sha256> <checkpointBytes>

import { download } from "../core/range.ts";

const [url, path, sha256, checkpointBytes] = Deno.args;
const out = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(out.encode(`${line}\n`));

const receipt = await download(url!, path!, {
  sha256: sha256!,
  checkpointBytes: Number(checkpointBytes),
  onProgress(event) {
    if (event.type === "checkpoint") say(`checkpoint ${event.offset}`);
  },
});
say(JSON.stringify(receipt));
