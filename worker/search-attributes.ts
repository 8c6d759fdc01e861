/**
 * The project's Keyword search attributes on a cluster, registered by the worker that finds them
 * missing. Its own file so that a host worker's start imports only this, not the dev server's.
 */
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/names.js';

/** INDEXED_VALUE_TYPE_KEYWORD in temporal.api.enums.v1.IndexedValueType. */
const INDEXED_VALUE_TYPE_KEYWORD = 2;
const GRPC_ALREADY_EXISTS = 6;

/**
 * Registers the project's Keyword search attributes on an existing cluster (idempotent): the ones
 * already there are left alone, "already exists" races are ignored. Returns the names it added.
 */
export async function ensureSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
): Promise<string[]> {
  const wanted = Object.values(SEARCH_ATTRIBUTES) as string[];
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set([
    ...Object.keys(existing.customAttributes ?? {}),
    ...Object.keys(existing.systemAttributes ?? {}),
  ]);
  const missing = wanted.filter((n) => !have.has(n));
  const added: string[] = [];
  for (const name of missing) {
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: { [name]: INDEXED_VALUE_TYPE_KEYWORD },
      });
      added.push(name);
    } catch (err) {
      const already =
        (isGrpcServiceError(err) && err.code === GRPC_ALREADY_EXISTS) ||
        /already exist/i.test(err instanceof Error ? err.message : String(err));
      if (!already) throw err;
    }
  }
  return added;
}
