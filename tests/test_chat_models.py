"""Chat models: a GGUF file's own chat template, rendered in the sandbox as llama-cpp-python
renders it, and the prompt placed in its messages (`llm/chat.py`, `templates.py`)."""

from __future__ import annotations

import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from optimize_support import gguf_header

from promptstudio.dataio import Row
from promptstudio.evaluation import Evaluator
from promptstudio.llm.chat import (
    CHAT,
    TEXT,
    ChatTemplate,
    ChatTemplateError,
    Message,
    prompt_format_of,
)
from promptstudio.llm.config import ModelConfig
from promptstudio.store.records import ProjectSettings, Scoring
from promptstudio.templates import ChatPromptTemplate, PromptTemplate

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
NO_SYSTEM = ("{{ bos_token }}{% for message in messages %}"
             "{% if message['role'] == 'system' %}"
             "{{ raise_exception('System role not supported') }}{% endif %}"
             "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
             "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
             "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
MESSAGES = [Message("system", "Answer with one word."), Message("user", "Is it raining?"),
            Message("assistant", "No"), Message("user", "Is the sky blue?")]


def recorded(backend) -> list[str]:
    """The prompts `backend` is asked from now on (its `generate`, wrapped; `del
    backend.generate` unwraps it)."""
    sent: list[str] = []
    original = backend.generate

    def recording(prompts, params, cancel=None, on_result=None):
        sent.extend(prompts)
        return original(prompts, params, cancel, on_result)

    backend.generate = recording
    return sent


@pytest.mark.parametrize("source", [CHATML, NO_SYSTEM.replace("{% if message['role'] == "
                                    "'system' %}{{ raise_exception('System role not "
                                    "supported') }}{% endif %}", "")])
def test_rendering_equals_llama_cpp_pythons_own(source):
    ours = ChatTemplate(source, bos_token="<bos>", eos_token="<eos>").render(MESSAGES)
    theirs = Jinja2ChatFormatter(template=source, eos_token="<eos>", bos_token="<bos>")(
        messages=[m.as_dict() for m in MESSAGES]).prompt
    assert ours == theirs


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{% set _ = messages.append({'role': 'user', 'content': 'x'}) %}ok",
    "{{ cycler.__init__.__globals__.os.popen('echo pwned').read() }}",
])
def test_a_crafted_template_is_stopped_not_run(attack):
    """CVE-2024-34359: a chat template in a model file ran code in llama-cpp-python."""
    with pytest.raises(ChatTemplateError):
        ChatTemplate(attack).render([Message("user", "hi")])


def test_the_instruction_goes_in_a_system_message_or_atop_the_users():
    base = PromptTemplate()
    demos = [("rain", "wet"), ("sun", "dry")]
    system = ChatPromptTemplate(ChatTemplate(CHATML), base)
    assert [m.role for m in system.messages("Say the weather.", demos, "snow")] == [
        "system", "user", "assistant", "user", "assistant", "user"]
    user = ChatPromptTemplate(ChatTemplate(CHATML), base, instruction_place="user")
    first = user.messages("Say the weather.", demos, "snow")
    assert first[0] == Message("user", "Say the weather.\n\nrain")
    inline = ChatPromptTemplate(ChatTemplate(CHATML), base, demo_place="inline")
    assert inline.messages("Say it.", demos, "snow")[1] == Message(
        "user", "Input: rain\nOutput: wet\n\nInput: sun\nOutput: dry\n\nsnow")


def test_a_template_without_a_system_role_gets_the_instruction_in_the_user_message():
    gemma_like = ChatPromptTemplate(ChatTemplate(NO_SYSTEM, bos_token="<bos>"), PromptTemplate())
    text = gemma_like.render("Say the weather.", [], "snow")
    assert text == ("<bos><start_of_turn>user\nSay the weather.\n\nsnow<end_of_turn>\n"
                    "<start_of_turn>model\n")


def test_the_text_before_the_input_is_shared_by_every_example():
    template = ChatPromptTemplate(ChatTemplate(CHATML), PromptTemplate())
    demos = [("rain", "wet")]
    for word in ("snow", "hail"):
        assert template.render("Say it.", demos, word) == (
            template.prefix("Say it.", demos) + word + template.suffix())
    assert template.suffix() == "<|im_end|>\n<|im_start|>assistant\n"


