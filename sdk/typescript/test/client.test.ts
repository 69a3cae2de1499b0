// The client against a real tokend: verify, the management calls, and the
// errors each failure becomes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server as HTTPServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Tokend, TokendError, TokendConnectionError, MAX_ANSWER_BYTES } from "@tokend/sdk";
import { startShop, type Server } from "./server.js";

let srv: Server;
let admin: Tokend;
let appId: string;

before(async () => ({ srv, admin, appId } = await startShop(["orders:read", "orders:write"])));
after(() => srv?.stop());

test("verify answers as POST /v1/verify does, code and identity", async () => {
  const { token, secret } = await admin.createToken({
    app_id: appId, name: "deploy bot", access: "custom", permissions: ["orders:read"],
    rate_limit: { limit: 100, window: "1h" }, metadata: { plan: "pro" },
  });
  assert.match(secret, /^shop_/);
  const c = new Tokend({ baseUrl: srv.url }); // no admin token needed
  const ok = await c.verify(secret, { permissions: ["orders:read"], ip: "10.1.2.3" });
  assert.equal(ok.valid, true);
  assert.equal(ok.code, "VALID");
  assert.equal(ok.token?.id, token.id);
  assert.equal(ok.token?.name, "deploy bot");
  assert.deepEqual(ok.token?.metadata, { plan: "pro" });
  assert.equal(ok.rateLimit?.limit, 100);
  assert.equal(ok.rateLimit?.remaining, 99);

  const no = await c.verify(secret, { permissions: ["orders:write"] });
  assert.deepEqual([no.valid, no.code], [false, "INSUFFICIENT_PERMISSIONS"]);
  assert.equal((await c.verify("shop_not-a-real-token")).code, "MALFORMED");
});

test("create returns the secret once; get and list never do", async () => {
  const { token, secret } = await admin.createToken({ app_id: appId, name: "once" });
  const got = await admin.getToken(token.id);
  assert.equal(got.id, token.id);
  assert.ok(!JSON.stringify(got).includes(secret), "get must not return the secret");
  const page = await admin.listTokens({ app_id: appId, q: "once" });
  assert.deepEqual(page.items.map((t) => t.id), [token.id]);
  assert.ok(!JSON.stringify(page).includes(secret), "list must not return the secret");
});

test("rotate, disable, enable, revoke and delete change what verify answers", async () => {
  const c = new Tokend({ baseUrl: srv.url });
  const { token, secret } = await admin.createToken({ app_id: appId, name: "lifecycle" });
  const rotated = await admin.rotateToken(token.id);
  assert.equal(rotated.token.id, token.id);
  assert.notEqual(rotated.secret, secret);
  assert.equal((await c.verify(rotated.secret)).code, "VALID");
  assert.equal((await c.verify(secret)).code, "ROTATED");

  assert.equal((await admin.disableToken(token.id)).status, "disabled");
  assert.equal((await c.verify(rotated.secret)).code, "DISABLED");
  assert.equal((await admin.enableToken(token.id)).status, "active");
  assert.equal((await admin.revokeToken(token.id)).status, "revoked");
  assert.equal((await c.verify(rotated.secret)).code, "REVOKED");

  await admin.deleteToken(token.id);
  const e = await admin.getToken(token.id).then(() => null, (e) => e);
  assert.ok(e instanceof TokendError);
  assert.equal(e.status, 404);
  assert.equal(e.code, "NOT_FOUND");
});

test("update with a stale version is refused with 412 and changes nothing", async () => {
  const { token } = await admin.createToken({ app_id: appId, name: "versioned" });
  const edited = await admin.updateToken(token.id, { description: "first" }, { ifVersion: token.version });
  const e = await admin.updateToken(token.id, { description: "second" }, { ifVersion: token.version }).then(() => null, (e) => e);
  assert.ok(e instanceof TokendError);
  assert.equal(e.status, 412);
  assert.equal(e.code, "PRECONDITION_FAILED");
  assert.equal((await admin.getToken(token.id)).description, edited.description);
});

