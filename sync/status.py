"""What each Container's status should say, and the patch that makes it say so.

The rules decide which Containers are published; this module turns that into the
`Published` condition (metav1.Condition: status, CamelCase reason, message,
observedGeneration, lastTransitionTime) plus `status.fqdn` and `status.target`, compares
it with the status the object has, and builds a JSON merge patch only when they differ,
so an idle cluster sees no status writes. Pure: no Kubernetes client, no clock (the
caller passes the time), so every transition is a named scenario in the tests.

A merge patch replaces a whole list, so the patch carries the complete `conditions`
list (other controllers' conditions kept, in place) and the object's resourceVersion as
a precondition: if anyone wrote in between, the server answers 409 and the writer
re-reads and recomputes (what client-go's meta.SetStatusCondition callers do).
`status.deviceStatus` and any other status field are left out of the patch, so they
survive every write.
"""

from __future__ import annotations

import bisect
import collections.abc
import sys
from typing import Iterable, Mapping

from sync.flat_object import OBJECT_TYPES, Detachable, Held
from sync.objects import POD_KEY_PREFIX, ObjectKey
from sync.rules import Desired, publication

PUBLISHED = "Published"
# Set in a slimmed object's status when it had conditions of other types: the cache keeps
# only ours, and a patch built from it would drop the others, so the writer re-reads first.
FOREIGN_CONDITIONS = "mountdns.io/foreignConditions"
# The status fields of ours that the cache keeps, besides conditions (and deviceStatus,
# which the rules read).
_OWN_FIELDS = ("fqdn", "target")
# Condition fields with few distinct values, shared between objects in memory: ~250 bytes
# less per Container (100,000 Containers each holding a condition cost ~80 MiB without).
_INTERNED = frozenset({"type", "status", "reason", "lastTransitionTime"})


class _Template(str):
    """A published Container's message with its name and target left out (see Verdict)."""
    __slots__ = ()


_PARENT_MESSAGE = _Template("{fqdn} has the addresses of node {target}")
_CHILD_MESSAGE = _Template("{fqdn} is a CNAME to {target}")


class Verdict:
    """What one Container's status should say. Made when asked (`Outcomes.verdict`) for
    the Container being looked at or written, and dropped after: none is kept per
    Container. A published one's message is made from its name and target when compared
    or written. Equal when they say the same, however made."""

    __slots__ = ("published", "reason", "_message", "fqdn", "target")

    def __init__(self, published: bool, reason: str, message: str, fqdn: str | None = None,
                 target: str | None = None):
        self.published, self.reason, self._message = published, reason, message
        self.fqdn, self.target = fqdn, target  # set only when published

    @classmethod
    def published_as(cls, fqdn: str, target: str, cname: bool) -> "Verdict":
        return cls(True, PUBLISHED, _CHILD_MESSAGE if cname else _PARENT_MESSAGE, fqdn, target)

    @property
    def message(self) -> str:
        message = self._message
        return message.format(fqdn=self.fqdn, target=self.target) if type(message) is _Template else message

    def _fields(self) -> tuple:
        return self.published, self.reason, self.message, self.fqdn, self.target

    def __eq__(self, other) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        if (self._message is other._message and self.fqdn == other.fqdn and self.target == other.target
                and self.published == other.published and self.reason == other.reason):
            return True  # most comparisons: one template (or string), no message made
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "Verdict(published={!r}, reason={!r}, message={!r}, fqdn={!r}, target={!r})".format(*self._fields())


def verdicts(desired: Desired, nodes: Iterable[dict],
             owned_elsewhere: frozenset[str] = frozenset(),
             previous: Mapping[ObjectKey, Verdict] | None = None) -> dict[ObjectKey, Verdict]:
    """A Verdict for every Container the rules saw. `owned_elsewhere` are the names the
    store refused because another owner (a sync with another --owner-id) holds them.

    A Container whose record is written but whose name cannot resolve, because the node
    at the end of its chain is not listed or has no usable address, is not Published:
    the condition answers "does my name work", not "is there a key in Redis".
    """
    listed = {_node_name(n) for n in nodes}
    result: dict[ObjectKey, Verdict] = {}
    # The `previous` verdict where it says the same: while the caller still holds the old
    # dict, two sets of 100,000 equal verdicts would otherwise be alive at once.
    previous = previous or {}
    for key in desired.published:
        if not key[1].startswith(POD_KEY_PREFIX):  # a Pod of the pod source: no status of ours (Events tell)
            verdict = _published_verdict(desired.published, desired.state.nodes, key, listed,
                                         owned_elsewhere)
            old = previous.get(key)
            result[key] = old if old is not None and old == verdict else verdict
    for skip in desired.skipped:
        if not skip.name.startswith(POD_KEY_PREFIX):
            result[(skip.namespace, skip.name)] = Verdict(False, skip.code, skip.reason)
    return result


