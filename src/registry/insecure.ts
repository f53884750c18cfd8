/**
 * Which registry hosts may be reached over plain HTTP or with an unverified certificate: loopback
 * always (127.0.0.0/8, ::1, localhost), the INSECURE_REGISTRIES entries (host[:port] or CIDR, matched
 * as Docker's daemon matches insecure-registries: a CIDR covers IP literals and host names by their
 * resolved addresses), and registries.conf tables and mirrors with `insecure = true`.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { registryHost } from './reference.js';
import { refMatchingPrefix, type RegistriesConf } from './registries-conf.js';

/** An INSECURE_REGISTRIES entry that is neither a CIDR nor a host[:port]. */
export class InsecureRegistriesError extends Error {
  override readonly name = 'InsecureRegistriesError';
  readonly code = 'INSECURE_REGISTRIES_INVALID';

  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super(`INSECURE_REGISTRIES entry "${entry}" ${reason}`);
  }
}

/** Options of createInsecureMatcher. */
export interface InsecureMatcherOptions {
  /** INSECURE_REGISTRIES entries: `10.0.0.0/8`, `fd00::/8`, `registry.lan`, `registry.lan:5000`. */
  cidrsAndHosts: string[];
  conf?: RegistriesConf;
  /** Resolves a host name to addresses, for CIDR entries; dns.lookup(all) by default. */
  lookup?: (hostname: string) => Promise<string[]>;
}

/** Answers whether a registry host may be used insecurely. */
export interface InsecureMatcher {
  /** `host` is host[:port] as contacted, e.g. `127.0.0.1:5000`, `[::1]:5000`, `registry.lan`. */
  isInsecure(host: string): Promise<boolean>;
  /** The configured rules, for GET /v1/registries. */
  describe(): { hosts: string[]; cidrs: string[]; registriesConf: string[] };
}

const HOSTNAME_RE = /^(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])(?:\.(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]))*$/;

/** Splits host[:port] (IPv6 in brackets, or bare); the host is lowercased, IPv4-mapped IPv6 unwrapped. */
function splitHostPort(value: string): { host: string; port: string | undefined } {
  let host = value;
  let port: string | undefined;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    host = value.slice(1, end === -1 ? undefined : end);
    const rest = end === -1 ? '' : value.slice(end + 1);
    if (rest.startsWith(':')) port = rest.slice(1);
    else if (rest !== '') host = value; // not a bracketed address; fails validation
  } else if (isIP(value) !== 6 && value.includes(':')) {
    const colon = value.lastIndexOf(':');
    [host, port] = [value.slice(0, colon), value.slice(colon + 1)];
  }
  host = host.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  return { host: mapped ? mapped[1]! : host, port };
}

/** The canonical host[:port] key of a split value. */
function key(host: string, port: string | undefined): string {
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return port === undefined ? shown : `${shown}:${port}`;
}

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** All addresses of a host name (dns.lookup with all: true, so /etc/hosts counts as it does for connect). */
export async function resolveAddresses(hostname: string): Promise<string[]> {
  return (await dnsLookup(hostname, { all: true })).map((a) => a.address);
}

/** Builds the matcher; throws InsecureRegistriesError naming the first invalid entry. */
export function createInsecureMatcher(options: InsecureMatcherOptions): InsecureMatcher {
  const cidrs = new BlockList();
  const cidrList: string[] = [];
  const hosts = new Set<string>();
  for (const raw of options.cidrsAndHosts) {
    const entry = raw.trim();
    if (entry.includes('/')) {
      const [address = '', bits = '', extra] = entry.split('/');
      const max = isIP(address) === 4 ? 32 : isIP(address) === 6 ? 128 : 0;
      if (max === 0 || extra !== undefined || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
        throw new InsecureRegistriesError(entry, 'is not a valid CIDR (expected address/prefix-length, e.g. 10.0.0.0/8)');
      }
      cidrs.addSubnet(address, Number(bits), family(address));
      cidrList.push(entry);
      continue;
    }
    const { host, port } = splitHostPort(entry);
    const validPort = port === undefined || (/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535);
    if (!validPort || (isIP(host) === 0 && !HOSTNAME_RE.test(host))) {
      throw new InsecureRegistriesError(entry, 'is neither a CIDR nor a host[:port]');
    }
    hosts.add(key(host, port));
  }

  // registries.conf: the hosts actually contacted (locations and mirrors), and wildcard prefixes without location.
  const confRules: string[] = [];
  for (const registry of options.conf?.registries ?? []) {
    if (registry.insecure) confRules.push(registry.location === '' ? registry.prefix : registry.location.split('/', 1)[0]!);
    for (const mirror of registry.mirrors) if (mirror.insecure) confRules.push(mirror.location.split('/', 1)[0]!);
  }
  const confHosts = [...new Set(confRules.map((rule) => (rule.startsWith('*.') ? rule : registryHost(rule))))];
  const lookup = options.lookup ?? resolveAddresses;

  return {
    async isInsecure(value: string): Promise<boolean> {
      const { host, port } = splitHostPort(value.trim());
      const ip = isIP(host) !== 0;
      if (host === 'localhost' || (ip && LOOPBACK.check(host, family(host)))) return true;
      if (hosts.has(key(host, port)) || hosts.has(key(host, undefined))) return true;
      const hostPort = key(host, port);
      if (confHosts.some((rule) => (rule.startsWith('*.') ? refMatchingPrefix(hostPort, rule) !== -1 : rule === hostPort))) return true;
      if (cidrList.length === 0) return false;
      let addresses: string[];
      try {
        addresses = ip ? [host] : await lookup(host);
      } catch {
        return false; // unresolvable: no address can fall in a CIDR (as Docker's isSecureIndex)
      }
      return addresses.some((address) => {
        const plain = splitHostPort(address).host;
        return isIP(plain) !== 0 && cidrs.check(plain, family(plain));
      });
    },
    describe: () => ({ hosts: [...hosts], cidrs: [...cidrList], registriesConf: confHosts }),
  };
}
