"""`modelrelease run`: build the adapters from settings and run Kopf until stopped.

The cluster is reached through the kubeconfig (or the in-cluster service account).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import kopf

from controller import errors, ports
from controller.adapters import (
    approvals,
    events,
    kubeapi,
    no_analysis,
    pinned_registry,
    releases,
    traffic,
    workloads,
)
from controller.adapters.git import gitremote, gitsync, gitwebhook, gitwriteback
from controller.adapters.mlflow import mlflowwebhook
from controller.adapters.prometheus import prometheus_analysis, prometheus_source
from controller.adapters.slack import slackconnection
from controller.runtime import gitsources, handlers, slackdaemon, telemetry, webhooks
from controller.runtime import settings as settings_


def build_api(config: settings_.RuntimeSettings) -> kubeapi.KubeApi:
    try:
        return kubeapi.KubeApi.from_kubeconfig(
            config.kubeconfig, timeout=config.request_timeout, connections=config.workers + 4
        )
    except errors.ConfigError as exc:
        raise StartupError(
            f"no cluster to talk to ({exc}): run in a pod with a ServiceAccount, or pass --kubeconfig"
        ) from exc


def build_workspaces(config: settings_.RuntimeSettings) -> gitremote.Workspaces:
    return gitremote.Workspaces(pathlib.Path(config.git_cache_dir) if config.git_cache_dir else None)


# What judges a release's analyses, built from the settings and the API client. The product's
# choice is `build_analysis` (the judge on Prometheus, or none); a different one can only be passed
# in from Python, never chosen by a flag, a variable or an object in the cluster.
AnalysisFactory = Callable[[settings_.RuntimeSettings, kubeapi.KubeApi], ports.AnalysisBackend]


def build_analysis(config: settings_.RuntimeSettings, api: kubeapi.KubeApi) -> ports.AnalysisBackend:
    if config.analysis == "none":
        return no_analysis.NoAnalysis()
    if config.analysis != "prometheus":
        raise ValueError(f"analysis {config.analysis!r}: expected prometheus or none")
    if not config.prometheus_url:
        raise ValueError("--analysis prometheus needs --prometheus URL")
    token = pathlib.Path(config.prometheus_token_file) if config.prometheus_token_file else None
    source = prometheus_source.PrometheusSource(
        config.prometheus_url, timeout=config.request_timeout, token_file=token
    )
    return prometheus_analysis.PrometheusAnalysis(api, source, handlers.utcnow)


def build_ports(
    config: settings_.RuntimeSettings,
    api: kubeapi.KubeApi,
    workspaces: gitremote.Workspaces | None = None,
    slack: slackconnection.Slack | None = None,
    kube_events: events.KubeEvents | None = None,
    analysis_factory: AnalysisFactory = build_analysis,
) -> ports.Ports:
    kube_events = kube_events or events.KubeEvents(api, handlers.utcnow)
    return ports.Ports(
        releases=releases.KubeReleases(api),
        workloads=workloads.KubeWorkloads(api),
        analysis=analysis_factory(config, api),
        approvals=approvals.KubeApprovals(api),
        notifier=slack.notifier if slack is not None else events.EventNotifier(kube_events),
        registry=build_model_registry(config),
        repository=gitwriteback.GitWriteBack(api, workspaces or build_workspaces(config)),
        events=kube_events,
        router=lambda release: traffic.build_router(api, release),
    )


def build_model_registry(config: settings_.RuntimeSettings) -> ports.ModelRegistry:
    if config.registry != "mlflow":
        return pinned_registry.PinnedVersionRegistry()
    if not config.mlflow_tracking_uri:
        raise ValueError("--registry mlflow needs --mlflow-tracking-uri")
    from controller.adapters.mlflow import mlflow_registry  # MLflow is a heavy import: only when used

    token = pathlib.Path(config.mlflow_token_file).read_text().strip() if config.mlflow_token_file else None
    return mlflow_registry.connect(config.mlflow_tracking_uri, token=token, timeout=config.request_timeout)


def build_webhook_routes(
    config: settings_.RuntimeSettings, api: kubeapi.KubeApi, slack: slackconnection.Slack | None = None
) -> dict[str, webhooks.Route]:
    """Every inbound callback on the one port: Git pushes, MLflow events and, with a signing secret to
    check them, Slack's button presses."""
    routes = {gitwebhook.PATH: webhooks.json_route(gitwebhook.PushReceiver(api, config.namespaces).handle)}
    if config.mlflow_webhook_secret_file:
        secret = pathlib.Path(config.mlflow_webhook_secret_file).read_text().strip()
        receiver = mlflowwebhook.AliasReceiver(api, config.namespaces, secret)
        routes[mlflowwebhook.PATH] = webhooks.json_route(receiver.handle)
    if slack is not None and config.slack_signing_secret_file is not None:
        routes[slackdaemon.PATH] = slackdaemon.route(slack.interactions)
    return routes


