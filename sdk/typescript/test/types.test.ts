// The committed wire types (src/schema.ts) are what openapi-typescript makes
// of the document the server serves: this fails when they drift. To bring
// them up to date: npm run types.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generate } from "./gen-types.js";
import { pkgDir, startTokend } from "./server.js";

test("src/schema.ts matches the server's /openapi.json", async () => {
  const srv = await startTokend();
  try {
    const want = await generate(srv.url);
    const have = readFileSync(join(pkgDir, "src", "schema.ts"), "utf8");
    if (have !== want) {
      const a = have.split("\n");
      const b = want.split("\n");
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      assert.fail(`src/schema.ts differs from the server's document from line ${i + 1}:\n  committed: ${a[i]}\n  served:    ${b[i]}\nrun: npm run types`);
    }
  } finally {
    await srv.stop();
  }
});
