// npm run bench: requests/s of a hello-world route with and without the
// middleware (its cached path: one token, asked for again and again), in the
// same service process and the same run (the same request, token included,
// to both), on Node's http, Express and
// Fastify. Rounds alternate between the two routes so that neither gets the
// machine's quieter moments. Each round gives two ratios, with/without: of
// the requests answered in the same wall time, and of the requests per CPU
// second of the service process (the measure that other work on a shared
// machine disturbs least); the medians over the rounds are printed.
//
//   npm run bench -- [--seconds 1] [--rounds 10] [--connections 32] [--frameworks node:http,express,fastify]

import http from "node:http";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Tokend } from "@tokend/sdk";
import { pkgDir, startTokend } from "../test/server.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "1" },
    rounds: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    frameworks: { type: "string", default: "node:http,express,fastify" },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const conns = Number(values.connections);

/** Sends GETs on conns keep-alive connections for ms; answers how many got 200. */
async function load(port: number, path: string, headers: Record<string, string>, ms: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  let ok = 0;
  let bad = 0;
  const end = performance.now() + ms;
  const one = () =>
    new Promise<void>((res, rej) => {
      const req = http.request({ agent, host: "127.0.0.1", port, path, headers }, (r) => {
        if (r.statusCode === 200) ok++;
        else bad++;
        r.resume();
        r.on("end", res);
      });
      req.on("error", rej);
      req.end();
    });
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  agent.destroy();
  if (bad) throw new Error(`${path}: ${bad} answers were not 200`);
  return ok;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The median in bold, and the rounds' range. */
function spread(xs: number[]): string {
  return `**${median(xs).toFixed(3)}** (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
}

const srv = await startTokend();
try {
  const admin = new Tokend({ baseUrl: srv.url, adminToken: srv.admin });
  const app = await admin.createApp({ name: "Bench" });
  const { secret } = await admin.createToken({ app_id: app.id, name: "bench", access: "read_only" });
  const auth = { Authorization: "Bearer " + secret };
  console.log(`node ${process.version}, ${seconds} s × ${rounds} rounds per route, ${conns} connections`);
  console.log("| framework | without (req/s) | with the middleware, cached (req/s) | with/without by wall time: median (rounds) | with/without by CPU time: median (rounds) |");
  console.log("|---|---|---|---|---|");
  for (const fw of values.frameworks.split(",")) {
    const child = spawn(process.execPath, [join(pkgDir, "dist", "bench", "server.js"), fw, srv.url], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = Number(await new Promise<string>((r) => createInterface({ input: child.stdout! }).once("line", r)));
      // Warm up both routes (and the cache) before measuring.
      await load(port, "/plain", auth, 1000);
      await load(port, "/guarded", auth, 1000);
      const cpu = async () => Number(await (await fetch(`http://127.0.0.1:${port}/cpu`)).text());
      const measure = async (path: string, headers: Record<string, string>) => {
        const c0 = await cpu();
        const n = await load(port, path, headers, seconds * 1000);
        return { n, cpu: (await cpu()) - c0 };
      };
      const wall: number[] = [];
      const perCPU: number[] = [];
      let plainN = 0;
      let guardedN = 0;
      for (let i = 0; i < rounds; i++) {
        let p, g;
        if (i % 2 === 0) {
          p = await measure("/plain", auth);
          g = await measure("/guarded", auth);
        } else {
          g = await measure("/guarded", auth);
          p = await measure("/plain", auth);
        }
        plainN += p.n;
        guardedN += g.n;
        wall.push(g.n / p.n);
        perCPU.push(g.n / g.cpu / (p.n / p.cpu));
      }
      const t = seconds * rounds;
      console.log(
        `| ${fw} | ${Math.round(plainN / t)} | ${Math.round(guardedN / t)} | ${spread(wall)} | ${spread(perCPU)} |`,
      );
    } finally {
      child.kill();
    }
  }
} finally {
  await srv.stop();
}
