"""The Lua scripts RedisStore runs inside Redis: one round trip each, atomic.

Why scripts rather than plain MULTI/EXEC: a write must be refused when a newer writer's
term is fenced in, and a name must not be written over when another owner holds it. Both
are decisions on what Redis holds at the moment of the write; a script makes them there,
in the same single round trip the MULTI/EXEC took.

Keys are computed inside the scripts from the prefix, as `mountdns.keyspace` spells them
(standalone Redis allows it; Redis Cluster would not).
"""

from __future__ import annotations

# One round trip per lookup, whatever the name turns out to be: find the zone by
# walking up the name, then the child, parent and node keys. A parent's value is
# `<owner>/<node>`, its node key's suffix; a child's is `<owner>/<target>`.
RESOLVE_SCRIPT = """
local prefix, qname = ARGV[1], ARGV[2]
local zone = qname
while redis.call('SISMEMBER', prefix .. 'zones', zone) == 0 do
  local dot = string.find(zone, '.', 1, true)
  if not dot then return {'outside'} end
  zone = string.sub(zone, dot + 1)
end
local z = redis.call('HMGET', prefix .. 'zone:' .. zone,
  'nameservers', 'hostmaster', 'ttl', 'refresh', 'retry', 'expire', 'minimum', 'serial')
for i = 1, 8 do if not z[i] then z[i] = '' end end
local kind, value = 'none', ''
if qname == zone then
  kind = 'apex'
else
  local target = redis.call('GET', prefix .. 'child:' .. qname)
  if target then
    local slash = string.find(target, '/', 1, true)
    if slash then target = string.sub(target, slash + 1) end
    kind, value = 'child', target
  else
    local node = redis.call('GET', prefix .. 'parent:' .. qname)
    if node then
      kind = 'parent'
      value = redis.call('GET', prefix .. 'node:' .. node) or ''
    end
  end
end
return {kind, value, zone, z[1], z[2], z[3], z[4], z[5], z[6], z[7], z[8]}
"""

# A sync starting to lead: record its term unless a newer one is there.
# KEYS[1] the owner's fence key; ARGV[1] the term.
TAKE_TERM_SCRIPT = """
local recorded = tonumber(redis.call('GET', KEYS[1]) or '-1')
local term = tonumber(ARGV[1])
if recorded > term then return {'fenced', tostring(recorded)} end
if recorded < term then redis.call('SET', KEYS[1], ARGV[1]) end
return {'ok'}
"""

