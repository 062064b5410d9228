/**
 * The Lua script of a global rate bucket (DESIGN §11): one key, so one Cluster
 * slot, and Redis `TIME` as the only clock.
 */

/**
 * Takes up to `want` from, and gives `give` back to, the bucket at `KEYS[1]`.
 *
 * The bucket is a HASH `{ level, at }`: `level` refills continuously at
 * `capacity` a minute up to `capacity`; a missing key is a full bucket. It
 * adds `give` first (an unused lease coming back; a negative `give` is a
 * debt), grants `min(want, floor(level))` (possibly 0), and answers
 * `{ grant, wait }`: when less than `least` was granted, `wait` is how long
 * (ms, Redis clock) until the rest of `least` is there, else 0. The key
 * expires `keep` ms after the bucket would be full again, when deleting it
 * changes nothing.
 *
 * ARGV: capacity (per minute), want, least, give, keep (ms).
 */
export const take = `
local capacity = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local least = tonumber(ARGV[3])
local give = tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1])
local at = tonumber(state[2])
if level == nil or at == nil then
  level = capacity
  at = now
end
if now > at then
  level = level + (now - at) * capacity / 60000
  at = now
end
level = math.min(capacity, level + give)
local grant = 0
if want > 0 and level >= 1 then
  grant = math.min(want, math.floor(level))
end
level = level - grant
local wait = 0
if grant < least then
  wait = math.max(1, math.ceil((math.min(least - grant, capacity) - level) * 60000 / capacity))
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], keep + math.ceil((capacity - level) * 60000 / capacity))
return { grant, wait }
`
