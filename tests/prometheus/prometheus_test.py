#!/usr/bin/env python3
"""Checks tools/dist/grafana/cairn.json and tools/dist/prometheus/cairn-rules.yml
against a real Prometheus scraping a real localnet.

1. `promtool check rules` on the rules file.
2. `cairn localnet up` (3 nodes, 1 shard, short epochs), one upload and one
   download so the API series carry data.
3. Debian's `prometheus` on a free loopback port scrapes every node's /metrics
   each second and loads the rules file.
4. Once every target is up and an epoch has finished on every node, each
   expression of every dashboard panel (template variables substituted) and
   every alert's expression without its threshold comparison must return a
   non-empty result from /api/v1/query; every rule must evaluate healthy.

Usage: prometheus_test.py CAIRN_BINARY SOURCE_DIR
Exit 0 pass, 1 fail, 77 skipped (prometheus or promtool missing).
Every process started here is stopped by pid on every path.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SKIP = 77
STEP_TIMEOUT = 120  # seconds for any one wait


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def wait_for(what, check, timeout=STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            ok, last = check()
            if ok:
                return
        except (OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.5)
    fail(f"timed out after {timeout} s waiting for {what} (last: {last})")


def dashboard_exprs(dashboard):
    """Every panel target's expr, rows' nested panels included."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def substitute(expr, variables):
    """Grafana's template variables as a query of every value would see them."""
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    if "$" in expr:
        fail(f"dashboard expression has a variable the test does not know: {expr}")
    return expr


# `<series> <op> <number>` at the end of an alert expression.
THRESHOLD = re.compile(r"^(?P<series>.*?)\s*(?:>=|<=|==|!=|>|<)\s*(?:bool\s+)?[-+0-9.eE]+\s*$", re.S)


def alert_series(expr):
    m = THRESHOLD.match(expr.strip())
    if not m:
        fail(f"alert expression is not '<series> <comparison> <threshold>': {expr}")
    return m.group("series")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    cairn, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        print("SKIP: Debian's prometheus (prometheus, promtool) is not installed; "
              "tools/run-tests installs it (CAIRN_APT_PACKAGES)", flush=True)
        return SKIP
    rules_file = os.path.join(src, "tools/dist/prometheus/cairn-rules.yml")
    dashboard_file = os.path.join(src, "tools/dist/grafana/cairn.json")

    r = subprocess.run([promtool, "check", "rules", rules_file], capture_output=True, text=True, timeout=60)
    print(r.stdout.strip())
    if r.returncode != 0:
        fail(f"promtool check rules: {r.stdout}{r.stderr}")

    with open(dashboard_file) as f:
        dashboard = json.load(f)
    panel_exprs = dashboard_exprs(dashboard)
    if not panel_exprs:
        fail("the dashboard has no panel expressions")

    work = tempfile.mkdtemp(prefix="cairn-prometheus-test-")
    net = os.path.join(work, "localnet")
    prom_proc = None
    node_pids = []
    try:
        up = subprocess.run(
            [cairn, "localnet", "up", "--dir", net, "--nodes", "3", "--shards", "1",
             "--block-time-ms", "250", "--epoch-blocks", "8", "--deadline-blocks", "4",
             "--timeout", str(STEP_TIMEOUT), "--json"],
            capture_output=True, text=True, timeout=STEP_TIMEOUT + 30)
        if up.returncode != 0:
            fail(f"cairn localnet up exited {up.returncode}: {up.stderr[-2000:]}")
        state = json.loads(up.stdout)
        nodes = state["nodes"]
        node_pids = [n["pid"] for n in nodes] + [state["chain"]["pid"]]
        targets = [urllib.parse.urlparse(n["api"]).netloc for n in nodes]
        print("localnet up:", ", ".join(targets), flush=True)

        # One upload and its download so the API's byte and latency series move.
        payload = os.path.join(work, "payload.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(300_000))
        put = subprocess.run([cairn, "put", payload, "--node", nodes[0]["api"], "--json"],
                             capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if put.returncode != 0:
            fail(f"cairn put exited {put.returncode}: {put.stderr}")
        file_id = json.loads(put.stdout.splitlines()[0])["id"]
        got = subprocess.run([cairn, "get", file_id, "-o", os.path.join(work, "back.bin"), "--node", nodes[1]["api"]],
                             capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if got.returncode != 0:
            fail(f"cairn get exited {got.returncode}: {got.stderr}")

        prom_port = free_port()
        prom_config = os.path.join(work, "prometheus.yml")
        with open(prom_config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {json.dumps(rules_file)}\n"
                    "scrape_configs:\n  - job_name: cairn\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        prom_log = open(os.path.join(work, "prometheus.log"), "w")
        prom_proc = subprocess.Popen(
            [prometheus, f"--config.file={prom_config}", f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=prom_log, stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def query(expr):
            return http_json(f"{api}/query?" + urllib.parse.urlencode({"query": expr}))

        def targets_up():
            active = http_json(f"{api}/targets")["data"]["activeTargets"]
            health = {t["labels"]["instance"]: t["health"] for t in active}
            return len(health) == len(targets) and all(h == "up" for h in health.values()), health

        wait_for("every node's /metrics to be scraped", targets_up)

        def epoch_done():
            res = query("cairn_challenge_responses_anchored_total > 0")["data"]["result"]
            return len(res) == len(targets), [x["metric"]["instance"] for x in res]

        wait_for("an anchored challenge response on every node", epoch_done)
        # A few more scrapes so rate() and increase() have two samples after it.
        time.sleep(5)

        # The alerts as Prometheus itself parsed them from the rules file.
        loaded = [r for g in http_json(f"{api}/rules")["data"]["groups"] for r in g["rules"]]
        alerts = [(r["name"], r["query"]) for r in loaded if r.get("type") == "alerting"]
        if not alerts:
            fail(f"prometheus loaded no alerting rules from {rules_file}")

        variables = {"__rate_interval": "15s", "instance": ".+", "job": ".+", "DS_PROMETHEUS": "prometheus"}
        failures = []
        checks = [(f"panel '{t}'", substitute(e, variables)) for t, e in panel_exprs]
        checks += [(f"alert {a}", alert_series(e)) for a, e in alerts]
        for what, expr in checks:
            res = query(expr)
            if res.get("status") != "success" or not res["data"]["result"]:
                failures.append(f"{what}: `{expr}` returned {json.dumps(res)[:300]}")
        print(f"checked {len(checks)} expressions ({len(panel_exprs)} panel, {len(alerts)} alert)", flush=True)

        # Evaluated since (evaluation_interval 1 s) without an error.
        loaded = [r for g in http_json(f"{api}/rules")["data"]["groups"] for r in g["rules"]]
        for rule in loaded:
            if rule.get("health") != "ok":
                failures.append(f"rule {rule['name']} health {rule.get('health')}: {rule.get('lastError')}")

        if failures:
            fail("\n  " + "\n  ".join(failures))
        print("PASS", flush=True)
        return 0
    finally:
        if prom_proc is not None:
            prom_proc.terminate()
            try:
                prom_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                prom_proc.kill()
                prom_proc.wait()
        down_ok = True
        if os.path.exists(net):
            try:
                down_ok = subprocess.run([cairn, "localnet", "down", "--dir", net], capture_output=True,
                                         timeout=60).returncode == 0
            except subprocess.TimeoutExpired:
                down_ok = False
        if not down_ok:  # `down` stops them by pid; if it could not, do it here
            for pid in node_pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if os.environ.get("CAIRN_KEEP_TEST_DIR"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
