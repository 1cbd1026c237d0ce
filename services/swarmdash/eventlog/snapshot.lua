-- Read agent and task state with the stream's last ID, atomically.
-- KEYS[1] stream, KEYS[2] swarms set; ARGV[1] swarm key prefix, ARGV[2] swarm name or '*',
-- ARGV[3] agents suffix, ARGV[4] tasks suffix.
-- Returns {last_id, swarm1, agents1, tasks1, swarm2, ...}.
local last = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
end
local names
if ARGV[2] == '*' then names = redis.call('SMEMBERS', KEYS[2]) else names = {ARGV[2]} end
local out = {last}
for _, s in ipairs(names) do
  out[#out + 1] = s
  out[#out + 1] = redis.call('HVALS', ARGV[1] .. s .. ARGV[3])
  out[#out + 1] = redis.call('HVALS', ARGV[1] .. s .. ARGV[4])
end
return out
