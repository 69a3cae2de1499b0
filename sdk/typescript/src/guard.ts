// The guard: what every middleware of this package does, whatever the
// framework, as the Go SDK's client.Middleware does it. A request must carry
// a token (Authorization: Bearer …, or X-API-Key) that tokend finds good
// for it, or it is answered as tokend's forward-auth door answers: 401 with
// WWW-Authenticate, 403, 429 with Retry-After, each with a small
// application/problem+json body whose code is the error code and whose
// reason is the verification code; 503 when tokend cannot answer (it fails
// closed, unless staleIfUnavailableMs lets a recent valid answer stand in).
//
// Answers are cached in memory, keyed by a SHA-256 digest of the token, the
// permissions, the client address and the origin (the secret itself is kept
// nowhere): valid ones for ttlMs, never past the token's expiry nor when
// they used up its rate limit, and refusals (but RATE_LIMITED, whose wait
// only tokend knows) for refusalTtlMs. While an answer is cached, tokend is
// not asked: a revoked token still passes for up to ttlMs, and the requests
// are not counted against its rate limit, max_uses and usage figures. Keep
// the TTL short, or 0 where limits must hold exactly.

import type { RateLimitState, Tokend, VerifiedToken, VerifyResult } from "./client.js";
import { statusText } from "./status.js";
import { validSecret } from "./secret.js";

export interface CacheOptions {
  /** How long a valid answer is reused, in ms (default 5 000; 0: never). */
  ttlMs?: number;
  /** How long a refusal is reused, in ms (default 5 000; 0: never). Never RATE_LIMITED. */
  refusalTtlMs?: number;
  /** The most answers kept, of each kind (default 10 000). */
  maxEntries?: number;
  /**
   * How long past its TTL a valid answer may still be served while tokend
   * cannot answer, in ms (default 0: fail closed with 503).
   */
  staleIfUnavailableMs?: number;
  /** @internal the cache's clock, in ms, for tests (default performance.now). */
  now?: () => number;
  /** @internal the time of day, in ms since the epoch, for tests (default Date.now). */
  wall?: () => number;
}

/** Options of every middleware; R is the framework's request (or context). */
export interface GuardOptions<R = Request> {
  /**
   * What each request needs: a list (all of them), or a function of the
   * request. Default: read for GET, HEAD and OPTIONS, write otherwise, as
   * at tokend's forward-auth door.
   */
  permissions?: string[] | ((req: R) => string[]);
  /**
   * The client address sent to tokend (checked against allowed_ips).
   * Default: the framework's idea of it (Express req.ip, Fastify
   * request.ip, the socket's address under @hono/node-server), which
   * trusts a proxy header only if the framework is told to. "" sends none.
   */
  clientIp?: (req: R) => string | undefined;
  /** Do not send the request's Origin header to tokend (it is sent by default). */
  ignoreOrigin?: boolean;
  /** Hears of every request tokend could not answer (refused with 503 or served stale). */
  onError?: (err: unknown) => void;
  /** Bounds one call to tokend, in ms (default 5 000). */
  timeoutMs?: number;
}

/** A request header's value, if it has one. */
type Header = string | null | undefined;

/** What the guard reads from a request. */
export interface GuardInput {
  method: string;
  authorization?: string | null;
  apiKey?: string | null;
  origin?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  permissions?: string[];
}

/** A let-through: the verified token, and its rate limit state if it has a limit. */
export interface Passed {
  ok: true;
  token: VerifiedToken;
  rateLimit?: RateLimitState;
}

