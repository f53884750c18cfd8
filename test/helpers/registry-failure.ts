/** Awaits a promise that must reject with a RegistryError, and returns that error for assertions. */
import { expect } from 'vitest';
import { RegistryError } from '../../src/registry/errors.js';

/** The RegistryError `p` rejects with; fails the test when it resolves or rejects with anything else. */
export async function failure(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RegistryError);
    return err as RegistryError;
  }
  throw new Error('expected a failure');
}
