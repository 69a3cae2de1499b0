// The README's "From TypeScript" snippet is examples/readme.ts, verbatim,
// and runs: it verifies a token and serves a route behind tokendExpress.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { createServer } from "node:net";
import { join } from "node:path";
import { Tokend } from "@tokend/sdk";
import { pkgDir, repoRoot, startTokend } from "./server.js";

test("the README's snippet is examples/readme.ts", () => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const example = readFileSync(join(pkgDir, "examples", "readme.ts"), "utf8");
  const m = /## From TypeScript\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README.md has no "## From TypeScript" section with a ```ts block');
  assert.equal(m[1], example);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

test("examples/readme.ts verifies and guards a route", async () => {
  const srv = await startTokend();
  const admin = new Tokend({ baseUrl: srv.url, adminToken: srv.admin });
  const app = await admin.createApp({ name: "Shop", token_prefix: "shop", permissions: ["orders:read"] });
  const { secret } = await admin.createToken({ app_id: app.id, name: "deploy bot", access: "custom", permissions: ["orders:read"] });
  const port = await freePort();
  const child = spawn(process.execPath, [join(pkgDir, "dist", "examples", "readme.js")], {
    env: { ...process.env, TOKEND_URL: srv.url, SECRET: secret, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const line = await new Promise<string>((res, rej) => {
      createInterface({ input: child.stdout! }).once("line", res);
      child.once("exit", (c) => rej(new Error(`the example exited (${c})`)));
    });
    assert.equal(line, "true VALID deploy bot");
    // The server listens right after printing; wait for it by asking.
    let r: Response | undefined;
    for (const deadline = Date.now() + 30_000; !r && Date.now() < deadline; ) {
      r = await fetch(`http://127.0.0.1:${port}/orders`, { headers: { Authorization: "Bearer " + secret } }).catch(
        () => new Promise<undefined>((ok) => setTimeout(ok, 25)),
      );
    }
    assert.ok(r, "the example never listened");
    assert.equal(await r.text(), "hello deploy bot\n");
    const no = await fetch(`http://127.0.0.1:${port}/orders`);
    assert.equal(no.status, 401);
  } finally {
    child.kill();
    await srv.stop();
  }
});
