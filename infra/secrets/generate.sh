#!/bin/sh
# The secrets docker-compose.yml and the Kubernetes overlays mount, made once:
#   infra/secrets/generate.sh [DIR]
# (default ./secrets; existing files are kept, so running it again changes nothing).
#
#   DIR/secret_key            SECRET_KEY of the nodes (64 random hex characters)
#   DIR/secret_key_previous   former SECRET_KEYs, comma-separated (empty; for rotation)
#   DIR/node_redis_url        REDIS_URL of the nodes: the `node` Redis user and its password
#   DIR/redis_users.acl       Redis' users: `default` off; `node` (the nodes: swarmdash:*
#                             keys and swarmdash* channels, no admin or dangerous commands);
#                             `admin` (operators: everything; its password in
#                             DIR/redis_admin_password); `health` (PING only, no password)
#                             `replica` and `sentinel` (the sentinel profile's replication
#                             and monitoring; passwords in DIR/redis_replica_password and
#                             DIR/redis_sentinel_password)
#   DIR/node_redis_url_sentinel  REDIS_URL of the nodes with the sentinel profile
#   DIR/grafana_admin_password
#   DIR/simulator_api_key     the simulator's API key (empty: put a key of API_KEYS here)
#
# The Redis URLs name compose's hosts; others (Kubernetes: docs/deployment.md) with
#   SWARMDASH_REDIS_ADDRESS=host:port                 (default redis:6379)
#   SWARMDASH_SENTINEL_ADDRESSES=host:port,host:port  (default sentinel-1:26379,...)
#
# Passwords are stored in the ACL file as SHA-256 hashes only. Files are mode 600 except
# those the images read as another user (the compose file mounts them read-only).
set -eu
dir=${1:-secrets}
umask 077
mkdir -p "$dir"
random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
keep() { [ -s "$dir/$1" ]; }
redis_address=${SWARMDASH_REDIS_ADDRESS:-redis:6379}
sentinel_addresses=${SWARMDASH_SENTINEL_ADDRESSES:-sentinel-1:26379,sentinel-2:26379,sentinel-3:26379}

keep secret_key || random > "$dir/secret_key"
[ -e "$dir/secret_key_previous" ] || : > "$dir/secret_key_previous"
[ -e "$dir/simulator_api_key" ] || : > "$dir/simulator_api_key"
keep grafana_admin_password || random > "$dir/grafana_admin_password"
if ! keep redis_users.acl; then
    node=$(random)
    admin=$(random)
    replica=$(random)
    sentinel=$(random)
    printf 'redis://node:%s@%s/0\n' "$node" "$redis_address" > "$dir/node_redis_url"
    printf 'redis+sentinel://node:%s@%s/0/swarmdash\n' "$node" "$sentinel_addresses" \
        > "$dir/node_redis_url_sentinel"
    printf '%s\n' "$admin" > "$dir/redis_admin_password"
    printf '%s' "$replica" > "$dir/redis_replica_password"
    printf '%s' "$sentinel" > "$dir/redis_sentinel_password"
    {
        echo "user default off"
        echo "user node on #$(sha256 "$node") resetchannels ~swarmdash:* &swarmdash* +@all -@admin -@dangerous"
        echo "user admin on #$(sha256 "$admin") ~* &* +@all"
        echo "user health on nopass resetchannels -@all +ping"
        echo "user replica on #$(sha256 "$replica") resetchannels -@all +psync +replconf +ping"
        echo "user sentinel on #$(sha256 "$sentinel") allchannels -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill"
    } > "$dir/redis_users.acl"
fi
# The images read these as their own users (redis: 999, grafana: 472, swarmdash: 10001).
chmod 644 "$dir"/*
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
