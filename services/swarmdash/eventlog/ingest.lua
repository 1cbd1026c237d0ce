-- Append a batch of events to the stream and update state, atomically, at most once per
-- idempotency key.
-- KEYS[1] stream, KEYS[2] swarms set, KEYS[3] idempotency key, KEYS[4] the index of its
-- API key's idempotency keys (both unused when ARGV[7] is 0)
-- ARGV[1] approximate MAXLEN, ARGV[2] finished tasks kept per swarm, ARGV[3] swarm key prefix,
-- ARGV[4] agents suffix, ARGV[5] tasks suffix, ARGV[6] finished-tasks suffix,
-- ARGV[7] seconds the idempotency key is kept (0: no key), ARGV[8] the batch's digest,
-- ARGV[9] idempotency keys kept per API key at most, ARGV[10] now (seconds),
-- then 6 values per event: swarm, kind (agent|task|-), state field, finished (1|0), ts, json.
-- Returns {0 (stored), 1 (already stored under that key) or 2 (the key names another
-- batch: nothing stored), "id1,id2,..."}.
local stream, swarms = KEYS[1], KEYS[2]
local maxlen, keep, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local agents_sfx, tasks_sfx, done_sfx = ARGV[4], ARGV[5], ARGV[6]
local idem_ttl, digest = tonumber(ARGV[7]), ARGV[8]
if idem_ttl > 0 then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local sep = string.find(seen, ' ', 1, true)
    if not sep or string.sub(seen, 1, sep - 1) ~= digest then return {2, ''} end
    return {1, string.sub(seen, sep + 1)}
  end
end
local ids = {}
for b = 11, #ARGV, 6 do
  local swarm, kind, field, finished, ts, body =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', body)
  ids[#ids + 1] = id
  redis.call('SADD', swarms, swarm)
  if kind ~= '-' then
    local stored = '{"id":"' .. id .. '",' .. string.sub(body, 2)
    if kind == 'agent' then
      redis.call('HSET', prefix .. swarm .. agents_sfx, field, stored)
    else
      local tasks, done = prefix .. swarm .. tasks_sfx, prefix .. swarm .. done_sfx
      redis.call('HSET', tasks, field, stored)
      if finished == '1' then
        redis.call('ZADD', done, ts, field)
        local extra = redis.call('ZCARD', done) - keep
        if extra > 0 then
          local old = redis.call('ZRANGE', done, 0, extra - 1)
          redis.call('ZREMRANGEBYRANK', done, 0, extra - 1)
          for _, t in ipairs(old) do redis.call('HDEL', tasks, t) end
        end
      else
        redis.call('ZREM', done, field)
      end
    end
  end
end
local joined = table.concat(ids, ',')
if idem_ttl > 0 then
  local index, now = KEYS[4], tonumber(ARGV[10])
  redis.call('SET', KEYS[3], digest .. ' ' .. joined, 'EX', idem_ttl)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now - idem_ttl)
  redis.call('ZADD', index, now, KEYS[3])
  local extra = redis.call('ZCARD', index) - tonumber(ARGV[9])
  if extra > 0 then
    local old = redis.call('ZRANGE', index, 0, extra - 1)
    redis.call('ZREMRANGEBYRANK', index, 0, extra - 1)
    for _, k in ipairs(old) do redis.call('DEL', k) end
  end
  redis.call('EXPIRE', index, idem_ttl)
end
return {0, joined}
