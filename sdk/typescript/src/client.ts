// The client: one class, Tokend, that asks a tokend server whether a token
// is good (verify) and manages apps, tokens and the audit log, over fetch
// and nothing else, so that it runs on Node ≥ 18, Bun, Deno and edge
// runtimes. The wire types are generated from the server's /openapi.json
// (schema.ts); this file adds only what the wire does not say.
//
// An admin token is sent only to the configured base URL (redirects are
// refused) and never appears in an error message; a token secret returned by
// createToken or rotateToken is handed to the caller once and kept nowhere.

import type { components, operations } from "./schema.js";
import { statusText, codeForStatus } from "./status.js";
import { Guard, type GuardOptions, type CacheOptions, type AuthResult, type GuardInput } from "./guard.js";

type Schemas = components["schemas"];

export type App = Schemas["App"];
export type AppInput = Schemas["AppInput"];
export type AppPatch = Schemas["AppPatch"];
export type Token = Schemas["Token"];
export type TokenInput = Schemas["TokenInput"];
export type TokenPatch = Schemas["TokenPatch"];
export type TokenWithSecret = Schemas["TokenWithSecret"];
export type Event = Schemas["Event"];
export type UsageCount = Schemas["UsageCount"];
export type VerifiedToken = Schemas["VerifiedToken"];
export type RateLimitState = Schemas["RateLimitState"];
export type FieldError = Schemas["FieldError"];
export type Problem = Schemas["Problem"];
/** A verification code, as POST /v1/verify answers it. */
export type VerifyCode = Schemas["VerifyResult"]["code"];
/** One page of a list: items, and the cursor of the next page if any. */
export interface Page<T> {
  items: T[];
  next_cursor?: string;
}
export type TokenListQuery = NonNullable<operations["list-tokens"]["parameters"]["query"]>;
export type AuditQuery = NonNullable<operations["list-audit"]["parameters"]["query"]>;
export type EventQuery = NonNullable<operations["list-events"]["parameters"]["query"]>;
export interface ListQuery {
  limit?: number;
  cursor?: string;
}

/** What verify asks beyond the secret. */
export interface VerifyOptions {
  /** Every permission the request needs (resource:action, or read / write). */
  permissions?: string[];
  /** The end client's address, checked against the token's allowed_ips. */
  ip?: string;
  /** The browser Origin the token was presented from, if any. */
  origin?: string;
  /** The end client's User-Agent, kept only in security events. */
  userAgent?: string;
  /** Aborts the call (besides the client's timeout). */
  signal?: AbortSignal;
}

/** The answer of POST /v1/verify, with rate_limit named rateLimit. */
export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  /** More detail on the code, e.g. client_throttled for RATE_LIMITED. */
  reason?: string;
  token?: VerifiedToken;
  rateLimit?: RateLimitState;
}

export interface TokendOptions {
  /** The server, such as http://127.0.0.1:8080 or https://tokens.example.com/tokend. */
  baseUrl: string;
  /** An admin token, sent as a bearer token on management calls (never on verify). */
  adminToken?: string;
  /** Bounds each call, in milliseconds (default 30 000; the middleware's verify: 5 000). */
  timeoutMs?: number;
  /**
   * The cache of the middleware and authenticate made from this client,
   * shared by all of them: valid answers for ttlMs (default 5 000; 0 turns
   * it off), refusals for refusalTtlMs. false turns both off.
   */
  cache?: CacheOptions | false;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** The User-Agent of the client's own requests, where the runtime lets it be set. */
  userAgent?: string;
}

/** Per-call options of the management calls that change something. */
export interface ChangeOptions {
  /** Apply only if the resource is still at this version (If-Match); 412 otherwise. */
  ifVersion?: number;
  signal?: AbortSignal;
}

/**
 * A failure the server answered: its RFC 9457 problem document (code,
 * detail, per-field errors), or for an answer that is not one, what the
 * status says.
 */
export class TokendError extends Error {
  override name = "TokendError";
  /** The HTTP status. */
  readonly status: number;
  /** The stable code, such as NOT_FOUND or VALIDATION_FAILED. */
  readonly code: string;
  readonly type?: string;
  readonly title: string;
  readonly detail?: string;
  /** Per-field problems of a VALIDATION_FAILED request. */
  readonly errors: FieldError[];
  /** How long the server asked to wait (429, 503), in milliseconds, if it said. */
  readonly retryAfterMs?: number;

