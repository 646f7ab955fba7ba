"""The server backend against a real llama-cpp-python server, and against canned stubs for
the failures a real server will not produce on demand."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from llama_server import QuietHandler, free_port, proxy, running_llama_server, serve
from optimize_support import start_run
from task_data import data_rows

from promptstudio.dataio import Row
from promptstudio.llm.base import (
    Cancelled,
    CancelToken,
    GenerationParams,
    ScoringUnsupported,
    ServerError,
)
from promptstudio.llm.chat import Message, ServerMessages
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.server import (
    SCORING_UNSUPPORTED,
    ServerBackend,
    continuation_token_logprobs,
    cut_at_stop,
    normalize_base_url,
)
from promptstudio.optimize import runner
from promptstudio.store.records import ProjectSettings

pytestmark = pytest.mark.model

GREEDY = GenerationParams(temperature=0.0, max_tokens=6)
PROMPTS = ("The capital of France is", "One, two, three, four,", "My favourite colour is")
LIST_PROMPT = "Shopping list:\n- milk\n- eggs\n-"
FOND_REVIEW = "Loved it! Sentiment:"
BORED_REVIEW = "Hated it. Sentiment:"


def completion(text: str, **extra: object) -> dict:
    """A minimal OpenAI completions answer."""
    return {"object": "text_completion", "choices": [{"index": 0, "text": text, **extra}]}


def chat_answer(text: str, **extra: object) -> dict:
    """A minimal OpenAI chat answer."""
    return {"object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         **extra}]}


def messages(*turns: tuple[str, str]) -> str:
    """A prompt in a chat server's messages, as evaluation writes it."""
    return ServerMessages("a test server").render([Message(role, text) for role, text in turns])


