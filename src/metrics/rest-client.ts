// client-go's rest_client_* metrics, with v1.36's names, labels, buckets and HELP text
// (component-base/metrics/prometheus/restclient), so dashboards built for upstream kube-proxy
// (kubernetes-mixin's "Kube API Request Rate", "Post/Get Request Latency 99th Quantile") have
// data. `verb` is the HTTP method, `host` the server's host:port, `code` the HTTP status or
// `<error>` when no response came back, as client-go labels them.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from './registry.ts';

const LATENCY_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
/** 64 bytes to 16 MiB. */
const SIZE_BUCKETS = [64, 256, 512, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216];

/** What the API client reports; KubeClient calls these, tests may fake them. */
export interface RestClientMetrics {
  requestResult(code: string, method: string, host: string): void;
  requestLatency(verb: string, host: string, seconds: number): void;
  rateLimiterLatency(verb: string, host: string, seconds: number): void;
  requestSize(verb: string, host: string, bytes: number): void;
  responseSize(verb: string, host: string, bytes: number): void;
  /** One run of a kubeconfig exec credential plugin: its exit code and how it went. */
  execPluginCall(code: number, callStatus: ExecCallStatus): void;
  /** Expiry of the client certificate an exec plugin returned (undefined: none). */
  execPluginCertExpiry(expiry: Date | undefined): void;
}

export type ExecCallStatus =
  'no_error' | 'plugin_execution_error' | 'plugin_not_found_error' | 'client_internal_error';

/** Registers the rest-client metrics on `registry` (component-base marks them ALPHA). */
export function registerRestClientMetrics(registry: Registry): RestClientMetrics {
  const registers = [registry];
  const requests = new Counter({
    name: 'rest_client_requests_total',
    help: '[ALPHA] Number of HTTP requests, partitioned by status code, method, and host.',
    labelNames: ['code', 'method', 'host'] as const,
    registers,
  });
  const latency = new Histogram({
    name: 'rest_client_request_duration_seconds',
    help: '[ALPHA] Request latency in seconds. Broken down by verb, and host.',
    labelNames: ['verb', 'host'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const rateLimiter = new Histogram({
    name: 'rest_client_rate_limiter_duration_seconds',
    help: '[ALPHA] Client side rate limiter latency in seconds. Broken down by verb, and host.',
    labelNames: ['verb', 'host'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const requestSize = new Histogram({
    name: 'rest_client_request_size_bytes',
    help: '[ALPHA] Request size in bytes. Broken down by verb and host.',
    labelNames: ['verb', 'host'] as const,
    buckets: SIZE_BUCKETS,
    registers,
  });
  const responseSize = new Histogram({
    name: 'rest_client_response_size_bytes',
    help: '[ALPHA] Response size in bytes. Broken down by verb and host.',
    labelNames: ['verb', 'host'] as const,
    buckets: SIZE_BUCKETS,
    registers,
  });
  const execCalls = new Counter({
    name: 'rest_client_exec_plugin_call_total',
    help:
      '[ALPHA] Number of calls to an exec plugin, partitioned by the type of event encountered ' +
      '(no_error, plugin_execution_error, plugin_not_found_error, client_internal_error) and an ' +
      'optional exit code. The exit code will be set to 0 if and only if the plugin call was successful.',
    labelNames: ['code', 'call_status'] as const,
    registers,
  });
  let certExpiry: Date | undefined;
  new Gauge({
    name: 'rest_client_exec_plugin_ttl_seconds',
    help:
      '[ALPHA] Gauge of the shortest TTL (time-to-live) of the client certificate(s) managed by the ' +
      'auth exec plugin. The value is in seconds until certificate expiry (negative if already ' +
      'expired). If auth exec plugins are unused or manage no TLS certificates, the value will be +INF.',
    registers,
    collect() {
      this.set(certExpiry === undefined ? Infinity : (certExpiry.getTime() - Date.now()) / 1000);
    },
  });
  return {
    requestResult: (code, method, host) => requests.inc({ code, method, host }),
    requestLatency: (verb, host, seconds) => latency.observe({ verb, host }, seconds),
    rateLimiterLatency: (verb, host, seconds) => rateLimiter.observe({ verb, host }, seconds),
    requestSize: (verb, host, bytes) => requestSize.observe({ verb, host }, bytes),
    responseSize: (verb, host, bytes) => responseSize.observe({ verb, host }, bytes),
    execPluginCall: (code, callStatus) => execCalls.inc({ code: String(code), call_status: callStatus }),
    execPluginCertExpiry: (expiry) => {
      certExpiry = expiry;
    },
  };
}
