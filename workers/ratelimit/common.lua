-- Helpers shared by every limiter script; Python prepends this file to each script body.
--
-- A bucket is a (provider, model) pair, or a tenant. Its keys:
--   KEYS[1] requests log: ZSET grant id -> grant time      KEYS[2] HASH grant id -> amount
--   KEYS[3] tokens log:   ZSET grant id -> grant time      KEYS[4] HASH grant id -> amount
--   KEYS[5] state HASH: req_used, tok_used, paused_until, factor, factor_ts, decreased_at
--   KEYS[6] in-flight calls: ZSET grant id -> lease expiry
-- Each log is a weighted sliding window: an amount counts from its grant time for one window.
-- Times are seconds (floats); the clock is Redis's own TIME unless a test passes one.

local REQ_LOG, REQ_AMT, TOK_LOG, TOK_AMT, STATE, INFLIGHT = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CHUNK = 500

local function clock(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function state_number(field, default)
  local value = redis.call('HGET', STATE, field)
  if value then return tonumber(value) end
  return default
end

-- Forget amounts granted at or before `cutoff`; returns the amount still in the window.
local function evict(log, amounts, used_field, cutoff)
  while true do
    local old = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff, 'LIMIT', 0, CHUNK)
    if #old == 0 then break end
    local freed = 0
    for _, amount in ipairs(redis.call('HMGET', amounts, unpack(old))) do
      freed = freed + (tonumber(amount) or 0)
    end
    redis.call('HDEL', amounts, unpack(old))
    redis.call('ZREM', log, unpack(old))
    if freed > 0 then redis.call('HINCRBY', STATE, used_field, 0 - freed) end
  end
  return state_number(used_field, 0)
end

-- Seconds until `need` of the oldest amounts have left the window.
local function wait_for(log, amounts, need, now, window)
  local start = 0
  while true do
    local entries = redis.call('ZRANGE', log, start, start + CHUNK - 1, 'WITHSCORES')
    if #entries == 0 then return window end
    local ids = {}
    for i = 1, #entries, 2 do ids[#ids + 1] = entries[i] end
    local values = redis.call('HMGET', amounts, unpack(ids))
    for i = 1, #ids do
      need = need - (tonumber(values[i]) or 0)
      if need <= 0 then return tonumber(entries[2 * i]) + window - now end
    end
    start = start + CHUNK
  end
end

local function record(log, amounts, used_field, id, amount, at)
  redis.call('ZADD', log, at, id)
  redis.call('HSET', amounts, id, amount)
  redis.call('HINCRBY', STATE, used_field, amount)
end

-- The share of the configured limits in force: AIMD lowers it, and it recovers linearly.
local function current_factor(now, window, recovery)
  local factor = state_number('factor', 1)
  if factor >= 1 then return 1 end
  local since = state_number('factor_ts', now)
  factor = math.min(1, factor + recovery * math.max(0, now - since) / window)
  redis.call('HSET', STATE, 'factor', factor, 'factor_ts', now)
  return factor
end

local function effective(limit, factor)
  return math.max(1, math.floor(limit * factor))
end

-- Idle buckets expire: a window after the last grant, or after a longer pause.
local function keep_for(seconds)
  local ms = math.ceil(seconds * 1000)
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ms) end
end
