#!/bin/sh
# Starts redis-server as the primary, or as a replica of the primary that Sentinel knows.
# redis-0 is the primary only when no sentinel answers (the first start of the cluster).
# Arguments: redis-server's own.
set -eu
me="$POD_NAME.redis-headless"
primary=$(env -u REDISCLI_AUTH redis-cli -h redis-sentinel -p 26379 --raw \
          sentinel get-master-addr-by-name mountdns 2>/dev/null | head -n 1 || true)
if [ -z "$primary" ] && [ "$POD_NAME" != redis-0 ]; then
  primary=redis-0.redis-headless
fi
if [ -z "$primary" ] || [ "$primary" = "$me" ]; then
  exec redis-server "$@"
fi
exec redis-server "$@" --replicaof "$primary" 6379
