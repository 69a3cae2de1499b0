// Starts a real tokend for the tests: the binary TOKEND_BIN names (the Go
// runner in sdk/ builds it once for both SDKs), or one built here with
// go build from the repository root. The banner gives the URL and the first
// start's admin token, as bench/internal/benchserve reads them.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { Tokend } from "@tokend/sdk";

export const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository: TOKEND_REPO when the suite runs from a copy (as the Go runner in sdk/ does it). */
export const repoRoot = process.env.TOKEND_REPO || resolve(pkgDir, "..", "..");

export interface Server {
  url: string;
  admin: string;
  stop(): Promise<void>;
}

let built: string | undefined;

/** The tokend binary: TOKEND_BIN, or built once per process into a temp dir. */
export function tokendBin(): string {
  if (process.env.TOKEND_BIN) return process.env.TOKEND_BIN;
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), "tokend-sdk-ts-bin-"));
    built = join(dir, "tokend");
    execFileSync("go", ["build", "-o", built, "./cmd/tokend"], { cwd: repoRoot, stdio: "inherit" });
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return built;
}

/** Starts `tokend serve` on 127.0.0.1:0 with a fresh data directory. */
export async function startTokend(extra: string[] = []): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "tokend-sdk-ts-"));
  const child: ChildProcess = spawn(
    tokendBin(),
    ["serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn", ...extra],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let logs = "";
  child.stderr!.on("data", (b) => (logs += b));
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  const banner = new Promise<{ url: string; admin: string }>((res, rej) => {
    let url = "";
    let admin = "";
    const rl = createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) url = m[1]!;
      const a = /^\s+(tkd_admin_[0-9A-Za-z]+_[0-9A-Za-z]{6})\s*$/.exec(line);
      if (a) admin = a[1]!;
      if (line.startsWith("Press Ctrl+C")) res({ url, admin });
    });
    child.once("exit", (code) => rej(new Error(`tokend serve exited (${code}) before its banner:\n${logs}`)));
  });
  const b = await banner;
  return {
    ...b,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A tokend with an app "Shop" (prefix shop) holding perms, and an admin client of it. */
export async function startShop(perms: string[]): Promise<{ srv: Server; admin: Tokend; appId: string }> {
  const srv = await startTokend();
  const admin = new Tokend({ baseUrl: srv.url, adminToken: srv.admin });
  const app = await admin.createApp({ name: "Shop", token_prefix: "shop", permissions: perms });
  return { srv, admin, appId: app.id };
}
