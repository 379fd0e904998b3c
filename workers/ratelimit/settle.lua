-- A call ended: free its in-flight slot and correct its tokens to what the provider reported.
-- ARGV: grant id, actual tokens (-1 keeps the estimate). A settle with no tokens to correct
-- is a plain ZREM of the in-flight slot (Limiter.settle), not this script.
local id, actual = ARGV[1], tonumber(ARGV[2])
redis.call('ZREM', INFLIGHT, id)
if actual >= 0 then
  local granted = redis.call('HGET', TOK_AMT, id)
  if granted then  -- still in the window
    redis.call('HSET', TOK_AMT, id, actual)
    redis.call('HINCRBY', STATE, 'tok_used', actual - tonumber(granted))
  end
end
return 1
