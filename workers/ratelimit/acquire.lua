-- Grant one call costing ARGV[6] tokens, or refuse with the seconds to wait.
-- ARGV: now, window_s, rpm, tpm, concurrency (0 = no such limit), tokens, reserve (share of
-- each limit this call must leave unused: 0 for live), grant id, lease_s, recovery per window.
-- Returns {granted 0/1, wait_ms, reason, remaining requests, remaining tokens} (-1 = no limit).
local now = clock(ARGV[1])
local window, rpm, tpm, concurrency = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens, reserve, id, lease = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local recovery = tonumber(ARGV[10])

local paused_until = state_number('paused_until', 0)
if paused_until > now then
  return {0, math.ceil((paused_until - now) * 1000), 'paused', -1, -1}
end
if tpm > 0 and tokens > tpm then
  return {0, math.ceil(window * 1000), 'too_large', -1, -1}
end

local factor = current_factor(now, window, recovery)
local cutoff = now - window
local wait, reason = 0, 'ok'
local remaining = {-1, -1}

local used_requests = rpm > 0 and evict(REQ_LOG, REQ_AMT, 'req_used', cutoff) or 0
local used_tokens = tpm > 0 and evict(TOK_LOG, TOK_AMT, 'tok_used', cutoff) or 0
-- An empty window (no call in it, whatever the calls settled to) admits one call even above
-- a reserve, so a large call is never stuck.
local empty
if rpm > 0 then empty = used_requests == 0 else empty = used_tokens == 0 end

local function check(index, log, amounts, used, limit, cost, name)
  if limit <= 0 then return end
  local in_force = effective(limit, factor)
  local allowed = in_force - math.floor(in_force * reserve)
  remaining[index] = in_force - used
  local need = used + cost - allowed
  if need > 0 and not empty then
    local w = wait_for(log, amounts, need, now, window)
    if w > wait then wait, reason = w, name end
  end
end

check(1, REQ_LOG, REQ_AMT, used_requests, rpm, 1, 'requests')
check(2, TOK_LOG, TOK_AMT, used_tokens, tpm, tokens, 'tokens')
if concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', INFLIGHT, '-inf', now)
  local in_force = effective(concurrency, factor)
  local allowed = math.max(1, in_force - math.floor(in_force * reserve))
  if redis.call('ZCARD', INFLIGHT) >= allowed and wait == 0 then
    wait, reason = 0.05, 'concurrency'  -- freed when a call ends: poll soon
  end
end
if reason ~= 'ok' then
  return {0, math.max(1, math.ceil(wait * 1000)), reason, remaining[1], remaining[2]}
end

if rpm > 0 then record(REQ_LOG, REQ_AMT, 'req_used', id, 1, now); remaining[1] = remaining[1] - 1 end
if tpm > 0 then record(TOK_LOG, TOK_AMT, 'tok_used', id, tokens, now); remaining[2] = remaining[2] - tokens end
if concurrency > 0 then redis.call('ZADD', INFLIGHT, now + lease, id) end
keep_for(math.max(window, lease) * 2)
return {1, 0, 'ok', remaining[1], remaining[2]}
