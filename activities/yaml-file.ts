/**
 * The host's YAML (config.yaml), parsed strictly and quietly: aliases bounded, nothing written to
 * stderr (yaml's warnings quote source lines, and config.yaml holds the gateway token), and an
 * error for malformed text. `YAML.parse` with `logLevel: 'silent'` would silence the errors too
 * and return its best guess, which must never decide a port or a folder.
 */
import YAML from 'yaml';

export class InvalidYamlError extends Error {
  override readonly name = 'InvalidYamlError';
}

/** The document as plain data; throws InvalidYamlError (quoting nothing of the text) when malformed. */
export function parseYamlStrict(text: string): unknown {
  const doc = YAML.parseDocument(text, { logLevel: 'silent' });
  if (doc.errors.length) throw new InvalidYamlError('invalid YAML');
  return doc.toJS({ maxAliasCount: 100 });
}
