"""One model choice: the bundled model, a GGUF file on this computer, or an
OpenAI-compatible server, with its advanced settings and what it says about the choice
(the file's size and memory, the server's models). Everything slow runs as a job."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from promptstudio.errors import user_message
from promptstudio.gui import messages
from promptstudio.gui.labels import DETAILS_INDENT, hint, indented, muted, paint
from promptstudio.gui.state import AppState
from promptstudio.gui.workers import JobState
from promptstudio.llm.base import ModelFileError, ServerError
from promptstudio.llm.bundled import BUNDLED_MODEL_NAME, bundled_model_path
from promptstudio.llm.chat import AUTO, CHAT, TEXT, file_format, template_of
from promptstudio.llm.config import ModelConfig, physical_cores
from promptstudio.llm.gguf import GGUFInfo, inspect_gguf
from promptstudio.llm.memory import available_memory, check_memory, format_bytes
from promptstudio.llm.server import ServerBackend

BUNDLED, FILE, SERVER = 0, 1, 2
FORMAT_CHOICES = ((AUTO, "Automatic"), (CHAT, "Chat messages (instruction-tuned model)"),
                  (TEXT, "Plain text (base model)"))


def memory_tone(fits: bool | None, tight: bool) -> str | None:
    if fits is False:
        return "bad"
    return "warn" if tight else None


class ModelChoice(QWidget):
    """Chooses one model: bundled, a GGUF file, or a server, with its advanced settings.

    `changed` carries a complete choice as the user makes it (never while `set_config`
    shows a stored one); `edited` says the choice on screen changed, even to an incomplete
    one; `load_requested` asks the page to load and time the model.
    """

    changed = Signal(object)  # ModelConfig
    edited = Signal()  # the choice on screen changed, complete or not
    load_requested = Signal(object)  # ModelConfig

    def __init__(self, state: AppState, *, show_load: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._config = ModelConfig()
        self._file_info: GGUFInfo | None = None
        self._valid_path: str | None = None
        self._checking_serial = 0
        self._connection_serial = 0
        self._bundled_info: GGUFInfo | None = None
        self._bundled_asked = False

        self.kinds = QButtonGroup(self)
        self.bundled_option = QRadioButton(f"Bundled model: {BUNDLED_MODEL_NAME}")
        self.file_option = QRadioButton("A model file on this computer (GGUF)")
        self.server_option = QRadioButton("A model server (OpenAI-compatible)")
        for kind, option in enumerate((self.bundled_option, self.file_option,
                                       self.server_option)):
            self.kinds.addButton(option, kind)
        self.bundled_info = muted(
            "Ships with PromptStudio: nothing to set up. Small and quick, good for trying "
            "things out; larger models follow instructions better.")

        self.path_field = QLineEdit()
        self.path_field.setReadOnly(True)
        self.path_field.setPlaceholderText("No file chosen yet")
        self.choose_button = QPushButton("Choose file…")
        self.choose_button.clicked.connect(self.choose_file)
        file_row = QHBoxLayout()
        file_row.setContentsMargins(0, 0, 0, 0)
        file_row.addWidget(self.path_field, 1)
        file_row.addWidget(self.choose_button)
        file_row_widget = QWidget()
        file_row_widget.setLayout(file_row)
        self.file_info = hint()
        self.file_info.setObjectName("fileInfo")
        self.file_info.hide()
        self.file_help = muted(
            "GGUF is the format of llama.cpp; most models on Hugging Face come in it "
            "(look for files ending in .gguf, for example a Q4_K_M version).")

        self.url_field = QLineEdit()
        self.url_field.setPlaceholderText("http://127.0.0.1:8080/v1")
        self.model_field = QComboBox()
        self.model_field.setEditable(True)
        self.model_field.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_field.lineEdit().setPlaceholderText("the server's default model")
        self.key_field = QLineEdit()
        self.key_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_field.setPlaceholderText("only if the server asks for one")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.connection_result = hint()
        self.connection_result.setObjectName("connectionResult")
        self.connection_result.hide()
        server_form = QFormLayout()
        server_form.setContentsMargins(0, 0, 0, 0)
        server_form.addRow("Address:", self.url_field)
        server_form.addRow("Model name:", self.model_field)
        server_form.addRow("API key:", self.key_field)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addStretch(1)
        server_form.addRow("", test_row)
        server_widget = QWidget()
        server_widget.setLayout(server_form)
        self.server_help = muted(
            "Works with llama.cpp's server, Ollama, vLLM, LM Studio and other servers that "
            "speak the OpenAI API. The API key is not saved in the project; it is kept "
            "until PromptStudio closes (or set PROMPTSTUDIO_API_KEY).")

        self.details = {
            BUNDLED: indented(self.bundled_info),
            FILE: indented(file_row_widget, self.file_info, self.file_help),
            SERVER: indented(server_widget, self.connection_result, self.server_help),
        }
        self._build_advanced()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        for kind, option in enumerate((self.bundled_option, self.file_option,
                                       self.server_option)):
            layout.addWidget(option)
            layout.addWidget(self.details[kind])
        layout.addWidget(self.advanced_toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)

        self.load_status = hint("Not loaded yet.")
        self.load_status.setObjectName("loadStatus")
        self.load_button = QPushButton("Load and measure speed")
        self.load_button.setToolTip("Load the model in the background and time it on this "
                                    "computer; the window stays usable meanwhile.")
        self.load_button.clicked.connect(self._ask_to_load)
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 0)
        self.load_progress.setMaximumWidth(120)
        self.load_progress.setTextVisible(False)
        self.load_progress.hide()
        if show_load:
            load_row = QHBoxLayout()
            load_row.setContentsMargins(0, 6, 0, 0)
            load_row.addWidget(self.load_button)
            load_row.addWidget(self.load_progress)
            load_row.addWidget(self.load_status, 1)
            layout.addLayout(load_row)

        self.kinds.idClicked.connect(self._kind_clicked)
        self.url_field.editingFinished.connect(self._server_edited)
        self.url_field.textEdited.connect(lambda _: paint(self.connection_result, ""))
        self.model_field.lineEdit().editingFinished.connect(self._server_edited)
        self.model_field.activated.connect(lambda _: self._server_edited())
        self.key_field.editingFinished.connect(self._server_edited)
        for spin in (self.context_field, self.threads_field, self.timeout_field,
                     self.concurrency_field):
            spin.valueChanged.connect(self._advanced_edited)
        self.set_config(ModelConfig())

    def _build_advanced(self) -> None:
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._show_advanced)

        self.context_field = QSpinBox()
        self.context_field.setRange(512, 262_144)
        self.context_field.setSingleStep(512)
        self.context_field.setSuffix(" tokens")
        self.context_field.setToolTip("How much text the model can look at once: the prompt, "
                                      "its examples and the answer. More needs more memory.")
        self.threads_field = QSpinBox()
        self.threads_field.setRange(0, 256)
        self.threads_field.setSpecialValueText(f"All cores ({physical_cores()})")
        self.threads_field.setToolTip("CPU threads for the model. Using every core is "
                                      "fastest, but leaves the computer busy.")
        self.timeout_field = QSpinBox()
        self.timeout_field.setRange(5, 3600)
        self.timeout_field.setSuffix(" s")
        self.timeout_field.setToolTip("How long to wait for the server's answer before "
                                      "trying again.")
        self.concurrency_field = QSpinBox()
        self.concurrency_field.setRange(1, 64)
        self.concurrency_field.setToolTip("Requests sent to the server at the same time. "
                                          "Lower it if the server says it is too busy.")
        for spin in (self.context_field, self.threads_field, self.timeout_field,
                     self.concurrency_field):
            spin.setKeyboardTracking(False)
            spin.setMinimumWidth(150)
        self.format_field = QComboBox()
        self.format_field.setObjectName("promptFormat")
        for value, label in FORMAT_CHOICES:
            self.format_field.addItem(label, value)
        self.format_field.setToolTip(
            "How prompts reach the model. An instruction-tuned (chat) model reads messages "
            "written with its own chat template; a base model continues plain text. "
            "Automatic: a model file with a chat template is a chat model; a server is "
            "asked in chat, and in plain text if it has no chat endpoint.")
        self.format_field.currentIndexChanged.connect(lambda _: self._advanced_edited())

        self.advanced = QFrame()
        form = QFormLayout(self.advanced)
        form.setContentsMargins(DETAILS_INDENT, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Context size:", self.context_field)
        form.addRow("CPU threads:", self.threads_field)
        form.addRow("Time limit per request:", self.timeout_field)
        form.addRow("Requests at once:", self.concurrency_field)
        form.addRow("Prompt format:", self.format_field)
        self._advanced_form = form
        self.advanced.hide()

    # -- showing a stored choice ----------------------------------------------------------

    def set_config(self, config: ModelConfig) -> None:
        """Show a stored choice without announcing it as a change."""
        self._config = config
        kind = SERVER if config.kind == "server" else FILE if config.path else BUNDLED
        widgets = (self.kinds, self.url_field, self.model_field, self.key_field,
                   self.context_field, self.threads_field, self.timeout_field,
                   self.concurrency_field, self.format_field)
        blocked = [widget.blockSignals(True) for widget in widgets]
        try:
            self.kinds.button(kind).setChecked(True)
            self.context_field.setValue(config.n_ctx)
            self.threads_field.setValue(config.n_threads)
            self.timeout_field.setValue(round(config.timeout))
            self.concurrency_field.setValue(config.concurrency)
            self.format_field.setCurrentIndex(max(0, self.format_field.findData(
                config.prompt_format)))
            if kind == SERVER:
                self._set_text(self.url_field, config.base_url or "")
                if self.model_field.currentText() != (config.model or ""):
                    self.model_field.setEditText(config.model or "")
                if config.api_key is not None:
                    self._set_text(self.key_field, config.api_key)
        finally:
            for widget, was in zip(widgets, blocked):
                widget.blockSignals(was)
        if kind == FILE and config.path != self._valid_path:
            self.path_field.setText(config.path or "")
            self._check_file(config.path or "")
        self._show_kind(kind)

    @staticmethod
    def _set_text(field: QLineEdit, text: str) -> None:
        if field.text() != text:
            field.setText(text)

    def kind(self) -> int:
        return self.kinds.checkedId()

    def config(self) -> ModelConfig | None:
        """The choice the widgets show, or None while it is incomplete."""
        local = {"n_ctx": self.context_field.value(), "n_threads": self.threads_field.value(),
                 "prompt_format": self.format_field.currentData()}
        kind = self.kind()
        if kind == BUNDLED:
            return ModelConfig(kind="local", retries=self._config.retries, **local)
        if kind == FILE:
            if not self._valid_path:
                return None
            return ModelConfig(kind="local", path=self._valid_path,
                               retries=self._config.retries, **local)
        url = self.url_field.text().strip()
        if not url:
            return None
        return ModelConfig(kind="server", base_url=url,
                           model=self.model_field.currentText().strip() or None,
                           api_key=self.key_field.text().strip() or None,
                           timeout=float(self.timeout_field.value()),
                           concurrency=self.concurrency_field.value(),
                           retries=self._config.retries,
                           prompt_format=self.format_field.currentData())

    def _show_kind(self, kind: int) -> None:
        for each, details in self.details.items():
            details.setVisible(each == kind)
        local = kind != SERVER
        for field, shown in ((self.context_field, local), (self.threads_field, local),
                             (self.timeout_field, not local),
                             (self.concurrency_field, not local)):
            self._advanced_form.setRowVisible(field, shown)
        self._inspect_bundled()
        self._show_memory()

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown
                                          else Qt.ArrowType.RightArrow)

    # -- the user's edits -----------------------------------------------------------------

    def _kind_clicked(self, kind: int) -> None:
        self._show_kind(kind)
        self._announce()
        self.edited.emit()

    def _server_edited(self) -> None:
        if self.kind() == SERVER:
            self._announce()
            self.edited.emit()

    def _advanced_edited(self) -> None:
        self._show_memory()
        self._announce()
        self.edited.emit()

    def _announce(self) -> None:
        config = self.config()
        if config is not None and config != self._config:
            self._config = config
            self.changed.emit(config)

    def _ask_to_load(self) -> None:
        config = self.config()
        if config is None:
            paint(self.load_status, "Finish choosing the model first.", "warn")
            return
        self.load_requested.emit(config)

    def show_load_state(self, text: str, tone: str | None = None, busy: bool = False) -> None:
        paint(self.load_status, text, tone)
        self.load_status.show()
        self.load_progress.setVisible(busy)
        self.load_button.setEnabled(not busy)

    # -- a GGUF file ----------------------------------------------------------------------

    def choose_file(self) -> None:
        start = self._valid_path or self.path_field.text() or ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a model file", start, "GGUF model files (*.gguf);;All files (*)")
        if not path:
            return
        self.file_option.setChecked(True)
        self._show_kind(FILE)
        self.path_field.setText(path)
        self._check_file(path, announce=True)

    def _check_file(self, path: str, announce: bool = False) -> None:
        """Read the file's header in the background; say what it is and whether it fits."""
        self._checking_serial += 1
        serial = self._checking_serial
        self._file_info = None
        paint(self.file_info, "Checking the file…")

        def inspect(_: JobState) -> tuple[int, str, bool, object]:
            try:
                info = inspect_gguf(path)
            except ModelFileError as problem:
                return serial, path, announce, problem
            return serial, path, announce, (info, available_memory())

        self.state.jobs.start("Checking the model file", inspect, on_done=self._file_checked,
                              on_error=self._failed)

    def _file_checked(self, result: tuple[int, str, bool, object]) -> None:
        serial, path, announce, outcome = result
        if serial != self._checking_serial:
            return
        if isinstance(outcome, ModelFileError):
            self._valid_path = None
            paint(self.file_info, str(outcome), "bad")
        else:
            info, available = outcome  # type: ignore[misc]
            self._file_info, self._valid_path = info, path
            self._show_memory(available)
            if announce:
                self._announce()
        self.edited.emit()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._inspect_bundled()

    def _inspect_bundled(self) -> None:
        """Size and memory of the bundled model, once it is on screen: the first look
        may assemble the file from its package, which takes a few seconds."""
        if self._bundled_asked or self.kind() != BUNDLED or not self.isVisible():
            return
        self._bundled_asked = True

        def inspect(_: JobState) -> tuple[GGUFInfo, int | None]:
            return inspect_gguf(bundled_model_path()), available_memory()

        self.state.jobs.start("Checking the bundled model", inspect,
                              on_done=self._bundled_checked, on_error=self._failed)

    def _bundled_checked(self, result: tuple[GGUFInfo, int | None]) -> None:
        self._bundled_info = result[0]
        self._show_memory(result[1])

    def _show_memory(self, available: int | None = None) -> None:
        """The size of the chosen file and the memory it needs at this context size."""
        kind = self.kind()
        info = self._bundled_info if kind == BUNDLED else self._file_info
        if info is None or kind == SERVER:
            return
        check = check_memory(info, self.context_field.value(), available)
        tone = memory_tone(check.fits, check.tight)
        if kind == BUNDLED:
            paint(self.bundled_info,
                  f"Ships with PromptStudio: nothing to set up ({format_bytes(info.size_bytes)}"
                  "). Small and quick, good for trying things out; larger models follow "
                  f"instructions better. {check.describe()}", tone or "muted")
            return
        paint(self.file_info, f"{info.name} ({info.architecture} model), "
              f"{format_bytes(info.size_bytes)}. {self._format_words(info)} "
              f"{check.describe()}", tone)

    def _format_words(self, info: GGUFInfo) -> str:
        """How the chosen file will be asked, by the format chosen and its template."""
        has_template = template_of(info.metadata) is not None
        if file_format(self.format_field.currentData(), info.metadata) == CHAT:
            return ("A chat model: its prompts are messages, written with its own chat "
                    "template." if has_template else "Asked as a chat model, but the file "
                    "has no chat template: choose plain text under Advanced settings.")
        if has_template:
            return "Asked as plain text: its chat template is not used."
        return "A base model: its prompts are plain text it continues."

    # -- a server -------------------------------------------------------------------------

    def test_connection(self) -> None:
        """Ask the server for its models in the background and say what it answered."""
        config = self.config() if self.kind() == SERVER else None
        if config is None:
            paint(self.connection_result, "Enter the server's address first.", "warn")
            return
        self._connection_serial += 1
        serial = self._connection_serial
        self.test_button.setEnabled(False)
        paint(self.connection_result, f"Asking {config.base_url}…")

        def ask_server(_: JobState) -> tuple[int, bool, str, list[str]]:
            backend = ServerBackend(config)
            try:
                summary = backend.test_connection()
                return serial, True, summary, backend.list_models()
            except ServerError as problem:
                return serial, False, str(problem), []
            finally:
                backend.close()

        self.state.jobs.start("Testing the server connection", ask_server,
                              on_done=self._connection_tested, on_error=self._connection_failed)

    def _connection_tested(self, result: tuple[int, bool, str, list[str]]) -> None:
        serial, connected, text, models = result
        if serial != self._connection_serial:
            return
        self.test_button.setEnabled(True)
        paint(self.connection_result, text, "good" if connected else "bad")
        if models:
            typed = self.model_field.currentText()
            blocked = self.model_field.blockSignals(True)
            self.model_field.clear()
            self.model_field.addItems(models)
            self.model_field.setEditText(typed)
            self.model_field.blockSignals(blocked)

    def _connection_failed(self, error: BaseException) -> None:
        self.test_button.setEnabled(True)
        paint(self.connection_result, user_message(error), "bad")

    def _failed(self, error: BaseException) -> None:
        messages.show_error(self, error)