# -- a real server --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def llama_server(bundled_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own server on a free port; its address is given without /v1.
    Its chat endpoint writes messages in Gemma's turns (the bundled file has no template,
    and the server's fallback, llama-2's, makes this model end every reply at once)."""
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with running_llama_server(bundled_model, log_path, n_ctx=2048,
                              chat_format="gemma") as address:
        yield address


@pytest.fixture
def connect() -> Iterator[Callable[..., ServerBackend]]:
    """Makes backends with quick retries, and closes them after the test."""
    backends: list[ServerBackend] = []

    def make(base_url: str, **settings: object) -> ServerBackend:
        config = ModelConfig(kind="server", base_url=base_url, **settings)  # type: ignore[arg-type]
        backend = ServerBackend(config, backoff_base=0.01)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


def test_greedy_generation_is_repeatable_and_counted(llama_server: str, connect) -> None:
    backend = connect(llama_server, concurrency=1)
    assert backend.preferred_batch == 1
    first = backend.generate(PROMPTS[:2], GREEDY)
    second = backend.generate(PROMPTS[:2], GREEDY)
    assert [g.text for g in first] == [g.text for g in second]
    assert all(g.text.strip() for g in first)
    assert all(g.prompt_tokens > 0 and 0 < g.completion_tokens <= 6 for g in first)
    assert all(g.seconds > 0 for g in first)
    stats = backend.stats.snapshot()
    assert stats["calls"] == 4
    assert stats["prompt_tokens"] == 2 * sum(g.prompt_tokens for g in first)
    assert stats["completion_tokens"] == 2 * sum(g.completion_tokens for g in first)


def test_stop_sequence_ends_the_text(llama_server: str, connect) -> None:
    backend = connect(llama_server)
    [free] = backend.generate([LIST_PROMPT], GREEDY)
    assert "\n" in free.text
    [stopped] = backend.generate([LIST_PROMPT], GenerationParams(max_tokens=6, stop=("\n",)))
    assert stopped.text == free.text.split("\n")[0]
    assert stopped.completion_tokens < free.completion_tokens


def test_concurrent_results_keep_prompt_order(llama_server: str, connect) -> None:
    one_by_one = [connect(llama_server, concurrency=1).generate([p], GREEDY)[0].text
                  for p in PROMPTS]
    assert len(set(one_by_one)) == len(PROMPTS)
    backend = connect(llama_server, concurrency=3)
    assert backend.preferred_batch == 3
    together = backend.generate(PROMPTS, GREEDY)
    assert [g.text for g in together] == one_by_one


def test_score_prefers_the_fitting_label(llama_server: str, connect) -> None:
    backend = connect(llama_server)
    fond_positive, fond_negative = backend.score(FOND_REVIEW, [" positive", " negative"])
    bored_positive, bored_negative = backend.score(BORED_REVIEW, [" positive", " negative"])
    assert fond_positive.total_logprob > fond_negative.total_logprob
    assert bored_negative.total_logprob > bored_positive.total_logprob
    assert fond_positive.continuation == " positive"
    assert fond_positive.n_tokens == 1
    assert backend.stats.calls == 4


def test_score_counts_every_token_of_a_longer_continuation(llama_server: str, connect) -> None:
    [score] = connect(llama_server).score(FOND_REVIEW, [" positive indeed"])
    assert score.n_tokens >= 2
    assert score.total_logprob < 0
    assert score.mean_logprob == pytest.approx(score.total_logprob / score.n_tokens)


def test_score_matches_the_logprob_of_the_servers_own_greedy_token(
    llama_server: str, connect
) -> None:
    """The boundary is right: a continuation the model itself chose scores as it said."""
    answer = httpx.post(
        f"{llama_server}/v1/completions",
        json={"prompt": PROMPTS[0], "max_tokens": 1, "temperature": 0, "logprobs": 1},
        timeout=60,
    ).json()
    logprobs = answer["choices"][0]["logprobs"]
    [score] = connect(llama_server).score(PROMPTS[0], [logprobs["tokens"][0]])
    assert score.n_tokens == 1
    assert score.total_logprob == pytest.approx(logprobs["token_logprobs"][0], abs=0.05)


def test_connection_summary_names_the_model(llama_server: str, connect) -> None:
    backend = connect(llama_server)
    [model] = backend.list_models()
    assert model.endswith(".gguf")
    summary = backend.test_connection()
    assert summary.startswith(f"Connected to {llama_server}/v1: 1 model (")
    assert "gemma-3-270m" in summary


TINY_RUNS = {
    "ape": {"mode": "reverse", "subsamples": 1, "per_subsample": 2, "stage_sizes": [4],
            "mc_per_round": 1},
    "protegi": {"rounds": 1, "beam": 1, "minibatch": 6, "gradients": 1, "pull_size": 4},
    "opro": {"steps": 1, "per_step": 2, "train_size": 4},
    "pe2": {"steps": 1, "n": 1, "m": 1, "train_size": 4},
}


def coded_words_project(workspace):
    """Words answered by arbitrary codes: no prompt can get them right, so every method has
    errors to learn from, whichever build of llama.cpp runs the task model."""
    codes = random.Random(7)
    words = [row["input"] for row in data_rows("antonyms", "train", 20)]
    answers = [f"code {codes.randrange(1000, 9999)}" for _ in words]
    splits = ["train"] * 12 + ["dev"] * 4 + ["test"] * 4
    project = workspace.create(ProjectSettings(name="codes",
                                               instruction="Give the code of the word."))
    project.add_examples([Row(word, answer, (answer,), split)
                          for word, answer, split in zip(words, answers, splits)])
    return project


@pytest.mark.parametrize("method", sorted(TINY_RUNS))
def test_every_method_runs_with_its_optimizer_model_behind_a_chat_only_server(
        method, llama_server: str, connect, workspace, local_backend) -> None:
    """The bundled model answers; the prompts are written by a model behind an
    OpenAI-compatible server that has only its chat endpoint (a proxy refuses
    /completions), as a user with a larger model would set it up. The meta-prompts go as
    chat messages, without the user choosing anything."""
    project = coded_words_project(workspace)
    with proxy(llama_server, refuse=("/v1/completions",)) as chat_only:
        optimizer = connect(chat_only.url)
        run = start_run(project, method, overrides=TINY_RUNS[method])
        outcome = runner.execute(project, run.id, local_backend, optimizer)
    assert outcome.status == "finished" and outcome.test_score is not None
    assert optimizer.stats.snapshot()["calls"] > 0, "the server wrote the new prompts"
    assert optimizer.stats.snapshot()["completion_tokens"] > 0, "and its replies have words"
    assert chat_only.posted() == {"/v1/chat/completions"}
    assert not optimizer.chat_refused


def test_a_run_with_the_task_model_behind_a_chat_only_server(
        llama_server: str, connect, workspace) -> None:
    """Answers and label scores both come through /chat/completions."""
    project = coded_words_project(workspace)
    with proxy(llama_server, refuse=("/v1/completions",)) as chat_only:
        model = connect(chat_only.url)
        project.update_settings(task_model=model.config, optimizer_model=model.config)
        assert project.scoring().prompt_format == "chat"
        run = start_run(project, "opro", overrides=TINY_RUNS["opro"])
        outcome = runner.execute(project, run.id, model, model)
        assert outcome.status == "finished" and outcome.test_score is not None
        fond = messages(("user", FOND_REVIEW))
        positive, unlisted = model.score(fond, [" positive", " zqxjv"])
    assert chat_only.posted() == {"/v1/chat/completions"}
    assert unlisted.total_logprob <= positive.total_logprob < 0


def test_a_chat_label_score_is_the_servers_own_first_token_logprob(
        llama_server: str, connect) -> None:
    asked = httpx.post(f"{llama_server}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": FOND_REVIEW}], "max_tokens": 1,
        "temperature": 0, "logprobs": True, "top_logprobs": 5}, timeout=60).json()
    top = asked["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    word = next(t for t in top if t["token"].strip().isalpha())
    [score] = connect(llama_server).score(messages(("user", FOND_REVIEW)), [word["token"]])
    assert score.n_tokens == 1
    assert score.total_logprob == pytest.approx(word["logprob"], abs=0.05)


def test_a_server_without_chat_gets_plain_transcripts_and_the_user_is_told(
        llama_server: str, connect) -> None:
    with proxy(llama_server, refuse=("/v1/chat/completions",)) as text_only:
        automatic = connect(text_only.url)
        [answer] = automatic.generate([messages(("system", "Answer in one word."),
                                                ("user", "Name a colour."))], GREEDY)
        chosen = connect(text_only.url, prompt_format="chat")
        with pytest.raises(ServerError, match="HTTP 404"):
            chosen.generate([messages(("user", "Name a colour."))], GREEDY)
    assert answer.text.strip()
    assert automatic.chat_refused
    assert "/v1/completions" in text_only.paths
    [notice] = automatic.notices
    assert "no chat endpoint (HTTP 404)" in notice and "plain text" in notice


# -- canned answers for what a real server will not do on demand ----------------------------


class StubServer:
    """An OpenAI-style server on 127.0.0.1 giving canned answers: each POST takes the next
    (status, body) pair, and the last one repeats."""

    def __init__(self, answers: Sequence[tuple[int, dict]], *, delay: float = 0.0,
                 models: Sequence[str] = ("stub-model",)) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[dict[str, str], dict]] = []
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.reply(200, json.dumps(
                    {"object": "list", "data": [{"id": name} for name in models]}).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((dict(self.headers), body))
                time.sleep(delay)
                status, answer = (stub.answers.pop(0) if len(stub.answers) > 1
                                  else stub.answers[0])
                self.reply(status, json.dumps(answer).encode())

        self._server, address = serve(Handler)
        self.url = f"{address}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    servers: list[StubServer] = []

    def start(answers: Sequence[tuple[int, dict]], **options: object) -> StubServer:
        server = StubServer(answers, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_refused_connection_names_the_address_quickly(connect) -> None:
    address = f"127.0.0.1:{free_port()}"
    backend = connect(address, retries=2)
    started = time.monotonic()
    with pytest.raises(ServerError) as caught:
        backend.generate(["Hello"], GREEDY)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"http://{address}/v1" in message
    assert "connection refused" in message
    assert "Is the server running?" in message


def test_server_error_is_retried_until_it_passes(stub, connect) -> None:
    server = stub([(500, {"error": {"message": "warming up"}}),
                   (200, completion(" fine", finish_reason="stop"))])
    backend = connect(server.url, retries=2)
    [generation] = backend.generate(["How are you?"], GREEDY)
    assert generation.text == " fine"
    assert len(server.requests) == 2
    assert backend.stats.calls == 1


def test_persistent_server_error_reports_its_detail(stub, connect) -> None:
    server = stub([(503, {"error": {"message": "model is reloading"}})])
    with pytest.raises(ServerError, match=r"HTTP 503.*3 times.*model is reloading"):
        connect(server.url, retries=2).generate(["Hi"], GREEDY)
    assert len(server.requests) == 3


def test_request_carries_settings_and_estimates_missing_usage(stub, connect) -> None:
    server = stub([(200, completion("abcdefgh and more STOP trailing"))])
    backend = connect(server.url, model="stub-model")
    params = GenerationParams(temperature=0.7, top_p=0.9, max_tokens=5, stop=(" STOP",), seed=7)
    [generation] = backend.generate(["12345678"], params)
    _, body = server.requests[0]
    assert body == {"prompt": "12345678", "model": "stub-model", "temperature": 0.7,
                    "top_p": 0.9, "max_tokens": 5, "seed": 7, "stop": [" STOP"]}
    assert generation.text == "abcdefgh and more"
    assert (generation.prompt_tokens, generation.completion_tokens) == (2, 5)


def test_empty_stop_list_is_not_sent(stub, connect) -> None:
    server = stub([(200, completion("x"))])
    connect(server.url).generate(["Hi"], GREEDY)
    _, body = server.requests[0]
    assert "stop" not in body
    assert "model" not in body


def test_api_key_is_sent_and_a_refusal_names_it(stub, connect, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTSTUDIO_API_KEY", "from-environment")
    server = stub([(401, {"error": {"message": "invalid api key"}})])
    with pytest.raises(ServerError, match="API key") as caught:
        connect(server.url, retries=3).generate(["Hi"], GREEDY)
    assert server.url in str(caught.value)
    assert len(server.requests) == 1
    headers, _ = server.requests[0]
    assert headers["Authorization"] == "Bearer from-environment"
    with pytest.raises(ServerError):
        connect(server.url, api_key="from-settings", retries=0).generate(["Hi"], GREEDY)
    headers, _ = server.requests[-1]
    assert headers["Authorization"] == "Bearer from-settings"


def test_not_found_lists_the_offered_models(stub, connect) -> None:
    server = stub([(404, {"error": {"message": "model 'nope' not found"}})],
                  models=("tiny", "small"))
    with pytest.raises(ServerError, match=r"HTTP 404.*model name.*It offers: tiny, small\."):
        connect(server.url, model="nope").generate(["Hi"], GREEDY)
    assert len(server.requests) == 1


def test_slow_server_gives_the_timeout_message(stub, connect) -> None:
    server = stub([(200, completion("late"))], delay=1.0)
    with pytest.raises(ServerError, match=r"within 0\.2 seconds.*Raise the timeout"):
        connect(server.url, timeout=0.2, retries=0).generate(["Hi"], GREEDY)


def test_cancelled_token_stops_before_any_request(stub, connect) -> None:
    server = stub([(200, completion("x"))])
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        connect(server.url).generate(["a", "b"], GREEDY, token)
    assert server.requests == []


def test_cancelling_while_waiting_to_retry_returns_promptly(stub, connect) -> None:
    server = stub([(503, {"error": {"message": "busy"}})])
    backend = ServerBackend(ModelConfig(kind="server", base_url=server.url, retries=5),
                            backoff_base=5.0)
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            backend.generate(["Hi"], GREEDY, token)
    finally:
        backend.close()
    assert time.monotonic() - started < 2
    assert len(server.requests) == 1


def test_answer_without_logprobs_means_scoring_is_unsupported(stub, connect) -> None:
    server = stub([(200, completion("Sentiment: positive.", logprobs=None))])
    with pytest.raises(ScoringUnsupported) as caught:
        connect(server.url).score("Sentiment:", [" positive"])
    assert str(caught.value) == SCORING_UNSUPPORTED
    _, body = server.requests[0]
    assert body["echo"] is True
    assert body["logprobs"] == 1
    assert body["max_tokens"] == 1


def test_logprobs_of_generated_text_only_mean_scoring_is_unsupported(stub, connect) -> None:
    """A server that ignores `echo` returns log-probabilities only after the text."""
    logprobs = {"tokens": ["."], "text_offset": [19], "token_logprobs": [-0.5]}
    server = stub([(200, completion(".", logprobs=logprobs))])
    with pytest.raises(ScoringUnsupported):
        connect(server.url).score("Sentiment:", [" positive"])


def test_chat_label_scores_come_from_the_first_tokens_alternatives(stub, connect) -> None:
    alternatives = {"content": [{"token": "pos", "logprob": -0.1, "top_logprobs": [
        {"token": "pos", "logprob": -0.1}, {"token": " Neg", "logprob": -2.3},
        {"token": "\n", "logprob": -4.0}]}]}
    server = stub([(200, chat_answer("pos", logprobs=alternatives))])
    backend = connect(server.url, model="stub-model")
    scores = backend.score(messages(("system", "Judge."), ("user", "Fine film.")),
                           [" positive", " negative", " neutral"])
    assert [s.total_logprob for s in scores] == [-0.1, -2.3, -4.0]
    _, body = server.requests[0]
    assert body == {"messages": [{"role": "system", "content": "Judge."},
                                 {"role": "user", "content": "Fine film."}],
                    "max_tokens": 1, "temperature": 0.0, "logprobs": True,
                    "top_logprobs": 20, "model": "stub-model"}
    assert len(server.requests) == 1, "one request scores every label"


def test_labels_that_begin_alike_cannot_be_scored_by_a_chat_server(stub, connect) -> None:
    alternatives = {"content": [{"token": "pos", "logprob": -0.1, "top_logprobs": [
        {"token": "pos", "logprob": -0.1}]}]}
    server = stub([(200, chat_answer("pos", logprobs=alternatives))])
    with pytest.raises(ScoringUnsupported, match="'positive' and 'possible' begin with"):
        connect(server.url).score(messages(("user", "x")), [" positive", " possible"])


def test_a_chat_server_without_logprobs_means_scoring_is_unsupported(stub, connect) -> None:
    server = stub([(200, chat_answer("pos"))])
    with pytest.raises(ScoringUnsupported, match="normalized_exact"):
        connect(server.url).score(messages(("user", "x")), [" positive"])


def test_a_reply_that_ends_at_once_is_explained(stub, connect) -> None:
    server = stub([(200, chat_answer("", logprobs={"content": [], "refusal": None}))])
    with pytest.raises(ScoringUnsupported, match="ended its reply at once"):
        connect(server.url).score(messages(("user", "x")), [" positive"])


def test_a_chat_servers_separate_reasoning_is_kept_before_the_answer(stub, connect) -> None:
    answer = chat_answer("Paris")
    answer["choices"][0]["message"]["reasoning_content"] = "The capital, so Paris."
    server = stub([(200, answer)])
    [generation] = connect(server.url).generate([messages(("user", "Capital?"))], GREEDY)
    assert generation.text == "<think>The capital, so Paris.</think>Paris"


def test_refused_logprobs_mean_scoring_is_unsupported(stub, connect) -> None:
    """What llama-cpp-python's server answers when started with --logits_all False."""
    refusal = {"error": {"message": "logprobs is not supported for models created with "
                                    "logits_all=False"}}
    server = stub([(500, refusal)])
    with pytest.raises(ScoringUnsupported, match=r"label.*logits_all=False"):
        connect(server.url, retries=0).score("Sentiment:", [" positive"])


