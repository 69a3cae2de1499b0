// Generates src/schema.ts from a tokend's /openapi.json with
// openapi-typescript, exactly as its command line does. Run as a script
// (npm run types), it starts a tokend of this tree and writes the file.

import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { pkgDir, startTokend } from "./server.js";

export async function generate(baseUrl: string): Promise<string> {
  const ast = await openapiTS(new URL(baseUrl + "/openapi.json"), { silent: true });
  return COMMENT_HEADER + astToString(ast);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const srv = await startTokend();
  try {
    writeFileSync(join(pkgDir, "src", "schema.ts"), await generate(srv.url));
  } finally {
    await srv.stop();
  }
}
