"""Policy validation: defaults, every key, and one-line errors naming the key path."""

from __future__ import annotations

import pytest

from xenfab.errors import ConfigError
from xenfab.plan import Policy, policy_from_dict


def test_defaults_are_the_dataclass_defaults():
    assert policy_from_dict({}) == Policy()


def test_none_is_defaults():
    assert policy_from_dict(None) == Policy()


def test_every_key_accepted():
    data = {
        "strategy": "pack",
        "reserve_mib": 512,
        "overhead_mib": 64,
        "vcpu_ratio": 1.5,
        "anti_affinity": {
            "multicast": ["app01", "app0*"],
            "db": {"members": ["db*"], "spread": "domain"},
        },
        "anti_affinity_mode": "soft",
        "pin": {"db01": ["xen01", "xen02"], "lic*": "xen03"},
        "prefer": {"web*": ["xen04"]},
        "exclude": ["xen05"],
        "prefer_last_owner": False,
        "priority": {"db*": 1, "web*": 2},
        "default_tier": 4,
        "exact_search_s": 0.5,
    }
    pol = policy_from_dict(data)
    assert pol.strategy == "pack"
    assert pol.anti_affinity["db"].spread == "domain"
    assert pol.anti_affinity["multicast"].members == ("app01", "app0*")
    assert pol.pin["lic*"] == ["xen03"]
    assert pol.tier_of("db07") == 1
    assert pol.tier_of("other") == 4
    # to_dict round-trips through validation.
    assert policy_from_dict(pol.to_dict()) == pol


def test_exclude_accepts_single_host():
    assert policy_from_dict({"exclude": "xen03"}).exclude == ["xen03"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"foo": 1}, "policy.foo: unknown key"),
        ({"strategy": "fastest"}, "policy.strategy: input should be 'round-robin', 'most-free'"),
        ({"anti_affinity": {"multicast": "app01"}}, "policy.anti_affinity.multicast.members:"),
        (
            {"anti_affinity": {"db": {"members": ["a"], "spread": "rack"}}},
            "policy.anti_affinity.db.spread: input should be 'host' or 'domain', got 'rack'",
        ),
        ({"anti_affinity": {"db": {"members": ["a"], "x": 1}}}, "policy.anti_affinity.db.x:"),
        ({"anti_affinity": {"db": {"spread": "host"}}}, "policy.anti_affinity.db.members:"),
        ({"anti_affinity": {"db": {"members": []}}}, "policy.anti_affinity.db.members:"),
        ({"anti_affinity": ["a", "b"]}, "policy.anti_affinity: input should be a valid dict"),
        ({"anti_affinity_mode": "maybe"}, "policy.anti_affinity_mode: input should be 'hard'"),
        ({"reserve_mib": -1}, "policy.reserve_mib: input should be greater than or equal to 0"),
        ({"reserve_mib": True}, "policy.reserve_mib: input should be a valid integer, got True"),
        ({"reserve_mib": 1.5}, "policy.reserve_mib:"),
        ({"overhead_mib": "64"}, "policy.overhead_mib:"),
        ({"vcpu_ratio": 0}, "policy.vcpu_ratio: input should be greater than 0"),
        ({"vcpu_ratio": "2"}, "policy.vcpu_ratio:"),
        ({"vcpu_ratio": float("nan")}, "policy.vcpu_ratio: input should be a finite number"),
        ({"pin": {"db01": [1]}}, "policy.pin.db01[0]: input should be a valid string"),
        ({"pin": {"db01": []}}, "policy.pin.db01: list should have at least 1 item"),
        ({"pin": ["db01"]}, "policy.pin: input should be a valid dict"),
        ({"pin": {"db01 ": ["xen01"]}}, "policy.pin: 'db01 ': empty or surrounded by whitespace"),
        ({"prefer": {"web": 3}}, "policy.prefer.web: input should be a valid list"),
        ({"exclude": [None]}, "policy.exclude[0]: input should be a valid string"),
        ({"exclude": ["xen 3"]}, "policy.exclude[0]: 'xen 3' is not a valid host name"),
        ({"prefer_last_owner": "yes"}, "policy.prefer_last_owner: input should be a valid bool"),
        ({"priority": {"db*": 0}}, "policy.priority.db*: input should be greater than or equal"),
        ({"priority": {"db*": "high"}}, "policy.priority.db*:"),
        ({"default_tier": 0}, "policy.default_tier:"),
        ({"max_starts_per_host": 2}, "policy.max_starts_per_host: moved to start."),
        ({"tier_timeout_s": 60}, "policy.tier_timeout_s: moved to start.tier_timeout_s"),
        ({"exact_search_s": -1}, "policy.exact_search_s: input should be greater than or equal"),
        ({"exact_search_s": float("inf")}, "policy.exact_search_s: input should be a finite"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as exc:
        policy_from_dict(data)
    text = str(exc.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_where_prefix_is_used():
    with pytest.raises(
        ConfigError, match=r"^environments\.prod\.policy\.foo: unknown key \(allowed: "
    ):
        policy_from_dict({"foo": 1}, where="environments.prod.policy")


def test_not_a_mapping():
    with pytest.raises(ConfigError, match=r"^policy: expected a mapping"):
        policy_from_dict(["strategy"])  # type: ignore[arg-type]


def test_priority_exact_name_beats_pattern():
    pol = policy_from_dict({"priority": {"db*": 1, "db09": 5, "*": 2}})
    assert pol.tier_of("db09") == 5
    assert pol.tier_of("db01") == 1
    assert pol.tier_of("web") == 2
