// npm run bench:guard: the CPU time of the middleware's cached path alone,
// in-process (no HTTP, no tokend): tokendExpress on a request whose answer
// is cached, over and over, in ns per request of this process's CPU time.
// With --against DIR (another build of this package: a checkout of an
// earlier commit where `npm run build` ran), both are measured in the same
// run, in alternating rounds, and the ratio of the medians is printed.
// To profile the path: node --cpu-prof dist/bench/guard.js --rounds 4.
//
//   npm run bench:guard -- [--rounds 12] [--requests 300000] [--against DIR]

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { pkgDir } from "../test/server.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "12" },
    requests: { type: "string", default: "300000" },
    against: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const n = Number(values.requests);

// A well-formed secret (its checksum holds): a made-up one is refused before the cache.
const secret = "shop_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_0jgJPZ";
const token = { id: "tok_1", app_id: "app_1", name: "bench", type: "standard", access: "read_only", permissions: [] };

type Middleware = (req: unknown, res: unknown, next: () => void) => void;

/** The cached path of the build in dir: answers a function that runs it n times and gives ns of CPU per request. */
async function load(dir: string): Promise<(n: number) => number> {
  const sdk = await import(pathToFileURL(resolve(dir, "dist", "src", "index.js")).href);
  const t = new sdk.Tokend({ baseUrl: "http://127.0.0.1:9", cache: { ttlMs: 1e12 } });
  // The one question the cache needs answered, answered here: no tokend.
  t.verifyWithin = async () => ({ valid: true, code: "VALID", token });
  const mw: Middleware = sdk.tokendExpress(t);
  const request = () => ({
    method: "GET",
    url: "/orders",
    headers: { host: "127.0.0.1:3000", authorization: "Bearer " + secret, "user-agent": "bench/1", accept: "*/*" },
    socket: { remoteAddress: "::ffff:127.0.0.1" },
  });
  await new Promise<void>((r) => mw(request(), {}, r));
  const reqs = Array.from({ length: 1000 }, request);
  let passed = 0;
  const next = () => void passed++;
  return (count) => {
    passed = 0;
    const c0 = process.cpuUsage();
    for (let i = 0; i < count; i++) mw(reqs[i % 1000], null, next);
    const c = process.cpuUsage(c0);
    if (passed !== count) throw new Error(`${count - passed} requests did not take the cached path`);
    return ((c.user + c.system) * 1000) / count;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const here = await load(pkgDir);
const other = values.against ? await load(values.against) : undefined;
const mine: number[] = [];
const theirs: number[] = [];
for (let i = 0; i < rounds; i++) {
  // Alternate which goes first, so that a change of load favours neither.
  if (other && i % 2) theirs.push(other(n));
  mine.push(here(n));
  if (other && !(i % 2)) theirs.push(other(n));
}
console.log(`node ${process.version}, ${rounds} rounds of ${n} cached requests`);
console.log(`this build: ${median(mine).toFixed(0)} ns of CPU per request (rounds ${Math.min(...mine).toFixed(0)}–${Math.max(...mine).toFixed(0)})`);
if (other) {
  console.log(`--against:  ${median(theirs).toFixed(0)} ns of CPU per request (rounds ${Math.min(...theirs).toFixed(0)}–${Math.max(...theirs).toFixed(0)})`);
  console.log(`this build / --against: ${(median(mine) / median(theirs)).toFixed(2)}`);
}
