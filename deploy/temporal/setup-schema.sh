#!/bin/sh
# Creates (first start) or updates (after a version bump) Temporal's two PostgreSQL databases.
# Shared by docker-compose.yml (the temporal-admin-tools one-shot) and the test cluster
# (test/helpers/cluster.ts), so that both set up the schema the same way.
#
# Environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by the tool itself);
# TEMPORAL_SQL_TOOL (default temporal-sql-tool, as in temporalio/admin-tools).
# The schemas are the ones embedded in the tool (--schema-name), so they always match its version.
# Every step is idempotent: an existing database is kept, setup-schema on a versioned database
# changes nothing, update-schema applies only what is missing.
set -eu
tool="${TEMPORAL_SQL_TOOL:-temporal-sql-tool}"
export SQL_PLUGIN=postgres12
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  schema="postgresql/v12/${pair#*:}"
  "$tool" --db "$db" create-database 2>/dev/null || "$tool" --db "$db" create-database 2>&1 | grep -qi 'already exists'
  "$tool" --db "$db" setup-schema -v 0.0
  "$tool" --db "$db" update-schema --schema-name "$schema"
done
echo 'PostgreSQL schema setup complete'
