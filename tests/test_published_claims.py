"""sync.published_claims: the published claims held as what differs from the claims by key.

Checked against a plain dict of what is published, through random edits as the rules make
them (claims written, then publications set and popped, then a rebase), with every view
handed out checked again after later edits."""

from __future__ import annotations

import random

import pytest

from sync.published_claims import HIDDEN, ClaimsByKey, PublishedClaims


class Entry:
    """A claim: compared by identity, as the published claims compare them."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Entry({self.name})"


def test_claims_published_as_they_are_take_no_exception():
    claims = ClaimsByKey({f"k{n}": Entry(f"k{n}") for n in range(100)})
    published = PublishedClaims.of(claims, {key: claims[key] for key in claims})
    view = published.snapshot()
    assert len(published._differing) == 0
    assert dict(view) == {key: claims[key] for key in claims} and len(view) == 100


def test_an_unpublished_claim_and_a_key_listed_twice_are_the_exceptions():
    twice = [Entry("a1"), Entry("a2")]
    claims = ClaimsByKey({"a": twice, "b": Entry("b"), "c": Entry("c")})
    published = PublishedClaims.of(claims, {"a": twice[1], "b": claims["b"]})
    view = published.snapshot()
    assert dict(published._differing.items()) == {"a": twice[1], "c": HIDDEN}
    assert dict(view) == {"a": twice[1], "b": claims["b"]}
    assert "c" not in view and view.get("c") is None and len(view) == 2
    with pytest.raises(KeyError):
        view["c"]
    assert list(view) == ["a", "b"]  # the claims' order


def test_a_view_keeps_what_was_published_when_claims_change_after_it():
    first, second = Entry("first"), Entry("second")
    claims = ClaimsByKey({"k": first})
    published = PublishedClaims.of(claims, {"k": first})
    view = published.snapshot()
    claims["k"] = second  # the next batch reads the object again ...
    claims["new"] = Entry("new")  # ... and a new claim comes, not published yet
    assert published.get("k") is first and "new" not in published  # decided against what was
    published.rebase()
    after = published.snapshot()
    assert after["k"] is first and "new" not in after  # nothing decided: as before
    assert dict(published._differing.items()) == {"k": first, "new": HIDDEN}
    published["k"] = second
    published["new"] = claims["new"]
    published.rebase()
    assert dict(published.snapshot()) == {"k": second, "new": claims["new"]}
    assert len(published._differing) == 0  # published as claimed again: no exception left
    assert dict(view) == {"k": first}


def test_the_same_view_while_nothing_changed():
    claims = ClaimsByKey({"k": Entry("k")})
    published = PublishedClaims.of(claims, {"k": claims["k"]})
    view = published.snapshot()
    published.rebase()
    assert published.snapshot() is view
    claims["other"] = Entry("other")
    published.rebase()
    assert published.snapshot() is not view


def test_a_rebase_without_the_written_keys_compares_every_key():
    """Written keys are not noted in a batch that decides everything at once; a rebase
    then still comes out right."""
    claims = ClaimsByKey({"a": Entry("a"), "b": Entry("b")})
    published = PublishedClaims.of(claims, {"a": claims["a"], "b": claims["b"]})
    old_b = claims["b"]
    claims.written = None
    claims["b"] = Entry("b2")
    claims["c"] = Entry("c")
    published.rebase()
    assert dict(published.snapshot()) == {"a": claims["a"], "b": old_b}
    assert claims.written == set()


@pytest.mark.parametrize("seed", range(40))
def test_random_batches_against_a_dict(seed):
    rng = random.Random(seed)
    keys = [f"k{n}" for n in range(30)]
    claims = ClaimsByKey()
    published = PublishedClaims(claims)
    model: dict = {}  # what is published, by key
    views = []  # (view, what it held)
    counter = 0
    for _ in range(60):
        # The batch writes claims (an entry, a list for a key listed twice, or none) ...
        for key in rng.sample(keys, rng.randint(0, 8)):
            choice = rng.random()
            counter += 1
            if choice < 0.15 and key in claims:
                del claims[key]
            elif choice < 0.3:
                claims[key] = [Entry(f"{key}.{counter}a"), Entry(f"{key}.{counter}b")]
            else:
                claims[key] = Entry(f"{key}.{counter}")
        # ... reads what was published (unchanged by the writes) ...
        for key in keys:
            assert published.get(key) is model.get(key)
        # ... and decides some keys: published as one of their claims, or not.
        for key in rng.sample(keys, rng.randint(0, 10)):
            held = claims.get(key)
            options = [] if held is None else held if type(held) is list else [held]
            if options and rng.random() < 0.7:
                published[key] = model[key] = rng.choice(options)
            else:
                published.pop(key, None)
                model.pop(key, None)
        # A key whose claims went keeps what was published only until it is decided: the
        # rules always decide such a key in the same batch.
        for key in list(model):
            if key not in claims:
                published.pop(key, None)
                del model[key]
        published.rebase()
        view = published.snapshot()
        assert dict(view) == model and len(view) == len(model)
        assert list(view) == [key for key in claims if key in model]
        views.append((view, dict(model)))
        for old, held in views:
            assert dict(old) == held and len(old) == len(held)
    # Exceptions are only the keys that need one.
    for key, value in published._differing.items():
        default = claims.get(key)
        default = None if type(default) is list else default
        assert (None if value is HIDDEN else value) is not default
