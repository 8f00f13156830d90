"""The keyspace's owner spelling: what the scripts and the stores rely on."""

from __future__ import annotations

import pytest

from mountdns.keyspace import Keys, check_owner, owned, split_owned


def test_a_parents_value_is_the_suffix_of_its_node_key():
    keys = Keys("mountdns:")
    assert keys.node("node-1", "east") == keys.node_ref(owned("east", "node-1")) == "mountdns:node:east/node-1"


def test_an_owned_value_splits_at_the_first_slash():
    assert split_owned(b"east/container_b_0.domain.foo.bar") == ("east", "container_b_0.domain.foo.bar")
    assert split_owned("west/node-1") == ("west", "node-1")


def test_a_value_without_an_owner_has_none():
    assert split_owned(b"node-1") == (None, "node-1")


@pytest.mark.parametrize("owner", ["default", "cluster-east", "a", "0", "a" * 63])
def test_owner_ids_are_dns_labels(owner):
    assert check_owner(owner) == owner


@pytest.mark.parametrize("owner", ["", "East", "east/1", "east:1", "-east", "east-", "a" * 64, "e*"])
def test_other_owner_ids_are_refused(owner):
    with pytest.raises(ValueError, match="owner id"):
        check_owner(owner)


def test_node_keys_default_to_the_default_owner():
    assert Keys("mountdns:").node("node-1") == "mountdns:node:default/node-1"


def test_the_node_pattern_of_one_owner_matches_none_of_another():
    keys = Keys("mountdns:")
    assert keys.node_pattern("east") == "mountdns:node:east/*"
    assert keys.fence("east") == "mountdns:fence:east" and keys.marker("east") == "mountdns:marker:east"
    assert keys.zone_owners("domain.foo.bar") == "mountdns:zone-owners:domain.foo.bar"
