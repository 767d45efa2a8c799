"""Traffic routers: where the canary's share of production traffic is set and read back.

Every router keeps three Services per release, created on first use (`services`): `<release>`
(production: what clients call), `<release>-stable` and `<release>-canary` (one revision each;
the canary one also serves a blue-green preview). The replica-ratio router moves the production
Service's selector; the Gateway API and Istio routers move backend weights on a user-owned route
and change only the backends modelrelease owns in it.
"""

from __future__ import annotations

from controller import ports
from controller.adapters import kubeapi
from controller.adapters.traffic import gateway_api, istio, replica_ratio


def build_router(api: kubeapi.KubeApi, release: ports.ReleaseRef) -> ports.TrafficRouter:
    routing = release.spec.traffic_routing
    if routing.gateway_api is not None:
        return gateway_api.GatewayApiRouter(api)
    if routing.istio is not None:
        return istio.IstioRouter(api)
    return replica_ratio.ReplicaRatioRouter(api)
