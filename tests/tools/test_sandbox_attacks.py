"""The sandbox under attack: hostile programs, each asserted contained, the host checked unchanged.

Every program runs through ``run_python`` exactly as a model's call would. Secrets are canary
strings planted on the host; a test fails if one shows up in the program's output or if the host
changed (files, processes, connections). Loops and bombs use short time limits to keep this fast.

``test_sandbox_is_really_in_use`` fails (never skips) when the ``CI`` environment variable is set
and bubblewrap does not work: CI must prove the isolation, not silently run without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentbench.tools import ToolContext, sandbox, tool_spec

SLACK_S = 2.0


@pytest.fixture
def workspace(sandbox_workspace: Path) -> Path:
    """The run's workspace (see tests/tools/conftest.py)."""
    return sandbox_workspace


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A secret file on the host, outside the workspace (beside it, like another run's files)."""
    secret = f"CANARY-{uuid.uuid4().hex}"
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text(secret)
    yield path, secret
    assert path.read_text() == secret  # the host file is unchanged


def attack(workspace: Path, code: str, timeout: float = 5.0) -> dict[str, Any]:
    """Run a hostile program as a model would (``run_python``)."""
    ctx = ToolContext(workspace=workspace, options={"code_timeout_s": timeout})
    result = json.loads(tool_spec("run_python").bind(ctx).invoke({"code": textwrap.dedent(code)}))
    assert result["sandbox"] == "bubblewrap"
    return result


def leaked(result: dict[str, Any], *secrets: str) -> bool:
    return any(s in result["stdout"] or s in result["stderr"] for s in secrets)


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def process_count() -> int:
    return sum(1 for e in os.listdir("/proc") if e.isdigit())


# --------------------------------------------------------------------------- proof of isolation


def test_sandbox_is_really_in_use(tmp_path: Path) -> None:
    """Not skipped with the rest: with CI set, an unusable sandbox is a failure."""
    ok, reason = sandbox.sandbox_status()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the sandbox does not work: {reason}")
        pytest.skip(reason)
    code = """
        import json, os
        print(json.dumps({ns: os.readlink(f'/proc/self/ns/{ns}') for ns in ('net', 'pid', 'user', 'mnt')}))
        print(os.getpid())
    """
    result = attack(tmp_path, code)
    inside = json.loads(result["stdout"].splitlines()[0])
    for ns, link in inside.items():
        assert link != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert int(result["stdout"].splitlines()[1]) < 10  # its own pid namespace


# --------------------------------------------------------------------------- reading the host


@pytest.mark.parametrize("path", ["/etc/shadow", "/etc/passwd", "/etc/hostname", "/root/.bashrc",
                                  "/proc/1/root/etc/shadow", "/sys/class/net/lo/address"])
def test_system_files_are_invisible(workspace: Path, path: str) -> None:
    result = attack(workspace, f"print(open({path!r}).read())")
    assert result["exit_code"] == 1
    assert "FileNotFoundError" in result["stderr"] or "PermissionError" in result["stderr"]


def test_home_directory_is_invisible(workspace: Path) -> None:
    secret = f"HOME-CANARY-{uuid.uuid4().hex}"
    home_file = Path.home() / f".agentbench-canary-{uuid.uuid4().hex}"
    home_file.write_text(secret)
    try:
        result = attack(workspace, f"""
            import os
            print(os.path.expanduser('~'))
            for p in [{str(home_file)!r}, os.path.expanduser('~/{home_file.name}')]:
                try:
                    print(open(p).read())
                except OSError as e:
                    print('refused', type(e).__name__)
            print(os.listdir({str(Path.home())!r}) if os.path.isdir({str(Path.home())!r}) else 'no home')
        """)
    finally:
        home_file.unlink()
    assert not leaked(result, secret, home_file.name)
    assert result["stdout"].count("refused") == 2


def test_repository_is_invisible(workspace: Path) -> None:
    here = Path(__file__).resolve()
    marker = hashlib.sha256(here.read_bytes()).hexdigest()
    result = attack(workspace, f"""
        import hashlib, os
        for p in [{str(here)!r}, {str(here.parents[2] / 'README.md')!r}, {str(here.parents[2] / 'pyproject.toml')!r}]:
            try:
                print(hashlib.sha256(open(p, 'rb').read()).hexdigest())
            except OSError as e:
                print('refused', type(e).__name__)
    """)
    assert not leaked(result, marker)
    assert result["stdout"].count("refused") == 3


def test_venv_parent_directory_listing_is_empty(workspace: Path) -> None:
    venv_parent = Path(sys.prefix).parent
    result = attack(workspace, f"import os\nprint(sorted(os.listdir({str(venv_parent)!r})))")
    assert json.loads(result["stdout"].replace("'", '"')) == [Path(sys.prefix).name]


def test_other_workspaces_are_invisible(workspace: Path, canary: tuple[Path, str]) -> None:
    path, secret = canary
    result = attack(workspace, f"""
        import os
        for p in [{str(path)!r}, '../outside/secret.txt', '/outside/secret.txt']:
            try:
                print(open(p).read())
            except OSError as e:
                print('refused', type(e).__name__)
        print(os.listdir('..'))
    """)
    assert not leaked(result, secret)
    assert result["stdout"].count("refused") == 3


def test_symlink_out_of_the_workspace_leads_nowhere(workspace: Path, canary: tuple[Path, str]) -> None:
    path, secret = canary
    (workspace / "link.txt").symlink_to(path)
    (workspace / "dirlink").symlink_to(path.parent)
    result = attack(workspace, """
        for p in ['link.txt', 'dirlink/secret.txt']:
            try:
                print(open(p).read())
            except OSError as e:
                print('refused', type(e).__name__)
    """)
    assert not leaked(result, secret)
    assert result["stdout"].count("refused FileNotFoundError") == 2


def test_environment_secrets_are_not_passed(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"ENV-SECRET-{uuid.uuid4().hex}"
    monkeypatch.setenv("AGENTBENCH_TEST_SECRET", secret)
    result = attack(workspace, """
        import os
        print(dict(os.environ))
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    print(open(f'/proc/{pid}/environ', 'rb').read())
                except OSError:
                    pass
    """)
    assert not leaked(result, secret, "AGENTBENCH_TEST_SECRET")
    assert "'HOME': '/tmp'" in result["stdout"]


def test_proc_shows_only_the_sandbox(workspace: Path) -> None:
    result = attack(workspace, """
        import os
        pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
        print(pids)
        print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode())
    """)
    pids = json.loads(result["stdout"].splitlines()[0])
    assert len(pids) <= 3 and max(pids) < 10
    assert result["stdout"].splitlines()[1].endswith("bwrap")  # pid 1 is the sandbox's own init
    assert str(os.getpid()) not in result["stdout"].splitlines()[0].split(", ") or os.getpid() < 10


def test_proc_self_root_and_pid1_cwd_stay_inside(workspace: Path, canary: tuple[Path, str]) -> None:
    path, secret = canary
    result = attack(workspace, f"""
        import os
        print(sorted(os.listdir('/proc/self/root')))
        for p in ['/proc/self/root' + {str(path)!r}, '/proc/1/cwd/../' + {str(path)!r}, '/proc/1/root/root/.bashrc']:
            try:
                print(open(p).read())
            except OSError as e:
                print('refused', type(e).__name__)
    """)
    assert not leaked(result, secret)
    assert result["stdout"].count("refused") == 3
    assert "etc" not in result["stdout"].splitlines()[0]


def test_host_tmp_is_invisible(workspace: Path) -> None:
    name = f"agentbench-host-tmp-{uuid.uuid4().hex}"
    host_file = Path("/tmp") / name
    host_file.write_text("host tmp")
    try:
        result = attack(workspace, "import os\nprint(os.listdir('/tmp'))")
    finally:
        host_file.unlink()
    assert name not in result["stdout"]


def test_host_unix_socket_is_unreachable(workspace: Path) -> None:
    path = f"/tmp/agentbench-{uuid.uuid4().hex[:12]}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.setblocking(False)
    try:
        result = attack(workspace, f"""
            import socket
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect({path!r}); print('CONNECTED')
            except OSError as e:
                print('refused', type(e).__name__)
        """)
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
        os.unlink(path)
    assert "CONNECTED" not in result["stdout"]


# --------------------------------------------------------------------------- writing the host


def test_write_to_host_tmp_stays_in_the_sandbox(workspace: Path) -> None:
    target = Path("/tmp") / f"agentbench-escape-{uuid.uuid4().hex}"
    result = attack(workspace, f"open({str(target)!r}, 'w').write('escaped'); print('wrote inside')")
    assert result["stdout"] == "wrote inside\n"  # it wrote to the sandbox's own /tmp
    assert not target.exists()


@pytest.mark.parametrize("where", ["/etc/agentbench-escape", "/usr/agentbench-escape", "/agentbench-escape",
                                   "/run/agentbench/in/main.py", "/dev/agentbench-escape"])
def test_write_outside_the_workspace_fails(workspace: Path, where: str) -> None:
    result = attack(workspace, f"open({where!r}, 'w').write('escaped')")
    assert result["exit_code"] == 1
    assert any(e in result["stderr"] for e in ("Read-only file system", "Permission denied", "No such file"))
    assert not Path(where).exists() or where.startswith("/run/")


def test_write_to_the_repository_fails(workspace: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    target = repo / f"agentbench-escape-{uuid.uuid4().hex}"
    result = attack(workspace, f"open({str(target)!r}, 'w').write('escaped'); print('wrote')")
    assert not target.exists()  # the host's repository is unchanged
    if not str(repo).startswith("/tmp/"):
        assert result["exit_code"] == 1
    # A checkout under /tmp (CI clones there) is different only inside the sandbox: its /tmp is a
    # private tmpfs, so the write may land there, and is gone with the sandbox.


def test_python_prefix_is_read_only(workspace: Path) -> None:
    os_py = Path(os.__file__)
    before = hashlib.sha256(os_py.read_bytes()).hexdigest()
    result = attack(workspace, f"""
        import sys
        for p in [{str(os_py)!r}, sys.prefix + '/pyvenv.cfg', sys.base_prefix + '/evil.py']:
            try:
                open(p, 'a').write('# pwned'); print('WROTE', p)
            except OSError as e:
                print('refused', type(e).__name__)
    """)
    assert "WROTE" not in result["stdout"]
    assert hashlib.sha256(os_py.read_bytes()).hexdigest() == before
    assert not (Path(sys.base_prefix) / "evil.py").exists()


def test_setuid_files_in_the_workspace_lose_their_bits(workspace: Path) -> None:
    result = attack(workspace, """
        import os, shutil, stat
        shutil.copy('/usr/bin/env', 'suid_env')
        os.chmod('suid_env', 0o6755)
        print(oct(os.stat('suid_env').st_mode))
    """)
    assert result["exit_code"] == 0, result
    mode = (workspace / "suid_env").stat().st_mode
    assert not mode & 0o6000  # nothing set-id is left for the host to run


# --------------------------------------------------------------------------- network


def test_no_connection_to_host_loopback(workspace: Path) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        result = attack(workspace, f"""
            import socket
            try:
                socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')
            except OSError as e:
                print('refused', type(e).__name__)
        """)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    finally:
        server.close()
    assert "CONNECTED" not in result["stdout"]


@pytest.mark.parametrize("code", [
    "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)",
    "import socket\nprint(socket.getaddrinfo('example.com', 80))",
    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)",
    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('8.8.8.8', 53))",
])
def test_no_network(workspace: Path, code: str) -> None:
    result = attack(workspace, code)
    assert result["exit_code"] == 1
    assert result["timed_out"] is False


def test_only_loopback_interface(workspace: Path) -> None:
    result = attack(workspace, "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))")
    assert result["stdout"].strip() == "['lo']"


# --------------------------------------------------------------------------- resources


def test_infinite_loop_times_out(workspace: Path) -> None:
    start = time.monotonic()
    result = attack(workspace, "while True:\n    pass", timeout=2)
    assert result["timed_out"] is True
    assert time.monotonic() - start < 2 + SLACK_S


def test_fork_bomb_is_contained(workspace: Path) -> None:
    before = process_count()
    start = time.monotonic()
    result = attack(workspace, """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """, timeout=3)
    assert time.monotonic() - start < 3 + SLACK_S
    assert result["timed_out"] is True
    assert process_count() <= before + 5  # the bomb's processes are gone when the call returns


def test_process_limit_stops_forks(workspace: Path) -> None:
    result = attack(workspace, """
        import os, time
        n = 0
        try:
            for _ in range(1000):
                if os.fork() == 0:
                    time.sleep(5)
                    os._exit(0)
                n += 1
        except OSError:
            pass
        print(n)
        os._exit(0)
    """)
    assert 0 < int(result["stdout"]) < 100


def test_thread_bomb_is_limited(workspace: Path) -> None:
    result = attack(workspace, """
        import threading, time
        n = 0
        try:
            for _ in range(10_000):
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                n += 1
        except RuntimeError:
            pass
        print(n)
        import os; os._exit(0)
    """)
    assert int(result["stdout"]) < 100


def test_memory_bomb_is_refused(workspace: Path) -> None:
    result = attack(workspace, """
        chunks = []
        while True:
            chunks.append(bytearray(64 * 1024 * 1024))
    """)
    assert result["exit_code"] == 1
    assert "MemoryError" in result["stderr"]
    one = attack(workspace, "x = bytearray(8 * 1024**3)")
    assert "MemoryError" in one["stderr"]


def test_huge_output_is_truncated(workspace: Path) -> None:
    result = attack(workspace, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", timeout=2)
    assert result["timed_out"] is True
    assert "[... output truncated:" in result["stdout"]
    assert len(result["stdout"]) < 70_000
    finite = attack(workspace, "import sys\nsys.stderr.write('e' * 5_000_000)")
    assert len(finite["stderr"]) < 70_000
    omitted = int(finite["stderr"].split("output truncated: ")[1].split()[0])
    assert omitted == 5_000_000 - 64 * 1024


def test_filling_the_disk_is_stopped(workspace: Path) -> None:
    free_before = os.statvfs(workspace).f_bavail * os.statvfs(workspace).f_frsize
    start = time.monotonic()
    result = attack(workspace, """
        chunk = b'x' * (1 << 20)
        n = 0
        while True:
            try:
                with open(f'fill{n}', 'wb') as f:
                    while True:
                        f.write(chunk)
            except OSError as e:
                print('stopped file', n, e, flush=True)
            n += 1
    """, timeout=10)
    assert time.monotonic() - start < 10
    used = sum(p.stat().st_blocks * 512 for p in workspace.iterdir())
    free_after = os.statvfs(workspace).f_bavail * os.statvfs(workspace).f_frsize
    cap = sandbox.Limits().workspace_bytes
    assert result["timed_out"] is False and "workspace grew over its limit" in result["stderr"]
    assert "File too large" in result["stdout"]  # RLIMIT_FSIZE stops each single file at 16 MiB
    assert used < cap + 256 * 1024**2
    assert free_before - free_after < cap + 512 * 1024**2  # generous: other processes write too


def test_tmp_is_capped(workspace: Path) -> None:
    result = attack(workspace, """
        import os
        try:
            for n in range(100):
                open(f'/tmp/f{n}', 'wb').write(b'x' * (8 << 20))
        except OSError as e:
            print('stopped', n, e)
    """)
    assert "No space left on device" in result["stdout"]


def test_background_processes_do_not_outlive_the_call(workspace: Path) -> None:
    marker = f"agentbench-bg-{uuid.uuid4().hex}"
    start = time.monotonic()
    result = attack(workspace, f"""
        import os, subprocess, sys
        sleeper = [sys.executable, '-c', 'import time; time.sleep(30)', {marker!r}]
        subprocess.Popen(sleeper, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.Popen(sleeper)  # holds the output pipes
        if os.fork() == 0:  # double fork
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, sleeper)
            os._exit(0)
        os.system('nohup ' + ' '.join(sleeper[:1]) + " -c 'import time; time.sleep(30)' {marker} >/dev/null 2>&1 &")
        print('spawned')
    """)
    assert result["stdout"] == "spawned\n"
    assert time.monotonic() - start < 5
    time.sleep(0.3)
    assert host_processes_with(marker) == []


def test_timed_out_process_tree_is_gone(workspace: Path) -> None:
    marker = f"agentbench-tree-{uuid.uuid4().hex}"
    result = attack(workspace, f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}], start_new_session=True)
        time.sleep(60)
    """, timeout=1.5)
    assert result["timed_out"] is True
    time.sleep(0.3)
    assert host_processes_with(marker) == []


# --------------------------------------------------------------------------- privileges


def test_cannot_signal_or_trace_host_processes(workspace: Path) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        result = attack(workspace, f"""
            import ctypes, os, signal
            for pid in [{victim.pid}, {os.getpid()}, os.getppid()]:
                try:
                    os.kill(pid, signal.SIGKILL); print('killed', pid)
                except OSError as e:
                    print('refused', pid, type(e).__name__)
            libc = ctypes.CDLL(None, use_errno=True)
            print('ptrace', libc.ptrace(16, {victim.pid}, None, None))  # PTRACE_ATTACH
        """)
        assert victim.poll() is None  # still alive
        assert f"refused {victim.pid}" in result["stdout"]
        assert "ptrace -1" in result["stdout"]
    finally:
        victim.kill()
        victim.wait()


def test_no_privileges_inside(workspace: Path) -> None:
    result = attack(workspace, """
        import ctypes, os
        status = open('/proc/self/status').read()
        print([line for line in status.splitlines() if line.startswith(('CapEff', 'CapPrm', 'NoNewPrivs'))])
        for f in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/tmp')):
            try:
                f(); print('GAINED')
            except OSError as e:
                print('refused', type(e).__name__)
        libc = ctypes.CDLL(None, use_errno=True)
        print('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))
        print('unshare', libc.unshare(0x10000000))  # CLONE_NEWUSER: nested namespaces are disabled
    """)
    out = result["stdout"]
    assert "CapEff:\\t0000000000000000" in out and "NoNewPrivs:\\t1" in out
    assert "GAINED" not in out
    assert "mount -1" in out and "unshare -1" in out


def test_mount_command_fails(workspace: Path) -> None:
    result = attack(workspace, """
        import subprocess
        r = subprocess.run(['mount', '-t', 'tmpfs', 'none', '/tmp'], capture_output=True, text=True)
        print(r.returncode)
    """)
    assert result["stdout"].strip() not in ("0", "")


def test_hostname_is_the_sandbox_s(workspace: Path) -> None:
    result = attack(workspace, "import socket\nprint(socket.gethostname())")
    assert result["stdout"].strip() == "sandbox"