/** A refusal, ready to send. */
export interface Refused {
  ok: false;
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Outcome = Passed | Refused;

/** What authenticate answers. */
export type AuthResult = Passed | { ok: false; response: Response };

const DEFAULT_TTL_MS = 5_000;
const DEFAULT_ENTRIES = 10_000;
const DEFAULT_VERIFY_TIMEOUT_MS = 5_000;
/** The longest origin and user_agent POST /v1/verify takes, in characters. */
const MAX_FIELD = 512;
const READ = Object.freeze(["read"]) as string[];
const WRITE = Object.freeze(["write"]) as string[];

interface Entry {
  out: Outcome;
  fresh: number;
  stale: number;
}

/** A bounded map whose oldest entry makes room (Map keeps insertion order). */
class Bounded {
  readonly m = new Map<string, Entry>();
  constructor(readonly max: number) {}
  get(k: string, now: number): Entry | undefined {
    const e = this.m.get(k);
    if (e && now >= e.stale) {
      this.m.delete(k);
      return undefined;
    }
    return e;
  }
  put(k: string, e: Entry) {
    this.m.delete(k);
    if (this.m.size >= this.max) {
      // The oldest entry goes: it was put first, so it dies first too
      // (every entry of a map lives as long).
      this.m.delete(this.m.keys().next().value!);
    }
    this.m.set(k, e);
  }
}

// Node, Bun and Deno have node:crypto's synchronous hash; elsewhere
// WebCrypto's asynchronous digest does the same work. (Node before 20.16 has
// no getBuiltinModule, and Node 18 no global crypto: it imports the module.)
type Hash = (s: string) => string;
type NodeCrypto = {
  hash?: (alg: string, data: string, enc: string) => string;
  createHash: (alg: string) => { update(s: string): { digest(enc: string): string } };
};
const syncHash: Hash | undefined = await (async () => {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown; versions?: { node?: string } } }).process;
  let c = p?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
  if (!c && p?.versions?.node) {
    try {
      c = (await import("node:crypto")) as unknown as NodeCrypto;
    } catch {
      // A runtime that looks like Node without its crypto: WebCrypto it is.
    }
  }
  if (!c) return undefined;
  if (c.hash) return (s: string) => c.hash!("sha256", s, "base64");
  return (s: string) => c.createHash("sha256").update(s).digest("base64");
})();

async function subtleHash(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  let b = "";
  for (const x of d) b += String.fromCharCode(x);
  return btoa(b);
}

/** @internal one per Tokend: the cache every middleware of the client shares. */
export class Guard {
  readonly ttl: number;
  readonly refusalTtl: number;
  readonly grace: number;
  readonly valid?: Bounded;
  readonly refused?: Bounded;
  readonly #flights = new Map<string, Promise<VerifyResult>>();
  readonly #now: () => number;
  readonly #wall: () => number;

  constructor(
    readonly client: Tokend,
    cache: CacheOptions | false,
  ) {
    const c = cache === false ? { ttlMs: 0, refusalTtlMs: 0 } : cache;
    this.ttl = nonNegative(c.ttlMs, DEFAULT_TTL_MS, "ttlMs");
    this.refusalTtl = nonNegative(c.refusalTtlMs, DEFAULT_TTL_MS, "refusalTtlMs");
    this.grace = nonNegative(c.staleIfUnavailableMs, 0, "staleIfUnavailableMs");
    const max = c.maxEntries ?? DEFAULT_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError("tokend: cache.maxEntries must be a whole number ≥ 1");
    if (this.ttl > 0 || this.grace > 0) this.valid = new Bounded(max);
    if (this.refusalTtl > 0) this.refused = new Bounded(max);
    this.#now = c.now ?? (() => performance.now());
    this.#wall = c.wall ?? Date.now;
  }

  /**
   * Answers the outcome of one request: at once when the answer is cached
   * (or the token is missing or malformed), else a promise of it.
   */
  check(input: GuardInput, opts: GuardOptions<never>): Outcome | Promise<Outcome> {
    return this.#decide(input.method, input.authorization, input.apiKey, input.origin, input.userAgent, input.ip, input.permissions, opts);
  }

