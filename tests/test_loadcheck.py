"""A model file is first tried in a child process; a child that really dies is reported.

The crashing children here are real processes that die by a signal (os.abort(), a SIGSEGV,
a SIGKILL), not mocks: what is tested is what the app sees when llama.cpp takes its process
down.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from promptstudio import selftest
from promptstudio.llm import loadcheck
from promptstudio.llm.base import ModelFileError
from promptstudio.llm.loadcheck import ModelCrashError, Trial
from promptstudio.llm.local import LocalBackend

ABORTS = "import os; os.abort()"
SEGFAULTS = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
IS_KILLED = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"


def child_running(monkeypatch, code: str) -> list[Trial]:
    """Make every model check run `code` in a real child process; the trials asked for."""
    asked: list[Trial] = []

    def command(trial: Trial, report: Path) -> list[str]:
        asked.append(trial)
        return [sys.executable, "-c", code, str(report)]

    monkeypatch.setattr(loadcheck, "child_command", command)
    return asked


@pytest.fixture
def model_copy(tmp_path, bundled_model) -> Path:
    """A model file of the user's own (a link to the bundled one, under another name)."""
    path = tmp_path / "my-model.Q4_K_M.gguf"
    os.symlink(bundled_model, path)
    return path


def trial(path: Path) -> Trial:
    return Trial(path, n_ctx=512, n_threads=2, n_seq_max=3)


# -- children that die ----------------------------------------------------------------------


def test_a_child_that_aborts_is_reported_as_a_crash_in_llama_cpp(monkeypatch, unchecked_home,
                                                                 model_copy):
    child_running(monkeypatch, ABORTS)
    with pytest.raises(ModelCrashError) as caught:
        loadcheck.ensure_model_runs(trial(model_copy))
    message = str(caught.value)
    assert "my-model.Q4_K_M.gguf" in message, "it names the model that failed"
    assert "llama.cpp" in message and "crashed" in message and "SIGABRT" in message
    assert "not in your project" in message, "it says whose fault it is"
    assert "Choose another model file" in message, "and what to try"
    assert not (unchecked_home / loadcheck.RECORD_FILE).exists(), "a failure is not remembered"


def test_a_memory_fault_and_a_kill_get_their_own_words(monkeypatch, unchecked_home, model_copy):
    child_running(monkeypatch, SEGFAULTS)
    with pytest.raises(ModelCrashError, match="memory access fault, SIGSEGV"):
        loadcheck.ensure_model_runs(trial(model_copy))
    child_running(monkeypatch, IS_KILLED)
    with pytest.raises(ModelCrashError, match="ran out of memory"):
        loadcheck.ensure_model_runs(trial(model_copy))


def test_a_child_that_hangs_is_stopped_at_the_time_limit(monkeypatch, unchecked_home, model_copy):
    child_running(monkeypatch, "import time; time.sleep(60)")
    with pytest.raises(ModelCrashError, match="did not load and answer within"):
        loadcheck.check_in_child(trial(model_copy), timeout=1)


def test_an_ordinary_error_in_the_child_keeps_its_own_message(monkeypatch, unchecked_home,
                                                              model_copy):
    said = json.dumps({"ok": False, "error": "The model file is damaged, says the child."})
    child_running(monkeypatch, "import sys, pathlib; "
                               f"pathlib.Path(sys.argv[1]).write_text({said!r}); sys.exit(1)")
    with pytest.raises(ModelFileError) as caught:
        loadcheck.ensure_model_runs(trial(model_copy))
    assert not isinstance(caught.value, ModelCrashError)
    assert str(caught.value) == "The model file is damaged, says the child."


def test_the_backend_never_loads_a_model_whose_check_crashed(monkeypatch, unchecked_home,
                                                             model_copy):
    from promptstudio.llm.config import ModelConfig

    child_running(monkeypatch, ABORTS)
    backend = LocalBackend(ModelConfig(kind="local", path=str(model_copy)))
    with pytest.raises(ModelCrashError, match="my-model"):
        backend.load()
    assert backend._engines == [], "nothing was loaded into this process"


# -- the real model -------------------------------------------------------------------------


@pytest.mark.model
def test_the_real_check_passes_once_and_is_remembered(monkeypatch, unchecked_home, model_copy):
    loadcheck.ensure_model_runs(trial(model_copy))  # a real child loads and decodes
    records = json.loads((unchecked_home / loadcheck.RECORD_FILE).read_text())
    [record] = records.values()
    assert record["model"] == str(model_copy) and record["seconds"] > 0
    asked = child_running(monkeypatch, ABORTS)
    loadcheck.ensure_model_runs(trial(model_copy))
    assert asked == [], "a model file that passed is not tried again"
    with pytest.raises(ModelCrashError):
        loadcheck.ensure_model_runs(trial(model_copy), again=True)


@pytest.mark.model
def test_a_changed_model_file_is_tried_again(monkeypatch, unchecked_home, tmp_path,
                                             bundled_model):
    path = tmp_path / "copy.gguf"
    shutil.copyfile(bundled_model, path)
    loadcheck.ensure_model_runs(trial(path))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # replaced by another download, say
    asked = child_running(monkeypatch, ABORTS)
    with pytest.raises(ModelCrashError):
        loadcheck.ensure_model_runs(trial(path))
    assert len(asked) == 1


@pytest.mark.model
def test_the_child_runs_the_real_engine(bundled_model):
    """What the child does, in this process: load and decode with the app's settings."""
    loadcheck.run_trial(trial(bundled_model))


# -- the self-test --------------------------------------------------------------------------


def test_the_self_test_names_the_model_when_llama_cpp_crashes(monkeypatch, unchecked_home,
                                                              bundled_model):
    asked = child_running(monkeypatch, ABORTS)
    results = {r.name: r for r in selftest.run(["model", "evaluation"])}
    assert results["model"].status == "failed"
    assert "crashed" in results["model"].detail and "llama.cpp" in results["model"].detail
    assert results["evaluation"].status == "skipped"
    assert len(asked) == 1


@pytest.mark.model
def test_the_self_test_tries_the_model_in_a_child_even_when_remembered(monkeypatch,
                                                                       unchecked_home,
                                                                       bundled_model):
    loadcheck.ensure_model_runs(LocalBackend().trial)
    real_command = loadcheck.child_command
    asked: list[Trial] = []

    def spy(trial: Trial, report: Path) -> list[str]:
        asked.append(trial)
        return real_command(trial, report)

    monkeypatch.setattr(loadcheck, "child_command", spy)
    results = {r.name: r for r in selftest.run(["model"])}
    assert results["model"].ok, results["model"].detail
    assert [t.path.resolve() for t in asked] == [bundled_model.resolve()]
