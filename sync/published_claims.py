"""The published claims, held as what differs from the claims by key.

The incremental rules hold every Container's claim by key (`ClaimsByKey`) and hand out,
after each batch, the claims they publish by key (`Desired.published`). Nearly every
claim is published, and published as the very entry the claims by key hold: a second
dict of every key was ~52 bytes per Container at 100,000 Containers (a dict that size is
only 57% full), a tenth of what the sync holds per Container. So `PublishedClaims`
holds only the exceptions, in a small layered dict (`differing`): a claim not published
(marked hidden), and the claim published for a key whose value is not that one entry (a
key listed twice, whose claims are a list; a claim published before its key's claims
changed). Any other key is published as its claim.

Published claims are read against the claims as they were at the last result (a frozen
snapshot): a batch edits the claims by key first and decides what is published after, and
what it decides against is what was published before. When the batch's result is made,
the keys whose claims it wrote or whose publication it changed are compared once against
the new claims and the exceptions are made to fit them (`rebase`); every other key has the
same claim in both. Views (`snapshot()`) are read-only, from any thread; edits come from
the rules' thread.
"""

from __future__ import annotations

from collections.abc import Mapping

from sync.layered import LayeredDict


class _Hidden:
    """`differing`'s marker for a key whose claims are not published."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not published>"


HIDDEN = _Hidden()
_ABSENT = object()


def _as_published(value):
    """What a claims-by-key value publishes by default: a lone claim itself; a list (a key
    listed twice) or nothing, nothing."""
    return None if value is None or type(value) is list else value


class ClaimsByKey(LayeredDict):
    """Claims by key (an entry, or a list of them for a key listed twice) that note which
    keys a batch wrote, so that the published claims are made to fit them after it."""

    __slots__ = ("written",)

    def __init__(self, base: dict | None = None):
        super().__init__(base)
        self.written: set | None = set()  # None: not noted (the published claims are made afresh)

    def __setitem__(self, key, value) -> None:
        if self.written is not None:
            self.written.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        if self.written is not None:
            self.written.add(key)
        super().__delitem__(key)


class PublishedView(Mapping):
    """The published claims as they were at a result: read-only."""

    __slots__ = ("_claims", "_differing", "_size")

    def __init__(self, claims: Mapping, differing: Mapping, size: int):
        self._claims, self._differing, self._size = claims, differing, size

    def get(self, key, default=None):
        # Asked for every name a batch purges, and more: no call it can do without.
        held = self._differing.get(key, _ABSENT)
        if held is _ABSENT:
            claim = self._claims.get(key)
            return default if claim is None or type(claim) is list else claim
        return default if held is HIDDEN else held

    def __getitem__(self, key):
        claim = self.get(key, _ABSENT)
        if claim is _ABSENT:
            raise KeyError(key)
        return claim

    def __contains__(self, key) -> bool:
        return self.get(key, _ABSENT) is not _ABSENT

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        # The claims' order; a key whose claims are a list, and so published only through
        # `differing`, is there too (the claims hold every published key).
        differing = self._differing
        if not differing:
            for key, value in self._claims.items():
                if type(value) is not list:
                    yield key
            return
        for key, value in self._claims.items():
            held = differing.get(key, _ABSENT)
            if held is _ABSENT:
                if type(value) is not list:
                    yield key
            elif held is not HIDDEN:
                yield key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class PublishedClaims(PublishedView):
    """The published claims the rules edit: set and pop like a dict, `snapshot()` for a
    view, `rebase()` when a batch's result is made (see the module docstring)."""

    __slots__ = ("_live", "_edits", "_view")

    def __init__(self, claims: ClaimsByKey, differing: dict | None = None, size: int = 0):
        """Over `claims`, publishing each key's claim but where `differing` says otherwise
        (HIDDEN: not published; a claim: that one), `size` keys in all; without
        `differing`, nothing. The claims are read as they are now."""
        self._live = claims
        frozen = claims.snapshot()
        if differing is None:
            differing, size = {key: HIDDEN for key, value in frozen.items() if type(value) is not list}, 0
        super().__init__(frozen, LayeredDict(differing), size)
        self._edits: set = set()  # keys whose publication this batch set or popped
        self._view: PublishedView | None = None
        claims.written = set()

    @classmethod
    def of(cls, claims: ClaimsByKey, published: Mapping) -> "PublishedClaims":
        """Over `claims`, publishing `published` (key -> claim; every key has claims)."""
        differing = {}
        for key, value in claims.items():
            claim = published.get(key)
            if claim is None:
                if type(value) is not list:
                    differing[key] = HIDDEN
            elif claim is not value:
                differing[key] = claim
        return cls(claims, differing, len(published))

    def __setitem__(self, key, claim) -> None:
        if self.get(key) is None:
            self._size += 1
        self._differing[key] = claim
        self._edits.add(key)
        self._view = None

    def pop(self, key, default=None):
        claim = self.get(key)
        if claim is None:
            return default
        self._differing[key] = HIDDEN
        self._size -= 1
        self._edits.add(key)
        self._view = None
        return claim

    def rebase(self) -> None:
        """The claims by key as they are now become the claims read; the exceptions of the
        keys written or edited since the last rebase are made to fit them."""
        frozen = self._live.snapshot()
        if frozen is self._claims and not self._edits:
            return
        written = self._live.written
        # Not noted (a batch that decided every key at once, and made these claims anew
        # unless it failed first): every key of either.
        keys = self._edits | (written if written is not None else self._claims.keys() | frozen.keys())
        differing = self._differing
        for key in keys:
            published = self.get(key)  # against the claims before
            default = _as_published(frozen.get(key))
            if published is default:
                if key in differing:
                    del differing[key]
            elif published is None:
                differing[key] = HIDDEN
            elif differing.get(key) is not published:
                differing[key] = published
        self._claims = frozen
        self._edits = set()
        self._live.written = set()
        self._view = None

    def snapshot(self) -> PublishedView:
        """A read-only view of the published claims as of the last rebase (call rebase()
        first); the same view again while nothing changed."""
        if self._view is None:
            self._view = PublishedView(self._claims, self._differing.snapshot(), self._size)
        return self._view
