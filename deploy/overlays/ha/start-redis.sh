#!/bin/sh
# Starts redis-server as the primary, or as a replica of the primary that Sentinel knows.
# The first primary (redis-0) is the primary only when no sentinel answers: the first start
# of the cluster. A restarted old primary asks first, so it comes back as a replica.
# Arguments: redis-server's own. The defaults are the cluster's names; the tests set the
# variables to run the same script on one machine.
set -eu
sentinel_host=${SENTINEL_HOST:-redis-sentinel}
sentinel_port=${SENTINEL_PORT:-26379}
first_host=${FIRST_PRIMARY_HOST:-redis-0.redis-headless}
first_port=${FIRST_PRIMARY_PORT:-6379}
me_host=${ANNOUNCE_HOST:-$POD_NAME.redis-headless}
me_port=6379
previous=""
for arg in "$@"; do
  [ "$previous" != "--port" ] || me_port=$arg
  previous=$arg
done

# Two lines, host and port, or nothing when no sentinel answers.
answer=$(env -u REDISCLI_AUTH redis-cli -h "$sentinel_host" -p "$sentinel_port" --raw \
         sentinel get-master-addr-by-name mountdns 2>/dev/null || true)
host=$(printf '%s\n' "$answer" | sed -n 1p)
port=$(printf '%s\n' "$answer" | sed -n 2p)
if [ -z "$host" ] || [ -z "$port" ]; then
  host=$first_host
  port=$first_port
fi
if [ "$host:$port" = "$me_host:$me_port" ]; then
  exec redis-server "$@"
fi
exec redis-server "$@" --replicaof "$host" "$port"
