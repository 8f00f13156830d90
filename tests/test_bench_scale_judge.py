"""How the scale benchmark judges an answer through PowerDNS: the whole expected answer
and nothing else is right; NXDOMAIN with an empty answer is absent; NXDOMAIN after exactly
the expected CNAME is a cut chain (the prober accepts it only for a name being deleted); a
CNAME without its target's A under NOERROR, a wrong address, NODATA or SERVFAIL is wrong."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rrset
import pytest

from bench.scale import count_verdict, expected_answer, judge

ZONE = "domain.foo.bar"
NODES = 1000


def response(name: str, rcode=dns.rcode.NOERROR, *records: tuple[str, str, str]) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query(name, "A"))
    message.set_rcode(rcode)
    for owner, rdtype, value in records:
        message.answer.append(dns.rrset.from_text(owner + ".", 30, "IN", rdtype, value))
    return message


def test_expected_answers_follow_the_topology_and_the_stale_names():
    assert expected_answer(f"p-0001234.{ZONE}", NODES) == (None, "10.0.234.1")
    assert expected_answer(f"c-0001234.{ZONE}", NODES) == (f"p-0001234.{ZONE}", "10.0.234.1")
    assert expected_answer(f"gc-0000251.{ZONE}", NODES) == (f"gp-0000251.{ZONE}", "10.250.1.1")
    with pytest.raises(ValueError):
        expected_answer(f"other.{ZONE}", NODES)


def test_a_parent_with_its_nodes_address_is_right():
    name = f"p-0000007.{ZONE}"
    assert judge(response(name, dns.rcode.NOERROR, (name, "A", "10.0.7.1")), name, NODES) == "right"


def test_a_child_with_its_cname_and_the_parents_address_is_right():
    name, parent = f"c-0000007.{ZONE}", f"p-0000007.{ZONE}"
    answer = response(name, dns.rcode.NOERROR, (name, "CNAME", parent + "."), (parent, "A", "10.0.7.1"))
    assert judge(answer, name, NODES) == "right"


def test_nxdomain_with_nothing_in_the_answer_is_absent():
    name = f"p-0000007.{ZONE}"
    assert judge(response(name, dns.rcode.NXDOMAIN), name, NODES) == "absent"


def test_nxdomain_after_the_expected_cname_is_a_cut_chain():
    name, parent = f"gc-0000290.{ZONE}", f"gp-0000290.{ZONE}"
    assert judge(response(name, dns.rcode.NXDOMAIN, (name, "CNAME", parent + ".")), name, NODES) == "cut"


@pytest.mark.parametrize("rcode, records", [
    (dns.rcode.NXDOMAIN, [("c-0000007", "CNAME", "p-0000008")]),  # cut short, and to another parent
    (dns.rcode.NOERROR, [("c-0000007", "CNAME", "p-0000007")]),
    (dns.rcode.NOERROR, [("c-0000007", "CNAME", "p-0000008"), ("p-0000008", "A", "10.0.8.1")]),
    (dns.rcode.NOERROR, [("c-0000007", "CNAME", "p-0000007"), ("p-0000007", "A", "10.0.8.1")]),
    (dns.rcode.NOERROR, [("c-0000007", "CNAME", "p-0000007"), ("p-0000007", "A", "10.0.7.1"),
                         ("p-0000007", "A", "10.0.9.9")]),
    (dns.rcode.NOERROR, []),  # NODATA
    (dns.rcode.SERVFAIL, []),
], ids=["other-cname-then-nxdomain", "cname-alone", "other-parent", "wrong-address", "extra-address", "nodata",
        "servfail"])
def test_anything_else_for_a_child_is_wrong(rcode, records):
    name = f"c-0000007.{ZONE}"
    records = [(f"{owner}.{ZONE}", rdtype, f"{value}.{ZONE}." if rdtype == "CNAME" else value)
               for owner, rdtype, value in records]
    verdict = judge(response(name, rcode, *records), name, NODES)
    assert verdict not in ("right", "absent", "cut")


def test_the_prober_accepts_absent_or_cut_only_for_names_allowed_to_go():
    required = ("p-", "c-")
    assert count_verdict("right", f"c-0000007.{ZONE}", required) == ("right",)
    assert count_verdict("cut", f"gc-0000007.{ZONE}", required) == ("absent", "cut")
    assert count_verdict("absent", f"gp-0000007.{ZONE}", required) == ("absent",)
    assert count_verdict("cut", f"c-0000007.{ZONE}", required) == ("wrong",)
    assert count_verdict("absent", f"p-0000007.{ZONE}", required) == ("wrong",)
    assert count_verdict("timeout", f"gc-0000007.{ZONE}", required) == ("wrong",)


def test_the_steady_state_topology_carries_exactly_the_status_the_writer_would_write():
    """The long-running phase runs over Containers with their status: the status writer
    must find each one up to date (nothing to write), as after it wrote them all."""
    from bench.scale import topology, with_published_status
    from sync.status import Verdict, up_to_date

    objects = with_published_status(topology(200, 2))
    containers = [o for o in objects if o["kind"] == "Container"]
    assert len(containers) == 200
    times = set()
    for obj in containers:
        spec = obj["spec"]
        cname = "mountedTo" in spec
        target = f"{spec['mountedTo']}.{ZONE}" if cname else spec["nodeName"]
        stored = {**obj, "metadata": {**obj["metadata"], "generation": 1}}  # as the API server stores it
        assert up_to_date(stored, Verdict.published_as(spec["fqdn"], target, cname))
        assert not up_to_date(stored, Verdict.published_as(spec["fqdn"], "elsewhere", cname))
        times.add(obj["status"]["conditions"][0]["lastTransitionTime"])
    assert len(times) == 20  # ten a second, the writer's default rate
