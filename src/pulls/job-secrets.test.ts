import { describe, expect, it } from 'vitest';
import { createSecretBox } from './job-secrets.js';

describe('job secrets', () => {
  const box = createSecretBox('a test secret');

  it('round-trips a value and never shows it in the sealed text', () => {
    const sealed = box.seal({ username: 'alice', password: 'hunter2' });
    expect(sealed).not.toContain('hunter2');
    expect(sealed).not.toContain('alice');
    expect(box.open(sealed)).toEqual({ username: 'alice', password: 'hunter2' });
  });

  it('seals the same value differently each time', () => {
    expect(box.seal('x')).not.toEqual(box.seal('x'));
  });

  it('refuses text sealed with another key or tampered with', () => {
    const sealed = box.seal({ a: 1 });
    expect(() => createSecretBox('another').open(sealed)).toThrow();
    const parts = sealed.split('.');
    parts[3] = Buffer.from('{"a":2}').toString('base64url');
    expect(() => box.open(parts.join('.'))).toThrow();
  });
});