test("apps: list, get, update, revoke all, delete", async () => {
  const app = await admin.createApp({ name: "Scratch" });
  assert.equal((await admin.getApp(app.id)).name, "Scratch");
  assert.ok((await admin.listApps({ limit: 100 })).items.some((a) => a.id === app.id));
  assert.equal((await admin.updateApp(app.id, { name: "Scratch 2" })).name, "Scratch 2");
  await admin.createToken({ app_id: app.id, name: "a" });
  await admin.createToken({ app_id: app.id, name: "b" });
  assert.equal(await admin.revokeAll(app.id), 2);
  await admin.deleteApp(app.id);
  await assert.rejects(admin.getApp(app.id), (e: unknown) => e instanceof TokendError && e.code === "NOT_FOUND");
});

test("audit lists what was done, by whom", async () => {
  const { token } = await admin.createToken({ app_id: appId, name: "audited" });
  await admin.revokeToken(token.id);
  const page = await admin.audit({ token_id: token.id });
  const actions = page.items.map((e) => e.action);
  assert.ok(actions.some((a) => a.includes("create")), `no create in ${actions}`);
  assert.ok(actions.some((a) => a.includes("revoke")), `no revoke in ${actions}`);
});

test("a validation failure carries every field of the problem document", async () => {
  const e = await admin.createToken({ app_id: appId, name: "", allowed_ips: ["10.0.0.0/99"] } as never).then(() => null, (e) => e);
  assert.ok(e instanceof TokendError);
  assert.equal(e.status, 422);
  assert.equal(e.code, "VALIDATION_FAILED");
  assert.deepEqual(e.errors.map((f) => f.field).sort(), ["allowed_ips[0]", "name"]);
  assert.match(e.message, /allowed_ips\[0\]: /);
});

test("a wrong admin token is 401 and its secret is in no error", async () => {
  const bad = "tkd_admin_3Q3bwwMjijwyWyK34BP1ZJxolYg725gkQdg15wqJ9a8_2bO7a8";
  const c = new Tokend({ baseUrl: srv.url, adminToken: bad });
  const e = await c.listApps().then(() => null, (e) => e);
  assert.ok(e instanceof TokendError);
  assert.equal(e.status, 401);
  assert.equal(e.code, "UNAUTHENTICATED");
  assert.ok(!JSON.stringify({ ...e, m: e.message, s: e.stack }).includes(bad));
});

test("ids are path segments: ../ cannot reach another route", async () => {
  await assert.rejects(admin.getToken(".."), TypeError);
  await assert.rejects(admin.getToken(""), TypeError);
  const e = await admin.getToken("../apps").then(() => null, (e) => e);
  assert.ok(e instanceof TokendError && e.status === 404, String(e));
});

/** A server that answers every request with h. */
async function fake(h: Parameters<typeof createServer>[1]): Promise<{ url: string; close(): Promise<void> }> {
  const s: HTTPServer = createServer(h);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }),
  };
}

test("a 503 from tokend is a TokendError, never an answer", async () => {
  const f = await fake((_, res) => {
    res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": "2" });
    res.end(JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503, code: "UNAVAILABLE", detail: "storage is unavailable; try again shortly" }));
  });
  try {
    const e = await new Tokend({ baseUrl: f.url }).verify("shop_x").then(() => null, (e) => e);
    assert.ok(e instanceof TokendError);
    assert.deepEqual([e.status, e.code, e.retryAfterMs, e.message], [503, "UNAVAILABLE", 2000, "storage is unavailable; try again shortly"]);
  } finally {
    await f.close();
  }
});

test("a tokend that does not answer in time is a TokendConnectionError", async () => {
  const f = await fake(() => {}); // never answers
  try {
    const e = await new Tokend({ baseUrl: f.url, timeoutMs: 200 }).verify("shop_x").then(() => null, (e) => e);
    assert.ok(e instanceof TokendConnectionError, String(e));
    assert.match(e.message, /timed out/);
  } finally {
    await f.close();
  }
});

