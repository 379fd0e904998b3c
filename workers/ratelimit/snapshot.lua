-- The bucket as /v1/limits shows it. ARGV: now, window_s, recovery per window.
-- Returns {requests used, tokens used, calls in flight, seconds paused, factor}.
local now = clock(ARGV[1])
local window, recovery = tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now - window
local req = evict(REQ_LOG, REQ_AMT, 'req_used', cutoff)
local tok = evict(TOK_LOG, TOK_AMT, 'tok_used', cutoff)
redis.call('ZREMRANGEBYSCORE', INFLIGHT, '-inf', now)
local paused = math.max(0, state_number('paused_until', 0) - now)
return {req, tok, redis.call('ZCARD', INFLIGHT), tostring(paused), tostring(current_factor(now, window, recovery))}
