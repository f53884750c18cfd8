/**
 * Per-registry TLS material in the certs.d layout that Docker and containers/image share
 * (docker-certs.d(5); containers/image pkg/tlsclientconfig SetupCertificates): `<dir>/<host[:port]>/`
 * holds `*.crt` CA certificates and `<name>.cert` + `<name>.key` client certificate pairs.
 * Every file is checked when loaded, so a bad file fails at start-up instead of at the first pull.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** TLS options for one registry host, in the shape node:tls / undici `connect` take. */
export interface RegistryTls {
  /**
   * Extra CA certificates (PEM, one per entry). Node's `ca` option replaces the default roots, so pass
   * `[...tls.rootCertificates, ...ca]` to add them as containers/image adds them to the system pool.
   */
  ca: string[];
  /** Client certificate and key (PEM), from the first `<name>.cert`/`<name>.key` pair. */
  cert?: string;
  key?: string;
}

/** A certs.d file that cannot be used; the message names it. */
export class RegistryCaError extends Error {
  override readonly name = 'RegistryCaError';
  readonly code = 'REGISTRY_CA_INVALID';

  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const CERT_BLOCK_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

async function read(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new RegistryCaError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`);
  }
}

/** The certificates of a PEM file, each checked to parse. */
function certificates(file: string, text: string): string[] {
  const blocks = text.match(CERT_BLOCK_RE) ?? [];
  if (blocks.length === 0) throw new RegistryCaError(file, 'contains no PEM certificate');
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new RegistryCaError(file, 'holds a PEM block that is not a valid X.509 certificate');
    }
  }
  return blocks;
}

/**
 * TLS material for `host` (host[:port] as contacted, e.g. `registry.lan:5000`) from `<dir>/<host>/`,
 * or undefined when that directory is missing or holds none of the files above.
 */
export async function loadRegistryTls(dir: string, host: string): Promise<RegistryTls | undefined> {
  // The host becomes a path component: refuse anything that could leave `dir`.
  if (!HOST_RE.test(host)) throw new RegistryCaError(join(dir, '?'), `"${host}" is not a host[:port]`);
  const hostDir = join(dir, host);
  let names: string[];
  try {
    names = (await readdir(hostDir, { withFileTypes: true })).filter((e) => !e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new RegistryCaError(hostDir, `cannot read: ${code ?? 'unknown error'}`);
  }
  const ca: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.crt'))) ca.push(...certificates(join(hostDir, name), await read(join(hostDir, name))));

  // Pairs must be complete, as SetupCertificates insists (a CA saved as .cert is a common mistake).
  const certs = names.filter((n) => n.endsWith('.cert'));
  for (const name of certs) {
    if (!names.includes(`${name.slice(0, -'.cert'.length)}.key`)) {
      throw new RegistryCaError(join(hostDir, name), `missing key ${name.slice(0, -'.cert'.length)}.key for this client certificate (CA certificates use the extension .crt)`);
    }
  }
  for (const name of names.filter((n) => n.endsWith('.key'))) {
    if (!names.includes(`${name.slice(0, -'.key'.length)}.cert`)) {
      throw new RegistryCaError(join(hostDir, name), `missing client certificate ${name.slice(0, -'.key'.length)}.cert for this key`);
    }
  }
  const tls: RegistryTls = { ca };
  const first = certs[0];
  if (first !== undefined) {
    const certFile = join(hostDir, first);
    const keyFile = join(hostDir, `${first.slice(0, -'.cert'.length)}.key`);
    const cert = await read(certFile);
    const key = await read(keyFile);
    const [leaf] = certificates(certFile, cert);
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch {
      throw new RegistryCaError(keyFile, 'is not a valid PEM private key');
    }
    if (!new X509Certificate(leaf!).checkPrivateKey(privateKey)) {
      throw new RegistryCaError(keyFile, `does not match the client certificate ${first}`);
    }
    tls.cert = cert;
    tls.key = key;
  }
  return ca.length === 0 && tls.cert === undefined ? undefined : tls;
}

/** The extra CA certificates (PEM) for `host` from `<dir>/<host>/*.crt`, or undefined when there are none. */
export async function loadRegistryCa(dir: string, host: string): Promise<string[] | undefined> {
  const tls = await loadRegistryTls(dir, host);
  return tls && tls.ca.length > 0 ? tls.ca : undefined;
}
