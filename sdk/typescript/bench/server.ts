// The benchmark's service: a hello-world route with and without the
// middleware, in one process, on the framework argv[2] names. Prints its
// port on stdout, and on GET /cpu the CPU time it has used (µs), so that
// the benchmark can count CPU time per request whatever else the machine
// runs.

import http from "node:http";
import express from "express";
import Fastify from "fastify";
import { Tokend, tokendExpress } from "@tokend/sdk";
import { tokendFastify } from "@tokend/sdk/fastify";

const [framework, tokendUrl] = process.argv.slice(2);
const tokend = new Tokend({ baseUrl: tokendUrl! }); // the default cache: 5 s
process.on("SIGINT", () => process.exit(0)); // (so that --cpu-prof can write its profile)

function cpu(): string {
  const u = process.cpuUsage();
  return String(u.user + u.system);
}

switch (framework) {
  case "node:http": {
    const guard = tokendExpress(tokend); // connect-style: plain Node requests too
    const hello = (res: http.ServerResponse) => {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("hello\n");
    };
    const s = http.createServer((req, res) => {
      if (req.url === "/plain") return hello(res);
      if (req.url === "/cpu") return void res.end(cpu());
      guard(req, res, () => hello(res));
    });
    s.listen(0, "127.0.0.1", () => console.log((s.address() as { port: number }).port));
    break;
  }
  case "express": {
    const app = express();
    app.get("/plain", (_req, res) => { res.send("hello\n"); });
    app.get("/cpu", (_req, res) => { res.send(cpu()); });
    app.get("/guarded", tokendExpress(tokend), (_req, res) => { res.send("hello\n"); });
    const s = app.listen(0, "127.0.0.1", () => console.log((s.address() as { port: number }).port));
    break;
  }
  case "fastify": {
    const app = Fastify();
    app.get("/plain", async () => "hello\n");
    app.get("/cpu", async () => cpu());
    app.get("/guarded", { preHandler: tokendFastify(tokend) }, async () => "hello\n");
    await app.listen({ port: 0, host: "127.0.0.1" });
    console.log((app.server.address() as { port: number }).port);
    break;
  }
  default:
    throw new Error(`unknown framework ${framework}`);
}
