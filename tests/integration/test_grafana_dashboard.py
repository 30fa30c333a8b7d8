"""The Grafana dashboard (issue 6 item 6), docs/grafana/ringkv.json, against
what ringkvd really exposes: the JSON's structure (ids, grid positions,
datasources, targets), every PromQL expression through `promtool check
rules`, and every metric an expression names must be a series a live node
serves at GET /metrics, of a type that fits how it is used (counters and
histogram series only inside rate/irate/increase, gauges never).

Grafana's own variables are replaced before promtool sees an expression:
$__rate_interval and $__interval by 1m, $__range by 1h, $instance by .*.
"""
import http.client
import json
import os
import re
import subprocess

import pytest
import redis

from cluster_util import cluster_factory_gen
from conftest import REPO, TARGET

pytestmark = [
    pytest.mark.ringkv_only,
    pytest.mark.skipif(TARGET != "ringkv", reason="ringkv /metrics"),
]

DASHBOARD = os.path.join(REPO, "docs", "grafana", "ringkv.json")
PROMTOOL = os.path.join(REPO, "build-tools", "promtool")
DS_UID = "${DS_PROMETHEUS}"
PANEL_TYPES = ("timeseries", "stat")
RATE_FUNCS = ("rate", "irate", "increase")
GRAFANA_VARS = [("$__rate_interval", "1m"), ("$__interval", "1m"),
                ("$__range", "1h"), ("$instance", ".*")]
# labels Prometheus attaches at scrape time, not in /metrics
TARGET_LABELS = ("instance", "job")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture
def cluster_factory(server_factory):
    yield from cluster_factory_gen(server_factory)


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def targets(dash):
    """(panel, target) for every query of every panel."""
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield p, t


# --- a PromQL reader, just enough for the dashboard's expressions ----------

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<range>\[[^\]]*\])
  | (?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^(){},=<>])
""", re.X)
AGGREGATIONS = ("sum", "min", "max", "avg", "count", "group", "stddev",
                "stdvar", "topk", "bottomk", "quantile", "count_values")
GROUPING = ("by", "without", "on", "ignoring", "group_left", "group_right")
KEYWORDS = ("bool", "and", "or", "unless", "offset")


def tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError("cannot read %r at %d" % (expr[pos:], pos))
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def label_list(toks, i):
    """Reads `( a, b )` at toks[i]; returns (labels, index after it)."""
    assert toks[i][1] == "(", toks[i:]
    labels, i = [], i + 1
    while toks[i][1] != ")":
        if toks[i][0] == "ident":
            labels.append(toks[i][1])
        i += 1
    return labels, i + 1


def parse(expr):
    """The series selectors of a PromQL expression and its grouping labels.

    Returns (selectors, grouping): each selector is a dict with `name`,
    `matchers` [(label, op, value)], `range` (the `[...]` text or None)
    and `calls` (the enclosing function and aggregation names, innermost
    last); grouping lists the labels of every by/without/on/ignoring."""
    toks = tokens(expr)
    sels, grouping, stack = [], [], []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text in GROUPING:
            if nxt == "(":
                labels, i = label_list(toks, i + 1)
                grouping += labels
            else:
                i += 1
        elif kind == "ident" and text in AGGREGATIONS:
            i += 1
            if toks[i][1] in ("by", "without"):
                labels, i = label_list(toks, i + 1)
                grouping += labels
            assert toks[i][1] == "(", "aggregation without (: %r" % expr
            stack.append(text)
            i += 1
        elif kind == "ident" and nxt == "(":
            stack.append(text)
            i += 2
        elif kind == "ident" and text in KEYWORDS:
            i += 1
        elif text == "(":
            stack.append("(")
            i += 1
        elif text == ")":
            stack.pop()
            i += 1
        elif text == "{":
            raise ValueError("selector without a metric name in %r" % expr)
        elif kind == "ident":
            sel = {"name": text, "matchers": [], "range": None,
                   "calls": [c for c in stack if c != "("]}
            i += 1
            if i < len(toks) and toks[i][1] == "{":
                i += 1
                while toks[i][1] != "}":
                    if toks[i][1] == ",":
                        i += 1
                        continue
                    (lk, label), (_, op), (vk, value) = toks[i:i + 3]
                    assert lk == "ident" and vk == "str", toks[i:i + 3]
                    sel["matchers"].append((label, op, value[1:-1]))
                    i += 3
                i += 1
            if i < len(toks) and toks[i][0] == "range":
                sel["range"] = toks[i][1]
                i += 1
            sels.append(sel)
        else:
            i += 1
    assert not stack, "unbalanced parentheses in %r" % expr
    return sels, grouping


# --- /metrics ---------------------------------------------------------------

def scrape(port):
    """GET /metrics -> ({family: type}, {sample name: [labels dict]})."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        assert r.status == 200
        text = r.read().decode()
    finally:
        c.close()
    types, series = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            types[name] = typ
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? ", line)
            assert m, "bad sample line %r" % line
            labels = dict(re.findall(r'([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"',
                                     m.group(2) or ""))
            series.setdefault(m.group(1), []).append(labels)
    return types, series


def sample_type(types, name):
    """The type of the family a sample name belongs to: a histogram's
    _bucket/_sum/_count series are "histogram"; None when unknown."""
    if name in types:
        return types[name]
    for suffix in HIST_SUFFIXES:
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return "histogram"
    return None


# --- the tests --------------------------------------------------------------

