-- Create a lost counter from the database's sums, unless another process already did.
-- KEYS: the counter HASH. ARGV: spent_n, spent_t, expire_at (epoch seconds).
if counter_exists(KEYS[1]) then return 0 end
redis.call('HSET', KEYS[1], 'spent_n', ARGV[1], 'spent_t', ARGV[2])
redis.call('HSETNX', KEYS[1], 'res_n', 0)
redis.call('HSETNX', KEYS[1], 'res_t', 0)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
