import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { createInsecureMatcher, InsecureRegistriesError, resolveAddresses } from './insecure.js';
import { parseRegistriesConf } from './registries-conf-load.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/registries/${name}`, import.meta.url));

/** A resolver that never touches DNS: names map to fixed addresses, others fail. */
function fakeLookup(table: Record<string, string[]>) {
  return vi.fn(async (name: string) => {
    const addresses = table[name];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return addresses;
  });
}

describe('createInsecureMatcher', () => {
  it('always allows loopback and localhost, without resolving anything', async () => {
    const lookup = fakeLookup({});
    const matcher = createInsecureMatcher({ cidrsAndHosts: [], lookup });
    for (const host of ['127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '::1', 'localhost', 'LOCALHOST:5000', '[::ffff:127.0.0.1]:5000']) {
      await expect(matcher.isInsecure(host), host).resolves.toBe(true);
    }
    for (const host of ['10.0.0.1:5000', '128.0.0.1', '[::2]:5000', 'registry.lan', 'localhost.example.com']) {
      await expect(matcher.isInsecure(host), host).resolves.toBe(false);
    }
    expect(lookup).not.toHaveBeenCalled();
  });

  it('matches host entries on any port and host:port entries exactly', async () => {
    const matcher = createInsecureMatcher({ cidrsAndHosts: ['Registry.LAN', 'other.lan:5000', '[fd00::5]:443'], lookup: fakeLookup({}) });
    await expect(matcher.isInsecure('registry.lan')).resolves.toBe(true);
    await expect(matcher.isInsecure('registry.lan:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('other.lan:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('other.lan:5001')).resolves.toBe(false);
    await expect(matcher.isInsecure('other.lan')).resolves.toBe(false);
    await expect(matcher.isInsecure('[fd00::5]:443')).resolves.toBe(true);
    await expect(matcher.isInsecure('sub.registry.lan')).resolves.toBe(false);
  });

  it('matches CIDRs against IP literals and against the resolved addresses of names', async () => {
    const lookup = fakeLookup({ 'registry.lan': ['192.168.7.20'], 'dual.lan': ['203.0.113.9', 'fd00::9'], 'public.lan': ['203.0.113.10'] });
    const matcher = createInsecureMatcher({ cidrsAndHosts: ['10.0.0.0/8', ' 192.168.0.0/16', 'fd00::/8'], lookup });
    await expect(matcher.isInsecure('10.1.2.3:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('11.1.2.3:5000')).resolves.toBe(false);
    await expect(matcher.isInsecure('[fd00::1]:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('registry.lan:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('dual.lan')).resolves.toBe(true);
    await expect(matcher.isInsecure('public.lan')).resolves.toBe(false);
    await expect(matcher.isInsecure('unknown.lan')).resolves.toBe(false);
    expect(lookup).toHaveBeenCalledWith('registry.lan');
    expect(lookup).not.toHaveBeenCalledWith('10.1.2.3');
  });

  it('resolves localhost through the system resolver by default', async () => {
    const addresses = await resolveAddresses('localhost');
    expect(addresses.some((a) => a === '127.0.0.1' || a === '::1')).toBe(true);
    const matcher = createInsecureMatcher({ cidrsAndHosts: ['127.0.0.0/8'] });
    await expect(matcher.isInsecure('127.0.0.1:5000')).resolves.toBe(true);
  });

  it('takes insecure registries and mirrors from registries.conf', async () => {
    const conf = parseRegistriesConf(
      [
        '[[registry]]',
        'prefix = "example.com"',
        'location = "insecure.example.com:5000/ns"',
        'insecure = true',
        '[[registry.mirror]]',
        'location = "secure-mirror.example.com"',
        '[[registry]]',
        'location = "docker.io"',
        'insecure = true',
        '[[registry]]',
        'location = "quay.io"',
        '[[registry.mirror]]',
        'location = "mirror.lan:5000/quay"',
        'insecure = true',
      ].join('\n'),
      't',
    );
    const wildcard = parseRegistriesConf(readFileSync(fixture('find-registry.conf'), 'utf8'), 'find-registry.conf');
    const matcher = createInsecureMatcher({ cidrsAndHosts: [], conf, lookup: fakeLookup({}) });
    await expect(matcher.isInsecure('insecure.example.com:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('insecure.example.com')).resolves.toBe(false);
    await expect(matcher.isInsecure('example.com')).resolves.toBe(false);
    await expect(matcher.isInsecure('secure-mirror.example.com')).resolves.toBe(false);
    await expect(matcher.isInsecure('mirror.lan:5000')).resolves.toBe(true);
    await expect(matcher.isInsecure('quay.io')).resolves.toBe(false);
    await expect(matcher.isInsecure('registry-1.docker.io')).resolves.toBe(true);
    const wild = createInsecureMatcher({ cidrsAndHosts: [], conf: wildcard, lookup: fakeLookup({}) });
    await expect(wild.isInsecure('a.internal.example.net:5000')).resolves.toBe(true);
    await expect(wild.isInsecure('internal.example.net')).resolves.toBe(false);
    expect(wild.describe()).toEqual({ hosts: [], cidrs: [], registriesConf: ['*.internal.example.net'] });
  });

  it.each(['10.0.0.0/33', '300.1.1.1/8', 'fd00::/129', '10.0.0.0/8/1', '10.0.0.0/', 'registry.lan/ns', 'not a host', 'host:99999', 'host:0', 'under_score.lan'])(
    'rejects %s, naming it',
    (entry) => {
      expect(() => createInsecureMatcher({ cidrsAndHosts: [entry] })).toThrow(InsecureRegistriesError);
      expect(() => createInsecureMatcher({ cidrsAndHosts: [entry] })).toThrow(`INSECURE_REGISTRIES entry "${entry.trim()}"`);
    },
  );
});