def test_the_format_and_where_the_prompt_goes_are_part_of_a_score():
    settings = ProjectSettings(name="p")
    text = Scoring.of(settings, ["x"])
    assert text.key == Scoring.of(settings, ["x"], TEXT).key
    chat = Scoring.of(settings, ["x"], CHAT)
    assert chat.key != text.key
    moved = ProjectSettings(name="p", instruction_place="user")
    assert Scoring.of(moved, ["x"], CHAT).key != chat.key
    assert Scoring.of(moved, ["x"]).key == text.key, "placement means nothing to a text model"


def test_a_run_scored_before_the_format_or_placement_changed_says_which():
    """Found by trying it: after `config --instruction-place user`, `show` said "scored its
    prompts before  changed", naming nothing."""
    from promptstudio.evaluation import scoring_changes

    settings = ProjectSettings(name="p")
    text, chat = Scoring.of(settings, ["x"]), Scoring.of(settings, ["x"], CHAT)
    moved = Scoring.of(ProjectSettings(name="p", instruction_place="user"), ["x"], CHAT)
    assert scoring_changes(chat, text) == [
        "the task model's prompt format (plain text → chat messages in its own template)"]
    assert scoring_changes(moved, chat) == [
        "where the instruction and the examples go in the chat messages"]


def test_which_models_are_chat_models(tmp_path):
    chat = gguf_header(tmp_path / "chat.gguf", {"general.architecture": "llama",
                                                "tokenizer.chat_template": CHATML}, 10_000)
    plain = gguf_header(tmp_path / "plain.gguf", {"general.architecture": "llama"}, 10_000)
    assert prompt_format_of(ModelConfig()) == TEXT
    assert prompt_format_of(ModelConfig(path=str(chat))) == CHAT
    assert prompt_format_of(ModelConfig(path=str(plain))) == TEXT
    assert prompt_format_of(ModelConfig(path=str(chat), prompt_format=TEXT)) == TEXT
    assert prompt_format_of(ModelConfig(path=str(tmp_path / "gone.gguf"))) == TEXT


# -- on a real instruction-tuned model ------------------------------------------------


def test_the_text_sent_is_what_llama_cpp_python_builds(chat_model_file):
    """The messages rendered by the file's template with its own begin and end tokens, and
    tokenized as llama-cpp-python tokenizes a chat prompt."""
    import llama_cpp

    from promptstudio.llm.local import LocalBackend

    backend = LocalBackend(ModelConfig(path=str(chat_model_file)))
    try:
        assert backend.prompt_format == CHAT
        ours = backend.chat_template.render(MESSAGES)
        llama = llama_cpp.Llama(model_path=str(chat_model_file), n_ctx=512, verbose=False)
        eos = llama._model.token_get_text(llama.token_eos())
        bos = llama._model.token_get_text(llama.token_bos())
        theirs = Jinja2ChatFormatter(template=llama.metadata["tokenizer.chat_template"],
                                     eos_token=eos, bos_token=bos)(
            messages=[m.as_dict() for m in MESSAGES]).prompt
        assert ours == theirs
        assert backend.tokenize(ours) == llama.tokenize(theirs.encode(), add_bos=False,
                                                        special=True)
        assert "<|im_start|>system\nAnswer with one word.<|im_end|>" in ours
        llama.close()
    finally:
        backend.close()


def test_a_chat_model_is_scored_on_its_own_messages(workspace, chat_model_file):
    from promptstudio.llm.local import LocalBackend

    project = workspace.create(ProjectSettings(
        name="weather", instruction="Answer yes or no.",
        task_model=ModelConfig(path=str(chat_model_file))))
    project.add_examples([Row("Is water wet?", "yes", ("yes",), "dev"),
                          Row("Is fire cold?", "no", ("no",), "dev")])
    assert project.scoring().prompt_format == CHAT
    backend = LocalBackend(project.settings.task_model)
    try:
        evaluator = Evaluator(project, backend)
        candidate = project.add_candidate("Answer yes or no.", [])
        prompt = evaluator.prompt(candidate, project.examples("dev")[0])
        assert prompt == ("<|im_start|>system\nAnswer yes or no.<|im_end|>\n<|im_start|>user\n"
                          "Is water wet?<|im_end|>\n<|im_start|>assistant\n")
        result = evaluator.evaluate(candidate, project.examples("dev"))
        assert len(result.evaluations) == 2
        assert all(e.answer is not None for e in result.evaluations)
    finally:
        backend.close()
        project.close()


