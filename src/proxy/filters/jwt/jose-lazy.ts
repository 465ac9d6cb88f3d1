/**
 * jose, loaded at the first token to verify: it costs an idle proxy about 8 MB, and most
 * proxies never see a JWT policy. Verification is asynchronous anyway, so the one-time
 * import adds no new waiting point on the request path.
 */
type Jose = typeof import('jose');

let loading: Promise<Jose> | undefined;

export function loadJose(): Promise<Jose> {
  loading ??= import('jose');
  return loading;
}
