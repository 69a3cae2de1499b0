// The middleware's cache, through authenticate (every middleware shares the
// same code): what is cached, for how long, what never is, and that the
// secret is kept nowhere. The cache's clock is injected: no test sleeps.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Tokend, type CacheOptions } from "@tokend/sdk";
import { startShop, type Server } from "./server.js";
import { credentials } from "../src/guard.js";

let srv: Server;
let admin: Tokend;
let appId: string;

before(async () => ({ srv, admin, appId } = await startShop(["orders:read"])));
after(() => srv?.stop());

/** A client whose verify calls are counted, whose cache clock the test moves, and whose tokend can be made to fail. */
function counted(cache: CacheOptions = {}) {
  const s = { calls: 0, now: 0, down: false };
  const t = new Tokend({
    baseUrl: srv.url,
    cache: { now: () => s.now, ...cache },
    fetch: async (input, init) => {
      if (String(input).endsWith("/v1/verify")) {
        s.calls++;
        if (s.down) throw new TypeError("fetch failed");
      }
      return fetch(input, init);
    },
  });
  return { t, s };
}

const get = (secret: string, extra: Record<string, string> = {}) =>
  new Request("http://svc.example/orders", { headers: { Authorization: "Bearer " + secret, ...extra } });

async function token(input: Record<string, unknown> = {}) {
  const { token, secret } = await admin.createToken({ app_id: appId, name: "t" + Math.random().toString(36).slice(2), access: "read_only", ...input } as never);
  return { id: token.id, secret };
}

test("a valid answer is reused for the TTL (5 s by default), then tokend is asked again", async () => {
  const { t, s } = counted();
  const tok = await token();
  for (let i = 0; i < 3; i++) assert.equal((await t.authenticate(get(tok.secret))).ok, true);
  assert.equal(s.calls, 1);
  await admin.revokeToken(tok.id);
  s.now = 4_999;
  assert.equal((await t.authenticate(get(tok.secret))).ok, true, "still cached within the TTL");
  s.now = 5_000;
  const r = await t.authenticate(get(tok.secret));
  assert.equal(r.ok, false);
  assert.equal(s.calls, 2);
  if (!r.ok) assert.equal(r.response.status, 401);
});

test("the key is the whole question: another permission, address or origin asks again", async () => {
  const { t, s } = counted();
  const tok = await token();
  await t.authenticate(get(tok.secret), { ip: "10.0.0.1" });
  await t.authenticate(get(tok.secret), { ip: "10.0.0.2" });
  await t.authenticate(get(tok.secret), { ip: "10.0.0.1", permissions: ["orders:read"] });
  await t.authenticate(get(tok.secret, { Origin: "https://a.example" }), { ip: "10.0.0.1" });
  assert.equal(s.calls, 4);
  await t.authenticate(get(tok.secret), { ip: "10.0.0.2" });
  assert.equal(s.calls, 4);
});

test("refusals are cached too (but not RATE_LIMITED)", async () => {
  const { t, s } = counted({ refusalTtlMs: 1_000 });
  const gone = await token();
  await admin.deleteToken(gone.id);
  for (let i = 0; i < 3; i++) assert.equal((await t.authenticate(get(gone.secret))).ok, false);
  assert.equal(s.calls, 1);
  s.now = 1_000;
  await t.authenticate(get(gone.secret));
  assert.equal(s.calls, 2);

  const limited = await token({ rate_limit: { limit: 1, window: "1h" } });
  assert.equal((await t.authenticate(get(limited.secret))).ok, true);
  for (let i = 0; i < 2; i++) {
    const r = await t.authenticate(get(limited.secret));
    assert.ok(!r.ok && r.response.status === 429);
  }
  assert.equal(s.calls, 5, "the answer that used up the limit and each 429 come from tokend");
});

test("ttlMs 0 and refusalTtlMs 0 (or cache: false) ask tokend every time", async () => {
  const { t, s } = counted({ ttlMs: 0, refusalTtlMs: 0 });
  const tok = await token();
  for (let i = 0; i < 3; i++) await t.authenticate(get(tok.secret));
  assert.equal(s.calls, 3);
});

