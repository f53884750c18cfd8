import { describe, expect, it } from 'vitest';
import { formatPlatform, normalizePlatform, parsePlatform, platformMatches, type Platform } from './platform.js';

describe('parsePlatform', () => {
  it('reads os/arch[/variant] and normalizes', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('Linux/AARCH64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('windows/amd64')).toEqual({ os: 'windows', architecture: 'amd64' });
  });

  it.each(['', 'linux', 'arm64', 'linux/arm64/v8/extra', 'linux//v7', 'linux/arm 64', 'linux/arm64/'])('refuses %j with INVALID_PLATFORM', (input) => {
    expect(() => parsePlatform(input)).toThrow(expect.objectContaining({ code: 'INVALID_PLATFORM', message: expect.stringMatching(/os\/architecture/) }));
  });

  it('formats', () => {
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
    expect(formatPlatform({ os: 'linux', architecture: 'amd64' })).toBe('linux/amd64');
  });
});

describe('normalizePlatform (containerd platforms.Normalize)', () => {
  it.each<[Platform, Platform]>([
    [{ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: '8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: '9.0' }, { os: 'linux', architecture: 'arm64', variant: 'v9' }],
    [{ os: 'linux', architecture: 'x86-64' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v1' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v3' }, { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    [{ os: 'linux', architecture: 'i386' }, { os: 'linux', architecture: '386' }],
    [{ os: 'linux', architecture: 'armhf' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'armel' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'linux', architecture: 'arm', variant: '6' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'macOS', architecture: 'arm64' }, { os: 'darwin', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 's390x' }, { os: 'linux', architecture: 's390x' }],
  ])('%j → %j', (input, expected) => {
    expect(normalizePlatform(input)).toEqual(expected);
  });
});

describe('platformMatches (containerd NewMatcher)', () => {
  const p = (s: string): Platform => {
    const [os = '', architecture = '', variant] = s.split('/');
    return variant === undefined ? { os, architecture } : { os, architecture, variant };
  };
  it.each<[string, string, boolean]>([
    ['linux/arm64', 'linux/arm64', true],
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/arm64', 'linux/arm/v7', false],
    ['linux/arm/v7', 'linux/arm/v7', true],
    ['linux/arm/v7', 'linux/arm', true],
    ['linux/arm', 'linux/arm/v7', true],
    ['linux/arm/v7', 'linux/arm/v6', false],
    ['linux/arm/v6', 'linux/arm/v7', false],
    ['linux/amd64', 'linux/amd64', true],
    ['linux/amd64', 'linux/amd64/v2', false],
    ['linux/amd64', 'windows/amd64', false],
    ['linux/amd64', 'linux/386', false],
    ['linux/aarch64', 'linux/arm64', true],
    ['linux/amd64', 'unknown/unknown', false],
  ])('%s wants %s: %s', (wanted, candidate, expected) => {
    expect(platformMatches(p(wanted), p(candidate))).toBe(expected);
  });
});
