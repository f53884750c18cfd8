/**
 * Platforms (os/architecture/variant) as containerd's `platforms` package spells and compares them,
 * so that "linux/arm64" picks the same child of an index here as `ctr pull --platform` does.
 */
import { RegistryError } from './errors.js';

/** A target platform; `variant` is the CPU variant (`v7` for arm, `v8` for arm64, `v2` for amd64). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const COMPONENT_RE = /^[A-Za-z0-9_-]+$/;

/**
 * Parses `os/arch[/variant]` (e.g. `linux/arm64/v8`) and normalizes it. Throws INVALID_PLATFORM with
 * the expected form. Unlike containerd, a bare `arm64` is refused: a server has no "host platform".
 */
export function parsePlatform(input: string): Platform {
  const parts = input.split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw new RegistryError('INVALID_PLATFORM', `invalid platform "${input}": expected os/architecture[/variant], e.g. linux/arm64`);
  }
  for (const part of parts) {
    if (!COMPONENT_RE.test(part)) {
      throw new RegistryError(
        'INVALID_PLATFORM',
        `invalid platform "${input}": "${part}" must be letters, digits, "_" or "-" (expected os/architecture[/variant])`,
      );
    }
  }
  const [os = '', architecture = '', variant] = parts;
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant });
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/**
 * containerd's platforms.Normalize: lowercases, maps aliases (aarch64→arm64, x86_64→amd64, armhf→arm/v7,
 * armel→arm/v6, i386→386, macos→darwin), gives arm the default variant v7 and drops the defaults that
 * mean "baseline" (arm64 v8, amd64 v1).
 */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  return variant === '' ? { os, architecture } : { os, architecture, variant };
}

/**
 * True when `candidate` (an index entry) is the platform `wanted`, compared after normalization as
 * containerd's platforms.NewMatcher does: linux/arm64 matches arm64 with or without v8, linux/arm/v7
 * accepts v7 only, and an entry without a variant matches only a request whose variant is the default.
 */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const a = normalizePlatform(wanted);
  const b = normalizePlatform(candidate);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}
