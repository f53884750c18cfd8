/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost, made with
 * the openssl command line once per test process. Tests trust the CA explicitly (undici `connect.ca`,
 * skopeo `--cert-dir`), never the system store.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEMs and the files tools want. */
export interface TlsMaterial {
  /** The CA certificate that signed the server certificate. */
  caCertPem: string;
  /** Path of the CA certificate file. */
  caCertPath: string;
  /** A directory holding only `ca.crt`: what skopeo's `--cert-dir` and Docker's certs.d expect. */
  certDir: string;
  /** Server certificate (SAN: IP 127.0.0.1, DNS localhost) and its key. */
  certPem: string;
  keyPem: string;
}

let material: Promise<TlsMaterial> | undefined;

/** The CA and server certificate of this process, made on first use (ECDSA P-256: fast to make). */
export function testTls(): Promise<TlsMaterial> {
  material ??= makeTls();
  return material;
}

async function makeTls(): Promise<TlsMaterial> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const certDir = join(dir, 'certs.d');
  const at = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '7', '-sha256',
    '-subj', '/CN=berth test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', [
    'req', '-new', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1',
  ]);
  writeFileSync(
    at('server.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ].join('\n'),
  );
  await run('openssl', [
    'x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial',
    '-out', at('server.crt'), '-days', '7', '-sha256', '-extfile', at('server.ext'),
  ]);

  const caCertPem = readFileSync(at('ca.crt'), 'utf8');
  mkdirSync(certDir);
  writeFileSync(join(certDir, 'ca.crt'), caCertPem);
  return {
    caCertPem,
    caCertPath: at('ca.crt'),
    certDir,
    certPem: readFileSync(at('server.crt'), 'utf8'),
    keyPem: readFileSync(at('server.key'), 'utf8'),
  };
}