def verdict_of(desired: Desired, key: ObjectKey, listed_nodes, owned_elsewhere: frozenset[str] = frozenset()
               ) -> Verdict | None:
    """verdicts(...)[key], without the others (None when the rules did not see `key`):
    for a batch that changed a few keys among 100,000. `listed_nodes` are the listed
    Nodes' names, lowercased."""
    return Outcomes(desired, listed_nodes, owned_elsewhere).verdict(key)


class Outcomes:
    """What the rules decided, held as the rules' own result (no copy): enough to tell any
    Container's verdict when asked, so the status writer keeps none per Container (a
    Verdict and a table entry were ~125 bytes a Container, 100,000 of them alive for as
    long as the sync runs). `listed_nodes`: the listed Nodes' names, lowercased;
    `owned_elsewhere`: the names the store refused because another owner holds them."""

    __slots__ = ("published", "skipped", "resolving", "listed_nodes", "owned_elsewhere")

    def __init__(self, desired: Desired, listed_nodes, owned_elsewhere: frozenset[str] = frozenset()):
        self.published, self.skipped = desired.published, desired.skipped
        self.resolving = desired.state.nodes  # the nodes with a usable address
        self.listed_nodes, self.owned_elsewhere = listed_nodes, owned_elsewhere

    def verdict(self, key: ObjectKey) -> Verdict | None:
        """The verdict of `key` (what verdicts() says of it), None when the rules did not
        see it. O(log skipped): a bisection of the sorted skips, then the claim."""
        if key[1].startswith(POD_KEY_PREFIX):
            return None  # a Pod of the pod source: no status of ours (Events tell)
        skipped = self.skipped  # sorted: the last skip of a key is the one verdicts() keeps
        if skipped:
            end = bisect.bisect_right(skipped, key, key=_skip_key)
            if end and _skip_key(skipped[end - 1]) == key:
                skip = skipped[end - 1]
                return Verdict(False, skip.code, skip.reason)
        if key in self.published:
            return _published_verdict(self.published, self.resolving, key, self.listed_nodes, self.owned_elsewhere)
        return None


def _skip_key(skip) -> ObjectKey:
    return skip.namespace, skip.name


def _published_verdict(published: Mapping, resolving: Mapping, key: ObjectKey, listed,
                       owned_elsewhere: frozenset[str]) -> Verdict:
    claim = published[key]
    fqdn = claim.fqdn
    if fqdn in owned_elsewhere:
        return Verdict(False, "OwnedElsewhere", f"{fqdn} is held by another owner, which wrote it first; it keeps it")
    cname = claim.mounted_to is not None
    if not cname:  # a parent, most of them: no chain to follow
        node = target = claim.node
    else:
        fqdn, target, node = publication(published, key)
    if node in resolving:
        return Verdict.published_as(fqdn, target, cname)
    if node in listed:
        return Verdict(False, "NodeHasNoAddress",
                       f"{fqdn} is written but node {node} has no usable address, so it does not resolve")
    return Verdict(False, "NodeNotFound", f"{fqdn} is written but node {node} does not exist, so it does not resolve")


def _node_name(node) -> str | None:
    name = ((node.get("metadata") if isinstance(node, OBJECT_TYPES) else None) or {}).get("name")
    return name.lower() if isinstance(name, str) else None


# --- reading what an object's status says --------------------------------------------


_ABSENT = object()


class _HeldCondition(tuple, Held):
    """What a Condition is without its fqdn and target, as a FlatObject holds it (see
    Condition): (status, reason, message, templated, lastTransitionTime,
    observedGeneration), a field the condition lacks as _ABSENT. `templated`: the
    message is a template made with the status's fqdn and target."""

    __slots__ = ()

    def attach(self, part: Mapping) -> "Condition":
        if self[3]:
            return Condition(self, part.get("fqdn"), part.get("target"))
        return Condition(self, None, None)


# The held conditions made so far, each held once: Containers whose status was written in
# the same second (the status writer writes ten a second) share one. Bounded: past this
# many, the table starts again (the conditions already held stay as they are).
_HELD: dict[_HeldCondition, _HeldCondition] = {}
_MAX_HELD = 65_536


def _held_condition(fields: tuple) -> _HeldCondition:
    held = _HeldCondition(fields)
    try:
        found = _HELD.get(held)
    except TypeError:  # a field of an unhashable type (malformed): held as it is, not shared
        return held
    if found is not None:
        return found
    if len(_HELD) >= _MAX_HELD:
        _HELD.clear()
    _HELD[held] = held
    return held


