/**
 * Image references, parsed exactly as docker/distribution/reference does (regexp.go for the grammar,
 * normalize.go's ParseNormalizedNamed for the Docker Hub defaults), so that a name means here what it
 * means to docker, podman and containerd. Pure: no I/O.
 */
import { RegistryError } from './errors.js';

/** A parsed, normalized image reference: `domain/path[:tag][@digest]`. */
export interface ImageReference {
  /** Registry domain as written (docker.io for Docker Hub, whatever alias was used). */
  domain: string;
  /** Repository path inside the registry (`library/alpine`). */
  path: string;
  tag?: string;
  digest?: string;
}

/** Options of parseReference. */
export interface ParseReferenceOptions {
  /** Add the tag `latest` when neither tag nor digest is given (default true, as docker pull does). */
  defaultTag?: boolean;
}

// The grammar of docker/distribution/reference regexp.go, component by component, so that failures
// can say which component is wrong instead of "invalid reference format".
const ALPHANUMERIC = '[a-z0-9]+';
// One period, one or two underscores, or any number of dashes between alphanumerics.
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
// Compressed or full IPv6 in brackets; zone identifiers and IPv4-mapped forms are excluded on purpose.
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;

const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN_AND_PORT}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
/** The full anchored ReferenceRegexp, checked last as a safety net over the component checks. */
const REFERENCE_RE = new RegExp(`^((?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const REMOTE_NAME_RE = new RegExp(`^${REMOTE_NAME}$`);

/** Maximum length of `domain/path` (NameTotalLengthMax in distribution/reference). */
const NAME_TOTAL_LENGTH_MAX = 255;
const DEFAULT_DOMAIN = 'docker.io';
/** Names that all mean Docker Hub: the legacy index name and the API endpoint. */
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const OFFICIAL_REPO_PREFIX = 'library/';

/** Hex length of each digest algorithm that go-digest (and so every registry) accepts. */
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(input: string, why: string): RegistryError {
  return new RegistryError('INVALID_REFERENCE', withoutUserinfo(input, `invalid image reference "${input}": ${why}`));
}

/**
 * A reference written as a URL with credentials (`https://user:pass@host/app`, a common slip) must
 * not carry them into an error message, and so into an answer or a log line: they are masked.
 */
function withoutUserinfo(input: string, message: string): string {
  const at = input.indexOf('@');
  if (at <= 0) return message;
  const userinfo = input.slice(0, at).replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  // name:tag@sha256:… is a tag and a digest, not credentials.
  const isDigest = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-f]/i.test(input.slice(at + 1));
  if (isDigest || userinfo.includes('/') || !userinfo.includes(':')) return message;
  return message.split(userinfo).join('***');
}

/**
 * True when the first component of `input` names a registry, by docker's rule (splitDockerDomain):
 * it contains "." or ":", is "localhost", or has uppercase letters (not allowed in repository paths).
 */
export function hasExplicitDomain(input: string): boolean {
  const slash = input.indexOf('/');
  if (slash < 0) return false;
  const first = input.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first;
}

/** Checks a digest (`algorithm:hex`) the way go-digest's Validate does; returns why it is invalid. */
function digestProblem(s: string): string | undefined {
  if (!DIGEST_RE.test(s)) return `"${s}" is not a digest of the form algorithm:hex`;
  const colon = s.indexOf(':');
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return `digest algorithm "${algorithm}" is not supported (use sha256, sha384 or sha512)`;
  if (hex.length !== length) return `a ${algorithm} digest has ${length} hex characters, this one has ${hex.length}`;
  if (!/^[a-f0-9]+$/.test(hex)) return `digest hex must be lowercase 0-9a-f`;
  return undefined;
}

/** True when `s` is a valid, supported digest such as `sha256:<64 lowercase hex>`. */
export function isDigest(s: string): boolean {
  return digestProblem(s) === undefined;
}

/** True when `s` is a valid tag (`[\w][\w.-]{0,127}`). */
export function isTag(s: string): boolean {
  return TAG_RE.test(s);
}

/** True when `s` is a valid repository path (`library/alpine`): lowercase components joined by "/". */
export function isRepositoryPath(s: string): boolean {
  return REMOTE_NAME_RE.test(s);
}

/** Returns `s` when it is a valid digest; throws INVALID_REFERENCE saying what is wrong otherwise. */
export function parseDigest(s: string): string {
  const problem = digestProblem(s);
  if (problem !== undefined) throw new RegistryError('INVALID_REFERENCE', `invalid digest: ${problem}`);
  return s;
}