test("a redirect is not followed, so the admin token stays with the server", async () => {
  let hits = 0;
  const other = await fake((_, res) => { hits++; res.end("{}"); });
  const f = await fake((_, res) => { res.writeHead(307, { Location: other.url + "/v1/apps" }); res.end(); });
  try {
    const e = await new Tokend({ baseUrl: f.url, adminToken: "secret" }).listApps().then(() => null, (e) => e);
    assert.ok(e instanceof TokendConnectionError, String(e));
    assert.equal(hits, 0);
  } finally {
    await f.close();
    await other.close();
  }
});

test("an answer that is not tokend's is an error naming the status, not its content", async () => {
  const f = await fake((_, res) => { res.writeHead(502, { "Content-Type": "text/html" }); res.end("<h1>bad gateway tkd_leak</h1>"); });
  try {
    const e = await new Tokend({ baseUrl: f.url }).verify("x").then(() => null, (e) => e);
    assert.ok(e instanceof TokendError);
    assert.deepEqual([e.status, e.code], [502, "UNAVAILABLE"]);
    assert.ok(!e.message.includes("tkd_leak"));
  } finally {
    await f.close();
  }
});

test("the constructor refuses base URLs that could leak the admin token", () => {
  assert.throws(() => new Tokend({ baseUrl: "ftp://x" }), TypeError);
  assert.throws(() => new Tokend({ baseUrl: "http://u:p@x" }), TypeError);
  assert.throws(() => new Tokend({ baseUrl: "http://x/?a=b" }), TypeError);
  assert.throws(() => new Tokend({ baseUrl: "http://x", adminToken: "a b" }), TypeError);
  assert.equal(new Tokend({ baseUrl: "http://x/tokend/" }).baseUrl, "http://x/tokend");
});

/**
 * A server whose every answer is status with a body of up to 100 MB (with a
 * Content-Length of it when told), written only as fast as the client
 * reads; sent() tells how much of it went out before the client hung up.
 */
async function flood(status: number, withLength: boolean) {
  const total = 100 << 20;
  const chunk = Buffer.alloc(64 << 10, "a");
  let written = 0;
  let closed!: () => void;
  const hungUp = new Promise<void>((r) => (closed = r));
  const f = await fake((_, res) => {
    res.writeHead(status, { "Content-Type": "application/json", ...(withLength ? { "Content-Length": String(total) } : {}) });
    res.on("close", closed);
    const more = () => {
      while (written < total && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", more);
      }
      res.end();
    };
    more();
  });
  return { url: f.url, close: f.close, sent: async () => (await hungUp, written) };
}

test("an endless answer is refused past 16 MiB, unread beyond it", async () => {
  for (const withLength of [false, true]) {
    const f = await flood(200, withLength);
    try {
      const e = await new Tokend({ baseUrl: f.url }).verify("shop_x").then(() => null, (e) => e);
      assert.ok(e instanceof TokendConnectionError, String(e));
      assert.match(e.message, /is larger than 16777216 bytes/);
      // What the socket buffers hold besides: far from the 100 MB sent to a
      // client that reads them all.
      const sent = await f.sent();
      assert.ok(sent < 40 << 20, `the server got to write ${sent} bytes`);
    } finally {
      await f.close();
    }
  }
});

test("an endless error answer is read only as far as a problem document goes", async () => {
  const f = await flood(500, false);
  try {
    const e = await new Tokend({ baseUrl: f.url }).listApps().then(() => null, (e) => e);
    assert.ok(e instanceof TokendError, String(e));
    assert.deepEqual([e.status, e.code], [500, "INTERNAL"]);
    const sent = await f.sent();
    assert.ok(sent < 40 << 20, `the server got to write ${sent} bytes`);
  } finally {
    await f.close();
  }
});

test("an answer of exactly the limit is read whole", async () => {
  const items = "x".repeat(MAX_ANSWER_BYTES - '{"items":[""]}'.length);
  const f = await fake((_, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(`{"items":["${items}"]}`);
  });
  try {
    const page = await new Tokend({ baseUrl: f.url }).listApps();
    assert.equal((page.items[0] as unknown as string).length, items.length);
  } finally {
    await f.close();
  }
});
