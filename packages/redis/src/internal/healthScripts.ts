/**
 * The Lua scripts of the shared model health. Each touches the keys of ONE
 * model (`health` HASH, `probe` STRING lease, `reporters` ZSET), which share
 * the model's hash tag and so one Cluster slot; each reads Redis `TIME`, so
 * the instances' clocks never matter; each gives every key it writes a TTL.
 *
 * The `health` hash: `hold_until`, `hold_reason`, `hold_by` (a hold: epoch
 * millis of Redis time, the reason, the instance that set it) and
 * `open_until`, `open_reason`, `open_by`, `open_for` (the fleet's breaker:
 * open until `open_until`, half-open after it until a probe closes or
 * reopens it; `open_for` is the last open period, doubled when a probe fails).
 *
 * Every script answers the model's state as JSON (`State` below), and
 * publishes the same JSON on the channel when it changed something.
 */
import * as RedisConnection from "../RedisConnection.js"

/** The state of one model in Redis, as the scripts answer and publish it. */
export interface State {
  /** The model. */
  readonly m: string
  /** Redis TIME when it was read, epoch millis. */
  readonly t: number
  /** 1 when this script changed it. */
  readonly c: number
  readonly hold_until?: string
  readonly hold_reason?: string
  readonly hold_by?: string
  readonly open_until?: string
  readonly open_reason?: string
  readonly open_by?: string
  readonly open_for?: string
  /** The probe lease's holder, and its remaining time in millis. */
  readonly p?: string
  readonly pt?: number
}

/** Parses a script's answer or a message; `undefined` for anything else. */
export const parseState = (text: unknown): State | undefined => {
  if (typeof text !== "string") return undefined
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value !== "object" || value === null) return undefined
    const record = value as Record<string, unknown>
    if (typeof record.m !== "string" || typeof record.t !== "number") return undefined
    return value as State
  } catch {
    return undefined
  }
}

const prelude = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function state(hkey, pkey, model, now, changed)
  local h = redis.call('HGETALL', hkey)
  local s = { m = model, t = now, c = changed }
  for i = 1, #h, 2 do s[h[i]] = h[i + 1] end
  local owner = redis.call('GET', pkey)
  if owner then
    s.p = owner
    s.pt = redis.call('PTTL', pkey)
  end
  return cjson.encode(s)
end
local function extend(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end
`

/**
 * A hold: KEYS health, probe; ARGV model, instance, holdForMillis, reason,
 * marginMillis, channel. Never shortens a longer hold.
 */
export const hold = RedisConnection.script(
  "health.hold",
  `${prelude}
local now = nowms()
local untilTs = now + tonumber(ARGV[3])
local current = tonumber(redis.call('HGET', KEYS[1], 'hold_until') or '0')
if untilTs <= current then return state(KEYS[1], KEYS[2], ARGV[1], now, 0) end
redis.call('HSET', KEYS[1], 'hold_until', untilTs, 'hold_reason', ARGV[4], 'hold_by', ARGV[2])
extend(KEYS[1], untilTs - now + tonumber(ARGV[5]))
local s = state(KEYS[1], KEYS[2], ARGV[1], now, 1)
redis.call('PUBLISH', ARGV[6], s)
return s
`
)

/**
 * An instance's breaker opened: KEYS health, probe, reporters; ARGV model,
 * instance, openForMillis, reason, windowMillis, minReporters,
 * maxOpenForMillis, leaseMillis, marginMillis, channel, probe ("1" when the
 * fleet's probe failed).
 *
 * The instance joins the reporters (those older than the window drop out).
 * The fleet's probe failing reopens the breaker for twice the last period
 * (at least `openFor`, at most `maxOpenFor`). Otherwise, with no open
 * breaker, it opens for `openFor` once `minReporters` instances reported
 * within the window; an open or half-open breaker is left as it is (only the
 * probe speaks for it). Whoever opens it holds the probe lease until the
 * open period and one lease more have passed.
 */
export const open = RedisConnection.script(
  "health.open",
  `${prelude}
local now = nowms()
local me = ARGV[2]
redis.call('ZADD', KEYS[3], now, me)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[5])))
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
local maxOpenFor = tonumber(ARGV[7])
local openFor = math.min(tonumber(ARGV[3]), maxOpenFor)
local openUntil = redis.call('HGET', KEYS[1], 'open_until')
local owner = redis.call('GET', KEYS[2])
local by = redis.call('HGET', KEYS[1], 'open_by')
local duration
if ARGV[11] == '1' and openUntil and (owner == me or (not owner and by == me)) then
  local last = tonumber(redis.call('HGET', KEYS[1], 'open_for') or '0')
  duration = math.max(openFor, math.min(maxOpenFor, 2 * last))
