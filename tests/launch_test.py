"""launch/: dry runs print exactly the commands a real run executes, checks fail loudly, and the
scripts the TPU workers run do what they claim when executed in a fake worker home."""
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
SCRIPTS = ["common.sh", "single_host_gpu.sh", "slurm_gpu.sbatch", "slurm_gpu.sh", "tpu_pod.sh"]
# Variables the scripts read; cleared so the caller's shell cannot leak into a test.
SCRIPT_VARS = ["DRY_RUN", "PYTHON", "JAX_PLATFORMS", "XLA_PYTHON_CLIENT_MEM_FRACTION", "CUDA_VISIBLE_DEVICES",
               "JAX_LOCAL_DEVICE_IDS", "GPUS_PER_NODE", "NODES", "PROCESS_PER", "JOB_NAME", "REPO_DIR", "TPU_NAME",
               "ZONE", "PROJECT", "ACCELERATOR_TYPE", "RUNTIME_VERSION", "SPOT", "SRC_DIR", "PYTHON_VERSION",
               "PIP_EXTRAS", "JAX_SPEC", "RUN_NAME", "DETACH", "FOLLOW", "LOG_LINES"]
PROGRAM = ["anylift_jax.train", "--config", "configs/single_view.py:tiny", "--workdir", "runs/a b", "--config.seed=3"]


def script(name, *args, env=None, cwd=REPO, path_prefix=None):
    """Run launch/<name> with bash and a clean set of launch variables."""
    full_env = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS and not k.startswith("SLURM_")}
    if path_prefix:
        full_env["PATH"] = f"{path_prefix}:{full_env['PATH']}"
    full_env.update(env or {})
    return subprocess.run(["bash", str(LAUNCH / name), *args], env=full_env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def printed(proc):
    """The commands of a dry run, one argv per line."""
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line) for line in proc.stdout.splitlines()]


def recorder(bindir, name, record):
    """An executable `name` that appends its argv (one JSON list per call) to `record`."""
    path = bindir / name
    path.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    path.chmod(0o755)


def recorded(record):
    return [json.loads(line) for line in record.read_text().splitlines()]


def fails(proc, *words):
    assert proc.returncode != 0
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_clean():
    proc = subprocess.run(["shellcheck", "-x", *(f"launch/{s}" for s in SCRIPTS)], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout


def test_scripts_are_strict_and_executable():
    for name in SCRIPTS[1:]:
        assert "set -euo pipefail" in (LAUNCH / name).read_text(), name
        assert os.access(LAUNCH / name, os.X_OK), name


def test_readme_explains_every_variable():
    internal = {"SCRIPT_NAME", "LAUNCH_DIR", "BASH_SOURCE", "GPU_ENV", "TPU", "WHERE", "AT_WORKER", "LABEL",
                "COMMAND", "PWD"}
    used = set()
    for name in SCRIPTS:
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (LAUNCH / name).read_text()))
    readme = (LAUNCH / "README.md").read_text()
    assert {"TPU_NAME", "ZONE", "NODES", "XLA_PYTHON_CLIENT_MEM_FRACTION"} <= used
    assert sorted(v for v in used - internal if f"`{v}`" not in readme) == []


