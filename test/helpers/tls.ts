/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost, made with
 * the openssl command line and kept in one directory under the temp dir for every test process of
 * the machine (valid 30 days, remade when close to expiry), so that no run leaves files behind. Tests
 * trust the CA explicitly (undici `connect.ca`, skopeo `--cert-dir`), never the system store.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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

const SHARED_DIR = join(tmpdir(), 'berth-test-tls');
const DAY = 86_400_000;

function load(dir: string): TlsMaterial {
  return {
    caCertPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    caCertPath: join(dir, 'ca.crt'),
    certDir: join(dir, 'certs.d'),
    certPem: readFileSync(join(dir, 'server.crt'), 'utf8'),
    keyPem: readFileSync(join(dir, 'server.key'), 'utf8'),
  };
}

function usable(dir: string): boolean {
  try {
    const tls = load(dir);
    const soon = Date.now() + DAY;
    return existsSync(join(tls.certDir, 'ca.crt')) && [tls.caCertPem, tls.certPem].every((pem) => Date.parse(new X509Certificate(pem).validTo) > soon);
  } catch {
    return false;
  }
}

/** The CA and server certificate (ECDSA P-256: fast to make), made on first use on this machine. */
export function testTls(): Promise<TlsMaterial> {
  material ??= (async () => {
    if (usable(SHARED_DIR)) return load(SHARED_DIR);
    const fresh = await makeTls();
    rmSync(SHARED_DIR, { recursive: true, force: true });
    try {
      renameSync(fresh, SHARED_DIR);
    } catch {
      // Another process won the race; use theirs.
      rmSync(fresh, { recursive: true, force: true });
    }
    return load(SHARED_DIR);
  })();
  return material;
}

/**
 * A self-signed CA certificate (PEM) that signed nothing the test servers present: trusting it
 * instead of the test CA must make verification fail. Made fresh in memory (openssl writes no file).
 */
export async function foreignCaPem(): Promise<string> {
  const { stdout } = await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/dev/null',
    '-days', '1', '-subj', '/CN=berth foreign CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ]);
  return stdout;
}

/** Makes the files in a new temp dir and returns its path. */
async function makeTls(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
  const certDir = join(dir, 'certs.d');
  const at = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '30', '-sha256',
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
    '-out', at('server.crt'), '-days', '30', '-sha256', '-extfile', at('server.ext'),
  ]);

  mkdirSync(certDir);
  writeFileSync(join(certDir, 'ca.crt'), readFileSync(at('ca.crt')));
  return dir;
}
