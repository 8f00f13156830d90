#!/bin/sh
# Writes /data/sentinel.conf (Sentinel rewrites it, so it cannot be a read-only ConfigMap):
# monitor the primary the other sentinels know, else redis-0 (the first start).
set -eu
primary=$(redis-cli -h redis-sentinel -p 26379 --raw \
          sentinel get-master-addr-by-name mountdns 2>/dev/null | head -n 1 || true)
[ -n "$primary" ] || primary=redis-0.redis-headless
cat > /data/sentinel.conf <<CONF
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $POD_NAME.redis-sentinel-headless
sentinel monitor mountdns $primary 6379 2
sentinel auth-pass mountdns $REDIS_PASSWORD
sentinel down-after-milliseconds mountdns 5000
sentinel failover-timeout mountdns 60000
sentinel parallel-syncs mountdns 1
CONF