class Condition(collections.abc.Mapping, Detachable):
    """Our `Published` condition as the cache keeps it: the same mapping as the listed
    dict, read-only, like everything the cache holds; a patch is always built as a new
    dict (status_patch).

    A message the sync wrote ("x is a CNAME to y", from the status's own fqdn and target)
    is not held as a string of its own (~90 bytes a Container): its template is, and it
    is made when read. In a FlatObject the condition is held without the fqdn and target
    (`detach`), which the status holds anyway: what is left is the same for every
    Container written in the same second, and is held once for all of them (a condition
    of its own was ~90 bytes a Container). Reading it gives a Condition joined with the
    status's fqdn and target again."""

    __slots__ = ("_held", "_fqdn", "_target")
    _FIELDS = ("type", "status", "reason", "message", "lastTransitionTime", "observedGeneration")

    def __init__(self, held: _HeldCondition, fqdn=None, target=None):
        object.__setattr__(self, "_held", held)
        object.__setattr__(self, "_fqdn", fqdn)
        object.__setattr__(self, "_target", target)

    @classmethod
    def of(cls, condition: Mapping, fqdn=None, target=None) -> "Condition | dict":
        """A Condition for our condition when it holds only the fields one can hold, else
        the dict as it is (a field of a newer API version is kept, not dropped). `fqdn`
        and `target`: the status's own, which the message the sync writes is made of."""
        if type(condition) is Condition:
            return condition
        if condition.get("type") == PUBLISHED and condition.keys() <= _CONDITION_FIELDS:
            return cls._read(condition, fqdn, target)
        return {k: _shared_field(k, v) for k, v in condition.items()}

    @classmethod
    def _read(cls, condition: Mapping, fqdn, target) -> "Condition":
        status, reason, when, observed = (_shared_field(name, condition.get(name, _ABSENT)) for name in _COPIED)
        message = condition.get("message", _ABSENT)
        templated = False
        if type(message) is str and type(fqdn) is str and type(target) is str:
            for template in (_CHILD_MESSAGE, _PARENT_MESSAGE):
                if message == template.format(fqdn=fqdn, target=target):
                    message, templated = template, True
                    break
        held = _held_condition((status, reason, message, templated, when, observed))
        return cls(held, fqdn, target) if templated else cls(held)

    def __setattr__(self, name, value):
        raise AttributeError("a cached condition is read-only")

    def detach(self, part: Mapping):
        """Held as its _HeldCondition where `part` (its status) has the fqdn and target its
        message is made of; else as a whole (the two no longer say the same)."""
        held = self._held
        if not held[3] or (part.get("fqdn") == self._fqdn and part.get("target") == self._target):
            return held
        return self

    def _get(self, key):
        if key == "type":
            return PUBLISHED
        at = _AT.get(key)
        if at is None:
            return _ABSENT
        value = self._held[at]
        if at == _MESSAGE_AT and self._held[3]:
            return value.format(fqdn=self._fqdn, target=self._target)
        return value

    def __getitem__(self, key):
        value = self._get(key)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        value = self._get(key)
        return default if value is _ABSENT else value

    def __iter__(self):
        return (name for name in self._FIELDS if self._get(name) is not _ABSENT)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other):
        # A re-list compares every Container it keeps: one held condition (or equal ones)
        # and the same parts need no message made.
        if type(other) is Condition:
            mine, theirs = self._held, other._held
            if (mine is theirs or mine == theirs) and self._fqdn == other._fqdn and self._target == other._target:
                return True
        return super().__eq__(other)

    __hash__ = None  # a mapping, compared by value

    def __repr__(self) -> str:
        return repr(dict(self))


def _shared_field(name: str, value):
    return sys.intern(value) if name in _INTERNED and isinstance(value, str) else value


# Where each field is in a _HeldCondition (the rest: "type", always ours).
_AT = {"status": 0, "reason": 1, "message": 2, "lastTransitionTime": 4, "observedGeneration": 5}
_MESSAGE_AT = _AT["message"]
_COPIED = tuple(name for name in _AT if name != "message")  # read as given (the message may be a template)
_CONDITION_FIELDS = frozenset(Condition._FIELDS)
CONDITION_TYPES = (dict, Condition)  # what a condition in a cached object may be