def test_dashboard_structure():
    dash = load_dashboard()
    assert dash["title"] and dash["uid"]
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["id"] is None  # importable: Grafana assigns the id
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    inst = variables["instance"]
    assert inst["type"] == "query"
    assert inst["datasource"]["uid"] == DS_UID
    assert re.fullmatch(r"label_values\(ringkv_\w+, *instance\)",
                        inst["definition"]), inst["definition"]
    assert inst["query"]["query"] == inst["definition"]
    ids = [p.get("id") for p in dash["panels"]]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), "duplicate panel ids: %r" % ids
    for p in dash["panels"]:
        what = "panel %r (%s)" % (p.get("title"), p.get("id"))
        assert p["type"] in PANEL_TYPES, what
        assert p.get("title"), what
        g = p.get("gridPos", {})
        assert all(isinstance(g.get(k), int) for k in "hwxy"), what
        assert g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, what
        assert p.get("datasource") == {"type": "prometheus",
                                       "uid": DS_UID}, what
        assert p.get("targets"), what + ": no targets"
        refs = [t.get("refId") for t in p["targets"]]
        assert len(refs) == len(set(refs)) and all(refs), what
        for t in p["targets"]:
            assert isinstance(t.get("expr"), str) and t["expr"].strip(), what
            assert t.get("datasource", p["datasource"]) == p["datasource"]
            # every selector honours the instance variable
            for sel in parse(t["expr"])[0]:
                assert ("instance", "=~", "$instance") in sel["matchers"], (
                    what, t["expr"])
    # panels do not overlap
    cells = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, "panel %r overlaps another" % p["title"]
        cells |= mine


def promql(expr):
    """expr with Grafana's variables replaced (for promtool)."""
    for var, value in GRAFANA_VARS:
        expr = expr.replace(var, value)
    assert "$" not in expr, "unknown Grafana variable in %r" % expr
    return expr


def test_dashboard_exprs_pass_promtool(tmp_path):
    assert os.access(PROMTOOL, os.X_OK), (
        "promtool missing: scripts/deps.sh test extracts it into build-tools/")
    rules = []
    for p, t in targets(load_dashboard()):
        rules.append({"record": "ringkv_dashboard:panel%d_%s" % (
            p["id"], t["refId"]), "expr": promql(t["expr"])})
    # JSON is YAML: promtool reads it as a rules file
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "ringkv_dashboard",
                                            "rules": rules}]}, indent=1))
    p = subprocess.run([PROMTOOL, "check", "rules", str(path)],
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0, out
    assert "SUCCESS: %d rules found" % len(rules) in out, out


def test_dashboard_metrics_exist_and_fit_their_type(cluster_factory):
    dash = load_dashboard()
    cl = cluster_factory(3)
    a = cl.nodes[0]
    c = cl.c(a)
    for i in range(40):
        c.set("g%d" % i, "v")
        c.get("g%d" % i)
    c.mget(["g1", "g2", "nokey"])
    c.delete("g0")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        c.execute_command("INCR", "g1")  # an error reply
    types, series = scrape(a.server.http_port)

    problems, names = [], set()
    plain = set()
    var = [v for v in dash["templating"]["list"] if v["name"] == "instance"]
    var_metric = re.match(r"label_values\((\w+),", var[0]["definition"])
    if var_metric.group(1) not in series:
        problems.append("variable instance: no series %s in /metrics" %
                        var_metric.group(1))
    names.add(var_metric.group(1))
    for p, t in targets(dash):
        expr = t["expr"]
        where = "%r: %s" % (p["title"], expr)
        plain |= set(re.findall(r"\bringkv_\w+", expr))
        sels, grouping = parse(expr)
        for sel in sels:
            name = sel["name"]
            names.add(name)
            if name not in series:
                problems.append("%s: no series %s in /metrics" % (where, name))
                continue
            typ = sample_type(types, name)
            inner = sel["calls"][-1] if sel["calls"] else None
            if typ in ("counter", "histogram"):
                if inner not in RATE_FUNCS or not sel["range"]:
                    problems.append("%s: %s %s not inside rate/increase" % (
                        where, typ, name))
            elif typ == "gauge":
                if inner in RATE_FUNCS:
                    problems.append("%s: gauge %s inside %s" % (where, name,
                                                                inner))
            else:
                problems.append("%s: %s has type %r" % (where, name, typ))
            if name.endswith("_bucket") and (
                    "histogram_quantile" not in sel["calls"] or
                    "le" not in grouping):
                problems.append("%s: %s outside histogram_quantile by le" % (
                    where, name))
            for label, op, value in sel["matchers"]:
                if label in TARGET_LABELS:
                    continue
                values = {s[label] for s in series[name] if label in s}
                if not values:
                    problems.append("%s: %s has no label %s" % (where, name,
                                                                label))
                elif op == "=" and value not in values:
                    problems.append("%s: %s{%s} is never %r (only %r)" % (
                        where, name, label, value, sorted(values)))
                elif op == "=~" and not any(re.fullmatch(value, x)
                                            for x in values):
                    problems.append("%s: %s{%s} never matches %r" % (
                        where, name, label, value))
        have = {k for sel in sels if sel["name"] in series
                for s in series[sel["name"]] for k in s}
        for label in grouping:
            if label not in TARGET_LABELS and label not in have:
                problems.append("%s: groups by %s, which no series of it "
                                "has" % (where, label))
    # the reader saw every metric name a plain search finds
    assert plain <= names, "missed by the reader: %r" % (plain - names)
    assert not problems, "\n".join(problems)
    print("%d metric names checked against /metrics" % len(names))
