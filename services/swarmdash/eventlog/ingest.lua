-- Append a batch of events to the stream and update state, atomically, at most once per
-- idempotency key.
-- KEYS[1] stream, KEYS[2] swarms set, KEYS[3] idempotency key, KEYS[4] the index of its
-- API key's idempotency keys (both unused when ARGV[7] is 0)
-- ARGV[1] approximate MAXLEN, ARGV[2] finished tasks kept per swarm, ARGV[3] swarm key prefix,
-- ARGV[4] agents suffix, ARGV[5] tasks suffix, ARGV[6] finished-tasks suffix,
-- ARGV[7] seconds the idempotency key is kept (0: no key), ARGV[8] the batch's digest,
-- ARGV[9] idempotency keys kept per API key at most, ARGV[10] now (seconds),
-- ARGV[11] most agents per swarm, ARGV[12] most open (not finished) tasks per swarm,
-- ARGV[13] most swarms,
-- then 6 values per event: swarm, kind (agent|task|-), state field, finished (1|0), ts, json.
-- Returns {0 (stored) or 1 (already stored under that key), "id1,id2,..."}, or
-- {2, limit name, swarm, limit} when the batch would take a swarm past a state limit, or
-- {3, ''} when the idempotency key names another batch (then nothing is stored).
local stream, swarms = KEYS[1], KEYS[2]
local maxlen, keep, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local agents_sfx, tasks_sfx, done_sfx = ARGV[4], ARGV[5], ARGV[6]
local idem_ttl, digest = tonumber(ARGV[7]), ARGV[8]
local max_agents, max_open = tonumber(ARGV[11]), tonumber(ARGV[12])
local max_swarms = tonumber(ARGV[13])
local first = 14
if idem_ttl > 0 then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local sep = string.find(seen, ' ', 1, true)
    if not sep or string.sub(seen, 1, sep - 1) ~= digest then return {3, ''} end
    return {1, string.sub(seen, sep + 1)}
  end
end
-- The state limits, checked before anything is written: swarms the batch adds, agents it
-- adds, and tasks it leaves open that were not open before, per swarm. A swarm whose
-- counts stay within the limits even if every agent and task of the batch were new needs
-- no look-up per agent or task; only one near a limit is counted exactly.
local agents_in, tasks_in = {}, {}  -- per swarm: distinct agents; task field -> open after
local swarm_seen, new_swarms, a_new_swarm = {}, 0, nil
for b = first, #ARGV, 6 do
  local swarm, kind, field, finished = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if not swarm_seen[swarm] then
    swarm_seen[swarm] = true
    agents_in[swarm], tasks_in[swarm] = {}, {}
    if redis.call('SISMEMBER', swarms, swarm) == 0 then
      new_swarms = new_swarms + 1
      a_new_swarm = a_new_swarm or swarm
    end
  end
  if kind == 'agent' then
    agents_in[swarm][field] = true
  elseif kind == 'task' then
    tasks_in[swarm][field] = (finished == '1') and 0 or 1
  end
end
if new_swarms > 0 and redis.call('SCARD', swarms) + new_swarms > max_swarms then
  return {2, 'MAX_SWARMS', a_new_swarm, max_swarms}
end
for swarm, fields in pairs(agents_in) do
  local n = 0
  for _ in pairs(fields) do n = n + 1 end
  if n > 0 then
    local agents = prefix .. swarm .. agents_sfx
    local held = redis.call('HLEN', agents)
    if held + n > max_agents then
      local new = 0
      for f in pairs(fields) do
        if redis.call('HEXISTS', agents, f) == 0 then new = new + 1 end
      end
      if held + new > max_agents then return {2, 'MAX_AGENTS_PER_SWARM', swarm, max_agents} end
    end
  end
end
for swarm, fields in pairs(tasks_in) do
  local most = 0  -- tasks the batch leaves open: at most this many more than before
  for _, now in pairs(fields) do most = most + now end
  if most > 0 then
    local tasks, done = prefix .. swarm .. tasks_sfx, prefix .. swarm .. done_sfx
    local open = redis.call('HLEN', tasks) - redis.call('ZCARD', done)
    if open + most > max_open then
      local opened = 0
      for f, now in pairs(fields) do
        local was = redis.call('HEXISTS', tasks, f) == 1 and not redis.call('ZSCORE', done, f)
        opened = opened + now - (was and 1 or 0)
      end
      if opened > 0 and open + opened > max_open then
        return {2, 'MAX_OPEN_TASKS_PER_SWARM', swarm, max_open}
      end
    end
  end
end
local ids = {}
local listed = {}  -- swarms already added to the set by this batch
for b = first, #ARGV, 6 do
  local swarm, kind, field, finished, ts, body =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', body)
  ids[#ids + 1] = id
  if not listed[swarm] then
    redis.call('SADD', swarms, swarm)
    listed[swarm] = true
  end
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
