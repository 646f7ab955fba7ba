"""What to run for the models in use, and the warning for a method the writer cannot serve."""

from __future__ import annotations

from optimize_support import gguf_header, letters_project

from promptstudio.llm.config import ModelConfig
from promptstudio.optimize import proposal, runner
from promptstudio.optimize.proposal import propose, writer_warning

BUNDLED = ModelConfig()
SERVER = ModelConfig(kind="server", base_url="http://127.0.0.1:8080/v1", model="qwen2.5-7b")


def test_the_bundled_optimizer_gets_the_measured_proposal():
    chosen = propose(BUNDLED)
    assert (chosen.method, chosen.then, chosen.preset) == ("demos", None, "thorough")
    assert "docs/benchmarks.md" in chosen.why


def test_a_model_not_measured_gets_a_proposal_that_says_so(tmp_path):
    chat = gguf_header(tmp_path / "qwen-7b-instruct.gguf",
                       {"general.architecture": "qwen2",
                        "tokenizer.chat_template": "{% for m in messages %}{% endfor %}"},
                       4_000_000_000)
    for config in (SERVER, ModelConfig(kind="local", path=str(chat))):
        chosen = propose(config)
        assert chosen is proposal.UNMEASURED and "guess" in chosen.why


def test_what_makes_a_small_base_model(tmp_path):
    base = gguf_header(tmp_path / "base.gguf", {"general.architecture": "llama"}, 600_000_000)
    big = gguf_header(tmp_path / "big.gguf", {"general.architecture": "llama"}, 5_000_000_000)
    assert proposal.optimizer_kind(ModelConfig(kind="local", path=str(base))) == \
        proposal.SMALL_BASE
    assert proposal.optimizer_kind(ModelConfig(kind="local", path=str(big))) == \
        proposal.CAPABLE
    assert proposal.optimizer_kind(ModelConfig(kind="local", path=str(tmp_path / "gone.gguf"))) \
        == proposal.UNKNOWN


def test_methods_that_need_a_capable_writer_warn_for_a_small_base_model():
    for method in ("protegi", "opro", "pe2"):
        warning = writer_warning(method, BUNDLED)
        assert warning and "Gemma 3 270M" in warning and "demonstration search" in warning
        assert writer_warning(method, SERVER) is None
    assert writer_warning("demos", BUNDLED) is None
    assert writer_warning("ape", BUNDLED) is None


def test_preflight_gathers_every_reason_in_one_place(workspace):
    project = letters_project(workspace)
    blocking, warnings = runner.preflight(project, "pe2")
    assert blocking == [] and any("PE2 asks the optimizer model" in w for w in warnings)
    empty = workspace.create(type(project.settings)(name="empty"))
    blocking, _ = runner.preflight(empty, "demos")
    assert any("no training examples" in b for b in blocking)
    tiny = letters_project(workspace, name="tiny")
    tiny.set_splits({e.id: "train" for e in tiny.examples("dev")[:5]})
    _, warnings = runner.preflight(tiny, "demos")
    assert any("There are 5 dev examples" in w for w in warnings)