# ------------------------------------------------------------------------------- single host GPU
def test_single_host_prints_and_runs_the_same_command(tmp_path):
    expected = ["env", "JAX_PLATFORMS=cuda", "XLA_PYTHON_CLIENT_MEM_FRACTION=0.9", "python", "-m", *PROGRAM]
    assert printed(script("single_host_gpu.sh", "--dry-run", *PROGRAM)) == [expected]
    assert printed(script("single_host_gpu.sh", *PROGRAM, env={"DRY_RUN": "1"})) == [expected]
    shown = printed(script("single_host_gpu.sh", "--dry-run", *PROGRAM,
                           env={"CUDA_VISIBLE_DEVICES": "2,3", "XLA_PYTHON_CLIENT_MEM_FRACTION": ".5"}))
    assert shown[0][:4] == ["env", "JAX_PLATFORMS=cuda", "XLA_PYTHON_CLIENT_MEM_FRACTION=.5",
                            "CUDA_VISIBLE_DEVICES=2,3"]

    # A real run: a fake python reports what it received.
    fake = tmp_path / "python"
    out = tmp_path / "seen.json"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\njson.dump([sys.argv[1:], "
                    f"{{k: os.environ.get(k) for k in ('JAX_PLATFORMS', 'XLA_PYTHON_CLIENT_MEM_FRACTION')}}], "
                    f"open({str(out)!r}, 'w'))\n")
    fake.chmod(0o755)
    proc = script("single_host_gpu.sh", *PROGRAM, env={"PYTHON": str(fake)})
    assert proc.returncode == 0, proc.stderr
    argv, env = json.loads(out.read_text())
    assert argv == ["-m", *PROGRAM]
    assert env == {"JAX_PLATFORMS": "cuda", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.9"}


def test_single_host_rejects_bad_input():
    fails(script("single_host_gpu.sh", "--dry-run"), "Python module")
    fails(script("single_host_gpu.sh", "--dry-run", "--config", "x.py"), "Python module", "--config")
    fails(script("single_host_gpu.sh", "--dry-run", *PROGRAM, env={"XLA_PYTHON_CLIENT_MEM_FRACTION": "1.5"}),
          "XLA_PYTHON_CLIENT_MEM_FRACTION")
    fails(script("single_host_gpu.sh", *PROGRAM, env={"DRY_RUN": "yes"}), "DRY_RUN")


# ------------------------------------------------------------------------------------------ SLURM
SLURM_JOB = {"SLURM_JOB_ID": "1234", "SLURM_NTASKS_PER_NODE": "8", "SLURM_GPUS_ON_NODE": "8"}
GPU_ENV = ["env", "JAX_PLATFORMS=cuda", "XLA_PYTHON_CLIENT_MEM_FRACTION=0.9"]


def test_sbatch_one_process_per_gpu(tmp_path):
    expected = ["srun", "--kill-on-bad-exit=1", "--label", *GPU_ENV, "python", "-m", *PROGRAM]
    assert printed(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env=SLURM_JOB)) == [expected]
    # jax.distributed gives local task i GPU i by itself here, so nothing restricts devices.
    with_cpus = printed(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM,
                               env=SLURM_JOB | {"SLURM_CPUS_PER_TASK": "12"}))
    assert with_cpus[0][:4] == ["srun", "--kill-on-bad-exit=1", "--label", "--cpus-per-task=12"]

    record = tmp_path / "calls"
    recorder(tmp_path, "srun", record)
    proc = script("slurm_gpu.sbatch", *PROGRAM, env=SLURM_JOB, path_prefix=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert recorded(record) == [expected[1:]]


def test_sbatch_one_process_per_node_sees_all_gpus():
    job = SLURM_JOB | {"SLURM_NTASKS_PER_NODE": "1", "SLURM_GPUS_ON_NODE": "4"}
    [argv] = printed(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env=job))
    assert argv[3:7] == [*GPU_ENV, "JAX_LOCAL_DEVICE_IDS=0,1,2,3"]
    assert argv[7:] == ["python", "-m", *PROGRAM]
    # A site that binds one GPU per task sets JAX_LOCAL_DEVICE_IDS itself; it is passed on as is.
    [argv] = printed(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env=SLURM_JOB | {"JAX_LOCAL_DEVICE_IDS": "0"}))
    assert "JAX_LOCAL_DEVICE_IDS=0" in argv


def test_sbatch_rejects_bad_jobs(tmp_path):
    fails(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM), "SLURM_JOB_ID", "sbatch")
    fails(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env={"SLURM_JOB_ID": "1", "SLURM_GPUS_ON_NODE": "8"}),
          "SLURM_NTASKS_PER_NODE")
    fails(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env={"SLURM_JOB_ID": "1", "SLURM_NTASKS_PER_NODE": "8"}),
          "GPUS_PER_NODE")
    fails(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env=SLURM_JOB | {"SLURM_NTASKS_PER_NODE": "2"}),
          "--ntasks-per-node=2")
    fails(script("slurm_gpu.sbatch", "--dry-run", *PROGRAM, env=SLURM_JOB, cwd=tmp_path), "repository root")


