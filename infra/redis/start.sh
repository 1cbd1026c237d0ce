#!/bin/sh
# Entry of the Redis servers and sentinels of docker-compose's `sentinel` profile.
# First start: the config template plus this container's role and announced name, written
# to the data volume. Later starts: that file as Sentinel last rewrote it (the role Sentinel
# gave this server, the primary it moved to), so a restart never makes a second primary.
#   start.sh redis      REDIS_REPLICA_OF=<primary host> for a replica
#   start.sh sentinel
# Users and passwords come from the secrets of infra/secrets/generate.sh (/run/secrets).
set -eu
kind="$1"
conf="/data/$kind.conf"
if [ ! -f "$conf" ]; then
  cp "/usr/local/etc/redis/$kind.conf" "$conf"
  if [ "$kind" = sentinel ]; then
    echo "sentinel announce-ip $REDIS_ANNOUNCE" >> "$conf"
    # the servers' users (infra/secrets/generate.sh): sentinels log in as `sentinel`
    echo "sentinel auth-user swarmdash sentinel" >> "$conf"
    echo "sentinel auth-pass swarmdash $(cat /run/secrets/redis_sentinel_password)" >> "$conf"
  else
    echo "replica-announce-ip $REDIS_ANNOUNCE" >> "$conf"
    echo "aclfile /run/secrets/redis_users.acl" >> "$conf"
    # every server may become a replica after a failover: all log in to the primary
    echo "masteruser replica" >> "$conf"
    echo "masterauth $(cat /run/secrets/redis_replica_password)" >> "$conf"
    if [ -n "${REDIS_REPLICA_OF:-}" ]; then
      echo "replicaof $REDIS_REPLICA_OF 6379" >> "$conf"
    fi
  fi
fi
if [ "$kind" = sentinel ]; then
  exec redis-server "$conf" --sentinel
fi
exec redis-server "$conf"
