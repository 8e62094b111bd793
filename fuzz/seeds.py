#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ from the test suite's material: the
queries of tests/integration/spec_sample.rs and wire.rs, upstream answers in the shapes
the forward tests script, config/*.toml and the cluster files. Run from fuzz/; the
files it writes are checked in, so run it only to change the seeds."""

import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
Z = "svc.cluster.local"
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "OPT": 41, "AXFR": 252, "IXFR": 251, "ANY": 255,
         "HINFO": 13, "DNAME": 39}


def put(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def wire_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def opt(size, version=0, do=False):
    return b"\0" + struct.pack(">HHBBHH", 41, size, 0, version, 0x8000 if do else 0, 0)


def query(name, qtype="A", edns=None, qid=0xABCD, flags=0x0100, qclass=1, version=0, do=False):
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    q += wire_name(name) + struct.pack(">HH", TYPES[qtype], qclass)
    if edns:
        q += opt(edns, version, do)
    return q


# Questions of spec_sample.rs and wire.rs: names that exist, do not, and are malformed.
NAMES = [
    ("kubernetes.default." + Z, "A"), ("kube-dns.kube-system." + Z, "A"),
    ("web.shop." + Z, "A"), ("web.shop." + Z, "AAAA"), ("web.shop." + Z, "TXT"),
    ("web.shop." + Z, "SOA"), ("web.shop." + Z, "ANY"), ("dual.shop." + Z, "AAAA"),
    ("db.shop." + Z, "A"), ("cache.shop." + Z, "A"), ("headless-empty.monitoring." + Z, "A"),
    ("db-0.db.shop." + Z, "A"), ("10-244-3-31.cache.shop." + Z, "A"),
    ("fd00-10-244-4--40.dual.shop." + Z, "AAAA"), ("nope.shop." + Z, "A"),
    ("a.b.c.web.shop." + Z, "A"), ("x.payments-api.shop." + Z, "A"), ("shop." + Z, "A"),
    ("cluster.local", "SOA"), ("cluster.local", "NS"), ("svc.cluster.local", "A"),
    ("10-244-1-10.shop.pod.cluster.local", "A"), ("not-an-ip.shop.pod.cluster.local", "A"),
    ("fd00-10-244-4--40.shop.pod.cluster.local", "AAAA"),
    ("_http._tcp.web.shop." + Z, "SRV"), ("_postgres._tcp.db.shop." + Z, "SRV"),
    ("_dns._udp.kube-dns.kube-system." + Z, "SRV"), ("web.shop." + Z, "SRV"),
    ("cache.shop." + Z, "SRV"), ("web-alias.shop." + Z, "A"), ("web-alias.shop." + Z, "CNAME"),
    ("payments-api.shop." + Z, "A"), ("pushgateway.monitoring." + Z, "A"),
    ("10.0.96.10.in-addr.arpa", "PTR"), ("10.1.244.10.in-addr.arpa", "PTR"),
    ("0.2.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa", "PTR"),
    ("dns-version.cluster.local", "TXT"), ("ns.dns.cluster.local", "A"),
    ("WeB.ShOp." + Z, "A"), ("example.com", "A"), ("*.shop." + Z, "A"),
]


def query_chain():
    for i, (name, qtype) in enumerate(NAMES):
        put("query_chain", query(name, qtype, edns=[None, 1232, 4096, 512][i % 4]))
    # Sizes, versions and flags at the edges; classes and types refused.
    for size in (0, 100, 511, 513, 1400, 65535):
        put("query_chain", query("cache.shop." + Z, "A", edns=size))
    put("query_chain", query("web.shop." + Z, "A", edns=1232, version=1))
    put("query_chain", query("web.shop." + Z, "A", edns=1232, do=True))
    put("query_chain", query("web.shop." + Z, "A", qclass=3))
    put("query_chain", query("web.shop." + Z, "A", qclass=255))
    for t in ("AXFR", "IXFR", "OPT"):
        put("query_chain", query("cluster.local", t))
    # Malformed: opcode, response bit, counts, compression, short, truncated.
    put("query_chain", query("web.shop." + Z, flags=0x0900))
    put("query_chain", query("web.shop." + Z, flags=0x8100))
    q = bytearray(query("web.shop." + Z)); q[5] = 2
    put("query_chain", bytes(q))
    put("query_chain", struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1")
    put("query_chain", b"\xab\xcd\x01")
    put("query_chain", query("web.shop." + Z)[:20])
    put("query_chain", query("web.shop." + Z, edns=1232) + opt(512))


def rr(owner, rtype, ttl, rdata, rclass=1):
    return owner + struct.pack(">HHIH", TYPES[rtype], rclass, ttl, len(rdata)) + rdata


def response(name, qtype, rcode=0, an=(), ns=(), ar=(), flags=0x8180, edns=True):
    q = wire_name(name) + struct.pack(">HH", TYPES[qtype], 1)
    adds = list(ar) + ([opt(1232)] if edns else [])
    h = struct.pack(">HHHHHH", 0x1234, flags | rcode, 1, len(an), len(ns), len(adds))
    return h + q + b"".join(an) + b"".join(ns) + b"".join(adds)


PTR0 = b"\xc0\x0c"  # the question's name


def soa(ttl=300, minimum=60):
    return rr(b"\xc0\x0c", "SOA", ttl, wire_name("ns.example.com") + wire_name("admin.example.com")
              + struct.pack(">IIIII", 1, 7200, 3600, 1209600, minimum))


def upstream_answer():
    ans = [
        response("example.com", "A", an=[rr(PTR0, "A", 300, bytes([192, 0, 2, 7]))]),
        response("example.com", "A", an=[rr(PTR0, "A", 0, bytes([192, 0, 2, 7]))], edns=False),
        response("example.com", "AAAA", an=[rr(PTR0, "AAAA", 60, bytes(16))]),
        response("www.example.com", "A", an=[
            rr(PTR0, "CNAME", 300, b"\x03cdn\xc0\x10"),
            rr(b"\x03cdn\xc0\x10", "A", 30, bytes([192, 0, 2, 8]))]),
        response("example.com", "MX", an=[rr(PTR0, "MX", 300, b"\0\x0a\x04mail\xc0\x0c")]),
        response("example.com", "TXT", an=[rr(PTR0, "TXT", 300, b"\x05hello")]),
        response("_sip._udp.example.com", "SRV",
                 an=[rr(PTR0, "SRV", 300, struct.pack(">HHH", 1, 2, 5060) + b"\x03sip\xc0\x16")]),
        response("7.2.0.192.in-addr.arpa", "PTR", an=[rr(PTR0, "PTR", 300, wire_name("host.example.com"))]),
        response("nope.example.com", "A", rcode=3, ns=[soa()]),
        response("example.com", "AAAA", ns=[soa(3600, 5)]),
        response("example.com", "A", rcode=2),
        response("example.com", "A", rcode=5),
        response("example.com", "A", flags=0x8380, an=[rr(PTR0, "A", 300, bytes([192, 0, 2, 7]))]),
        response("example.com", "A", an=[rr(PTR0, "A", 300, bytes([192, 0, 2, i])) for i in range(60)]),
        response("example.com", "TXT", an=[rr(PTR0, "TXT", 300, b"\xff" + b"x" * 255)] * 8),
        response("example.com", "A", an=[rr(PTR0, "A", 300, bytes([192, 0, 2, 7]))],
                 ns=[rr(PTR0, "NS", 300, wire_name("ns1.example.com"))],
                 ar=[rr(wire_name("ns1.example.com"), "A", 300, bytes([192, 0, 2, 53]))]),
        response("example.com", "DNAME", an=[rr(PTR0, "DNAME", 300, b"\x03net\0")]),
        response("example.com", "HINFO", an=[rr(PTR0, "HINFO", 300, b"\x03x86\x05linux")]),
    ]
    for i, a in enumerate(ans):
        control = bytes([i % 8])
        size = [b"\x04\xd0", b"\x02\x00", b"\x10\x00", b"\x00\x00"][i % 4]
        put("upstream_answer", control + size + a)
        if i % 3 == 0:
            put("upstream_answer", b"\x01\x02\x00" + a)


def frame(m):
    return struct.pack(">H", len(m)) + m


def tcp_framing():
    qs = [query(n, t) for n, t in NAMES[:12]]
    put("tcp_framing", b"\0" + frame(qs[0]))
    put("tcp_framing", b"\0" + b"".join(frame(q) for q in qs[:6]))
    put("tcp_framing", b"\x01\x00" + b"".join(frame(q) for q in qs[6:9]))
    put("tcp_framing", b"\x03\x01\x10\xff" + b"".join(frame(q) for q in qs))
    put("tcp_framing", b"\x02\x04\x00" + frame(qs[1]) + frame(b"") + frame(qs[2]))
    put("tcp_framing", b"\0" + frame(qs[3]) + frame(b"\xab\xcd\x01") + frame(qs[4]))
    put("tcp_framing", b"\0" + frame(qs[5]) + b"\x01\x00" + qs[5][:20])
    put("tcp_framing", b"\0" + frame(qs[5]) + b"\x00")
    put("tcp_framing", b"\x01\x05" + frame(query("web.shop." + Z, "A", edns=4096)) * 3)


def files():
    for path in ("config/sample-cluster.yaml",):
        put("cluster_file", open(os.path.join(ROOT, path), "rb").read())
    for d in ("config", "deploy/cluster", "deploy/nodelocal"):
        full = os.path.join(ROOT, d)
        if not os.path.isdir(full):
            continue
        for f in sorted(os.listdir(full)):
            if f.endswith(".toml"):
                put("config", open(os.path.join(full, f), "rb").read())
    # The texts the unit and integration tests give the readers.
    for target, globs, mark in (
        ("cluster_file", ["src/source/file", "tests/integration/file_source.rs"], "kind"),
        ("config", ["src/config", "tests/integration/config_files.rs",
                    "tests/integration/zone_options.rs", "tests/integration/blocks.rs"], "\n"),
    ):
        for text in literals(globs):
            if mark in text and len(text) > 8:
                put(target, text.encode())


def literals(paths):
    """String literals (plain and raw) of the Rust files at `paths`, unescaped."""
    import re
    files = []
    for p in paths:
        full = os.path.join(ROOT, p)
        if os.path.isdir(full):
            files += [os.path.join(full, f) for f in sorted(os.listdir(full)) if f.endswith(".rs")]
        elif os.path.exists(full):
            files.append(full)
    out = []
    for f in files:
        src = open(f).read()
        for m in re.finditer(r'r#"(.*?)"#', src, re.S):
            out.append(m.group(1))
        for m in re.finditer(r'(?<![r#\w])"((?:[^"\\]|\\.)*)"', src):
            raw = m.group(1)
            if "\\\n" in raw or "{" in raw and "}" in raw and "\\n" not in raw:
                continue  # continuation lines and format strings
            out.append(raw.encode().decode("unicode_escape"))
    return out


if __name__ == "__main__":
    query_chain()
    upstream_answer()
    tcp_framing()
    files()
    sys.exit(0)
