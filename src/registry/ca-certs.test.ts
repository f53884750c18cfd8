import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, rootCertificates } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { testTls } from '../../test/helpers/tls.js';
import { loadRegistryCa, loadRegistryTls, RegistryCaError } from './ca-certs.js';

const root = mkdtempSync(join(tmpdir(), 'berth-certs-d-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh certs.d directory with `files` under `<host>/`. */
function certsDir(host: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(root, 'd-'));
  mkdirSync(join(dir, host));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, host, name), text);
  return dir;
}

describe('loadRegistryTls', async () => {
  const tls = await testTls();

  it('reads *.crt of <dir>/<host:port>/ as CA certificates, in file name order', async () => {
    const dir = certsDir('127.0.0.1:5000', { 'b.crt': `${tls.caCertPem}\n${tls.certPem}`, 'a.crt': tls.caCertPem, 'README': 'ignored' });
    const ca = await loadRegistryCa(dir, '127.0.0.1:5000');
    expect(ca).toEqual([tls.caCertPem.trim(), tls.caCertPem.trim(), tls.certPem.trim()]);
    expect(await loadRegistryTls(dir, '127.0.0.1:5000')).toEqual({ ca });
  });

  it('returns undefined for a missing or empty host directory', async () => {
    const dir = certsDir('registry.lan', { 'notes.txt': 'nothing here' });
    expect(await loadRegistryTls(dir, 'registry.lan')).toBeUndefined();
    expect(await loadRegistryTls(dir, 'other.lan:5000')).toBeUndefined();
    expect(await loadRegistryCa(join(root, 'no-such-dir'), 'registry.lan')).toBeUndefined();
  });

  it('reads a client certificate pair', async () => {
    const dir = certsDir('localhost:5000', { 'client.cert': tls.certPem, 'client.key': tls.keyPem });
    expect(await loadRegistryTls(dir, 'localhost:5000')).toEqual({ ca: [], cert: tls.certPem, key: tls.keyPem });
    expect(await loadRegistryCa(dir, 'localhost:5000')).toBeUndefined();
  });

  it.each([
    [{ 'client.cert': 'x' }, 'client.cert', /missing key client\.key .*CA certificates use the extension \.crt/],
    [{ 'client.key': 'x' }, 'client.key', /missing client certificate client\.cert/],
    [{ 'ca.crt': 'not a certificate' }, 'ca.crt', /contains no PEM certificate/],
    [{ 'ca.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, 'ca.crt', /not a valid X\.509 certificate/],
  ])('rejects a bad certs.d file, naming it (%o)', async (files, file, reason) => {
    const dir = certsDir('registry.lan', files as Record<string, string>);
    const err = await loadRegistryTls(dir, 'registry.lan').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryCaError);
    expect((err as RegistryCaError).file).toBe(join(dir, 'registry.lan', file));
    expect((err as RegistryCaError).message).toMatch(reason);
  });

  it('rejects a client key that does not belong to the certificate', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const dir = certsDir('registry.lan', { 'client.cert': tls.certPem, 'client.key': other });
    await expect(loadRegistryTls(dir, 'registry.lan')).rejects.toThrow(/client\.key: does not match the client certificate client\.cert/);
    const garbage = certsDir('registry.lan', { 'client.cert': tls.certPem, 'client.key': 'garbage' });
    await expect(loadRegistryTls(garbage, 'registry.lan')).rejects.toThrow(/client\.key: is not a valid PEM private key/);
  });

  it.each(['../etc', '..', 'a/b', '', 'host:port:1'])('refuses host %j that is no host[:port]', async (host) => {
    await expect(loadRegistryTls(root, host)).rejects.toThrow(/is not a host\[:port\]/);
  });

  it('gives a CA that verifies a TLS server on 127.0.0.1', async () => {
    const dir = certsDir('127.0.0.1:0', { 'ca.crt': tls.caCertPem });
    const ca = (await loadRegistryCa(dir, '127.0.0.1:0'))!;
    const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const authorized = await new Promise<boolean>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, ca: [...rootCertificates, ...ca] }, () => {
          resolve(socket.authorized);
          socket.destroy();
        });
        socket.on('error', reject);
      });
      expect(authorized).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