def test_slurm_wrapper_submits_consistent_tasks(tmp_path):
    sbatch = str(LAUNCH / "slurm_gpu.sbatch")
    [argv] = printed(script("slurm_gpu.sh", "--dry-run", *PROGRAM, env={"NODES": "4"}))
    assert argv == ["sbatch", "--job-name=anylift", "--nodes=4", "--gpus-per-node=8", "--ntasks-per-node=8",
                    f"--chdir={REPO}", sbatch, *PROGRAM]
    [argv] = printed(script("slurm_gpu.sh", "--dry-run", *PROGRAM,
                            env={"PROCESS_PER": "host", "GPUS_PER_NODE": "4", "JOB_NAME": "sv"}))
    assert argv[1:5] == ["--job-name=sv", "--nodes=1", "--gpus-per-node=4", "--ntasks-per-node=1"]
    fails(script("slurm_gpu.sh", "--dry-run", *PROGRAM, env={"PROCESS_PER": "node"}), "PROCESS_PER")
    fails(script("slurm_gpu.sh", "--dry-run", *PROGRAM, env={"NODES": "0"}), "NODES")

    record = tmp_path / "calls"
    recorder(tmp_path, "sbatch", record)
    proc = script("slurm_gpu.sh", *PROGRAM, env={"NODES": "4"}, path_prefix=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert recorded(record) == [["--job-name=anylift", "--nodes=4", "--gpus-per-node=8", "--ntasks-per-node=8",
                                 f"--chdir={REPO}", sbatch, *PROGRAM]]


# ---------------------------------------------------------------------------------------- TPU pod
TPU = {"TPU_NAME": "pod", "ZONE": "us-east5-a"}
GCLOUD = ["gcloud", "compute", "tpus", "tpu-vm"]


def tpu(*args, env=None, **kwargs):
    return script("tpu_pod.sh", *args, env=TPU | (env or {}), **kwargs)


def remote_script(argv):
    """The --command of a `gcloud ... ssh --worker=all` line, checked to address every worker."""
    assert argv[:5] == [*GCLOUD, "ssh"] and argv[5] == "pod"
    assert "--worker=all" in argv and "--zone=us-east5-a" in argv
    [command] = [a for a in argv if a.startswith("--command=")]
    return command.removeprefix("--command=")


def test_tpu_requires_name_and_zone():
    fails(script("tpu_pod.sh", "--dry-run", "delete", env={"ZONE": "z"}), "TPU_NAME")
    fails(script("tpu_pod.sh", "--dry-run", "delete", env={"TPU_NAME": "t"}), "ZONE")
    fails(tpu("--dry-run", "create"), "ACCELERATOR_TYPE")
    fails(tpu("--dry-run", "create", env={"ACCELERATOR_TYPE": "v9-8"}), "RUNTIME_VERSION")
    fails(tpu("--dry-run", "resize"), "unknown command")
    fails(tpu("--dry-run", "delete", "now"), "takes no arguments")
    fails(tpu("--dry-run", "run", "--config", "x.py"), "Python module")
    fails(tpu("--dry-run", "logs", env={"RUN_NAME": "a b"}), "RUN_NAME")


@pytest.mark.parametrize("accelerator,version", [("v5p-32", "v2-alpha-tpuv5"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
                                                 ("v6e-64", "v2-alpha-tpuv6e"), ("v4-32", "tpu-ubuntu2204-base")])
def test_tpu_create_picks_the_runtime_per_generation(accelerator, version):
    [argv] = printed(tpu("--dry-run", "create", env={"ACCELERATOR_TYPE": accelerator}))
    assert argv == [*GCLOUD, "create", "pod", "--zone=us-east5-a", f"--accelerator-type={accelerator}",
                    f"--version={version}"]


def test_tpu_create_delete_options_and_real_calls(tmp_path):
    env = {"ACCELERATOR_TYPE": "v5p-32", "RUNTIME_VERSION": "custom", "PROJECT": "proj", "SPOT": "1"}
    [argv] = printed(tpu("--dry-run", "create", env=env))
    assert argv == [*GCLOUD, "create", "pod", "--zone=us-east5-a", "--project=proj", "--accelerator-type=v5p-32",
                    "--version=custom", "--spot"]
    [delete] = printed(tpu("delete", env={"DRY_RUN": "1"}))
    assert delete == [*GCLOUD, "delete", "pod", "--zone=us-east5-a"]

    record = tmp_path / "calls"
    recorder(tmp_path, "gcloud", record)
    assert tpu("create", env=env, path_prefix=tmp_path).returncode == 0
    assert tpu("delete", path_prefix=tmp_path).returncode == 0
    assert recorded(record) == [argv[1:], delete[1:]]


def fake_worker(tmp_path, worker=3):
    """A worker's home with the checkout, and a bin dir whose curl answers the metadata query."""
    home = tmp_path / "home"
    (home / "anylift-jax" / ".venv" / "bin").mkdir(parents=True)
    bindir = tmp_path / "workerbin"
    bindir.mkdir()
    (bindir / "curl").write_text(f"#!/bin/sh\necho {worker}\n")
    (bindir / "curl").chmod(0o755)
    return home, bindir


def on_worker(home, bindir, command):
    env = dict(os.environ, HOME=str(home), PATH=f"{bindir}:{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", command], cwd=home, env=env, capture_output=True, text=True, timeout=60)


def test_tpu_run_streams_and_logs_per_worker(tmp_path):
    [argv] = printed(tpu("--dry-run", "run", "XLA_FLAGS=--a --b", *PROGRAM))
    command = remote_script(argv)

    home, bindir = fake_worker(tmp_path)
    python = home / "anylift-jax" / ".venv" / "bin" / "python"
    python.write_text('#!/bin/bash\necho "pid $$ args $(printf "<%s>" "$@")"\necho "XLA_FLAGS=$XLA_FLAGS" >&2\nexit 3\n')
    python.chmod(0o755)
    proc = on_worker(home, bindir, command)
    assert proc.returncode == 3  # the program's status survives the tee | sed pipeline
    pid = (home / "anylift-jax" / "logs" / "anylift.worker3.pid").read_text().strip()
    output = [f"pid {pid} args " + "".join(f"<{a}>" for a in ["-m", *PROGRAM]), "XLA_FLAGS=--a --b"]
    assert proc.stdout.splitlines() == [f"[worker 3] {line}" for line in output]
    assert (home / "anylift-jax" / "logs" / "anylift.worker3.log").read_text().splitlines() == output

    [argv] = printed(tpu("--dry-run", "logs", env={"FOLLOW": "0", "LOG_LINES": "1"}))
    proc = on_worker(home, bindir, remote_script(argv))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[worker 3] XLA_FLAGS=--a --b\n"


def test_tpu_detached_run_and_stop(tmp_path):
    home, bindir = fake_worker(tmp_path, worker=0)
    python = home / "anylift-jax" / ".venv" / "bin" / "python"
    python.write_text("#!/bin/bash\necho started\nexec sleep 60\n")
    python.chmod(0o755)
    env = {"DETACH": "1", "RUN_NAME": "sv"}
    [argv] = printed(tpu("--dry-run", "run", *PROGRAM, env=env))
    proc = on_worker(home, bindir, remote_script(argv))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[worker 0] started, log ~/anylift-jax/logs/sv.worker0.log\n"
    pid_file = home / "anylift-jax" / "logs" / "sv.worker0.pid"
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)  # running
        [argv] = printed(tpu("--dry-run", "stop", env=env))
        proc = on_worker(home, bindir, remote_script(argv))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "[worker 0] stopped sv\n"
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)
        assert (home / "anylift-jax" / "logs" / "sv.worker0.log").read_text() == "started\n"
    finally:
        if _alive(pid):
            os.kill(pid, 9)


