"""The data directory under hostile conditions (issue 15 item 4), through a
real ringkvd: a data dir that others can write, or that belongs to another
user, is refused at start with what to run; a symbolic link planted in
the data dir as a data file is not followed (the start fails and names
it) and its target is not touched."""
import os
import subprocess

import pytest


def run(server):
    return subprocess.run(server.command(), capture_output=True, text=True,
                          timeout=60)


def test_data_dir_writable_by_others_is_refused(server_factory, tmp_path):
    s = server_factory(start=False)
    os.makedirs(s.data_dir)
    os.chmod(s.data_dir, 0o777)
    r = run(s)
    assert r.returncode != 0
    assert "chmod go-w" in r.stderr, r.stderr
    os.chmod(s.data_dir, 0o750)  # group may read: fine
    s.start()
    assert s.client().ping() is True


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_data_dir_of_another_user_is_refused(server_factory):
    s = server_factory(start=False)
    os.makedirs(s.data_dir, mode=0o700)
    os.chown(s.data_dir, 65534, 65534)  # nobody
    r = run(s)
    assert r.returncode != 0
    assert "belongs to uid 65534" in r.stderr, r.stderr


def test_planted_symlink_in_the_data_dir_is_not_followed(server_factory,
                                                         tmp_path):
    s = server_factory()
    s.client().set("k", "v")
    s.stop()
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch\n")
    datas = sorted(f for f in os.listdir(s.data_dir) if f.endswith(".data"))
    assert datas
    # replace the newest data file by a link to a file outside
    path = os.path.join(s.data_dir, datas[-1])
    os.unlink(path)
    os.symlink(str(victim), path)
    r = run(s)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-2000:]
    assert datas[-1] in out or "symbolic link" in out or "ELOOP" in out \
        or "Too many levels" in out, out[-2000:]
    assert victim.read_text() == "do not touch\n"
