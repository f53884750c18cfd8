/** The process logger: pino, with every field that may carry credentials redacted. */
import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACTED_PATHS } from './app.js';

/** A pino logger at the configured level. */
export function createLogger(level: string, name: string, destination?: DestinationStream): Logger {
  return pino({ level, name, redact: { paths: [...REDACTED_PATHS, '*.password', '*.auth', '*.identityToken', '*.registryToken'], censor: '[redacted]' } }, destination);
}
