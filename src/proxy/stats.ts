/**
 * Hand-kept counters, rendered as Prometheus text by the admin server.
 *
 * Why not prom-client: its Counter.inc with labels hashes the label object on every
 * call (~150–300 ns plus garbage per request); here a request costs two integer
 * increments on plain objects. The admin server renders these on scrape, which is
 * rare. Labels follow Istio's where they exist, prefixed `weft_`.
 */
import type { ResponseFlag } from './local-reply.js';
import { newHttpSeries, observeHttp, renderIstioMetrics, tcpSeries, type HttpSeries, type TcpSeries } from './observability/metrics.js';
import { LabelCache, requestKey, type TrafficPeer } from './observability/labels.js';

export interface ClusterStats {
  upstreamCxTotal: number;
  upstreamCxConnectFail: number;
  upstreamCxConnectTimeout: number;
  upstreamRqTotal: number;
  upstreamRqActive: number;
  upstreamRqTimeout: number;
  upstreamRqOverflow: number;
  /** Retries sent, and retries refused by the retry budget / max_retries (resilience). */
  upstreamRqRetry: number;
  upstreamRqRetryOverflow: number;
  /** Outlier detection ejections, and active health check failures. */
  outlierEjections: number;
  healthCheckFailures: number;
}

export function newClusterStats(): ClusterStats {
  return { upstreamCxTotal: 0, upstreamCxConnectFail: 0, upstreamCxConnectTimeout: 0, upstreamRqTotal: 0, upstreamRqActive: 0, upstreamRqTimeout: 0, upstreamRqOverflow: 0, upstreamRqRetry: 0, upstreamRqRetryOverflow: 0, outlierEjections: 0, healthCheckFailures: 0 };
}

/** Per-listener connection counters. */
export interface ListenerStats {
  /** Connections closed at once because the listener was at its connection limit. */
  cxOverflow: number;
  /** TCP proxy: connections whose upstream could not be reached (or had no host). */
  tcpUpstreamFail: number;
  /** Connections closed by an idle timeout (TCP proxy) or the headers/request timeout. */
  cxIdleTimeout: number;
}

/** TLS counters of one listener or cluster (Envoy's `<scope>.ssl.*`). */
export interface SslStats {
  handshake: number;
  connectionError: number;
  noCertificate: number;
  failVerifyError: number;
  failVerifySan: number;
  /** Listener: connections no filter chain matched (STRICT refusing plaintext lands here). */
  noFilterChainMatch: number;
}

export function newSslStats(): SslStats {
  return { handshake: 0, connectionError: 0, noCertificate: 0, failVerifyError: 0, failVerifySan: 0, noFilterChainMatch: 0 };
}

export class ProxyStats {
  /** TLS counters by scope: `listener.<name>` or `cluster.<name>` (src/proxy/tls/). */
  readonly ssl = new Map<string, SslStats>();

  sslScope(scope: string): SslStats {
    let s = this.ssl.get(scope);
    if (s === undefined) {
      s = newSslStats();
      this.ssl.set(scope, s);
    }
    return s;
  }

  /** Listener stats by listener name. */
  readonly listeners = new Map<string, ListenerStats>();

  listener(name: string): ListenerStats {
    let s = this.listeners.get(name);
    if (s === undefined) {
      s = { cxOverflow: 0, tcpUpstreamFail: 0, cxIdleTimeout: 0 };
      this.listeners.set(name, s);
    }
    return s;
  }

  downstreamCxActive = 0;
  downstreamCxTotal = 0;
  downstreamRqActive = 0;
  /** `${class}|${flags}` → count, e.g. `2xx|` or `5xx|UH`; class `0xx` = no response (DC). */
  readonly requests = new Map<string, number>();
  /** Cluster stats by cluster name; kept across config swaps so counters do not reset. */
  readonly clusters = new Map<string, ClusterStats>();

  cluster(name: string): ClusterStats {
    let s = this.clusters.get(name);
    if (s === undefined) {
      s = newClusterStats();
      this.clusters.set(name, s);
    }
    return s;
  }

