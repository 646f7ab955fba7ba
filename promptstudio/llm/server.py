"""A model behind an OpenAI-compatible server: llama-server, Ollama, vLLM, LM Studio, ...

A server in chat format (the default) gets each prompt as messages (`POST /chat/completions`),
and applies its model's own template; one in text format gets the rendered prompt as it is
(`POST /completions`), so that the model sees exactly the text the optimizer tuned. In
automatic format, a server that refuses chat (HTTP 404 or 405: an old or text-only server)
gets the messages as a plain transcript on its completions endpoint instead, and the backend
says so once (`notices`).

The address may be given with or without its `/v1`: "localhost:8080", "http://host:8080"
and "http://host:8080/v1/" all mean "http://host:8080/v1". A missing scheme means `http://`.

Scoring in text format uses the server's log-probabilities of the prompt itself (`echo`
with `logprobs`). llama-cpp-python's own server offers them (it loads models with
`logits_all` by default) and so does vLLM; llama.cpp's llama-server and Ollama do not. In
chat format, a label's score is the log-probability of its first token among the reply's
first-token alternatives (`logprobs` with `top_logprobs`), which llama-cpp-python's server,
llama-server, vLLM and recent Ollama give. Where neither is offered, scoring raises
`ScoringUnsupported` so that the user can pick a generation metric instead.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from promptstudio.llm.base import (
    Backend,
    BackendError,
    CancelToken,
    ContinuationScore,
    Generation,
    GenerationParams,
    ResultCallback,
    ScoringUnsupported,
    ServerError,
    Stopwatch,
)
from promptstudio.llm.chat import (
    AUTO,
    CHAT,
    RECORD,
    Message,
    ServerMessages,
    plain_transcript,
    prompt_format_of,
    read_messages,
)
from promptstudio.llm.config import ModelConfig

API_KEY_VARIABLE = "PROMPTSTUDIO_API_KEY"
CHARS_PER_TOKEN = 4
MAX_BACKOFF_SECONDS = 30.0
LISTING_TIMEOUT_SECONDS = 15.0
CANCEL_POLL_SECONDS = 0.05

TOP_LOGPROBS = 20
"""First-token alternatives asked of a chat server for label scores (OpenAI's maximum)."""
CHAT_REFUSED = (404, 405)

SCORING_UNSUPPORTED = (
    "This server does not return log-probabilities of given text, so the 'label' metric "
    "cannot be used with it. Choose a generation metric such as normalized_exact, or use a "
    "local model for the task."
)

REPLY_ENDED = (
    "The model behind this server ended its reply at once, so the server gave no "
    "likelihood of a first token and the 'label' metric cannot score it. Check that the "
    "server runs the model with its own chat format, or choose a generation metric such as "
    "normalized_exact."
)

Item = TypeVar("Item")
Result = TypeVar("Result")


class ServerStatusError(ServerError):
    """The server answered, but with an HTTP error status; `detail` is its own explanation."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def normalize_base_url(url: str) -> str:
    """The API root ending in /v1, however the user typed the address."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def estimate_tokens(text: str) -> int:
    """A rough count for servers that report no usage: about four characters a token."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to its first stop sequence, for servers that ignore or echo `stop`."""
    cut = min((index for index in (text.find(s) for s in stop if s) if index >= 0),
              default=len(text))
    return text[:cut]


def backoff_delay(attempt: int, base: float) -> float:
    """Exponential wait before retry `attempt` (0-based), with jitter so that many clients
    retrying together do not hit the server in lockstep."""
    return min(MAX_BACKOFF_SECONDS, base * 2**attempt * (1 + random.random() / 2))


def continuation_token_logprobs(
    tokens: Sequence[str],
    offsets: Sequence[int],
    logprobs: Sequence[float | None],
    prompt_chars: int,
    text_chars: int,
) -> list[float | None]:
    """Log-probabilities of the tokens that carry the continuation in an echoed text.

    A token spans from its offset to the next token's. It belongs to the continuation when it
    ends after the prompt and starts before the end of prompt + continuation. So a token that
    straddles the boundary (the tokenizer merged the prompt's last characters with the
    continuation's first) counts as continuation, and the token the server generated after
    the text, which starts at its end, does not.
    """
    selected: list[float | None] = []
    for index, (start, value) in enumerate(zip(offsets, logprobs, strict=True)):
        end = offsets[index + 1] if index + 1 < len(offsets) else start + len(tokens[index])
        if end > prompt_chars and start < text_chars:
            selected.append(value)
    return selected


class ServerBackend(Backend):
    """Completes and scores prompts through an OpenAI-compatible HTTP server.

    Requests run `config.concurrency` at a time. Connection failures, timeouts, HTTP 429 and
    5xx are retried `config.retries` times, waiting `backoff_base` seconds before the first
    retry and doubling after that; other answers are final. Cancellation is checked before
    each request and while waiting to retry; a request already sent is left to finish.
    """

    kind = "server"

    def __init__(self, config: ModelConfig, *, backoff_base: float = 0.5) -> None:
        super().__init__()
        if not config.base_url:
            raise ServerError(
                "No server address is set. Enter it in Model settings, "
                "for example http://127.0.0.1:8080/v1."
            )
        self.config = config
        self.base_url = normalize_base_url(config.base_url)
        self.backoff_base = backoff_base
        self.preferred_batch = max(1, config.concurrency)
        self.api_key = config.api_key if config.api_key is not None else os.environ.get(
            API_KEY_VARIABLE
        )
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.Client(headers=headers, timeout=config.timeout)
        self.prompt_format = prompt_format_of(config)
        self.chat_template = (ServerMessages(f"the server at {self.base_url}")
                              if self.prompt_format == CHAT else None)
        self.chat_refused = False
        """Set when a server in automatic format refused chat: prompts go to its
        completions endpoint as plain transcripts."""

    @property
    def model_id(self) -> str:
        return f"server:{self.base_url}#{self.config.model or 'default'}"

    def close(self) -> None:
        self._client.close()

    # -- the Backend interface ------------------------------------------------------------

    def generate(self, prompts: Sequence[str], params: GenerationParams,
                 cancel: CancelToken | None = None,
                 on_result: ResultCallback | None = None) -> list[Generation]:
        def complete(item: tuple[int, str]) -> Generation:
            index, prompt = item
            seeded = replace(params, seed=params.seed + index) if params.temperature else params
            return self._complete(prompt, seeded, cancel)

        return self._map(complete, list(enumerate(prompts)), cancel, on_result)

    def score(self, prompt: str, continuations: Sequence[str],
              cancel: CancelToken | None = None) -> list[ContinuationScore]:
        """Summed and mean log-probability of each continuation's tokens after `prompt`.

        Where the tokenizer merges the end of the prompt with the start of a continuation,
        the merged token counts as part of the continuation.
        """
        if self._as_chat(prompt) and not self.chat_refused:
            try:
                return self._score_chat(prompt, continuations, cancel)
            except ServerStatusError as error:
                self._on_chat_refused(error)
        if self._as_chat(prompt):
            prompt = plain_transcript(read_messages(prompt))
        return self._map(
            lambda continuation: self._score_one(prompt, continuation, cancel),
            continuations,
            cancel,
        )

    # -- for the Model settings dialog ----------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of the models the server offers, asked once without retrying."""
        answer = self._request("GET", "/models", None, None, retries=0,
                               timeout=min(self.config.timeout, LISTING_TIMEOUT_SECONDS))
        entries = answer.get("data")
        if not isinstance(entries, list):
            raise self._not_openai("its model list has no 'data'")
        return [str(entry["id"]) for entry in entries if isinstance(entry, dict) and "id" in entry]

    def test_connection(self) -> str:
        """One line for the user saying whether the server answers and what it offers."""
        models = self.list_models()
        if not models:
            return f"Connected to {self.base_url}, but it lists no models."
        shown = ", ".join(models[:3]) + (f" and {len(models) - 3} more" if len(models) > 3 else "")
        plural = "" if len(models) == 1 else "s"
        summary = f"Connected to {self.base_url}: {len(models)} model{plural} ({shown})."
        if self.config.model and self.config.model not in models:
            summary += (f" It does not list '{self.config.model}', though; "
                        "check the model name in Model settings.")
        return summary

    # -- one request each -----------------------------------------------------------------

    def _complete(self, prompt: str, params: GenerationParams,
                  cancel: CancelToken | None) -> Generation:
        if self._as_chat(prompt):
            messages = read_messages(prompt)
            if not self.chat_refused:
                try:
                    return self._chat(messages, params, cancel)
                except ServerStatusError as error:
                    self._on_chat_refused(error)
            prompt = plain_transcript(messages)
        payload = self._payload(
            prompt,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
        )
        if params.stop:
            payload["stop"] = list(params.stop)
        with Stopwatch() as watch:
            answer = self._request("POST", "/completions", payload, cancel)
        text = self._first_choice(answer).get("text")
        if not isinstance(text, str):
            raise self._not_openai("its answer has no completion text")
        text = cut_at_stop(text, params.stop)
        prompt_tokens, completion_tokens = self._usage(answer, prompt, text)
        self.stats.add(prompt_tokens, completion_tokens, watch.seconds)
        return Generation(text, prompt_tokens, completion_tokens, watch.seconds)

    def _as_chat(self, prompt: str) -> bool:
        """Whether `prompt` is messages (`ServerMessages`) for the chat endpoint; a plain
        text goes to completions whatever the format."""
        return self.prompt_format == CHAT and prompt.startswith(RECORD)

    def _chat(self, messages: Sequence[Message], params: GenerationParams,
              cancel: CancelToken | None) -> Generation:
        payload = self._payload(messages, temperature=params.temperature,
                                     top_p=params.top_p, max_tokens=params.max_tokens,
                                     seed=params.seed)
        if params.stop:
            payload["stop"] = list(params.stop)
        with Stopwatch() as watch:
            answer = self._request("POST", "/chat/completions", payload, cancel)
        message = self._first_choice(answer).get("message")
        if not isinstance(message, dict) or "content" not in message:
            raise self._not_openai("its chat answer has no message content")
        text = message["content"] if message["content"] is not None else ""
        if not isinstance(text, str):
            raise self._not_openai("its chat answer has no message content")
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:  # servers that split the <think> off
            text = f"<think>{reasoning}</think>{text}"
        text = cut_at_stop(text, params.stop)
        shown = "".join(m.content for m in messages)
        prompt_tokens, completion_tokens = self._usage(answer, shown, text)
        self.stats.add(prompt_tokens, completion_tokens, watch.seconds)
        return Generation(text, prompt_tokens, completion_tokens, watch.seconds)

    def _may_fall_back(self, error: ServerStatusError) -> bool:
        """Whether a chat request's error means "no chat here" to a server in automatic
        format, which then goes on with its completions endpoint."""
        return error.status in CHAT_REFUSED and self.config.prompt_format == AUTO

    def _on_chat_refused(self, error: ServerStatusError) -> None:
        """Fall back to completions where chat is refused and the format is automatic;
        otherwise the error stands."""
        if not self._may_fall_back(error):
            raise error
        self.chat_refused = True
        self.notices.append(
            f"The server at {self.base_url} has no chat endpoint (HTTP {error.status}), so "
            "prompts went to its text endpoint, each conversation written as a plain "
            "transcript. Set the model's prompt format to plain text to tune prompts as "
            "text for it.")

    def _score_chat(self, prompt: str, continuations: Sequence[str],
                    cancel: CancelToken | None) -> list[ContinuationScore]:
        """Each continuation's score as the log-probability of the reply's first token that
        begins it, among the server's `TOP_LOGPROBS` alternatives for that token. A label
        none of them begins gets the least listed value (it is less likely than all of
        them); labels that begin with the same token cannot be told apart this way."""
        payload = self._payload(read_messages(prompt), max_tokens=1, temperature=0.0,
                                     logprobs=True, top_logprobs=TOP_LOGPROBS)
        with Stopwatch() as watch:
            try:
                answer = self._request("POST", "/chat/completions", payload, cancel)
            except ServerStatusError as error:
                if error.status in (401, 403, 429) or self._may_fall_back(error):
                    raise
                raise ScoringUnsupported(
                    f"{SCORING_UNSUPPORTED} (The server answered HTTP {error.status}: "
                    f"{error.detail})") from error
        logprobs = self._first_choice(answer).get("logprobs")
        first = _first_token_alternatives(logprobs)
        if not first:
            ended = isinstance(logprobs, dict) and logprobs.get("content") == []
            raise ScoringUnsupported(REPLY_ENDED if ended else SCORING_UNSUPPORTED)
        floor = min(first.values())
        scores: list[ContinuationScore] = []
        beginnings: dict[str, str] = {}
        for continuation in continuations:
            wanted = continuation.strip().lower()
            matches = {token: value for token, value in first.items()
                       if token.strip() and wanted.startswith(token.strip().lower())}
            token = max(matches, key=lambda t: (len(t.strip()), matches[t]), default=None)
            if token is not None and beginnings.setdefault(token.strip().lower(),
                                                           wanted) != wanted:
                raise ScoringUnsupported(
                    f"On this server the labels '{beginnings[token.strip().lower()]}' and "
                    f"'{wanted}' begin with the same token ('{token.strip()}'), and it gives "
                    "the likelihood of the first token only, so they cannot be told apart. "
                    "Choose a generation metric such as normalized_exact, or labels that "
                    "begin differently.")
            value = matches[token] if token is not None else floor
            scores.append(ContinuationScore(continuation, value, value, 1))
        prompt_tokens, completion_tokens = self._usage(answer, prompt, "")
        self.stats.add(prompt_tokens, completion_tokens, watch.seconds)
        return scores

    def _score_one(self, prompt: str, continuation: str,
                   cancel: CancelToken | None) -> ContinuationScore:
        """Ask for the log-probabilities of prompt + continuation as the server read it.

        `max_tokens` is 1, not 0: llama-cpp-python reads 0 as "no limit".
        """
        if not continuation:
            return ContinuationScore(continuation, 0.0, 0.0, 0)
        if not prompt:
            raise BackendError("A server can only score text that follows a prompt, "
                               "and the prompt is empty.")
        text = prompt + continuation
        payload = self._payload(text, max_tokens=1, temperature=0.0, echo=True, logprobs=1)
        with Stopwatch() as watch:
            try:
                answer = self._request("POST", "/completions", payload, cancel)
            except ServerStatusError as error:
                if error.status in (401, 403, 404, 429):
                    raise
                raise ScoringUnsupported(
                    f"{SCORING_UNSUPPORTED} (The server answered HTTP {error.status}: "
                    f"{error.detail})"
                ) from error
        logprobs = self._first_choice(answer).get("logprobs") or {}
        tokens = logprobs.get("tokens")
        offsets = logprobs.get("text_offset")
        values = logprobs.get("token_logprobs")
        if not (isinstance(tokens, list) and isinstance(offsets, list)
                and isinstance(values, list) and len(tokens) == len(offsets) == len(values)):
            raise ScoringUnsupported(SCORING_UNSUPPORTED)
        selected = continuation_token_logprobs(tokens, offsets, values, len(prompt), len(text))
        if not selected or any(value is None for value in selected):
            raise ScoringUnsupported(SCORING_UNSUPPORTED)
        prompt_tokens, completion_tokens = self._usage(answer, text, "")
        self.stats.add(prompt_tokens, completion_tokens, watch.seconds)
        total = float(sum(selected))
        return ContinuationScore(continuation, total, total / len(selected), len(selected))

    def _payload(self, prompt: str | Sequence[Message], **settings: object) -> dict:
        """A completions request for a text, a chat request for messages; without a model
        name the server uses its default model."""
        payload: dict = ({"prompt": prompt} if isinstance(prompt, str)
                         else {"messages": [m.as_dict() for m in prompt]})
        payload.update(settings)
        if self.config.model:
            payload["model"] = self.config.model
        return payload

    def _usage(self, answer: dict, prompt: str, text: str) -> tuple[int, int]:
        usage = answer.get("usage")
        if isinstance(usage, dict):
            prompt_tokens = usage.get("prompt_tokens")
            completion_tokens = usage.get("completion_tokens")
            if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
                return prompt_tokens, completion_tokens
        return estimate_tokens(prompt), estimate_tokens(text)

    def _first_choice(self, answer: dict) -> dict:
        choices = answer.get("choices")
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            raise self._not_openai("its answer has no 'choices'")
        return choices[0]

    # -- HTTP with retries ----------------------------------------------------------------

    def _map(self, work: Callable[[Item], Result], items: Sequence[Item],
             cancel: CancelToken | None,
             on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
        """`work` on each item, `config.concurrency` at a time, results in the items' order.

        The first failure is raised at once; a cancellation is noticed within
        `CANCEL_POLL_SECONDS` even while requests are still out.
        """
        if not items:
            return []
        workers = max(1, min(self.config.concurrency, len(items)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promptstudio-server")
        try:
            futures = [pool.submit(work, item) for item in items]
            reported: set[int] = set()
            while True:
                done, pending = wait(futures, timeout=CANCEL_POLL_SECONDS,
                                     return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        raise error
                if on_result is not None:
                    for index, future in enumerate(futures):
                        if future in done and index not in reported:
                            reported.add(index)
                            on_result(index, future.result())
                if not pending:
                    return [future.result() for future in futures]
                if cancel is not None:
                    cancel.raise_if_cancelled()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _request(self, method: str, path: str, payload: dict | None,
                 cancel: CancelToken | None, *, retries: int | None = None,
                 timeout: float | None = None) -> dict:
        """The JSON answer to one request, retrying what may pass; a ServerError otherwise."""
        url = self.base_url + path
        seconds = timeout if timeout is not None else self.config.timeout
        attempts = 1 + max(0, self.config.retries if retries is None else retries)
        failure: Exception | httpx.Response | None = None
        for attempt in range(attempts):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if attempt:
                self._wait_to_retry(attempt - 1, failure, cancel)
            try:
                response = self._client.request(method, url, json=payload, timeout=seconds)
            except httpx.TimeoutException as error:
                failure = error
                continue
            except httpx.TransportError as error:
                failure = error
                continue
            if response.status_code < 400:
                try:
                    answer = response.json()
                except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
                    answer = None
                if not isinstance(answer, dict):
                    raise self._not_openai("its answer is not a JSON object")
                return answer
            failure = response
            if response.status_code != 429 and response.status_code < 500:
                break
        raise self._failure_error(failure, path, seconds, attempts)

    def _wait_to_retry(self, attempt: int, failure: object, cancel: CancelToken | None) -> None:
        delay = backoff_delay(attempt, self.backoff_base)
        if isinstance(failure, httpx.Response) and failure.status_code == 429:
            retry_after = failure.headers.get("Retry-After", "")
            if retry_after.isdigit():
                delay = min(MAX_BACKOFF_SECONDS, max(delay, float(retry_after)))
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            if cancel is not None:
                cancel.raise_if_cancelled()
            time.sleep(min(remaining, CANCEL_POLL_SECONDS))
        if cancel is not None:
            cancel.raise_if_cancelled()

    # -- messages a non-programmer can act on ---------------------------------------------

    def _failure_error(self, failure: object, path: str, seconds: float,
                       attempts: int) -> ServerError:
        where = f"the model server at {self.base_url}"
        if isinstance(failure, httpx.TimeoutException):
            return ServerError(
                f"No answer from {where} within {seconds:g} seconds. Raise the timeout in "
                "Model settings, or choose a smaller or faster model."
            )
        if isinstance(failure, httpx.TransportError):
            return ServerError(
                f"Could not reach {where}: {_transport_reason(failure)}. Is the server "
                "running? Check the address in Model settings."
            )
        assert isinstance(failure, httpx.Response)
        status = failure.status_code
        detail = _server_detail(failure)
        if status in (401, 403):
            problem = ("did not accept the API key" if self.api_key
                       else "wants an API key and none is set")
            message = (f"{where.capitalize()} {problem} (HTTP {status}). Enter the key in "
                       f"Model settings, or set the environment variable {API_KEY_VARIABLE}.")
        elif status == 404:
            message = (f"{where.capitalize()} answered 'not found' (HTTP 404) for {path}: "
                       f"{detail}. Check the address in Model settings (it usually ends in "
                       "/v1) and the model name.")
            if path != "/models":
                message += self._offered_models_hint()
        elif status == 429:
            message = (f"{where.capitalize()} is too busy (HTTP 429) and still was after "
                       f"{attempts} attempts. Lower 'concurrency' in Model settings, or try "
                       "again later.")
        elif status >= 500:
            message = (f"{where.capitalize()} failed (HTTP {status}) {attempts} times in a "
                       f"row: {detail}. The server's own log may say why.")
        else:
            message = f"{where.capitalize()} rejected the request (HTTP {status}): {detail}."
        return ServerStatusError(message, status, detail)

    def _offered_models_hint(self) -> str:
        try:
            models = self.list_models()
        except ServerError:
            return ""
        return f" It offers: {', '.join(models)}." if models else ""

    def _not_openai(self, what: str) -> ServerError:
        return ServerError(
            f"The server at {self.base_url} answered, but not like an OpenAI-compatible "
            f"server ({what}). Check the address in Model settings."
        )


def _first_token_alternatives(logprobs: object) -> dict[str, float]:
    """The first reply token's alternatives and their log-probabilities, from a chat
    answer's `logprobs` (OpenAI's shape: `content[0].top_logprobs`)."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not (isinstance(content, list) and content and isinstance(content[0], dict)):
        return {}
    alternatives: dict[str, float] = {}
    for entry in content[0].get("top_logprobs") or []:
        if isinstance(entry, dict) and isinstance(entry.get("token"), str) \
                and isinstance(entry.get("logprob"), int | float):
            token = entry["token"]
            alternatives[token] = max(alternatives.get(token, -math.inf),
                                      float(entry["logprob"]))
    return alternatives


def _transport_reason(error: httpx.TransportError) -> str:
    text = str(error)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service" in lowered or "getaddrinfo" in lowered or "nodename" in lowered:
        return "the host name was not found"
    return text or type(error).__name__


def _server_detail(response: httpx.Response) -> str:
    """The server's explanation, from the shapes OpenAI, FastAPI and Ollama use for errors."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])
    text = response.text.strip()
    return text[:300] if text else response.reason_phrase or "no explanation given"