# -- small pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "normalized"), [
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
    (" localhost:11434/ ", "http://localhost:11434/v1"),
    ("https://models.example.org/api", "https://models.example.org/api/v1"),
])
def test_base_url_is_normalized_to_its_v1_root(typed: str, normalized: str) -> None:
    assert normalize_base_url(typed) == normalized


def test_model_id_names_address_and_model(connect) -> None:
    assert connect("localhost:8080").model_id == "server:http://localhost:8080/v1#default"
    assert (connect("http://localhost:8080/v1", model="gemma").model_id
            == "server:http://localhost:8080/v1#gemma")


def test_missing_address_is_explained() -> None:
    with pytest.raises(ServerError, match="Model settings"):
        ServerBackend(ModelConfig(kind="server"))


def test_token_straddling_the_boundary_counts_as_continuation() -> None:
    """"Mood: pos" + "itive" is read as "Mood", ":", " positive", then a generated "."."""
    tokens = ["Mood", ":", " positive", "."]
    offsets = [0, 4, 5, 14]
    values = [None, -1.0, -2.0, -3.0]
    prompt, text = "Mood: pos", "Mood: positive"
    assert continuation_token_logprobs(tokens, offsets, values, len(prompt), len(text)) == [-2.0]


def test_stop_cut_uses_the_earliest_sequence() -> None:
    assert cut_at_stop("one\ntwo END three", ["END", "\n"]) == "one"
    assert cut_at_stop("no stop here", ["END", ""]) == "no stop here"
