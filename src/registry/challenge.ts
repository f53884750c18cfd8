/**
 * WWW-Authenticate parsing (RFC 7235 section 4.1 with the RFC 7230 quoted-string rules). A header may
 * hold several challenges separated by commas, and a Bearer challenge's `scope` may itself contain
 * spaces and commas inside its quotes, so a split on "," is not enough.
 */

/** One authentication challenge: the scheme (lowercased) and its parameters (names lowercased). */
export interface Challenge {
  scheme: 'basic' | 'bearer' | (string & {});
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), for schemes that use it instead of parameters. */
  token68?: string;
}

// tchar of RFC 7230 section 3.2.6.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  skipSpacesAndCommas(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** A quoted-string with backslash escapes; an unterminated one runs to the end (lenient). */
  quoted(): string {
    this.pos++; // opening quote
    let out = '';
    while (!this.done) {
      const c = this.peek();
      this.pos++;
      if (c === '"') return out;
      if (c === '\\' && !this.done) {
        out += this.peek();
        this.pos++;
      } else {
        out += c;
      }
    }
    return out;
  }
  /**
   * A parameter value: quoted-string or token. Unquoted values are read up to the next comma or space,
   * leniently, because some registries send `realm=https://host/token` without quotes.
   */
  value(): string {
    if (this.peek() === '"') return this.quoted();
    const start = this.pos;
    while (!this.done && this.peek() !== ',' && this.peek() !== ' ' && this.peek() !== '\t') this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** If an `name =` follows, consumes it and returns the name; otherwise leaves the position unchanged. */
  paramName(): string | undefined {
    const start = this.pos;
    const name = this.token();
    this.skipSpaces();
    if (name !== '' && this.peek() === '=') {
      this.pos++;
      this.skipSpaces();
      return name.toLowerCase();
    }
    this.pos = start;
    return undefined;
  }
}

function parseOne(header: string, out: Challenge[]): void {
  const sc = new Scanner(header);
  for (;;) {
    sc.skipSpacesAndCommas();
    if (sc.done) return;
    const scheme = sc.token();
    if (scheme === '') {
      sc.pos++; // skip a stray character rather than loop forever
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    sc.skipSpaces();
    // token68 form: a single blob that is not followed by `=value`.
    // `abc==` then end or comma is a token68; `name=value` is a parameter.
    const rest = sc.s.slice(sc.pos);
    const t68 = TOKEN68.exec(rest);
    if (t68) {
      const after = rest.slice(t68[0].length).trimStart();
      if (after === '' || after.startsWith(',')) {
        challenge.token68 = t68[0];
        sc.pos += t68[0].length;
        continue;
      }
    }
    // auth-params, comma separated, until the next token that is not followed by "=" (a new scheme).
    for (;;) {
      sc.skipSpacesAndCommas();
      if (sc.done) break;
      const name = sc.paramName();
      if (name === undefined) break;
      challenge.params[name] = sc.value();
      sc.skipSpaces();
    }
  }
}

/**
 * Parses one or more WWW-Authenticate header values into challenges, in order. Malformed input never
 * throws: whatever can be recognized is returned.
 */
export function parseWwwAuthenticate(header: string | readonly string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (header === undefined) return out;
  for (const h of typeof header === 'string' ? [header] : header) parseOne(h, out);
  return out;
}
