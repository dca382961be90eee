"""How a role's chain becomes LiteLLM Router model groups and deployments (no LM call here; the calls
themselves, fallbacks and replicas are tested with the real model in tests/integration)."""

from __future__ import annotations

import pytest

from sme_mcp.config.settings import LMRouterSettings, LMSpec
from sme_mcp.experts.lm import BackendUnavailable, LMChain, NoBackendError


class Replicas:
    """What LMChain reads from the supervised local servers: ready URLs and the model name."""

    model_name = "model.gguf"

    def __init__(self, urls: list[str]):
        self.urls = urls

    def base_urls(self, wait: float = 0.0) -> list[str]:
        if not self.urls:
            raise BackendUnavailable("local llama-server is failed: it exited")
        return list(self.urls)

    def base_url(self, wait: float = 0.0) -> str:
        return self.base_urls(wait)[0]


def test_each_chain_entry_is_a_model_group_and_each_replica_a_deployment(monkeypatch):
    monkeypatch.setenv("SME_TEST_KEY", "sk-test")
    chain = LMChain("math", [LMSpec(), LMSpec(model="openai/gpt-4o-mini", api_key_env="SME_TEST_KEY")],
                    Replicas(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]))
    deployments, reasons = chain._deployments(0.0)
    assert reasons == []
    assert [(d.group, d.served.deployment) for d in deployments] == [
        ("math-0", "local#1 http://127.0.0.1:1/v1"), ("math-0", "local#2 http://127.0.0.1:2/v1"),
        ("math-1", "openai/gpt-4o-mini")]
    assert deployments[2].litellm_params["api_key"] == "sk-test"
    # The local model stops before the adapter's end marker (generated, it is time the user waits for); a cloud
    # model is sent what DSPy sends.
    assert deployments[0].litellm_params["stop"] == ["[[ ## completed ## ]]"]
    assert "stop" not in deployments[2].litellm_params
    lm, by_id, _ = chain._router_lm(0.0)
    router = lm._engine_spec.router
    assert router.fallbacks == [{"math-0": ["math-1"]}]
    assert sorted(d["model_info"]["id"] for d in router.model_list) == sorted(by_id)


def test_unusable_entries_are_left_out_with_their_reason_and_none_left_is_one_clear_error():
    chain = LMChain("code", [LMSpec(), LMSpec(model="openai/gpt-4o-mini", api_key_env="SME_NO_SUCH_KEY")],
                    Replicas([]))
    with pytest.raises(NoBackendError) as err:
        chain.first_available()
    message = str(err.value)
    assert "local: local llama-server is failed: it exited" in message
    assert "SME_NO_SUCH_KEY is not set" in message and "SME_CODE__CHAIN" in message


def test_a_self_hosted_endpoint_without_a_key_gets_a_placeholder_key():
    chain = LMChain("general", [LMSpec(model="openai/qwen", api_base="http://10.0.0.5:8080/v1")], None)
    (deployment,), _ = chain._deployments(0.0)
    assert deployment.litellm_params["api_key"] == "none"
    assert deployment.served.label == "openai/qwen@http://10.0.0.5:8080/v1"


def test_the_router_is_rebuilt_when_a_replica_restarts_on_a_new_port_and_kept_otherwise():
    local = Replicas(["http://127.0.0.1:1/v1"])
    chain = LMChain("router", [LMSpec()], local, router_settings=LMRouterSettings(routing_strategy="least-busy"))
    first, _, _ = chain._router_lm(0.0)
    assert chain._router_lm(0.0)[0] is first
    local.urls = ["http://127.0.0.1:3/v1"]
    rebuilt, by_id, _ = chain._router_lm(0.0)
    assert rebuilt is not first
    assert [d.served.deployment for d in by_id.values()] == ["local#1 http://127.0.0.1:3/v1"]
    assert rebuilt._engine_spec.router.routing_strategy == "least-busy"


def test_named_endpoints_of_one_entry_are_one_balanced_group():
    spec = LMSpec(model="openai/qwen", api_base="http://gpu1:8080/v1", more_api_bases=["http://gpu2:8080/v1"])
    chain = LMChain("general", [spec, LMSpec()], Replicas(["http://127.0.0.1:1/v1"]))
    deployments, _ = chain._deployments(0.0)
    assert [(d.group, d.served.deployment) for d in deployments] == [
        ("general-0", "openai/qwen@http://gpu1:8080/v1"), ("general-0", "openai/qwen@http://gpu2:8080/v1"),
        ("general-1", "local#1 http://127.0.0.1:1/v1")]
    lm, _, _ = chain._router_lm(0.0)
    router = lm._engine_spec.router
    assert router.fallbacks == [{"general-0": ["general-1"]}]
    assert router.disable_cooldowns is False  # two deployments in a group: a failing one cools down


def test_a_replica_keeps_its_number_while_another_is_down():
    class Fleet(Replicas):
        def ready_replicas(self, wait: float = 0.0) -> list[tuple[int, str]]:
            return [(2, "http://127.0.0.1:2/v1")]  # replica 1 was killed

    chain = LMChain("general", [LMSpec()], Fleet(["http://127.0.0.1:2/v1"]))
    (deployment,), _ = chain._deployments(0.0)
    assert deployment.served.deployment == "local#2 http://127.0.0.1:2/v1"  # not renumbered to local#1
