"""The asynchronous API of libringkv (include/ringkv_async.h, libringkv_event,
issue 13 item 4) against real ringkvd processes, through the C driver
tests/lib/libringkv_async_itest.c (linked with the shared libraries; under
ASan in the build-san build).  Fixtures and helpers are those of
test_libringkv.py (the blocking API).

What is checked:
  1. one node: every call (get/set with PX/del/expire/incr/mset/mget,
     getall/put with the causal context, error codes and messages, bad
     arguments never run the callback), 500 concurrent calls pipelined;
  2. AUTH: the password option works; a wrong or missing one reaches the
     callback as RINGKV_EAUTH;
  3. no seed reachable: the callback gets RINGKV_EIO naming the address;
  4. destroy with calls pending (and from inside a callback): each
     callback runs once, with RINGKV_ECANCELED, no leak (ASan);
  5. 3 nodes: the topology has 3 nodes and every call works from any seed;
  6. 3 nodes, 32 concurrent call chains, a node SIGKILLed in the middle:
     0 errors reach the application at the default retry policy, and the
     library did retry.

    RINGKV_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -s -q \\
        tests/integration/test_libringkv_async.py
"""
import os
import subprocess

from conftest import BUILD, free_port
from test_libringkv import cluster_factory  # noqa: F401 (fixture)
from test_libringkv import addr, env_for, kill_during_loop  # noqa: F401
from test_libringkv import pytestmark  # noqa: F401
from test_libringkv import run as run_driver

ITEST = os.path.join(BUILD, "libringkv_async_itest")


def run(*args, password=None, timeout=120):
    return run_driver(*args, password=password, timeout=timeout, exe=ITEST)


def test_single_node_every_call(server):
    p = run("basic", addr(server.port))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok" in p.stdout.split()
    assert "nodes=1" in p.stdout
    assert "errors=2" in p.stdout  # INCR of a string, a bad context


def test_auth(server_factory):
    s = server_factory(args=["--requirepass", "s3cret"])
    p = run("basic", addr(s.port), password="s3cret")
    assert p.returncode == 0, p.stdout + p.stderr
    for pw in ("wrong", None):
        p = run("first", addr(s.port), password=pw)
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout.startswith("RINGKV_EAUTH"), p.stdout + p.stderr


def test_no_seed_reachable():
    port = free_port()
    p = run("first", addr(port), timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("RINGKV_EIO"), p.stdout + p.stderr
    assert addr(port) in p.stdout


def test_destroy_cancels_pending_calls(server):
    p = run("cancel", addr(server.port))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "cancelled=" in p.stdout


def test_three_nodes_every_call_from_any_seed(cluster_factory):  # noqa: F811
    cl = cluster_factory(3)
    for n in cl.nodes:
        p = run("basic", addr(n.port))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "nodes=3" in p.stdout, p.stdout


def test_sigkilled_node_during_concurrent_loop(cluster_factory):  # noqa: F811
    cl = cluster_factory(3)
    seeds = [addr(n.port) for n in cl.nodes]
    ops, errors, retries = kill_during_loop(
        cl, [ITEST, "loop", "8", "32"] + seeds, cl.nodes[2])
    assert ops > 1000
    assert retries >= 1  # the kill was seen and retried past


def test_examples_run(server):
    """examples/ringkv_async_example.c (and the blocking one) as documented
    in docs/clients.md."""
    for name, want in (("ringkv_async_example", "200 calls, 0 errors"),
                       ("ringkv_example", "greeting = hello")):
        p = subprocess.run([os.path.join(BUILD, name), addr(server.port)],
                           capture_output=True, text=True, timeout=60,
                           env=env_for())
        assert p.returncode == 0, p.stdout + p.stderr
        assert want in p.stdout, p.stdout


def test_docs_example_compiles_and_runs(server, tmp_path):
    """The asynchronous example of docs/clients.md, as printed there,
    built with cc against this build's libraries."""
    import shutil
    from conftest import REPO
    text = open(os.path.join(REPO, "docs", "clients.md")).read()
    part = text[text.index("### The asynchronous API on libevent"):]
    code = part[part.index("```c\n") + 5:]
    code = code[:code.index("```")]
    code = code.replace("127.0.0.1:7379", addr(server.port)) \
        .replace("127.0.0.1:7389", addr(server.port))
    src = tmp_path / "app.c"
    src.write_text(code)
    cc = shutil.which("cc") or shutil.which("gcc")
    lib = os.path.join(BUILD, "libringkv.so")
    ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    san = ["-fsanitize=address,undefined"] if "libasan" in ldd else []
    exe = str(tmp_path / "app")
    p = subprocess.run([cc, "-Wall", "-Werror"] + san +
                       ["-I", os.path.join(REPO, "include"), str(src),
                        "-o", exe, "-L", BUILD, "-Wl,-rpath," + BUILD,
                        "-lringkv_event", "-lringkv", "-levent_core"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([exe], capture_output=True, text=True, timeout=60,
                       env=env_for())
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "hello\n", p.stdout
