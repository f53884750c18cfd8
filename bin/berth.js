#!/usr/bin/env node
// berth's command line: runs one of its TypeScript entry points in this process through tsx.
import { register } from 'tsx/esm/api';

const USAGE = 'usage: berth api | worker | migrate | start';
const ENTRIES = {
  api: '../src/server.ts',
  worker: '../src/worker.ts',
  migrate: '../src/db/migrate-cli.ts',
  start: '../src/main.ts',
};

const command = process.argv[2] ?? '';
if (command === 'help' || command === '--help' || command === '-h') {
  console.log(USAGE);
  process.exit(0);
}
if (!Object.hasOwn(ENTRIES, command)) {
  console.error(command ? `berth: unknown command ${command}\n${USAGE}` : USAGE);
  process.exit(2);
}
// The entry point sees its own arguments in process.argv, as under `npm run <command>`.
process.argv.splice(2, 1);
register();
await import(new URL(ENTRIES[command], import.meta.url).href);
