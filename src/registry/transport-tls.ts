/**
 * How the transport connects to a registry host: per-host TLS settings (a registry's own CA, a client
 * certificate, no verification for an insecure host), and which scheme an insecure host speaks, probed
 * once, HTTPS first and then plain HTTP, as containers/image treats an insecure registry.
 */
import { rootCertificates } from 'node:tls';
import { Agent, Pool } from 'undici';
import { RegistryError } from './errors.js';
import { isCertificateError } from './transport-errors.js';

/** Per-registry TLS settings: extra CA certificates (PEM, added to the system roots), a client certificate, or no verification. */
export interface TlsSettings {
  ca?: string[];
  /** Client certificate and key (PEM), for registries that require mutual TLS (certs.d `*.cert`/`*.key`). */
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/** TLS options of a connection to one origin: a host's CA (added to the system roots), client certificate, verification. */
function connectOptions(tls: TlsSettings | undefined, insecure: boolean): Record<string, unknown> {
  const ownCa = tls?.ca !== undefined && tls.ca.length > 0;
  const rejectUnauthorized = tls?.rejectUnauthorized ?? (insecure ? ownCa : undefined);
  return {
    // Node's `ca` replaces the default roots; containers/image adds certs.d CAs to the system pool.
    ...(ownCa ? { ca: [...rootCertificates, ...tls.ca!] } : {}),
    ...(tls?.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
  };
}

/** An undici Agent for secure or insecure hosts, with each origin's TLS settings from `tlsFor`. */
export function tlsAgent(tlsFor: ((host: string) => TlsSettings | undefined) | undefined, insecure: boolean): Agent {
  // One pool per origin, so that each registry gets its own CA / verification settings.
  return new Agent({
    factory: (origin, opts) => {
      const connect = connectOptions(tlsFor?.(new URL(String(origin)).host), insecure);
      return Object.keys(connect).length === 0 ? new Pool(origin, opts) : new Pool(origin, { ...(opts as Pool.Options), connect });
    },
  });
}

/** Default for `isInsecure`: loopback (127.0.0.0/8, ::1) and localhost speak plain HTTP, as docker allows. */
export function isLoopbackHost(host: string): boolean {
  const colons = host.split(':').length - 1;
  const hostname = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : colons > 1 ? host : host.replace(/:\d+$/, '');
  return hostname === 'localhost' || hostname === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * The base URL of each insecure host. A host is probed once, as containers/image does: HTTPS first (an
 * answer of any status means it speaks TLS), plain HTTP when the TLS handshake fails, except on a
 * certificate its own CA rejects (that server speaks TLS; downgrading would defeat the CA).
 */
export class InsecureSchemes {
  /** Pings `https` without verification and without retries; resolves when the host answered 2xx or 401. */
  readonly #pingHttps: (registry: string, https: URL) => Promise<void>;
  readonly #pending = new Map<string, Promise<URL>>();
  readonly #probed = new Map<string, URL>();

  constructor(pingHttps: (registry: string, https: URL) => Promise<void>) {
    this.#pingHttps = pingHttps;
  }

  /** The scheme the probe found, http:// until the host has been probed. */
  known(registry: string): URL {
    return this.#probed.get(registry) ?? new URL(`http://${registry}/`);
  }

  /** The base URL of an insecure host, probing it on first use; concurrent callers share one probe. */
  resolve(registry: string): Promise<URL> {
    let pending = this.#pending.get(registry);
    if (pending === undefined) {
      pending = this.#probe(registry).then((url) => {
        this.#probed.set(registry, url);
        return url;
      });
      this.#pending.set(registry, pending);
      const mine = pending;
      mine.catch(() => {
        if (this.#pending.get(registry) === mine) this.#pending.delete(registry);
      });
    }
    return pending;
  }

  /** Forgets what was learnt of a host, so that the next request probes it again. */
  forget(registry: string): void {
    this.#pending.delete(registry);
    this.#probed.delete(registry);
  }

  async #probe(registry: string): Promise<URL> {
    const https = new URL(`https://${registry}/`);
    try {
      await this.#pingHttps(registry, https);
      return https;
    } catch (err) {
      if (isCertificateError(err)) throw err;
      // An HTTP status over TLS (a 404 at /v2/, say) still proves the host speaks TLS.
      if (err instanceof RegistryError && err.status !== undefined) return https;
      return new URL(`http://${registry}/`);
    }
  }
}
