"""Policy validation: defaults, every key, and one-line errors naming the key path."""

from __future__ import annotations

import pytest

from xenfab.errors import ConfigError
from xenfab.plan import POLICY_KEYS, Policy, policy_from_dict


def test_defaults_match_documented_keys():
    pol = policy_from_dict({})
    assert pol == Policy()
    for key, (default, _meaning) in POLICY_KEYS.items():
        value = getattr(pol, key)
        if key == "anti_affinity":
            assert value == {}
        else:
            assert value == default, key


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
        "max_starts_per_host": 3,
        "max_starts_in_flight": 20,
        "tier_timeout_s": 120,
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
        (
            {"strategy": "fastest"},
            "policy.strategy: 'fastest' is not one of round-robin, most-free, balanced, pack",
        ),
        (
            {"anti_affinity": {"multicast": "app01"}},
            "policy.anti_affinity.multicast: expected a list of guest names or patterns",
        ),
        (
            {"anti_affinity": {"db": {"members": ["a"], "spread": "rack"}}},
            "policy.anti_affinity.db.spread: 'rack' is not one of host, domain",
        ),
        ({"anti_affinity": {"db": {"members": ["a"], "x": 1}}}, "policy.anti_affinity.db.x:"),
        ({"anti_affinity": {"db": {"spread": "host"}}}, "policy.anti_affinity.db.members:"),
        ({"anti_affinity": ["a", "b"]}, "policy.anti_affinity: expected a mapping"),
        ({"anti_affinity_mode": "maybe"}, "policy.anti_affinity_mode: 'maybe' is not one of"),
        ({"reserve_mib": -1}, "policy.reserve_mib: expected a whole number >= 0"),
        ({"reserve_mib": True}, "policy.reserve_mib:"),
        ({"overhead_mib": "64"}, "policy.overhead_mib:"),
        ({"vcpu_ratio": 0}, "policy.vcpu_ratio: expected a number > 0"),
        ({"vcpu_ratio": "2"}, "policy.vcpu_ratio:"),
        ({"pin": {"db01": [1]}}, "policy.pin.db01: expected a list of host names"),
        ({"pin": {"db01": []}}, "policy.pin.db01: expected a list of host names"),
        ({"pin": ["db01"]}, "policy.pin: expected a mapping"),
        ({"prefer": {"web": 3}}, "policy.prefer.web: expected a list of host names"),
        ({"exclude": [None]}, "policy.exclude: expected a list of host names"),
        ({"prefer_last_owner": "yes"}, "policy.prefer_last_owner: expected true or false"),
        ({"priority": {"db*": 0}}, "policy.priority.db*: expected a whole number >= 1"),
        ({"priority": {"db*": "high"}}, "policy.priority.db*:"),
        ({"default_tier": 0}, "policy.default_tier:"),
        ({"max_starts_per_host": 0}, "policy.max_starts_per_host:"),
        ({"max_starts_in_flight": 0}, "policy.max_starts_in_flight:"),
        ({"max_starts_in_flight": "many"}, "policy.max_starts_in_flight:"),
        ({"tier_timeout_s": 0}, "policy.tier_timeout_s: expected a number > 0"),
        ({"exact_search_s": -1}, "policy.exact_search_s: expected a number >= 0"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as exc:
        policy_from_dict(data)
    text = str(exc.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_where_prefix_is_used():
    with pytest.raises(ConfigError, match=r"^environments\.prod\.policy\.foo: unknown key$"):
        policy_from_dict({"foo": 1}, where="environments.prod.policy")


def test_not_a_mapping():
    with pytest.raises(ConfigError, match=r"^policy: expected a mapping"):
        policy_from_dict(["strategy"])  # type: ignore[arg-type]


def test_priority_exact_name_beats_pattern():
    pol = policy_from_dict({"priority": {"db*": 1, "db09": 5, "*": 2}})
    assert pol.tier_of("db09") == 5
    assert pol.tier_of("db01") == 1
    assert pol.tier_of("web") == 2
