-- Shared by every budget script: a budget period's counter HASH holds
--   spent_n, spent_t   nano-dollars and tokens settled (rebuilt from the database when lost)
--   res_n, res_t       nano-dollars and tokens reserved by calls in flight
--   r:<member>         one reservation's "<nano> <tokens>"
-- and its holds ZSET scores each reservation's member by when it expires (ms). A counter with
-- no spent_n field is missing (flushed, evicted, never built): no script creates it but init.

local function num(value)
  if value then return tonumber(value) end
  return 0
end

local function counter_exists(counter)
  return redis.call('HEXISTS', counter, 'spent_n') == 1
end

-- Take one reservation off the counter; true if it was held.
local function drop_hold(counter, holds, member)
  local amounts = redis.call('HGET', counter, 'r:' .. member)
  redis.call('ZREM', holds, member)
  if not amounts then return false end
  local nano, tokens = string.match(amounts, '(%-?%d+) (%-?%d+)')
  redis.call('HINCRBY', counter, 'res_n', -tonumber(nano))
  redis.call('HINCRBY', counter, 'res_t', -tonumber(tokens))
  redis.call('HDEL', counter, 'r:' .. member)
  return true
end

-- Release the reservations that expired (their worker died before settling).
local function purge_expired(counter, holds, now_ms)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms, 'LIMIT', 0, 200)
  for _, member in ipairs(expired) do
    drop_hold(counter, holds, member)
  end
end

local function figures(counter)
  local v = redis.call('HMGET', counter, 'spent_n', 'spent_t', 'res_n', 'res_t')
  return {num(v[1]), num(v[2]), num(v[3]), num(v[4])}
end
