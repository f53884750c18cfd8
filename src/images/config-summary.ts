/**
 * What berth keeps of an image's config: the `config` section of an OCI/Docker image config
 * (image-spec config.md), summarized for the API.
 */
import type { ConfigSummary } from './images-repository.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const keys = (v: unknown): string[] => (isObject(v) ? Object.keys(v).sort() : Array.isArray(v) ? strings(v) : []);
const labels = (v: unknown): Record<string, string> =>
  isObject(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};

/**
 * Maps an OCI image config (image-spec config.md: its `config` section's Env, Cmd, Entrypoint,
 * WorkingDir, User, Labels, ExposedPorts and Volumes) to the summary berth keeps. An object that is
 * already a summary is normalized as it is.
 */
export function configSummary(config: unknown): ConfigSummary {
  if (isObject(config) && !('config' in config) && Array.isArray(config.env)) {
    const c = config;
    return {
      env: strings(c.env),
      cmd: strings(c.cmd),
      entrypoint: strings(c.entrypoint),
      workingDir: text(c.workingDir),
      user: text(c.user),
      labels: labels(c.labels),
      exposedPorts: keys(c.exposedPorts),
      volumes: keys(c.volumes),
    };
  }
  const c = isObject(config) && isObject(config.config) ? config.config : {};
  return {
    env: strings(c.Env),
    cmd: strings(c.Cmd),
    entrypoint: strings(c.Entrypoint),
    workingDir: text(c.WorkingDir),
    user: text(c.User),
    labels: labels(c.Labels),
    exposedPorts: keys(c.ExposedPorts),
    volumes: keys(c.Volumes),
  };
}
