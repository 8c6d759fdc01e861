#!/bin/sh
# Creates the namespace (with a retention for the upgrade audit trail) and registers the project's
# search attributes, as production needs them. Shared by docker-compose.yml (the
# temporal-create-namespace one-shot) and the test cluster (test/helpers/cluster.ts).
#
# Environment: TEMPORAL_ADDRESS (and TEMPORAL_TLS_* / TEMPORAL_API_KEY, read by the Temporal CLI
# itself), NAMESPACE (default "default"), RETENTION (default 30d), TEMPORAL_CLI (default temporal).
# Idempotent: what exists is left alone.
set -eu
cli="${TEMPORAL_CLI:-temporal}"
ns="${NAMESPACE:-default}"

# Keep in sync with SEARCH_ATTRIBUTES in workflows/types.ts (a test checks it). All are Keyword;
# SQL visibility allows at most 10 Keyword attributes per namespace.
SEARCH_ATTRIBUTES='DefenseClawHost DefenseClawFromVersion DefenseClawToVersion DefenseClawOutcome DefenseClawFleetId'

echo 'Waiting for the Temporal frontend...'
n=0
until "$cli" operator cluster health >/dev/null 2>&1; do
  n=$((n + 1))
  [ "$n" -ge 60 ] && { echo 'Temporal did not become healthy'; "$cli" operator cluster health; exit 1; }
  sleep 1
done

"$cli" operator namespace describe -n "$ns" >/dev/null 2>&1 ||
  "$cli" operator namespace create -n "$ns" --retention "${RETENTION:-30d}"

# One `search-attribute create` per name: the CLI silently keeps only the first of several
# --name flags given with a single --type.
# (A new namespace takes a moment to reach the frontend's cache: retry the first listing.)
n=0
until existing="$("$cli" operator search-attribute list -n "$ns" 2>&1)"; do
  n=$((n + 1))
  [ "$n" -ge 60 ] && { printf '%s\n' "$existing"; exit 1; }
  sleep 0.5
done
for name in $SEARCH_ATTRIBUTES; do
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name: present"
  else
    "$cli" operator search-attribute create -n "$ns" --name "$name" --type Keyword
    echo "search attribute $name: created"
  fi
done

# New attributes take a moment to reach every service's cache: wait until a query on all of them
# is accepted, so that the first workflow that sets them does not fail.
query=''
for name in $SEARCH_ATTRIBUTES; do query="${query:+$query AND }$name = 'ready-check'"; done
n=0
until "$cli" workflow count -n "$ns" --query "$query" >/dev/null 2>&1; do
  n=$((n + 1))
  [ "$n" -ge 60 ] && { echo 'the search attributes did not become usable'; exit 1; }
  sleep 0.5
done
echo "namespace $ns ready"