def test_config_sets_the_format_and_the_placement(cli, tmp_path, chat_model_file):
    data = tmp_path / "rows.csv"
    data.write_text("input,output\nIs water wet?,yes\nIs fire cold?,no\n")
    assert cli("new", "w", "--data", str(data))[0] == 0
    code, out, _ = cli("config", "w", "--task-model", str(chat_model_file))
    assert code == 0 and "(chat format (auto))" in out
    code, out, _ = cli("config", "w", "--instruction-place", "user", "--demo-place", "inline")
    assert "the instruction in the user message, at the top, the demonstrations inline" in out
    code, out, _ = cli("config", "w", "--task-format", "text")
    assert "(text format)" in out


def test_the_prompt_card_shows_the_messages_as_the_model_received_them(workspace,
                                                                       chat_model_file):
    from promptstudio.workflows import _card_markdown, prompt_card

    project = workspace.create(ProjectSettings(
        name="weather", instruction="Answer yes or no.",
        task_model=ModelConfig(path=str(chat_model_file))))
    candidate = project.add_candidate("Answer yes or no.", [])
    card = prompt_card(project, candidate)
    assert card["messages"] == [{"role": "system", "content": "Answer yes or no."},
                                {"role": "user", "content": "{input}"}]
    assert card["prompt"] == ("<|im_start|>system\nAnswer yes or no.<|im_end|>\n"
                              "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n")
    assert "- **system:** Answer yes or no." in _card_markdown(card)
    project.close()


def test_a_run_on_a_chat_model_asks_it_in_its_own_format(workspace, chat_model_file):
    """SmolLM2-135M-Instruct as task and optimizer model: the task prompts are its chat
    messages, the optimizer's requests (the papers', for a chat model) a user message."""
    from optimize_support import search_budget, start_run

    from promptstudio.llm.local import LocalBackend
    from promptstudio.optimize import runner, writing

    model = ModelConfig(path=str(chat_model_file))
    project = workspace.create(ProjectSettings(
        name="plural", instruction="Write the plural of the word.", task_model=model,
        optimizer_model=model))
    words = ("cat dog box city bus leaf wolf baby toy key fox dish church day way bird "
             "tree car pen cup").split()
    project.add_examples([Row(w, w + "s", (w + "s",), "train") for w in words[:12]])
    project.add_examples([Row(w, w + "s", (w + "s",), "dev") for w in words[12:]])
    backend = LocalBackend(model)
    sent = recorded(backend)
    try:
        run = start_run(project, "ape", writer=writing.writer_for(model),
                        overrides={"subsamples": 1, "per_subsample": 2, "mc_rounds": 0,
                                   "stage_sizes": [2, 4, 8]},
                        budget=search_budget(project, 40))
        assert project.run(run.id).params["writer"] == writing.PAPER
        outcome = runner.execute(project, run.id, backend, backend)
        assert outcome.status == "finished" and outcome.best is not None
    finally:
        backend.close()
    asks = [p for p in sent if "My friend" in p or "instruction my friend" in p]
    assert asks and all(p.startswith("<|im_start|>") and p.endswith(
        "<|im_start|>assistant\n") for p in asks), "the request is a user message"
    answers = [p for p in sent if "<|im_start|>system\nWrite the plural" in p]
    assert answers, "the task prompts put the instruction in the system message"
    assert project.scoring().prompt_format == CHAT
    project.close()


# -- reasoning models -------------------------------------------------------------------

QWEN3_LIKE = CHATML.replace("{% if add_generation_prompt %}",
                            "{# replies may open with <think> #}{% if add_generation_prompt %}")


@pytest.mark.parametrize("reply, answer, reasoning", [
    ("<think>\nThe plural adds s.\n</think>\n\ncats", "\n\ncats", "The plural adds s."),
    ("The plural adds s.</think>cats", "cats", "The plural adds s."),  # opened by the template
    ("cats", "cats", ""),
    ("<think>\nStill thinking when the tokens ran out", None, "Still thinking when the "
                                                             "tokens ran out"),
])
def test_a_reply_is_read_after_its_reasoning(reply, answer, reasoning):
    from promptstudio.parsing import OutputParser, after_reasoning, reasoning_of

    assert after_reasoning(reply) == answer
    assert reasoning_of(reply) == reasoning
    assert OutputParser().parse(reply) == (answer or "").strip()