  constructor(status: number, p: Partial<Problem> & { title?: string }, retryAfterMs?: number) {
    const errors = Array.isArray(p.errors) ? p.errors : [];
    const head = p.detail || p.title || `the server answered ${status}`;
    const fields = errors.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join("; ");
    super(fields ? `${head}: ${fields}` : head);
    this.status = status;
    this.code = p.code || codeForStatus(status);
    this.type = p.type;
    this.title = p.title || statusText(status);
    this.detail = p.detail;
    this.errors = errors;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * tokend could not be asked: the network failed, the call timed out (cause
 * is the runtime's TimeoutError) or the server answered something that is
 * not tokend's.
 */
export class TokendConnectionError extends Error {
  override name = "TokendConnectionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The most bytes of one answer the client reads, as the Go SDK's
 * MaxAnswerBytes: a page of the largest size with large metadata fits well
 * within it. A larger answer is a TokendConnectionError.
 */
export const MAX_ANSWER_BYTES = 16 << 20;
/** A problem document is small: an error answer is read no further. */
const MAX_PROBLEM_BYTES = 64 << 10;

/** A client of one tokend server. Safe to share; make one per server. */
export class Tokend {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  #adminToken?: string;
  #fetch: typeof fetch;
  #userAgent?: string;
  #oldServer = false;
  readonly #guard: Guard;

  constructor(opts: TokendOptions) {
    let u: URL;
    try {
      u = new URL(opts.baseUrl);
    } catch {
      throw new TypeError(`tokend: invalid baseUrl ${JSON.stringify(opts.baseUrl)}`);
    }
    if ((u.protocol !== "http:" && u.protocol !== "https:") || !u.host) {
      throw new TypeError(`tokend: baseUrl must be http:// or https:// with a host`);
    }
    if (u.username || u.password || u.search || u.hash) {
      throw new TypeError("tokend: baseUrl must not hold user information, a query or a fragment");
    }
    if (opts.adminToken !== undefined && /\s/.test(opts.adminToken)) {
      throw new TypeError("tokend: adminToken must not contain white space");
    }
    if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) {
      throw new RangeError("tokend: timeoutMs must be positive");
    }
    this.baseUrl = u.origin + u.pathname.replace(/\/+$/, "");
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#adminToken = opts.adminToken || undefined;
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#userAgent = opts.userAgent;
    this.#guard = new Guard(this, opts.cache ?? {});
  }

  /**
   * Asks tokend whether secret may be used, always (no cache: the
   * middleware and authenticate cache). Resolves to the answer, valid or
   * not; rejects with TokendError when tokend answers an error (503
   * UNAVAILABLE when its storage cannot be asked, never VALID), and with
   * TokendConnectionError when it cannot be reached in time.
   */
  async verify(secret: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
    return this.verifyWithin(secret, opts, this.timeoutMs);
  }

  /** @internal verify with another timeout (the middleware's). */
  async verifyWithin(secret: string, opts: VerifyOptions, timeoutMs: number): Promise<VerifyResult> {
    const body: Record<string, unknown> = { token: secret };
    if (opts.permissions !== undefined) body.permissions = opts.permissions;
    if (opts.ip) body.ip = opts.ip;
    if (opts.origin) body.origin = opts.origin;
    if (opts.userAgent && !this.#oldServer) body.user_agent = opts.userAgent;
    const call = () =>
      this.#call<Schemas["VerifyResult"]>("POST", "/v1/verify", { body, noAuth: true, signal: opts.signal, timeoutMs });
    let out: Schemas["VerifyResult"];
    try {
      out = await call();
    } catch (e) {
      // A tokend older than user_agent refuses it by name: ask again
      // without it, and leave it out from then on.
      if (body.user_agent === undefined || !(e instanceof TokendError) || e.status !== 422 || !e.errors.some((f) => f.field === "user_agent")) {
        throw e;
      }
      this.#oldServer = true;
      delete body.user_agent;
      out = await call();
    }
    if (typeof out !== "object" || out === null || typeof out.valid !== "boolean" || typeof out.code !== "string") {
      throw new TokendConnectionError("tokend: the answer to POST /v1/verify is not a verification");
    }
    const res: VerifyResult = { valid: out.valid, code: out.code };
    if (out.reason) res.reason = out.reason;
    if (out.token) res.token = out.token;
    if (out.rate_limit) res.rateLimit = out.rate_limit;
    return res;
  }

  /**
   * Verifies the token a Request carries (Authorization: Bearer, or
   * X-API-Key), for Next.js route handlers and edge functions: answers
   * {ok: true, token, rateLimit} or {ok: false, response}, the 401, 403,
   * 429 or 503 to return as is. Uses the client's cache.
   */
  async authenticate(request: Request, opts: GuardOptions & { ip?: string } = {}): Promise<AuthResult> {
    return this.guard().authenticate(request, opts);
  }

  /** @internal the cache and logic that every middleware of this client shares. */
  guard(): Guard {
    return this.#guard;
  }

  /** @internal */
  check(input: GuardInput, opts: GuardOptions) {
    return this.guard().check(input, opts);
  }

  // Apps.

  async listApps(q: ListQuery = {}, o: { signal?: AbortSignal } = {}): Promise<Page<App>> {
    return this.#call("GET", "/v1/apps", { query: q, signal: o.signal });
  }
  async createApp(input: AppInput, o: { signal?: AbortSignal } = {}): Promise<App> {
    return this.#call("POST", "/v1/apps", { body: input, signal: o.signal });
  }
  async getApp(id: string, o: { signal?: AbortSignal } = {}): Promise<App> {
    return this.#call("GET", `/v1/apps/${seg("app", id)}`, { signal: o.signal });
  }
  async updateApp(id: string, patch: AppPatch, o: ChangeOptions = {}): Promise<App> {
    return this.#call("PATCH", `/v1/apps/${seg("app", id)}`, { body: patch, ...o });
  }
  async deleteApp(id: string, o: ChangeOptions = {}): Promise<void> {
    await this.#call("DELETE", `/v1/apps/${seg("app", id)}`, o);
  }
  /** Revokes every live token of an app; answers how many. */
  async revokeAll(appId: string, o: { signal?: AbortSignal } = {}): Promise<number> {
    const a = await this.#call<Schemas["RevokeAllAnswer"]>("POST", `/v1/apps/${seg("app", appId)}/revoke-all`, { signal: o.signal });
    return a.revoked;
  }

  // Tokens.

  async listTokens(q: TokenListQuery = {}, o: { signal?: AbortSignal } = {}): Promise<Page<Token>> {
    return this.#call("GET", "/v1/tokens", { query: q, signal: o.signal });
  }
  /** Creates a token; the answer holds its secret, which is never shown again. */
  async createToken(input: TokenInput, o: { signal?: AbortSignal } = {}): Promise<TokenWithSecret> {
    return this.#call("POST", "/v1/tokens", { body: input, signal: o.signal });
  }
  async getToken(id: string, o: { signal?: AbortSignal } = {}): Promise<Token> {
    return this.#call("GET", `/v1/tokens/${seg("token", id)}`, { signal: o.signal });
  }
  async updateToken(id: string, patch: TokenPatch, o: ChangeOptions = {}): Promise<Token> {
    return this.#call("PATCH", `/v1/tokens/${seg("token", id)}`, { body: patch, ...o });
  }
  async disableToken(id: string, o: ChangeOptions = {}): Promise<Token> {
    return this.#call("POST", `/v1/tokens/${seg("token", id)}/disable`, o);
  }
  async enableToken(id: string, o: ChangeOptions = {}): Promise<Token> {
    return this.#call("POST", `/v1/tokens/${seg("token", id)}/enable`, o);
  }
  /** Revokes a token for good (it is kept for the audit trail). */
  async revokeToken(id: string, o: ChangeOptions = {}): Promise<Token> {
    return this.#call("POST", `/v1/tokens/${seg("token", id)}/revoke`, o);
  }
  /**
   * Gives a token a new secret (same id and settings), answered once; the
   * old one keeps working for gracePeriod (such as "1h"; default: none).
   */
  async rotateToken(id: string, o: ChangeOptions & { gracePeriod?: string } = {}): Promise<TokenWithSecret> {
    const body: Schemas["RotateRequest"] = {};
    if (o.gracePeriod) body.grace_period = o.gracePeriod;
    return this.#call("POST", `/v1/tokens/${seg("token", id)}/rotate`, { body, ifVersion: o.ifVersion, signal: o.signal });
  }
  async deleteToken(id: string, o: ChangeOptions = {}): Promise<void> {
    await this.#call("DELETE", `/v1/tokens/${seg("token", id)}`, o);
  }
  /** Hourly verification counts by outcome. */
  async tokenUsage(id: string, q: { from?: string; to?: string } = {}, o: { signal?: AbortSignal } = {}): Promise<UsageCount[]> {
    const a = await this.#call<Schemas["UsageAnswer"]>("GET", `/v1/tokens/${seg("token", id)}/usage`, { query: q, signal: o.signal });
    return a.items;
  }

  // Audit and events.

  /** The audit log: who did what, when, from where; newest first. */
  async audit(q: AuditQuery = {}, o: { signal?: AbortSignal } = {}): Promise<Page<Event>> {
    return this.#call("GET", "/v1/audit", { query: q, signal: o.signal });
  }
  async listEvents(q: EventQuery = {}, o: { signal?: AbortSignal } = {}): Promise<Page<Event>> {
    return this.#call("GET", "/v1/events", { query: q, signal: o.signal });
  }

  /** Resolves when the server's storage is reachable and writable (/readyz). */
  async ready(o: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#call("GET", "/readyz", { noAuth: true, signal: o.signal });
  }

  async #call<T>(
    method: string,
    path: string,
    o: {
      body?: unknown;
      query?: object;
      noAuth?: boolean;
      ifVersion?: number;
      signal?: AbortSignal;
      timeoutMs?: number;
    } = {},
  ): Promise<T> {
    let url = this.baseUrl + path;
    if (o.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(o.query)) {
        if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
      }
      const s = q.toString();
      if (s) url += "?" + s;
    }
    const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
    if (o.body !== undefined) headers["Content-Type"] = "application/json";
    if (!o.noAuth && this.#adminToken) headers.Authorization = "Bearer " + this.#adminToken;
    if (o.ifVersion) headers["If-Match"] = `"${o.ifVersion}"`;
    if (this.#userAgent) headers["User-Agent"] = this.#userAgent;
    const timeout = AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs);
    const signal = o.signal ? anySignal([o.signal, timeout]) : timeout;
    let resp: Response;
    try {
      resp = await this.#fetch(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        // A redirect could carry the admin token to another server: none
        // is followed.
        redirect: "manual",
        signal,
      });
    } catch (e) {
      // The cause names no secret: the URL holds ids and filters only.
      const why = timeout.aborted ? "timed out" : signal.aborted ? "was aborted" : "failed";
      throw new TokendConnectionError(`tokend: ${method} ${path} ${why}`, { cause: e });
    }
    if (resp.status === 0 || (resp.status >= 300 && resp.status <= 399)) {
      await resp.body?.cancel();
      throw new TokendConnectionError(
        `tokend: ${method} ${path} answered a redirect (${resp.status}), which is not followed; set baseUrl to the server's final address`,
      );
    }
    const ok = resp.status >= 200 && resp.status <= 299;
    let text: string | undefined;
    try {
      // An error's problem document is small: what is past the limit is
      // left unread, and the cut document is no problem document.
      text = await readUpTo(resp, ok ? MAX_ANSWER_BYTES : MAX_PROBLEM_BYTES, ok);
    } catch (e) {
      const why = timeout.aborted ? "timed out" : signal.aborted ? "was aborted" : "failed";
      throw new TokendConnectionError(`tokend: reading the answer to ${method} ${path} ${why}`, { cause: e });
    }
    if (!ok) {
      throw problemOf(resp, text ?? "");
    }
    if (text === undefined) {
      throw new TokendConnectionError(`tokend: the answer to ${method} ${path} is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    if (resp.status === 204 || text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      // The parser's message may quote the answer, which may hold a secret.
      throw new TokendConnectionError(`tokend: the answer to ${method} ${path} is not JSON`);
    }
  }
}

/**
 * The body of resp as text, read no further than max bytes: past them, the
 * rest is cancelled unread and the answer is undefined when strict, the
 * first max bytes otherwise. A server (or whatever answers in its place)
 * cannot make the client hold more than max bytes of one answer.
 */
async function readUpTo(resp: Response, max: number, strict: boolean): Promise<string | undefined> {
  const body = resp.body;
  if (!body) return "";
  if (strict && Number(resp.headers.get("Content-Length")) > max) {
    await body.cancel().catch(() => {});
    return undefined;
  }
  const reader = body.getReader();
  const dec = new TextDecoder();
  let text = "";
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + dec.decode();
    if (n + value.byteLength > max) {
      await reader.cancel().catch(() => {});
      return strict ? undefined : text + dec.decode(value.subarray(0, max - n));
    }
    n += value.byteLength;
    text += dec.decode(value, { stream: true });
  }
}

function problemOf(resp: Response, text: string): TokendError {
  let p: Partial<Problem> = {};
  const ct = (resp.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (ct === "application/problem+json" || ct === "application/json") {
    try {
      const v = JSON.parse(text);
      if (v && typeof v === "object" && !Array.isArray(v)) {
        p = {
          type: str(v.type),
          title: str(v.title),
          detail: str(v.detail),
          // A code of a newer server than these types is passed on as it came.
          code: str(v.code) as Problem["code"],
          errors: Array.isArray(v.errors)
            ? v.errors.filter((f: unknown) => f && typeof f === "object").map((f: { field?: unknown; message?: unknown }) => ({
                field: str(f.field) ?? "",
                message: str(f.message) ?? "",
              }))
            : undefined,
        };
      }
    } catch {
      // Not a problem document after all: the status speaks.
    }
  }
  let retry: number | undefined;
  const ra = resp.headers.get("Retry-After");
  if (ra && /^\d+$/.test(ra)) retry = Number(ra) * 1000;
  return new TokendError(resp.status, p, retry);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function seg(kind: string, id: string): string {
  if (typeof id !== "string" || id === "" || id === "." || id === "..") {
    throw new TypeError(`tokend: invalid ${kind} id ${JSON.stringify(id)}`);
  }
  return encodeURIComponent(id);
}

function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any(signals);
  const c = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}