def _alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_tpu_setup_copies_and_installs_on_every_worker(tmp_path):
    src = tmp_path / "checkout"
    for rel in ["pyproject.toml", "anylift_jax/__init__.py", "configs/tiny.py", ".git/HEAD", ".venv/bin/python",
                "anylift_jax/__pycache__/x.pyc", "runs/sv/metrics.jsonl", "workdir1/ckpt", "x.egg-info/PKG-INFO"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    env = {"SRC_DIR": str(src), "TMPDIR": str(tmp_path), "PIP_EXTRAS": "test"}
    tar, scp, ssh = printed(tpu("--dry-run", "setup", env=env))
    tarball = tmp_path / "anylift-jax-src-pod.tar.gz"
    assert tar[0] == "tar" and tar[-3:] == ["-C", str(src), "."] and "-czf" in tar
    assert scp == [*GCLOUD, "scp", str(tarball), "pod:anylift-jax-src.tar.gz", "--zone=us-east5-a", "--worker=all"]
    command = remote_script(ssh)

    # The real run: tar for real, gcloud recorded.
    record = tmp_path / "calls"
    recorder(tmp_path, "gcloud", record)
    proc = tpu("setup", env=env, path_prefix=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert recorded(record) == [scp[1:], ssh[1:]]
    with tarfile.open(tarball) as t:
        members = {m.removeprefix("./") for m in t.getnames() if t.getmember(m).isfile()}
    assert members == {"pyproject.toml", "anylift_jax/__init__.py", "configs/tiny.py"}

    # The worker side: python3 (pip, uv) is faked; a venv appears on the first `uv venv`.
    home, bindir = fake_worker(tmp_path)
    shutil.rmtree(home / "anylift-jax")
    calls = tmp_path / "python3.calls"
    (bindir / "python3").write_text(f'#!/bin/bash\necho "$*" >> {calls}\n'
                                    'if [[ "$*" == "-m uv venv"* ]]; then mkdir -p .venv/bin; touch .venv/bin/python;'
                                    ' chmod +x .venv/bin/python; fi\n')
    (bindir / "python3").chmod(0o755)
    for _ in range(2):
        shutil.copy(tarball, home / "anylift-jax-src.tar.gz")
        proc = on_worker(home, bindir, command)
        assert proc.returncode == 0, proc.stderr
    assert (home / "anylift-jax" / "configs" / "tiny.py").read_text() == "configs/tiny.py"
    assert not (home / "anylift-jax-src.tar.gz").exists()
    install = "-m uv pip install --python .venv/bin/python -e .[test] jax[tpu]"
    assert calls.read_text().splitlines() == [
        "-m pip install --user --quiet --upgrade uv", "-m uv venv --python 3.11 .venv", install,
        "-m pip install --user --quiet --upgrade uv", install]  # the second setup reuses the venv
