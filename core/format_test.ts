// docs/FORMAT.md is the contract: its test vectors must come out of seal(),
// and a second implementation written from it (Python) must agree with ours.

import assert from "node:assert/strict";
import { randomBytes } from "../tests/_data.ts";
import { fromHex, toHex } from "./_bytes.ts";
import { memoryStore } from "./chunk_store.ts";
import { type DataMap, parseDataMap, type Suite } from "./data_map.ts";
import { decryptStream } from "./decrypt_stream.ts";
import { seal } from "./seal.ts";

interface Vector {
  vector: {
    suite: Suite;
    chunkSize: number;
    length: number;
    key?: string;
    salt?: string;
    convergent?: boolean;
  };
  key?: string;
  dataMap: DataMap;
}

function pattern(length: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length }, (_, j) => j % 251);
}

async function readVectors(): Promise<Vector[]> {
  const doc = await Deno.readTextFile(
    new URL("../docs/FORMAT.md", import.meta.url),
  );
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)];
  return blocks.map((m) => JSON.parse(m[1]!) as Vector)
    .filter((v) => v.vector !== undefined);
}

Deno.test("docs/FORMAT.md test vectors come out of seal() and decrypt back", async () => {
  const vectors = await readVectors();
  assert.ok(vectors.length >= 4, "FORMAT.md lost its test vectors");
  for (const { vector, key, dataMap } of vectors) {
    const plain = pattern(vector.length);
    const store = memoryStore();
    const result = vector.convergent
      ? await seal(() => new Blob([plain]).stream(), store, {
        suite: vector.suite,
        chunkSize: vector.chunkSize,
        convergent: true,
      })
      : await seal(new Blob([plain]).stream(), store, {
        suite: vector.suite,
        chunkSize: vector.chunkSize,
        key: fromHex(vector.key!),
        salt: fromHex(vector.salt!),
      });
    assert.deepEqual(result.dataMap, dataMap);
    assert.deepEqual(parseDataMap(JSON.stringify(dataMap)), dataMap);
    if (key !== undefined) assert.equal(toHex(result.key), key);
    const out = new Uint8Array(
      await new Response(decryptStream(dataMap, result.key, store))
        .arrayBuffer(),
    );
    assert.deepEqual(out, plain);
  }
});

async function pythonSeal(
  request: object,
): Promise<{ key?: string; dataMap: DataMap }> {
  const child = new Deno.Command("python3", {
    args: [
      new URL("../tests/fixtures/sealed_reference.py", import.meta.url)
        .pathname,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return JSON.parse(new TextDecoder().decode(stdout));
}

Deno.test("seal() agrees with the Python reference implementation of FORMAT.md", async () => {
  const cases: [Suite, number, number][] = [
    ["aes-256-gcm", 65536, 0],
    ["aes-256-gcm", 65536, 1],
    ["aes-256-gcm", 65536, 65535],
    ["aes-256-gcm", 65536, 65536],
    ["aes-256-gcm", 100_000, 300_001],
    ["xchacha20-poly1305", 65536, 65537],
    ["xchacha20-poly1305", 70_000, 0],
  ];
  for (const [suite, chunkSize, length] of cases) {
    const plain = randomBytes(length);
    const key = crypto.getRandomValues(new Uint8Array(32));
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const ours = await seal(new Blob([plain]).stream(), memoryStore(), {
      suite,
      chunkSize,
      key,
      salt,
    });
    const theirs = await pythonSeal({
      suite,
      chunkSize,
      key: toHex(key),
      salt: toHex(salt),
      plaintext: toHex(plain),
    });
    assert.deepEqual(
      ours.dataMap,
      theirs.dataMap,
      `${suite} ${chunkSize} ${length}`,
    );
  }
  const secret = crypto.getRandomValues(new Uint8Array(16));
  const plain = randomBytes(5000);
  const ours = await seal(() => new Blob([plain]).stream(), memoryStore(), {
    suite: "xchacha20-poly1305",
    chunkSize: 65536,
    convergent: { secret },
  });
  const theirs = await pythonSeal({
    suite: "xchacha20-poly1305",
    chunkSize: 65536,
    convergent: true,
    secret: toHex(secret),
    plaintext: toHex(plain),
  });
  assert.equal(toHex(ours.key), theirs.key);
  assert.deepEqual(ours.dataMap, theirs.dataMap);
});