  /**
   * check for a framework's request r, with its parts as arguments (its
   * address unless opts.clientIp gives it, the permissions opts give it):
   * what every middleware calls, once per request, so that a cached answer
   * costs no object but the key and its digest.
   */
  decide<R>(
    r: R, method: string, authorization: Header, apiKey: Header, origin: Header, userAgent: Header, ip: Header,
    opts: GuardOptions<R>,
  ): Outcome | Promise<Outcome> {
    const p = opts.permissions;
    return this.#decide(
      method, authorization, apiKey, origin, userAgent,
      opts.clientIp ? opts.clientIp(r) : ip,
      p === undefined ? undefined : typeof p === "function" ? p(r) : p,
      opts as GuardOptions<never>,
    );
  }

  #decide(
    method: string, authorization: Header, apiKey: Header, origin: Header, userAgent: Header, ip: Header,
    permissions: string[] | undefined, opts: GuardOptions<never>, digest?: string,
  ): Outcome | Promise<Outcome> {
    const tok = credentials(authorization, apiKey);
    if (!tok) return noToken;
    const perms = permissions ?? permissionsFor(method);
    const addr = cleanIp(ip);
    const org = opts.ignoreOrigin || !origin ? "" : origin;
    // No browser sends an Origin that long, and tokend refuses the
    // question (422): it is refused here as an origin no token allows.
    if (org.length > MAX_FIELD) return refusal({ valid: false, code: "ORIGIN_NOT_ALLOWED" });
    if (!this.valid && !this.refused) return this.#ask(question(tok, perms, addr, org, userAgent), opts, "", undefined);
    let key = digest;
    if (key === undefined) {
      const raw = keyOf(tok, perms, addr, org);
      if (!syncHash) {
        // WebCrypto digests asynchronously: decided again with the digest.
        return subtleHash(raw).then((k) => this.#decide(method, authorization, apiKey, origin, userAgent, ip, permissions, opts, k));
      }
      key = syncHash(raw);
    }
    const now = this.#now();
    const hit = this.valid?.get(key, now);
    if (hit && now < hit.fresh) return hit.out;
    const no = this.refused?.get(key, now);
    if (no) return no.out;
    // Only a checked secret is cached, so a hit needs no check.
    if (!validSecret(tok)) return refusal({ valid: false, code: "MALFORMED" });
    return this.#ask(question(tok, perms, addr, org, userAgent), opts, key, hit);
  }

  async #ask(q: Question, opts: GuardOptions<never>, key: string, stale: Entry | undefined): Promise<Outcome> {
    if (!key && !validSecret(q.token)) return refusal({ valid: false, code: "MALFORMED" });
    let res: VerifyResult;
    try {
      if (key && this.ttl > 0) {
        // Concurrent requests with one question share one call.
        let f = this.#flights.get(key);
        if (!f) {
          f = this.#verify(q, opts).then(
            (r) => (this.#remember(key, r), r),
            (e) => {
              throw e;
            },
          );
          f.finally(() => this.#flights.delete(key)).catch(() => {});
          this.#flights.set(key, f);
        }
        res = await f;
      } else {
        res = await this.#verify(q, opts);
        if (key) this.#remember(key, res);
      }
      if (res.valid && !res.token) throw new Error("tokend answered VALID without a token");
    } catch (e) {
      opts.onError?.(e);
      if (stale) return stale.out;
      return unavailable;
    }
    return res.valid ? passed(res) : refusal(res);
  }

  #verify(q: Question, opts: GuardOptions<never>): Promise<VerifyResult> {
    return this.client.verifyWithin(
      q.token,
      { permissions: q.permissions, ip: q.ip || undefined, origin: q.origin || undefined, userAgent: q.userAgent || undefined },
      opts.timeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS,
    );
  }

  /**
   * Keeps tokend's latest answer to the question of key: a valid one for
   * the TTL (plus the grace for outages), never past the token's expiry,
   * and not when it used up the rate limit; a refusal for its TTL. Either
   * drops the other kind, so that an outage cannot bring back a token just
   * refused.
   */
  #remember(key: string, res: VerifyResult) {
    const now = this.#now();
    if (!res.valid || res.code !== "VALID" || !res.token) {
      this.valid?.m.delete(key);
      if (this.refused && res.code !== "RATE_LIMITED" && !res.valid) {
        this.refused.put(key, { out: refusal(res), fresh: now + this.refusalTtl, stale: now + this.refusalTtl });
      }
      return;
    }
    this.refused?.m.delete(key);
    if (!this.valid || (res.rateLimit && res.rateLimit.remaining <= 0)) {
      this.valid?.m.delete(key);
      return;
    }
    let fresh = now + this.ttl;
    let stale = fresh + this.grace;
    if (res.token.expires_at) {
      const left = Date.parse(res.token.expires_at) - this.#wall();
      if (!(left > 0)) {
        this.valid.m.delete(key);
        return;
      }
      fresh = Math.min(fresh, now + left);
      stale = Math.min(stale, now + left);
    }
    this.valid.put(key, { out: passed(res), fresh, stale });
  }

  /** The guard for a Request (fetch API): authenticate. */
  async authenticate(request: Request, opts: GuardOptions<Request> & { ip?: string }): Promise<AuthResult> {
    const h = request.headers;
    let out = this.decide(request, request.method, h.get("authorization"), h.get("x-api-key"), h.get("origin"), h.get("user-agent"), opts.ip, opts);
    if (out instanceof Promise) out = await out;
    if (out.ok) return out;
    return { ok: false, response: new Response(out.body, { status: out.status, headers: out.headers }) };
  }
}

