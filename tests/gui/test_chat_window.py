"""A chat model in the window: chosen on the Models page, named a chat model there, run,
and its prompts shown in the candidate detail as its template writes them."""

from __future__ import annotations

from optimize_support import letters_project
from PySide6.QtWidgets import QFileDialog


def test_a_chat_gguf_is_named_so_and_its_candidates_show_the_rendered_chat(
        qtbot, window, state, chat_model_file, monkeypatch, run_in_window):
    letters_project(state.workspace, instruction="Give the first letter of the word.").close()
    state.open_project("letters")

    window.pages.setCurrentWidget(window.model_page)
    choice = window.model_page.task_choice
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(chat_model_file), "")))
    choice.choose_button.click()
    qtbot.waitUntil(lambda: state.project.settings.task_model.path == str(chat_model_file),
                    timeout=30_000)
    qtbot.waitUntil(lambda: "chat model" in choice.file_info.plain, timeout=30_000)
    assert "written with its own chat template" in choice.file_info.plain
    assert state.project.scoring().prompt_format == "chat"

    # A short search (two small picks, no layouts' or orders' race): the chat format is
    # what is under test.
    run_id = run_in_window("demos", settings={"max_k": 4, "random_sets": 1,
                                              "bootstrapped_sets": 1, "layouts": 0,
                                              "orders": 0})
    results = window.results_page
    candidate = state.project.candidates(run_id)[-1]
    results.select_candidate(candidate.id)
    shown = results.detail.prompt_view.toPlainText()
    assert shown.startswith("<|im_start|>system\nGive the first letter of the word.<|im_end|>")
    assert shown.endswith("<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n")