def test_the_first_line_is_the_answers_not_the_reasonings():
    from promptstudio.parsing import first_line_complete

    assert not first_line_complete("<think>\nfirst, the word\n")
    assert not first_line_complete("<think>\nfirst</think>\n")
    assert first_line_complete("<think>\nfirst</think>\ncats\n")


def test_a_reasoning_optimizer_gets_room_and_its_answers_are_read_after_the_block(workspace):
    from optimize_support import letters_project
    from scripted import ScriptedBackend

    from promptstudio.optimize import runner
    from promptstudio.optimize.budget import Budget
    from promptstudio.optimize.context import RunContext

    class Reasoner(ScriptedBackend):
        prompt_format = CHAT
        chat_template = ChatTemplate(QWEN3_LIKE)

    asked = []
    optimizer = Reasoner(lambda prompt: "<think>\nThe words start with letters.\n</think>\n"
                         "Write the first letter.", name="reasoner")
    original = optimizer.generate

    def generate(prompts, params, cancel=None, on_result=None):
        asked.append(params.max_tokens)
        return original(prompts, params, cancel, on_result)

    optimizer.generate = generate
    project = letters_project(workspace)
    plan = runner.plan(project, "ape", writer="paper")
    run = runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
    ctx = RunContext(project, project.run(run.id), ScriptedBackend(lambda p: " a"), optimizer,
                     budget=Budget(), start=project.add_candidate("Answer.", []))
    replies = ctx.ask("Input: apple\nOutput: a\n\nThe instruction was", n=2, max_tokens=50)
    assert replies == ["\nWrite the first letter."] * 2
    assert asked == [50 + 1024]
    made = ctx.add_candidate(replies[0], operation="forward")
    assert made.meta["thinking"] == "The words start with letters.", "kept as how it was made"
    from promptstudio.reports import provenance

    assert any("reasoned" in section.title and "start with letters" in section.text
               for section in provenance(project, made))
    optimizer.reply = lambda prompt: "<think>\nand on and on"
    logged = []
    ctx.log = logged.append
    assert ctx.ask("Input: kiwi\nOutput: k\n\nThe instruction was", n=1) == [""]
    assert "reasoning ran past" in logged[0]


def test_a_task_model_whose_reasoning_is_cut_off_is_reported_once_in_the_runs_log(
        workspace):
    from optimize_support import letters_project, search_budget, start_run
    from scripted import ScriptedBackend

    from promptstudio.optimize import runner
    from promptstudio.optimize.events import Message as Said

    class Reasoner(ScriptedBackend):
        prompt_format = CHAT
        chat_template = ChatTemplate(QWEN3_LIKE)

    project = letters_project(workspace)
    project.update_settings(task_model=ModelConfig(prompt_format=CHAT))
    model = Reasoner(lambda prompt: "<think>\nLet me think about this word for a long")
    said: list[str] = []
    run = start_run(project, "opro", budget=search_budget(project, 10))
    outcome = runner.execute(project, run.id, model, model, listener=lambda event: said.append(
        event.text) if isinstance(event, Said) else None)
    assert outcome.status == "finished"
    cut = [text for text in said if "reasoning ran past the room" in text]
    assert len(cut) == 1 and "count as wrong" in cut[0]


@pytest.mark.parametrize("bomb, why", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "loops run more than"),
    ("{{ 'x' * 100000000 }}", "builds a text"),
    ("{% for i in range(100000) %}{{ messages[0]['content'] * 20 }}{% endfor %}",
     "writes more than"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself"),
])
def test_a_template_that_loops_or_swells_is_stopped(bomb, why):
    with pytest.raises(ChatTemplateError, match=why):
        ChatTemplate(bomb, origin="bomb.gguf").render([Message("user", "hi")])