test("concurrent requests with one question share one call", async () => {
  const { t, s } = counted();
  const tok = await token();
  const rs = await Promise.all(Array.from({ length: 20 }, () => t.authenticate(get(tok.secret))));
  assert.ok(rs.every((r) => r.ok));
  assert.equal(s.calls, 1);
});

test("a malformed secret never reaches tokend", async () => {
  const { t, s } = counted();
  const tok = await token();
  const r = await t.authenticate(get(tok.secret.slice(0, -1) + (tok.secret.endsWith("a") ? "b" : "a")));
  assert.ok(!r.ok && r.response.status === 401);
  assert.equal((await r.response.json()).reason, "MALFORMED");
  assert.equal(s.calls, 0);
});

test("never past the token's expiry", async () => {
  const { t, s } = counted({ ttlMs: 3 * 3600_000 });
  const tok = await token({ expires_at: new Date(Date.now() + 3600_000).toISOString() });
  await t.authenticate(get(tok.secret));
  s.now = 3500_000;
  await t.authenticate(get(tok.secret));
  assert.equal(s.calls, 1);
  s.now = 3600_000;
  await t.authenticate(get(tok.secret));
  assert.equal(s.calls, 2);
});

test("tokend down: 503 after the TTL, unless staleIfUnavailableMs lets the last valid answer stand in", async () => {
  const errors: unknown[] = [];
  for (const grace of [0, 60_000]) {
    const { t, s } = counted({ staleIfUnavailableMs: grace });
    const tok = await token();
    assert.equal((await t.authenticate(get(tok.secret))).ok, true);
    s.down = true;
    s.now = 10_000;
    const r = await t.authenticate(get(tok.secret), { onError: (e) => errors.push(e) });
    if (grace === 0) {
      assert.ok(!r.ok && r.response.status === 503);
      assert.equal((await r.response.json()).code, "UNAVAILABLE");
    } else {
      assert.equal(r.ok, true, "served stale");
      s.now = 70_000;
      const late = await t.authenticate(get(tok.secret));
      assert.ok(!late.ok && late.response.status === 503, "not past the grace");
    }
  }
  assert.equal(errors.length, 2);
  assert.ok(!String(errors[0]).includes("shop_"), "the error names no secret");
});

test("the cache is bounded, and keeps no secret", async () => {
  const { t } = counted({ maxEntries: 2 });
  const toks = [await token(), await token(), await token()];
  for (const k of toks) await t.authenticate(get(k.secret));
  const keys = [...t.guard().valid!.m.keys()];
  assert.equal(keys.length, 2);
  for (const k of keys) for (const x of toks) assert.ok(!k.includes(x.secret) && !k.includes(x.secret.slice(5, 20)));
  assert.ok(keys.every((k) => /^[A-Za-z0-9+/]{43}=$/.test(k)), "keys are SHA-256 digests");
});

test("impossible cache settings are refused when the client is made", () => {
  assert.throws(() => new Tokend({ baseUrl: srv.url, cache: { ttlMs: -1 } }), RangeError);
  assert.throws(() => new Tokend({ baseUrl: srv.url, cache: { maxEntries: 0 } }), RangeError);
});

test("the token is read from Authorization: Bearer in any case and spacing, else from X-API-Key", () => {
  const cases: [string | undefined, string | undefined, string][] = [
    ["Bearer shop_a", undefined, "shop_a"],
    ["bearer shop_a", undefined, "shop_a"],
    ["BEARER  shop_a ", undefined, "shop_a"],
    [" Bearer shop_a", undefined, "shop_a"],
    ["Bearer shop_a\t", undefined, "shop_a"],
    ["Bearer shop_a b", undefined, "shop_a b"],
    ["Bearer ", "shop_k", "shop_k"],
    ["Bearer", "shop_k", "shop_k"],
    ["Basic c2hvcA==", " shop_k ", "shop_k"],
    ["Bearershop_a", undefined, ""],
    [undefined, undefined, ""],
  ];
  for (const [authorization, apiKey, want] of cases) {
    assert.equal(credentials(authorization, apiKey), want, JSON.stringify([authorization, apiKey]));
  }
});
