-- Settle a call: drop its reservation, add what it cost to the period it is counted in.
-- KEYS: per budget the reservation's counter HASH and holds ZSET, then the counter HASH of the
-- period the cost belongs to (usually the same HASH).
-- ARGV: member, then per budget: nano, tokens.
-- A missing counter gets nothing added: the usage row is already committed, so the rebuild
-- that recreates it reads this call from the database.
-- Returns per budget {spent_n, spent_t} after the settle, or {-1, -1} when missing.
local member = ARGV[1]
local out = {}
for i = 1, #KEYS / 3 do
  local counter, holds, spent = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  drop_hold(counter, holds, member)
  if counter_exists(spent) then
    out[#out + 1] = redis.call('HINCRBY', spent, 'spent_n', ARGV[2 * i])
    out[#out + 1] = redis.call('HINCRBY', spent, 'spent_t', ARGV[2 * i + 1])
  else
    out[#out + 1] = -1
    out[#out + 1] = -1
  end
end
return out
