"""`modelrelease run` options from MODELRELEASE_* variables: how deploy/'s ConfigMap configures it."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from controller.cli import main
from controller.runtime import handlers, settings


def _run_parser(environ: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelrelease run", exit_on_error=False)
    parser.add_argument("--prometheus")
    parser.add_argument("--poll-interval", type=float, default=30.0)
    parser.add_argument("--namespace", action="append", default=[])
    parser.add_argument("--standalone", action="store_true")
    parser.add_argument("--analysis", choices=("none", "prometheus"), default="none")
    main.apply_environment(parser, environ)
    return parser


def test_each_option_takes_its_default_from_its_variable_and_the_command_line_wins() -> None:
    environ = {
        "MODELRELEASE_PROMETHEUS": "http://prometheus:9090",
        "MODELRELEASE_POLL_INTERVAL": "12.5",
        "MODELRELEASE_NAMESPACE": "ml-serving, ml-batch",
        "MODELRELEASE_STANDALONE": "true",
        "MODELRELEASE_ANALYSIS": "prometheus",
    }
    args = _run_parser(environ).parse_args([])
    assert args.prometheus == "http://prometheus:9090"
    assert args.poll_interval == 12.5
    assert args.namespace == ["ml-serving", "ml-batch"]
    assert args.standalone is True
    assert args.analysis == "prometheus"
    assert _run_parser(environ).parse_args(["--poll-interval", "3"]).poll_interval == 3.0


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("MODELRELEASE_POLL_INTERVAL", "soon", "MODELRELEASE_POLL_INTERVAL='soon'"),
        ("MODELRELEASE_STANDALONE", "maybe", "expected true or false"),
        ("MODELRELEASE_ANALYSIS", "vibes", "expected one of none, prometheus"),
    ],
)
def test_a_bad_value_stops_naming_the_variable(
    variable: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _run_parser({variable: value})
    assert said in capsys.readouterr().err


def test_the_real_run_command_reads_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRELEASE_METRICS_PORT", "9100")
    monkeypatch.setenv("MODELRELEASE_PROMETHEUS", "http://prometheus:9090")
    args = main.build_parser().parse_args(["run"])
    assert args.metrics_port == 9100
    assert args.prometheus == "http://prometheus:9090"


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["run", "--slack-interactions-port", "8083"], {}),
        (["run"], {"MODELRELEASE_SLACK_INTERACTIONS_PORT": "8083"}),
    ],
)
def test_the_retired_slack_port_is_refused_saying_where_presses_arrive_now(
    argv: list[str],
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit):
        main.build_parser().parse_args(argv)
    said = capsys.readouterr().err
    assert "--slack-interactions-port is gone" in said
    assert "/slack/interactions" in said
    assert "--webhook-port" in said


def _run_options(argv: list[str]) -> dict[str, object]:
    return vars(main.build_parser().parse_args(["run", *argv]))


def test_every_run_option_is_a_setting_and_the_defaults_are_the_settings_own() -> None:
    options = _run_options([])
    fields = set(settings.RuntimeSettings.model_fields)
    for name in options:
        if name in ("command", "handler"):
            continue
        assert settings.RENAMED.get(name, name) in fields, f"--{name.replace('_', '-')} has no setting"
    built = settings.RuntimeSettings.from_options(options)
    assert built.model_copy(update={"priority": 0}) == settings.RuntimeSettings()


def test_options_become_settings_and_the_rules_across_options_name_them() -> None:
    built = settings.RuntimeSettings.from_options(
        _run_options(
            ["--namespace", "ml", "--selector", "team=search", "--poll-interval", "2", "--standalone"]
        )
    )
    assert built.namespaces == ("ml",)
    assert built.label_selector == {"team": "search"}
    assert built.poll_interval == timedelta(seconds=2)
    assert built.peering_name is None, "standalone: no peering"
    for argv, said in (
        (["--registry", "mlflow"], "--registry mlflow needs --mlflow-tracking-uri"),
        (["--analysis", "prometheus"], "--analysis prometheus needs --prometheus URL"),
        (["--mlflow-webhook-secret-file", "/s"], "needs --webhook-port PORT"),
        (["--selector", "team"], "--selector 'team': expected KEY=VALUE"),
    ):
        with pytest.raises(ValueError, match=said):
            settings.RuntimeSettings.from_options(_run_options(argv))


def test_reconcile_workers_are_a_setting_with_a_floor_and_a_ceiling() -> None:
    assert settings.RuntimeSettings.from_options(_run_options(["--workers", "64"])).workers == 64
    for bad in ("0", "513"):
        with pytest.raises(ValueError, match="workers"):
            settings.RuntimeSettings.from_options(_run_options(["--workers", bad]))


def test_each_shard_has_a_finalizer_of_its_own_and_an_unsharded_controller_the_plain_one() -> None:
    assert handlers.finalizer_for({}) == "modelrelease.dev/finalizer"
    shard_a = handlers.finalizer_for({"modelrelease.dev/shard": "a"})
    assert shard_a.startswith("modelrelease.dev/finalizer-")
    assert shard_a == handlers.finalizer_for({"modelrelease.dev/shard": "a"})  # every replica alike
    assert shard_a != handlers.finalizer_for({"modelrelease.dev/shard": "b"})
    assert handlers.finalizer_for({"b": "2", "a": "1"}) == handlers.finalizer_for({"a": "1", "b": "2"})


def test_a_shard_takes_the_shared_pre_shard_finalizer_off_once_its_own_guards_the_release() -> None:
    own = handlers.finalizer_for({"modelrelease.dev/shard": "a"})
    legacy = handlers.LEGACY_FINALIZER
    assert handlers.owes_legacy_cleanup({"finalizers": [legacy, own]}, own)
    assert not handlers.owes_legacy_cleanup({"finalizers": [legacy]}, own)  # not guarded yet: wait
    assert handlers.owes_legacy_cleanup(
        {"finalizers": [legacy], "deletionTimestamp": "2026-12-03T00:00:00Z"}, own
    )
    assert not handlers.owes_legacy_cleanup({"finalizers": [own]}, own)
    body = {"metadata": {"finalizers": ["example.com/keep", legacy, own]}}
    handlers.drop_legacy_finalizer(body)
    assert body["metadata"]["finalizers"] == ["example.com/keep", own]


def test_a_release_adopting_a_deployment_is_indexed_under_that_deployment_and_others_are_not() -> None:
    adopting = {"serving": {"workloadRef": {"kind": "Deployment", "name": "vllm-chat"}}}
    assert handlers.adopted_deployment("ml", "chat", adopting) == {("ml", "vllm-chat"): "chat"}
    assert handlers.adopted_deployment("ml", "ranker", {"serving": {"image": "vllm:0.6"}}) is None
    assert handlers.adopted_deployment("ml", "broken", {}) is None
