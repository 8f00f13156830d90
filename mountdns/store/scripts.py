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
-- A name is free for this owner when nobody holds it, it holds it, or its value was
-- written before owners existed.
local function free(key)
  local value = redis.call('GET', key)
  if not value then return true end
  local h = holder(value)
  return h == nil or h == owner
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
  for _ = 1, count() do                                -- parents, then children put: name, value
    local name = take()
    local value = take()
    local key, other = prefix .. kinds[1] .. ':' .. name, prefix .. kinds[2] .. ':' .. name
    if free(key) and free(other) then
      redis.call('SET', key, owner .. '/' .. value)
      redis.call('DEL', other)  -- absent, this owner's, or ownerless: one kind per name
      wrote = true
    else
      table.insert(refused, name)
    end
  end
end
for _, kind in ipairs({'parent', 'child'}) do
  for _ = 1, count() do                                -- parents, then children delete: name
    local name = take()
    local key = prefix .. kind .. ':' .. name
    local value = redis.call('GET', key)
    if value and holder(value) == owner then  -- another owner's now: not ours to delete
      redis.call('DEL', key)
      wrote = true
    end
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