/** Splits off the registry as normalize.go's splitDockerDomain does; Docker Hub aliases become docker.io. */
function splitDomain(input: string): { domain: string; remainder: string; explicit: boolean } {
  if (!hasExplicitDomain(input)) {
    // Familiar names: "alpine" is docker.io/library/alpine, "user/app" is docker.io/user/app.
    const remainder = input.includes('/') ? input : OFFICIAL_REPO_PREFIX + input;
    return { domain: DEFAULT_DOMAIN, remainder, explicit: false };
  }
  const slash = input.indexOf('/');
  let domain = input.slice(0, slash);
  let remainder = input.slice(slash + 1);
  if (DOCKER_HUB_ALIASES.has(domain)) {
    domain = DEFAULT_DOMAIN;
    // "docker.io/alpine" is also an official image, but only on Docker Hub.
    const name = remainder.split(/[:@]/, 1)[0] ?? '';
    if (!name.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  }
  return { domain, remainder, explicit: true };
}

/** Explains why one path component does not match the grammar. */
function componentProblem(component: string): string {
  if (component === '') return 'empty path component (check for "//" or a trailing "/")';
  if (/[^a-z0-9._-]/.test(component)) {
    return `path component "${component}" may only contain lowercase letters, digits and the separators . _ -`;
  }
  if (!/^[a-z0-9]/.test(component) || !/[a-z0-9]$/.test(component)) {
    return `path component "${component}" must start and end with a lowercase letter or digit`;
  }
  return `path component "${component}" has an invalid separator (allowed: one ".", one or two "_", or dashes)`;
}

/**
 * Parses an image reference following the Distribution grammar exactly: familiar names are normalized
 * to docker.io (with `library/` for single-component names), tag and digest may both be given and both
 * are kept. Throws RegistryError INVALID_REFERENCE with the precise problem.
 */
export function parseReference(input: string, opts: ParseReferenceOptions = {}): ImageReference {
  if (input === '') throw invalid(input, 'the reference is empty');
  if (IDENTIFIER_RE.test(input)) {
    throw invalid(input, 'it looks like an image ID (64 hex characters), not a repository name');
  }
  if (/\s/.test(input)) throw invalid(input, 'it contains whitespace');
  if (input.includes('://')) throw invalid(input, 'a reference has no URL scheme; drop the "scheme://" prefix');

  const { domain, remainder, explicit } = splitDomain(input);
  if (explicit && !DOMAIN_RE.test(domain)) {
    throw invalid(input, `"${domain}" is not a valid registry host[:port] (a first component with "." or ":" names a registry)`);
  }

  const at = remainder.indexOf('@');
  const nameAndTag = at < 0 ? remainder : remainder.slice(0, at);
  const digest = at < 0 ? undefined : remainder.slice(at + 1);
  const colon = nameAndTag.indexOf(':');
  const path = colon < 0 ? nameAndTag : nameAndTag.slice(0, colon);
  const tag = colon < 0 ? undefined : nameAndTag.slice(colon + 1);

  if (path.toLowerCase() !== path) {
    throw invalid(input, `repository name "${path}" must be lowercase (did you mean "${path.toLowerCase()}"?)`);
  }
  if (path === '' || path === OFFICIAL_REPO_PREFIX) throw invalid(input, 'the repository name is missing');
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT_RE.test(component)) throw invalid(input, componentProblem(component));
  }
  if (tag !== undefined && !TAG_RE.test(tag)) {
    throw invalid(
      input,
      `tag "${tag}" must be 1-128 characters of letters, digits, "_", "." and "-", not starting with "." or "-"`,
    );
  }
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem !== undefined) throw invalid(input, problem);
  }
  const name = `${domain}/${path}`;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `the repository name "${name}" is ${name.length} characters, the limit is ${NAME_TOTAL_LENGTH_MAX}`);
  }
  const full = name + (tag === undefined ? '' : `:${tag}`) + (digest === undefined ? '' : `@${digest}`);
  if (!REFERENCE_RE.test(full)) throw invalid(input, 'it does not match the reference grammar');

  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  else if (digest === undefined && opts.defaultTag !== false) ref.tag = 'latest';
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `domain/path`, the repository's canonical name. */
export function formatName(ref: Pick<ImageReference, 'domain' | 'path'>): string {
  return `${ref.domain}/${ref.path}`;
}

/** `domain/path[:tag][@digest]`, the canonical string form that parseReference reads back unchanged. */
export function formatReference(ref: ImageReference): string {
  return formatName(ref) + (ref.tag === undefined ? '' : `:${ref.tag}`) + (ref.digest === undefined ? '' : `@${ref.digest}`);
}

/** The host to contact for a domain: Docker Hub's API lives at registry-1.docker.io, not docker.io. */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain;
}
