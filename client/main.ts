#!/usr/bin/env node
/** The `defenseclaw-upgrade` executable. */
import { main } from './cli.js';

main(process.argv).then((code) => process.exit(code));