interface Question {
  token: string;
  permissions: string[];
  ip: string;
  origin: string;
  userAgent: string;
}

function permissionsFor(method: string): string[] {
  switch (method) {
    case "GET":
    case "HEAD":
    case "OPTIONS":
      return READ;
    case "POST":
    case "PUT":
    case "PATCH":
    case "DELETE":
      return WRITE;
  }
  switch (method.toUpperCase()) {
    case "GET":
    case "HEAD":
    case "OPTIONS":
      return READ;
  }
  return WRITE;
}

/** Every field the answer depends on, each length-prefixed so that no two questions share a key. */
function keyOf(token: string, permissions: string[], ip: string, origin: string): string {
  let s = token.length + ":" + token + permissions.length + ";";
  const p = isSorted(permissions) ? permissions : [...permissions].sort();
  for (let i = 0; i < p.length; i++) s += p[i]!.length + ":" + p[i];
  return s + ip.length + ":" + ip + origin.length + ":" + origin;
}

/** What tokend is asked, made only when it is asked. */
function question(token: string, permissions: string[], ip: string, origin: string, userAgent: string | null | undefined): Question {
  return { token, permissions, ip, origin, userAgent: userAgent ? clip(userAgent, MAX_FIELD) : "" };
}

function isSorted(a: string[]): boolean {
  for (let i = 1; i < a.length; i++) if (a[i - 1]! > a[i]!) return false;
  return true;
}

/** The token of Authorization: Bearer, or else of X-API-Key. */
export function credentials(authorization?: string | null, apiKey?: string | null): string {
  if (authorization) {
    // The common form, "Bearer <token>" with nothing around the token:
    // what the general case below answers, without copies of the header.
    const n = authorization.length;
    if (n > 7 && authorization.startsWith("Bearer ") && authorization.charCodeAt(7) > 32 && authorization.charCodeAt(n - 1) > 32) {
      return authorization.slice(7);
    }
    const h = authorization.trim();
    const sp = h.indexOf(" ");
    if (sp > 0 && h.slice(0, sp).toLowerCase() === "bearer") {
      const t = h.slice(sp + 1).trim();
      if (t) return t;
    }
  }
  return apiKey ? apiKey.trim() : "";
}

/**
 * The client address as tokend takes it: one IP address without a zone,
 * an IPv4 one as such even when the socket says ::ffff:a.b.c.d, or "".
 */
export function cleanIp(ip?: string | null): string {
  if (!ip) return "";
  let a = ipMemo.get(ip);
  if (a === undefined) {
    a = parseIp(ip);
    // Addresses are no secret; the memo saves the parse on every request
    // of a client seen recently, and is emptied rather than grown.
    if (ipMemo.size >= 4096) ipMemo.clear();
    ipMemo.set(ip, a);
  }
  return a;
}

const ipMemo = new Map<string, string>();