def slim_status(status: Mapping, fqdn=None, mounted: bool = False) -> dict:
    """The part of a Container's status the sync keeps in memory: deviceStatus (the rules
    read it), our fields and our condition; other conditions only as a marker, since
    keeping every controller's conditions for 100,000 objects is what slimming avoids.
    `fqdn` (the spec's) is held instead of an equal status.fqdn. `mounted`: the spec
    names a parent to mount to, so status.target is a parent's fqdn, not a node."""
    kept = {k: status[k] for k in ("deviceStatus", *_OWN_FIELDS) if k in status}
    if fqdn is not None and kept.get("fqdn") == fqdn:
        kept["fqdn"] = fqdn
    if isinstance(kept.get("deviceStatus"), str):
        kept["deviceStatus"] = sys.intern(kept["deviceStatus"])  # MOUNTED and a few others
    if not mounted and isinstance(kept.get("target"), str):
        # A parent's target is its node: few distinct. A child's is its parent's fqdn, one
        # per child: interned, each cost an entry in the interpreter's table (~38 bytes a
        # Container) and shared nothing; the cache shares it with the parent's own string.
        kept["target"] = sys.intern(kept["target"])
    conditions = status.get("conditions")
    if isinstance(conditions, list):
        ours = [c for c in conditions if isinstance(c, CONDITION_TYPES) and c.get("type") == PUBLISHED]
        if ours:
            kept["conditions"] = [Condition.of(ours[0], kept.get("fqdn"), kept.get("target"))]
        if len(ours) != len(conditions):
            kept[FOREIGN_CONDITIONS] = True
    if status.get(FOREIGN_CONDITIONS):
        kept[FOREIGN_CONDITIONS] = True  # slimmed twice (a list slims pages, then the cache): keep the mark
    return kept


def part(obj: Mapping, name: str) -> Mapping:
    """`obj[name]` when it is a mapping, else an empty one: a Container whose status or
    metadata is a string or a list (the schema bypassed) is reported by the rules, and
    its status is written over with ours, not a reason for the writer to fail."""
    value = obj.get(name)
    # A dict first; then the ABC itself: isinstance() against typing.Mapping goes through
    # typing's alias (~2 us), and the writer reads parts of every Node each batch.
    return value if type(value) is dict or isinstance(value, collections.abc.Mapping) else {}


def has_foreign_conditions(obj: Mapping) -> bool:
    """The object was slimmed and had conditions it no longer shows."""
    return bool(part(obj, "status").get(FOREIGN_CONDITIONS))


def current_condition(obj: Mapping) -> dict | None:
    conditions = part(obj, "status").get("conditions")
    if isinstance(conditions, list):
        for condition in conditions:
            if isinstance(condition, CONDITION_TYPES) and condition.get("type") == PUBLISHED:
                return condition
    return None


def generation(obj: Mapping) -> int | None:
    value = part(obj, "metadata").get("generation")
    return value if isinstance(value, int) else None


def up_to_date(obj: Mapping, verdict: Verdict) -> bool:
    """The object's status already says what `verdict` says."""
    condition = current_condition(obj)
    if condition is None:
        return False
    status = part(obj, "status")
    return (condition.get("status") == _status_word(verdict)
            and condition.get("reason") == verdict.reason
            and condition.get("message") == verdict.message
            and condition.get("observedGeneration") == generation(obj)
            and status.get("fqdn") == verdict.fqdn
            and status.get("target") == verdict.target)


def enters_failure(obj: Mapping, verdict: Verdict) -> bool:
    """Writing `verdict` moves the object into a failure reason it did not have: the
    moment for a Warning Event (not on every write of the same failure)."""
    if verdict.published:
        return False
    condition = current_condition(obj)
    return condition is None or condition.get("status") != "False" or condition.get("reason") != verdict.reason


# --- the patch ---------------------------------------------------------------------------


def status_patch(obj: Mapping, verdict: Verdict, now: str) -> dict | None:
    """The JSON merge patch for the object's status subresource that makes it say
    `verdict`, or None when it says so already.

    `obj` must show every condition the object has (not a slimmed copy with foreign
    ones left out). `now` is the RFC 3339 time for lastTransitionTime, which moves only
    when the condition's status does.
    """
    if up_to_date(obj, verdict):
        return None
    status = part(obj, "status")
    previous = current_condition(obj)
    word = _status_word(verdict)
    condition = {
        "type": PUBLISHED,
        "status": word,
        "reason": verdict.reason,
        "message": verdict.message,
        "lastTransitionTime": (previous.get("lastTransitionTime")
                               if previous is not None and previous.get("status") == word
                               and previous.get("lastTransitionTime") else now),
    }
    observed = generation(obj)
    if observed is not None:
        condition["observedGeneration"] = observed
    conditions = status.get("conditions")
    conditions = [c if type(c) is dict else dict(c) for c in conditions if isinstance(c, CONDITION_TYPES)] \
        if isinstance(conditions, list) else []
    for index, existing in enumerate(conditions):
        if existing.get("type") == PUBLISHED:
            conditions[index] = condition
            break
    else:
        conditions.append(condition)
    patch_status: dict = {"conditions": conditions}
    for field_name in _OWN_FIELDS:
        wanted = getattr(verdict, field_name)
        if status.get(field_name) != wanted:
            patch_status[field_name] = wanted  # None deletes the field (merge patch)
    patch: dict = {"status": patch_status}
    resource_version = part(obj, "metadata").get("resourceVersion")
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    return patch


def _status_word(verdict: Verdict) -> str:
    return "True" if verdict.published else "False"
