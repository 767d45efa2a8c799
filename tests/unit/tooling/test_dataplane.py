"""The fleet's data plane routes a release's requests the way the cluster's objects say."""

from __future__ import annotations

from typing import Any

import pytest

from controller.tooling import dataplane


def _pod(name: str, revision: str, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"release": "fraud", "revision": revision}},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _service(name: str, **selector: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": selector}}


PODS = [_pod("s-1", "a"), _pod("s-2", "a"), _pod("s-3", "a"), _pod("c-1", "b")]
SERVICES = [
    _service("fraud", release="fraud"),
    _service("fraud-stable", release="fraud", revision="a"),
    _service("fraud-canary", release="fraud", revision="b"),
]


def test_with_the_replica_ratio_the_production_service_spreads_requests_over_every_ready_pod() -> None:
    shares = dataplane.pod_shares("fraud", SERVICES, PODS)
    assert shares == {"s-1": 0.25, "s-2": 0.25, "s-3": 0.25, "c-1": 0.25}


def test_an_httproute_weights_the_release_services_and_leaves_other_rules_alone() -> None:
    route = {
        "spec": {
            "rules": [
                {"matches": [{"path": {"value": "/admin"}}], "backendRefs": [{"name": "admin", "weight": 1}]},
                {
                    "backendRefs": [
                        {"name": "fraud-stable", "weight": 90},
                        {"name": "fraud-canary", "weight": 10},
                    ]
                },
            ]
        }
    }
    shares = dataplane.pod_shares("fraud", SERVICES, PODS, routes=[route])
    assert shares["c-1"] == pytest.approx(0.10)
    assert shares["s-1"] == pytest.approx(0.30)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_virtual_service_weights_destinations_by_their_short_host() -> None:
    virtual_service = {
        "spec": {
            "http": [
                {
                    "route": [
                        {"destination": {"host": "fraud-stable.ml.svc.cluster.local"}, "weight": 80},
                        {"destination": {"host": "fraud-canary"}, "weight": 20},
                    ]
                }
            ]
        }
    }
    shares = dataplane.pod_shares("fraud", SERVICES, PODS, virtual_services=[virtual_service])
    assert shares["c-1"] == pytest.approx(0.20)
    assert shares["s-2"] == pytest.approx(0.80 / 3)


def test_a_pod_that_is_not_ready_gets_nothing_and_its_service_share_goes_to_the_ready_ones() -> None:
    pods = [_pod("s-1", "a"), _pod("s-2", "a", ready=False), _pod("c-1", "b", ready=False)]
    route = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "fraud-stable", "weight": 50},
                        {"name": "fraud-canary", "weight": 50},
                    ]
                }
            ]
        }
    }
    shares = dataplane.pod_shares("fraud", SERVICES, pods, routes=[route])
    assert shares == {"s-1": 0.5}  # the canary's half has no Ready pod: those requests fail


MAIN_RULE = {"backendRefs": [{"name": "fraud-stable", "weight": 100}, {"name": "fraud-canary", "weight": 0}]}


def test_a_request_mirror_copies_its_percent_of_the_release_requests_to_the_canary_and_serves_it_none() -> (
    None
):
    mirrored = {
        **MAIN_RULE,
        "filters": [
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": "fraud-canary"}, "percent": 40},
            }
        ],
    }
    route = {"spec": {"rules": [mirrored]}}
    assert "c-1" not in dataplane.pod_shares("fraud", SERVICES, PODS, routes=[route])
    assert dataplane.mirror_shares(SERVICES, PODS, routes=[route]) == {"c-1": pytest.approx(0.4)}
    vs = {
        "spec": {
            "http": [
                {
                    "route": [{"destination": {"host": "fraud-stable"}, "weight": 100}],
                    "mirror": {"host": "fraud-canary"},
                    "mirrorPercentage": {"value": 25.0},
                }
            ]
        }
    }
    assert dataplane.mirror_shares(SERVICES, PODS, virtual_services=[vs]) == {"c-1": pytest.approx(0.25)}


def test_a_header_rule_serves_the_cohorts_share_and_the_main_rule_the_rest() -> None:
    cohort = {
        "name": "modelrelease-fraud-header",
        "matches": [{"headers": [{"type": "Exact", "name": "x-cohort", "value": "beta"}]}],
        "backendRefs": [{"name": "fraud-canary", "weight": 100}],
    }
    route = {"spec": {"rules": [MAIN_RULE, cohort]}}
    shares = dataplane.pod_shares("fraud", SERVICES, PODS, routes=[route], cohort_share=0.1)
    assert shares["c-1"] == pytest.approx(0.1)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert "c-1" not in dataplane.pod_shares(
        "fraud", SERVICES, PODS, routes=[route]
    )  # nobody sends the header
