// The dashboard's secret-once dialog offers a TypeScript snippet: as the
// template renders it (with sample values), it type-checks against this
// package, so that a copied snippet compiles.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pkgDir, repoRoot } from "./server.js";

test("the dashboard's TypeScript snippet type-checks", () => {
  const tpl = readFileSync(join(repoRoot, "internal", "web", "templates", "token.html"), "utf8");
  const m = /<pre id="snip-ts"[^>]*>([\s\S]*?)<\/pre>/.exec(tpl);
  assert.ok(m, "token.html has no snip-ts snippet");
  const snippet = m[1]!
    .replaceAll("{{.Base}}", "https://tokend.example.com")
    .replaceAll("{{.TokenID}}", "tok_123")
    .replaceAll("{{.EnvName}}", "SHOP_API_TOKEN");
  assert.ok(!/{{|&lt;|&gt;|&amp;/.test(snippet), "the snippet holds template actions or entities this test does not render:\n" + snippet);
  // What the snippet takes as given: an Express app and a URL to call.
  const file = `import express from "express";\nconst app = express();\nconst url = "https://api.example.com/orders";\n${snippet}\nexport {};\n`;
  const dir = join(pkgDir, "dist", "snippet-check");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "dashboard.ts"), file);
  try {
    execFileSync(
      process.execPath,
      [join(pkgDir, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "--strict", "--skipLibCheck", "--target", "es2022",
        "--module", "nodenext", "--moduleResolution", "nodenext", "--types", "node", join(dir, "dashboard.ts")],
      { cwd: pkgDir, encoding: "utf8", stdio: "pipe" },
    );
  } catch (e) {
    const err = e as { stdout?: string };
    assert.fail(`the snippet does not type-check:\n${err.stdout}\n${file}`);
  }
});
