#!/usr/bin/env node
/** The `defenseclaw-upgrade` executable. */
import { main } from './worker-main.js';

main(process.argv).then((code) => process.exit(code));
