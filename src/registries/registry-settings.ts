/**
 * Where berth's registry configuration comes from, loaded once at start-up: registries.conf
 * (REGISTRIES_CONF), credentials (AUTH_FILE), insecure registries (INSECURE_REGISTRIES plus
 * `insecure = true` tables) and per-registry TLS material (REGISTRY_CA_DIR, certs.d layout). Every
 * file is read and checked here, so a bad one stops start-up with one line naming it, not a pull later.
 */
import { readdir } from 'node:fs/promises';
import { ConfigError, type Config } from '../config.js';
import { AuthFileError, loadAuthFile, type AuthFile } from '../registry/auth-file.js';
import { loadRegistryTls, RegistryCaError } from '../registry/ca-certs.js';
import { createInsecureMatcher, InsecureRegistriesError } from '../registry/insecure.js';
import { RegistriesConfError, type RegistriesConf } from '../registry/registries-conf.js';
import { loadRegistriesConf } from '../registry/registries-conf-load.js';
import type { TlsSettings } from '../registry/transport-tls.js';

/** The effective registry configuration; holds no secret in a form that logs or serializes. */
export interface RegistrySettings {
  conf: RegistriesConf | undefined;
  authFile: AuthFile | undefined;
  insecure: { isInsecure(host: string): Promise<boolean>; describe(): unknown };
  tlsFor(host: string): TlsSettings | undefined;
  caHosts: string[];
}

/** Something to report settings berth read but does not act on. */
export interface SettingsLog {
  warn(obj: object, msg: string): void;
}

/** One line, whatever the underlying message held. */
const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, ' ');

/** Turns a bad file into a ConfigError naming the variable, the file, the line and the reason. */
function asConfigError(err: unknown): unknown {
  if (err instanceof RegistriesConfError) return new ConfigError(oneLine(`REGISTRIES_CONF: ${err.message}`), { cause: err });
  if (err instanceof AuthFileError) return new ConfigError(oneLine(`AUTH_FILE: ${err.message}`), { cause: err });
  if (err instanceof RegistryCaError) return new ConfigError(oneLine(`REGISTRY_CA_DIR: ${err.message}`), { cause: err });
  if (err instanceof InsecureRegistriesError) return new ConfigError(oneLine(err.message), { cause: err });
  return err;
}

/**
 * TLS material of every `<dir>/<host[:port]>/` folder, read now so that `tlsFor` can answer
 * synchronously when the transport opens a connection. A URL drops the default port, so a
 * `host:443` folder also answers for `host`.
 */
async function loadCaDir(dir: string): Promise<{ byHost: Map<string, TlsSettings>; hosts: string[] }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new RegistryCaError(dir, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`);
  }
  const byHost = new Map<string, TlsSettings>();
  const hosts: string[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const tls = await loadRegistryTls(dir, entry.name);
    if (tls === undefined) continue;
    const host = entry.name.toLowerCase();
    byHost.set(host, tls);
    hosts.push(host);
    if (host.endsWith(':443') && !byHost.has(host.slice(0, -4))) byHost.set(host.slice(0, -4), tls);
  }
  return { byHost, hosts };
}

/** Loads and checks every registry setting of `config`; throws ConfigError on a bad file or entry. */
export async function loadRegistrySettings(config: Config, log?: SettingsLog): Promise<RegistrySettings> {
  try {
    const conf = config.registriesConf === undefined ? undefined : await loadRegistriesConf(config.registriesConf);
    const authFile = config.authFile === undefined ? undefined : await loadAuthFile(config.authFile);
    const insecure = createInsecureMatcher({ cidrsAndHosts: config.insecureRegistries, ...(conf ? { conf } : {}) });
    const tls = config.registryCaDir === undefined ? { byHost: new Map<string, TlsSettings>(), hosts: [] } : await loadCaDir(config.registryCaDir);
    for (const warning of [...(conf?.warnings ?? []), ...(authFile?.warnings ?? [])]) log?.warn({}, warning);
    return {
      conf,
      authFile,
      insecure,
      tlsFor: (host) => tls.byHost.get(host.toLowerCase()),
      caHosts: tls.hosts,
    };
  } catch (err) {
    throw asConfigError(err);
  }
}
