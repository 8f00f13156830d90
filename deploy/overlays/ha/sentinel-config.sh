#!/bin/sh
# Writes the Sentinel configuration (Sentinel rewrites it, so it cannot be a read-only
# ConfigMap): monitor the primary the other sentinels know, else the first primary
# (redis-0), which is the primary on the first start of the cluster.
# The defaults are the cluster's names; the tests set the variables to run the same script
# on one machine.
set -eu
sentinel_host=${SENTINEL_HOST:-redis-sentinel}
sentinel_port=${SENTINEL_PORT:-26379}
conf=${SENTINEL_CONF:-/data/sentinel.conf}
me_host=${ANNOUNCE_HOST:-$POD_NAME.redis-sentinel-headless}

answer=$(redis-cli -h "$sentinel_host" -p "$sentinel_port" --raw \
         sentinel get-master-addr-by-name mountdns 2>/dev/null || true)
host=$(printf '%s\n' "$answer" | sed -n 1p)
port=$(printf '%s\n' "$answer" | sed -n 2p)
if [ -z "$host" ] || [ -z "$port" ]; then
  host=${FIRST_PRIMARY_HOST:-redis-0.redis-headless}
  port=${FIRST_PRIMARY_PORT:-6379}
fi
cat > "$conf" <<CONF
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $me_host
sentinel monitor mountdns $host $port 2
sentinel auth-pass mountdns $REDIS_PASSWORD
sentinel down-after-milliseconds mountdns 5000
sentinel failover-timeout mountdns 60000
sentinel parallel-syncs mountdns 1
CONF