function parseIp(ip: string): string {
  let a = ip.trim();
  const pct = a.indexOf("%");
  if (pct >= 0) a = a.slice(0, pct);
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(a);
  if (m) a = m[1]!;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(a)) return a.split(".").every((o) => Number(o) <= 255) ? a : "";
  if (a.includes(":") && /^[0-9a-fA-F:.]{2,45}$/.test(a)) return a;
  return "";
}

/** s cut to n UTF-16 units, never between the two halves of a character. */
function clip(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

function nonNegative(v: number | undefined, def: number, name: string): number {
  if (v === undefined) return def;
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`tokend: cache.${name} must be a number of milliseconds ≥ 0`);
  return v;
}

function passed(res: VerifyResult): Passed {
  const p: Passed = { ok: true, token: res.token! };
  if (res.rateLimit) p.rateLimit = res.rateLimit;
  return p;
}

function statusOf(code: string): number {
  switch (code) {
    case "VALID":
      return 200;
    case "IP_NOT_ALLOWED":
    case "ORIGIN_NOT_ALLOWED":
    case "INSUFFICIENT_PERMISSIONS":
      return 403;
    case "RATE_LIMITED":
      return 429;
  }
  return 401;
}

/** A negative verification, answered as tokend's forward-auth door answers it. */
export function refusal(res: VerifyResult): Refused {
  const status = statusOf(res.code);
  const headers: Record<string, string> = {};
  if (status === 401) headers["WWW-Authenticate"] = 'Bearer realm="tokend", error="invalid_token"';
  if (res.code === "INSUFFICIENT_PERMISSIONS") headers["WWW-Authenticate"] = 'Bearer realm="tokend", error="insufficient_scope"';
  if (status === 429) {
    const r = res.rateLimit?.retry_after;
    headers["Retry-After"] = String(r && r > 0 ? r : 1);
  }
  return refuse(status, headers, res, describe(res));
}

function refuse(status: number, headers: Record<string, string>, res: VerifyResult | undefined, detail: string): Refused {
  const rl = res?.rateLimit;
  if (rl) {
    headers["RateLimit-Limit"] = String(rl.limit);
    headers["RateLimit-Remaining"] = String(rl.remaining);
    headers["RateLimit-Reset"] = String(rl.reset);
  }
  const code = status === 403 ? "FORBIDDEN" : status === 429 ? "RATE_LIMITED" : "UNAUTHENTICATED";
  return problem(status, headers, { detail, code, reason: res?.code });
}

function problem(status: number, headers: Record<string, string>, p: { detail: string; code: string; reason?: string }): Refused {
  headers["Content-Type"] = "application/problem+json";
  const body = JSON.stringify({ type: "about:blank", title: statusText(status), status, detail: p.detail, code: p.code, reason: p.reason });
  return { ok: false, status, headers, body };
}

const noToken = Object.freeze(
  refuse(401, { "WWW-Authenticate": 'Bearer realm="tokend"' }, undefined, "a bearer token is required"),
) as Refused;
const unavailable = Object.freeze(
  problem(503, {}, { detail: "the token cannot be verified now; try again shortly", code: "UNAVAILABLE" }),
) as Refused;

function describe(r: VerifyResult): string {
  switch (r.code) {
    case "VALID":
      return "the token is valid";
    case "MALFORMED":
      return "the token is malformed";
    case "NOT_FOUND":
      return "the token is not known";
    case "EXPIRED":
      return "the token has expired";
    case "DISABLED":
      return "the token is disabled";
    case "REVOKED":
      return "the token is revoked";
    case "ROTATED":
      return "the secret was replaced by rotation; the token's new secret must be used";
    case "USAGE_EXCEEDED":
      return "the token has reached its maximum number of uses";
    case "IP_NOT_ALLOWED":
      return "the token may not be used from this address";
    case "ORIGIN_NOT_ALLOWED":
      return "the token may not be used from this origin";
    case "INSUFFICIENT_PERMISSIONS":
      return "the token lacks a permission this request needs";
    case "RATE_LIMITED":
      return r.reason ? "too many failed attempts from this address; slow down" : "the token's rate limit is used up";
  }
  return `the token was refused (${r.code})`;
}
