"""ringkvd's command line and config file (ringkv-only, except maxclients
which redis-server shares): --version, --help, usage errors, --config INI
with flags winning, --log-format json, --maxclients.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD, free_port, is_ringkv, wait_port
from rawresp import RawClient


def ringkvd(*args, timeout=15):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    t0 = time.time()
    p = subprocess.run([os.path.join(BUILD, "ringkvd")] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"), time.time() - t0)


@pytest.mark.ringkv_only
def test_version():
    rc, out, err, _ = ringkvd("--version")
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ringkvd "), out


@pytest.mark.ringkv_only
def test_help_lists_every_flag():
    rc, out, err, _ = ringkvd("--help")
    assert rc == 0
    for flag in ("--port", "--bind", "--data-dir", "--engine", "--sync",
                 "--requirepass", "--maxclients", "--loglevel",
                 "--log-format", "--config", "--enable-flushall",
                 "--version", "--help"):
        assert flag in out, flag


@pytest.mark.ringkv_only
@pytest.mark.parametrize("args", [
    ("--no-such-flag", "1"), ("--port", "0"), ("--port", "70000"),
    ("--port",), ("--engine", "rocks"), ("--sync", "sometimes"),
    ("--sync", "every:x"), ("--log-format", "xml"),
    ("--enable-flushall", "maybe"), ("--maxclients", "-1"),
    ("--config", "/nonexistent/ringkvd.ini"), ("stray",),
])
def test_usage_errors_fail_fast_with_one_line(tmp_path, args):
    rc, out, err, took = ringkvd("--data-dir", str(tmp_path / "d"),
                                 "--port", str(free_port()), *args)
    assert rc != 0
    assert took < 5
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err


@pytest.mark.ringkv_only
def test_config_file_and_flags_win(server_factory, tmp_path):
    file_port, flag_port = free_port(), free_port()
    ini = tmp_path / "ringkvd.ini"
    ini.write_text("; comment\n[ringkvd]\nport = %d\nrequirepass = ini-pw\n"
                   "maxclients = 77\nsync = always\n" % file_port)
    s = server_factory(args=["--config", str(ini)], start=False)
    s.args = ["--config", str(ini), "--port", str(flag_port)]
    s.port = flag_port
    s.start()
    with RawClient(flag_port) as c:
        assert c.call("GET", "k") == "NOAUTH Authentication required."
        assert c.call("AUTH", "ini-pw") == "OK"
        assert c.call("CONFIG", "GET", "maxclients") == [b"maxclients",
                                                         b"77"]
        assert c.call("CONFIG", "GET", "port") == [
            b"port", str(flag_port).encode()]


@pytest.mark.ringkv_only
def test_config_file_bad_key_is_an_error(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[ringkvd]\nprot = 1234\n")
    rc, out, err, took = ringkvd("--config", str(ini), "--data-dir",
                                 str(tmp_path / "d"))
    assert rc != 0 and took < 5
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "prot" in lines[0], err


@pytest.mark.ringkv_only
def test_log_format_json(server_factory):
    s = server_factory(args=["--log-format", "json", "--loglevel", "info"])
    c = s.client()
    c.set("k", "v")
    c.close()
    assert s.stop() == 0
    lines = [l for l in s.logs().splitlines() if l.strip()]
    assert lines, "no log lines"
    for l in lines:
        obj = json.loads(l)  # every line is one JSON object
        assert isinstance(obj, dict)


@pytest.mark.ringkv_only
def test_log_format_logfmt(server_factory):
    s = server_factory(args=["--log-format", "logfmt"])
    assert s.stop() == 0
    lines = [l for l in s.logs().splitlines() if l.strip()]
    assert lines
    for l in lines:
        assert "=" in l and not l.startswith("{"), l


def test_maxclients(server_factory):
    s = server_factory(args=["--maxclients", "5"])
    conns = [RawClient(s.port) for _ in range(5)]
    try:
        for c in conns:
            assert c.call("PING") == "PONG"
        extra = RawClient(s.port)
        conns.append(extra)
        extra.settimeout(5)
        assert extra.read_reply() == "ERR max number of clients reached"
        assert extra.expect_closed()
        assert conns[0].call("CONFIG", "GET", "maxclients") == [
            b"maxclients", b"5"]
        conns[1].close()
        time.sleep(0.3)
        again = RawClient(s.port)
        conns.append(again)
        assert again.call("PING") == "PONG"
    finally:
        for c in conns:
            c.close()


@pytest.mark.ringkv_only
def test_unknown_flag_is_named_with_the_nearest_known_one():
    """Issue 17 item 2: an unknown flag is reported as unknown (not as
    missing a value), with the nearest known option when one is close."""
    rc, out, err, _ = ringkvd("--bogus")
    assert rc != 0
    assert "unknown option --bogus" in err, err
    assert "needs a value" not in err
    rc, out, err, _ = ringkvd("--requirepas", "x")
    assert rc != 0
    assert "unknown option --requirepas (did you mean 'requirepass'?)" in err
    rc, out, err, _ = ringkvd("--prot", "7000")
    assert "did you mean 'port'?" in err, err
    rc, out, err, _ = ringkvd("--port")
    assert "--port needs a value" in err, err
