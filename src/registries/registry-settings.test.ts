/** Loading the registry settings from real files: what works, and one-line errors for what does not. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config.js';
import { credentialsFor } from '../registry/auth-file.js';
import { testTls } from '../../test/helpers/tls.js';
import { loadRegistrySettings } from './registry-settings.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-settings-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const at = path.join(dir, name);
  await mkdir(path.dirname(at), { recursive: true });
  await writeFile(at, text);
  return at;
}

async function configError(env: Record<string, string>): Promise<ConfigError> {
  const err = await loadRegistrySettings(loadConfig(env)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).not.toContain('\n');
  return err as ConfigError;
}

describe('loadRegistrySettings', () => {
  it('with nothing configured: no conf, no auth file, loopback insecure, no CA', async () => {
    const settings = await loadRegistrySettings(loadConfig({}));
    expect(settings.conf).toBeUndefined();
    expect(settings.authFile).toBeUndefined();
    await expect(settings.insecure.isInsecure('127.0.0.1:5000')).resolves.toBe(true);
    await expect(settings.insecure.isInsecure('quay.io')).resolves.toBe(false);
    expect(settings.tlsFor('quay.io')).toBeUndefined();
    expect(settings.caHosts).toEqual([]);
  });

  it('loads registries.conf, the auth file, insecure rules and every certs.d folder', async () => {
    const { caCertPem } = await testTls();
    const caDir = path.join(dir, 'certs.d');
    await file('certs.d/registry.lan:5000/ca.crt', caCertPem);
    await file('certs.d/secure.lan:443/ca.crt', caCertPem);
    await file('certs.d/empty.lan/README', 'no certificates here');
    const warnings: string[] = [];
    const settings = await loadRegistrySettings(
      loadConfig({
        REGISTRIES_CONF: await file('ok.conf', '[[registry]]\nlocation = "mirror.lan"\ninsecure = true\nsurprise = 1\n'),
        AUTH_FILE: await file('auth.json', JSON.stringify({ auths: { 'registry.lan': { auth: Buffer.from('u:p').toString('base64') } } })),
        INSECURE_REGISTRIES: '10.0.0.0/8, other.lan:5000',
        REGISTRY_CA_DIR: caDir,
      }),
      { warn: (_obj, msg) => void warnings.push(msg) },
    );
    expect(settings.conf?.registries.map((r) => r.location)).toEqual(['mirror.lan']);
    expect(warnings).toEqual([expect.stringMatching(/ok.conf:4: unknown key 'surprise'/)]);
    expect(credentialsFor(settings.authFile!, 'registry.lan', 'app')).toEqual({ username: 'u', password: 'p' });
    for (const host of ['mirror.lan', 'other.lan:5000', '10.1.2.3:5000']) await expect(settings.insecure.isInsecure(host)).resolves.toBe(true);
    expect(settings.insecure.describe()).toMatchObject({ hosts: ['other.lan:5000'], cidrs: ['10.0.0.0/8'], registriesConf: ['mirror.lan'] });
    expect(settings.tlsFor('registry.lan:5000')?.ca).toEqual([caCertPem.trim()]);
    expect(settings.tlsFor('REGISTRY.lan:5000')).toBeDefined();
    expect(settings.tlsFor('registry.lan')).toBeUndefined();
    // A URL drops :443, so the transport asks for the bare host.
    expect(settings.tlsFor('secure.lan')).toBe(settings.tlsFor('secure.lan:443'));
    expect(settings.caHosts).toEqual(['registry.lan:5000', 'secure.lan:443']);
  });

  it('stops on a malformed registries.conf with the variable, file, line and reason on one line', async () => {
    const conf = await file('bad.conf', 'unqualified-search-registries = ["docker.io"]\n\n[[registry]]\nlocation = "a.lan"\ninsecure = "yes"\n');
    expect((await configError({ REGISTRIES_CONF: conf })).message).toBe(`REGISTRIES_CONF: ${conf}:5: 'insecure' must be a boolean`);
    const toml = await file('toml.conf', 'unqualified-search-registries = ["docker.io"\n[aliases]\n');
    expect((await configError({ REGISTRIES_CONF: toml })).message).toMatch(new RegExp(`^REGISTRIES_CONF: ${toml}:\\d+:\\d+: invalid TOML`));
    expect((await configError({ REGISTRIES_CONF: path.join(dir, 'missing.conf') })).message).toMatch(/missing.conf: cannot read: ENOENT/);
  });

  it('stops on a bad auth file, INSECURE_REGISTRIES entry or CA folder, naming it', async () => {
    const auth = await file('bad-auth.json', '{"auths": {"registry.lan": {"auth": "not base64!"}}}');
    expect((await configError({ AUTH_FILE: auth })).message).toBe(`AUTH_FILE: ${auth}: "auth" of entry "registry.lan" is not valid base64`);
    expect((await configError({ INSECURE_REGISTRIES: '10.0.0.0/99' })).message).toMatch(/INSECURE_REGISTRIES entry "10.0.0.0\/99" is not a valid CIDR/);
    await file('bad-certs/registry.lan/ca.crt', 'not a certificate');
    expect((await configError({ REGISTRY_CA_DIR: path.join(dir, 'bad-certs') })).message).toMatch(/^REGISTRY_CA_DIR: .*bad-certs\/registry.lan\/ca.crt: contains no PEM certificate$/);
    expect((await configError({ REGISTRY_CA_DIR: path.join(dir, 'no-such-dir') })).message).toMatch(/no-such-dir: cannot read: ENOENT/);
  });
});
