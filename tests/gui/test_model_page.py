"""The Models page: choosing bundled, file and server models, and loading one without a freeze."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_server import free_port, running_llama_server
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog

from promptstudio.gui.model_choice import BUNDLED, SERVER
from promptstudio.gui.model_page import ModelPage
from promptstudio.llm import throughput
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.local import LocalBackend
from promptstudio.llm.memory import format_bytes
from promptstudio.llm.server import ServerBackend
from promptstudio.llm.throughput import Throughput

LOAD_SECONDS = 240


@pytest.fixture
def page(qtbot, state, sample_project) -> ModelPage:
    model_page = ModelPage(state)
    qtbot.addWidget(model_page)
    model_page.resize(1000, 900)
    model_page.show()
    return model_page


def pick_file(monkeypatch, path: Path | str) -> None:
    """The user picks `path` in the file dialog."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))


class Ticker:
    """Counts the ticks of a fast timer: they only come while the event loop is free."""

    def __init__(self, milliseconds: int = 20) -> None:
        self.count = 0
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(milliseconds)

    def _tick(self) -> None:
        self.count += 1


def test_the_bundled_model_is_the_default_and_needs_no_set_up(page, bundled_model, qtbot):
    choice = page.task_choice
    assert choice.kind() == BUNDLED
    assert "Gemma 3 270M" in choice.bundled_option.text()
    assert page.same_model.isChecked()
    assert not page.optimizer_choice.isVisible()
    size = format_bytes(bundled_model.stat().st_size)
    qtbot.waitUntil(lambda: size in choice.bundled_info.plain, timeout=60_000)
    assert "Needs about" in choice.bundled_info.plain
    assert choice.load_status.plain == "Not loaded yet."


def test_a_chosen_gguf_file_shows_its_size_and_memory_and_is_saved(page, state, bundled_model,
                                                                   qtbot, monkeypatch):
    pick_file(monkeypatch, bundled_model)
    page.task_choice.choose_button.click()
    qtbot.waitUntil(lambda: state.project.settings.task_model.path == str(bundled_model),
                    timeout=30_000)
    info = page.task_choice.file_info.plain
    assert info.startswith(f"Gemma 3 270m (gemma3 model), {format_bytes(253_113_024)[:3]}")
    assert "Needs about" in info and "is free now" in info
    settings = state.project.settings
    assert settings.optimizer_model == settings.task_model  # "same as the task model"
    assert page.task_now.plain == "Now using: gemma-3-270m-q4_k_m.gguf"


@pytest.mark.parametrize("make_file, expected", [
    (lambda model, folder: _truncated_copy(model, folder), "truncated"),
    (lambda model, folder: _text_file(folder), "is not a GGUF model file"),
    (lambda model, folder: folder / "gone.gguf", "does not exist"),
])
def test_a_broken_file_gets_a_clear_message_and_is_not_saved(page, state, bundled_model,
                                                             tmp_path, qtbot, monkeypatch,
                                                             make_file, expected):
    path = make_file(bundled_model, tmp_path)
    pick_file(monkeypatch, path)
    page.task_choice.choose_button.click()
    qtbot.waitUntil(lambda: expected in page.task_choice.file_info.plain, timeout=30_000)
    assert page.task_choice.file_info.tone == "bad"
    assert state.project.settings.task_model.is_bundled
    assert page.task_choice.config() is None


def _truncated_copy(model: Path, folder: Path) -> Path:
    copy = folder / "half.gguf"
    with model.open("rb") as source, copy.open("wb") as target:
        target.write(source.read(20_000_000))
    return copy


def _text_file(folder: Path) -> Path:
    path = folder / "notes.gguf"
    path.write_text("These are my notes, not a model.\n")
    return path


def test_a_server_with_nothing_listening_is_reported_without_a_freeze(page, state, qtbot):
    choice = page.task_choice
    address = f"http://127.0.0.1:{free_port()}/v1"
    choice.server_option.click()
    assert choice.kind() == SERVER
    assert state.project.settings.task_model.is_bundled  # no address yet: nothing saved
    choice.url_field.setText(address)
    choice.url_field.editingFinished.emit()
    assert state.project.settings.task_model == ModelConfig(kind="server", base_url=address)
    ticker = Ticker()
    choice.test_button.click()
    assert not choice.test_button.isEnabled()
    qtbot.waitUntil(lambda: choice.test_button.isEnabled(), timeout=30_000)
    assert choice.connection_result.plain.startswith(f"Could not reach the model server at "
                                                     f"{address}: connection refused.")
    assert "Is the server running?" in choice.connection_result.plain
    assert choice.connection_result.tone == "bad"
    assert ticker.count > 0


def test_an_api_key_reaches_the_backend_but_not_the_project(page, state, qtbot):
    choice = page.task_choice
    choice.server_option.click()
    choice.url_field.setText("http://127.0.0.1:9/v1")
    choice.key_field.setText("sk-secret")
    choice.key_field.editingFinished.emit()
    stored = state.project.settings.task_model
    assert stored.kind == "server" and stored.api_key is None
    assert "sk-secret" not in state.project.path.read_bytes().decode("latin-1")
    backend = state.backend_for(stored)
    assert isinstance(backend, ServerBackend) and backend.api_key == "sk-secret"
    state.settings_changed.emit()  # the page shows the stored choice again, key and all
    assert choice.key_field.text() == "sk-secret"


def test_the_test_button_asks_for_an_address_first(page):
    page.task_choice.server_option.click()
    page.task_choice.test_button.click()
    assert page.task_choice.connection_result.plain == "Enter the server's address first."