def test_a_model_files_crafted_template_is_stopped_and_the_message_names_the_file(
        workspace, tmp_path):
    from promptstudio.llm.local import LocalBackend

    evil = gguf_header(tmp_path / "evil.gguf", {
        "general.architecture": "llama",
        "tokenizer.chat_template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, 10_000)
    project = workspace.create(ProjectSettings(name="evil", instruction="Answer.",
                                               task_model=ModelConfig(path=str(evil))))
    project.add_examples([Row("a", "b", ("b",), "dev")])
    with pytest.raises(ChatTemplateError, match="evil.gguf.*nothing of it ran"):
        Evaluator(project, LocalBackend(project.settings.task_model))
    project.close()


# -- the bundled model with a chat template added ---------------------------------------------


def test_the_bundled_model_with_a_chat_template_is_asked_in_it(workspace,
                                                              templated_bundled_model):
    """The copy made with the gguf package (`templated_bundled_model`): the right text
    reaches the model, for generation and for label scores; its answers are a base model's."""
    from promptstudio.llm.base import GenerationParams
    from promptstudio.llm.chat import file_template
    from promptstudio.llm.local import LocalBackend

    model = ModelConfig(path=str(templated_bundled_model))
    project = workspace.create(ProjectSettings(
        name="weather", instruction="Answer yes or no.", task_model=model, metric="label",
        labels=("yes", "no")))
    project.add_examples([Row("Is water wet?", "yes", ("yes",), "dev"),
                          Row("Is fire cold?", "no", ("no",), "dev")])
    assert prompt_format_of(model) == CHAT and project.scoring().prompt_format == CHAT
    backend = LocalBackend(model)
    try:
        evaluator = Evaluator(project, backend)
        candidate = project.add_candidate("Answer yes or no.", [])
        prompt = evaluator.prompt(candidate, project.examples("dev")[0])
        written = file_template(templated_bundled_model)
        assert written is not None and "<start_of_turn>" in written.source
        theirs = Jinja2ChatFormatter(template=written.source, bos_token="<bos>",
                                     eos_token="<eos>")(messages=[
            {"role": "system", "content": "Answer yes or no."},
            {"role": "user", "content": "Is water wet?"}]).prompt
        assert prompt == theirs == ("<bos><start_of_turn>user\nAnswer yes or no.\n\n"
                                    "Is water wet?<end_of_turn>\n<start_of_turn>model\n")
        [reply] = backend.generate([prompt], GenerationParams(temperature=0.0, max_tokens=4))
        assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
        yes, no = backend.score(prompt, ["yes", "no"])
        assert yes.total_logprob < 0 and no.total_logprob < 0
        result = evaluator.evaluate(candidate, project.examples("dev"))
        assert [e.answer in ("yes", "no") for e in result.evaluations] == [True, True]
    finally:
        backend.close()
        project.close()


@pytest.fixture(scope="module")
def templated_backend(templated_bundled_model):
    from promptstudio.llm.local import LocalBackend

    backend = LocalBackend(ModelConfig(path=str(templated_bundled_model)))
    yield backend
    backend.close()


def _method_names() -> list[str]:
    from promptstudio.optimize.method import methods

    return methods()


@pytest.mark.parametrize("method", _method_names())
def test_each_method_runs_on_the_bundled_model_asked_as_a_chat_model(
        method, workspace, templated_bundled_model, templated_backend):
    """One quick run of each method, the copy with a chat template as task and optimizer
    model: each runs to its end with prompts in the template's turns."""
    from optimize_support import search_budget, start_run

    from promptstudio.optimize import runner, writing

    model = ModelConfig(path=str(templated_bundled_model))
    project = workspace.create(ProjectSettings(
        name="plural", instruction="Write the plural of the word.", task_model=model,
        optimizer_model=model))
    words = "cat dog box city bus leaf wolf baby toy key fox dish church day".split()
    project.add_examples([Row(w, w + "s", (w + "s",), "train") for w in words[:8]])
    project.add_examples([Row(w, w + "s", (w + "s",), "dev") for w in words[8:11]])
    project.add_examples([Row(w, w + "s", (w + "s",), "test") for w in words[11:]])
    sent = recorded(templated_backend)
    try:
        run = start_run(project, method, writer=writing.writer_for(model),
                        budget=search_budget(project, 8))
        outcome = runner.execute(project, run.id, templated_backend, templated_backend)
    finally:
        del templated_backend.generate
    assert outcome.status == "finished" and outcome.best is not None
    assert sent and all(p.startswith("<bos><start_of_turn>user\n")
                        and p.endswith("<start_of_turn>model\n") for p in sent)
    project.close()
