-- Read budgets' figures (expired reservations released first).
-- KEYS: per budget its counter HASH and holds ZSET. ARGV: now_ms.
-- Returns {'missing', i} or {'ok', spent_n, spent_t, res_n, res_t, ...} in KEYS order.
local count = #KEYS / 2
for i = 1, count do
  if not counter_exists(KEYS[2 * i - 1]) then return {'missing', i} end
end
local out = {'ok'}
for i = 1, count do
  purge_expired(KEYS[2 * i - 1], KEYS[2 * i], ARGV[1])
  for _, value in ipairs(figures(KEYS[2 * i - 1])) do out[#out + 1] = value end
end
return out