def build_registry(
    config: settings_.RuntimeSettings,
    api: kubeapi.KubeApi,
    io: ports.Ports,
    workspaces: gitremote.Workspaces | None = None,
    slack: slackconnection.Slack | None = None,
    metrics: telemetry.ControllerMetrics | None = None,
    kube_events: events.KubeEvents | None = None,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    configuration = api.configuration

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
            "BearerToken"
        )
        scheme, _sep, value = (token or "").partition(" ")
        return kopf.ConnectionInfo(
            server=configuration.host,
            ca_path=configuration.ssl_ca_cert,
            insecure=not configuration.verify_ssl,
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
            scheme=scheme or None,
            token=value or None,
        )

    wakeups = handlers.register(registry, config, io, metrics=metrics)
    if slack is not None:
        slackdaemon.register(registry, slack, config, wakeups.wake)
    sync = gitsync.GitSourceSync(
        api,
        workspaces or build_workspaces(config),
        kube_events or events.KubeEvents(api, handlers.utcnow),
        handlers.utcnow,
    )
    gitsources.register(registry, sync, handlers.utcnow)
    return registry


class StartupError(RuntimeError):
    """The controller cannot run safely as configured; the message says what to do."""


def ensure_peering(api: kubeapi.KubeApi, config: settings_.RuntimeSettings) -> None:
    """Create the Kopf peering object(s) the replicas coordinate through, when missing.

    Kopf treats a missing peering object differently by how it was named (an implicit default runs
    uncoordinated, an explicit name waits silently forever): creating it makes both cases coordinate.
    """
    assert config.peering_name is not None
    targets: list[tuple[str, str | None]]
    if config.namespaces:
        targets = [(f"/apis/{PEERING_GROUP}/namespaces/{ns}/kopfpeerings", ns) for ns in config.namespaces]
        kind = "KopfPeering"
    else:
        targets = [(f"/apis/{PEERING_GROUP}/clusterkopfpeerings", None)]
        kind = "ClusterKopfPeering"
    for path, namespace in targets:
        body: dict[str, Any] = {
            "apiVersion": PEERING_GROUP,
            "kind": kind,
            "metadata": {"name": config.peering_name, **({"namespace": namespace} if namespace else {})},
        }
        try:
            api.create(path, body)
        except errors.ConflictError:
            continue  # exists: another replica or an administrator made it
        except errors.NotFoundError as exc:
            raise StartupError(
                f"cannot create {kind} {config.peering_name!r}: Kopf's peering CRDs are not installed "
                f"(kubectl apply -f deploy/base/kopf-peering-crds.yaml), or run exactly one replica with "
                f"--standalone ({exc})"
            ) from exc
        except errors.PermanentError as exc:
            raise StartupError(
                f"cannot create {kind} {config.peering_name!r}: {exc}; grant create on "
                f"{kind.lower()}s.kopf.dev or create it by hand"
            ) from exc


PEERING_GROUP = "kopf.dev/v1"


def _start_slack(
    config: settings_.RuntimeSettings, slack: slackconnection.Slack, log: logging.Logger
) -> None:
    log.info("Slack notifications through %s", config.slack_api_url)
    unserved = config.slack_signing_secret_file is not None and config.webhook_port is None
    if unserved and config.slack_app_token_file is None:
        raise StartupError(
            f"--slack-signing-secret-file checks presses on POST {slackdaemon.PATH}, served on "
            "--webhook-port: set it (or --slack-app-token-file for Socket Mode)"
        )
    if config.slack_app_token_file is not None:
        try:
            app_token = slackconnection.read_secret(config.slack_app_token_file, "app-level token")
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        slackconnection.connect_socket_mode(slack.interactions, app_token, slack.client)
        log.info("Slack Socket Mode connected")


def run(config: settings_.RuntimeSettings, analysis_factory: AnalysisFactory = build_analysis) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    api = build_api(config)
    workspaces = build_workspaces(config)
    log = logging.getLogger("modelrelease")
    metrics = telemetry.ControllerMetrics()
    api.on_failure = metrics.count_api_error
    kube_events = events.KubeEvents(api, handlers.utcnow, on_warning=metrics.count_warning)
    try:
        slack = slackdaemon.build(config, api, kube_events, handlers.utcnow)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    try:
        io = build_ports(config, api, workspaces, slack, kube_events, analysis_factory)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    if config.metrics_port is not None:
        port = metrics.serve(config.metrics_host, config.metrics_port)
        log.info("metrics on %s:%d/metrics", config.metrics_host, port)
    if slack is not None:
        _start_slack(config, slack, log)
    if config.webhook_port is not None:
        routes = build_webhook_routes(config, api, slack)
        server = webhooks.serve(routes, config.webhook_host, config.webhook_port)
        log.info("webhooks on %s:%d: %s", config.webhook_host, server.server_address[1], ", ".join(routes))
    if config.standalone:
        log.warning(
            "RUNNING WITHOUT COORDINATION (--standalone): a second controller on these releases would act "
            "too and execute every step twice; run exactly one, or drop --standalone to use peering"
        )
    else:
        ensure_peering(api, config)
        log.info(
            "peering %r with priority %d: only the highest-priority live replica acts",
            config.peering_name,
            config.priority,
        )
    registry = build_registry(config, api, io, workspaces, slack, metrics, kube_events)
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port is not None else None
    asyncio.run(_operate(registry, config, liveness))


async def _operate(
    registry: kopf.OperatorRegistry, config: settings_.RuntimeSettings, liveness: str | None
) -> None:
    # Every release's reconcile runs in a thread of the loop's default executor (asyncio.to_thread).
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="reconcile")
    )
    await kopf.operator(
        registry=registry,
        liveness_endpoint=liveness,
        standalone=config.standalone,
        priority=config.priority,
        peering_name=config.peering_name,
        namespaces=list(config.namespaces),
        clusterwide=not config.namespaces,
    )