def test_advanced_settings_are_saved(page, state):
    choice = page.task_choice
    choice.advanced_toggle.click()
    assert choice.context_field.isVisible() and not choice.timeout_field.isVisible()
    choice.context_field.setValue(2048)
    choice.threads_field.setValue(1)
    assert state.project.settings.task_model == ModelConfig(n_ctx=2048, n_threads=1)
    assert choice.format_field.currentData() == "auto"
    choice.format_field.setCurrentIndex(choice.format_field.findData("chat"))
    assert state.project.settings.task_model.prompt_format == "chat"
    choice.server_option.click()
    assert choice.timeout_field.isVisible() and not choice.context_field.isVisible()
    assert choice.format_field.isVisible(), "a server is asked in chat, or in text if chosen"


def test_the_optimizer_model_can_differ_from_the_task_model(page, state, bundled_model,
                                                             monkeypatch, qtbot):
    page.same_model.click()
    assert page.optimizer_choice.isVisible()
    pick_file(monkeypatch, bundled_model)
    page.optimizer_choice.choose_button.click()
    qtbot.waitUntil(lambda: state.project.settings.optimizer_model.path is not None,
                    timeout=30_000)
    assert state.project.settings.task_model.is_bundled
    assert not page.same_model.isChecked()
    page.same_model.click()
    assert state.project.settings.optimizer_model == state.project.settings.task_model
    assert not page.optimizer_choice.isVisible()


def test_without_a_project_the_page_says_what_to_do(qtbot, state):
    empty = ModelPage(state)
    qtbot.addWidget(empty)
    empty.show()
    assert empty.no_project.isVisible()
    assert "Open or create a project" in empty.no_project.plain


def test_the_retune_button_opens_the_dialog(page):
    dialog = page.open_retune()
    assert dialog is not None and dialog.isVisible()
    dialog.close()


@pytest.mark.model
def test_loading_the_bundled_model_shows_its_speed_and_the_window_stays_free(
        page, bundled_model, qtbot):
    """The model really loads, on a job; its speed comes from the measurement remembered
    for this machine (measuring anew takes minutes on a busy test machine)."""
    remembered = LocalBackend(ModelConfig())
    throughput.remember(Throughput(remembered.model_id, remembered.n_threads,
                                   {64: 450.0, 256: 912.4}, {1: 20.0, 16: 118.6}))
    choice = page.task_choice
    ticker = Ticker()
    choice.load_button.click()
    assert choice.load_status.plain.startswith("Loading the model")
    assert not choice.load_button.isEnabled()
    qtbot.waitUntil(lambda: choice.load_button.isEnabled(), timeout=LOAD_SECONDS * 1000)
    assert choice.load_status.plain == ("Ready: generates about 119 tokens a second on this "
                                        "computer (reads prompts at 912 a second).")
    assert choice.load_status.tone == "good"
    # At 20 ms a tick, a free event loop ticks many times while the model loads.
    assert ticker.count >= 10
    choice.context_field.setValue(2048)  # another setting is another model load
    assert choice.load_status.plain == "Not loaded yet."


@pytest.mark.model
def test_a_model_is_not_timed_while_a_run_is_going(page, bundled_model, qtbot, monkeypatch):
    """Timed beside a run, the speed would come out too slow and be remembered: the model
    loads, and the page says its speed waits until no run is going."""
    monkeypatch.setattr(type(page.state.runs), "running", property(lambda runs: True))
    monkeypatch.setattr(throughput, "cached", lambda model_id, threads: None)
    remembered = []
    monkeypatch.setattr(throughput, "remember", remembered.append)
    choice = page.task_choice
    choice.load_button.click()
    qtbot.waitUntil(lambda: choice.load_button.isEnabled(), timeout=LOAD_SECONDS * 1000)
    assert choice.load_status.plain == ("Ready. Its speed is measured once no run is going, "
                                        "so as not to slow the run down.")
    assert remembered == []


@pytest.fixture
def llama_server(bundled_model: Path, tmp_path: Path):
    """llama-cpp-python's own server on a free port, as the server backend's tests run it."""
    with running_llama_server(bundled_model, tmp_path / "server.log", n_ctx=1024) as address:
        yield address


@pytest.mark.model
def test_a_real_llama_server_answers_the_connection_test(page, llama_server, qtbot):
    choice = page.task_choice
    choice.server_option.click()
    choice.url_field.setText(llama_server)
    choice.url_field.editingFinished.emit()
    choice.test_button.click()
    qtbot.waitUntil(lambda: choice.test_button.isEnabled(), timeout=60_000)
    assert choice.connection_result.plain.startswith(f"Connected to {llama_server}/v1: 1 model")
    assert choice.connection_result.tone == "good"
    assert choice.model_field.count() == 1
    choice.load_button.click()
    qtbot.waitUntil(lambda: choice.load_button.isEnabled(), timeout=120_000)
    assert choice.load_status.plain.startswith("Ready: the server answered"), \
        choice.load_status.plain


def test_clearing_the_api_key_stops_sending_it(page, state):
    choice = page.task_choice
    choice.server_option.click()
    choice.url_field.setText("http://127.0.0.1:9/v1")
    choice.key_field.setText("sk-secret")
    choice.key_field.editingFinished.emit()
    choice.key_field.setText("")
    choice.key_field.editingFinished.emit()
    assert not state.backend_for(state.project.settings.task_model).api_key