elseif openUntil then
  return state(KEYS[1], KEYS[2], ARGV[1], now, 0)
elseif redis.call('ZCARD', KEYS[3]) < tonumber(ARGV[6]) then
  return state(KEYS[1], KEYS[2], ARGV[1], now, 0)
else
  duration = openFor
end
local lease = tonumber(ARGV[8])
redis.call('HSET', KEYS[1], 'open_until', now + duration, 'open_reason', ARGV[4], 'open_by', me, 'open_for', duration)
redis.call('SET', KEYS[2], me, 'PX', duration + lease)
extend(KEYS[1], duration + lease + tonumber(ARGV[9]))
local s = state(KEYS[1], KEYS[2], ARGV[1], now, 1)
redis.call('PUBLISH', ARGV[10], s)
return s
`
)

/**
 * The probe lease, once the open period is over: KEYS health, probe; ARGV
 * model, instance, leaseMillis. `SET NX PX`: one instance of the fleet wins.
 */
export const acquire = RedisConnection.script(
  "health.acquire",
  `${prelude}
local now = nowms()
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if openUntil == 0 or openUntil > now then return state(KEYS[1], KEYS[2], ARGV[1], now, 0) end
local won = redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', tonumber(ARGV[3]))
return state(KEYS[1], KEYS[2], ARGV[1], now, won and 1 or 0)
`
)

/**
 * The fleet's probe answered (or the instance that opened the breaker saw a
 * success): KEYS health, probe, reporters; ARGV model, instance, channel.
 * When this instance holds the lease (or opened the breaker and nobody holds
 * it), the breaker closes for the fleet: its fields, the lease and the
 * reporters go; the hash goes too unless a hold stands.
 */
export const close = RedisConnection.script(
  "health.close",
  `${prelude}
local now = nowms()
local me = ARGV[2]
local owner = redis.call('GET', KEYS[2])
local by = redis.call('HGET', KEYS[1], 'open_by')
if not (owner == me or (not owner and by == me)) then
  redis.call('ZREM', KEYS[3], me)
  return state(KEYS[1], KEYS[2], ARGV[1], now, 0)
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], 'open_until', 'open_reason', 'open_by', 'open_for')
local holdUntil = tonumber(redis.call('HGET', KEYS[1], 'hold_until') or '0')
if holdUntil <= now then redis.call('DEL', KEYS[1]) end
local s = state(KEYS[1], KEYS[2], ARGV[1], now, 1)
redis.call('PUBLISH', ARGV[3], s)
return s
`
)

/** Gives the probe lease back if this instance holds it: KEYS probe; ARGV instance. */
export const release = RedisConnection.script(
  "health.release",
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`
)

/**
 * Keeps the probe lease while this instance sends a probe: KEYS probe; ARGV
 * instance, millis. Extends it to `millis` from now if this instance holds it.
 */
export const renew = RedisConnection.script(
  "health.renew",
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 1
`
)

/** Reads a model's state: KEYS health, probe; ARGV model. */
export const read = RedisConnection.script(
  "health.read",
  `${prelude}
return state(KEYS[1], KEYS[2], ARGV[1], nowms(), 0)
`
)
