"""The model process: every submitted model runs in its own subprocess, with limits.

``python -m trashkit.competition.runner`` imports its libraries, then reads one job (a JSON
line) on stdin, caps its own address space (``RLIMIT_AS``), runs :func:`.inference.run_job`
and writes ``result.json`` (or ``error.json``) into the job's folder. The parent
(:class:`Runner`) kills the whole process group when the wall-clock limit passes.

Why a process per model: a checkpoint cannot carry code, but a model can still be huge, slow
or crash a runtime; whatever it does, the worker survives, says what happened, and goes on.
Why a *warm* process: importing PyTorch takes seconds, so the worker starts the next model
process while it writes the last result; the time limit starts when the job is handed over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNER_CMD = (sys.executable, "-m", "trashkit.competition.runner")


def _die_with_parent() -> None:
    """Linux: the model process is killed when its worker dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Runner:
    """Runs jobs in fresh model processes, keeping one started ahead (``warm``)."""

    def __init__(self, cmd: list[str] | tuple[str, ...] | None = None, warm: bool = True):
        self.cmd = list(cmd or RUNNER_CMD)
        self.warm = warm
        self._next: tuple[subprocess.Popen, object] | None = None
        self._current: subprocess.Popen | None = None
        if warm:
            self._next = self._spawn()

    def _spawn(self) -> tuple[subprocess.Popen, object]:
        log = tempfile.TemporaryFile()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return proc, log

    def run(self, job: dict, timeout: float) -> dict:
        """Run one job; ``{"state": "ok", "result": ...}`` or a failed / timed_out state with a
        message a student can act on."""
        proc, log = self._next or self._spawn()
        self._next = self._spawn() if self.warm else None
        try:
            proc.stdin.write((json.dumps(job) + "\n").encode())
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self._current = proc
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return {
                "state": "timed_out",
                "message": f"the model ran longer than the {timeout:g} s limit and was stopped",
            }
        finally:
            self._current = None
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            log.close()
        return _outcome(Path(job["out"]), code, tail, job)

    def abort(self) -> None:
        """Kill the model process now running (a worker told to stop)."""
        proc = self._current
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        """Stop the process kept warm."""
        if self._next is not None:
            _kill(self._next[0])
            self._next[1].close()
            self._next = None


def _kill(proc: subprocess.Popen) -> None:
    """Kill the model process and anything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _outcome(out: Path, code: int, tail: str, job: dict) -> dict:
    """Read what the model process left: its result, its own error, or how it died."""
    if code == 0 and (out / "result.json").is_file():
        return {"state": "ok", "result": json.loads((out / "result.json").read_text())}
    if (out / "error.json").is_file():
        return {
            "state": "failed",
            "message": json.loads((out / "error.json").read_text())["message"],
        }
    if code < 0:
        why = (
            f"the model process was killed by signal {-code}; it may have needed more than "
            f"the {job['memory_mb']} MiB memory limit"
        )
    else:
        last = [ln for ln in tail.splitlines() if ln.strip()][-1:] or ["no output"]
        why = f"the model process stopped with status {code}: {last[0][:300]}"
    return {"state": "failed", "message": why}


def _limit_memory(mb: int) -> None:
    import resource

    limit = int(mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _write(out: Path, name: str, obj: dict) -> None:
    tmp = out / f".{name}.tmp"
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, out / name)


def main() -> int:
    """The model process: warm up, read one job, run it under the limits, report."""
    import torch

    from . import inference  # noqa: F401  (imported before the job: the warm part)
    from ..compress import onnx_rt  # noqa: F401

    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the worker stopped without a job for us
    job = json.loads(line)
    out = Path(job["out"])
    torch.set_num_threads(int(job["threads"]))
    _limit_memory(job["memory_mb"])
    try:
        _write(out, "result.json", inference.run_job(job))
        return 0
    except MemoryError:
        msg = f"the model needed more than the {job['memory_mb']} MiB memory limit"
    except Exception as exc:  # the student's model failed: say how, never crash the worker
        text = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else ""
        msg = f"the model could not be run: {type(exc).__name__}: {text}"
    _write(out, "error.json", {"message": msg})
    return 3


if __name__ == "__main__":
    sys.exit(main())
