import { homedir } from 'node:os';
import { KernelConfigError, KernelErrorCode } from './errors';

/** A validated endpoint: an absolute Unix socket path, or a loopback HTTP(S) base URL. */
export type KernelEndpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'http'; readonly url: URL };

/**
 * The host names accepted in an `http://` / `https://` endpoint, compared with the WHATWG
 * `URL.hostname` (so `[::1]` keeps its brackets). An exact match, never a prefix: the seed's
 * `startswith("http://localhost")` accepted `http://localhost.evil.example`.
 */
export const loopbackHosts: ReadonlySet<string> = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * The longest socket path (in bytes, without the terminating NUL) that fits `sockaddr_un.sun_path`:
 * 107 on Linux, 103 on macOS and the BSDs.
 * @default the value for `process.platform`
 */
export function maxSocketPathBytes(platform: NodeJS.Platform = process.platform): number {
  return platform === 'linux' || platform === 'android' ? 107 : 103;
}

/** Shows a value in an error message without its credentials (`user:pass@` → `***@`). */
function shown(value: string): string {
  return JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@'));
}

/**
 * Parses and checks a daemon endpoint.
 *
 * - `unix:///abs/path`: an absolute path (a relative one such as `unix://relative.sock` or
 *   `unix:relative` is refused) that fits `sun_path` ({@link maxSocketPathBytes}).
 * - `http://` or `https://` base URL whose host is exactly `127.0.0.1`, `[::1]` or `localhost`, without
 *   username, password, query or fragment (`/api/call` and `/health` are appended to its path).
 *
 * @param variable The option or environment variable the value came from, named in the error.
 * @default variable 'endpoint'
 * @throws KernelConfigError (code `KERNEL_ENDPOINT_INVALID`) naming `variable` and the value.
 * @example
 * ```ts
 * parseEndpoint('unix:///run/user/1000/kernel.sock'); // { kind: 'unix', path: '/run/user/1000/kernel.sock' }
 * parseEndpoint('http://[::1]:8080'); // { kind: 'http', url: URL }
 * parseEndpoint('http://localhost.evil.example'); // throws KernelConfigError
 * ```
 */
export function parseEndpoint(endpoint: string, variable = 'endpoint'): KernelEndpoint {
  const fail = (why: string): never => {
    throw new KernelConfigError(
      variable,
      `${why} (got ${typeof endpoint === 'string' ? shown(endpoint) : typeof endpoint})`,
      KernelErrorCode.EndpointInvalid,
    );
  };
  if (typeof endpoint !== 'string' || endpoint.trim() === '')
    return fail('must be a unix:///absolute/path or a loopback http:// URL');
  if (/^unix:/i.test(endpoint)) {
    if (!/^unix:\/\//i.test(endpoint)) return fail('must be unix:///absolute/path');
    const path = endpoint.slice('unix://'.length);
    if (!path.startsWith('/')) return fail('the socket path must be absolute: unix:///absolute/path');
    if (path.includes('\0')) return fail('the socket path must not contain NUL');
    const bytes = Buffer.byteLength(path);
    const max = maxSocketPathBytes();
    if (bytes > max) return fail(`the socket path is ${bytes} bytes, more than the ${max} that fit sun_path`);
    return { kind: 'unix', path };
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return fail('must be a unix:///absolute/path or a loopback http:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return fail(`scheme ${url.protocol} is not supported: use unix://, http:// or https://`);
  if (url.username !== '' || url.password !== '') return fail('credentials in the URL are not allowed');
  if (!loopbackHosts.has(url.hostname))
    return fail('the host must be exactly 127.0.0.1, [::1] or localhost (loopback only)');
  if (url.search !== '' || endpoint.includes('?')) return fail('a query is not allowed in the endpoint');
  if (url.hash !== '' || endpoint.includes('#')) return fail('a fragment is not allowed in the endpoint');
  return { kind: 'http', url };
}

/**
 * An endpoint safe to log or publish: the home directory shown as `~`, no username or password, no
 * query, no fragment. Accepts any string (even an invalid endpoint).
 * @param home The home directory to hide.
 * @default home os.homedir()
 * @example
 * ```ts
 * redactEndpoint('unix:///home/ada/.local/kernel.sock'); // 'unix://~/.local/kernel.sock'
 * redactEndpoint('http://user:secret@127.0.0.1:8080/k?token=x'); // 'http://127.0.0.1:8080/k'
 * ```
 */
export function redactEndpoint(endpoint: string, home: string = safeHome()): string {
  const hide = (path: string) => {
    const root = home.replace(/\/+$/, '');
    if (root === '') return path;
    if (path === root) return '~';
    return path.startsWith(`${root}/`) ? `~${path.slice(root.length)}` : path;
  };
  if (/^unix:\/\//i.test(endpoint)) return `unix://${hide(endpoint.slice('unix://'.length))}`;
  try {
    const url = new URL(endpoint);
    if (url.protocol === 'unix:') return `unix:${hide(url.pathname)}`;
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    // Not a URL: keep what is before any query or fragment, without userinfo.
    return hide(endpoint.replace(/[?#].*$/s, '').replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1'));
  }
}

function safeHome(): string {
  try {
    return homedir();
  } catch {
    return '';
  }
}
