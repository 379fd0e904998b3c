-- Reserve one call's maximum cost against every budget that applies, all or nothing.
-- KEYS: per budget its counter HASH and holds ZSET.
-- ARGV: now_ms, member, expires_ms, then per budget: limit_n, limit_t (-1: no limit), nano, tokens.
-- Returns {'ok'}, {'missing', i} (rebuild budget i, then call again) or
-- {'exhausted', i, spent_n, spent_t, res_n, res_t}.
local now_ms, member, expires_ms = ARGV[1], ARGV[2], ARGV[3]
local count = #KEYS / 2
for i = 1, count do
  if not counter_exists(KEYS[2 * i - 1]) then return {'missing', i} end
end
for i = 1, count do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  purge_expired(counter, holds, now_ms)
  if redis.call('HEXISTS', counter, 'r:' .. member) == 0 then
    local base = 3 + 4 * (i - 1)
    local limit_n, limit_t = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
    local nano, tokens = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
    local f = figures(counter)
    if (limit_n >= 0 and f[1] + f[3] + nano > limit_n) or (limit_t >= 0 and f[2] + f[4] + tokens > limit_t) then
      return {'exhausted', i, f[1], f[2], f[3], f[4]}
    end
  end
end
for i = 1, count do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('HEXISTS', counter, 'r:' .. member) == 0 then
    local base = 3 + 4 * (i - 1)
    local nano, tokens = ARGV[base + 3], ARGV[base + 4]
    redis.call('HINCRBY', counter, 'res_n', nano)
    redis.call('HINCRBY', counter, 'res_t', tokens)
    redis.call('HSET', counter, 'r:' .. member, nano .. ' ' .. tokens)
    redis.call('ZADD', holds, expires_ms, member)
    local ttl = redis.call('TTL', counter)
    if ttl > 0 then redis.call('EXPIRE', holds, ttl) end
  end
end
return {'ok'}
