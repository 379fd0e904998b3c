-- What the provider told us. ARGV[2] is the signal:
--   pause    seconds                          -> nobody calls until then (a 429's retry-after)
--   resync   kind, limit, remaining, reset_s, window, id
--                                             -> x-ratelimit-* headers: if the provider has less
--                                                left than we think, count the difference as used
--                                                until its window resets
--   penalize window, decrease, min_factor, cooldown_s, recovery
--                                             -> AIMD: shrink the limits in force (a bare 429)
-- Returns the number of seconds paused, the amount added, or the new factor.
local now = clock(ARGV[1])
local signal = ARGV[2]

if signal == 'pause' then
  local seconds = tonumber(ARGV[3])
  local until_ = math.max(state_number('paused_until', 0), now + seconds)
  redis.call('HSET', STATE, 'paused_until', until_)
  redis.call('PEXPIRE', STATE, math.ceil((until_ - now + 60) * 1000))
  return tostring(until_ - now)
end

if signal == 'resync' then
  local kind, limit, left = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local reset_s, window, id = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
  local log, amounts, used_field = REQ_LOG, REQ_AMT, 'req_used'
  if kind == 'tokens' then log, amounts, used_field = TOK_LOG, TOK_AMT, 'tok_used' end
  local used = evict(log, amounts, used_field, now - window)
  local ours = effective(limit, state_number('factor', 1)) - used
  if left >= ours then return 0 end
  local missing = ours - left
  -- Dated so that it leaves our window when the provider's resets.
  record(log, amounts, used_field, id, missing, math.min(now, now + reset_s - window))
  keep_for(window * 2)
  return missing
end

if signal == 'penalize' then
  local window, decrease, floor_ = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local cooldown, recovery = tonumber(ARGV[6]), tonumber(ARGV[7])
  local factor = current_factor(now, window, recovery)
  if now - state_number('decreased_at', -1e18) < cooldown then return tostring(factor) end
  factor = math.max(floor_, factor * decrease)
  redis.call('HSET', STATE, 'factor', factor, 'factor_ts', now, 'decreased_at', now)
  return tostring(factor)
end

return redis.error_reply('unknown signal ' .. tostring(signal))