# A batch of changes, all or nothing. ARGV: prefix, owner, term ('' = unfenced), marker
# ('write', 'require' or ''), marker value, initial serial, earlier ('1' when an earlier
# chunk of the same batch wrote something: the serials and the announcement then follow
# even if this chunk writes nothing), then sections, each a count
# followed by that many entries (see RedisStore.apply for the order), last the
# announcement: 0 (none), 1 (when something was written) or 2 (always), then its
# stream's MAXLEN, waves and zones (see
# mountdns.announce), appended to the stream in the same atomic step as the records, so a
# replica never holds the announcement without the data it announces. Replies
# {'fenced', recorded term}, {'lost'} (marker required but gone; nothing written) or
# {'ok', {names held by other owners}, {zones defined differently by another owner},
# 1 if this chunk wrote something else 0}.
APPLY_SCRIPT = """
local prefix, owner, term, marker, marker_value, serial0, earlier =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7] == '1'
if term ~= '' then
  local recorded = tonumber(redis.call('GET', prefix .. 'fence:' .. owner) or '-1')
  if recorded > tonumber(term) then return {'fenced', tostring(recorded)} end
end
local marker_key = prefix .. 'marker:' .. owner
if marker == 'require' and redis.call('EXISTS', marker_key) == 0 then return {'lost'} end

local i = 8
local function take() local v = ARGV[i]; i = i + 1; return v end
local function count() return tonumber(take()) end
local function holder(value)
  local slash = string.find(value, '/', 1, true)
  if slash then return string.sub(value, 1, slash - 1) end
  return nil
end
-- A name is free for this owner when nobody holds it (value false: absent), it holds it,
-- or its value was written before owners existed.
local function free(value)
  if not value then return true end
  local h = holder(value)
  return h == nil or h == owner
end
-- Names are read and written GROUP at a time (MGET, MSET, DEL) rather than one command
-- each: a command called from a script costs about a microsecond of Redis' time whatever
-- it does, and a chunk of 1,000 names took 4,000 of them. GROUP bounds unpack(), which
-- puts every element on Lua's C stack.
local GROUP = 256
local function mget(keys)
  local values = {}
  for first = 1, #keys, GROUP do
    local got = redis.call('MGET', unpack(keys, first, math.min(first + GROUP - 1, #keys)))
    for j = 1, #got do values[first + j - 1] = got[j] end
  end
  return values
end
local function batched(command, args, stride)
  local step = GROUP * stride
  for first = 1, #args, step do
    redis.call(command, unpack(args, first, math.min(first + step - 1, #args)))
  end
end
local wrote, refused, zones_elsewhere = false, {}, {}
local zone_fields = {'nameservers', 'hostmaster', 'ttl', 'refresh', 'retry', 'expire', 'minimum'}

for _ = 1, count() do                                  -- zones put: name + 7 fields
  local name = take()
  local values = {}
  for f = 1, 7 do values[f] = take() end
  local key = prefix .. 'zone:' .. name
  redis.call('SADD', prefix .. 'zone-owners:' .. name, owner)
  local definer = redis.call('HGET', key, 'owner')
  if not definer or definer == owner then
    redis.call('SADD', prefix .. 'zones', name)
    for f = 1, 7 do redis.call('HSET', key, zone_fields[f], values[f]) end
    redis.call('HSET', key, 'owner', owner)
    redis.call('HSETNX', key, 'serial', serial0)
    wrote = true
  else
    local current = redis.call('HMGET', key, unpack(zone_fields))
    for f = 1, 7 do
      if current[f] ~= values[f] then table.insert(zones_elsewhere, name); break end
    end
  end
end
for _ = 1, count() do                                  -- zones delete: name
  local name = take()
  local key, owners = prefix .. 'zone:' .. name, prefix .. 'zone-owners:' .. name
  redis.call('SREM', owners, owner)
  if redis.call('SCARD', owners) == 0 then
    redis.call('SREM', prefix .. 'zones', name)
    redis.call('DEL', key)
    wrote = true
  elseif redis.call('HGET', key, 'owner') == owner then
    local rest = redis.call('SMEMBERS', owners)
    table.sort(rest)
    redis.call('HSET', key, 'owner', rest[1])
  end
end
for _ = 1, count() do                                  -- nodes put: name, addresses
  local name = take()
  redis.call('SET', prefix .. 'node:' .. owner .. '/' .. name, take())
  wrote = true
end
for _ = 1, count() do                                  -- nodes delete: name
  redis.call('DEL', prefix .. 'node:' .. owner .. '/' .. take())
  wrote = true
end
for _, kinds in ipairs({{'parent', 'child'}, {'child', 'parent'}}) do
  local names, values, keys = {}, {}, {}             -- parents, then children put: name, value
  for j = 1, count() do
    names[j] = take()
    values[j] = take()
    keys[2 * j - 1] = prefix .. kinds[1] .. ':' .. names[j]
    keys[2 * j] = prefix .. kinds[2] .. ':' .. names[j]  -- the same name as the other kind
  end
  local current = mget(keys)
  local sets, others = {}, {}
  for j = 1, #names do
    local this, other = current[2 * j - 1], current[2 * j]
    if free(this) and free(other) then
      sets[#sets + 1] = keys[2 * j - 1]
      sets[#sets + 1] = owner .. '/' .. values[j]
      if other then others[#others + 1] = keys[2 * j] end  -- this owner's or ownerless: one kind per name
    else
      table.insert(refused, names[j])
    end
  end
  if #sets > 0 then
    batched('MSET', sets, 2)
    batched('DEL', others, 1)
    wrote = true
  end
end
for _, kind in ipairs({'parent', 'child'}) do
  local keys = {}                                      -- parents, then children delete: name
  for j = 1, count() do keys[j] = prefix .. kind .. ':' .. take() end
  local current, gone = mget(keys), {}
  for j = 1, #keys do
    -- another owner's now (or ownerless): not ours to delete
    if current[j] and holder(current[j]) == owner then gone[#gone + 1] = keys[j] end
  end
  if #gone > 0 then
    batched('DEL', gone, 1)
    wrote = true
  end
end
local bumps = {}
for _ = 1, count() do bumps[#bumps + 1] = take() end  -- read even when unused: sections follow
if wrote or earlier then
  for _, zone in ipairs(bumps) do redis.call('HINCRBY', prefix .. 'zone:' .. zone, 'serial', 1) end
end
if marker == 'write' then redis.call('SET', marker_key, marker_value) end
local announcing = count()
if announcing > 0 then
  local maxlen, waves, zones = take(), take(), take()
  if wrote or earlier or announcing == 2 then
    redis.call('XADD', prefix .. 'announcements', 'MAXLEN', '~', maxlen, '*', 'waves', waves, 'zones', zones)
  end
end
return {'ok', refused, zones_elsewhere, wrote and 1 or 0}
"""
