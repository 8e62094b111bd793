#!/usr/bin/env python3
"""Helpers of benches/load/run.sh (python3 standard library only).

Subcommands:
  ports N                 N free 127.0.0.1 ports (UDP and TCP both free), one a line
  dnsperf ... -- ARGS     run `taskset -c 1 dnsperf ARGS`, measure the server's CPU time over
                          the run, parse dnsperf's report (and its -v lines for latency
                          percentiles) and append one record to the records file
  mem                     append the resident memory of a server (all its processes)
  note                    append a skipped/failed record
  example-zone            master file + query file of the cache scenario's upstream zone
  churn-file              write the churn file (generation G) atomically
  churn                   rewrite the churn file every PERIOD seconds while polling a changed
                          name; append time-to-answer statistics
  query                   ask one name over UDP; print the A addresses (exit 1 if none)
  report                  medians of the records → table on stdout + JSON file

Records are JSON lines: {"scenario", "server", "variant", "run", "status", ...metrics}.
"""

import argparse
import json
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- /proc

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    # The command name may contain spaces and parentheses: split after the last ')'.
    return s[s.rindex(")") + 2:].split()


def proc_tree(pid):
    """pid and all its descendants (NSD forks its server and xfrd processes)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat_fields(d)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out = [pid]
    i = 0
    while i < len(out):
        out.extend(children.get(out[i], []))
        i += 1
    return out


def cpu_seconds(pid):
    """utime + stime of pid and its descendants, every thread included (the process line of
    /proc/PID/stat sums all of a process's threads)."""
    ticks = 0
    for p in proc_tree(pid):
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        ticks += int(f[11]) + int(f[12])  # fields 14 and 15 of stat(5)
    return ticks / CLK_TCK


def memory_kb(pid):
    """(VmRSS, Pss, VmHWM) in KiB summed over pid and its descendants."""
    rss = pss = hwm = 0
    procs = proc_tree(pid)
    for p in procs:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss, hwm, len(procs)


def cpu_times():
    """{cpu: (busy, steal, total)} in ticks from /proc/stat, per core."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *v = line.split()
                v = [int(x) for x in v]
                idle = v[3] + v[4]  # idle + iowait
                steal = v[7] if len(v) > 7 else 0
                total = sum(v[:8])
                out[name] = (total - idle - steal, steal, total)
    return out


def append(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- ports

def cmd_ports(a):
    held, ports = [], []
    while len(ports) < a.n:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            u.close()
            t.close()
            continue
        held += [u, t]
        ports.append(port)
    for s in held:
        s.close()
    print("\n".join(map(str, ports)))


# --------------------------------------------------------------------------- dnsperf

SUMMARY = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "runtime_s": re.compile(r"Run time \(s\):\s+([\d.]+)"),
    "qps": re.compile(r"Queries per second:\s+([\d.]+)"),
    "avg_latency_s": re.compile(r"Average Latency \(s\):\s+([\d.]+)"),
    "avg_request_bytes": re.compile(r"Average packet size:\s+request (\d+)"),
    "avg_response_bytes": re.compile(r"Average packet size:\s+request \d+, response (\d+)"),
}


def percentile(sorted_values, p):
    """Nearest-rank percentile; None if there are no values."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def cmd_dnsperf(a):
    args = list(a.args)
    if args and args[0] == "--":
        args = args[1:]
    cmd = ["taskset", "-c", a.cpu, "dnsperf"] + args + (["-v"] if a.latency else [])
    out = tempfile.NamedTemporaryFile(prefix="dnsperf-", suffix=".out", dir=a.tmp, delete=False)
    rec = {"scenario": a.scenario, "server": a.server, "variant": a.variant, "run": a.run,
           "status": "ok", "command": " ".join(cmd)}
    if a.rate:
        rec["offered_qps"] = a.rate
    cpu0 = cpu_seconds(a.pid) if a.pid else None
    cores0 = cpu_times()
    t0 = time.monotonic()
    with out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except KeyboardInterrupt:
            proc.kill()
            raise
    wall = time.monotonic() - t0
    cpu1 = cpu_seconds(a.pid) if a.pid else None
    cores1 = cpu_times()
    # Each core's busy and stolen share over the run: the server's core should be busy with the
    # server alone (what else ran there shows as busy minus the server's CPU share).
    for core, (b1, st1, t1) in cores1.items():
        b0, st0, t0_ = cores0.get(core, (b1, st1, t1))
        if t1 > t0_:
            rec[f"{core}_busy_share"] = round((b1 - b0) / (t1 - t0_), 3)
            rec[f"{core}_steal_share"] = round((st1 - st0) / (t1 - t0_), 3)
    proc.returncode = os.waitstatus_to_exitcode(status)

    text_tail, latencies, rcodes = [], [], {}
    with open(out.name, errors="replace") as f:
        for line in f:
            if line.startswith("> "):
                parts = line.split()
                try:
                    latencies.append(float(parts[-1]))
                except ValueError:
                    pass
                continue
            text_tail.append(line)
    text = "".join(text_tail)
    if a.keep_output:
        os.replace(out.name, a.keep_output)
    else:
        os.unlink(out.name)
    for key, rx in SUMMARY.items():
        m = rx.search(text)
        if m:
            rec[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for code, n in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            rcodes[code] = int(n)
    rec["rcodes"] = rcodes
    rec["dnsperf_exit"] = proc.returncode
    rec["dnsperf_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    rec["wall_s"] = round(wall, 3)
    if proc.returncode != 0 or "completed" not in rec:
        rec["status"] = "failed"
        rec["reason"] = "dnsperf failed: " + " | ".join(text.strip().splitlines()[-5:])
    else:
        sent = rec.get("sent", 0)
        rec["lost_pct"] = round(100.0 * rec.get("lost", 0) / sent, 3) if sent else 100.0
        rec["dnsperf_cpu_share"] = round(rec["dnsperf_cpu_s"] / wall, 3)
        if cpu0 is not None:
            server_cpu = cpu1 - cpu0
            rec["server_cpu_s"] = round(server_cpu, 3)
            rec["server_cpu_share"] = round(server_cpu / wall, 3)
            # Queries answered per second of server CPU = QPS ÷ the server's CPU share.
            rec["qps_per_core"] = round(rec["completed"] / server_cpu) if server_cpu > 0 else None
            # Its inverse, the stable measure at a fixed offered rate: CPU µs per answer.
            rec["cpu_us_per_query"] = (round(1e6 * server_cpu / rec["completed"], 3)
                                       if rec["completed"] else None)
            if "cpu0_busy_share" in rec:
                rec["cpu0_other_share"] = round(max(0.0, rec["cpu0_busy_share"] - rec["server_cpu_share"]), 3)
        if a.latency:
            # Lost queries count as infinitely late: a percentile that lands on them is None.
            lost = max(0, rec.get("sent", len(latencies)) - len(latencies))
            # dnsperf's -v lines come in the order the answers arrived. Its first fraction of a
            # second is a start-up burst (about 0.4% of a 10 s run answered late, up to a few
            # ms, whichever server answers): it is left out of the headline percentiles, and
            # kept in the *_whole_ms ones.
            skip = int(a.rate * a.warmup) if a.rate else 0
            steady = sorted(latencies[skip:]) if skip < len(latencies) else []
            for suffix, values in (("_ms", steady), ("_whole_ms", sorted(latencies))):
                allv = values + [float("inf")] * lost
                for name, p in (("p50", 50), ("p99", 99), ("p999", 99.9)):
                    v = percentile(allv, p)
                    rec[name + suffix] = None if v is None or v == float("inf") else round(v * 1000, 3)
            rec["latency_samples"] = len(latencies)
            rec["latency_warmup_samples"] = min(skip, len(latencies))
    append(a.record, rec)
    summary = (f"{a.scenario}/{a.variant or '-'} {a.server} run {a.run}: "
               f"{rec.get('qps', 0):,.0f} QPS, lost {rec.get('lost_pct', '?')}%")
    if "server_cpu_share" in rec:
        summary += (f", server CPU {rec['server_cpu_share']:.2f}, "
                    f"{(rec['qps_per_core'] or 0):,} QPS/core, {rec.get('cpu_us_per_query')} µs CPU/query, "
                    f"dnsperf CPU {rec['dnsperf_cpu_share']:.2f}")
    if a.latency:
        summary += (f", p50/p99/p99.9 {rec.get('p50_ms')}/{rec.get('p99_ms')}/{rec.get('p999_ms')} ms"
                    f" (whole run incl. start-up: {rec.get('p99_whole_ms')} ms p99)")
    if rec["status"] != "ok":
        summary += f"  FAILED: {rec['reason']}"
    print("  " + summary, file=sys.stderr)
    return 0 if rec["status"] == "ok" else 1


def settled_memory_kb(pid, window=2.0, limit=15.0, step=0.25):
    """memory_kb once VmRSS has moved by under 1% over `window` seconds (at most `limit`).

    A server that has just loaded its data may still hold the allocator's garbage from
    parsing it: jemalloc (clusterdns) hands freed pages back over a second or two, and a
    reading taken in that window measures the load, not the server."""
    start = time.monotonic()
    samples = [(start, memory_kb(pid))]
    while time.monotonic() - start < limit:
        time.sleep(step)
        now = time.monotonic()
        samples.append((now, memory_kb(pid)))
        old = [m for t, m in samples if now - t >= window]
        if old:
            before, current = old[-1][0], samples[-1][1][0]
            if abs(current - before) <= 0.01 * max(before, 1):
                break
    return samples[-1][1]


def cmd_mem(a):
    rss, pss, hwm, n = settled_memory_kb(a.pid)
    rec = {"scenario": a.scenario, "server": a.server, "variant": a.variant, "run": 1,
           "status": "ok", "rss_kb": rss, "pss_kb": pss, "hwm_kb": hwm, "processes": n}
    append(a.record, rec)
    print(f"  memory {a.server}: VmRSS {rss / 1024:.1f} MB, PSS {pss / 1024:.1f} MB "
          f"({n} process{'es' if n > 1 else ''})", file=sys.stderr)


def cmd_tree(a):
    print("\n".join(map(str, proc_tree(a.pid))))


def cmd_note(a):
    append(a.record, {"scenario": a.scenario, "server": a.server, "variant": a.variant,
                      "run": 0, "status": a.status, "reason": a.reason})


# --------------------------------------------------------------------------- DNS over UDP

def encode_query(name, qtype, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def _skip_name(msg, i):
    while True:
        n = msg[i]
        if n >= 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += n + 1


def answer_addresses(msg, qid):
    """A addresses in the answer section (None for a malformed or foreign reply)."""
    if len(msg) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid:
        return None
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    out = []
    for _ in range(an):
        i = _skip_name(msg, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(msg[i:i + 4]))
        i += rdlen
    return out


class Resolver:
    def __init__(self, port, timeout=0.2):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(timeout)
        self.qid = random.randrange(65536)

    def a(self, name):
        self.qid = (self.qid + 1) & 0xFFFF
        self.sock.send(encode_query(name, 1, self.qid))
        deadline = time.monotonic() + self.sock.gettimeout()
        while time.monotonic() < deadline:
            try:
                got = answer_addresses(self.sock.recv(4096), self.qid)
            except (socket.timeout, ConnectionRefusedError):
                return None
            if got is not None:
                return got
        return None


def cmd_query(a):
    got = Resolver(a.port, timeout=1.0).a(a.name)
    if got:
        print("\n".join(got))
        return 0
    return 1


# --------------------------------------------------------------------------- scenario data

def cmd_example_zone(a):
    """The upstream zone of the cache scenario: NAMES A records with a long TTL."""
    with open(a.zone, "w") as z:
        z.write(f"$ORIGIN {a.origin}.\n$TTL 3600\n")
        z.write(f"@\t3600\tIN\tSOA\tns.{a.origin}. hostmaster.{a.origin}. 1 7200 1800 86400 3600\n")
        z.write(f"@\t3600\tIN\tNS\tns.{a.origin}.\nns\t3600\tIN\tA\t198.18.0.1\n")
        for i in range(a.names):
            z.write(f"host-{i:05d}\t3600\tIN\tA\t198.18.{1 + i // 250}.{1 + i % 250}\n")
    names = [f"host-{i:05d}.{a.origin} A" for i in range(a.names)]
    random.Random(1).shuffle(names)
    with open(a.queries, "w") as q:
        q.write("\n".join(names) + "\n")


CHURN_NS = "churn"


def churn_ip(gen, i):
    # 10.100.0.0/16 lies in the synthetic service CIDR 10.96.0.0/12, away from the
    # ClusterIPs clusterdns-synth allocates from 10.96.1.0 upwards.
    return f"10.100.{gen % 256}.{i + 1}"


def churn_yaml(gen, services):
    out = ["apiVersion: v1", "items:",
           "- apiVersion: v1", "  kind: Namespace",
           f"  metadata: {{labels: {{kubernetes.io/metadata.name: {CHURN_NS}}}, name: {CHURN_NS}}}",
           "  spec: {finalizers: [kubernetes]}", "  status: {phase: Active}"]
    for i in range(services):
        name, ip = f"churn-{i:03d}", churn_ip(gen, i)
        out += ["- apiVersion: v1", "  kind: Service",
                f"  metadata: {{labels: {{app: {name}}}, name: {name}, namespace: {CHURN_NS}}}",
                f"  spec: {{clusterIP: {ip}, clusterIPs: [{ip}], internalTrafficPolicy: Cluster, "
                "ipFamilies: [IPv4], ipFamilyPolicy: SingleStack, ports: [{name: http, port: 80, "
                f"protocol: TCP, targetPort: 80}}], selector: {{app: {name}}}, "
                "sessionAffinity: None, type: ClusterIP}",
                "  status: {loadBalancer: {}}"]
    out += ["kind: List", "metadata:", '  resourceVersion: ""', ""]
    return "\n".join(out)


def write_churn(directory, gen, services):
    # A hidden temporary name (the folder source ignores dot files), then an atomic rename.
    tmp = os.path.join(directory, ".churn.yaml.tmp")
    with open(tmp, "w") as f:
        f.write(churn_yaml(gen, services))
    os.replace(tmp, os.path.join(directory, "churn.yaml"))


def cmd_churn_file(a):
    write_churn(a.dir, a.gen, a.services)


def cmd_churn(a):
    """Every PERIOD s, give all SERVICES churn services new ClusterIPs (SERVICES/PERIOD changes
    a second); between writes ask for churn-000 every POLL s. A write's time to answer is the
    time from its rename until the server first answers with that generation or a later one."""
    res = Resolver(a.port, timeout=0.05)
    probe = f"churn-000.{CHURN_NS}.svc.cluster.local"
    gen = a.first_gen
    written = {}
    answered = {}
    write_churn(a.dir, gen, a.services)
    start = time.monotonic()
    written[gen] = start
    end = start + a.seconds
    next_write = start + a.period
    probes = failed = 0
    newest_seen = gen - 1
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_write:
            gen += 1
            write_churn(a.dir, gen, a.services)
            written[gen] = time.monotonic()
            next_write += a.period
            if next_write < written[gen]:  # fell behind: do not burst
                next_write = written[gen] + a.period
        got = res.a(probe)
        probes += 1
        t = time.monotonic()
        if not got:
            failed += 1
        else:
            third = int(got[0].split(".")[2])
            # The newest written generation with that third octet.
            g = gen - ((gen - third) % 256)
            if g > newest_seen:
                for k in range(newest_seen + 1, g + 1):
                    if k in written and k not in answered:
                        answered[k] = t - written[k]
                newest_seen = g
        time.sleep(max(0.0, min(a.poll, next_write - time.monotonic())))
    lat = sorted(v * 1000 for v in answered.values())
    writes = gen - a.first_gen + 1
    rec = {"scenario": "churn", "server": a.server, "variant": "churn", "run": a.run,
           "status": "ok", "writes": writes,
           "changes_per_s": round(writes * a.services / a.seconds, 1),
           "answered_changes": len(lat), "unanswered_at_end": writes - len(lat),
           "probes": probes, "probes_failed": failed}
    if lat:
        rec.update({"tta_p50_ms": round(percentile(lat, 50), 1),
                    "tta_p99_ms": round(percentile(lat, 99), 1),
                    "tta_max_ms": round(lat[-1], 1),
                    "tta_mean_ms": round(statistics.fmean(lat), 1)})
    else:
        rec["status"] = "failed"
        rec["reason"] = "no change was ever answered"
    append(a.record, rec)
    print(f"  churn writer run {a.run}: {writes} writes ({rec['changes_per_s']} changes/s), "
          f"time to answer p50 {rec.get('tta_p50_ms')} ms, p99 {rec.get('tta_p99_ms')} ms, "
          f"max {rec.get('tta_max_ms')} ms; {failed}/{probes} probes unanswered", file=sys.stderr)
    print(gen)


# --------------------------------------------------------------------------- report

METRICS = ["cpu0_other_share", "cpu0_steal_share", "cpu1_steal_share", "qps", "server_cpu_share", "qps_per_core",
           "cpu_us_per_query", "lost_pct", "p50_ms", "p99_ms", "p999_ms",
           "p50_whole_ms", "p99_whole_ms", "p999_whole_ms", "dnsperf_cpu_share", "rss_kb", "pss_kb", "hwm_kb", "tta_p50_ms", "tta_p99_ms",
           "tta_max_ms", "tta_mean_ms", "changes_per_s", "unanswered_at_end", "avg_response_bytes"]

ORDER = ["authoritative", "cache", "nodelocal", "latency", "churn", "memory"]
# Scenarios measured only at a fixed offered rate, by CPU per answered query.
FIXED_SCENARIOS = ("authoritative", "cache", "nodelocal")
# The server the peers of a scenario are compared with (ratio column).
SUBJECT = {"nodelocal": "clusterdns-nodelocal"}


def median_of(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals)


def fmt_num(v, digits=0, suffix=""):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def cmd_report(a):
    records = []
    if os.path.exists(a.records):
        with open(a.records) as f:
            records = [json.loads(line) for line in f if line.strip()]
    meta = json.loads(a.meta) if a.meta else {}
    problems = []

    groups = {}
    for r in records:
        key = (r["scenario"], str(r.get("variant") or ""), r["server"])
        groups.setdefault(key, []).append(r)

    rows = []
    for (scenario, variant, server), recs in groups.items():
        ok = [r for r in recs if r["status"] == "ok"]
        row = {"scenario": scenario, "variant": variant or None, "server": server}
        bad = [r for r in recs if r["status"] != "ok"]
        if not ok:
            row["status"] = bad[0]["status"] if bad else "failed"
            row["reason"] = bad[0].get("reason") if bad else None
        else:
            row["status"] = "ok" if not bad else "partly failed"
            if bad:
                row["reason"] = bad[0].get("reason")
            row["runs"] = len(ok)
            for m in METRICS:
                v = median_of([r.get(m) for r in ok])
                if v is not None:
                    row[m] = v
            if ok[0].get("offered_qps"):
                row["offered_qps"] = ok[0]["offered_qps"]
            # rcode shares of the median-QPS run, to compare answers between servers
            codes = ok[len(ok) // 2].get("rcodes")
            if codes:
                total = sum(codes.values()) or 1
                row["rcode_pct"] = {k: round(100 * v / total, 2) for k, v in sorted(codes.items())}
            row["per_run"] = [{k: r.get(k) for k in ("run", "qps", "qps_per_core", "cpu_us_per_query", "server_cpu_share",
                                                      "lost_pct", "p50_ms", "p99_ms", "p999_ms",
                                                      "p99_whole_ms", "tta_p50_ms", "tta_p99_ms") if k in r}
                              for r in ok]
        rows.append(row)

    def sort_key(row):
        s = ORDER.index(row["scenario"]) if row["scenario"] in ORDER else 99
        variant = row["variant"] or ""
        # Saturation first, then the fixed rates in increasing order, then named variants.
        vkey = ((0, 0) if not variant else (1, int(variant)) if variant.isdigit()
                else (2, {"steady": "0"}.get(variant, variant)))
        servers = ["clusterdns", "clusterdns-nodelocal", "clusterdns-zone", "clusterdns-baseline",
                   "nsd", "knot", "unbound"]
        return (s, vkey, servers.index(row["server"]) if row["server"] in servers else 9, row["server"])

    rows.sort(key=sort_key)

    # clusterdns ÷ peer, on the scenario's headline metric. At a fixed offered rate
    # (authoritative and cache rows whose variant is the rate) it is CPU per answered
    # query, given as peer ÷ clusterdns so that above 1 still means clusterdns does more
    # with a core.
    headline = {"authoritative": "qps_per_core", "cache": "qps_per_core", "latency": "p99_ms",
                "memory": "rss_kb"}
    by_key = {(r["scenario"], r["variant"], r["server"]): r for r in rows}
    for r in rows:
        m = headline.get(r["scenario"])
        fixed = r["scenario"] in FIXED_SCENARIOS and (r["variant"] or "").isdigit()
        if fixed:
            m = "cpu_us_per_query"
        subject = SUBJECT.get(r["scenario"], "clusterdns")
        if not m or r["server"] == subject or r["status"] != "ok":
            continue
        cd = by_key.get((r["scenario"], r["variant"], subject))
        if cd and cd.get(m) and r.get(m):
            r["clusterdns_ratio"] = round(r[m] / cd[m] if fixed else cd[m] / r[m], 3)
            r["ratio_metric"] = m
    churn_summary = None
    steady = by_key.get(("churn", "steady", "clusterdns"))
    churned = by_key.get(("churn", "churn", "clusterdns"))
    writer = by_key.get(("churn", "churn", "writer"))
    if steady and churned and steady.get("qps") and churned.get("qps"):
        churn_summary = {
            "steady_qps": steady["qps"], "churn_qps": churned["qps"],
            "qps_drop_pct": round(100 * (1 - churned["qps"] / steady["qps"]), 1),
            "steady_qps_per_core": steady.get("qps_per_core"),
            "churn_qps_per_core": churned.get("qps_per_core"),
        }
        if writer:
            churn_summary.update({k: writer.get(k) for k in
                                  ("changes_per_s", "tta_p50_ms", "tta_p99_ms", "tta_max_ms",
                                   "tta_mean_ms")})
        churned["note"] = f"QPS drop {churn_summary['qps_drop_pct']}%"

    # ---- table
    header = ["scenario", "server", "QPS", "server CPU", "QPS/server core", "CPU µs/query", "lost %",
              "p50 ms", "p99 ms", "p99.9 ms", "RSS MB", "clusterdns ÷ peer"]
    lines = []
    for r in rows:
        if r["server"] == "writer":
            continue
        scen = r["scenario"]
        if r["variant"]:
            v = r["variant"]
            scen += f" @{int(v):,} QPS" if v.isdigit() else f" ({v})"
            if v.isdigit() and r["scenario"] != "latency":
                scen += " offered"
        if r["status"] not in ("ok", "partly failed"):
            lines.append([scen, r["server"], f"{r['status']}: {r.get('reason') or ''}"])
            continue
        ratio = ""
        if "clusterdns_ratio" in r:
            names = {'qps_per_core': 'QPS/core', 'p99_ms': 'p99', 'rss_kb': 'RSS',
                     'cpu_us_per_query': 'CPU/query'}
            ratio = f"{r['clusterdns_ratio']:.2f}× ({names[r['ratio_metric']]})"
        elif r.get("note"):
            ratio = r["note"]
        rss = r.get("rss_kb")
        lines.append([
            scen, r["server"], fmt_num(r.get("qps")),
            fmt_num(r.get("server_cpu_share"), 2), fmt_num(r.get("qps_per_core")),
            fmt_num(r.get("cpu_us_per_query"), 2),
            fmt_num(r.get("lost_pct"), 2), fmt_num(r.get("p50_ms"), 3), fmt_num(r.get("p99_ms"), 3),
            fmt_num(r.get("p999_ms"), 3), fmt_num(rss / 1024 if rss else None, 1), ratio])
    widths = [max(len(str(x[i])) for x in [header] + [l for l in lines if len(l) == len(header)])
              for i in range(len(header))]
    out = []
    out.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for l in lines:
        if len(l) < len(header):
            l = l + [""] * (len(header) - len(l))
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(l, widths)) + " |")
    table = "\n".join(out)
    notes = []
    if churn_summary and churn_summary.get("tta_p50_ms") is not None:
        notes.append(f"churn: {churn_summary.get('changes_per_s')} changes/s; QPS "
                     f"{churn_summary['steady_qps']:,.0f} steady → {churn_summary['churn_qps']:,.0f} "
                     f"under churn ({churn_summary['qps_drop_pct']}% drop); time until a change is "
                     f"answered p50 {churn_summary['tta_p50_ms']} ms, p99 {churn_summary['tta_p99_ms']} ms, "
                     f"max {churn_summary['tta_max_ms']} ms")
    lat = [r for r in rows if r["scenario"] == "latency" and r.get("p99_whole_ms") is not None]
    if lat:
        notes.append("latency percentiles leave out each run's first second (dnsperf's start-up "
                     "burst); p99 over the whole run: " + ", ".join(
                         f"{r['server']} @{r['variant']} {r['p99_whole_ms']:.3f} ms" for r in lat))
    fixed_rows = [r for r in rows if r["scenario"] in FIXED_SCENARIOS
                  and (r["variant"] or "").isdigit() and r.get("per_run")]
    if fixed_rows:
        notes.append("CPU µs per answered query at a fixed offered rate, each run (the spread): " + "; ".join(
            f"{r['scenario']}/{r['server']} " + " ".join(
                fmt_num(p.get("cpu_us_per_query"), 2) for p in r["per_run"])
            for r in fixed_rows))
    mem = [r for r in rows if r["scenario"] == "memory" and r["status"] == "ok"]
    if mem:
        notes.append("memory PSS (shared pages split between processes): " + ", ".join(
            f"{r['server']}{' (' + r['variant'] + ')' if r['variant'] else ''} {r['pss_kb'] / 1024:.1f} MB"
            for r in mem if r.get("pss_kb")))
    # rcode shares must match between servers answering the same queries
    for scen in ("authoritative",):
        cd = by_key.get((scen, None, "clusterdns"))
        for r in rows:
            if r["scenario"] != scen or r["server"] == "clusterdns" or not cd:
                continue
            a_, b_ = cd.get("rcode_pct") or {}, r.get("rcode_pct") or {}
            diff = max([abs(a_.get(k, 0) - b_.get(k, 0)) for k in set(a_) | set(b_)] or [0])
            if diff > 1.0:
                notes.append(f"WARNING {scen}: response codes differ: clusterdns {a_} vs {r['server']} {b_}")
    dnsperf_bound = [r for r in rows if (r.get("dnsperf_cpu_share") or 0) > 0.9
                     and r["scenario"] in ("authoritative", "cache", "churn")]
    if dnsperf_bound:
        notes.append("dnsperf used >90% of its core in: " + ", ".join(
            sorted({f"{r['scenario']}/{r['server']}" for r in dnsperf_bound}))
            + " (raw QPS there is the load generator's limit; compare QPS/server core)")

    noisy = sorted({f"{r['scenario']}/{r['server']}" for r in rows
                    if (r.get("cpu0_other_share") or 0) > 0.1 or (r.get("cpu0_steal_share") or 0) > 0.05})
    if noisy:
        notes.append("WARNING: core 0 was busy with more than the server (other processes, "
                     "unattributed softirq or steal > 10%/5%) in: " + ", ".join(noisy))

    print()
    print(f"clusterdns load benchmark ({meta.get('mode', '?')}, {meta.get('date', '')}): "
          f"median of {meta.get('runs', '?')} run(s) of {meta.get('seconds', '?')} s")
    print(table)
    for n in notes:
        print("  " + n)

    # ---- checks
    if a.check:
        cd_rows = [r for r in rows if r["server"] == "clusterdns"]
        if not any(r.get("qps") for r in cd_rows):
            problems.append("clusterdns answered nothing")
        for r in records:
            if r["server"] == "clusterdns" and r["status"] == "ok" and "completed" in r:
                if r["completed"] == 0 or not r.get("rcodes", {}).get("NOERROR"):
                    problems.append(f"clusterdns answered no query with NOERROR in "
                                    f"{r['scenario']} run {r['run']}")
                if r.get("lost_pct", 0) > 1.0:
                    where = r["scenario"] + (f" ({r['variant']})" if r.get("variant") else "")
                    problems.append(f"{where} clusterdns run {r['run']}: "
                                    f"{r['lost_pct']}% queries lost (> 1%)")
    failed = [r for r in rows if r["status"] in ("failed", "partly failed")]
    for r in failed:
        problems.append(f"{r['scenario']} {r['server']}: {r.get('reason')}")

    result = {"meta": meta, "rows": rows, "churn": churn_summary, "notes": notes,
              "table": table, "problems": problems}
    tmp = a.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, a.json)
    print(f"\nwrote {a.json}")
    if problems:
        print("\nPROBLEMS:", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("ports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_ports)

    def labelled(s):
        s.add_argument("--record", required=True)
        s.add_argument("--scenario", required=True)
        s.add_argument("--server", required=True)
        s.add_argument("--variant", default=None)
        s.add_argument("--run", type=int, default=1)

    s = sub.add_parser("dnsperf")
    labelled(s)
    s.add_argument("--pid", type=int, help="server PID whose CPU time (with descendants) is measured")
    s.add_argument("--rate", type=int, help="offered QPS (recorded only; pass -Q to dnsperf)")
    s.add_argument("--latency", action="store_true", help="add -v and compute percentiles")
    s.add_argument("--warmup", type=float, default=1.0,
                   help="seconds of answers (at --rate) left out of the headline percentiles [1]")
    s.add_argument("--cpu", default="1", help="core of dnsperf (taskset -c)")
    s.add_argument("--tmp", default=None)
    s.add_argument("--keep-output", default=None)
    s.add_argument("args", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_dnsperf)

    s = sub.add_parser("mem")
    labelled(s)
    s.add_argument("--pid", type=int, required=True)
    s.set_defaults(fn=cmd_mem)

    s = sub.add_parser("note")
    labelled(s)
    s.add_argument("--status", default="skipped")
    s.add_argument("--reason", required=True)
    s.set_defaults(fn=cmd_note)

    s = sub.add_parser("tree")
    s.add_argument("pid", type=int)
    s.set_defaults(fn=cmd_tree)

    s = sub.add_parser("query")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("name")
    s.set_defaults(fn=cmd_query)

    s = sub.add_parser("example-zone")
    s.add_argument("--origin", default="example.org")
    s.add_argument("--names", type=int, default=10000)
    s.add_argument("--zone", required=True)
    s.add_argument("--queries", required=True)
    s.set_defaults(fn=cmd_example_zone)

    s = sub.add_parser("churn-file")
    s.add_argument("--dir", required=True)
    s.add_argument("--gen", type=int, default=0)
    s.add_argument("--services", type=int, default=50)
    s.set_defaults(fn=cmd_churn_file)

    s = sub.add_parser("churn")
    s.add_argument("--record", required=True)
    s.add_argument("--server", default="writer")
    s.add_argument("--run", type=int, default=1)
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--period", type=float, default=0.1)
    s.add_argument("--poll", type=float, default=0.002)
    s.add_argument("--services", type=int, default=50)
    s.add_argument("--first-gen", type=int, default=1)
    s.set_defaults(fn=cmd_churn)

    s = sub.add_parser("report")
    s.add_argument("--records", required=True)
    s.add_argument("--json", required=True)
    s.add_argument("--meta", default=None, help="JSON object of run metadata")
    s.add_argument("--check", action="store_true",
                   help="fail if clusterdns answered nothing or lost more than 1%% of queries")
    s.set_defaults(fn=cmd_report)

    a = p.parse_args()
    sys.exit(a.fn(a) or 0)


if __name__ == "__main__":
    main()
