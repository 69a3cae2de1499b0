package redislimit

import "github.com/redis/go-redis/v9"

// Operations of rateScript.
const (
	opRefund = -1
	opPeek   = 0
	opTake   = 1
)

// rateScript is GCRA on one key holding the theoretical arrival time (TAT)
// of the next request, in µs. Lua numbers are doubles, exact for integers
// up to 2^53: µs since 1970 fit with room to spare, ns would not.
//
// KEYS[1] the token's key
// ARGV[1] interval, µs; ARGV[2] burst, µs; ARGV[3] opTake, opPeek or
// opRefund; ARGV[4] now, µs, or "" for Redis' clock
//
// It answers {allowed (1 or 0), backlog in µs after the operation}. The key
// lives exactly as long as its backlog: once paid off it is gone.
var rateScript = redis.NewScript(`
-- Before Redis 5, a script that reads TIME may write only in this mode;
-- from 5 on it is the default, and from 7 on a no-op.
redis.replicate_commands()
local now
if ARGV[4] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[4])
end
local interval, burst, op = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call("GET", KEYS[1])) or now
local backlog = math.max(tat - now, 0)
if op == 0 then
  return {1, backlog}
end
if op > 0 then
  if backlog > burst then
    return {0, backlog}
  end
  backlog = backlog + interval
else
  backlog = math.max(backlog - interval, 0)
end
if backlog > 0 then
  redis.call("SET", KEYS[1], string.format("%.0f", now + backlog),
    "PX", string.format("%.0f", math.ceil(backlog / 1000)))
else
  redis.call("DEL", KEYS[1])
end
return {1, backlog}
`)

// failScript counts one failure of an address in a fixed window that starts
// with its first failure.
//
// KEYS[1] the address's key; ARGV[1] the window, ms
//
// It answers {failures in the window so far, ms left of the window}. The
// expiry is set whenever the key has none, so that no count outlives its
// window even if it was made some other way.
var failScript = redis.NewScript(`
local n = redis.call("INCR", KEYS[1])
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)
