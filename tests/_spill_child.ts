// The child of the spill tests: opens a store on the root it is given,
// prints the store's directory name, and holds it until it is killed.
//
//   deno run -A tests/_spill_child.ts <root>

import { basename } from "node:path";
import { SpillStore } from "../spill/mod.ts";

const store = await SpillStore.open({
  root: Deno.args[0]!,
  cleanupStale: false,
});
await store.put("held", new Uint8Array(1000));
console.log(basename(store.path));
setInterval(() => {}, 60_000); // stay alive until SIGKILL
