"""The seed's example topology (US 2024/0031284 A1, FIG. 1-4) as a desired State.

Container_A_0 on Node_0 (1.2.3.4); Container_A_1 and Container_B_0 on Node_1 (2.3.4.5);
Container_A_2 on Node_2 (3.4.5.6: the seed gives no address, we pick one); children
Container_C_0 -> Container_A_1, Container_C_1 -> Container_A_2,
Container_D_0 -> Container_B_0, Container_E_0 -> Container_A_0.

The seed's Node_0 is spelled `node-0` here: Kubernetes node names are DNS-1123
(lowercase, no underscores), and node keys hold the Kubernetes name. The same topology
as Kubernetes objects is in tests/k8s_objects.py and examples/.
"""

from mountdns.records import State, Zone

ZONE = "domain.foo.bar"
SEED_ZONE = Zone(name=ZONE, nameservers=("ns1.domain.foo.bar",), hostmaster="hostmaster.domain.foo.bar", ttl=30)

NODES = {"node-0": ("1.2.3.4",), "node-1": ("2.3.4.5",), "node-2": ("3.4.5.6",)}
PARENTS = {
    "container_a_0.domain.foo.bar": "node-0",
    "container_a_1.domain.foo.bar": "node-1",
    "container_b_0.domain.foo.bar": "node-1",
    "container_a_2.domain.foo.bar": "node-2",
}
CHILDREN = {
    "container_c_0.domain.foo.bar": "container_a_1.domain.foo.bar",
    "container_c_1.domain.foo.bar": "container_a_2.domain.foo.bar",
    "container_d_0.domain.foo.bar": "container_b_0.domain.foo.bar",
    "container_e_0.domain.foo.bar": "container_a_0.domain.foo.bar",
}

SEED_STATE = State(zones={ZONE: SEED_ZONE}, nodes=NODES, parents=PARENTS, children=CHILDREN)
