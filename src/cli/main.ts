// The `kube-proxy` command: flags and config, then one of --write-config-to, --cleanup, or the
// daemon. Exit codes as upstream: 0 for success, 1 for any error (bad flags or config, failed
// cleanup, node deleted, node IPs changed).
import { readFileSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { hostname } from 'node:os';
import { parseCommandLine, resolveEffective } from '../config/load.ts';
import { renderConfigYAML } from '../config/write.ts';
import { configzOf } from '../config/configz.ts';
import { featureEnabled, gateStates } from '../config/featuregates.ts';
import { METRICS_SERVER_PATHS } from '../daemon/servers.ts';
import { buildInfo } from '../util/version.ts';
import { runDaemon } from '../daemon/daemon.ts';
import { MODES, otherModes } from '../dataplane/modes.ts';
import { KubeClient } from '../k8s/client.ts';
import { loadClientConfig } from '../k8s/kubeconfig.ts';
import { rateLimiterFor } from '../k8s/rate-limit.ts';
import { createRegistry } from '../metrics/registry.ts';
import { registerRestClientMetrics } from '../metrics/rest-client.ts';
import { configureLogging, log } from '../log/log.ts';
import type { Cleaner } from '../sync/backend.ts';
import { runExplain } from './explain.ts';
import { dataplaneSettings } from './settings.ts';
import { runVerify } from './verify.ts';

async function runCleaners(cleaners: readonly Cleaner[], failOnError: boolean): Promise<boolean> {
  let ok = true;
  for (const cleaner of cleaners) {
    try {
      await cleaner.cleanup();
      log.v(1).info('Cleaned up rules', { mode: cleaner.mode });
    } catch (error) {
      ok = false;
      if (failOnError) log.error('Cleanup failed', error, { mode: cleaner.mode });
      else
        log
          .v(2)
          .info('Cleanup of another mode failed', { mode: cleaner.mode, err: (error as Error).message });
    }
  }
  return ok;
}

/** Exits with 1 when the config file changes, so the DaemonSet restarts us with the new one. */
function watchConfigFile(path: string, onChange: () => void): FSWatcher | undefined {
  try {
    const watcher = watch(path, { persistent: false }, () => onChange());
    watcher.on('error', (error) => {
      log.error('Config file watch failed', error, { path });
    });
    return watcher;
  } catch (error) {
    log.error('Cannot watch the config file', error, { path });
    return undefined;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  // Upstream takes no positional arguments, so a subcommand changes no valid upstream command line.
  if (argv[0] === 'explain') return runExplain(argv.slice(1));
  if (argv[0] === 'verify') return runVerify(argv.slice(1));
  if (argv[0] === 'playground') {
    // Loaded only when asked for: the daemon never loads the playground's cluster and API server.
    const { runPlayground } = await import('./playground.ts');
    return runPlayground(argv.slice(1));
  }
  const commandLine = parseCommandLine(argv, { readFile: (path) => readFileSync(path, 'utf8') });
  if (commandLine.kind === 'version') {
    process.stdout.write(commandLine.text);
    return 0;
  }
  if (commandLine.kind === 'help') {
    process.stdout.write(commandLine.text);
    return 0;
  }
  if (commandLine.kind === 'error') {
    process.stderr.write(`Error: ${commandLine.message}\n`);
    return 1;
  }
  const { options, warnings } = commandLine;
  const effective = resolveEffective(options.config, options.master);
  configureLogging({ verbosity: effective.verbosity, format: effective.loggingFormat });
  for (const warning of warnings) log.warn(warning);

  if (options.writeConfigTo !== undefined) {
    try {
      writeFileSync(options.writeConfigTo, renderConfigYAML(options.config));
    } catch (error) {
      process.stderr.write(`Error: cannot write ${options.writeConfigTo}: ${(error as Error).message}\n`);
      return 1;
    }
    log.info('Wrote configuration', { file: options.writeConfigTo });
    return 0;
  }

  if (options.cleanup) {
    const ok = await runCleaners(
      Object.values(MODES).map((mode) => mode.cleaner()),
      true,
    );
    return ok ? 0 : 1;
  }

  const mode = MODES[effective.mode];
  if (mode.unavailable !== undefined) {
    process.stderr.write(`Error: ${mode.unavailable}\n`);
    return 1;
  }
  log.info('Using proxy mode', { mode: mode.name });

  const build = buildInfo(options.reportedVersion);
  const nodeName = effective.hostnameOverride || hostname().trim().toLowerCase();
  // The registry is made here so the API client's rest_client_* metrics count from the first request.
  const registry = createRegistry();
  const client = new KubeClient(
    loadClientConfig({
      ...(effective.kubeconfig ? { kubeconfig: effective.kubeconfig } : {}),
      ...(effective.master ? { master: effective.master } : {}),
    }),
    {
      contentType: effective.contentType,
      acceptContentTypes: effective.acceptContentTypes,
      rateLimiter: rateLimiterFor(effective.qps, effective.burst),
      metrics: registerRestClientMetrics(registry),
    },
  );
  if (client.proxy !== undefined) {
    // Without the proxy's credentials, if its URL carries any.
    log.info('Using an HTTP proxy for the API server', { proxy: client.proxy.replace(/\/\/[^@/]*@/, '//') });
  }

  let exitCode = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const fail = (message: string) => {
    log.error('Exiting', undefined, { reason: message });
    exitCode = 1;
    finish();
  };
  const bind =
    effective.bindAddress === '0.0.0.0' || effective.bindAddress === '::' ? undefined : effective.bindAddress;
  const daemon = await runDaemon({
    mode,
    dataplane: dataplaneSettings(effective, options.userspace),
    nodeName,
    client,
    registry,
    syncPeriodMs: effective.syncPeriodMs,
    minSyncPeriodMs: effective.minSyncPeriodMs,
    healthz: effective.healthz,
    metrics: effective.metrics,
    bindAddressHardFail: effective.bindAddressHardFail,
    bindAddress: bind,
    conntrack: effective.conntrack,
    oomScoreAdj: effective.oomScoreAdj,
    initOnly: options.initOnly,
    requirePodCIDRs: effective.detectLocal.mode === 'NodeCIDR',
    configz: () => configzOf(options.config),
    profiling: options.config.enableProfiling,
    zpages: {
      component: 'kube-proxy',
      flags: () => options.flagValues,
      startTime: new Date(),
      version: build.gitVersion,
      paths: [
        ...METRICS_SERVER_PATHS,
        ...(options.config.enableProfiling ? ['/debug/pprof', '/debug/flags/v'] : []),
      ],
      flagz: featureEnabled(options.config.featureGates, 'ComponentFlagz'),
      statusz: featureEnabled(options.config.featureGates, 'ComponentStatusz'),
    },
    component: { build, gates: gateStates(options.config.featureGates) },
    ...(options.configFile === undefined ? {} : { configFile: options.configFile }),
    ignoredConfigFields: options.ignoredConfigFields,
    onFatal: fail,
    debugAllowedCIDRs: options.debugAllowedCIDRs,
  });
  if (options.initOnly) return 0;
  // Leftovers of other modes would shadow or duplicate our rules (spec 8.3). They go once this
  // mode's first sync of every family is in the kernel, not before: until then they are what
  // carries the node's traffic (a switch of modes, or an upgrade, is then seamless). Both sets
  // of rules side by side are harmless: a connection is translated by whichever sees it first,
  // and the other's rules no longer match the translated packet.
  // iptables and IPVS mode share chain names (nat KUBE-SERVICES, KUBE-POSTROUTING, ...): the
  // other's cleaner keeps what ours uses, or our traffic would stop until the next full sync.
  const running = MODES[effective.mode].xtablesOwners;
  void afterFirstSyncs(daemon.syncs).then(() =>
    runCleaners(
      otherModes(effective.mode).map((other) => other.cleaner(undefined, running)),
      false,
    ),
  );

  const configWatcher =
    options.configFile !== undefined
      ? watchConfigFile(options.configFile, () => fail(`config file ${String(options.configFile)} changed`))
      : undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    // Rules stay in place: upstream does not flush on exit, so traffic keeps flowing during restarts.
    log.info('Received signal, shutting down', { signal });
    finish();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await finished;
  configWatcher?.close();
  await daemon.stop();
  client.close();
  return exitCode;
}

/** Resolves once every family has synced successfully (polled: the syncs have no event for it). */
function afterFirstSyncs(syncs: readonly { readonly successfulSyncs: number }[]): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (syncs.every((sync) => sync.successfulSyncs > 0)) resolve();
      else setTimeout(check, 50).unref();
    };
    check();
  });
}

// Started as a program (not imported by a test).
if (import.meta.url === `file://${process.argv[1] ?? ''}` || process.argv[1]?.endsWith('/cli/main.js')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      log.error('kube-proxy failed', error);
      process.exit(1);
    },
  );
}