  recordRequest(status: number, flag: ResponseFlag | undefined): void {
    const key = `${Math.floor(status / 100)}xx|${flag ?? ''}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Istio-style series (observability/metrics.ts), by pre-joined label string. */
  readonly istioHttp = new Map<string, HttpSeries>();
  readonly istioTcp = new Map<string, TcpSeries>();
  /** Access log lines dropped (sink too far behind, or its file could not be written). */
  accessLogDropped = 0;
  /** Who this proxy is, for those labels (set by startProxy from the xDS node). Not summed across workers. */
  readonly labels = new LabelCache();

  /** One finished HTTP request, for the Istio-style metrics. */
  recordHttp(peer: TrafficPeer, status: number, flag: ResponseFlag | undefined, grpcStatus: string | undefined, durationMs: number, requestBytes: number, responseBytes: number): void {
    // Two short lookups (peer entry, then `code|flags|grpc`) instead of hashing the ~400-byte label string.
    const e = this.labels.entry(peer);
    const small = `${status}|${flag ?? ''}|${grpcStatus ?? ''}`;
    let s = e.http.get(small);
    if (s === undefined) {
      const key = requestKey(e.prefix, status, flag, grpcStatus);
      s = this.istioHttp.get(key) ?? newHttpSeries();
      this.istioHttp.set(key, s);
      e.http.set(small, s);
    }
    observeHttp(s, durationMs, requestBytes, responseBytes);
  }

  /** The TCP series of a proxied connection's peer (bump `opened`, then add bytes and `closed` at close). */
  tcp(peer: TrafficPeer): TcpSeries {
    return tcpSeries(this.istioTcp, this.labels.prefix(peer));
  }

  renderPrometheus(): string {
    const out: string[] = [];
    out.push(...renderIstioMetrics(this.istioHttp, this.istioTcp));
    out.push('# HELP weft_access_log_dropped_total Access log lines dropped: the sink was too far behind or its file could not be written.', '# TYPE weft_access_log_dropped_total counter', `weft_access_log_dropped_total ${this.accessLogDropped}`);
    // Envoy's http.downstream_rq_<class>: cheap totals by class and flags (the Istio series above carry the detail).
    out.push('# HELP weft_downstream_rq_total Downstream HTTP requests by response code class and response flags.');
    out.push('# TYPE weft_downstream_rq_total counter');
    for (const [key, n] of [...this.requests].sort()) {
      const [cls, flags] = key.split('|');
      out.push(`weft_downstream_rq_total{response_code_class="${cls}",response_flags="${flags === '' ? '-' : flags}"} ${n}`);
    }
    out.push('# HELP weft_downstream_cx_active Open downstream connections.', '# TYPE weft_downstream_cx_active gauge', `weft_downstream_cx_active ${this.downstreamCxActive}`);
    out.push('# HELP weft_downstream_cx_total Downstream connections accepted.', '# TYPE weft_downstream_cx_total counter', `weft_downstream_cx_total ${this.downstreamCxTotal}`);
    out.push('# HELP weft_downstream_rq_active Downstream requests in flight.', '# TYPE weft_downstream_rq_active gauge', `weft_downstream_rq_active ${this.downstreamRqActive}`);
    const per: [string, string, string, keyof ClusterStats][] = [
      ['weft_upstream_cx_total', 'counter', 'Upstream connections opened.', 'upstreamCxTotal'],
      ['weft_upstream_cx_connect_fail_total', 'counter', 'Upstream connection attempts that failed (incl. timeouts).', 'upstreamCxConnectFail'],
      ['weft_upstream_cx_connect_timeout_total', 'counter', 'Upstream connection attempts that timed out.', 'upstreamCxConnectTimeout'],
      ['weft_upstream_rq_total', 'counter', 'Requests sent upstream.', 'upstreamRqTotal'],
      ['weft_upstream_rq_active', 'gauge', 'Upstream requests in flight.', 'upstreamRqActive'],
      ['weft_upstream_rq_timeout_total', 'counter', 'Upstream requests that hit the route timeout.', 'upstreamRqTimeout'],
      ['weft_upstream_rq_pending_overflow_total', 'counter', 'Requests refused by the circuit breaker.', 'upstreamRqOverflow'],
      ['weft_upstream_rq_retry_total', 'counter', 'Retries sent upstream.', 'upstreamRqRetry'],
      ['weft_upstream_rq_retry_overflow_total', 'counter', 'Retries refused by the retry budget or max_retries.', 'upstreamRqRetryOverflow'],
      ['weft_outlier_ejections_total', 'counter', 'Hosts ejected by outlier detection.', 'outlierEjections'],
      ['weft_health_check_failures_total', 'counter', 'Active health checks that failed.', 'healthCheckFailures'],
    ];
    const lnames = [...this.listeners.keys()].sort();
    const lper: [string, string, keyof ListenerStats][] = [
      ['weft_listener_cx_overflow_total', 'Connections refused at the listener connection limit.', 'cxOverflow'],
      ['weft_listener_tcp_upstream_fail_total', 'TCP proxy connections closed because no upstream could be reached.', 'tcpUpstreamFail'],
      ['weft_listener_cx_idle_timeout_total', 'Downstream connections closed by an idle timeout.', 'cxIdleTimeout'],
    ];
    for (const [metric, help, field] of lper) {
      out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} counter`);
      for (const l of lnames) out.push(`${metric}{listener="${escapeLabel(l)}"} ${this.listeners.get(l)![field]}`);
    }
    const names = [...this.clusters.keys()].sort();
    for (const [metric, type, help, field] of per) {
      out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`);
      for (const c of names) out.push(`${metric}{cluster_name="${escapeLabel(c)}"} ${this.clusters.get(c)![field]}`);
    }
    const sslPer: [string, string, keyof SslStats][] = [
      ['weft_ssl_handshake_total', 'TLS handshakes completed (and accepted).', 'handshake'],
      ['weft_ssl_connection_error_total', 'TLS handshakes that failed.', 'connectionError'],
      ['weft_ssl_no_certificate_total', 'TLS connections refused for want of a client certificate.', 'noCertificate'],
      ['weft_ssl_fail_verify_error_total', 'TLS peers whose certificate chain did not verify.', 'failVerifyError'],
      ['weft_ssl_fail_verify_san_total', 'TLS peers whose URI SAN (SPIFFE ID) did not match.', 'failVerifySan'],
      ['weft_listener_no_filter_chain_match_total', 'Connections closed because no filter chain matched them.', 'noFilterChainMatch'],
    ];
    const scopes = [...this.ssl.keys()].sort();
    for (const [metric, help, field] of sslPer) {
      out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} counter`);
      for (const sc of scopes) {
        const dot = sc.indexOf('.');
        out.push(`${metric}{${sc.slice(0, dot) === 'cluster' ? 'cluster_name' : 'listener'}="${escapeLabel(sc.slice(dot + 1))}"} ${this.ssl.get(sc)![field]}`);
      }
    }
    return out.join('\n') + '\n';
  }

  /** Envoy's /stats flavour: `name: value` lines. */
  renderText(): string {
    const out: string[] = [];
    for (const [c, s] of [...this.clusters].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      out.push(`cluster.${c}.upstream_cx_total: ${s.upstreamCxTotal}`);
      out.push(`cluster.${c}.upstream_cx_connect_fail: ${s.upstreamCxConnectFail}`);
      out.push(`cluster.${c}.upstream_cx_connect_timeout: ${s.upstreamCxConnectTimeout}`);
      out.push(`cluster.${c}.upstream_rq_total: ${s.upstreamRqTotal}`);
      out.push(`cluster.${c}.upstream_rq_active: ${s.upstreamRqActive}`);
      out.push(`cluster.${c}.upstream_rq_timeout: ${s.upstreamRqTimeout}`);
      out.push(`cluster.${c}.upstream_rq_pending_overflow: ${s.upstreamRqOverflow}`);
      out.push(`cluster.${c}.upstream_rq_retry: ${s.upstreamRqRetry}`);
      out.push(`cluster.${c}.upstream_rq_retry_overflow: ${s.upstreamRqRetryOverflow}`);
      out.push(`cluster.${c}.outlier_detection.ejections_total: ${s.outlierEjections}`);
      out.push(`cluster.${c}.health_check.failure: ${s.healthCheckFailures}`);
    }
    for (const [l, s] of [...this.listeners].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      out.push(`listener.${l}.downstream_cx_overflow: ${s.cxOverflow}`);
      out.push(`listener.${l}.tcp_upstream_fail: ${s.tcpUpstreamFail}`);
      out.push(`listener.${l}.downstream_cx_idle_timeout: ${s.cxIdleTimeout}`);
    }
    for (const [sc, s] of [...this.ssl].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      out.push(`${sc}.ssl.handshake: ${s.handshake}`, `${sc}.ssl.connection_error: ${s.connectionError}`, `${sc}.ssl.no_certificate: ${s.noCertificate}`);
      out.push(`${sc}.ssl.fail_verify_error: ${s.failVerifyError}`, `${sc}.ssl.fail_verify_san: ${s.failVerifySan}`);
      if (sc.startsWith('listener.')) out.push(`${sc}.no_filter_chain_match: ${s.noFilterChainMatch}`);
    }
    out.push(`http.downstream_cx_active: ${this.downstreamCxActive}`);
    out.push(`http.downstream_cx_total: ${this.downstreamCxTotal}`);
    out.push(`http.downstream_rq_active: ${this.downstreamRqActive}`);
    for (const [key, n] of [...this.requests].sort()) {
      const [cls, flags] = key.split('|');
      out.push(`http.downstream_rq_${cls}${flags === '' ? '' : `.${flags}`}: ${n}`);
    }
    return out.join('\n') + '\n';
  }
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
